"""Process memory settings that make large CPU tensors cheap to allocate.

PyTorch's CPU allocator takes every tensor from the C library's ``malloc``. glibc serves
a block larger than its mmap threshold (128 KiB, growing to at most 32 MiB) with a fresh
``mmap`` and returns it to the system on ``free``: every large activation map of a
DreamerV3 update (a 1024 x 16 x 32 x 32 float map is 64 MiB) is then new memory whose
pages fault in on first touch, a cost that shows as slow element-wise kernels. On one
core of the development machine a fused norm-SiLU forward over such a map took 42 ms
with glibc's defaults and 8 ms with :func:`retain_freed_memory`
(``docs/performance.rst``). The usual cure is another allocator (jemalloc, tcmalloc,
``LD_PRELOAD``); this module applies the same idea to glibc from inside the process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

__all__ = ["retain_freed_memory"]

# mallopt parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_INT_MAX = 2**31 - 1
_TOP_PAD = 256 * 2**20

_applied: bool | None = None


def retain_freed_memory() -> bool:
    """Makes glibc keep and reuse freed memory instead of returning it to the system.

    Sets glibc's mmap threshold and trim threshold to their maximum (every block comes
    from the heap, and freed heap memory is kept for the next allocation) and its top
    pad to 256 MiB (the heap grows in large steps). The process's resident memory then
    stays at its peak instead of shrinking between updates. It changes no result, only
    where memory comes from; it is process-wide and applied once.

    Returns:
        ``True`` when the settings are in effect (glibc on Linux), ``False`` elsewhere
        (another C library or system, where nothing is changed).

    Examples:
        >>> retain_freed_memory() in (True, False)
        True
    """
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return _applied
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return _applied
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    settings = (
        (_M_MMAP_THRESHOLD, _INT_MAX),
        (_M_TRIM_THRESHOLD, _INT_MAX),
        (_M_TOP_PAD, _TOP_PAD),
    )
    _applied = all(mallopt(option, value) == 1 for option, value in settings)
    return _applied
