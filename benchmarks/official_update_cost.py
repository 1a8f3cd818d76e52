"""Seconds per learner update: our DreamerV3 against the official one (JAX), same sizes and threads.

One complete learner update (world model, actor and critic losses, their gradients and
the optimiser step) at batch 16 x 64 of 64x64 images, fp32 on the CPU, for each size
(the official ``size1m`` and ``size12m``; ours: the presets of the same names) and each
thread count, of three implementations:

* **official**: the official DreamerV3 (danijar/dreamerv3 at f8817c4, JAX), built from
  its ``configs.yaml`` (``dmc_vision`` + the size, ``--jax.compute_dtype float32``) in
  the reference venv of ``benchmarks/reference/setup.sh`` and timed by
  ``benchmarks/reference/official_update.py`` (its jitted ``agent.train``; compile time =
  its own ``_compile_train``, XLA's lower + compile);
* **ours eager**: ``make_variant_loss(agent, "dreamer")`` +
  ``make_optimization_stepper(loss, warmup_steps=0)`` on
  ``synthetic_replay_sample(agent, 16, 64)``;
* **ours optimised**: the same after :func:`torchrl_psp.utils.memory.retain_freed_memory`
  and :func:`torchrl_psp.modules.compile_agent` (regional ``torch.compile``; by default
  with an empty inductor cache of its own, so the first update pays the whole
  compilation, as the official row's compile time does).

Every row runs in its own process pinned with ``taskset`` (``--cores``: one core for one
thread, core 1 by default; two threads on cores 0 and 1), the official row with XLA's
CPU thread flags (``official_update.py``), ours with ``torch.set_num_threads``. Each
row's first update is untimed (printed as ``first``: for the optimised row it includes
the compilation); then ``--rounds`` updates (``--official-rounds`` for the official row)
are timed and their medians of wall-clock and process CPU seconds reported. On a machine
shared with other jobs, CPU seconds are the steadier measure (a process that waits for a
core is not charged). Rows are printed as they finish and the JSON (``--json``) is
rewritten after each, so a killed run keeps what it measured.

Usage::

    python benchmarks/official_update_cost.py                  # both sizes, 1 and 2 threads
    python benchmarks/official_update_cost.py --sizes size1m --threads 1 --rounds 3 \
        --official-rounds 3 --json docs/results/official_update_cost.json

The reference interpreter is ``$TORCHRL_PSP_REFERENCE_PYTHON`` or
``~/.cache/torchrl-psp/dreamerv3-ref/bin/python`` (``--reference-python``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNNER = HERE / "reference" / "official_update.py"
SETUP = HERE / "reference" / "setup.sh"
DEFAULT_VENV = Path.home() / ".cache" / "torchrl-psp" / "dreamerv3-ref"
SIZES = ("size1m", "size12m")
MODES = ("eager", "optimised")
OFFICIAL_VARIANTS = ("default", "strided")
OFFICIAL = "official DreamerV3 (JAX)"
STRIDED = "official DreamerV3 (JAX), strided"
#: cores of a row with this many threads when --cores does not say
DEFAULT_CORES = {1: "1", 2: "0,1"}


def reference_python(path: str | None = None) -> Path:
    """The reference interpreter: ``path``, ``$TORCHRL_PSP_REFERENCE_PYTHON`` or the default venv's.

    Examples:
        >>> reference_python("/opt/ref/bin/python").name
        'python'
    """
    if path:
        return Path(path)
    configured = os.environ.get("TORCHRL_PSP_REFERENCE_PYTHON")
    return Path(configured) if configured else DEFAULT_VENV / "bin" / "python"


def check_reference_python(python: Path) -> None:
    """Raises :class:`FileNotFoundError` naming ``python`` and the setup command when absent."""
    if not python.exists():
        raise FileNotFoundError(
            f"reference DreamerV3 interpreter not found: {python}. Build the reference venv "
            f"with `{SETUP.relative_to(HERE.parent)} --repo /tmp/dreamerv3-f8817c4` (a copy of "
            "danijar/dreamerv3 at f8817c4: `git --git-dir=<mirror> archive f8817c4 | tar -x "
            "-C /tmp/dreamerv3-f8817c4`), or name another one with --reference-python or "
            "$TORCHRL_PSP_REFERENCE_PYTHON."
        )


def parse_cores(specs: list[str] | None) -> dict[int, str]:
    """``["1:1", "2:0,1"]`` -> ``{1: "1", 2: "0,1"}`` (threads -> taskset core list).

    Examples:
        >>> parse_cores(["1:3", "2:2,3"])
        {1: '3', 2: '2,3'}
    """
    cores = dict(DEFAULT_CORES)
    for spec in specs or []:
        threads, sep, cpus = spec.partition(":")
        if not sep or not threads.isdigit() or not cpus:
            raise ValueError(f"--cores entries are THREADS:CPULIST (e.g. 2:0,1); got {spec!r}.")
        cores[int(threads)] = cpus
    return cores


def _last_result(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        raise RuntimeError("no RESULT line")
    return json.loads(lines[-1][len("RESULT ") :])


def _run(command: list[str], env: dict[str, str], timeout: float) -> dict:
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout)[-3000:]
        raise RuntimeError(f"exit status {done.returncode}:\n{tail}")
    return _last_result(done.stdout)


# ---------------------------------------------------------------- our row (own process)


def our_row(
    size: str,
    threads: int,
    mode: str,
    *,
    batch: int = 16,
    seq: int = 64,
    image_size: int = 64,
    action_dim: int = 6,
    rounds: int = 3,
    seed: int = 0,
) -> dict:
    """Times our complete learner update in this process; returns the row's record."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}.")
    import torch
    from torchrl.data import Bounded

    from torchrl_psp.modules import compile_agent, make_dreamer_v3, synthetic_replay_sample
    from torchrl_psp.objectives import make_optimization_stepper, make_variant_loss
    from torchrl_psp.utils.memory import retain_freed_memory

    torch.set_num_threads(threads)
    retained = retain_freed_memory() if mode == "optimised" else False
    torch.manual_seed(seed)
    agent = make_dreamer_v3(
        Bounded(-1, 1, (action_dim,)), (3, image_size, image_size), preset=size, device="cpu"
    )
    sample = synthetic_replay_sample(
        agent, batch, seq, generator=torch.Generator().manual_seed(seed)
    )
    loss = make_variant_loss(agent, "dreamer")
    stepper = make_optimization_stepper(loss, warmup_steps=0)
    compiled = compile_agent(agent) if mode == "optimised" else None

    walls, cpus = [], []
    for _ in range(rounds + 1):
        start, start_cpu = time.perf_counter(), time.process_time()
        stepper.step(None, sample.clone(False))
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - start_cpu)

    def count(module: torch.nn.Module) -> int:
        return sum(p.numel() for p in module.parameters())

    return {
        "implementation": f"ours {mode}",
        "size": size,
        "threads": torch.get_num_threads(),
        "batch": batch,
        "seq": seq,
        "image": image_size,
        "action_dim": action_dim,
        "first_update_s": walls[0],
        "wall_s": statistics.median(walls[1:]),
        "cpu_s": statistics.median(cpus[1:]),
        "wall_all_s": walls[1:],
        "cpu_all_s": cpus[1:],
        "params": count(agent.world_model) + count(agent.actor) + count(agent.value),
        "params_world_model": count(agent.world_model),
        "skipped_updates": stepper.skipped_updates,
        "retain_freed_memory": retained,
        "compile_failures": compiled.failures if compiled is not None else None,
        "torch": torch.__version__,
    }


# ---------------------------------------------------------------- the table


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:5.2f}" if a and b else f"{'-':>5s}"


def table_text(rows: list[dict]) -> str:
    """The table of ``rows``: one line per size, thread count and official variant.

    Columns: seconds per update, wall-clock and process CPU, of ours eager, ours
    optimised and the official code; the ratios ours / official and official / ours
    (``e``: eager, ``o``: optimised), of wall and of CPU seconds; the official compile
    time (XLA lower + compile) and our optimised row's first update (its compilation
    included).

    Examples:
        >>> row = dict(size="size1m", threads=1, wall_s=2.0, cpu_s=2.0, first_update_s=9.0)
        >>> rows = [{**row, "implementation": "ours eager"},
        ...         {**row, "implementation": OFFICIAL, "wall_s": 8.0, "cpu_s": 6.0,
        ...          "compile_s": 70.0}]
        >>> print(table_text(rows).splitlines()[3])  # doctest: +NORMALIZE_WHITESPACE
        size1m 1 official | 2.00 2.00 - - 8.00 6.00 | 0.25 - 4.00 - | 0.33 - 3.00 - | 70 -
    """
    keyed = {(r["size"], r["threads"], r["implementation"]): r for r in rows if "error" not in r}
    head1 = (
        f"{'':21s} | {'ours eager':^11s} {'ours optim.':^11s} {'official':^11s} | "
        f"{'ratios of wall s':^23s} | {'ratios of CPU s':^23s} | {'compile s':^12s}"
    )
    head2 = (
        f"{'size':8s} {'thr':>3s} {'official':8s} | {'wall':>5s} {'CPU':>5s} {'wall':>5s} "
        f"{'CPU':>5s} {'wall':>5s} {'CPU':>5s} | "
        + " ".join(f"{n:>5s}" for n in ("e/off", "o/off", "off/e", "off/o"))
        + " | "
        + " ".join(f"{n:>5s}" for n in ("e/off", "o/off", "off/e", "off/o"))
        + f" | {'off':>5s} {'o 1st':>6s}"
    )
    lines = [head1, head2, "-" * len(head2)]
    groups = list(dict.fromkeys((r["size"], r["threads"]) for r in rows))
    for size, threads in groups:
        eager = keyed.get((size, threads, "ours eager"))
        optimised = keyed.get((size, threads, "ours optimised"))
        for implementation, label in ((OFFICIAL, "official"), (STRIDED, "strided")):
            official = keyed.get((size, threads, implementation))
            if official is None and (implementation == STRIDED or not (eager or optimised)):
                continue

            def cells(row: dict | None) -> str:
                if row is None:
                    return f"{'-':>5s} {'-':>5s}"
                return f"{row['wall_s']:5.2f} {row['cpu_s']:5.2f}"

            ratios = []
            for key in ("wall_s", "cpu_s"):
                e, o, j = (r[key] if r else None for r in (eager, optimised, official))
                ratios.append(" ".join([_ratio(e, j), _ratio(o, j), _ratio(j, e), _ratio(j, o)]))
            compile_s = f"{official['compile_s']:5.0f}" if official else f"{'-':>5s}"
            first = f"{optimised['first_update_s']:6.0f}" if optimised else f"{'-':>6s}"
            lines.append(
                f"{size:8s} {threads:3d} {label:8s} | {cells(eager)} {cells(optimised)} "
                f"{cells(official)} | {ratios[0]} | {ratios[1]} | {compile_s} {first}"
            )
    return "\n".join(lines)


def _machine() -> dict:
    model = None
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {
        "cpu_model": model,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=SIZES)
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3, help="timed updates of our rows")
    parser.add_argument(
        "--official-rounds", type=int, default=None, help="timed updates of the official row"
    )
    parser.add_argument(
        "--modes",
        nargs="*",
        default=list(MODES),
        choices=MODES,
        help="our rows (none: only official)",
    )
    parser.add_argument(
        "--official",
        nargs="*",
        default=["default"],
        choices=OFFICIAL_VARIANTS,
        help="official rows: default (its configs), strided (stride-2 convolutions in "
        "encoder and decoder, as TorchRL's codec); none: only our rows",
    )
    parser.add_argument(
        "--table",
        default=None,
        metavar="JSON",
        help="print the table of a results file (--json of an earlier run) and exit",
    )
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--action-dim", type=int, default=6, help="6: cheetah-run's")
    parser.add_argument(
        "--cores",
        nargs="*",
        default=None,
        help="THREADS:CPULIST for taskset (default 1:1 2:0,1); no taskset where it is absent",
    )
    parser.add_argument(
        "--warm-inductor-cache",
        action="store_true",
        help="optimised rows use inductor's default cache (default: a fresh empty one)",
    )
    parser.add_argument("--reference-python", default=None)
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per row")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    parser.add_argument(
        "--append",
        action="store_true",
        help="keep the rows already in --json (their run's info goes to earlier_runs)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--row", default=None, help=argparse.SUPPRESS)  # internal: one row
    return parser


def main(argv: list[str] | None = None) -> dict:
    """Runs every row in its own process; prints the table; returns ``{"info", "rows"}``."""
    parser = _parser()
    args = parser.parse_args(argv)
    for name in ("rounds", "batch", "seq", "image_size", "action_dim"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer.")
    if any(t < 1 for t in args.threads):
        parser.error("--threads must be positive integers.")

    if args.row:  # internal: one of our rows, in this (pinned) process
        size, threads, mode = args.row.split(":")
        result = our_row(
            size,
            int(threads),
            mode,
            batch=args.batch,
            seq=args.seq,
            image_size=args.image_size,
            action_dim=args.action_dim,
            rounds=args.rounds,
            seed=args.seed,
        )
        print("RESULT " + json.dumps(result), flush=True)
        return result

    if args.table:
        path = Path(args.table)
        if not path.exists():
            raise FileNotFoundError(f"results file not found: {path}")
        rows = json.loads(path.read_text())["rows"]
        print(table_text(rows))
        return {"rows": rows}

    python = reference_python(args.reference_python)
    if args.official:
        check_reference_python(python)
    try:
        cores = parse_cores(args.cores)
    except ValueError as error:
        parser.error(str(error))
    taskset = shutil.which("taskset")
    official_rounds = args.official_rounds or args.rounds

    import torch

    info = {
        "machine": _machine(),
        "torch": torch.__version__,
        "batch": args.batch,
        "seq": args.seq,
        "image": args.image_size,
        "action_dim": args.action_dim,
        "rounds": args.rounds,
        "official_rounds": official_rounds,
        "cores": {str(t): cores.get(t) for t in args.threads},
        "inductor_cache": "default" if args.warm_inductor_cache else "fresh per row",
        "command": "python benchmarks/official_update_cost.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    print(
        f"machine: {info['machine']['cpu_model']} ({info['machine']['cpus']} CPUs), "
        f"torch {torch.__version__}, batch {args.batch}x{args.seq}, "
        f"image {args.image_size}x{args.image_size}, action dim {args.action_dim}",
        flush=True,
    )
    rows: list[dict] = []
    if args.append and args.json and Path(args.json).exists():
        earlier = json.loads(Path(args.json).read_text())
        rows = earlier["rows"]
        info["earlier_runs"] = [*earlier["info"].pop("earlier_runs", []), earlier["info"]]

    def save() -> None:
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            with open(args.json, "w") as f:
                json.dump({"info": info, "rows": rows}, f, indent=1)

    common = [
        f"--batch={args.batch}",
        f"--seq={args.seq}",
        f"--image-size={args.image_size}",
        f"--action-dim={args.action_dim}",
        f"--seed={args.seed}",
    ]
    for threads in args.threads:
        pin = [taskset, "-c", cores[threads]] if taskset and threads in cores else []
        for size in args.sizes:
            jobs: list[tuple[str, list[str], dict[str, str]]] = []
            for variant in dict.fromkeys(args.official):
                env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": ""}
                base = [str(python), str(RUNNER), f"--size={size}", f"--threads={threads}"]
                base += common + [f"--rounds={official_rounds}"]
                if variant == "strided":
                    jobs.append(("official strided", pin + base + ["--strided"], env))
                else:
                    jobs.append(("official", pin + base, env))
            for mode in args.modes:
                env = dict(os.environ)
                cache = None
                if mode == "optimised" and not args.warm_inductor_cache:
                    cache = tempfile.mkdtemp(prefix="inductor-cache-")
                    env["TORCHINDUCTOR_CACHE_DIR"] = cache
                command = [sys.executable, str(Path(__file__).resolve())]
                command += common + [f"--rounds={args.rounds}", f"--row={size}:{threads}:{mode}"]
                jobs.append((f"ours {mode}", pin + command, env))
            for name, command, env in jobs:
                start = time.perf_counter()
                try:
                    row = _run(command, env, args.timeout)
                except (RuntimeError, subprocess.TimeoutExpired) as error:
                    message = f"{type(error).__name__}: {str(error)[-1500:]}"
                    print(f"{size} {threads} thr {name}: FAILED {message}", flush=True)
                    rows.append(
                        {"size": size, "threads": threads, "implementation": name, "error": message}
                    )
                    save()
                    continue
                finally:
                    env_cache = env.get("TORCHINDUCTOR_CACHE_DIR")
                    if name == "ours optimised" and env_cache and not args.warm_inductor_cache:
                        shutil.rmtree(env_cache, ignore_errors=True)
                if name == "official strided":
                    row["implementation"] = STRIDED
                row["threads"] = threads
                row["cores"] = cores.get(threads) if pin else None
                row["process_s"] = time.perf_counter() - start
                rows.append(row)
                extra = (
                    f", compile {row['compile_s']:.1f} s, XLA {row['xla_flops']:.2e} FLOP"
                    if "compile_s" in row and row.get("xla_flops")
                    else ""
                )
                print(
                    f"{size} {threads} thr {name:17s}: {row['wall_s']:8.3f} s wall "
                    f"{row['cpu_s']:8.3f} s CPU per update (first {row['first_update_s']:.1f} s"
                    f"{extra}; params {row['params']:,})",
                    flush=True,
                )
                save()
    print(flush=True)
    print(table_text(rows), flush=True)
    return {"info": info, "rows": rows}


if __name__ == "__main__":
    main()
