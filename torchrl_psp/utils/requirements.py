"""Which of the project's run requirements this Python lacks (no torch import).

``recipes/compare.py`` starts every run as ``python recipes/dreamer_psp.py ...``; on a
Python where the project is not installed each run would fail at its first import, one
after the other. :func:`missing_requirements` says so before any run starts. The list of
requirements is the one of ``pyproject.toml`` (``[project] dependencies``, the extras left
out); where that file cannot be read (Python 3.10 has no ``tomllib``), the installed
``torchrl-psp``'s metadata, which pip wrote from the same list.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

__all__ = ["PROJECT", "missing_requirements", "run_requirements"]

PROJECT = "torchrl-psp"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _from_pyproject(pyproject: Path) -> list[str] | None:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        return None
    try:
        with open(pyproject, "rb") as file:
            return list(tomllib.load(file)["project"]["dependencies"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return None


def _from_metadata() -> list[str]:
    try:
        requirements = metadata.requires(PROJECT) or []
    except metadata.PackageNotFoundError:
        return []
    return [line for line in requirements if "extra ==" not in line]


def run_requirements(pyproject: Path | None = None) -> list[str]:
    """The distribution names the project needs to run: ``pyproject``'s ``dependencies``,
    else the installed project's (without extras); empty when neither is known.

    Examples:
        >>> from torchrl_psp.utils.requirements import run_requirements
        >>> isinstance(run_requirements(), list)
        True
    """
    lines = _from_pyproject(pyproject) if pyproject is not None else None
    if lines is None:
        lines = _from_metadata()
    names = (_NAME.match(line.strip()) for line in lines)
    return [name.group(0) for name in names if name is not None]


def missing_requirements(pyproject: Path | None = None) -> list[str]:
    """The names of :func:`run_requirements` that are not installed in this Python.

    Only whether a distribution is installed is checked, not its version (pip checks
    versions when it installs).

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from torchrl_psp.utils.requirements import missing_requirements
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "pyproject.toml").write_text(
        ...     '[project]\\nname = "x"\\ndependencies = ["pip", "no-such-dist>=1"]\\n'
        ... )
        >>> missing_requirements(folder / "pyproject.toml")
        ['no-such-dist']
    """
    missing = []
    for name in run_requirements(pyproject):
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
    return missing
