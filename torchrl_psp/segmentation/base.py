"""Base class of the segmentation transforms: keys, specs, reset, batching and caching."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from tensordict import TensorDictBase
from torchrl.data import TensorSpec
from torchrl.envs.transforms import Transform

from torchrl_psp.keys import (
    MAX_SEGMENT_ID,
    PIXELS_KEY,
    SEGMENTS_DTYPE,
    SEGMENTS_KEY,
    TASK_MASK_KEY,
    check_pixels,
    segments_spec,
    task_mask_spec,
)
from torchrl_psp.segmentation.cache import FrameCache

__all__ = ["SegmentationTransform"]

_OUTPUTS = {"segments": (SEGMENTS_KEY, SEGMENTS_DTYPE), "task_mask": (TASK_MASK_KEY, torch.bool)}


class SegmentationTransform(Transform):
    """Writes a per-frame segmentation of ``"pixels"``: ``"segments"`` or ``"task_mask"``.

    Subclasses set :attr:`output` (``"segments"`` or ``"task_mask"``) and implement
    :meth:`_segment` for a batch of frames; this class does the rest:

    * any batch shape ``(*batch, H, W, 3)``, in envs (step and reset), in batched envs and
      collectors, and on stored data (:meth:`forward`, e.g. as a replay-buffer transform;
      use ``in_keys=["pixels", ("next", "pixels")]`` and matching ``out_keys`` there);
    * frames are processed ``frames_per_batch`` at a time;
    * an LRU :class:`~torchrl_psp.segmentation.FrameCache` keyed on the frame bytes:
      repeated frames (also within one batch) are computed once;
    * the output spec (:func:`~torchrl_psp.keys.segments_spec` or
      :func:`~torchrl_psp.keys.task_mask_spec`) on the pixels' device, with the output
      on the pixels' device.

    Args:
        in_keys: pixel entries, uint8 ``(*batch, H, W, 3)``. Defaults to ``["pixels"]``.
        out_keys: one output entry per input. Defaults to ``[output]``.
        frames_per_batch: frames per model call.
        cache_size: frames kept in the cache (``0`` disables it).
    """

    #: ``"segments"`` or ``"task_mask"``.
    output: str = "segments"

    def __init__(
        self,
        in_keys: Sequence | None = None,
        out_keys: Sequence | None = None,
        *,
        frames_per_batch: int = 16,
        cache_size: int = 0,
    ):
        default_out, self._dtype = _OUTPUTS[self.output]
        in_keys = [PIXELS_KEY] if in_keys is None else list(in_keys)
        out_keys = [default_out] if out_keys is None else list(out_keys)
        if len(in_keys) != len(out_keys):
            raise ValueError(
                f"in_keys and out_keys must have the same length, got {in_keys} and {out_keys}."
            )
        if frames_per_batch < 1:
            raise ValueError(f"frames_per_batch must be >= 1, got {frames_per_batch}.")
        super().__init__(in_keys=in_keys, out_keys=out_keys)
        self.frames_per_batch = int(frames_per_batch)
        self.cache = FrameCache(cache_size)

    # -- to implement -------------------------------------------------------------------
    def _segment(self, frames: torch.Tensor) -> torch.Tensor:
        """Segments uint8 frames ``(n, H, W, 3)`` (``n <= frames_per_batch``) into ``(n, H, W)``."""
        raise NotImplementedError

    def max_segment_id(self, height: int, width: int) -> int:
        """Largest id written for ``height x width`` frames (``"segments"`` outputs)."""
        return min(height * width, MAX_SEGMENT_ID)

    # -- frames -------------------------------------------------------------------------
    def segment(self, pixels: torch.Tensor, key: str = PIXELS_KEY) -> torch.Tensor:
        """Output for uint8 ``pixels`` of shape ``(*batch, H, W, 3)``: ``(*batch, H, W)``.

        Args:
            pixels: the frames.
            key: the entry name used in error messages.
        """
        height, width = check_pixels(pixels, key)
        batch = pixels.shape[:-3]
        flat = pixels.reshape(-1, height, width, 3)
        results: list[torch.Tensor | None] = [None] * flat.shape[0]
        pending: OrderedDict[object, list[int]] = OrderedDict()
        if self.cache.enabled:
            frames = flat.detach().cpu().numpy()
            for i, frame in enumerate(frames):
                k = self.cache.key(frame)
                if k in pending:  # repeated within this batch: computed once
                    pending[k].append(i)
                    self.cache.hits += 1
                    continue
                hit = self.cache.get(k)
                if hit is None:
                    pending[k] = [i]
                else:
                    results[i] = hit
        else:
            pending = OrderedDict((i, [i]) for i in range(flat.shape[0]))
        todo = list(pending.items())
        for start in range(0, len(todo), self.frames_per_batch):
            chunk = todo[start : start + self.frames_per_batch]
            index = torch.tensor([rows[0] for _, rows in chunk], device=flat.device)
            out = self._segment(flat[index]).to(self._dtype).cpu()
            for (k, rows), value in zip(chunk, out):
                if self.cache.enabled:
                    self.cache.put(k, value)
                for row in rows:
                    results[row] = value
        if not results:
            return torch.zeros(*batch, height, width, dtype=self._dtype, device=pixels.device)
        return torch.stack(results).reshape(*batch, height, width).to(pixels.device)

    # -- TorchRL plumbing -----------------------------------------------------------------
    def _apply_to_tensordict(self, tensordict: TensorDictBase) -> TensorDictBase:
        for in_key, out_key in zip(self.in_keys, self.out_keys):
            pixels = tensordict.get(in_key, None)
            if pixels is None:
                if not self.missing_tolerance:
                    raise KeyError(
                        f"{type(self).__name__}: entry {in_key!r} not found in {tensordict}."
                    )
                continue
            tensordict.set(out_key, self.segment(pixels, key=str(in_key)))
        return tensordict

    def _call(self, next_tensordict: TensorDictBase) -> TensorDictBase:
        return self._apply_to_tensordict(next_tensordict)

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        """Segments stored data (e.g. a replay-buffer sample) in place and returns it."""
        return self._apply_to_tensordict(tensordict)

    def _reset(
        self, tensordict: TensorDictBase, tensordict_reset: TensorDictBase
    ) -> TensorDictBase:
        # Tolerate a reset output without pixels (TorchRL's rule for transforms on reset).
        tolerant = self.missing_tolerance
        self.set_missing_tolerance(True)
        try:
            return self._call(tensordict_reset)
        finally:
            self.set_missing_tolerance(tolerant)

    def _output_spec(self, pixels_spec: TensorSpec) -> TensorSpec:
        shape = pixels_spec.shape[:-1]
        if self.output == "task_mask":
            return task_mask_spec(shape, device=pixels_spec.device)
        max_id = self.max_segment_id(int(shape[-2]), int(shape[-1]))
        return segments_spec(shape, max_id, device=pixels_spec.device)

    def transform_observation_spec(self, observation_spec: TensorSpec) -> TensorSpec:
        for in_key, out_key in zip(self.in_keys, self.out_keys):
            if in_key not in observation_spec.keys(True):
                raise ValueError(
                    f"{type(self).__name__} reads {in_key!r}, which is not in the observation "
                    f"spec (keys: {sorted(map(str, observation_spec.keys(True, True)))})."
                )
            spec = observation_spec[in_key]
            if spec.dtype != torch.uint8 or len(spec.shape) < 3 or spec.shape[-1] != 3:
                raise ValueError(
                    f"{type(self).__name__} needs {in_key!r} as uint8 (*batch, H, W, 3) "
                    f"(channels last, before ToTensorImage); its spec has dtype={spec.dtype} "
                    f"and shape={tuple(spec.shape)}."
                )
            observation_spec[out_key] = self._output_spec(spec)
        return observation_spec

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(in_keys={self.in_keys}, out_keys={self.out_keys}, "
            f"cache={self.cache})"
        )
