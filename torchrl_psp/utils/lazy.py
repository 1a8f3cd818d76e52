"""Package attributes imported on first use (a package ``__init__`` that stays light)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: dict[str, str]
) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``__all__``, ``__getattr__`` and ``__dir__`` for a package whose names load lazily.

    The first access of a name imports its submodule and stores the name in the package.

    Args:
        package: the package's ``__name__``.
        exports: public name -> submodule (relative to ``package``) that defines it.

    Examples:
        >>> all_, getattr_, dir_ = lazy_exports("json", {"JSONDecoder": "decoder"})
        >>> all_, getattr_("JSONDecoder").__name__, "JSONDecoder" in dir_()
        (['JSONDecoder'], 'JSONDecoder', True)
    """

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        sys.modules[package].__dict__[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(sys.modules[package].__dict__) | set(exports))

    return sorted(exports), __getattr__, __dir__
