"""The name of the machine's CPU, for the records of benchmarks and runs (no torch import)."""

from __future__ import annotations

import platform
from pathlib import Path

__all__ = ["cpu_model"]


def cpu_model() -> str:
    """The CPU's model name: ``model name`` of ``/proc/cpuinfo``, else the platform's.

    Examples:
        >>> from torchrl_psp.utils.machine import cpu_model
        >>> isinstance(cpu_model(), str) and len(cpu_model()) > 0
        True
    """
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"
