"""Ground-truth segmentation of DeepMind Control frames from MuJoCo's segmentation render."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from tensordict import TensorDictBase
from torchrl.data import Composite

from torchrl_psp.envs._base import PhysicsTransform
from torchrl_psp.keys import (
    PIXELS_KEY,
    SEGMENTS_DTYPE,
    SEGMENTS_KEY,
    TASK_MASK_KEY,
    segments_spec,
    task_mask_spec,
)

__all__ = ["GroundTruthSegmentation", "DEFAULT_TASK_GEOMS", "task_mask_from_segments"]

#: World-body geoms that belong to the task (DeepMind Control puts reacher's target on
#: the world body, so "bodies other than the world" alone would miss it).
DEFAULT_TASK_GEOMS = ("target",)

_MJOBJ_GEOM = 5  # mujoco.mjtObj.mjOBJ_GEOM


class _Lookup:
    """Per-model tables mapping ``geom id + 1`` (0 = no geom) to segment id and task flag."""

    def __init__(self, model: Any, level: str, task_geoms: Sequence[str]):
        geom_body = np.asarray(model.geom_bodyid)
        ngeom = int(model.ngeom)
        if level == "geom":
            ids = np.arange(1, ngeom + 1)
            self.max_id = ngeom
        else:
            ids = geom_body + 1
            self.max_id = int(model.nbody)
        names = {model.id2name(i, "geom") for i in range(ngeom)}
        extra = [model.name2id(name, "geom") for name in task_geoms if name in names]
        task = geom_body != 0
        task[extra] = True
        self.segment_ids = np.concatenate([[0], ids]).astype(np.int16)
        self.task = np.concatenate([[False], task])

    def apply(self, segmentation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        objid, objtype = segmentation[..., 0], segmentation[..., 1]
        index = np.where(objtype == _MJOBJ_GEOM, objid + 1, 0)
        return self.segment_ids[index], self.task[index]


def task_mask_from_segments(
    segments: torch.Tensor, model: Any, task_geoms: Sequence[str] = DEFAULT_TASK_GEOMS
) -> torch.Tensor:
    """The ``"task_mask"`` that :class:`GroundTruthSegmentation` writes, from stored geom-level ``"segments"``.

    For data recorded without the mask (a replay that keeps only ``"segments"``).

    Args:
        segments: geom-level segment ids (``level="geom"``, the default), any shape.
        model: the MuJoCo model the ids come from (``physics.model`` of the task).
        task_geoms: as in :class:`GroundTruthSegmentation`.

    Examples:
        >>> from dm_control import suite
        >>> model = suite.load("cartpole", "swingup").physics.model
        >>> cart = model.name2id("cart", "geom") + 1
        >>> task_mask_from_segments(torch.tensor([0, 1, cart]), model).tolist()
        [False, False, True]
    """
    table = torch.from_numpy(_Lookup(model, "geom", task_geoms).task)
    ids = segments.long()
    if ids.numel() and (ids.min() < 0 or ids.max() >= len(table)):
        raise ValueError(
            f"segments hold ids {int(ids.min())}..{int(ids.max())}; this model's geom-level "
            f"ids are 0..{len(table) - 1}."
        )
    return table[ids]


class GroundTruthSegmentation(PhysicsTransform):
    """Writes ground-truth ``"segments"`` and ``"task_mask"`` from MuJoCo's segmentation render.

    The segmentation is rendered with the same camera and size as the parent's pixels
    (SPEC §1): one integer id per geom (``level="geom"``, id = geom id + 1) or per body
    (``level="body"``, id = body id + 1, the world body's geoms such as the floor get
    id 1), and ``0`` for background (skybox) and non-geom objects. ``"task_mask"`` is
    ``True`` on pixels of geoms of bodies other than the world body (the agent and task
    objects), plus world-body geoms named in ``task_geoms`` (reacher's target).

    Several transforms asking for the segmentation of the same state share one render
    (see :class:`~torchrl_psp.envs.PhysicsRenderer`).

    Args:
        level: ``"geom"`` (default) or ``"body"``.
        task_geoms: names of world-body geoms that are task objects. Defaults to
            :data:`DEFAULT_TASK_GEOMS`.
        segments_key: output key of the segment ids. Defaults to ``"segments"``.
        task_mask_key: output key of the task mask. Defaults to ``"task_mask"``.
        pixels_key: the pixel entry whose size and camera are matched.
        image_size: explicit ``(height, width)``; ``None`` matches ``pixels_key``.
        camera_id: explicit camera; ``None`` matches the camera of ``pixels_key``.

    Examples:
        >>> from dm_control import suite
        >>> from torchrl.envs import DMControlWrapper, TransformedEnv
        >>> base = DMControlWrapper(
        ...     suite.load("reacher", "easy"), from_pixels=True, pixels_only=True,
        ...     render_kwargs={"height": 64, "width": 64, "camera_id": 0},
        ... )
        >>> env = TransformedEnv(base, GroundTruthSegmentation())
        >>> td = env.reset()
        >>> td["segments"].shape, td["segments"].dtype, td["task_mask"].dtype
        (torch.Size([64, 64]), torch.int16, torch.bool)
        >>> bool(td["task_mask"].any())  # the arm and the target
        True
    """

    def __init__(
        self,
        level: str = "geom",
        task_geoms: Sequence[str] = DEFAULT_TASK_GEOMS,
        segments_key: str = SEGMENTS_KEY,
        task_mask_key: str = TASK_MASK_KEY,
        pixels_key: str = PIXELS_KEY,
        image_size: int | tuple[int, int] | None = None,
        camera_id: int | None = None,
    ):
        if level not in ("geom", "body"):
            raise ValueError(f"level must be 'geom' or 'body', got {level!r}.")
        super().__init__(
            in_keys=[],
            out_keys=[segments_key, task_mask_key],
            pixels_key=pixels_key,
            image_size=image_size,
            camera_id=camera_id,
        )
        self.level = level
        self.task_geoms = tuple(task_geoms)
        self.__dict__["_lookups"] = None

    def set_container(self, container: Any) -> None:
        self.__dict__["_lookups"] = None
        super().set_container(container)

    def _get_lookups(self) -> list[_Lookup]:
        lookups = self.__dict__["_lookups"]
        if lookups is None:
            lookups = [
                _Lookup(r.physics.model, self.level, self.task_geoms) for r in self.renderers()
            ]
            self.__dict__["_lookups"] = lookups
        return lookups

    def _call(self, next_tensordict: TensorDictBase) -> TensorDictBase:
        batch_shape = next_tensordict.batch_size
        segmentation = self._render_segmentation(batch_shape).numpy()
        flat = segmentation.reshape(-1, *segmentation.shape[-3:])
        segments = np.empty(flat.shape[:-1], dtype=np.int16)
        task_mask = np.empty(flat.shape[:-1], dtype=bool)
        for i, lookup in enumerate(self._get_lookups()):
            segments[i], task_mask[i] = lookup.apply(flat[i])
        shape = segmentation.shape[:-1]
        segments_key, task_mask_key = self.out_keys
        segments = torch.from_numpy(segments.reshape(shape)).to(SEGMENTS_DTYPE)
        next_tensordict.set(segments_key, segments)
        next_tensordict.set(task_mask_key, torch.from_numpy(task_mask.reshape(shape)))
        return next_tensordict

    def transform_observation_spec(self, observation_spec: Composite) -> Composite:
        height, width = self._size_from_spec(observation_spec)
        shape = (*observation_spec.shape, height, width)
        max_id = max(lookup.max_id for lookup in self._get_lookups())
        segments_key, task_mask_key = self.out_keys
        observation_spec[segments_key] = segments_spec(shape, max_id, observation_spec.device)
        observation_spec[task_mask_key] = task_mask_spec(shape, observation_spec.device)
        return observation_spec

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        raise RuntimeError(
            "GroundTruthSegmentation renders from a live MuJoCo physics: it works inside an env, "
            "not on stored data. Store 'segments' and 'task_mask' when collecting instead."
        )


assert SEGMENTS_DTYPE == torch.int16  # the lookup tables above are int16
