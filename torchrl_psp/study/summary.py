"""The summary of a comparison: its learning-curve grid and the files under its root.

:func:`learning_curves_grid` draws the curves (PSP Figs. 3 and 6), one panel per row of
the :func:`~torchrl_psp.study.scores.score_table`; :func:`write_summary` writes the
table and the curves of every run under a folder.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from torchrl_psp.figures.curves import label_curve_axes, plot_learning_curves, save_figure
from torchrl_psp.study.runs import RunRecord, find_runs
from torchrl_psp.study.scores import ScoreTable, curves_by_row, score_table

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Summary", "learning_curves_grid", "write_summary"]


def learning_curves_grid(
    runs: Sequence[RunRecord],
    *,
    variants: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    band: str = "sem",
    finished_only: bool = False,
    columns: int = 3,
) -> Figure:
    """One panel per task (rows of :func:`~torchrl_psp.study.scores.score_table`, same
    order), one line per variant: mean across seeds ± standard error (``band="std"``:
    standard deviation), as in PSP Figs. 3 and 6; see
    :func:`~torchrl_psp.figures.curves.aggregate_seeds` for the common step grid. A
    variant has the same colour in every panel.
    """
    from matplotlib.figure import Figure

    table = score_table(runs, variants=variants, tasks=tasks, finished_only=finished_only)
    curves = curves_by_row(runs, finished_only=finished_only)
    n = max(1, len(table.rows))
    ncols = min(columns, n)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(4.4 * ncols, 3.3 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).reshape(-1)
    palette = [f"C{i}" for i in range(10)]
    colors = {v: palette[i % len(palette)] for i, v in enumerate(table.variants)}
    for ax, row in zip(axes, table.rows):
        by_variant = curves.get(row, {})
        ordered = {v: by_variant[v] for v in table.variants if v in by_variant}
        plot_learning_curves(ax, ordered, band=band, colors=colors)
        label_curve_axes(ax, title=row)
    for ax in axes[len(table.rows) :]:
        ax.set_visible(False)
    if not table.rows:
        axes[0].text(0.5, 0.5, "no evaluation yet", ha="center", va="center")
    spread = {"sem": "± standard error", "std": "± std", "none": ""}[band]
    fig.suptitle(f"Evaluation return, mean across seeds {spread}".strip())
    return fig


@dataclass
class Summary:
    """What :func:`write_summary` wrote."""

    table: ScoreTable
    markdown: str
    paths: list[Path]


def write_summary(
    root: str | Path,
    *,
    variants: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    band: str = "sem",
    finished_only: bool = False,
) -> Summary:
    """Summarises every run under ``root`` into ``root``: ``scores.md``, ``scores.tex``,
    ``scores.csv`` (:func:`~torchrl_psp.study.scores.score_table`), ``runs.csv`` (one
    line per run, its directory relative to ``root``), ``learning_curves.png`` and
    ``learning_curves.pdf`` (:func:`learning_curves_grid`).

    Examples:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     summary = write_summary(folder)
        ...     sorted(p.name for p in summary.paths)
        ['learning_curves.pdf', 'learning_curves.png', 'runs.csv', 'scores.csv', 'scores.md', 'scores.tex']
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    runs = find_runs(root)
    table = score_table(runs, variants=variants, tasks=tasks, finished_only=finished_only)
    markdown = table.to_markdown()
    paths = []
    for name, text in (
        ("scores.md", markdown),
        ("scores.tex", table.to_latex()),
        ("scores.csv", table.to_csv()),
        ("runs.csv", table.runs_csv(relative_to=root)),
    ):
        (root / name).write_text(text)
        paths.append(root / name)
    fig = learning_curves_grid(
        runs, variants=variants, tasks=tasks, band=band, finished_only=finished_only
    )
    paths += save_figure(fig, root / "learning_curves.pdf")
    return Summary(table=table, markdown=markdown, paths=paths)
