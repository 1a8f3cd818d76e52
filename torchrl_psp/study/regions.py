"""The agent / background reconstruction errors of a study's runs (PSP Fig. 5, measured).

At each evaluation the trainer logs the world model's mean squared reconstruction error
inside the ground-truth task mask (``eval/recon_error_agent``) and outside it
(``eval/recon_error_background``), on the first evaluation episode
(:func:`~torchrl_psp.training.evaluation.region_reconstruction_errors`).
:func:`region_error_table` gives their final values, mean ± std across seeds, one line per
(row, variant) with the rows of :func:`~torchrl_psp.study.scores.score_table`;
:func:`region_error_curves` draws both against environment steps. A run that logged no
error is left out of both: a variant without a decoder (``drqv2``, ``dreamerpro``) or a
run without the ground-truth mask (``env.segmentation`` other than ``gt``); the table's
caption names the variants left out.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from torchrl_psp.study.runs import RunRecord, read_curve
from torchrl_psp.study.scores import (
    Cell,
    ordered_rows,
    row_labels,
    rst_list_table,
    variant_key,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "REGIONS",
    "REGION_CSV",
    "RegionErrorTable",
    "read_region_errors",
    "region_error_curves",
    "region_error_table",
]

#: The two regions, in table order.
REGIONS = ("agent", "background")
#: The curve of each region, relative to a run directory (``step,value`` lines).
REGION_CSV = {region: f"logs/scalars/eval/recon_error_{region}.csv" for region in REGIONS}
#: The tables show errors times this factor (the MSE of [0, 1] images is small).
SCALE = 1000.0


def read_region_errors(run: RunRecord) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``region -> (steps, errors)`` of one run (empty arrays when it logged none)."""
    return {region: read_curve(run.path / REGION_CSV[region]) for region in REGIONS}


@dataclass
class RegionErrorTable:
    """Final agent and background errors per (row, variant): ``cells[(row, variant,
    region)]`` is a :class:`~torchrl_psp.study.scores.Cell` of the seeds' last logged
    errors (``finals``) and their steps. ``left_out``: the variants of the runs given of
    which no run logged an error (not in ``variants``), in column order."""

    rows: list[str]
    variants: list[str]
    cells: dict[tuple[str, str, str], Cell]
    runs: list[RunRecord] = field(default_factory=list, repr=False)
    left_out: list[str] = field(default_factory=list)

    def lines(self) -> list[tuple[str, str]]:
        """The (row, variant) pairs with an error, rows then variants in table order."""
        return [
            (row, variant)
            for row in self.rows
            for variant in self.variants
            if any((row, variant, region) in self.cells for region in REGIONS)
        ]

    def _text(self, row: str, variant: str, region: str) -> str:
        cell = self.cells.get((row, variant, region))
        if cell is None:
            return "–"
        mean = cell.mean * SCALE
        return f"{mean:.2f}" if cell.n == 1 else f"{mean:.2f} ± {cell.std * SCALE:.2f}"

    def caption(self) -> str:
        """What the numbers are, and which variants are left out."""
        why = "(no decoder, or no ground-truth mask)"
        variants = ", ".join(self.left_out)
        if not self.cells:
            by = f" by {variants} {why}" if self.left_out else ""
            return f"No reconstruction error logged{by}."
        absent = f" Left out, no error logged {why}: {variants}." if self.left_out else ""
        counts = sorted({c.n for c in self.cells.values()})
        seeds = "-".join(str(n) for n in dict.fromkeys([counts[0], counts[-1]]))
        seeds += " seed" if counts[-1] == 1 else " seeds"
        return (
            f"World-model reconstruction MSE x {SCALE:g} (images on [0, 1]) inside the "
            "ground-truth task mask (agent) and outside it (background), first episode of "
            f"the last evaluation of each seed; mean ± std across seeds ({seeds} per line)."
            + absent
        )

    def to_markdown(self) -> str:
        """One line per (row, variant): agent error, background error, seeds; the caption
        (alone when no run logged an error)."""
        if not self.lines():
            return self.caption() + "\n"
        lines = ["| task | variant | agent | background | seeds |", "|---|---|---:|---:|---:|"]
        for row, variant in self.lines():
            n = max(
                self.cells[(row, variant, r)].n for r in REGIONS if (row, variant, r) in self.cells
            )
            texts = [self._text(row, variant, region) for region in REGIONS]
            lines.append(f"| {row} | {variant} | " + " | ".join(texts) + f" | {n} |")
        return "\n".join(lines) + f"\n\nTable: {self.caption()}\n"

    def to_rst(self) -> str:
        """The same as a reStructuredText ``list-table`` (its caption as the title)."""
        header = ["task", "variant", f"agent (x {SCALE:g})", f"background (x {SCALE:g})"]
        body = [
            [row, variant, *(self._text(row, variant, region) for region in REGIONS)]
            for row, variant in self.lines()
        ]
        return rst_list_table(self.caption(), header, body)

    def to_csv(self) -> str:
        """One line per (row, variant): ``<region>_mean, _std, _n`` (unscaled MSE)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(
            ["task", "variant"] + [f"{r}_{s}" for r in REGIONS for s in ("mean", "std", "n")]
        )
        for row, variant in self.lines():
            values: list = [row, variant]
            for region in REGIONS:
                cell = self.cells.get((row, variant, region))
                values += (
                    ["", "", ""]
                    if cell is None
                    else [f"{cell.mean:.6g}", f"{cell.std:.6g}", cell.n]
                )
            writer.writerow(values)
        return out.getvalue()


def _curves(
    runs: Sequence[RunRecord],
) -> tuple[dict[int, str], dict[int, dict[str, tuple[np.ndarray, np.ndarray]]]]:
    """The row label and the region curves of every run that logged an error. The labels
    are those of the score table, which has every run with an evaluation: a task gets its
    ``[<distractor>]`` where it was run with several, even when only one logged errors."""
    errors = {id(run): read_region_errors(run) for run in runs}
    kept = [run for run in runs if any(s.size for s, _ in errors[id(run)].values())]
    labelled = {id(run): run for run in [*kept, *(r for r in runs if r.steps.size)]}
    labels = row_labels(list(labelled.values()))
    return {id(run): labels[id(run)] for run in kept}, {id(run): errors[id(run)] for run in kept}


def region_error_table(
    runs: Sequence[RunRecord],
    *,
    variants: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
) -> RegionErrorTable:
    """The final agent and background errors of ``runs``: the last logged value of each
    seed, mean ± std (sample std) across seeds per (row, variant). Rows are those of
    :func:`~torchrl_psp.study.scores.score_table` (a task, with ``[<distractor>]`` where it
    was run with several); ``variants`` and ``tasks`` order them. Runs that logged no
    error (a variant without a decoder, ``env.segmentation`` other than ``gt``) are left
    out; the variants none of whose runs logged one are :attr:`RegionErrorTable.left_out`.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     runs = []
        ...     for seed, (agent, background) in enumerate([(0.002, 0.010), (0.004, 0.030)]):
        ...         scalars = Path(folder) / f"seed{seed}" / "logs/scalars/eval"
        ...         scalars.mkdir(parents=True)
        ...         _ = (scalars / "recon_error_agent.csv").write_text(f"0,0.5\\n100,{agent}\\n")
        ...         _ = (scalars / "recon_error_background.csv").write_text(f"100,{background}\\n")
        ...         runs.append(RunRecord(scalars.parents[2], "cartpole", "swingup", "psp",
        ...                               seed, np.zeros(0), np.zeros(0), True))
        ...     drqv2 = RunRecord(Path(folder), "cartpole", "swingup", "drqv2", 0,
        ...                       np.array([100.0]), np.array([50.0]), True)  # no decoder
        ...     table = region_error_table([*runs, drqv2])
        >>> print(table.to_markdown().splitlines()[2])
        | cartpole-swingup | psp | 3.00 ± 1.41 | 20.00 ± 14.14 | 2 |
        >>> table.variants, table.left_out
        (['psp'], ['drqv2'])
    """
    labels, errors = _curves(runs)
    cells: dict[tuple[str, str, str], Cell] = {}
    kept = [run for run in runs if id(run) in errors]
    for run in kept:
        for region, (steps, values) in errors[id(run)].items():
            if steps.size:
                cell = cells.setdefault((labels[id(run)], run.variant, region), Cell([], [], []))
                cell.seeds.append(run.seed)
                cell.finals.append(float(values[-1]))
                cell.final_steps.append(float(steps[-1]))
    order = list(variants or [])
    shown = {r.variant for r in kept}
    return RegionErrorTable(
        rows=ordered_rows(labels.values(), tasks),
        variants=sorted(shown, key=lambda v: variant_key(v, order)),
        cells=cells,
        runs=kept,
        left_out=sorted({r.variant for r in runs} - shown, key=lambda v: variant_key(v, order)),
    )


def region_error_curves(
    runs: Sequence[RunRecord],
    *,
    variants: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    band: str = "sem",
) -> Figure:
    """Both errors against environment steps: one row of panels per table row (agent,
    background), one line per variant, mean across seeds ± standard error (``band``: see
    :func:`~torchrl_psp.figures.curves.plot_learning_curves`). A variant has the same
    colour in every panel."""
    from matplotlib.figure import Figure

    from torchrl_psp.figures.curves import label_curve_axes, plot_learning_curves

    table = region_error_table(runs, variants=variants, tasks=tasks)
    labels, errors = _curves(runs)
    nrows = max(1, len(table.rows))
    fig = Figure(figsize=(9.0, 3.3 * nrows), layout="constrained")
    axes = fig.subplots(nrows, len(REGIONS), squeeze=False)
    colors = {v: f"C{i % 10}" for i, v in enumerate(table.variants)}
    for axes_row, row in zip(axes, table.rows):
        for ax, region in zip(axes_row, REGIONS):
            curves: dict[str, list] = {}
            for run in table.runs:
                if labels[id(run)] == row and errors[id(run)][region][0].size:
                    curves.setdefault(run.variant, []).append(errors[id(run)][region])
            ordered = {v: curves[v] for v in table.variants if v in curves}
            plot_learning_curves(ax, ordered, band=band, colors=colors)
            label_curve_axes(ax, title=f"{row}: {region}", ylabel="reconstruction MSE")
    if not table.rows:
        for ax in axes[0]:
            ax.text(0.5, 0.5, "no error logged yet", ha="center", va="center")
    spread = {"sem": "± standard error", "std": "± std", "none": ""}[band]
    fig.suptitle(
        f"Reconstruction error inside / outside the task mask, mean across seeds {spread}".strip()
    )
    return fig
