"""Replay of fixed-length sequences, kept on disk so that a killed run loses none of it."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.utils import NestedKey
from torchrl.data import LazyMemmapStorage, SliceSampler, TensorDictReplayBuffer

__all__ = ["SequenceReplay", "TRAJ_KEY"]

TRAJ_KEY = ("collector", "traj_ids")


class SequenceReplay:
    """A replay buffer of transitions sampled as ``(batch_size, sequence_length)`` sequences.

    Transitions live in a :class:`~torchrl.data.LazyMemmapStorage` under ``directory``:
    what is written is in files, which the operating system keeps even when the process
    is killed. :meth:`save` records (atomically) how much of it is valid; a new
    ``SequenceReplay`` on the same directory with ``resume=True`` picks it up.

    Sequences never cross trajectories (``("collector", "traj_ids")``) nor the seams
    between collected batches of different workers; trajectory ids of data added after a
    resume are shifted past every stored id, so old and new episodes never merge.
    ``"is_init"`` comes back as stored (true only at episode starts): a sequence that
    starts mid-episode starts from the acting policy's stored RSSM state and action, as
    :class:`~torchrl.modules.RSSMRolloutV3` expects.

    Args:
        directory: where the storage and its metadata live.
        capacity: transitions kept (oldest overwritten first).
        batch_size: sequences per sample.
        sequence_length: steps per sequence.
        keys: entries stored (others are dropped before writing: saves disk and memory);
            ``("collector", "traj_ids")`` is always kept.
        device: where samples are sent.
        resume: reload the storage and metadata found in ``directory``.

    Examples:
        >>> import tempfile
        >>> replay = SequenceReplay(tempfile.mkdtemp(), 100, 2, 3, keys=["obs"], device="cpu")
        >>> data = TensorDict({"obs": torch.arange(10.0), TRAJ_KEY: torch.zeros(10, dtype=torch.long)}, [10])
        >>> replay.extend(data)
        >>> sample = replay.sample()
        >>> sample.shape, bool((sample["obs"].diff(dim=1) == 1).all())
        (torch.Size([2, 3]), True)
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        capacity: int,
        batch_size: int,
        sequence_length: int,
        keys: Sequence[NestedKey],
        device: torch.device | str = "cpu",
        resume: bool = False,
    ):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.batch_size = batch_size
        self.sequence_length = sequence_length
        self.keys = list(dict.fromkeys([*keys, TRAJ_KEY]))
        self.device = torch.device(device)
        self.storage_dir = self.directory / "storage"
        storage = LazyMemmapStorage(capacity, scratch_dir=self.storage_dir, existsok=True)
        self.buffer = TensorDictReplayBuffer(
            storage=storage,
            # init_key=None: keep the stored "is_init" (true episode starts only). TorchRL's
            # default marks every slice start, which makes the RSSM rollout discard the
            # stored acting state and the first action of every sequence.
            sampler=SliceSampler(
                slice_len=sequence_length, traj_key=TRAJ_KEY, strict_length=True, init_key=None
            ),
            batch_size=batch_size * sequence_length,
        )
        self.traj_offset = 0
        #: caller's counters saved with the metadata (see :meth:`save`).
        self.extra: dict = {}
        if resume:
            self._load()

    @property
    def metadata_path(self) -> Path:
        return self.directory / "replay_state.json"

    def __len__(self) -> int:
        return len(self.buffer)

    def extend(self, batch: TensorDictBase) -> None:
        """Adds collected transitions (any batch shape; flattened in storage order)."""
        missing = [key for key in self.keys if key not in batch.keys(True)]
        if missing:
            raise ValueError(f"Collected data lacks the replay entries {missing}.")
        data = batch.select(*self.keys).reshape(-1).to("cpu")
        if self.traj_offset:
            data.set(TRAJ_KEY, data.get(TRAJ_KEY) + self.traj_offset)
        self.buffer.extend(data)

    def sample(self) -> TensorDict:
        """A ``(batch_size, sequence_length)`` batch of sequences on :attr:`device`.

        The storage indices of its steps are kept as :attr:`last_index` (for
        :meth:`refresh_states`).
        """
        sample = self.buffer.sample()
        sample = sample.reshape(self.batch_size, self.sequence_length)
        #: ``(batch_size, sequence_length)`` storage indices of the last sample.
        self.last_index = sample.get("index").reshape(self.batch_size, self.sequence_length)
        return sample.exclude("index", TRAJ_KEY).to(self.device, non_blocking=True)

    def refresh_states(
        self, context: TensorDictBase, index: torch.Tensor, keys: Sequence[NestedKey]
    ) -> int:
        """Writes fresher latent states back into the stored transitions (DreamerV3's replay context).

        After an update, ``context[:, t]`` is the world model's posterior for the image
        after step ``t`` of each sampled sequence, i.e. the state the next stored step
        starts from: it replaces that step's stored ``keys`` (``"state"``, ``"belief"``),
        written when the step was collected by an older model. The sequences' first steps
        keep theirs; steps of a sequence are consecutive in the storage (one trajectory).

        Args:
            context: ``(B, T)`` with ``keys`` (e.g. the stepper's ``"replay_context"``).
            index: ``(B, T)`` storage indices of the sample (:attr:`last_index`).
            keys: the entries to write.

        Returns:
            How many stored steps were refreshed.
        """
        if context.shape[:2] != index.shape[:2]:
            raise ValueError(
                f"context has batch shape {tuple(context.shape)}, the sample's index "
                f"{tuple(index.shape)}."
            )
        targets = index[:, 1:].reshape(-1)
        stored = self.buffer.storage._storage
        for key in keys:
            values = context.get(key)[:, :-1].reshape(-1, *context.get(key).shape[2:])
            stored.get(key)[targets] = values.detach().to("cpu", stored.get(key).dtype)
        return targets.numel()

    def can_sample(self) -> bool:
        """Whether some trajectory is long enough for one sequence."""
        if len(self) < self.sequence_length:
            return False
        ids = self.buffer.storage[: len(self)].get(TRAJ_KEY)
        _, counts = torch.unique_consecutive(ids, return_counts=True)
        return bool((counts >= self.sequence_length).any())

    def save(self, extra: dict | None = None) -> None:
        """Records how much of the storage is valid (atomically; the data is already on disk).

        Args:
            extra: JSON-serialisable counters saved with it (restored as :attr:`extra`).
        """
        storage = self.buffer.storage
        if not storage.initialized:
            return
        # Writes to the memory-mapped files are in the kernel's page cache: they reach the
        # files even if this process is killed, so there is nothing to flush here.
        state = {
            "len": len(storage),
            "cursor": int(self.buffer._writer._cursor),
            "max_traj_id": int(storage[: len(storage)].get(TRAJ_KEY).max()),
            "keys": [list(k) if isinstance(k, tuple) else k for k in self.keys],
            "extra": extra or {},
        }
        self.extra = state["extra"]
        tmp = self.metadata_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.metadata_path)

    def _load(self) -> None:
        if not self.metadata_path.exists():
            return
        state = json.loads(self.metadata_path.read_text())
        self.extra = state.get("extra", {})
        if state["len"] == 0:
            return
        storage = self.buffer.storage
        storage._storage = TensorDict.load_memmap(self.storage_dir)
        storage.initialized = True
        storage._len = state["len"]
        self.buffer._writer._cursor = state["cursor"]
        self.traj_offset = state["max_traj_id"] + 1
