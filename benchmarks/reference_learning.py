"""Learning curves side by side: the official DreamerV3 (JAX) and our recipe, same settings.

Each pair is one seed of each side started together, each pinned to its own CPU core
(``taskset``, one thread) and stopped after the same wall-clock budget. Both train on the
same pixel DMC task (64x64, no distractor) with the settings of :data:`MATCHED` (one table:
each row is one setting, its value, our override and the official flag), record every
training episode (sampled actions: the score the official code logs; ``docs/parity.rst``
row 30), and ``report`` draws return against environment steps and against updates and
writes a table.

Needs the reference environment built with the repository's files and DMC::

    benchmarks/reference/setup.sh --repo /path/to/dreamerv3-f8817c4 --with-dmc

Usage::

    python benchmarks/reference_learning.py run --action-repeat 8 --seeds 0 1 \\
        --minutes 30 --out docs/results/reference_learning
    python benchmarks/reference_learning.py report --out docs/results/reference_learning

``run`` keeps the runs' own directories (replay, checkpoints) under ``--work`` and copies
only the episode tables and the commands into ``--out`` (``ar<R>/{ours,official}_seed<S>.csv``,
``ar<R>/pair_seed<S>.json``). A pair whose files are already in ``--out`` is skipped.
``report --reread WORK`` first rereads the tables from the run directories still in WORK.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from torchrl_psp.utils.machine import cpu_model

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VENV = Path(
    os.environ.get("TORCHRL_PSP_REFERENCE_VENV", Path.home() / ".cache/torchrl-psp/dreamerv3-ref")
)

#: The matched settings: name -> (value, our override key or None, official flag or None).
#: ``None`` on one side: that side's code already has the value and no flag for it.
MATCHED: dict[str, tuple[object, str | None, str | None]] = {
    "model size (deter 512, hidden 64, 32x4 latents, CNN depth 4, units 64)": (
        "size1m",
        "model.size",
        None,  # the official size preset is passed with --configs
    ),
    "batch size": (16, "replay.batch_size", "--batch_size"),
    "sequence length": (16, "replay.sequence_length", "--batch_length"),
    "train ratio (replayed steps per policy step)": (
        128,
        "replay.replay_ratio",
        "--run.train_ratio",
    ),
    "learning rate (every module)": (3e-4, "optim.lr", "--agent.opt.lr"),
    "warm-up updates": (100, "optim.warmup_steps", "--agent.opt.warmup"),
    "actor entropy weight": (3e-3, "optim.entropy_bonus", "--agent.imag_loss.actent"),
    "return horizon (discount 1 - 1/horizon)": (100, "optim.horizon", "--agent.horizon"),
    "dynamics KL weight (ours fixed: parity row 7)": (0.5, None, "--agent.loss_scales.dyn"),
    "representation KL weight": (0.1, None, None),
    # the official loop trains once its replay holds batch x length steps
    "policy steps before the first update": (256, "collector.prefill_steps", None),
    "environments (ours: one env in the learner's process)": (1, None, "--run.envs"),
}


def matched_value(name_start: str) -> object:
    """The value of the first :data:`MATCHED` row whose name starts with ``name_start``."""
    return next(v for k, (v, _, _) in MATCHED.items() if k.startswith(name_start))


def _num(value: object) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def our_command(action_repeat: int, seed: int, run_dir: Path) -> list[str]:
    """Our recipe with the matched settings (no evaluation: the training episodes count)."""
    overrides = {key: v for v, key, _ in MATCHED.values() if key is not None}
    overrides["collector.num_workers"] = 0
    return [
        sys.executable,
        str(ROOT / "recipes" / "dreamer_psp.py"),
        "preset=cpu",
        "variant=dreamer",
        "env.domain=cartpole",
        "env.task=swingup",
        "env.distractor=none",
        "env.segmentation=none",
        f"env.frame_skip={action_repeat}",
        f"seed={seed}",
        *(f"{k}={_num(v)}" for k, v in overrides.items()),
        "train.total_env_steps=1000000000",
        "eval.every_env_steps=1000000000",  # never: the official train script evaluates none
        "eval.video=false",
        "eval.figures=false",
        "logger.wandb=disabled",
        "logger.progress_bar=false",
        "checkpoint.every_updates=1000000",
        f"hydra.run.dir={run_dir}",
    ]


def official_command(python: Path, action_repeat: int, seed: int, logdir: Path) -> list[str]:
    """The official ``dreamerv3/main.py`` with the matched settings, fp32 on the CPU."""
    flags = {flag: v for v, _, flag in MATCHED.values() if flag is not None}
    cmd = [
        str(python),
        "dreamerv3/main.py",
        "--configs",
        "dmc_vision",
        str(matched_value("model size")),
        "--task",
        "dmc_cartpole_swingup",
        "--env.dmc.repeat",
        str(action_repeat),
        "--seed",
        str(seed),
        "--logdir",
        str(logdir),
        "--jax.platform",
        "cpu",
        "--jax.compute_dtype",
        "float32",
        "--report_length",  # its report stream must fit the replay's chunks
        str(matched_value("sequence length")),
        "--run.report_every",
        "0",  # off: no open-loop reports (ours evaluates nothing either)
        "--run.save_every",
        "0",
        "--run.log_every",
        "30",
        "--logger.outputs",
        "jsonl",
    ]
    for flag, value in flags.items():
        cmd += [flag, _num(value)]
    return cmd


ONE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "XLA_FLAGS": "--xla_force_host_platform_device_count=1 "
    "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"),
    "JAX_PLATFORMS": "cpu",
}


def _start(cmd: list[str], core: int, cwd: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, **ONE_THREAD}
    return subprocess.Popen(
        ["taskset", "-c", str(core), *cmd],
        cwd=cwd,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(procs: dict[str, subprocess.Popen]) -> dict[str, int | None]:
    """Stops every run at the budget, all at the same moment (SIGKILL: both sides' episode
    tables are on disk already; the official one loses at most its last ``log_every`` 30 s).
    Returns each side's exit code if it ended before the budget (a failure), else ``None``.
    """
    codes = {side: proc.poll() for side, proc in procs.items()}
    for side, proc in procs.items():
        if codes[side] is None:
            os.killpg(proc.pid, signal.SIGKILL)
    for proc in procs.values():
        proc.wait()
    return codes


def official_episodes(logdir: Path, action_repeat: int) -> list[dict[str, float]]:
    """The official run's training episodes from its ``metrics.jsonl``.

    The official logger's ``step`` is the policy step times the action repeat
    (``dreamerv3/main.py`` ``make_logger``: ``multiplier``), i.e. environment steps, while
    its train ratio counts policy steps (parity row 28). Updates: the optimiser's count
    the official code logs (``train/opt/updates``, a mean over each ``log_every``
    interval), interpolated at the episode's step; before its first log, the official
    schedule's count (none until the replay holds ``batch x length`` steps, then one,
    then ``train_ratio / (batch x length)`` per policy step: ``embodied/run/train.py``,
    ``elements.when.Ratio``).
    """
    path = logdir / "metrics.jsonl"
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines()]
    logged = [(r["step"], r["train/opt/updates"]) for r in records if "train/opt/updates" in r]
    batch_steps = int(matched_value("batch size")) * int(matched_value("sequence length"))
    ratio = float(matched_value("train ratio")) / batch_steps

    def updates_at(env_steps: int) -> int:
        before = [(s, u) for s, u in logged if s <= env_steps]
        after = [(s, u) for s, u in logged if s > env_steps]
        if before and after:
            (s0, u0), (s1, u1) = before[-1], after[0]
            return round(u0 + (u1 - u0) * (env_steps - s0) / (s1 - s0))
        if before:
            return round(before[-1][1])
        policy_steps = env_steps // action_repeat
        if policy_steps < batch_steps:
            return 0
        return 1 + math.floor((policy_steps - batch_steps) * ratio)

    rows = []
    for record in records:
        if "episode/score" not in record:
            continue
        env_steps = int(record["step"])
        rows.append(
            {
                "env_steps": env_steps,
                "agent_steps": env_steps // action_repeat,
                "updates": updates_at(env_steps),
                "return": float(record["episode/score"]),
                "length": int(record.get("episode/length", 0)),
            }
        )
    return rows


def our_episodes(run_dir: Path) -> list[dict[str, float]]:
    """Our run's training episodes from ``logs/episodes.csv`` (:meth:`RunLogger.episode`)."""
    path = run_dir / "logs" / "episodes.csv"
    if not path.exists():
        return []
    with path.open() as f:
        return [
            {
                "env_steps": int(r["env_steps"]),
                "agent_steps": int(r["agent_steps"]),
                "updates": int(r["updates"]),
                "return": float(r["return"]),
                "length": int(r["length"]),
            }
            for r in csv.DictReader(f)
        ]


COLUMNS = ("env_steps", "agent_steps", "updates", "return", "length")


def _write_csv(path: Path, rows: list[dict[str, float]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def _read_csv(path: Path) -> list[dict[str, float]]:
    with path.open() as f:
        return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]


def collect_pair(
    work: Path, out: Path, action_repeat: int, seed: int
) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """Reads both runs' episodes from their directories in ``work`` into ``out``'s tables."""
    ours_rows = our_episodes(work / "ours")
    official_rows = official_episodes(work / "official", action_repeat)
    _write_csv(out / f"ours_seed{seed}.csv", ours_rows)
    _write_csv(out / f"official_seed{seed}.csv", official_rows)
    return ours_rows, official_rows


def recollect(out: Path, work_root: Path) -> None:
    """Rereads every pair of ``out`` whose run directories are still in ``work_root`` (the
    newest ``ar<R>_seed<S>_*`` folder), e.g. after a change to the tables' columns."""
    for pair in sorted(out.glob("ar*/pair_seed*.json")):
        ar, seed = int(pair.parent.name[2:]), int(pair.stem.removeprefix("pair_seed"))
        works = sorted(work_root.glob(f"ar{ar}_seed{seed}_*"))
        if works:
            ours, official = collect_pair(works[-1], pair.parent, ar, seed)
            print(f"ar{ar} seed {seed}: reread {works[-1]}: {len(ours)} + {len(official)} episodes")


def run_pair(args: argparse.Namespace, action_repeat: int, seed: int) -> None:
    out = args.out / f"ar{action_repeat}"
    if (out / f"pair_seed{seed}.json").exists():
        print(f"ar{action_repeat} seed {seed}: already in {out}, skipped", flush=True)
        return
    out.mkdir(parents=True, exist_ok=True)
    work = args.work / f"ar{action_repeat}_seed{seed}_{int(time.time())}"
    work.mkdir(parents=True)
    python = args.venv / "bin" / "python"
    src = args.venv / "src" / "dreamerv3"
    if not (src / "dreamerv3" / "configs.yaml").exists():
        sys.exit(
            f"{src}: no official DreamerV3 with configs.yaml; build it with "
            "benchmarks/reference/setup.sh --repo PATH --with-dmc"
        )
    ours_cmd = our_command(action_repeat, seed, work / "ours")
    official_cmd = official_command(python, action_repeat, seed, work / "official")
    started = time.time()
    ours = _start(ours_cmd, args.cores[0], ROOT, work / "ours.log")
    official = _start(official_cmd, args.cores[1], src, work / "official.log")
    print(f"ar{action_repeat} seed {seed}: running {args.minutes} min in {work}", flush=True)
    deadline = started + 60 * args.minutes
    while time.time() < deadline and (ours.poll() is None or official.poll() is None):
        time.sleep(5)
    codes = _stop({"ours": ours, "official": official})
    for side, code in codes.items():
        if code is not None:  # ended before the budget: a failure, not a result
            print(f"{side} ended early with exit code {code}; see {work}/{side}.log", flush=True)
    ours_rows, official_rows = collect_pair(work, out, action_repeat, seed)
    pair = {
        "action_repeat": action_repeat,
        "seed": seed,
        "minutes": args.minutes,
        "cores": {"ours": args.cores[0], "official": args.cores[1]},
        "work": str(work),
        "exit_codes_before_budget": codes,
        "matched": {k: v for k, (v, _, _) in MATCHED.items()},
        "ours_command": ours_cmd[1:],
        "official_command": official_cmd[1:],
        "machine": f"{cpu_model()}, {os.cpu_count()} cores",
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(started)),
    }
    (out / f"pair_seed{seed}.json").write_text(json.dumps(pair, indent=1) + "\n")
    print(
        f"ar{action_repeat} seed {seed}: ours {len(ours_rows)} episodes, official "
        f"{len(official_rows)} episodes",
        flush=True,
    )


# -- report ------------------------------------------------------------------------------


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def mean_return_between(rows: list[dict[str, float]], low: float, high: float) -> float:
    """Mean return of the episodes that ended in ``(low, high]`` environment steps."""
    return _mean([r["return"] for r in rows if low < r["env_steps"] <= high])


def _pair_dirs(out: Path) -> list[Path]:
    """The ``ar<R>`` folders of ``out`` that hold at least one finished pair."""
    dirs = [d for d in out.glob("ar*") if any(d.glob("pair_seed*.json"))]
    return sorted(dirs, key=lambda d: int(d.name[2:]))


HEADER = (
    "action repeat",
    "side",
    "seed",
    "env steps",
    "updates",
    "episodes",
    "first 5 episodes",
    "last 5 episodes",
    "episodes in the 2nd half of the official's env steps",
    "best episode",
    "random policy",
)


def table_rows(out: Path, random_returns: dict[int, str]) -> list[tuple[str, ...]]:
    """One row (:data:`HEADER`) per side and seed of every pair under ``out``."""
    table = []
    for ar_dir in _pair_dirs(out):
        ar = int(ar_dir.name[2:])
        for pair in sorted(ar_dir.glob("pair_seed*.json")):
            seed = int(pair.stem.removeprefix("pair_seed"))
            sides = {s: _read_csv(ar_dir / f"{s}_seed{seed}.csv") for s in ("official", "ours")}
            official_end = sides["official"][-1]["env_steps"] if sides["official"] else 0
            for side, rows in sides.items():
                returns = [r["return"] for r in rows]
                last = rows[-1] if rows else {"env_steps": 0, "updates": 0}
                table.append(
                    (
                        str(ar),
                        side,
                        str(seed),
                        f"{int(last['env_steps']):,}",
                        f"{int(last['updates']):,}",
                        str(len(rows)),
                        f"{_mean(returns[:5]):.1f}",
                        f"{_mean(returns[-5:]):.1f}",
                        f"{mean_return_between(rows, official_end / 2, official_end):.1f}",
                        f"{max(returns):.1f}" if returns else "nan",
                        random_returns.get(ar, ""),
                    )
                )
    return table


def summarize(out: Path, random_returns: dict[int, str]) -> str:
    """The markdown table of every pair under ``out`` (one row per side and seed)."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(out, random_returns)]
    return "\n".join(lines)


def summarize_rst(out: Path, random_returns: dict[int, str]) -> str:
    """The same table as an reStructuredText ``csv-table`` (for the docs)."""
    quoted = [", ".join(f'"{cell}"' for cell in row) for row in table_rows(out, random_returns)]
    lines = [
        ".. csv-table::",
        "   :header: " + ", ".join(f'"{h}"' for h in HEADER),
        "",
        *(f"   {line}" for line in quoted),
    ]
    return "\n".join(lines)


def _smoothed(values: list[float], window: int = 5) -> list[float]:
    return [_mean(values[max(0, i - window + 1) : i + 1]) for i in range(len(values))]


def draw(out: Path, path: Path) -> None:
    """One figure: a row per action repeat, return against env steps and against updates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ar_dirs = _pair_dirs(out)
    fig, axes = plt.subplots(len(ar_dirs), 2, figsize=(10, 3.4 * len(ar_dirs)), squeeze=False)
    colors = {"official": "tab:blue", "ours": "tab:orange"}
    for row, ar_dir in zip(axes, ar_dirs):
        for pair in sorted(ar_dir.glob("pair_seed*.json")):
            seed = int(pair.stem.removeprefix("pair_seed"))
            for side, color in colors.items():
                rows = _read_csv(ar_dir / f"{side}_seed{seed}.csv")
                if not rows:
                    continue
                smooth = _smoothed([r["return"] for r in rows])
                label = f"{side} seed {seed}"
                style = "-" if seed % 2 == 0 else "--"
                for ax, x in zip(row, ("env_steps", "updates")):
                    ax.plot([r[x] for r in rows], smooth, style, color=color, label=label)
        minutes = json.loads(next(ar_dir.glob("pair_seed*.json")).read_text())["minutes"]
        for ax, x in zip(row, ("environment steps", "updates")):
            ax.set_xlabel(x)
            ax.set_ylabel("training episode return (mean of 5)")
            ax.set_title(f"cartpole-swingup, action repeat {ar_dir.name[2:]}, {minutes} min")
            ax.grid(alpha=0.3)
        row[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run pairs (ours and official, one core each)")
    run.add_argument("--action-repeat", type=int, nargs="+", default=[8])
    run.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    run.add_argument("--minutes", type=float, default=30.0)
    run.add_argument("--cores", type=int, nargs=2, default=[0, 1], help="ours, official")
    run.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    run.add_argument("--work", type=Path, default=Path("/tmp/reference_learning"))
    report = sub.add_parser("report", help="figure and table from --out")
    report.add_argument(
        "--reread", type=Path, metavar="WORK", help="first reread the run directories in WORK"
    )
    for p in (run, report):
        p.add_argument("--out", type=Path, default=ROOT / "docs/results/reference_learning")
    args = parser.parse_args(argv)
    if args.command == "report" and args.reread is not None:
        recollect(args.out, args.reread)
    if args.command == "run":
        for action_repeat in args.action_repeat:
            for seed in args.seeds:
                run_pair(args, action_repeat, seed)
    if not any(args.out.glob("ar*/pair_seed*.json")):
        sys.exit(f"{args.out}: no ar<R>/pair_seed<S>.json; make them with `run` first")
    # random-policy returns (10 episodes): benchmarks/random_policy_return.py, docs/recipe.rst
    random_returns = {2: "61.1 +- 39.8", 8: "123.6 +- 71.4"}
    table = summarize(args.out, random_returns)
    (args.out / "table.md").write_text(table + "\n")
    (args.out / "table.rst").write_text(summarize_rst(args.out, random_returns) + "\n")
    print(table)
    draw(args.out, args.out / "reference_learning.png")


if __name__ == "__main__":
    main()
