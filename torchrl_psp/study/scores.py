"""The papers' score table (PSP Table 1 / SD Table 1) of a comparison's runs.

:func:`score_table` builds a :class:`ScoreTable`: final evaluation return, mean ± std
across seeds, one row per task, one column per variant; it writes itself as Markdown,
LaTeX and CSV. :func:`curves_by_row` groups the runs' curves by the same rows.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from torchrl_psp.study.runs import RunRecord
from torchrl_psp.variants import VARIANT_SPECS

__all__ = [
    "VARIANT_ORDER",
    "Cell",
    "ScoreTable",
    "curves_by_row",
    "ordered_rows",
    "row_labels",
    "score_table",
    "variant_key",
]

#: Column order of the tables: that of :data:`~torchrl_psp.variants.VARIANT_SPECS`; unknown
#: variants follow, alphabetically.
VARIANT_ORDER = tuple(VARIANT_SPECS)


def variant_key(variant: str, order: Sequence[str]) -> tuple[int, int, str]:
    """Sort key of a column: its place in ``order``, then in :data:`VARIANT_ORDER`, then
    alphabetical."""
    if variant in order:
        return (0, list(order).index(variant), variant)
    if variant in VARIANT_ORDER:
        return (1, VARIANT_ORDER.index(variant), variant)
    return (2, 0, variant)


def row_labels(runs: Sequence[RunRecord]) -> dict[int, str]:
    """Row of each run (by ``id``): its task, plus ``[distractor]`` where a task has runs
    with several."""
    settings: dict[str, set] = {}
    for run in runs:
        settings.setdefault(run.task_name, set()).add(run.distractor)
    return {
        id(run): run.task_name
        if len(settings[run.task_name]) == 1
        else f"{run.task_name} [{run.distractor}]"
        for run in runs
    }


def _evaluated(
    runs: Sequence[RunRecord], finished_only: bool
) -> tuple[list[RunRecord], dict[int, str]]:
    """The runs with an evaluation (finished ones only when ``finished_only``), and the
    row of each (:func:`row_labels`)."""
    kept = [r for r in runs if r.steps.size and (r.done or not finished_only)]
    return kept, row_labels(kept)


def ordered_rows(labels: Iterable[str], order: Sequence[str] | None) -> list[str]:
    """The distinct row labels, in the order of ``order``: a label is placed by itself
    (``"cartpole-swingup [video]"``) or by its task (``"cartpole-swingup"``); the others
    follow, alphabetically.

    Examples:
        >>> rows = ["a-b [video]", "a-b [none]", "c-d", "a-b [reafferent]"]
        >>> ordered_rows(rows, ["a-b [reafferent]", "a-b [none]"])
        ['a-b [reafferent]', 'a-b [none]', 'a-b [video]', 'c-d']
    """
    order = list(order or [])

    def key(label: str) -> tuple[int, int, int, str]:
        base = label.split(" [")[0]
        if label in order:
            return (0, order.index(label), 0, label)
        if base in order:
            return (0, order.index(base), 1, label)
        return (1, 0, 0, label)

    return sorted(set(labels), key=key)


@dataclass
class Cell:
    """Final evaluation returns of one (task, variant) across seeds."""

    seeds: list[int]
    finals: list[float]
    final_steps: list[float]

    @property
    def n(self) -> int:
        """Number of seeds."""
        return len(self.finals)

    @property
    def mean(self) -> float:
        return float(np.mean(self.finals))

    @property
    def std(self) -> float:
        """Sample standard deviation (``ddof=1``); 0 for a single seed."""
        return float(np.std(self.finals, ddof=1)) if self.n > 1 else 0.0

    @property
    def sem(self) -> float:
        """Standard error of the mean, ``std / sqrt(n)``."""
        return self.std / math.sqrt(self.n)


def _shown_path(path: Path, relative_to: str | Path | None) -> str:
    if relative_to is not None:
        try:
            return Path(path).resolve().relative_to(Path(relative_to).resolve()).as_posix()
        except ValueError:
            pass
    return str(path)


def _thousands(step: float) -> str:
    return f"{int(round(step)):,}"


@dataclass
class ScoreTable:
    """PSP Table 1 layout: ``rows`` (tasks) x ``variants``, a :class:`Cell` where runs exist.

    ``cells[(row, variant)]``; :meth:`best` gives the bold variants of a row (the highest
    mean at the displayed precision, ties all bold).
    """

    rows: list[str]
    variants: list[str]
    cells: dict[tuple[str, str], Cell]
    unfinished: int = 0
    decimals: int = 1
    runs: list[RunRecord] = field(default_factory=list, repr=False)

    def best(self, row: str) -> set[str]:
        means = {
            v: round(self.cells[(row, v)].mean, self.decimals)
            for v in self.variants
            if (row, v) in self.cells
        }
        top = max(means.values(), default=None)
        return {v for v, m in means.items() if m == top}

    def caption(self) -> str:
        """One line: statistic, number of seeds, environment step of the final evaluation."""
        cells = list(self.cells.values())
        if not cells:
            return "No evaluation found."
        counts = sorted({c.n for c in cells})
        seeds = (
            f"{counts[0]} seed{'s' if counts[0] > 1 else ''} per cell"
            if len(counts) == 1
            else f"{counts[0]}-{counts[-1]} seeds per cell (n given where fewer than {counts[-1]})"
        )
        steps = sorted({s for c in cells for s in c.final_steps})
        at = (
            f"at {_thousands(steps[0])} env steps"
            if len(steps) == 1
            else f"at {_thousands(steps[0])}-{_thousands(steps[-1])} env steps"
        )
        text = (
            f"Final evaluation return (last evaluation of each seed), mean ± std across "
            f"seeds (sample std): {seeds}, {at}. Best mean per row in bold."
        )
        if self.unfinished:
            total = sum(c.n for c in cells)
            text += f" {self.unfinished} of {total} runs unfinished."
        return text

    def _cell_text(self, row: str, variant: str, pm: str) -> tuple[str, bool]:
        cell = self.cells.get((row, variant))
        if cell is None:
            return "", False
        d = self.decimals
        text = f"{cell.mean:.{d}f}" if cell.n == 1 else f"{cell.mean:.{d}f}{pm}{cell.std:.{d}f}"
        most = max(c.n for c in self.cells.values())
        if cell.n < most:
            text += f" (n={cell.n})"
        return text, variant in self.best(row)

    def to_markdown(self) -> str:
        """GitHub-flavoured Markdown table, then the caption line."""
        lines = [
            "| task | " + " | ".join(self.variants) + " |",
            "|---|" + "---:|" * len(self.variants),
        ]
        for row in self.rows:
            texts = []
            for variant in self.variants:
                text, bold = self._cell_text(row, variant, " ± ")
                texts.append(f"**{text}**" if bold else (text or "–"))
            lines.append(f"| {row} | " + " | ".join(texts) + " |")
        return "\n".join(lines) + f"\n\nTable: {self.caption()}\n"

    def to_rst(self) -> str:
        """A reStructuredText ``list-table`` (the caption as its title; best means bold)."""
        body = []
        for row in self.rows:
            cells = [row]
            for variant in self.variants:
                text, bold = self._cell_text(row, variant, " ± ")
                cells.append(f"**{text}**" if bold else (text or "–"))
            body.append(cells)
        return rst_list_table(self.caption(), ["task", *self.variants], body)

    def to_latex(self) -> str:
        """A ``table`` with ``\\caption`` and a ``booktabs`` ``tabular``."""

        def escape(text: str) -> str:
            return re.sub(r"([_&%#$])", r"\\\1", text)

        lines = [
            "% Written by torchrl_psp.study.scores; needs \\usepackage{booktabs}.",
            "\\begin{table}[t]",
            "\\centering",
            "\\caption{" + escape(self.caption()).replace("±", "$\\pm$") + "}",
            "\\begin{tabular}{l" + "c" * len(self.variants) + "}",
            "\\toprule",
            "Task & " + " & ".join(escape(v) for v in self.variants) + " \\\\",
            "\\midrule",
        ]
        for row in self.rows:
            texts = []
            for variant in self.variants:
                text, bold = self._cell_text(row, variant, " \\pm ")
                note = ""
                if " (n=" in text:
                    text, note = text.split(" (n=")
                    note = f" (n={note}"
                if not text:
                    texts.append("--")
                else:
                    texts.append((f"$\\mathbf{{{text}}}$" if bold else f"${text}$") + note)
            lines.append(f"{escape(row)} & " + " & ".join(texts) + " \\\\")
        lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}", ""]
        return "\n".join(lines)

    def to_csv(self) -> str:
        """One line per row; per variant ``<v>_mean, <v>_std, <v>_sem, <v>_n`` (empty where
        no run)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(
            ["task"] + [f"{v}_{s}" for v in self.variants for s in ("mean", "std", "sem", "n")]
        )
        for row in self.rows:
            values: list[Any] = [row]
            for variant in self.variants:
                cell = self.cells.get((row, variant))
                values += (
                    ["", "", "", ""]
                    if cell is None
                    else [f"{cell.mean:.6g}", f"{cell.std:.6g}", f"{cell.sem:.6g}", cell.n]
                )
            writer.writerow(values)
        return out.getvalue()

    def runs_csv(self, relative_to: str | Path | None = None) -> str:
        """One line per run in the table: its row, variant, seed, final step and return,
        and its directory (relative to ``relative_to`` when given)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(
            ["task", "variant", "seed", "final_step", "final_return", "evaluations", "done", "path"]
        )
        labels = row_labels(self.runs)
        for run in self.runs:
            writer.writerow(
                [
                    labels[id(run)],
                    run.variant,
                    run.seed,
                    "" if run.final_step is None else int(run.final_step),
                    "" if run.final_return is None else f"{run.final_return:.6g}",
                    run.steps.size,
                    int(run.done),
                    _shown_path(run.path, relative_to),
                ]
            )
        return out.getvalue()


def rst_list_table(caption: str, header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A reStructuredText ``list-table`` titled ``caption``, one header row, then ``rows``;
    without any row, ``caption`` alone, as a paragraph (docutils refuses a ``list-table``
    that has only its header).

    Examples:
        >>> print(rst_list_table("T", ["a", "b"], [["1", "2"]]), end="")
        .. list-table:: T
           :header-rows: 1
        <BLANKLINE>
           * - a
             - b
           * - 1
             - 2
        >>> rst_list_table("No error logged.", ["a", "b"], [])
        'No error logged.\\n'
    """
    rows = list(rows)
    if not rows:
        return caption + "\n"
    out = [f".. list-table:: {caption}", "   :header-rows: 1", ""]
    for cells in [header, *rows]:
        out += [f"   * - {cells[0]}", *(f"     - {cell}" for cell in cells[1:])]
    return "\n".join(out) + "\n"


def score_table(
    runs: Sequence[RunRecord],
    *,
    variants: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    finished_only: bool = False,
    decimals: int = 1,
) -> ScoreTable:
    """PSP Table 1: final evaluation return per (task, variant), mean ± std across seeds.

    The final return of a seed is its last logged evaluation (the value at its largest
    step); runs without any evaluation are left out, and so are unfinished runs when
    ``finished_only``. Several runs with the same (task, variant, seed) (copies of a
    study) are all counted. ``variants`` and ``tasks`` (``"domain-task"`` names) order
    the columns and rows (others follow: variants in :data:`VARIANT_ORDER`, then
    alphabetically); they do not filter. A task run with several ``env.distractor``
    values gets one row per distractor, ``"<task> [<distractor>]"``.

    Examples:
        >>> from pathlib import Path
        >>> def run(variant, seed, final):
        ...     return RunRecord(Path("."), "cheetah", "run", variant, seed,
        ...                      np.array([0.0, 1000.0]), np.array([0.0, final]), True)
        >>> table = score_table([run("dreamer", 0, 1.0), run("dreamer", 1, 3.0),
        ...                      run("psp", 0, 5.0), run("psp", 1, 9.0)])
        >>> print(table.to_markdown())
        | task | dreamer | psp |
        |---|---:|---:|
        | cheetah-run | 2.0 ± 1.4 | **7.0 ± 2.8** |
        <BLANKLINE>
        Table: Final evaluation return (last evaluation of each seed), mean ± std across seeds (sample std): 2 seeds per cell, at 1,000 env steps. Best mean per row in bold.
        <BLANKLINE>
    """
    kept, labels = _evaluated(runs, finished_only)
    cells: dict[tuple[str, str], Cell] = {}
    for run in kept:
        cell = cells.setdefault((labels[id(run)], run.variant), Cell([], [], []))
        cell.seeds.append(run.seed)
        cell.finals.append(float(run.final_return))
        cell.final_steps.append(float(run.final_step))
    order = list(variants or [])
    return ScoreTable(
        rows=ordered_rows(labels.values(), tasks),
        variants=sorted({r.variant for r in kept}, key=lambda v: variant_key(v, order)),
        cells=cells,
        unfinished=sum(not r.done for r in kept),
        decimals=decimals,
        runs=kept,
    )


def curves_by_row(
    runs: Sequence[RunRecord], *, finished_only: bool = False
) -> dict[str, dict[str, list[tuple[np.ndarray, np.ndarray]]]]:
    """``row -> variant -> [(steps, returns) per seed]`` for runs with an evaluation."""
    kept, labels = _evaluated(runs, finished_only)
    curves: dict[str, dict[str, list[tuple[np.ndarray, np.ndarray]]]] = {}
    for run in kept:
        curves.setdefault(labels[id(run)], {}).setdefault(run.variant, []).append(
            (run.steps, run.returns)
        )
    return curves
