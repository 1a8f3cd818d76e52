"""Atomic checkpoints and the random-number-generator states they carry."""

from __future__ import annotations

import os
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "DamagedCheckpointError",
    "load_checkpoint",
    "load_latest_checkpoint",
    "previous_checkpoint_path",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
]


def rng_state() -> dict[str, Any]:
    """The states of Python's, NumPy's and torch's (CPU and CUDA) generators."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restores the generators saved by :func:`rng_state`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def previous_checkpoint_path(path: str | os.PathLike) -> Path:
    """Where :func:`save_checkpoint` keeps the checkpoint before the newest:
    ``checkpoint.pt`` -> ``checkpoint.previous.pt``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.previous{path.suffix}")


def save_checkpoint(
    path: str | os.PathLike, state: dict[str, Any], keep_previous: bool = True
) -> Path:
    """Writes ``state`` with ``torch.save`` atomically: the file is either old or complete.

    With ``keep_previous``, the checkpoint it replaces is kept as
    :func:`previous_checkpoint_path` (also by an atomic rename), so that the last two
    checkpoints always exist and :func:`load_latest_checkpoint` has one to fall back to.

    Examples:
        >>> import tempfile
        >>> path = save_checkpoint(Path(tempfile.mkdtemp()) / "ckpt.pt", {"step": 3})
        >>> _ = save_checkpoint(path, {"step": 4})
        >>> load_checkpoint(path)["step"], load_checkpoint(previous_checkpoint_path(path))["step"]
        (4, 3)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as file:
        torch.save(state, file)
        file.flush()
        os.fsync(file.fileno())
    if keep_previous and path.exists():
        os.replace(path, previous_checkpoint_path(path))
    os.replace(tmp, path)
    return path


class DamagedCheckpointError(ValueError):
    """A checkpoint file exists but cannot be read (truncated, or not a checkpoint)."""


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Reads a checkpoint written by :func:`save_checkpoint`.

    Raises:
        FileNotFoundError: no file at ``path``.
        DamagedCheckpointError: the file is there but unreadable; the message names it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {str(path)!r}.")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as error:  # torch raises RuntimeError, EOFError, UnpicklingError, ...
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DamagedCheckpointError(
            f"The checkpoint {str(path)!r} ({path.stat().st_size} bytes) is damaged "
            f"(truncated or not a checkpoint): {reason}"
        ) from None
    if not isinstance(state, dict):
        raise DamagedCheckpointError(
            f"The checkpoint {str(path)!r} holds a {type(state).__name__}, not a checkpoint."
        )
    return state


def load_latest_checkpoint(
    path: str | os.PathLike, map_location: Any = "cpu"
) -> dict[str, Any] | None:
    """The newest readable checkpoint: ``path``, else its previous one (with a warning).

    Returns ``None`` when neither file exists (a run killed before its first checkpoint).

    Raises:
        DamagedCheckpointError: a checkpoint exists but neither is readable; the message
            names both files and the way out.

    Examples:
        >>> import tempfile
        >>> path = save_checkpoint(Path(tempfile.mkdtemp()) / "checkpoint.pt", {"step": 3})
        >>> _ = save_checkpoint(path, {"step": 4})
        >>> _ = path.write_bytes(path.read_bytes()[:100])  # a truncated newest checkpoint
        >>> with warnings.catch_warnings(record=True) as caught:  # warns, reads the previous
        ...     load_latest_checkpoint(path)["step"]
        3
        >>> "is damaged" in str(caught[0].message)
        True
    """
    path = Path(path)
    previous = previous_checkpoint_path(path)
    problems = []
    for candidate in (path, previous):
        if not candidate.is_file():
            continue
        try:
            state = load_checkpoint(candidate, map_location)
        except DamagedCheckpointError as error:
            problems.append(str(error))
            continue
        if problems:
            warnings.warn(
                f"{problems[0]} Resuming from the previous checkpoint {str(candidate)!r} "
                "instead (the updates since then are redone).",
                stacklevel=2,
            )
        return state
    if problems:
        raise DamagedCheckpointError(
            " ".join(problems)
            + f" No readable checkpoint is left: move {path.name} and {previous.name} away "
            "to restart the models from scratch on the saved replay, or start a new run."
        )
    return None
