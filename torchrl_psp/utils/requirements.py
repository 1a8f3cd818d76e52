"""Which of the project's run requirements this Python lacks (no torch import).

``recipes/compare.py`` starts every run as ``python recipes/dreamer_psp.py ...``; on a
Python where the project is not installed each run would fail at its first import, one
after the other. :func:`missing_requirements` says so before any run starts. The list of
requirements is the one of ``pyproject.toml`` (``[project] dependencies``, the extras left
out), read with ``tomllib`` or, on Python 3.10 (no ``tomllib``), by
:func:`dependencies_from_toml_text`; where that file cannot be read, the installed
``torchrl-psp``'s metadata, which pip wrote from the same list.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

__all__ = ["PROJECT", "dependencies_from_toml_text", "missing_requirements", "run_requirements"]

PROJECT = "torchrl-psp"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


_TABLE = re.compile(r"^\s*\[\[?([^\[\]]+)\]\]?\s*(#.*)?$")  # [table] or [[array of tables]]
_DEPENDENCIES = re.compile(r"^\s*dependencies\s*=\s*\[")


def dependencies_from_toml_text(text: str) -> list[str] | None:
    """The ``[project] dependencies`` array of a ``pyproject.toml``'s text, read without
    ``tomllib`` (Python 3.10): the basic and literal strings of the array, comments
    skipped; ``None`` when the table or the array is not there or the array is not
    closed. Escapes other than ``\\"`` and ``\\\\`` are kept as written (requirement
    strings have none).

    Examples:
        >>> from torchrl_psp.utils.requirements import dependencies_from_toml_text
        >>> dependencies_from_toml_text(
        ...     '[project]\\nname = "x"\\ndependencies = [\\n  "a>=1",  # why\\n'
        ...     "  'b[extra] ; python_version >= \\"3\\"',\\n]\\n[tool.x]\\ndependencies = []\\n"
        ... )
        ['a>=1', 'b[extra] ; python_version >= "3"']
    """
    lines = text.splitlines()
    in_project = False
    for number, line in enumerate(lines):
        table = _TABLE.match(line)
        if table:
            in_project = table.group(1).strip() == "project"
        elif in_project and _DEPENDENCIES.match(line):
            rest = "\n".join([line[line.index("[") + 1 :], *lines[number + 1 :]])
            return _string_array(rest)
    return None


def _string_array(text: str) -> list[str] | None:
    """The strings of a TOML array whose opening ``[`` precedes ``text``; ``None`` if the
    array does not close."""
    items: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "]":
            return items
        if char == "#":  # a comment runs to the end of its line
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
        elif char in "\"'":
            value, i = _string(text, i)
            if value is None:
                return None
            items.append(value)
        i += 1
    return None


def _string(text: str, start: int) -> tuple[str | None, int]:
    """The string opening at ``text[start]`` and the index of its closing quote."""
    quote, i, value = text[start], start + 1, []
    while i < len(text) and text[i] != "\n":
        char = text[i]
        if char == quote:
            return "".join(value), i
        if quote == '"' and char == "\\" and i + 1 < len(text) and text[i + 1] in '"\\':
            char, i = text[i + 1], i + 1
        value.append(char)
        i += 1
    return None, i


def _from_pyproject(pyproject: Path) -> list[str] | None:
    try:
        text = Path(pyproject).read_text(encoding="utf-8")
    except OSError:
        return None
    try:
        import tomllib
    except ImportError:  # Python 3.10
        return dependencies_from_toml_text(text)
    try:
        return list(tomllib.loads(text)["project"]["dependencies"])
    except (KeyError, TypeError, tomllib.TOMLDecodeError):
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
