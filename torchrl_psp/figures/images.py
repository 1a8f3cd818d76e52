"""Turning frames, segments and masks into pictures, tiling them and writing them.

:func:`image_grid` is the one tiler of the package: the panels
(:mod:`~torchrl_psp.figures.panels`) lay out their tiles with it too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from torchrl_psp.figures.frames import to_numpy, upscale

if TYPE_CHECKING:
    import torch

__all__ = ["colorize_segments", "mask_to_rgb", "image_grid", "save_image"]


def colorize_segments(segments: torch.Tensor | np.ndarray, seed: int = 0) -> np.ndarray:
    """Maps segment ids ``(..., H, W)`` to colours ``uint8 (..., H, W, 3)``; id 0 is black.

    Examples:
        >>> colorize_segments(np.array([[0, 1], [2, 1]])).shape
        (2, 2, 3)
    """
    ids = to_numpy(segments).astype(np.int64)
    palette = np.random.default_rng(seed).integers(40, 256, size=(int(ids.max(initial=0)) + 1, 3))
    palette[0] = 0
    return palette[ids].astype(np.uint8)


def mask_to_rgb(mask: torch.Tensor | np.ndarray) -> np.ndarray:
    """Boolean mask ``(..., H, W)`` to a white-on-black ``uint8 (..., H, W, 3)`` image."""
    return np.repeat((to_numpy(mask).astype(bool) * 255).astype(np.uint8)[..., None], 3, -1)


def image_grid(
    rows: Sequence[Sequence[torch.Tensor | np.ndarray]], scale: int = 1, pad: int = 2
) -> np.ndarray:
    """Tiles rows of ``uint8 (H, W, 3)`` images into one picture, ``pad`` white pixels apart.

    Every cell has the size of the largest image (smaller ones sit at its top left, on
    white); with ``scale > 1`` the whole picture, padding included, is enlarged by nearest
    neighbour.

    Examples:
        >>> tile = np.zeros((4, 4, 3), dtype=np.uint8)
        >>> image_grid([[tile, tile], [tile, tile]], pad=1).shape
        (9, 9, 3)
        >>> image_grid([[tile, tile]], scale=2, pad=1).shape
        (8, 18, 3)
    """
    factor = max(1, scale)
    rows = [[upscale(to_numpy(image), factor) for image in row] for row in rows]
    pad *= factor
    height = max(image.shape[0] for row in rows for image in row)
    width = max(image.shape[1] for row in rows for image in row)
    columns = max(len(row) for row in rows)
    grid = np.full(
        (len(rows) * (height + pad) - pad, columns * (width + pad) - pad, 3), 255, dtype=np.uint8
    )
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            y, x = r * (height + pad), c * (width + pad)
            grid[y : y + image.shape[0], x : x + image.shape[1]] = image
    return grid


def save_image(path: str | Path, image: np.ndarray) -> Path:
    """Writes a ``uint8 (H, W, 3)`` image (PNG, JPEG, ... by extension); returns the path."""
    import imageio.v3 as iio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, image)
    return path
