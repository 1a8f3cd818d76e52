"""Compares variants across seeds and tasks: runs them, then writes the papers' table and curves.

Every (task, variant, seed) is one run of ``recipes/dreamer_psp.py`` in
``<root>/<task>/<variant>/seed<seed>``; finished runs are skipped, unfinished ones resumed::

    python recipes/compare.py --variants dreamer psp --seeds 0 1 2 \\
        --tasks cheetah-run hopper-stand --root comparisons/my_study --processes 2 \\
        -- preset=cpu env.distractor=reafferent

    python recipes/compare.py ... --dry-run             # print the commands only
    python recipes/compare.py --root comparisons/my_study --summarize-only

The summary of every run under ``--root`` goes into ``--root``: ``scores.md``,
``scores.tex``, ``scores.csv`` (final evaluation return, mean ± std across seeds, PSP
Table 1 layout), ``runs.csv`` (one line per run), ``learning_curves.png`` / ``.pdf``
(mean ± standard error across seeds, one panel per task). Everything after ``--`` is
passed to every run as Hydra overrides. The exit status is non-zero when a run failed;
it is 2, before anything runs, when this Python lacks one of ``pyproject.toml``'s
requirements (the project is not installed).

A study of ``torchrl_psp/study/studies.py`` is one command::

    python recipes/compare.py --study cpu [--groups reafferent video] [--variants ...] \\
        [--seeds ...] [--processes N] [--dry-run | --summarize-only] [-- OVERRIDES ...]

    python recipes/compare.py --study cpu --variants drqv2 dreamerpro   # the papers' baselines

Its runs work in ``--root`` (default ``studies/<study>``: replay, checkpoints); each
finished run's small results (evaluation curves, episodes, config, wall-clock, last
figures) are copied to ``--results`` (default ``docs/results``) as
``<study>/<group>/<variant>/seed<k>/``, and a run whose results are there is not run
again. The summary (scores, curves, agent / background errors, wall-clock, the results
page's ``summary.inc``) is built from those copies, in ``<results>/<study>/``; runs
that log no reconstruction error (``drqv2``, ``dreamerpro``: no decoder) are in the
scores and curves, and left out of the agent / background error table.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

RECIPE = Path(__file__).resolve().parent / "dreamer_psp.py"
RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"
PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Splits ``argv`` at the first ``--``: the options, then the overrides for every run."""
    if "--" in argv:
        cut = argv.index("--")
        argv, overrides = argv[:cut], argv[cut + 1 :]
    else:
        overrides = []
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        usage="%(prog)s (--root DIR | --study NAME [--groups ...]) [--variants ...] "
        "[--seeds ...] [--tasks ...] [--processes N] [--dry-run | --summarize-only] "
        "[-- OVERRIDES ...]",
    )
    parser.add_argument(
        "--root",
        help="folder of the runs (and, without --study, of the summary); "
        "with --study: default studies/<study>",
    )
    parser.add_argument(
        "--study", help="a study of torchrl_psp/study/studies.py (e.g. cpu): its runs and settings"
    )
    parser.add_argument(
        "--groups", nargs="+", help="with --study: only these groups (default: all)"
    )
    parser.add_argument(
        "--results",
        default=str(RESULTS),
        help="with --study: where finished runs are published (default: %(default)s)",
    )
    parser.add_argument(
        "--variants", nargs="+", help="default: dreamer psp; with --study: all of its groups'"
    )
    parser.add_argument(
        "--seeds", nargs="+", type=int, help="default: 0 1 2; with --study: the study's seeds"
    )
    parser.add_argument(
        "--tasks", nargs="+", help="<domain>-<task>, e.g. hopper-stand (default: cheetah-run)"
    )
    parser.add_argument("--processes", type=int, default=1, help="runs at a time (default 1)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    parser.add_argument(
        "--summarize-only", action="store_true", help="only summarise the runs under --root"
    )
    parser.add_argument(
        "--band",
        choices=("sem", "std", "none"),
        default="sem",
        help="shaded band of the curves: standard error (default), std, none",
    )
    parser.add_argument(
        "--finished-only", action="store_true", help="leave unfinished runs out of the summary"
    )
    parser.add_argument(
        "--recipe", default=str(RECIPE), help="training script (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    if args.study is None:
        if args.root is None:
            parser.error("give --root DIR (or --study NAME).")
        if args.groups:
            parser.error("--groups selects groups of a --study.")
        args.variants = args.variants or ["dreamer", "psp"]
        args.seeds = [0, 1, 2] if args.seeds is None else args.seeds
        args.tasks = args.tasks or ["cheetah-run"]
    elif args.tasks:
        parser.error(f"--tasks: the study {args.study!r} has its own task.")
    return args, overrides


def _print_plan(specs, *, dry_run: bool) -> None:
    """What is skipped or conflicting and, with ``dry_run``, the commands."""
    for spec in specs:
        if spec.status == "published":
            print(
                f"# published, skipped: {spec.name}"
                if dry_run
                else f"[skip] {spec.name}: published"
            )
        elif spec.status == "done":
            print(
                f"# done, skipped: {spec.run_dir}"
                if dry_run
                else f"[skip] {spec.name}: finished ({spec.run_dir})"
            )
        elif spec.status == "conflict":
            reason = "; ".join(spec.conflicts)
            print(
                f"# CONFLICT, not resumed: {spec.run_dir}: {reason}"
                if dry_run
                else f"[conflict] {spec.name}: not resumed: {reason}"
            )
        elif dry_run:
            if spec.status == "resume":
                print(f"# unfinished, resumed: {spec.run_dir}")
            print(shlex.join(spec.command))


def _conflicts(specs) -> list[str]:
    return [
        f"{spec.name} (not resumed: {'; '.join(spec.conflicts)})"
        for spec in specs
        if spec.status == "conflict"
    ]


def _lacks_requirements() -> bool:
    """Says (and returns True) when this Python lacks what the runs and the summary import."""
    from torchrl_psp.utils.requirements import missing_requirements

    missing = missing_requirements(PYPROJECT)
    if missing:
        print(
            f"compare.py: error: this Python ({sys.executable}) lacks the project's "
            f"requirements {', '.join(missing)}: every run would fail at its first import. "
            f"Install the project first: pip install -e {PYPROJECT.parent}",
            file=sys.stderr,
        )
    return bool(missing)


def _report(summary_text: str, paths, failed: list[str]) -> int:
    print()
    print(summary_text)
    print("Wrote " + ", ".join(str(p) for p in paths))
    if failed:
        print(f"\n{len(failed)} run(s) failed:", file=sys.stderr)
        for name in failed:
            print(f"  {name}", file=sys.stderr)
        return 1
    return 0


def run_study_command(args: argparse.Namespace, overrides: list[str]) -> int:
    """``--study``: plan the study's runs, run the unpublished ones, summarise the
    published results."""
    from torchrl_psp.study.report import write_study_summary
    from torchrl_psp.study.studies import study_spec
    from torchrl_psp.study.study_runner import plan_study, run_study

    try:
        study = study_spec(args.study)
        root = Path(args.root or Path("studies") / study.name)
        plan = (
            []
            if args.summarize_only
            else plan_study(
                study,
                root,
                args.results,
                groups=args.groups,
                variants=args.variants,
                seeds=args.seeds,
                extra_overrides=overrides,
                recipe=args.recipe,
            )
        )
    except ValueError as error:
        print(f"compare.py: error: {error}", file=sys.stderr)
        return 2
    specs = [planned.spec for planned in plan]
    failed: list[str] = []
    if plan:
        _print_plan(specs, dry_run=args.dry_run)
        if args.dry_run:
            return 0
        results = run_study(plan, args.processes)
        failed = [name for name, code in results.items() if code != 0] + _conflicts(specs)
    summary = write_study_summary(study, args.results, band=args.band)
    text = summary.markdown or f"No published run of the study {study.name} yet."
    return _report(text, summary.paths, failed)


def main(argv: list[str] | None = None) -> int:
    from torchrl_psp.study.launcher import plan_runs, run_all
    from torchrl_psp.study.summary import write_summary

    args, overrides = parse_args(sys.argv[1:] if argv is None else list(argv))
    if not args.dry_run and _lacks_requirements():
        return 2
    if args.study is not None:
        return run_study_command(args, overrides)
    root = Path(args.root)
    failed: list[str] = []
    if not args.summarize_only:
        specs = plan_runs(
            root, args.tasks, args.variants, args.seeds, overrides, recipe=args.recipe
        )
        _print_plan(specs, dry_run=args.dry_run)
        if args.dry_run:
            return 0
        results = run_all(specs, args.processes)
        failed = [name for name, code in results.items() if code != 0] + _conflicts(specs)
    summary = write_summary(
        root,
        variants=args.variants,
        tasks=args.tasks,
        band=args.band,
        finished_only=args.finished_only,
    )
    return _report(summary.markdown, summary.paths, failed)


if __name__ == "__main__":
    sys.exit(main())
