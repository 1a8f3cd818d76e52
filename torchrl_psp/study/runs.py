"""Run directories of ``recipes/dreamer_psp.py``: where they go and what they hold.

:func:`find_runs` reads every run under a folder, :func:`read_run` one run directory
(into a :class:`RunRecord`), :func:`read_curve` its evaluation curve;
:func:`run_dir_for` lays out a study, one run per (task, variant, seed).

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
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from torchrl_psp.figures.curves import clean_curve
from torchrl_psp.training.config import override_key

__all__ = [
    "CONFIG_FILE",
    "DONE_MARKER",
    "EVAL_RETURN_CSV",
    "RunRecord",
    "config_value",
    "find_runs",
    "load_yaml",
    "read_curve",
    "read_run",
    "run_dir_for",
]

#: The configuration dump of a run, relative to its directory.
CONFIG_FILE = "config.yaml"
#: The evaluation curve of a run (``step,value`` lines), relative to its directory.
EVAL_RETURN_CSV = "logs/scalars/eval/return.csv"
#: Marker file written by the recipe when a run has finished.
DONE_MARKER = "done"


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
    step repeats (a resumed run re-evaluating a step): see
    :func:`~torchrl_psp.figures.curves.clean_curve`. Lines that are not two numbers
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
    steps, values = [], []
    for row in csv.reader(io.StringIO(path.read_text())):
        try:
            step, value = float(row[0]), float(row[1])
        except (IndexError, ValueError):
            continue
        steps.append(step)
        values.append(value)
    return clean_curve(steps, values)


def load_yaml(path: Path) -> Any:
    """The YAML document at ``path``; ``None`` when it is missing or not valid YAML."""
    import yaml

    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None


def config_value(config: Any, dotted: str) -> Any:
    """``config["a"]["b"]`` for ``"a.b"``; ``None`` where a key is missing.

    Examples:
        >>> config_value({"env": {"task": "run"}}, "env.task"), config_value({}, "env.task")
        ('run', None)
    """
    for key in dotted.split("."):
        if not isinstance(config, dict) or key not in config:
            return None
        config = config[key]
    return config


def _overrides(run_dir: Path) -> dict[str, str]:
    """``key=value`` pairs of Hydra's ``.hydra/overrides.yaml`` (empty when absent)."""
    items = load_yaml(run_dir / ".hydra" / "overrides.yaml")
    pairs = {}
    for item in items if isinstance(items, list) else []:
        if isinstance(item, str) and "=" in item:
            pairs[override_key(item)] = item.split("=", 1)[1]
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
    config = load_yaml(config_path) if config_path is not None else None
    config = config if isinstance(config, dict) else {}
    overrides = _overrides(run_dir)

    def field_of(key: str) -> Any:
        value = config_value(config, key)
        return overrides.get(key) if value is None else value

    variant = field_of("variant")
    if isinstance(variant, dict):
        variant = variant.get("name") or config_value(
            load_yaml(run_dir / ".hydra" / "hydra.yaml"), "hydra.runtime.choices.variant"
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


def run_dir_for(root: str | Path, task: str, variant: str, seed: int) -> Path:
    """``<root>/<task>/<variant>/seed<seed>`` (absolute)."""
    return Path(root).resolve() / task / variant / f"seed{seed}"
