"""Published results of a run: the few small files a study keeps in the repository.

A finished run directory holds replay data, checkpoints and videos (gigabytes); what the
tables and figures need is a few kilobytes. :func:`publish_run` copies that into a
results folder (``docs/results/<study>/<group>/<variant>/seed<k>/`` for a study), which
:func:`~torchrl_psp.study.runs.read_run` reads like a run directory;
:func:`is_published` tells a study runner that a run is there and need not run again.

What is copied (:data:`RESULT_FILES`, :data:`RESULT_PATTERNS`, :data:`LAST_FIGURES`):
``config.yaml``, Hydra's ``.hydra/overrides.yaml`` (without the machine's ``hydra.*``
paths), the evaluation curves ``logs/scalars/eval/*.csv`` (return, its std, episode
length, the agent / background reconstruction errors), ``logs/episodes.csv`` (every
training episode), ``invocations.csv`` (wall-clock and machine of each process of the
run, written by :func:`~torchrl_psp.study.launcher.run_all`), the learning curve and the
last reconstruction and SD mask panels. The ``done`` marker is copied last: a copy cut
short is not published.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from torchrl_psp.study.launcher import INVOCATIONS_FILE
from torchrl_psp.study.runs import CONFIG_FILE, DONE_MARKER, load_yaml

__all__ = [
    "LAST_FIGURES",
    "OVERRIDES_FILE",
    "RESULT_FILES",
    "RESULT_PATTERNS",
    "is_published",
    "publish_run",
]

#: Hydra's record of a run's command-line overrides, relative to the run directory.
OVERRIDES_FILE = ".hydra/overrides.yaml"
#: Files copied as they are (when they exist), relative to the run directory.
RESULT_FILES = (CONFIG_FILE, "logs/episodes.csv", INVOCATIONS_FILE)
#: Glob patterns of the files copied, relative to the run directory.
RESULT_PATTERNS = ("logs/scalars/eval/*.csv",)
#: Glob patterns of figures of which only the last (by name: the latest step) is copied.
LAST_FIGURES = (
    "figures/learning_curve.png",
    "figures/reconstruction_*.png",
    "figures/sd_masks_*.png",
)


def is_published(results_dir: str | Path) -> bool:
    """Whether ``results_dir`` holds a complete publication (its ``config.yaml`` and the
    ``done`` marker, which :func:`publish_run` writes last)."""
    results_dir = Path(results_dir)
    return (results_dir / DONE_MARKER).is_file() and (results_dir / CONFIG_FILE).is_file()


def _copy(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)
    return target


def publish_run(run_dir: str | Path, results_dir: str | Path) -> list[Path]:
    """Copies the small results of the finished run ``run_dir`` into ``results_dir``
    (see the module docstring), replacing an earlier copy; returns the files written.

    Raises:
        ValueError: when ``run_dir`` has not finished (no ``done`` marker) or has no
            ``config.yaml``.

    Examples:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     run = Path(folder) / "run"
        ...     (run / "logs/scalars/eval").mkdir(parents=True)
        ...     (run / "replay").mkdir()
        ...     for name in ("config.yaml", "done", "logs/scalars/eval/return.csv",
        ...                  "replay/storage.bin", "figures/reconstruction_00000100.png",
        ...                  "figures/reconstruction_00000200.png"):
        ...         (run / name).parent.mkdir(parents=True, exist_ok=True)
        ...         _ = (run / name).write_text("x")
        ...     written = publish_run(run, Path(folder) / "published")
        ...     [p.relative_to(Path(folder) / "published").as_posix() for p in written]
        ['config.yaml', 'logs/scalars/eval/return.csv', 'figures/reconstruction_00000200.png', 'done']
    """
    run_dir, results_dir = Path(run_dir), Path(results_dir)
    if not (run_dir / DONE_MARKER).is_file() or not (run_dir / CONFIG_FILE).is_file():
        raise ValueError(
            f"{run_dir} is not a finished run (it needs {CONFIG_FILE} and the "
            f"'{DONE_MARKER}' marker); nothing published."
        )
    (results_dir / DONE_MARKER).unlink(missing_ok=True)  # unpublished while copying
    written = []
    for name in RESULT_FILES:
        if (run_dir / name).is_file():
            written.append(_copy(run_dir / name, results_dir / name))
    overrides = load_yaml(run_dir / OVERRIDES_FILE)
    if isinstance(overrides, list):
        import yaml

        kept = [o for o in overrides if not (isinstance(o, str) and o.startswith("hydra."))]
        target = results_dir / OVERRIDES_FILE
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(kept))
        written.append(target)
    for pattern in RESULT_PATTERNS:
        for source in sorted(run_dir.glob(pattern)):
            written.append(_copy(source, results_dir / source.relative_to(run_dir)))
    for pattern in LAST_FIGURES:
        for stale in results_dir.glob(pattern):  # an earlier publication's last figure
            stale.unlink()
        found = sorted(run_dir.glob(pattern))
        if found:
            written.append(_copy(found[-1], results_dir / found[-1].relative_to(run_dir)))
    written.append(_copy(run_dir / DONE_MARKER, results_dir / DONE_MARKER))
    return written
