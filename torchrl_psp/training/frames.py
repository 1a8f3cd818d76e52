"""Tensors and arrays of frames as numpy images, for the panels and the videos.

Nothing here imports torch: a tensor is recognised by its ``detach`` method.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["channels_last", "to_numpy", "to_uint8"]


def to_numpy(x: Any) -> np.ndarray:
    """A torch tensor (detached, on the CPU, ``bfloat16`` as ``float32``) or an array-like
    as a numpy array.

    Examples:
        >>> import torch
        >>> to_numpy(torch.ones(2, dtype=torch.bfloat16)).dtype
        dtype('float32')
    """
    if hasattr(x, "detach"):  # a torch tensor, without importing torch here
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":
            x = x.float()
        return x.numpy()
    return np.asarray(x)


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """Values on the [0, 1] scale (clipped) -> ``uint8`` in 0..255 (rounded).

    Examples:
        >>> to_uint8(np.array([-0.5, 0.5, 2.0])).tolist()
        [0, 128, 255]
    """
    return np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)


def channels_last(x: Any, name: str, layout: str) -> np.ndarray:
    """A batch of frames as a numpy ``(K, H, W, C)`` array: one frame ``(H, W, C)`` gets a
    leading axis and channels-first ``(K, 3, H, W)`` is transposed; the values are kept.

    Raises:
        ValueError: ``"<name> must be <layout>, got <shape>."`` when the array (with the
            leading axis added) is not 4-dimensional.

    Examples:
        >>> channels_last(np.zeros((2, 3, 8, 6)), "images", "(K, H, W, 3)").shape
        (2, 8, 6, 3)
        >>> channels_last(np.zeros((8, 6, 3)), "images", "(K, H, W, 3)").shape
        (1, 8, 6, 3)
    """
    array = to_numpy(x)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4:
        raise ValueError(f"{name} must be {layout}, got {array.shape}.")
    if array.shape[1] == 3 and array.shape[-1] != 3:
        array = array.transpose(0, 2, 3, 1)
    return array
