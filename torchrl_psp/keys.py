"""Shared TensorDict keys, dtypes and specs of the project.

Every transform that produces pixels, segments or task masks (ground truth or learned)
uses these names and specs, so that every loss accepts any of them.

* ``"pixels"``: ``uint8`` image of shape ``(*batch, H, W, 3)`` (channels last, as
  DeepMind Control renders it).
* ``"segments"``: integer segment id per pixel, shape ``(*batch, H, W)``, dtype
  :data:`SEGMENTS_DTYPE` (``torch.int16``, to keep replay buffers small); ``0`` means
  background / unassigned, ids ``1..N`` are objects. Ids are only meaningful within one
  image (learned segmenters renumber objects on every frame).
* ``"task_mask"``: ``bool`` of shape ``(*batch, H, W)``, ``True`` on task-relevant pixels
  (the agent and task objects).
"""

from __future__ import annotations

import torch
from torchrl.data import Bounded, Categorical

PIXELS_KEY = "pixels"
SEGMENTS_KEY = "segments"
TASK_MASK_KEY = "task_mask"

#: dtype of the ``"segments"`` entry (up to 32767 segments per image).
SEGMENTS_DTYPE = torch.int16
MAX_SEGMENT_ID = torch.iinfo(SEGMENTS_DTYPE).max


def segments_spec(
    shape: torch.Size | tuple[int, ...],
    max_id: int = MAX_SEGMENT_ID,
    device: torch.device | str | None = None,
) -> Bounded:
    """Spec of a ``"segments"`` entry: ids in ``[0, max_id]`` of dtype :data:`SEGMENTS_DTYPE`.

    Args:
        shape: full shape of the entry, ``(*batch, H, W)``.
        max_id: largest id the producer can write.
        device: device of the spec.

    Examples:
        >>> spec = segments_spec((64, 64), max_id=9)
        >>> spec.dtype, spec.space.high.max().item()
        (torch.int16, 9)
    """
    if not 0 < max_id <= MAX_SEGMENT_ID:
        raise ValueError(f"max_id must be in [1, {MAX_SEGMENT_ID}], got {max_id}.")
    return Bounded(low=0, high=max_id, shape=shape, dtype=SEGMENTS_DTYPE, device=device)


def task_mask_spec(
    shape: torch.Size | tuple[int, ...], device: torch.device | str | None = None
) -> Categorical:
    """Spec of a ``"task_mask"`` entry: a boolean image.

    Examples:
        >>> task_mask_spec((64, 64)).dtype
        torch.bool
    """
    return Categorical(n=2, shape=shape, dtype=torch.bool, device=device)


def check_pixels(pixels: torch.Tensor, key: str = PIXELS_KEY) -> tuple[int, int]:
    """Checks that ``pixels`` is a ``uint8`` ``(*batch, H, W, 3)`` image and returns ``(H, W)``.

    Raises:
        ValueError: naming the key, the shape/dtype found and what was expected.

    Examples:
        >>> check_pixels(torch.zeros(2, 64, 48, 3, dtype=torch.uint8))
        (64, 48)
    """
    if not isinstance(pixels, torch.Tensor):
        raise ValueError(f"Entry {key!r} must be a torch.Tensor, got {type(pixels).__name__}.")
    if pixels.dtype != torch.uint8 or pixels.ndim < 3 or pixels.shape[-1] != 3:
        raise ValueError(
            f"Entry {key!r} must be a uint8 image of shape (*batch, H, W, 3) "
            f"(channels last, as DeepMind Control renders it); got dtype={pixels.dtype} "
            f"and shape={tuple(pixels.shape)}."
        )
    return int(pixels.shape[-3]), int(pixels.shape[-2])
