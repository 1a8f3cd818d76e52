"""Running a comparison: one run of ``recipes/dreamer_psp.py`` per (task, variant, seed).

:func:`plan_runs` lays out the runs under ``<root>/<task>/<variant>/seed<seed>``
(:func:`~torchrl_psp.study.runs.run_dir_for`) and says which are done (skipped),
unfinished (resumed with ``resume=<run dir>``), new, or unfinished with another
configuration than the one requested (not run); :func:`run_all` runs them, a few at a time,
and records the wall-clock time and the machine of each process in the run's
``invocations.csv`` (:data:`INVOCATIONS_FILE`).
"""

from __future__ import annotations

import csv
import io
import os
import re
import shlex
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torchrl_psp.study.runs import (
    CONFIG_FILE,
    DONE_MARKER,
    config_value,
    load_yaml,
    run_dir_for,
)
from torchrl_psp.training.config import may_change_on_resume, override_key
from torchrl_psp.utils.machine import cpu_model

__all__ = [
    "HEARTBEAT_SECONDS",
    "INVOCATIONS_COLUMNS",
    "INVOCATIONS_FILE",
    "LOG_FILE",
    "RunSpec",
    "plan_runs",
    "run_all",
    "run_status",
    "split_task",
]

#: Where :func:`run_all` writes a run's stdout and stderr, relative to its directory.
LOG_FILE = "stdout.log"
#: One line per process :func:`run_all` ran for a run (appended), relative to its directory.
INVOCATIONS_FILE = "invocations.csv"
#: The columns of :data:`INVOCATIONS_FILE`: Unix start and end times, seconds between them,
#: the exit code, how many runs :func:`run_all` ran at a time, the child's
#: ``OMP_NUM_THREADS`` (empty: unset), the machine's logical CPUs and CPU model. While a
#: process runs its line is rewritten every :data:`HEARTBEAT_SECONDS` with an empty exit
#: code, so a process killed together with its launcher (a machine or session shut down)
#: keeps a line that ends when it was last seen running.
HEARTBEAT_SECONDS = 60.0
INVOCATIONS_COLUMNS = (
    "start",
    "end",
    "seconds",
    "exit_code",
    "processes",
    "omp_threads",
    "cpus",
    "cpu_model",
)


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


def _resumable(override: str) -> bool:
    """Kept in a resume command: what the recipe accepts on resume, and what it ignores."""
    key = override_key(override)
    return may_change_on_resume(override) or key.startswith("hydra.") or key == "preset"


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
    config = load_yaml(run_dir / CONFIG_FILE)
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
        stored = config_value(config, key)
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
    ``conflicts``: not run, reported as a failure). A study adds ``"published"`` (its
    results are already kept: not run, see :mod:`~torchrl_psp.study.study_runner`) and
    names the run's ``group``.
    """

    task: str
    variant: str
    seed: int
    run_dir: Path
    status: str
    command: list[str]
    conflicts: list[str] = field(default_factory=list)
    group: str | None = None

    @property
    def name(self) -> str:
        """``"<task>/<variant>/seed<seed>"``, after ``"<group>/"`` when there is a group."""
        name = f"{self.task}/{self.variant}/seed{self.seed}"
        return name if self.group is None else f"{self.group}/{name}"


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


def _record_invocation(
    run_dir: Path, started: float, code: int | None, processes: int, env: dict[str, str]
) -> None:
    """Writes the line of :data:`INVOCATIONS_FILE` of the process started at ``started``
    (its header first, in a new file): replaces that process's line if it is the last one,
    appends it otherwise. ``code=None`` (still running) leaves the exit code empty."""
    path = run_dir / INVOCATIONS_FILE
    end = time.time()
    row = [
        f"{started:.3f}",
        f"{end:.3f}",
        f"{end - started:.1f}",
        "" if code is None else code,
        processes,
        env.get("OMP_NUM_THREADS", ""),
        os.cpu_count() or "",
        cpu_model(),
    ]
    lines = path.read_text().splitlines(keepends=True) if path.exists() else []
    if not lines:
        lines = [",".join(INVOCATIONS_COLUMNS) + "\n"]
    if len(lines) > 1 and lines[-1].startswith(f"{started:.3f},"):
        lines.pop()
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(row)
    lines.append(out.getvalue())
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(lines))
    tmp.replace(path)


def run_all(
    specs: Sequence[RunSpec],
    processes: int = 1,
    *,
    echo: Callable[[str], None] = print,
    poll_interval: float = 0.5,
    heartbeat: float = HEARTBEAT_SECONDS,
    env: dict[str, str] | None = None,
    on_finish: Callable[[RunSpec, int], None] | None = None,
) -> dict[str, int]:
    """Runs the specs that are new or to resume, at most ``processes`` at a time; each
    one's output goes to ``<run_dir>/stdout.log`` (appended, after a line with its command)
    and each process gets a line of ``<run_dir>/invocations.csv``
    (:data:`INVOCATIONS_COLUMNS`), written when it starts, rewritten every ``heartbeat``
    seconds while it runs (exit code empty) and when it ends.

    A failure does not stop the others. A run that exits with 0 without writing the
    ``done`` marker counts as failed (return code ``-999`` in the result). With several
    processes, ``OMP_NUM_THREADS`` is set to ``cpu_count // processes`` for the children
    unless already set. ``on_finish(spec, code)`` is called as each run ends (``code`` as
    in the result: 0 for a finished run), e.g. to publish its results at once.
    Interrupting (Ctrl-C) terminates the running children.

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
    running: dict[subprocess.Popen, tuple[RunSpec, Any, float, float]] = {}
    results: dict[str, int] = {}
    last_heartbeat = time.monotonic()
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
                started = time.time()
                running[process] = (spec, log, time.monotonic(), started)
                _record_invocation(spec.run_dir, started, None, processes, child_env)
                echo(f"[start] {spec.name} ({spec.status}) pid {process.pid}")
            finished = [p for p in running if p.poll() is not None]
            for process in finished:
                spec, log, start, started = running.pop(process)
                log.close()
                _record_invocation(spec.run_dir, started, process.returncode, processes, child_env)
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
                if on_finish is not None:
                    on_finish(spec, code)
            if time.monotonic() - last_heartbeat >= heartbeat:
                last_heartbeat = time.monotonic()
                for spec, _, _, started in running.values():
                    _record_invocation(spec.run_dir, started, None, processes, child_env)
            if not finished and running:
                time.sleep(poll_interval)
    except BaseException:
        for process in running:
            process.terminate()
        for process, (spec, log, _, started) in running.items():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()
            _record_invocation(spec.run_dir, started, process.returncode, processes, child_env)
        raise
    return results
