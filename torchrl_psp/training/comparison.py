"""Comparisons of variants across seeds and tasks: running them, and the papers' table and curves.

``recipes/compare.py`` is the command line; this module holds the logic:

* running: :func:`plan_runs` lays out one run of ``recipes/dreamer_psp.py`` per
  (task, variant, seed) under ``<root>/<task>/<variant>/seed<seed>`` and says which are
  done (skipped), unfinished (resumed with ``resume=<run dir>``) or new;
  :func:`run_all` runs them, a few at a time.
* summarising: :func:`find_runs` reads every run under a folder (its ``config.yaml`` and
  its evaluation curve ``logs/scalars/eval/return.csv``), :func:`score_table` builds
  PSP Table 1 / SD Table 1 (final evaluation return, mean ± std across seeds, one row per
  task, one column per variant), :func:`learning_curves_grid` the curves (PSP Figs. 3
  and 6), and :func:`write_summary` writes them all.

What a run directory must hold (written by the recipe):

* ``config.yaml``: the full configuration, with ``variant`` (a string), ``seed``,
  ``env.domain``, ``env.task`` (and optionally ``env.distractor``); Hydra's own
  ``.hydra/config.yaml`` is read when ``config.yaml`` is missing;
* ``logs/scalars/eval/return.csv``: lines ``step,value`` (environment steps, mean
  evaluation return), appended at each evaluation; a header line is ignored;
* ``done``: an empty marker file written when the run has finished.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import shlex
import subprocess
import sys
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from torchrl_psp.training.config import RESUMABLE

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "CONFIG_FILE",
    "DONE_MARKER",
    "EVAL_RETURN_CSV",
    "LOG_FILE",
    "VARIANT_ORDER",
    "Cell",
    "RunRecord",
    "RunSpec",
    "ScoreTable",
    "Summary",
    "curves_by_row",
    "find_runs",
    "learning_curves_grid",
    "plan_runs",
    "read_curve",
    "read_run",
    "run_all",
    "run_dir_for",
    "run_status",
    "score_table",
    "split_task",
    "write_summary",
]

#: The configuration dump of a run, relative to its directory.
CONFIG_FILE = "config.yaml"
#: The evaluation curve of a run (``step,value`` lines), relative to its directory.
EVAL_RETURN_CSV = "logs/scalars/eval/return.csv"
#: Marker file written by the recipe when a run has finished.
DONE_MARKER = "done"
#: Where :func:`run_all` writes a run's stdout and stderr, relative to its directory.
LOG_FILE = "stdout.log"
#: Column order of the tables (SPEC §4); other variants follow, alphabetically.
VARIANT_ORDER = ("dreamer", "psp", "psp_noseg", "psp_noadv", "sd_gt", "sd_approx", "sd_l2")


# =========================================================================== reading runs
@dataclass
class RunRecord:
    """One run directory: what it trained and its evaluation curve (sorted by step)."""

    path: Path
    domain: str
    task: str
    variant: str
    seed: int
    steps: np.ndarray
    returns: np.ndarray
    done: bool
    distractor: str | None = None

    @property
    def task_name(self) -> str:
        """``"<domain>-<task>"``, e.g. ``"cheetah-run"``."""
        return f"{self.domain}-{self.task}"

    @property
    def final_step(self) -> float | None:
        """Environment step of the last evaluation (``None`` before the first)."""
        return float(self.steps[-1]) if self.steps.size else None

    @property
    def final_return(self) -> float | None:
        """Return of the last evaluation (``None`` before the first)."""
        return float(self.returns[-1]) if self.returns.size else None


def read_curve(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Reads ``step,value`` lines: sorted steps and their values, the last value kept where a
    step repeats (a resumed run re-evaluating a step). Lines that are not two numbers
    (a header) are skipped; a missing file gives empty arrays.

    Examples:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     csv_path = Path(folder) / "return.csv"
        ...     _ = csv_path.write_text("step,value\\n0,1.5\\n1000,7\\n1000,8\\n2000,9\\n")
        ...     steps, values = read_curve(csv_path)
        >>> steps.tolist(), values.tolist()
        ([0.0, 1000.0, 2000.0], [1.5, 8.0, 9.0])
    """
    path = Path(path)
    if not path.is_file():
        return np.zeros(0), np.zeros(0)
    last: dict[float, float] = {}
    for row in csv.reader(io.StringIO(path.read_text())):
        if len(row) < 2:
            continue
        try:
            step, value = float(row[0]), float(row[1])
        except ValueError:
            continue
        if math.isfinite(step) and math.isfinite(value):
            last[step] = value
    steps = sorted(last)
    return np.asarray(steps, dtype=np.float64), np.asarray([last[s] for s in steps], np.float64)


def _load_yaml(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None


def _get(config: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        if not isinstance(config, dict) or key not in config:
            return None
        config = config[key]
    return config


def _overrides(run_dir: Path) -> dict[str, str]:
    """``key=value`` pairs of Hydra's ``.hydra/overrides.yaml`` (empty when absent)."""
    items = _load_yaml(run_dir / ".hydra" / "overrides.yaml")
    pairs = {}
    for item in items if isinstance(items, list) else []:
        if isinstance(item, str) and "=" in item:
            key, value = item.split("=", 1)
            pairs[key.lstrip("+~")] = value
    return pairs


def _config_path(run_dir: Path) -> Path | None:
    for candidate in (run_dir / CONFIG_FILE, run_dir / ".hydra" / CONFIG_FILE):
        if candidate.is_file():
            return candidate
    return None


def read_run(run_dir: str | Path) -> RunRecord:
    """Reads one run directory (see the module docstring for what it holds).

    Each field comes from ``config.yaml`` (``variant``, ``seed``, ``env.domain``,
    ``env.task``, ``env.distractor``); where the config lacks it, from Hydra's
    ``.hydra/overrides.yaml``, and for ``variant`` and ``seed`` from the
    ``<variant>/seed<seed>`` layout of :func:`run_dir_for`. A ``variant`` that is a
    config group (a mapping) is named by its ``name`` entry or Hydra's
    ``runtime.choices``.

    Raises:
        ValueError: when the task, variant or seed cannot be found.
    """
    run_dir = Path(run_dir)
    config_path = _config_path(run_dir)
    config = _load_yaml(config_path) if config_path is not None else None
    config = config if isinstance(config, dict) else {}
    overrides = _overrides(run_dir)

    def field_of(key: str) -> Any:
        value = _get(config, key)
        return overrides.get(key) if value is None else value

    variant = field_of("variant")
    if isinstance(variant, dict):
        variant = variant.get("name") or _get(
            _load_yaml(run_dir / ".hydra" / "hydra.yaml"), "hydra.runtime.choices.variant"
        )
    seed = field_of("seed")
    layout = re.fullmatch(r"seed(-?\d+)", run_dir.name)
    if seed is None and layout:
        seed = int(layout.group(1))
    if variant is None and layout:
        variant = run_dir.parent.name
    domain, task = field_of("env.domain"), field_of("env.task")
    missing = [
        name
        for name, value in (("variant", variant), ("seed", seed), ("env.domain", domain))
        if value is None
    ] + (["env.task"] if task is None else [])
    if missing:
        raise ValueError(f"{run_dir}: cannot read {', '.join(missing)} from its config.")
    distractor = field_of("env.distractor")
    steps, returns = read_curve(run_dir / EVAL_RETURN_CSV)
    return RunRecord(
        path=run_dir,
        domain=str(domain),
        task=str(task),
        variant=str(variant),
        seed=int(seed),
        steps=steps,
        returns=returns,
        done=(run_dir / DONE_MARKER).exists(),
        distractor=None if distractor is None else str(distractor),
    )


def find_runs(root: str | Path) -> list[RunRecord]:
    """Every run under ``root``: a directory holding ``config.yaml`` (or Hydra's
    ``.hydra/config.yaml``); folders inside a run are not searched. Directories whose
    config cannot be read are skipped with a warning. Sorted by task, variant, seed.
    """
    root = Path(root)
    runs = []
    for folder, dirs, files in os.walk(root):
        folder_path = Path(folder)
        if CONFIG_FILE in files or (folder_path / ".hydra" / CONFIG_FILE).is_file():
            dirs[:] = []
            try:
                runs.append(read_run(folder_path))
            except ValueError as error:
                warnings.warn(str(error), stacklevel=2)
        else:
            dirs.sort()
    return sorted(runs, key=lambda r: (r.task_name, r.variant, r.seed, str(r.path)))


# =========================================================================== the table
def _variant_key(variant: str, order: Sequence[str]) -> tuple[int, int, str]:
    if variant in order:
        return (0, list(order).index(variant), variant)
    if variant in VARIANT_ORDER:
        return (1, VARIANT_ORDER.index(variant), variant)
    return (2, 0, variant)


def _row_labels(runs: Sequence[RunRecord]) -> dict[int, str]:
    """Row of each run: its task, plus ``[distractor]`` where a task has runs with several."""
    settings: dict[str, set] = {}
    for run in runs:
        settings.setdefault(run.task_name, set()).add(run.distractor)
    return {
        id(run): run.task_name
        if len(settings[run.task_name]) == 1
        else f"{run.task_name} [{run.distractor}]"
        for run in runs
    }


def _ordered(labels: Iterable[str], order: Sequence[str] | None) -> list[str]:
    order = list(order or [])
    labels = set(labels)

    def key(label: str) -> tuple[int, int, str]:
        base = label.split(" [")[0]
        return (0, order.index(base), label) if base in order else (1, 0, label)

    return sorted(labels, key=key)


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

    def to_latex(self) -> str:
        """A ``table`` with ``\\caption`` and a ``booktabs`` ``tabular``."""

        def escape(text: str) -> str:
            return re.sub(r"([_&%#$])", r"\\\1", text)

        lines = [
            "% Written by torchrl_psp.training.comparison; needs \\usepackage{booktabs}.",
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

    def runs_csv(self) -> str:
        """One line per run in the table: its row, variant, seed, final step and return."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(
            ["task", "variant", "seed", "final_step", "final_return", "evaluations", "done", "path"]
        )
        labels = _row_labels(self.runs)
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
                    str(run.path),
                ]
            )
        return out.getvalue()


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
    kept = [r for r in runs if r.steps.size and (r.done or not finished_only)]
    labels = _row_labels(kept)
    cells: dict[tuple[str, str], Cell] = {}
    for run in kept:
        cell = cells.setdefault((labels[id(run)], run.variant), Cell([], [], []))
        cell.seeds.append(run.seed)
        cell.finals.append(float(run.final_return))
        cell.final_steps.append(float(run.final_step))
    order = list(variants or [])
    return ScoreTable(
        rows=_ordered(labels.values(), tasks),
        variants=sorted({r.variant for r in kept}, key=lambda v: _variant_key(v, order)),
        cells=cells,
        unfinished=sum(not r.done for r in kept),
        decimals=decimals,
        runs=kept,
    )


# =========================================================================== the curves
def curves_by_row(
    runs: Sequence[RunRecord], *, finished_only: bool = False
) -> dict[str, dict[str, list[tuple[np.ndarray, np.ndarray]]]]:
    """``row -> variant -> [(steps, returns) per seed]`` for runs with an evaluation."""
    kept = [r for r in runs if r.steps.size and (r.done or not finished_only)]
    labels = _row_labels(kept)
    curves: dict[str, dict[str, list[tuple[np.ndarray, np.ndarray]]]] = {}
    for run in kept:
        curves.setdefault(labels[id(run)], {}).setdefault(run.variant, []).append(
            (run.steps, run.returns)
        )
    return curves


def learning_curves_grid(
    runs: Sequence[RunRecord],
    *,
    variants: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    band: str = "sem",
    finished_only: bool = False,
    columns: int = 3,
) -> Figure:
    """One panel per task (rows of :func:`score_table`, same order), one line per variant:
    mean across seeds ± standard error (``band="std"``: standard deviation), as in PSP
    Figs. 3 and 6; see :func:`~torchrl_psp.training.figures.aggregate_seeds` for the
    common step grid. A variant has the same colour in every panel.
    """
    from matplotlib.figure import Figure

    from torchrl_psp.training.figures import plot_learning_curves

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
        ax.set_title(row)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("evaluation return")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize="small")
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
    ``scores.csv`` (:func:`score_table`), ``runs.csv`` (one line per run),
    ``learning_curves.png`` and ``learning_curves.pdf`` (:func:`learning_curves_grid`).

    Examples:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     summary = write_summary(folder)
        ...     sorted(p.name for p in summary.paths)
        ['learning_curves.pdf', 'learning_curves.png', 'runs.csv', 'scores.csv', 'scores.md', 'scores.tex']
    """
    from torchrl_psp.training.figures import save_figure

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
        ("runs.csv", table.runs_csv()),
    ):
        (root / name).write_text(text)
        paths.append(root / name)
    fig = learning_curves_grid(
        runs, variants=variants, tasks=tasks, band=band, finished_only=finished_only
    )
    paths += save_figure(fig, root / "learning_curves.pdf")
    return Summary(table=table, markdown=markdown, paths=paths)


# =========================================================================== running
def split_task(name: str) -> tuple[str, str]:
    """``"cheetah-run"`` -> ``("cheetah", "run")`` (split at the first ``-``).

    Examples:
        >>> split_task("ball_in_cup-catch")
        ('ball_in_cup', 'catch')
    """
    domain, sep, task = name.partition("-")
    if not sep or not domain or not task:
        raise ValueError(f"a task is written <domain>-<task> (e.g. cheetah-run), got {name!r}.")
    return domain, task


def run_dir_for(root: str | Path, task: str, variant: str, seed: int) -> Path:
    """``<root>/<task>/<variant>/seed<seed>`` (absolute)."""
    return Path(root).resolve() / task / variant / f"seed{seed}"


def run_status(run_dir: str | Path) -> str:
    """``"done"`` (the ``done`` marker exists), ``"resume"`` (the run has started: its
    ``config.yaml`` exists, which ``resume=`` needs) or ``"new"`` (nothing, or a run that
    died before writing its config: it starts again)."""
    run_dir = Path(run_dir)
    if (run_dir / DONE_MARKER).exists():
        return "done"
    if (run_dir / CONFIG_FILE).is_file():
        return "resume"
    return "new"


def _override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _resumable(override: str) -> bool:
    key = _override_key(override)
    return key.startswith(RESUMABLE) or key.startswith("hydra.") or key == "preset"


def _same(stored: Any, text: str) -> bool:
    import yaml

    try:
        wanted = yaml.safe_load(text)
    except yaml.YAMLError:
        wanted = text
    if stored == wanted or str(stored) == str(wanted):
        return True
    try:
        return float(stored) == float(wanted)
    except (TypeError, ValueError):
        return False


def _conflicts(run_dir: Path, identity: Sequence[str]) -> list[str]:
    """The ``key=value`` overrides that disagree with the stored ``config.yaml``."""
    config = _load_yaml(run_dir / CONFIG_FILE)
    if not isinstance(config, dict):
        return []
    found = []
    for override in identity:
        if "=" not in override or override.startswith(("+", "~")):
            continue
        key, value = override.split("=", 1)
        if key == "preset":  # the stored config names the preset it resolved to
            if value == "auto":
                continue
            key = "preset_name"
        elif _resumable(override):
            continue
        stored = _get(config, key)
        if stored is not None and not _same(stored, value):
            found.append(f"{override} (stored: {key}={stored})")
    return found


def _hydra_value(text: str) -> str:
    """Quotes a value for a Hydra override when it holds characters its grammar reserves."""
    if re.fullmatch(r"[\w./:+@~-]+", text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass
class RunSpec:
    """One planned run: where, its status and the command that (re)starts it.

    ``status``: ``"new"``, ``"resume"``, ``"done"`` (skipped) or ``"conflict"`` (an
    unfinished run whose stored config disagrees with the requested overrides, listed in
    ``conflicts``: not run, reported as a failure).
    """

    task: str
    variant: str
    seed: int
    run_dir: Path
    status: str
    command: list[str]
    conflicts: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.task}/{self.variant}/seed{self.seed}"


def plan_runs(
    root: str | Path,
    tasks: Sequence[str],
    variants: Sequence[str],
    seeds: Sequence[int],
    overrides: Sequence[str] = (),
    *,
    recipe: str | Path,
    python: str = sys.executable,
) -> list[RunSpec]:
    """The command of every (task, variant, seed), in that nesting order. A new run::

        <python> <recipe> variant=<v> seed=<s> env.domain=<d> env.task=<t> <overrides...>
            hydra.run.dir=<root>/<task>/<variant>/seed<s>

    An unfinished one (:func:`run_status`) continues from its stored ``config.yaml``::

        <python> <recipe> <resumable overrides...> hydra.run.dir=<run dir> resume=<run dir>

    keeping only the overrides the recipe accepts on resume (:data:`RESUMABLE`, ``preset``,
    ``hydra.*``); when another requested override (the variant, seed, task or an extra
    one such as ``env.distractor=video``) differs from the stored config, the run is
    marked ``"conflict"`` instead of being resumed with a configuration nobody asked for.

    Examples:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as root:
        ...     spec = plan_runs(root, ["cheetah-run"], ["psp"], [0], ["preset=cpu"],
        ...                      recipe="recipes/dreamer_psp.py", python="python")[0]
        >>> spec.status, " ".join(spec.command[2:7])
        ('new', 'variant=psp seed=0 env.domain=cheetah env.task=run preset=cpu')
    """
    specs = []
    for task in tasks:
        domain, task_name = split_task(task)
        for variant in variants:
            for seed in seeds:
                run_dir = run_dir_for(root, task, variant, seed)
                status = run_status(run_dir)
                where = _hydra_value(str(run_dir))
                identity = [
                    f"variant={variant}",
                    f"seed={seed}",
                    f"env.domain={domain}",
                    f"env.task={task_name}",
                    *overrides,
                ]
                conflicts: list[str] = []
                if status == "resume":
                    conflicts = _conflicts(run_dir, identity)
                    status = "conflict" if conflicts else status
                    kept = [o for o in overrides if _resumable(o)]
                    command = [python, str(recipe), *kept, f"hydra.run.dir={where}"]
                    command.append(f"resume={where}")
                else:
                    command = [python, str(recipe), *identity, f"hydra.run.dir={where}"]
                specs.append(RunSpec(task, variant, int(seed), run_dir, status, command, conflicts))
    return specs


def run_all(
    specs: Sequence[RunSpec],
    processes: int = 1,
    *,
    echo: Callable[[str], None] = print,
    poll_interval: float = 0.5,
    env: dict[str, str] | None = None,
) -> dict[str, int]:
    """Runs the specs that are not done, at most ``processes`` at a time; each one's output
    goes to ``<run_dir>/stdout.log`` (appended, after a line with its command).

    A failure does not stop the others. A run that exits with 0 without writing the
    ``done`` marker counts as failed (return code ``-999`` in the result). With several
    processes, ``OMP_NUM_THREADS`` is set to ``cpu_count // processes`` for the children
    unless already set. Interrupting (Ctrl-C) terminates the running children.

    Returns:
        ``RunSpec.name -> return code`` of every run started.
    """
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}.")
    child_env = dict(os.environ if env is None else env)
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    if processes > 1:
        child_env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // processes)))
    todo = deque(spec for spec in specs if spec.status in ("new", "resume"))
    running: dict[subprocess.Popen, tuple[RunSpec, Any, float]] = {}
    results: dict[str, int] = {}
    try:
        while todo or running:
            while todo and len(running) < processes:
                spec = todo.popleft()
                spec.run_dir.mkdir(parents=True, exist_ok=True)
                log = open(spec.run_dir / LOG_FILE, "a")  # noqa: SIM115 (closed below)
                log.write(f"$ {shlex.join(spec.command)}\n")
                log.flush()
                process = subprocess.Popen(
                    spec.command, stdout=log, stderr=subprocess.STDOUT, env=child_env
                )
                running[process] = (spec, log, time.monotonic())
                echo(f"[start] {spec.name} ({spec.status}) pid {process.pid}")
            finished = [p for p in running if p.poll() is not None]
            for process in finished:
                spec, log, start = running.pop(process)
                log.close()
                code = process.returncode
                if code == 0 and not (spec.run_dir / DONE_MARKER).exists():
                    code = -999
                results[spec.name] = code
                minutes = (time.monotonic() - start) / 60
                state = "done" if code == 0 else f"FAILED (exit {process.returncode})"
                if code == -999:
                    state = f"FAILED (exit 0 but no '{DONE_MARKER}' marker)"
                echo(
                    f"[{state}] {spec.name} after {minutes:.1f} min; log: {spec.run_dir / LOG_FILE}"
                )
            if not finished and running:
                time.sleep(poll_interval)
    except BaseException:
        for process in running:
            process.terminate()
        for process, (_, log, _) in running.items():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()
        raise
    return results
