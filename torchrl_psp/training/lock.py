"""One process per run directory: an OS file lock held for the life of the run."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

__all__ = ["LOCK_FILE", "RunDirectoryBusyError", "RunDirectoryLock", "lock_run_directory"]

#: The lock file inside a run directory (holds the PID of the owner).
LOCK_FILE = ".lock"


class RunDirectoryBusyError(RuntimeError):
    """Another live process owns the run directory."""


class RunDirectoryLock:
    """An exclusive :func:`fcntl.flock` on ``<run_dir>/.lock``, which holds the owner's PID.

    The operating system releases the lock when its process exits in any way, SIGKILL
    included, so a killed run never leaves a stale lock behind: the file may stay, the
    lock does not. Use :func:`lock_run_directory`, which keeps one lock per directory
    and process.

    Examples:
        >>> import tempfile
        >>> lock = RunDirectoryLock(tempfile.mkdtemp())
        >>> lock.locked
        True
        >>> lock.release()
        >>> lock.locked
        False
    """

    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunDirectoryBusyError(
                f"The run directory {str(self.run_dir)!r} is in use by another process "
                f"(PID {owner}); two processes would write the same replay, logs and "
                "checkpoint. Wait for it to end, or stop it, before resuming."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self._fd: int | None = fd

    @property
    def locked(self) -> bool:
        """Whether this object still holds the lock."""
        return self._fd is not None

    def release(self) -> None:
        """Releases the lock (the OS does it anyway when the process exits)."""
        if self._fd is not None:
            _HELD.pop(self.run_dir.resolve(), None)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


_HELD: dict[Path, RunDirectoryLock] = {}


def lock_run_directory(run_dir: str | os.PathLike) -> RunDirectoryLock:
    """Locks ``run_dir`` for this process (again: the same lock) until it exits.

    Raises:
        RunDirectoryBusyError: another process holds it; the message names the
            directory and that process's PID.

    Examples:
        >>> import tempfile
        >>> run_dir = tempfile.mkdtemp()
        >>> lock_run_directory(run_dir) is lock_run_directory(run_dir)
        True
    """
    key = Path(run_dir).resolve()
    lock = _HELD.get(key)
    if lock is None or not lock.locked:
        lock = _HELD[key] = RunDirectoryLock(run_dir)
    return lock
