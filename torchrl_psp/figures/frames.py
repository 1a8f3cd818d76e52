"""Tensors and arrays of frames as numpy images, for every picture of the package.

:func:`to_numpy` is the one conversion of a tensor or an array-like to numpy,
:func:`to_uint8` the one of values on the [0, 1] scale to bytes, :func:`upscale` the one
nearest-neighbour enlargement. Nothing here imports torch: a tensor is recognised by its
``detach`` method.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["channels_last", "to_numpy", "to_uint8", "upscale"]


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


def upscale(array: np.ndarray, factor: int) -> np.ndarray:
    """Images ``(..., H, W, C)`` enlarged ``factor`` times by nearest neighbour (each pixel
    becomes a ``factor x factor`` block); ``factor <= 1`` returns the array as it is.

    Examples:
        >>> upscale(np.arange(4).reshape(2, 2, 1), 2)[..., 0].tolist()
        [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
    """
    if factor <= 1:
        return array
    return array.repeat(factor, axis=-3).repeat(factor, axis=-2)
