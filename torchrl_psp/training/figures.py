"""Figures of the PSP and SD papers: image panels, learning curves and videos.

* :func:`reconstruction_panel` -- true | reconstruction | difference | PSP loss weight, one
  row per frame (PSP Figs. 5 and 7).
* :func:`sd_mask_panel` -- true | segmenter mask | target ``x * m`` | reconstruction |
  predicted mask | selective-L2 filter, one row per frame (SD Fig. 3a).
* :func:`learning_curve_figure` -- evaluation return against environment steps, mean and
  standard error (or standard deviation) across seeds, one line per variant (PSP Figs.
  3 and 6, SD Fig. 2); :func:`aggregate_seeds` computes the statistics it plots and
  :func:`plot_learning_curves` draws them into an existing axes.
* :func:`save_figure` -- PNG (and PDF); :func:`write_video` -- mp4 or gif of frames.

Panels are ``uint8 (h, w, 3)`` numpy images composed pixel by pixel (nearest-neighbour
upscaling, exact colours), with a strip of column titles rendered by matplotlib's Agg
canvas on top. Figures are :class:`matplotlib.figure.Figure` objects created without
``pyplot``: no window, no global figure state, nothing to close.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "CurveStats",
    "aggregate_seeds",
    "learning_curve_figure",
    "plot_learning_curves",
    "reconstruction_panel",
    "save_figure",
    "sd_mask_panel",
    "write_video",
]

#: Colour maps of the panels: signed difference (diverging, light grey at 0), loss
#: weight (sequential, luminance increasing with the weight), masks (black = 0, white = 1).
DIFF_CMAP = "coolwarm"
WEIGHT_CMAP = "viridis"
MASK_CMAP = "gray"
#: Height in pixels of the title strip above a panel.
TITLE_HEIGHT = 20


# --------------------------------------------------------------------------- helpers
def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, without importing torch here
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":
            x = x.float()
        return x.numpy()
    return np.asarray(x)


def _images(x: Any, name: str) -> np.ndarray:
    """``(K, 3, H, W)`` / ``(K, H, W, 3)`` (or one frame), uint8 or float -> float (K, H, W, 3)
    on the [0, 1] scale, not clipped."""
    array = _numpy(x)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4:
        raise ValueError(f"{name} must be (K, 3, H, W) or (K, H, W, 3), got {array.shape}.")
    if array.shape[1] == 3 and array.shape[-1] != 3:
        array = array.transpose(0, 2, 3, 1)
    elif array.shape[-1] != 3:
        raise ValueError(f"{name} must have 3 colour channels, got shape {array.shape}.")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    return array.astype(np.float32)


def _maps(x: Any, name: str) -> np.ndarray:
    """``(K, H, W)`` (or ``(K, 1, H, W)``, or one map) bool/float -> float (K, H, W)."""
    array = _numpy(x)
    if array.ndim == 4 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(f"{name} must be (K, H, W), got {array.shape}.")
    return array.astype(np.float32)


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    return np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)


def _colormap(values: np.ndarray, cmap: str) -> np.ndarray:
    """Values in [0, 1] (clipped) -> uint8 RGB through a matplotlib colour map."""
    import matplotlib

    rgba = matplotlib.colormaps[cmap](np.clip(values, 0.0, 1.0))
    return _to_uint8(rgba[..., :3])


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
    (nearest), ``pad`` white pixels apart, under a strip of column titles."""
    if scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}.")
    rows, height, width = columns[0][1].shape[:3]
    tile_h, tile_w = height * scale, width * scale
    n_cols = len(columns)
    top = TITLE_HEIGHT if titles else 0
    panel = np.full(
        (top + rows * (tile_h + pad) - pad, n_cols * (tile_w + pad) - pad, 3), 255, np.uint8
    )
    for c, (title, tiles) in enumerate(columns):
        x = c * (tile_w + pad)
        if titles:
            panel[:top, x : x + tile_w] = _title_strip(title, tile_w)
        big = tiles.repeat(scale, axis=1).repeat(scale, axis=2)
        for r in range(rows):
            y = top + r * (tile_h + pad)
            panel[y : y + tile_h, x : x + tile_w] = big[r]
    return panel


def _check_frames(reference: np.ndarray, other: np.ndarray, name: str) -> None:
    if other.shape[0] < reference.shape[0] or other.shape[1:3] != reference.shape[1:3]:
        raise ValueError(
            f"{name} has shape {other.shape}, which does not match the images "
            f"({reference.shape[0]} frames of {reference.shape[1]}x{reference.shape[2]})."
        )


def _fmt(value: float) -> str:
    return f"{value:.2g}" if value < 10 else f"{value:.0f}"


# --------------------------------------------------------------------------- panels
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
        ("true", _to_uint8(true)),
        ("reconstruction", _to_uint8(recon)),
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
    columns: list[tuple[str, np.ndarray]] = [("true", _to_uint8(true[:rows]))]

    def image_column(title: str, value: Any, name: str) -> None:
        array = _images(value, name)
        _check_frames(true, array, name)
        columns.append((title, _to_uint8(array[:rows])))

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


# --------------------------------------------------------------------------- curves
@dataclass
class CurveStats:
    """Statistics across seeds on a common step grid (see :func:`aggregate_seeds`)."""

    steps: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    sem: np.ndarray
    num_seeds: int


def _clean_curve(steps: Any, values: Any) -> tuple[np.ndarray, np.ndarray]:
    """Sorted by step, finite values only, the last value kept where a step repeats."""
    steps = np.asarray(steps, dtype=np.float64).reshape(-1)
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if steps.shape != values.shape:
        raise ValueError(f"steps {steps.shape} and returns {values.shape} differ in length.")
    keep = np.isfinite(steps) & np.isfinite(values)
    steps, values = steps[keep], values[keep]
    last = {}
    for step, value in zip(steps.tolist(), values.tolist()):
        last[step] = value
    order = sorted(last)
    return np.asarray(order, dtype=np.float64), np.asarray([last[s] for s in order])


def aggregate_seeds(seeds: Sequence[tuple[Any, Any]]) -> CurveStats:
    """Mean, standard deviation and standard error across seeds of ``(steps, returns)`` curves.

    Grid rule: the union of the seeds' logged steps, restricted to the range where *every*
    seed has data (from the latest first step to the earliest last step); each seed is
    linearly interpolated onto it (never extrapolated). A step logged twice keeps its
    last value (a resumed run). ``std`` is the sample standard deviation (``ddof=1``) and
    ``sem = std / sqrt(n)``; both are 0 for a single seed. Seeds without data are ignored;
    no seed, or seeds whose ranges do not overlap, give empty arrays.

    Examples:
        >>> stats = aggregate_seeds([([0, 10], [0.0, 20.0]), ([0, 5, 10], [2.0, 6.0, 14.0])])
        >>> stats.steps.tolist(), stats.mean.tolist(), stats.sem.round(6).tolist()
        ([0.0, 5.0, 10.0], [1.0, 8.0, 17.0], [1.0, 2.0, 3.0])
    """
    curves = [_clean_curve(s, v) for s, v in seeds]
    curves = [(s, v) for s, v in curves if s.size]
    empty = np.zeros(0)
    if not curves:
        return CurveStats(empty, empty, empty, empty, 0)
    low = max(s[0] for s, _ in curves)
    high = min(s[-1] for s, _ in curves)
    if low > high:
        return CurveStats(empty, empty, empty, empty, len(curves))
    grid = np.unique(np.concatenate([s[(s >= low) & (s <= high)] for s, _ in curves]))
    values = np.stack([np.interp(grid, s, v) for s, v in curves])
    n = len(curves)
    std = values.std(axis=0, ddof=1) if n > 1 else np.zeros_like(grid)
    return CurveStats(grid, values.mean(axis=0), std, std / math.sqrt(n), n)


def plot_learning_curves(
    ax: Axes,
    curves: Mapping[str, Sequence[tuple[Any, Any]]],
    *,
    band: str = "sem",
    colors: Mapping[str, Any] | None = None,
) -> dict[str, CurveStats]:
    """Draws one mean line per label (in the mapping's order) and a shaded band into ``ax``.

    Args:
        ax: the matplotlib axes.
        curves: label -> list of per-seed ``(steps, returns)`` arrays.
        band: ``"sem"`` (standard error: PSP Figs. 3, 6), ``"std"`` (standard deviation:
            SD Fig. 2) or ``"none"``.
        colors: label -> colour (default: the axes' colour cycle).

    Returns:
        label -> the :class:`CurveStats` drawn. ``ax.lines[i]`` is the mean of the i-th
        label with data; bands are ``PolyCollection`` objects, not lines.
    """
    if band not in ("sem", "std", "none"):
        raise ValueError(f"band must be 'sem', 'std' or 'none', got {band!r}.")
    drawn: dict[str, CurveStats] = {}
    for label, seeds in curves.items():
        stats = aggregate_seeds(seeds)
        if stats.steps.size == 0:
            continue
        kwargs: dict[str, Any] = {"label": f"{label} (n={stats.num_seeds})"}
        if colors is not None and label in colors:
            kwargs["color"] = colors[label]
        if stats.steps.size == 1:
            kwargs["marker"] = "o"
        (line,) = ax.plot(stats.steps, stats.mean, **kwargs)
        if band != "none" and stats.num_seeds > 1:
            spread = stats.sem if band == "sem" else stats.std
            ax.fill_between(
                stats.steps,
                stats.mean - spread,
                stats.mean + spread,
                color=line.get_color(),
                alpha=0.2,
                linewidth=0,
            )
        drawn[label] = stats
    return drawn


def learning_curve_figure(
    curves: Mapping[str, Sequence[tuple[Any, Any]]],
    *,
    title: str | None = None,
    xlabel: str = "environment steps",
    ylabel: str = "evaluation return",
    band: str = "sem",
    figsize: tuple[float, float] = (5.0, 3.5),
) -> Figure:
    """Learning curves, one line per label: mean across seeds with a ± standard-error band.

    Seeds are put on a common grid by :func:`aggregate_seeds` (union of their steps where
    all seeds have data, linear interpolation). ``band="std"`` shades ± one standard
    deviation instead (as SD Fig. 2), ``"none"`` draws no band.

    Returns:
        A :class:`matplotlib.figure.Figure` (no ``pyplot``; save it with
        :func:`save_figure`); ``fig.axes[0].lines[i].get_ydata()`` is the i-th mean.

    Examples:
        >>> import numpy as np
        >>> seeds = [(np.array([0, 100, 200]), np.array([0.0, 5.0, 9.0])),
        ...          (np.array([0, 100, 200]), np.array([0.0, 7.0, 11.0]))]
        >>> fig = learning_curve_figure({"psp": seeds}, title="cheetah-run")
        >>> fig.axes[0].lines[0].get_ydata().tolist()
        [0.0, 6.0, 10.0]
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    plot_learning_curves(ax, curves, band=band)
    if title:
        ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize="small")
    return fig


def save_figure(fig: Figure, path: str | Path, *, dpi: int = 150) -> list[Path]:
    """Writes ``fig`` as PNG at ``path`` with a ``.png`` suffix and, when ``path`` ends with
    ``.pdf`` (or another format matplotlib knows), in that format too; creates the folder.

    Returns:
        The paths written (the PNG first).

    Examples:
        >>> import tempfile
        >>> fig = learning_curve_figure({"dreamer": [([0, 1], [0.0, 1.0])]})
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     [p.name for p in save_figure(fig, Path(folder) / "curves.pdf")]
        ['curves.png', 'curves.pdf']
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    png = path.with_suffix(".png")
    fig.savefig(png, dpi=dpi)
    written = [png]
    if path.suffix.lower() not in (".png", ""):
        fig.savefig(path)
        written.append(path)
    return written


# --------------------------------------------------------------------------- video
def write_video(
    path: str | Path,
    frames: torch.Tensor | np.ndarray,
    fps: int = 20,
    *,
    min_height: int = 256,
) -> Path:
    """Writes frames as an H.264 mp4 (imageio's ffmpeg plugin), or a gif if ``path`` ends
    with ``.gif``; returns the path.

    Small frames are upscaled by the smallest integer factor that makes them at least
    ``min_height`` pixels tall (nearest neighbour: a 64x64 frame becomes 256x256 with
    4x4 blocks), so that browsers play them at a visible size. mp4 frames are padded to
    even sizes (repeating the last row/column) for the ``yuv420p`` pixel format that
    browsers decode.

    Args:
        path: ``.mp4`` (or any ffmpeg container) or ``.gif``; the folder is created.
        frames: ``uint8 (T, H, W, 3)`` (``(T, 3, H, W)`` and floats in [0, 1] are accepted).
        fps: frames per second.
        min_height: minimum displayed height in pixels.

    Examples:
        >>> import tempfile
        >>> import imageio.v3 as iio
        >>> frames = np.zeros((5, 64, 64, 3), dtype=np.uint8)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     video = write_video(Path(folder) / "episode.mp4", frames)
        ...     iio.imread(video, plugin="pyav").shape
        (5, 256, 256, 3)
    """
    path = Path(path)
    array = _numpy(frames)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4:
        raise ValueError(f"frames must be (T, H, W, 3), got {array.shape}.")
    if array.shape[-1] != 3 and array.shape[1] == 3:
        array = array.transpose(0, 2, 3, 1)
    if array.dtype != np.uint8:
        array = _to_uint8(array.astype(np.float32))
    if array.shape[0] == 0:
        raise ValueError("no frames to write.")
    factor = max(1, math.ceil(min_height / array.shape[1]))
    if factor > 1:
        array = array.repeat(factor, axis=1).repeat(factor, axis=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        import imageio.v3 as iio

        iio.imwrite(path, array, duration=1000.0 / fps, loop=0)
        return path
    import imageio.v2 as iio2

    pad_h, pad_w = array.shape[1] % 2, array.shape[2] % 2
    if pad_h or pad_w:
        array = np.pad(array, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    iio2.mimwrite(
        path,
        list(array),
        format="FFMPEG",
        fps=fps,
        codec="libx264",
        pixelformat="yuv420p",
        macro_block_size=1,
        output_params=["-movflags", "+faststart"],
    )
    return path
