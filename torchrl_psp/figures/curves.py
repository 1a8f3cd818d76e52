"""Learning curves of the PSP and SD papers: evaluation return against environment steps.

* :func:`aggregate_seeds` -- mean, standard deviation and standard error across seeds on a
  common step grid (:func:`clean_curve` tidies one seed's curve first).
* :func:`plot_learning_curves` -- one mean line and a shaded band per variant into an
  existing axes; :func:`label_curve_axes` titles and labels it.
* :func:`learning_curve_figure` -- a figure of one such axes (PSP Figs. 3 and 6, SD Fig. 2).
* :func:`save_figure` -- PNG (and PDF).

Figures are :class:`matplotlib.figure.Figure` objects created without ``pyplot``: no
window, no global figure state, nothing to close.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "CurveStats",
    "aggregate_seeds",
    "clean_curve",
    "label_curve_axes",
    "learning_curve_figure",
    "plot_learning_curves",
    "save_figure",
]


@dataclass
class CurveStats:
    """Statistics across seeds on a common step grid (see :func:`aggregate_seeds`)."""

    steps: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    sem: np.ndarray
    num_seeds: int


def clean_curve(steps: Any, values: Any) -> tuple[np.ndarray, np.ndarray]:
    """One curve as ``float64`` arrays sorted by step, finite points only, the last value
    kept where a step repeats (a resumed run re-evaluating a step).

    Raises:
        ValueError: when ``steps`` and ``values`` differ in length.

    Examples:
        >>> steps, values = clean_curve([1000, 0, 1000, 2000], [7.0, 1.5, 8.0, float("nan")])
        >>> steps.tolist(), values.tolist()
        ([0.0, 1000.0], [1.5, 8.0])
    """
    steps = np.asarray(steps, dtype=np.float64).reshape(-1)
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if steps.shape != values.shape:
        raise ValueError(f"steps {steps.shape} and returns {values.shape} differ in length.")
    keep = np.isfinite(steps) & np.isfinite(values)
    last = {}
    for step, value in zip(steps[keep].tolist(), values[keep].tolist()):
        last[step] = value
    order = sorted(last)
    return np.asarray(order, dtype=np.float64), np.asarray([last[s] for s in order], np.float64)


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
    curves = [clean_curve(s, v) for s, v in seeds]
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


def label_curve_axes(
    ax: Axes,
    *,
    title: str | None = None,
    xlabel: str = "environment steps",
    ylabel: str = "evaluation return",
) -> None:
    """Finishes an axes drawn by :func:`plot_learning_curves`: its title (when given), axis
    labels, a light grid and, when a line was drawn, the legend.

    Examples:
        >>> from matplotlib.figure import Figure
        >>> ax = Figure().add_subplot()
        >>> _ = plot_learning_curves(ax, {"psp": [([0, 1], [0.0, 2.0])]})
        >>> label_curve_axes(ax, title="cheetah-run")
        >>> ax.get_title(), ax.get_xlabel(), ax.get_legend() is not None
        ('cheetah-run', 'environment steps', True)
    """
    if title:
        ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize="small")


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
    label_curve_axes(ax, title=title, xlabel=xlabel, ylabel=ylabel)
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
