"""One-shot references ``(image, mask)`` for PerSAM and the colour classifier."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from torchrl_psp.keys import PIXELS_KEY, TASK_MASK_KEY, check_pixels

__all__ = ["check_reference", "reference_from_env"]


def _as_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    return value


def check_reference(image: Any, mask: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Validates a reference and returns it batched: uint8 ``(N, H, W, 3)``, bool ``(N, H, W)``.

    Args:
        image: uint8 ``(H, W, 3)`` or ``(N, H, W, 3)`` (tensor or numpy array).
        mask: ``(H, W)`` or ``(N, H, W)``, bool or 0/1, non-empty in every reference.

    Raises:
        ValueError: naming what is wrong (dtype, shape, empty mask).

    Examples:
        >>> image, mask = check_reference(
        ...     torch.zeros(8, 8, 3, dtype=torch.uint8), torch.ones(8, 8, dtype=torch.bool))
        >>> image.shape, mask.shape
        (torch.Size([1, 8, 8, 3]), torch.Size([1, 8, 8]))
    """
    image, mask = _as_tensor(image), _as_tensor(mask)
    height, width = check_pixels(image, key="reference image")
    if not isinstance(mask, torch.Tensor):
        raise ValueError(f"The reference mask must be a tensor, got {type(mask).__name__}.")
    if mask.shape != image.shape[:-1]:
        raise ValueError(
            f"The reference mask must have shape {tuple(image.shape[:-1])} (the image's without "
            f"channels), got {tuple(mask.shape)}."
        )
    if mask.dtype != torch.bool:
        if mask.is_floating_point() or not ((mask == 0) | (mask == 1)).all():
            raise ValueError(
                f"The reference mask must be bool (or integer 0/1), got dtype {mask.dtype}."
            )
        mask = mask.bool()
    image = image.reshape(-1, height, width, 3)
    mask = mask.reshape(-1, height, width)
    empty = (~mask.flatten(1).any(1)).nonzero().flatten().tolist()
    if empty:
        raise ValueError(
            f"The reference mask is empty (no target pixel) in reference(s) {empty}: a one-shot "
            "reference must show the target."
        )
    return image, mask


def reference_from_env(
    env: Any,
    *,
    pixels_key: str = PIXELS_KEY,
    task_mask_key: str = TASK_MASK_KEY,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Takes a one-shot reference from the reset frame of an env with ground-truth masks.

    This is how Segmentation Dreamer builds its PerSAM-F reference: an observation of a
    state from the initial state distribution, with its ground-truth task mask. ``env``
    is reset once (call ``env.set_seed`` first for a reproducible reference); for a
    batched env the first sub-env's frame is used.

    Args:
        env: a TorchRL env whose reset output holds ``pixels_key`` and ``task_mask_key``,
            e.g. ``torchrl_psp.envs.make_env(domain, task, segmentation="gt")``.
        pixels_key: the image entry.
        task_mask_key: the ground-truth task mask entry.

    Returns:
        ``(image, mask)``: uint8 ``(H, W, 3)`` and bool ``(H, W)``.

    Raises:
        ValueError: the reset output lacks one of the keys, or its mask is empty.
    """
    td = env.reset()
    missing = [k for k in (pixels_key, task_mask_key) if k not in td.keys(True)]
    if missing:
        raise ValueError(
            f"reference_from_env needs {missing} in the env's reset output (found "
            f"{sorted(map(str, td.keys(True, True)))}); build the env with ground-truth "
            "segmentation, e.g. make_env(domain, task, segmentation='gt')."
        )
    image, mask = td.get(pixels_key), td.get(task_mask_key)
    image = image.reshape(-1, *image.shape[-3:])[0].cpu()
    mask = mask.reshape(-1, *mask.shape[-2:])[0].cpu()
    check_reference(image, mask)
    return image, mask.bool()
