"""The summary of a study, from its published results (``docs/results/<study>/``).

:func:`write_study_summary` writes, into ``<results>/<study>/``, everything the results
page shows: the score table and the learning curves
(:func:`~torchrl_psp.study.summary.write_summary`), the agent / background error table
and curves (:mod:`~torchrl_psp.study.regions`), the wall-clock time and machine of every
run (:func:`wall_clock_table`, from the ``invocations.csv`` each run publishes) and
``summary.inc``, a reStructuredText fragment of all of it with one reconstruction panel
per (row, variant), which ``docs/results.rst`` includes. Nothing is rerun: the published
copies are enough to rebuild every table.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from torchrl_psp.study.launcher import INVOCATIONS_FILE
from torchrl_psp.study.regions import region_error_curves, region_error_table
from torchrl_psp.study.runs import RunRecord, find_runs
from torchrl_psp.study.scores import row_labels
from torchrl_psp.study.studies import Study
from torchrl_psp.study.summary import write_summary

__all__ = [
    "FRAGMENT",
    "WALL_CLOCK_COLUMNS",
    "StudySummary",
    "wall_clock_table",
    "write_study_summary",
]

#: The reStructuredText fragment of a study's summary, in ``<results>/<study>/``.
FRAGMENT = "summary.inc"


def _read_invocations(run: RunRecord) -> list[dict[str, str]]:
    path = run.path / INVOCATIONS_FILE
    if not path.is_file():
        return []
    return list(csv.DictReader(io.StringIO(path.read_text())))


#: The columns of :func:`wall_clock_table`.
WALL_CLOCK_COLUMNS = (
    "task",
    "variant",
    "seed",
    "final_step",
    "final_return",
    "wall_clock_min",
    "invocations",
    "runs_at_a_time",
    "cpus",
    "cpu_model",
    "path",
)


def _wall_clock_rows(
    runs: Sequence[RunRecord], relative_to: str | Path | None = None
) -> list[dict[str, str]]:
    labels = row_labels(runs)
    rows = []
    for run in runs:
        lines = _read_invocations(run)
        seconds = sum(float(line["seconds"]) for line in lines)
        path = Path(run.path)
        if relative_to is not None:
            path = path.resolve().relative_to(Path(relative_to).resolve())
        values = [
            labels[id(run)],
            run.variant,
            str(run.seed),
            "" if run.final_step is None else str(int(run.final_step)),
            "" if run.final_return is None else f"{run.final_return:.6g}",
            f"{seconds / 60:.1f}" if lines else "",
            str(len(lines)),
            "/".join(sorted({line["processes"] for line in lines})),
            "/".join(sorted({line["cpus"] for line in lines})),
            "; ".join(sorted({line["cpu_model"] for line in lines})),
            path.as_posix(),
        ]
        rows.append(dict(zip(WALL_CLOCK_COLUMNS, values)))
    return rows


def wall_clock_table(runs: Sequence[RunRecord], relative_to: str | Path | None = None) -> str:
    """CSV (:data:`WALL_CLOCK_COLUMNS`), one line per run: its row, variant, seed, final
    step and return, the wall-clock minutes of all its processes together
    (``invocations.csv``; empty when it has none), how many processes, how many runs
    shared the machine, its logical CPUs and CPU model, and its folder (relative to
    ``relative_to`` when given).

    Examples:
        >>> import tempfile, numpy as np
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     _ = (Path(folder) / "invocations.csv").write_text(
        ...         "start,end,seconds,exit_code,processes,omp_threads,cpus,cpu_model\\n"
        ...         "0,1800,1800.0,-15,2,1,2,Some CPU\\n0,2250,2250.0,0,2,1,2,Some CPU\\n")
        ...     run = RunRecord(Path(folder), "cartpole", "swingup", "psp", 0,
        ...                     np.array([112000.0]), np.array([400.0]), True)
        ...     print(wall_clock_table([run], relative_to=folder).splitlines()[1])
        cartpole-swingup,psp,0,112000,400,67.5,2,2,2,Some CPU,.
    """
    out = io.StringIO()
    writer = csv.DictWriter(out, WALL_CLOCK_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(_wall_clock_rows(runs, relative_to))
    return out.getvalue()


def _wall_clock_rst(runs: Sequence[RunRecord]) -> str:
    """The runs' table for the results page, then the machines (CPU model and count)."""
    rows = _wall_clock_rows(runs)
    out = [
        ".. list-table:: Every published run: wall-clock minutes of all its processes "
        "together, and how many runs shared the machine",
        "   :header-rows: 1",
        "",
        "   * - task",
        "     - variant",
        "     - seed",
        "     - final env step",
        "     - final return",
        "     - minutes",
        "     - runs at a time",
    ]
    for row in rows:
        final = row["final_return"]
        out += [f"   * - {row['task']}", f"     - {row['variant']}", f"     - {row['seed']}"]
        out += [
            f"     - {row['final_step'] or '–'}",
            f"     - {float(final):.1f}" if final else "     - –",
            f"     - {row['wall_clock_min'] or '–'}",
            f"     - {row['runs_at_a_time'] or '–'}",
        ]
    machines = sorted({(row["cpu_model"], row["cpus"]) for row in rows if row["cpu_model"]})
    described = "; ".join(f"{model} ({cpus} logical CPUs)" for model, cpus in machines)
    return "\n".join(out) + f"\n\nMachines: {described or 'not recorded'}.\n"


@dataclass
class StudySummary:
    """What :func:`write_study_summary` wrote (``markdown``: the score and error tables)."""

    runs: list[RunRecord]
    markdown: str
    paths: list[Path]


def _panels(
    study: Study, runs: Sequence[RunRecord], folder: Path, docs_uri: str, rows: Sequence[str]
) -> list[str]:
    """One reconstruction panel per (row, variant): the last one of its lowest seed (none
    for a variant without a decoder, ``drqv2`` and ``dreamerpro``: no such figure)."""
    labels = row_labels(runs)
    out = []
    for row in rows:
        for variant in study.variants:
            seeds = sorted(
                (r for r in runs if labels[id(r)] == row and r.variant == variant),
                key=lambda r: r.seed,
            )
            panels = sorted(seeds[0].path.glob("figures/reconstruction_*.png")) if seeds else []
            if not panels:
                continue
            relative = panels[-1].resolve().relative_to(folder.resolve()).as_posix()
            step = panels[-1].stem.rsplit("_", 1)[-1].lstrip("0") or "0"
            out += [
                f".. figure:: {docs_uri}/{study.name}/{relative}",
                f"   :alt: {row}, {variant}: true, reconstruction, difference",
                "   :width: 100%",
                "",
                f"   {row}, ``{variant}``, seed {seeds[0].seed}, evaluation at {int(step):,} "
                "env steps: true | reconstruction | difference (| PSP loss weight, for the "
                "losses that weight pixels).",
                "",
            ]
    return out


def _fragment(
    study: Study,
    runs: Sequence[RunRecord],
    folder: Path,
    docs_uri: str,
    tables: dict[str, str],
    rows: Sequence[str],
) -> str:
    where = f"{docs_uri}/{study.name}"
    head = [
        ".. Written by torchrl_psp.study.report.write_study_summary from the published",
        f".. results in this folder: python recipes/compare.py --study {study.name} "
        "--summarize-only",
        "",
    ]
    if not runs:
        return "\n".join(
            head
            + [
                f"No run of the study ``{study.name}`` has been published yet (no run "
                f"directory under ``docs/results/{study.name}/``): there is no result to "
                "report.",
                "",
            ]
        )
    body = [
        f"{len(runs)} published run(s) of the study ``{study.name}`` "
        f"({sum(r.done for r in runs)} finished).",
        "",
        "**Scores** (``scores.md``, ``scores.tex``, ``scores.csv``):",
        "",
        tables["scores"],
        f".. image:: {where}/learning_curves.png",
        "   :alt: learning curves of the study, mean and standard error across seeds",
        "   :width: 100%",
        "",
        "**Reconstruction error inside and outside the task mask** (``region_errors.md``, "
        "``region_errors.csv``):",
        "",
        tables["regions"],
    ]
    if (folder / "region_errors.png").is_file():
        body += [
            f".. image:: {where}/region_errors.png",
            "   :alt: agent and background reconstruction errors against environment steps",
            "   :width: 100%",
            "",
        ]
    body += [
        "**Runs** (``wall_clock.csv``, ``runs.csv``):",
        "",
        tables["wall_clock"],
        "**Reconstruction panels** (the final evaluation of the lowest seed of each "
        "variant, from its first evaluation episode; a variant without a decoder has "
        "none):",
        "",
        *(_panels(study, runs, folder, docs_uri, rows) or ["None: no published run has one.", ""]),
    ]
    return "\n".join(head + body)


def write_study_summary(
    study: Study,
    results_root: str | Path,
    *,
    band: str = "sem",
    docs_uri: str = "/results",
) -> StudySummary:
    """Summarises the published runs of ``study`` (``<results_root>/<study>/``) into that
    folder (see the module docstring): ``scores.*``, ``runs.csv``, ``learning_curves.*``,
    ``region_errors.md``/``.csv``/``.png``/``.pdf``, ``wall_clock.csv`` and
    :data:`FRAGMENT`. With no published run, only the fragment (saying so) is written.
    ``docs_uri`` is ``results_root`` as the docs name it (for the images of the fragment).

    Examples:
        >>> import tempfile
        >>> from torchrl_psp.study.studies import STUDIES
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     summary = write_study_summary(STUDIES["cpu"], folder)
        ...     [p.name for p in summary.paths], "No run" in summary.paths[0].read_text()
        (['summary.inc'], True)
    """
    from torchrl_psp.figures.curves import save_figure

    folder = Path(results_root) / study.name
    folder.mkdir(parents=True, exist_ok=True)
    runs = find_runs(folder)
    # rows in the groups' order ("<task> [<distractor>]"; the plain task when one was run)
    order = [*study.rows, study.task]
    paths: list[Path] = []
    tables = {"scores": "", "regions": "", "wall_clock": ""}
    markdown = ""
    if runs:
        summary = write_summary(folder, variants=study.variants, tasks=order, band=band)
        paths += summary.paths
        regions = region_error_table(runs, variants=study.variants, tasks=order)
        (folder / "region_errors.md").write_text(regions.to_markdown())
        (folder / "region_errors.csv").write_text(regions.to_csv())
        paths += [folder / "region_errors.md", folder / "region_errors.csv"]
        if regions.cells:
            figure = region_error_curves(runs, variants=study.variants, tasks=order, band=band)
            paths += save_figure(figure, folder / "region_errors.pdf")
        else:  # no error logged (e.g. only drqv2 and dreamerpro runs): no stale figure
            for stale in ("region_errors.png", "region_errors.pdf"):
                (folder / stale).unlink(missing_ok=True)
        wall_clock = wall_clock_table(runs, relative_to=folder)
        (folder / "wall_clock.csv").write_text(wall_clock)
        paths.append(folder / "wall_clock.csv")
        table = summary.table
        tables = {
            "scores": table.to_rst(),
            "regions": regions.to_rst(),
            "wall_clock": _wall_clock_rst(runs),
        }
        markdown = summary.markdown + "\n" + regions.to_markdown()
    fragment = folder / FRAGMENT
    rows = summary.table.rows if runs else []
    fragment.write_text(_fragment(study, runs, folder, docs_uri, tables, rows))
    return StudySummary(runs=runs, markdown=markdown, paths=[fragment, *paths])
