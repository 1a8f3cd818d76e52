"""Image panels of the PSP and SD papers, one row per frame.

* :func:`reconstruction_panel` -- true | reconstruction | difference | PSP loss weight
  (PSP Figs. 5 and 7).
* :func:`sd_mask_panel` -- true | segmenter mask | target ``x * m`` | reconstruction |
  predicted mask | selective-L2 filter (SD Fig. 3a).

Panels are ``uint8 (h, w, 3)`` numpy images composed pixel by pixel (nearest-neighbour
upscaling, exact colours), with a strip of column titles rendered by matplotlib's Agg
canvas on top (no ``pyplot``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from torchrl_psp.figures.frames import channels_last, to_numpy, to_uint8, upscale
from torchrl_psp.figures.images import image_grid

if TYPE_CHECKING:
    import torch

__all__ = [
    "DIFF_CMAP",
    "MASK_CMAP",
    "TITLE_HEIGHT",
    "WEIGHT_CMAP",
    "reconstruction_panel",
    "sd_mask_panel",
]

#: Colour maps of the panels: signed difference (diverging, light grey at 0), loss
#: weight (sequential, luminance increasing with the weight), masks (black = 0, white = 1).
DIFF_CMAP = "coolwarm"
WEIGHT_CMAP = "viridis"
MASK_CMAP = "gray"
#: Height in pixels of the title strip above a panel.
TITLE_HEIGHT = 20


def _images(x: Any, name: str) -> np.ndarray:
    """``(K, 3, H, W)`` / ``(K, H, W, 3)`` (or one frame), uint8 or float -> float (K, H, W, 3)
    on the [0, 1] scale, not clipped."""
    array = channels_last(x, name, "(K, 3, H, W) or (K, H, W, 3)")
    if array.shape[-1] != 3:
        raise ValueError(f"{name} must have 3 colour channels, got shape {array.shape}.")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    return array.astype(np.float32)


def _maps(x: Any, name: str) -> np.ndarray:
    """``(K, H, W)`` (or ``(K, 1, H, W)``, or one map) bool/float -> float (K, H, W)."""
    array = to_numpy(x)
    if array.ndim == 4 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(f"{name} must be (K, H, W), got {array.shape}.")
    return array.astype(np.float32)


def _colormap(values: np.ndarray, cmap: str) -> np.ndarray:
    """Values in [0, 1] (clipped) -> uint8 RGB through a matplotlib colour map."""
    import matplotlib

    rgba = matplotlib.colormaps[cmap](np.clip(values, 0.0, 1.0))
    return to_uint8(rgba[..., :3])


def _title_strip(title: str, width: int, height: int = TITLE_HEIGHT) -> np.ndarray:
    """A white ``uint8 (height, width, 3)`` strip with ``title`` centred, shrunk to fit."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    dpi = 100
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor="white")
    canvas = FigureCanvasAgg(fig)
    fontsize = 9.0
    text = fig.text(0.5, 0.5, title, ha="center", va="center", fontsize=fontsize)
    text_width = text.get_window_extent(renderer=canvas.get_renderer()).width
    if text_width > width - 4:
        text.set_fontsize(max(4.0, fontsize * (width - 4) / text_width))
    canvas.draw()
    strip = np.asarray(canvas.buffer_rgba())[..., :3]
    out = np.full((height, width, 3), 255, dtype=np.uint8)
    h, w = min(height, strip.shape[0]), min(width, strip.shape[1])
    out[:h, :w] = strip[:h, :w]
    return out


def _compose(
    columns: Sequence[tuple[str, np.ndarray]], *, scale: int, pad: int, titles: bool
) -> np.ndarray:
    """Tiles columns of ``uint8 (R, H, W, 3)`` images (one tile per row), upscaled by ``scale``
    (nearest), ``pad`` white pixels apart (:func:`~torchrl_psp.figures.images.image_grid`),
    under a strip of column titles."""
    if scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}.")
    big = [upscale(tiles, scale) for _, tiles in columns]
    panel = image_grid([list(row) for row in zip(*big)], pad=pad)
    if not titles:
        return panel
    tile_w = big[0].shape[2]
    strip = np.full((TITLE_HEIGHT, panel.shape[1], 3), 255, np.uint8)
    for c, (title, _) in enumerate(columns):
        x = c * (tile_w + pad)
        strip[:, x : x + tile_w] = _title_strip(title, tile_w)
    return np.concatenate([strip, panel])


def _check_frames(reference: np.ndarray, other: np.ndarray, name: str) -> None:
    if other.shape[0] < reference.shape[0] or other.shape[1:3] != reference.shape[1:3]:
        raise ValueError(
            f"{name} has shape {other.shape}, which does not match the images "
            f"({reference.shape[0]} frames of {reference.shape[1]}x{reference.shape[2]})."
        )


def _fmt(value: float) -> str:
    return f"{value:.2g}" if value < 10 else f"{value:.0f}"


def reconstruction_panel(
    images: torch.Tensor | np.ndarray,
    reconstructions: torch.Tensor | np.ndarray,
    weights: torch.Tensor | np.ndarray | None = None,
    *,
    max_rows: int = 4,
    scale: int = 2,
    pad: int = 2,
    titles: bool = True,
    diff_range: float | None = None,
    weight_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """PSP Figs. 5/7: true | reconstruction | difference | loss weight, one row per frame.

    Args:
        images: true frames ``(K, 3, H, W)`` (channels-last ``(K, H, W, 3)`` is accepted
            too), ``uint8`` in 0..255 or float on the [0, 1] scale.
        reconstructions: decoder outputs, same shape and conventions; values outside
            [0, 1] are clipped for display.
        weights: PSP loss weights ``(K, H, W)``; ``None`` omits the column.
        max_rows: the first ``min(K, max_rows)`` frames are shown.
        scale: integer nearest-neighbour upscaling of every tile.
        pad: white pixels between tiles.
        titles: draw the column titles above the tiles.
        diff_range: the difference ``true - reconstruction`` (on the [0, 1] scale, with
            the reconstruction *unclipped*: the error the loss sees; averaged over the
            colour channels) is drawn with the
            diverging map :data:`DIFF_CMAP` over ``[-diff_range, diff_range]``, 0 in the
            middle (light grey). Default: the largest ``|difference|`` of the shown rows
            (1 if they are all exact), written in the column title.
        weight_range: ``(low, high)`` of the sequential map :data:`WEIGHT_CMAP`; default
            ``(0, largest shown weight)``, written in the column title.

    Returns:
        ``uint8 (h, w, 3)``: ``h = TITLE_HEIGHT * titles + R * (H * scale + pad) - pad``
        and ``w = C * (W * scale + pad) - pad`` for ``R`` rows and ``C`` columns.

    Examples:
        >>> import torch
        >>> images = torch.randint(0, 256, (3, 3, 8, 8), dtype=torch.uint8)
        >>> reconstructions = torch.rand(3, 3, 8, 8)
        >>> reconstruction_panel(images, reconstructions, torch.rand(3, 8, 8)).shape
        (72, 70, 3)
        >>> reconstruction_panel(images, reconstructions, max_rows=2, titles=False).shape
        (34, 52, 3)
    """
    true = _images(images, "images")
    recon = _images(reconstructions, "reconstructions")
    _check_frames(true, recon, "reconstructions")
    rows = max(1, min(true.shape[0], max_rows))
    true, recon = true[:rows], recon[:rows]

    difference = (true - recon).mean(axis=-1)  # signed, per pixel, averaged over RGB
    span = float(np.abs(difference).max()) if diff_range is None else float(diff_range)
    if not span > 0:
        span = 1.0
    columns = [
        ("true", to_uint8(true)),
        ("reconstruction", to_uint8(recon)),
        (f"difference (±{_fmt(span)})", _colormap(0.5 + 0.5 * difference / span, DIFF_CMAP)),
    ]
    if weights is not None:
        weight = _maps(weights, "weights")
        _check_frames(true, weight, "weights")
        weight = weight[:rows]
        low, high = (0.0, float(weight.max())) if weight_range is None else weight_range
        if not high > low:
            high = low + 1.0
        columns.append(
            (
                f"loss weight ({_fmt(low)}-{_fmt(high)})",
                _colormap((weight - low) / (high - low), WEIGHT_CMAP),
            )
        )
    return _compose(columns, scale=scale, pad=pad, titles=titles)


def sd_mask_panel(
    images: torch.Tensor | np.ndarray,
    targets: torch.Tensor | np.ndarray,
    reconstructions: torch.Tensor | np.ndarray,
    predicted_masks: torch.Tensor | np.ndarray | None = None,
    filters: torch.Tensor | np.ndarray | None = None,
    segmenter_masks: torch.Tensor | np.ndarray | None = None,
    *,
    max_rows: int = 4,
    scale: int = 2,
    pad: int = 2,
    titles: bool = True,
) -> np.ndarray:
    """Segmentation Dreamer: what the world model is asked to reconstruct, one row per frame.

    Columns: true | segmenter mask | target ``x * m`` | reconstruction | predicted mask |
    selective-L2 filter; the optional ones are omitted when ``None``.

    Args:
        images: true frames ``(K, 3, H, W)`` (or channels-last), ``uint8`` or float [0, 1].
        targets: reconstruction targets ``x * m`` (same conventions).
        reconstructions: decoder outputs (same conventions; clipped for display).
        predicted_masks: the mask head's probabilities ``sigmoid(logit)`` ``(K, H, W)``,
            drawn in grey levels (black 0, white 1).
        filters: the selective-L2 filter ``(K, H, W)`` bool (white: pixel counted in the L2).
        segmenter_masks: the segmenter's task mask ``(K, H, W)`` bool (white: task).
        max_rows, scale, pad, titles: as in :func:`reconstruction_panel`.

    Returns:
        ``uint8 (h, w, 3)``, sized as in :func:`reconstruction_panel`.

    Examples:
        >>> import torch
        >>> images = torch.rand(2, 3, 8, 8)
        >>> masks = torch.rand(2, 8, 8) > 0.5
        >>> sd_mask_panel(images, images * masks[:, None], images, segmenter_masks=masks,
        ...               titles=False).shape
        (34, 70, 3)
    """
    true = _images(images, "images")
    rows = max(1, min(true.shape[0], max_rows))
    columns: list[tuple[str, np.ndarray]] = [("true", to_uint8(true[:rows]))]

    def image_column(title: str, value: Any, name: str) -> None:
        array = _images(value, name)
        _check_frames(true, array, name)
        columns.append((title, to_uint8(array[:rows])))

    def mask_column(title: str, value: Any, name: str) -> None:
        if value is None:
            return
        array = _maps(value, name)
        _check_frames(true, array, name)
        columns.append((title, _colormap(array[:rows], MASK_CMAP)))

    mask_column("segmenter mask", segmenter_masks, "segmenter_masks")
    image_column("target x*m", targets, "targets")
    image_column("reconstruction", reconstructions, "reconstructions")
    mask_column("predicted mask", predicted_masks, "predicted_masks")
    mask_column("L2 filter", filters, "filters")
    return _compose(columns, scale=scale, pad=pad, titles=titles)
