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
passed to every run as Hydra overrides. The exit status is non-zero when a run failed.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

RECIPE = Path(__file__).resolve().parent / "dreamer_psp.py"


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Splits ``argv`` at the first ``--``: the options, then the overrides for every run."""
    if "--" in argv:
        cut = argv.index("--")
        argv, overrides = argv[:cut], argv[cut + 1 :]
    else:
        overrides = []
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        usage="%(prog)s --root DIR [--variants ...] [--seeds ...] [--tasks ...] "
        "[--processes N] [--dry-run | --summarize-only] [-- OVERRIDES ...]",
    )
    parser.add_argument("--root", required=True, help="folder of the study (runs and summary)")
    parser.add_argument("--variants", nargs="+", default=["dreamer", "psp"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--tasks", nargs="+", default=["cheetah-run"], help="<domain>-<task>, e.g. hopper-stand"
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
    return parser.parse_args(argv), overrides


def main(argv: list[str] | None = None) -> int:
    from torchrl_psp.study.launcher import plan_runs, run_all
    from torchrl_psp.study.summary import write_summary

    args, overrides = parse_args(sys.argv[1:] if argv is None else list(argv))
    root = Path(args.root)
    failed: list[str] = []
    if not args.summarize_only:
        specs = plan_runs(
            root, args.tasks, args.variants, args.seeds, overrides, recipe=args.recipe
        )
        if args.dry_run:
            for spec in specs:
                if spec.status == "done":
                    print(f"# done, skipped: {spec.run_dir}")
                elif spec.status == "conflict":
                    print(f"# CONFLICT, not resumed: {spec.run_dir}: {'; '.join(spec.conflicts)}")
                else:
                    if spec.status == "resume":
                        print(f"# unfinished, resumed: {spec.run_dir}")
                    print(shlex.join(spec.command))
            return 0
        for spec in specs:
            if spec.status == "done":
                print(f"[skip] {spec.name}: finished ({spec.run_dir})")
            elif spec.status == "conflict":
                print(f"[conflict] {spec.name}: not resumed: {'; '.join(spec.conflicts)}")
        results = run_all(specs, args.processes)
        failed = [name for name, code in results.items() if code != 0]
        failed += [
            f"{spec.name} (not resumed: {'; '.join(spec.conflicts)})"
            for spec in specs
            if spec.status == "conflict"
        ]
    summary = write_summary(
        root,
        variants=args.variants,
        tasks=args.tasks,
        band=args.band,
        finished_only=args.finished_only,
    )
    print()
    print(summary.markdown)
    print("Wrote " + ", ".join(str(p) for p in summary.paths))
    if failed:
        print(f"\n{len(failed)} run(s) failed:", file=sys.stderr)
        for name in failed:
            print(f"  {name}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
