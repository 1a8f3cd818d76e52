"""The project's GPU measurements in one command, sized to fit one 10-minute device call.

Runs, in order, each step in its own process under its own timeout, and writes every
table to the output folder as it goes (``summary.md`` gathers them; each step also has
its own log), so that a timeout still returns what was done:

a. environment facts (``benchmarks/gpu/facts.py``: GPU, driver, torch, CUDA, packages,
   one EGL-rendered rollout);
b. ``benchmarks/segmentation_cost.py speed``: SAM vit_b with random weights at the
   settings most likely to reach 100 frames/s (encoder input 256, bf16 autocast, 32
   frames and 1024 prompts per batch, 16x16 and 8x8 points) and at the faithful input
   1024, and PerSAM-F;
c. ``benchmarks/update_cost.py --preset paper --batch 16 --seq 64``: the world-model
   rows and the learner updates of dreamer, psp and sd_gt, eager, then compiled with
   CUDA graphs (TorchRL's default on CUDA), one row at a time;
d. about three minutes of ``recipes/dreamer_psp.py preset=paper variant=psp`` on
   reafferent cheetah-run with ground-truth segmentation, sized from the PSP update
   time of step c: updates/s and env steps/s from its logs, and whether its figures and
   checkpoint were written (one figure is copied out).

The whole run keeps within ``--budget`` seconds (540 by default: 9 minutes, counted
from the start of ``suite.sh``); a step gets its own timeout or what is left, less what
the recipe step needs. ``--dry-run`` runs the same steps on the CPU at tiny sizes (the
default test suite does, so that the script cannot rot before a GPU is lent).

Usage (``benchmarks/gpu/suite.sh`` installs the carried wheels first, then runs this)::

    python3 benchmarks/gpu/suite.py [OUT_DIR] [--dry-run] [--steps a b c d]

``OUT_DIR`` defaults to ``$OUT`` (the device machine's returned folder), else
``/tmp/gpu_suite_out``. At most 7 files are written there.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
STEPS = ("a", "b", "c", "d")


@dataclass(frozen=True)
class RecipeSize:
    """Sizes of the recipe run of step d and the estimates used to fit it in its time.

    Attributes:
        preset: the recipe preset (``paper`` on the GPU, ``smoke`` in the dry run).
        device: ``cuda`` or ``cpu``.
        batch, seq, replay_ratio, frames_per_batch, prefill: the replay and collector
            settings (passed explicitly: the plan depends on them).
        eval_max_steps: agent steps of each of the two evaluation episodes.
        capacity: replay capacity (transitions): a short run needs no 1M-step file.
        startup_s: estimated seconds of the run outside collection and updates
            (imports, CUDA, envs, the two evaluations, figures, checkpoints).
        env_step_s: estimated seconds of one agent step of collection (env + policy).
        fallback_update_s: seconds per learner update when step c measured none.
        frame_skip: the action repeat.
    """

    preset: str
    device: str
    batch: int
    seq: int
    replay_ratio: int
    frames_per_batch: int
    prefill: int
    eval_max_steps: int
    capacity: int
    startup_s: float
    env_step_s: float
    fallback_update_s: float
    frame_skip: int = 2


@dataclass(frozen=True)
class Profile:
    """Everything that differs between the GPU run and the CPU dry run."""

    device: str
    budget_s: float
    render_steps: int
    segmentation: tuple[str, ...]
    update_common: tuple[str, ...]
    update_compiled_modes: tuple[str, ...]
    recipe: RecipeSize
    recipe_duration_s: float
    timeouts: dict[str, float]
    #: seconds kept back for the recipe step by the steps before it
    recipe_reserve_s: float
    grace_s: float = 25.0


LEARNER_VARIANTS = ("dreamer", "psp", "sd_gt")

GPU = Profile(
    device="cuda",
    budget_s=540.0,
    render_steps=100,
    segmentation=(
        "speed",
        "--device",
        "cuda",
        "--amp",
        "bf16",
        "--frames",
        "64",
        "--frames-per-batch",
        "32",
        "--points-per-batch",
        "1024",
        "--points-per-side",
        "16",
        "8",
        "--encoder-sizes",
        "256",
        "1024",
    ),
    update_common=(
        "--device",
        "cuda",
        "--preset",
        "paper",
        "--batch",
        "16",
        "--seq",
        "64",
        "--rounds",
        "3",
    ),
    update_compiled_modes=("regions", "compile+cudagraph"),
    recipe=RecipeSize(
        preset="paper",
        device="cuda",
        batch=16,
        seq=64,
        replay_ratio=512,
        frames_per_batch=16,
        prefill=500,
        eval_max_steps=200,
        capacity=100_000,
        startup_s=50.0,
        env_step_s=0.015,
        fallback_update_s=0.5,
    ),
    recipe_duration_s=180.0,
    timeouts={"a": 30, "b": 90, "c_eager": 75, "c_compiled": 120, "d": 205},
    recipe_reserve_s=150.0,
)

DRY = Profile(
    device="cpu",
    budget_s=600.0,
    render_steps=5,
    segmentation=(
        "speed",
        "--device",
        "cpu",
        "--frames",
        "1",
        "--cpu-sam-frames",
        "1",
        "--frames-per-batch",
        "1",
        "--points-per-side",
        "2",
        "--encoder-sizes",
        "64",
        "--gt-steps",
        "5",
        "--cpu-frames",
        "2",
        "--threads",
        "1",
    ),
    update_common=(
        "--device",
        "cpu",
        "--preset",
        "tiny",
        "--batch",
        "2",
        "--seq",
        "4",
        "--rounds",
        "1",
        "--threads",
        "1",
    ),
    # compiling takes minutes on a CPU and CUDA graphs need CUDA: the dry run runs this
    # step's rows eagerly (the compiled path of update_cost.py is unit-tested).
    update_compiled_modes=("eager",),
    recipe=RecipeSize(
        preset="smoke",
        device="cpu",
        batch=2,
        seq=8,
        replay_ratio=16,
        frames_per_batch=10,
        prefill=20,
        eval_max_steps=10,
        capacity=2_000,
        startup_s=12.0,
        env_step_s=0.03,
        fallback_update_s=0.1,
    ),
    recipe_duration_s=10.0,
    timeouts={"a": 120, "b": 150, "c_eager": 120, "c_compiled": 120, "d": 150},
    recipe_reserve_s=0.0,
    grace_s=60.0,
)


def plan_recipe(size: RecipeSize, duration_s: float, update_s: float | None) -> dict[str, int]:
    """Sizes the recipe run so that it ends by itself in about ``duration_s`` seconds.

    The collection and updates get ``duration_s`` less the start-up estimate, the prefill
    and the two evaluations; each agent step after the prefill costs ``env_step_s`` plus
    its share of a learner update (``replay_ratio / (batch * seq)`` updates per agent
    step, ``update_s`` seconds each).

    Args:
        size: the run's sizes and estimates.
        duration_s: seconds the run should take.
        update_s: seconds per learner update (step c's PSP row); ``None``: the fallback.

    Returns:
        ``total_env_steps``, ``eval_every_env_steps``, ``checkpoint_every_updates``,
        ``log_every_updates``, ``expected_updates``.

    Examples:
        >>> plan = plan_recipe(GPU.recipe, 180.0, 0.2)
        >>> plan["total_env_steps"], plan["expected_updates"]
        (3040, 510)
        >>> plan_recipe(GPU.recipe, 180.0, None)["expected_updates"]  # 0.5 s per update
        222
    """
    if duration_s <= 0:
        raise ValueError(f"duration_s must be positive, got {duration_s}.")
    if update_s is not None and not update_s > 0:
        raise ValueError(f"update_s must be positive or None, got {update_s}.")
    update_s = update_s if update_s is not None else size.fallback_update_s
    fpb = size.frames_per_batch
    agent_steps_per_update = size.batch * size.seq / size.replay_ratio
    train_s = (
        duration_s - size.startup_s - (size.prefill + 2 * size.eval_max_steps) * size.env_step_s
    )
    per_step = size.env_step_s + update_s / agent_steps_per_update
    steps = max(2 * fpb, int(max(train_s, 0.0) / per_step))
    agent_steps = math.ceil((size.prefill + steps) / fpb) * fpb  # whole collected batches
    steps = agent_steps - size.prefill
    total = agent_steps * size.frame_skip
    updates = int(steps * size.replay_ratio // (size.batch * size.seq))
    unit = fpb * size.frame_skip
    return {
        "total_env_steps": total,
        "eval_every_env_steps": max(unit, math.ceil(total / 2 / unit) * unit),
        "checkpoint_every_updates": max(1, updates // 3),
        "log_every_updates": max(1, updates // 20),
        "expected_updates": updates,
    }


def recipe_command(size: RecipeSize, plan: dict[str, int], run_dir: Path) -> list[str]:
    """The command line of step d: the recipe as a user runs it, with the suite's sizes."""
    return [
        PYTHON,
        str(ROOT / "recipes" / "dreamer_psp.py"),
        f"hydra.run.dir={run_dir}",
        f"preset={size.preset}",
        "variant=psp",
        f"device={size.device}",
        "env.domain=cheetah",
        "env.task=run",
        "env.distractor=reafferent",
        "env.segmentation=gt",
        f"env.frame_skip={size.frame_skip}",
        "logger.wandb=disabled",
        "logger.progress_bar=false",
        f"logger.every_updates={plan['log_every_updates']}",
        "eval.video=false",
        "eval.episodes=1",
        f"eval.max_steps={size.eval_max_steps}",
        f"eval.every_env_steps={plan['eval_every_env_steps']}",
        f"collector.frames_per_batch={size.frames_per_batch}",
        f"collector.prefill_steps={size.prefill}",
        f"replay.batch_size={size.batch}",
        f"replay.sequence_length={size.seq}",
        f"replay.replay_ratio={size.replay_ratio}",
        f"replay.capacity={size.capacity}",
        f"train.total_env_steps={plan['total_env_steps']}",
        f"checkpoint.every_updates={plan['checkpoint_every_updates']}",
    ]


@dataclass
class StepResult:
    """How one step's process ended."""

    name: str
    command: list[str]
    returncode: int | None
    timed_out: bool
    seconds: float
    timeout_s: float
    log: Path
    stdout: str = ""
    stderr_tail: str = ""

    @property
    def status(self) -> str:
        """``ok``, ``TIMED OUT`` or ``FAILED (exit N)``, with the time taken."""
        if self.timed_out:
            state = f"TIMED OUT after {self.timeout_s:.0f} s (what it printed is kept)"
        elif self.returncode == 0:
            state = "ok"
        else:
            state = f"FAILED (exit {self.returncode})"
        return f"{state} in {self.seconds:.1f} s (timeout {self.timeout_s:.0f} s)"


def _interruptible() -> None:
    """In the child before it starts: SIGINT back to its default action. A shell starts
    background jobs (``cmd &``) with SIGINT ignored, and Python then installs no
    KeyboardInterrupt handler, so a step of a backgrounded suite would ignore the
    timeout's SIGINT and be killed 10 s later without its clean shutdown."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_step(
    name: str,
    command: Sequence[str],
    log: Path,
    timeout_s: float,
    env: dict[str, str],
    work: Path,
) -> StepResult:
    """Runs ``command`` in its own process group under ``timeout_s`` seconds.

    Its standard output goes to ``log`` as it is printed; its standard error to a file in
    ``work``, whose last lines are appended to ``log`` at the end. On timeout the group
    gets SIGINT (Python's KeyboardInterrupt: the recipe's collector shuts down), then
    SIGKILL 10 s later.
    """
    if timeout_s <= 0:
        raise ValueError(f"step {name}: no time left (timeout {timeout_s:.0f} s).")
    command = [str(c) for c in command]
    stderr_path = work / f"{log.stem}.stderr"
    start = time.monotonic()
    with open(log, "a") as out, open(stderr_path, "a") as err:
        out.write(f"$ {shlex.join(command)}\n")
        out.flush()
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=err,
            cwd=ROOT,
            env=env,
            start_new_session=True,
            preexec_fn=_interruptible,
        )
        timed_out = False
        try:
            returncode = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(process.pid, signal.SIGINT)
            try:
                returncode = process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                returncode = process.wait()
    seconds = time.monotonic() - start
    stderr_lines = [
        line for line in stderr_path.read_text(errors="replace").splitlines() if line.strip()
    ]
    tail = "\n".join(stderr_lines[-40:])
    with open(log, "a") as out:
        out.write(f"\n--- exit {returncode}{' (timed out)' if timed_out else ''}, ")
        out.write(f"{seconds:.1f} s; last lines of stderr:\n{tail}\n\n")
    stdout = log.read_text(errors="replace")
    return StepResult(name, command, returncode, timed_out, seconds, timeout_s, log, stdout, tail)


class Summary:
    """``summary.md``: one section per step, appended as soon as the step ends."""

    def __init__(self, path: Path, title: str):
        self.path = path
        path.write_text(f"# {title}\n\n")

    def write(self, text: str) -> None:
        """Appends ``text`` (flushed at once)."""
        with open(self.path, "a") as f:
            f.write(text)

    def section(self, heading: str, result: StepResult, body: str | None = None) -> None:
        """A step's heading, command, status and table (its standard output by default)."""
        if body is None:
            body = _table_lines(result.stdout)
        text = f"## {heading}\n\n`{shlex.join(_shown(result.command))}`\n\n{result.status}\n\n"
        text += f"```text\n{body.rstrip()}\n```\n\n"
        if result.returncode != 0 or result.timed_out:
            text += f"Last lines of stderr:\n\n```text\n{result.stderr_tail}\n```\n\n"
        self.write(text)


def _shown(command: list[str]) -> list[str]:
    """The command as a user types it: ``python3`` and paths relative to the repository."""
    shown = ["python3" if c == PYTHON else c for c in command]
    return [c.replace(str(ROOT) + os.sep, "") for c in shown]


def _table_lines(stdout: str) -> str:
    """The benchmark's own lines: without the command echo, library warnings and tails."""
    lines = []
    for line in stdout.splitlines():
        if line.startswith("--- exit "):
            break
        if line.startswith(("$ ", "WARNING:absl")):
            continue
        lines.append(line)
    return "\n".join(lines)


def _read_scalars(run_dir: Path, name: str) -> list[tuple[int, float]]:
    path = run_dir / "logs" / "scalars" / f"{name}.csv"
    if not path.is_file():
        return []
    with open(path) as f:
        return [(int(float(r[0])), float(r[1])) for r in csv.reader(f) if len(r) == 2]


def recipe_report(run_dir: Path, plan: dict[str, int], result: StepResult) -> list[str]:
    """The lines of step d's table: rates from the run's CSV logs, what it wrote."""
    lines = [f"planned: {plan}"]
    updates = _read_scalars(run_dir, "train/updates")
    ups = _read_scalars(run_dir, "train/updates_per_second")
    eps = _read_scalars(run_dir, "train/env_steps_per_second")
    if updates:
        lines.append(f"reached: {updates[-1][0]} env steps, {int(updates[-1][1])} updates")
    if ups and eps:
        lines.append(
            f"since the start of training (prefill included): {ups[-1][1]:.2f} updates/s, "
            f"{eps[-1][1]:.1f} env steps/s"
        )
        # The logged rates are cumulative: elapsed_k = env_steps_k / env_steps_per_s_k.
        elapsed = [step / rate for step, rate in eps if rate > 0]
        if len(elapsed) >= 2 and len(updates) >= 2 and elapsed[-1] > elapsed[0]:
            span = elapsed[-1] - elapsed[0]
            lines.append(
                f"between the first and last log ({span:.0f} s): "
                f"{(updates[-1][1] - updates[0][1]) / span:.2f} updates/s, "
                f"{(eps[-1][0] - eps[0][0]) / span:.1f} env steps/s"
            )
    else:
        lines.append("no training rates logged")
    returns = _read_scalars(run_dir, "eval/return")
    lines.append(
        "evaluation returns: "
        + (", ".join(f"{r:.1f} at {s}" for s, r in returns) if returns else "none")
    )
    figures = sorted(p.name for p in (run_dir / "figures").glob("*.png"))
    lines.append(f"figures: {', '.join(figures) if figures else 'NONE'}")
    checkpoint = run_dir / "checkpoint.pt"
    if checkpoint.is_file():
        lines.append(
            f"checkpoint.pt: {checkpoint.stat().st_size / 2**20:.1f} MiB, "
            f"{_checkpoint_counters(checkpoint)}"
        )
    else:
        lines.append("checkpoint.pt: NONE")
    lines.append(f"finished (done file): {(run_dir / 'done').exists()}")
    for line in (result.stdout + "\n" + result.stderr_tail).splitlines():
        if any(k in line for k in ("Done:", "  preset=", "Configuration error", "Training starts")):
            lines.append(f"recipe: {line.strip()}")
    return lines


def _checkpoint_counters(path: Path) -> str:
    try:
        import torch

        state = torch.load(path, map_location="cpu", weights_only=False)
        return f"counters {state.get('counters')}"
    except Exception as error:  # reported, not fatal
        return f"unreadable ({type(error).__name__}: {error})"


def _psp_update_seconds(json_path: Path) -> float | None:
    """Step c's eager PSP learner update (median wall seconds), if it was measured."""
    import json

    if not json_path.is_file():
        return None
    rows = json.loads(json_path.read_text()).get("rows", [])
    for row in rows:
        if row.get("variant") == "psp" and row.get("mode") == "eager":
            return float(row["wall_s"])
    return None


@dataclass
class Clock:
    """The suite's deadline: ``budget_s`` from the start of ``suite.sh``."""

    budget_s: float
    elapsed_at_start: float = 0.0
    start: float = field(default_factory=time.monotonic)

    def left(self) -> float:
        """Seconds left before the deadline."""
        return self.budget_s - self.elapsed_at_start - (time.monotonic() - self.start)

    def timeout(self, nominal: float, reserve: float = 0.0) -> float:
        """The step's timeout: its own, or what is left less ``reserve`` (at least 5 s)."""
        return max(5.0, min(nominal, self.left() - reserve))


def child_env(profile: Profile) -> dict[str, str]:
    """The environment of the steps: headless EGL, no wandb, the repository importable."""
    env = dict(os.environ)
    env.setdefault("MUJOCO_GL", "egl")
    env.setdefault("PYOPENGL_PLATFORM", "egl")
    env["PYTHONUNBUFFERED"] = "1"
    env["WANDB_MODE"] = "disabled"
    env["RL_WARNINGS"] = "0"
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(ROOT) not in paths:
        paths.append(str(ROOT))
    env["PYTHONPATH"] = os.pathsep.join(paths)
    if profile.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # the dry run touches no GPU
        # one thread: tiny models on a shared CPU run 10x slower with OpenMP hand-offs
        env["OMP_NUM_THREADS"] = "1"
    return env


def run_suite(
    out: Path,
    work: Path,
    profile: Profile,
    steps: Sequence[str] = STEPS,
    elapsed_at_start: float = 0.0,
    budget_s: float | None = None,
) -> dict[str, StepResult]:
    """Runs the chosen steps of the suite; returns their results by step name."""
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        raise ValueError(f"unknown steps {unknown}; expected some of {list(STEPS)}.")
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    clock = Clock(budget_s if budget_s is not None else profile.budget_s, elapsed_at_start)
    env = child_env(profile)
    dry = profile.device == "cpu"
    summary = Summary(
        out / "summary.md",
        f"GPU suite{' (CPU dry run)' if dry else ''}, "
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC",
    )
    summary.write(
        f"Budget {clock.budget_s:.0f} s, {clock.left():.0f} s left at the start "
        f"(setup took {elapsed_at_start:.0f} s); steps {' '.join(steps)}.\n\n"
    )
    results: dict[str, StepResult] = {}
    reserve = profile.recipe_reserve_s if "d" in steps else 0.0
    bench = ROOT / "benchmarks"

    if "a" in steps:
        command = [PYTHON, bench / "gpu" / "facts.py", "--render-steps", profile.render_steps]
        result = run_step(
            "a",
            command,
            out / "a_environment.txt",
            clock.timeout(profile.timeouts["a"], reserve),
            env,
            work,
        )
        results["a"] = result
        summary.section("a. Environment", result)

    if "b" in steps:
        command = [PYTHON, bench / "segmentation_cost.py", *profile.segmentation]
        command += ["--json", work / "segmentation.json"]
        result = run_step(
            "b",
            command,
            out / "b_segmentation.txt",
            clock.timeout(profile.timeouts["b"], reserve),
            env,
            work,
        )
        results["b"] = result
        summary.section("b. SAM vit_b (random weights) and PerSAM-F, frames/s", result)

    eager_json = work / "update_eager.json"
    if "c" in steps:
        log = out / "c_update_cost.txt"
        command = [PYTHON, bench / "update_cost.py", *profile.update_common]
        command += ["--learner-variants", *LEARNER_VARIANTS, "--json", eager_json]
        result = run_step(
            "c_eager", command, log, clock.timeout(profile.timeouts["c_eager"], reserve), env, work
        )
        results["c_eager"] = result
        summary.section("c. Learner and world-model updates, eager", result)
        start = len(log.read_text())
        command = [PYTHON, bench / "update_cost.py", *profile.update_common, "--no-world-model"]
        command += ["--learner-variants", *LEARNER_VARIANTS]
        command += ["--modes", *profile.update_compiled_modes, "--json", work / "update_c.json"]
        result = run_step(
            "c_compiled",
            command,
            log,
            clock.timeout(profile.timeouts["c_compiled"], reserve),
            env,
            work,
        )
        result.stdout = result.stdout[start:]
        results["c_compiled"] = result
        modes = " and ".join(profile.update_compiled_modes)
        if dry:
            modes += " (dry run: in place of compile+cudagraph, which need CUDA)"
        summary.section(f"c. Learner updates, {modes}", result)

    if "d" in steps:
        size = profile.recipe
        timeout_s = clock.timeout(profile.timeouts["d"])
        duration = min(profile.recipe_duration_s, timeout_s - profile.grace_s)
        update_s = _psp_update_seconds(eager_json)
        plan = plan_recipe(size, max(duration, 10.0), update_s)
        run_dir = work / "recipe_run"
        if run_dir.exists():
            shutil.rmtree(run_dir)
        log = out / "d_recipe.txt"
        with open(log, "w") as f:
            source = f"{update_s:.3f} s per PSP update (step c)" if update_s else "the fallback"
            f.write(f"planned for {duration:.0f} s from {source}: {plan}\n")
        result = run_step("d", recipe_command(size, plan, run_dir), log, timeout_s, env, work)
        results["d"] = result
        report = recipe_report(run_dir, plan, result)
        with open(log, "a") as f:
            f.write("\n".join(report) + "\n")
        figures = sorted((run_dir / "figures").glob("reconstruction_*.png"))
        if figures:
            shutil.copyfile(figures[-1], out / "d_figure.png")
            report.append(f"copied {figures[-1].name} to d_figure.png")
        summary.section(
            f"d. Recipe: preset={size.preset} variant=psp, reafferent cheetah-run, GT "
            f"segmentation, about {duration:.0f} s",
            result,
            "\n".join(report),
        )

    summary.write(f"Suite finished with {clock.left():.0f} s of the budget left.\n")
    return results


def main(argv: list[str] | None = None) -> int:
    """Command line; returns 0 when every step ran to its end, else 1."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", nargs="?", default=None, help="output folder (default: $OUT)")
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes (the tests)")
    parser.add_argument("--steps", nargs="+", default=list(STEPS), choices=STEPS)
    parser.add_argument("--budget", type=float, default=None, help="seconds for everything")
    parser.add_argument(
        "--elapsed", type=float, default=0.0, help="seconds already spent (by suite.sh)"
    )
    parser.add_argument(
        "--work", default=None, help="scratch folder (runs, JSON; default: a temporary one)"
    )
    args = parser.parse_args(argv)
    if args.budget is not None and args.budget <= 0:
        parser.error("--budget must be positive.")
    tmp = os.environ.get("TMPDIR", "/tmp")
    out = Path(args.out or os.environ.get("OUT") or os.path.join(tmp, "gpu_suite_out"))
    work = Path(args.work or os.path.join(tmp, "gpu_suite_work"))
    profile = DRY if args.dry_run else GPU
    results = run_suite(out, work, profile, args.steps, args.elapsed, args.budget)
    for result in results.values():
        print(f"{result.name:10s} {result.status}", flush=True)
    print(f"tables: {out / 'summary.md'}")
    return 0 if all(r.returncode == 0 and not r.timed_out for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
