"""Keep freed CPU memory in the process instead of handing large blocks back to the kernel after every update.

Why: glibc's malloc serves every block of 32 MiB or more (and, until its adaptive threshold has grown, every block
of 128 KiB or more) with its own ``mmap`` and unmaps it on ``free``. A critic update at FastTD3's sizes allocates
and frees several such activations ([2 critics, 4096, 1024] float32 is exactly 32 MiB), so each update maps them
afresh and the kernel zero-fills every 4 KiB page on first touch: measured 28,700 page faults and 60 ms of system
time per 690 ms update on one core (``benchmarks/perf/``). ``mallopt(M_MMAP_MAX, 0)`` makes the main heap serve
them, and a high ``M_TRIM_THRESHOLD`` keeps freed memory mapped, so once the heap has grown to the update's peak
(a few updates) later updates reuse it without faults; the cost is that the process keeps its peak heap (as
PyTorch's CUDA caching allocator does on a GPU).

glibc only (Linux); elsewhere, or where ``mallopt`` is missing (musl), nothing changes. Threads other than the
main one allocate from their own arenas, which fall back to ``mmap`` for blocks larger than an arena's heap.
"""

from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
#: Freed memory at the top of the heap kept mapped, up to this much (bytes).
TRIM_THRESHOLD = 1 << 30

_applied = False


def retain_freed_memory() -> bool:
    """Apply the two ``mallopt`` settings once per process; returns whether they are in effect."""
    global _applied
    if _applied:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return False
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return False  # glibc only: musl's mallopt ignores these parameters
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _applied = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied
