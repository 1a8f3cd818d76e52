"""Seconds per complete learner update, today's eager against the optimised one, one process per row.

A row is one configuration (preset, batch, threads, variant, mode), timed in its own
Python process: the complete learner update (world model, actor, critic and the
DreamerV3 optimiser step, :func:`~torchrl_psp.objectives.make_optimization_stepper`) on
a synthetic batch, from the same weights (seeded), first update apart (it compiles),
then the median of ``--rounds`` updates. The processes of the modes of one
configuration stay alive side by side and take turns, one update each per round (one
computes at a time), so that a load that drifts during the run hits every mode alike.
The modes:

``torchrl``    today's eager update: TorchRL's image encoder and decoder forward
               (``NCHW`` memory), glibc's default allocator settings;
``eager``      our channels-last codec and :func:`~torchrl_psp.utils.memory.retain_freed_memory`,
               no compilation (``optim.compile=eager`` on CPU);
``compiled``   ``eager`` plus :func:`~torchrl_psp.modules.compile_agent` (the compiled
               regions, ``optim.compile=auto`` on CPU).

The table gives, per row: seconds per update, the first update (compilation included),
the FLOP count of one update (``torch.utils.flop_counter``'s formulas, counted once per
preset, batch and variant), the achieved GFLOP/s, the machine's peak (a 2048^3 fp32
matmul on the same threads, measured in its own process) and the distance to the floor
(seconds / (FLOP / peak)), the speed-up over the ``torchrl`` row of the same
configuration and the ratio to DreamerV3 (variant ``dreamer``) in the same mode.
``--profile`` adds, for the chosen rows, where the time goes: wall time by phase (world
model, imagination, critic, backward, optimiser; eager modes only, the wrappers that
time the phases slow a compiled run down) and self CPU time by kind of kernel
(:mod:`torch.profiler`).

Usage::

    python benchmarks/learner_speed.py                                  # small, 16x64, 1 thread
    python benchmarks/learner_speed.py --threads 1 2 --batches 16x64 16x16 \\
        --variants dreamer psp psp_noseg sd_gt sd_approx --json speed.json
    python benchmarks/learner_speed.py --presets paper --variants dreamer --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from torchrl_psp.utils.machine import cpu_model

MODES = ("torchrl", "eager", "compiled")
DEFAULT_VARIANTS = ("dreamer", "psp", "psp_noseg", "sd_gt", "sd_approx")
#: kernel name -> kind, for --profile (first match wins)
KERNEL_KINDS = (
    ("convolution", ("conv", "mkldnn")),
    ("matmul", ("addmm", "::mm", "bmm", "linear", "matmul")),
    ("compiled graph", ("CompiledFxGraph", "CompiledFunction", "Torch-Compiled")),
    ("copy / layout", ("copy_", "_to_copy", "cat", "stack", "clone", "contiguous")),
    (
        "element-wise",
        (
            "mul",
            "add",
            "sub",
            "div",
            "pow",
            "silu",
            "sigmoid",
            "tanh",
            "exp",
            "log",
            "neg",
            "rsqrt",
            "sqrt",
            "where",
            "softmax",
            "norm",
            "sum",
            "mean",
            "abs",
            "clamp",
            "fill",
        ),
    ),
)


# -- one row, in its own process ----------------------------------------------------------
def _peak_gflops(threads: int) -> float:
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    best = min(_seconds(lambda: a @ b) for _ in range(5))
    return 2 * 2048**3 / best / 1e9


def _seconds(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def _count_flops(loss, sample) -> float:
    """FLOP of one forward and backward pass of ``loss`` (the optimiser step is not counted)."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class Counter(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            count = flop_registry.get(func._overloadpacket)
            if count is not None:
                Counter.total += count(*args, **kwargs, out_val=out)
            return out

    with Counter():
        result = loss(sample.clone(False))
        total = sum(v for k, v in result.items() if isinstance(k, str) and k.startswith("loss_"))
        total.backward()
    for parameter in loss.parameters():
        parameter.grad = None
    return float(Counter.total)


def _kernel_kind(name: str) -> str:
    for kind, patterns in KERNEL_KINDS:
        if any(pattern in name for pattern in patterns):
            return kind
    return "other"


def _profile(stepper, sample) -> dict[str, float]:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        stepper.step(None, sample.clone(False))
    kinds: dict[str, float] = {}
    for event in prof.key_averages():
        if event.key.startswith(("aten::", "## Call", "Torch-Compiled", "CompiledFunction")):
            kind = _kernel_kind(event.key)
            kinds[kind] = kinds.get(kind, 0.0) + event.self_cpu_time_total / 1e6
    return kinds


def _phases(stepper, sample) -> dict[str, float]:
    """Wall seconds of one update by phase: world-model loss, imagination (actor loss),
    critic loss, backward pass, optimiser step (wrappers around each, then removed)."""
    import torch

    loss, seconds = stepper.loss_module, {}
    targets = [
        (loss.model_loss, "forward", "world model forward"),
        (loss.actor_loss, "forward", "imagination + actor forward"),
        (loss.value_loss, "forward", "critic forward"),
        (stepper.optimizer, "step", "optimiser step"),
        (torch.Tensor, "backward", "backward"),
    ]
    originals = [(owner, name, owner.__dict__.get(name)) for owner, name, _ in targets]

    def timed(function, label):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                seconds[label] = seconds.get(label, 0.0) + time.perf_counter() - start

        return wrapper

    for owner, name, label in targets:
        setattr(owner, name, timed(getattr(owner, name), label))
    try:
        seconds["whole update"] = _seconds(lambda: stepper.step(None, sample.clone(False)))
    finally:
        for owner, name, original in originals:
            if original is None:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
    return seconds


def _build(row: dict):
    """The row's stepper and sample, after its first update; and the first measurements."""
    import torch

    torch.set_num_threads(row["threads"])
    if row["mode"] == "torchrl":
        from torchrl.modules import DreamerV3ImageDecoder, DreamerV3ImageEncoder

        from torchrl_psp.modules import image_codec

        image_codec.ChannelsLastImageEncoder.forward = DreamerV3ImageEncoder.forward
        image_codec.ChannelsLastImageDecoder.forward = DreamerV3ImageDecoder.forward
    else:
        from torchrl_psp.utils.memory import retain_freed_memory

        retain_freed_memory()
    from torchrl.data import Bounded

    from torchrl_psp.modules import compile_agent, make_dreamer_v3, synthetic_replay_sample
    from torchrl_psp.objectives import make_optimization_stepper, make_variant_loss
    from torchrl_psp.variants import variant_spec

    torch.manual_seed(0)
    agent = make_dreamer_v3(  # the recipe's agent: no decoder for dreamerpro
        Bounded(-1, 1, (row["action_dim"],)),
        (3, 64, 64),
        preset=row["preset"],
        device="cpu",
        decoder=variant_spec(row["variant"]).decoder,
    )
    sample = synthetic_replay_sample(
        agent, row["batch"], row["seq"], generator=torch.Generator().manual_seed(0)
    )
    loss = make_variant_loss(agent, row["variant"])
    result: dict = {}
    if row.get("flops"):
        result["flop"] = _count_flops(loss, sample)
    stepper = make_optimization_stepper(loss, warmup_steps=0)
    compiled = compile_agent(agent, row.get("regions")) if row["mode"] == "compiled" else None
    result["first_s"] = _seconds(lambda: stepper.step(None, sample.clone(False)))
    if compiled is not None:
        result["compile_failures"] = compiled.failures
    return stepper, sample, result


def _timed_update(stepper, sample) -> tuple[float, float]:
    """Wall and process CPU seconds of one update."""
    cpu = time.process_time()
    wall = _seconds(lambda: stepper.step(None, sample.clone(False)))
    return wall, time.process_time() - cpu


def _finish(stepper, sample, row: dict, result: dict, walls: list, cpus: list) -> dict:
    result.update(wall_s=statistics.median(walls), cpu_s=statistics.median(cpus), walls=walls)
    if row.get("profile"):
        if row["mode"] != "compiled":  # the phase wrappers slow the compiled run down 3x
            result["phases"] = _phases(stepper, sample)
        result["profile"] = _profile(stepper, sample)
    return result


def run_row(row: dict) -> dict:
    """Times one row in this process (see the module docstring); returns its measurements."""
    stepper, sample, result = _build(row)
    walls, cpus = zip(*(_timed_update(stepper, sample) for _ in range(row["rounds"])))
    return _finish(stepper, sample, row, result, list(walls), list(cpus))


def _serve(row: dict) -> None:
    """A child process: builds the row, then times one update per ``step`` line on stdin.

    The parent keeps one child per mode of a configuration and asks them in turn, so
    that the modes' updates interleave (a load that drifts hits every mode alike).
    """
    stepper, sample, result = _build(row)
    print(json.dumps(result), flush=True)
    walls, cpus = [], []
    for line in sys.stdin:
        if line.strip() == "step":
            wall, cpu = _timed_update(stepper, sample)
            walls.append(wall)
            cpus.append(cpu)
            print(json.dumps({"wall": wall}), flush=True)
        elif line.strip() == "finish":
            print(json.dumps(_finish(stepper, sample, row, result, walls, cpus)), flush=True)
            return


# -- the table, in the parent process ---------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", nargs="+", default=["small"])
    parser.add_argument("--batches", nargs="+", default=["16x64"], help="BxT, e.g. 16x64 16x16")
    parser.add_argument("--threads", nargs="+", type=int, default=[1])
    parser.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS))
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--rounds", type=int, default=3, help="timed updates per row")
    parser.add_argument("--action-dim", type=int, default=6)
    parser.add_argument(
        "--regions",
        nargs="+",
        default=None,
        help="compiled regions of the compiled rows (default: all, see "
        "torchrl_psp.modules.REGIONS)",
    )
    parser.add_argument("--no-flops", action="store_true", help="skip the FLOP count")
    parser.add_argument(
        "--profile",
        nargs="*",
        default=None,
        metavar="MODE",
        help="profile the rows of these modes (default: all)",
    )
    parser.add_argument(
        "--taskset", default=None, help="CPU list for every row (taskset -c), e.g. 0 or 0,1"
    )
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    parser.add_argument("--row", default=None, help=argparse.SUPPRESS)  # a child process
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    return parser


def _batch(text: str) -> tuple[int, int]:
    try:
        batch, seq = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"--batches takes BxT (e.g. 16x64); got {text!r}.") from None
    if batch < 1 or seq < 1:
        raise SystemExit(f"--batches takes positive sizes; got {text!r}.")
    return batch, seq


def _command(row: dict, taskset: str | None, serve: bool = False) -> list[str]:
    command = [sys.executable, __file__, "--row", json.dumps(row), *(["--serve"] if serve else [])]
    return ["taskset", "-c", taskset, *command] if taskset else command


def _environment(row: dict) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": str(row["threads"])}


def _child(row: dict, taskset: str | None) -> dict:
    """Runs ``row`` in a child process to the end (the peak row)."""
    done = subprocess.run(
        _command(row, taskset), capture_output=True, text=True, env=_environment(row)
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"error": f"exit {done.returncode}: {tail[:300]}"}
    return json.loads(lines[-1])


class _Child:
    """A serving child process (see :func:`_serve`)."""

    def __init__(self, row: dict, taskset: str | None):
        self.process = subprocess.Popen(
            _command(row, taskset, serve=True),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_environment(row),
        )
        self.error: str | None = None
        self.first = self._read()

    def _read(self) -> dict:
        for line in self.process.stdout:
            if line.startswith("{"):
                return json.loads(line)
        self.process.wait()
        tail = (self.process.stderr.read().strip().splitlines() or ["(no output)"])[-1]
        self.error = f"exit {self.process.returncode}: {tail[:300]}"
        return {"error": self.error}

    def ask(self, command: str) -> dict:
        if self.error:
            return {"error": self.error}
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def _run_group(rows: list[dict], taskset: str | None) -> list[dict]:
    """Times the rows (the modes of one configuration) in interleaved rounds."""
    children = [_Child(row, taskset) for row in rows]  # built one after the other
    try:
        for _ in range(rows[0]["rounds"]):
            for child in children:
                child.ask("step")
        return [child.ask("finish") for child in children]
    finally:
        for child in children:
            child.close()


def main(argv: list[str] | None = None) -> dict:
    """Runs every row in its own process and prints the table; returns ``{"info", "rows"}``."""
    args = _parser().parse_args(argv)
    if args.row is not None:  # a child process: one row (or the peak) as a JSON line
        row = json.loads(args.row)
        if args.serve:
            _serve(row)
            return {}
        result = {"peak_gflops": _peak_gflops(row["threads"])} if row.get("peak") else run_row(row)
        print(json.dumps(result), flush=True)
        return {}
    import torch

    from torchrl_psp.modules import DREAMER_V3_PRESETS, REGIONS
    from torchrl_psp.objectives import VARIANTS

    for name, values, known in (
        ("--presets", args.presets, DREAMER_V3_PRESETS),
        ("--variants", args.variants, VARIANTS),
        ("--regions", args.regions or [], REGIONS),
    ):
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise SystemExit(f"{name}: unknown {unknown}; expected some of {sorted(known)}.")
    if args.rounds < 1:
        raise SystemExit("--rounds must be a positive integer.")
    batches = [_batch(text) for text in args.batches]
    profile_modes = set(MODES if args.profile == [] else args.profile or ())
    info = {
        "torch": torch.__version__,
        "cpu": cpu_model(),
        "command": " ".join(["python", "benchmarks/learner_speed.py", *(argv or sys.argv[1:])]),
    }
    peaks = {t: _child({"peak": True, "threads": t}, args.taskset) for t in args.threads}
    print(
        f"torch {info['torch']}, {info['cpu']}; peak fp32 GFLOP/s (2048^3 matmul): "
        + ", ".join(
            f"{t} thread(s) {p.get('peak_gflops', float('nan')):.0f}" for t, p in peaks.items()
        ),
        flush=True,
    )
    header = (
        f"{'preset':7s} {'batch':6s} {'thr':>3s} {'variant':10s} {'mode':9s} "
        f"{'s/update':>9s} {'first s':>8s} {'GFLOP':>6s} {'GFLOP/s':>8s} {'x floor':>7s} "
        f"{'speed-up':>8s} {'/dreamer':>8s}"
    )
    print(header, flush=True)
    rows: list[dict] = []
    flops: dict[tuple, float] = {}
    for preset in args.presets:
        for batch, seq in batches:
            for threads in args.threads:
                peak = peaks[threads].get("peak_gflops")
                for variant in args.variants:
                    key = (preset, batch, seq, variant)
                    group = [
                        dict(
                            preset=preset,
                            batch=batch,
                            seq=seq,
                            threads=threads,
                            variant=variant,
                            mode=mode,
                            rounds=args.rounds,
                            action_dim=args.action_dim,
                            regions=args.regions,
                            flops=not args.no_flops and key not in flops and index == 0,
                            profile=mode in profile_modes,
                        )
                        for index, mode in enumerate(args.modes)
                    ]
                    for row, measured in zip(group, _run_group(group, args.taskset)):
                        result = {**row, **measured, "peak_gflops": peak}
                        if "flop" in result:
                            flops[key] = result["flop"]
                        result["flop"] = flops.get(key)
                        rows.append(result)
                        print(_line(result, rows), flush=True)
                    if args.json:
                        Path(args.json).write_text(
                            json.dumps({"info": info, "rows": rows}, indent=1)
                        )
    _print_profiles(rows)
    return {"info": info, "rows": rows}


def _same(row: dict, other: dict, **fields) -> bool:
    keys = ("preset", "batch", "seq", "threads", "variant", "mode")
    return all(other.get(k) == fields.get(k, row[k]) for k in keys) and "wall_s" in other


def _line(row: dict, rows: list[dict]) -> str:
    start = (
        f"{row['preset']:7s} {row['batch']}x{row['seq']:<3d} {row['threads']:3d} "
        f"{row['variant']:10s} {row['mode']:9s}"
    )
    if "error" in row:
        return f"{start} FAILED {row['error']}"
    seconds, flop, peak = row["wall_s"], row.get("flop"), row.get("peak_gflops")
    gflops = flop / seconds / 1e9 if flop else float("nan")
    floor = seconds / (flop / 1e9 / peak) if flop and peak else float("nan")
    baseline = next((r for r in rows if _same(row, r, mode="torchrl")), None)
    dreamer = next((r for r in rows if _same(row, r, variant="dreamer")), None)
    speedup = baseline["wall_s"] / seconds if baseline else float("nan")
    relative = seconds / dreamer["wall_s"] if dreamer else float("nan")
    failures = f"  compile failed: {row['compile_failures']}" if row.get("compile_failures") else ""
    return (
        f"{start} {seconds:9.3f} {row['first_s']:8.1f} {(flop or 0) / 1e9:6.1f} "
        f"{gflops:8.1f} {floor:7.2f} {speedup:8.2f} {relative:8.2f}{failures}"
    )


def _print_profiles(rows: list[dict]) -> None:
    profiled = [row for row in rows if row.get("profile") and "profile" in row]
    if not profiled:
        return
    timed = [row for row in profiled if "phases" in row]
    phases = list(timed[0]["phases"]) if timed else []
    if timed:
        print("\nwall seconds of one update by phase (eager modes)")
        print(f"{'row':40s} " + " ".join(f"{phase[:14]:>14s}" for phase in phases))
    for row in timed:
        name = f"{row['preset']} {row['batch']}x{row['seq']} t{row['threads']} {row['variant']} {row['mode']}"
        print(f"{name:40s} " + " ".join(f"{row['phases'].get(p, 0.0):14.3f}" for p in phases))
    kinds = [kind for kind, _ in KERNEL_KINDS] + ["other"]
    print("\nself CPU seconds of one update by kind of kernel (torch.profiler)")
    print(f"{'row':40s} " + " ".join(f"{kind[:14]:>14s}" for kind in kinds))
    for row in profiled:
        name = f"{row['preset']} {row['batch']}x{row['seq']} t{row['threads']} {row['variant']} {row['mode']}"
        print(f"{name:40s} " + " ".join(f"{row['profile'].get(k, 0.0):14.3f}" for k in kinds))


if __name__ == "__main__":
    main()
