"""Keep the memory a train step frees for the next one, instead of returning it to the OS every update.

A Nature-network update on the CPU allocates and frees some 30 MB of short-lived tensors (the float
observations, activations, bf16 weight casts, gradients). glibc's ``malloc`` serves blocks above its mmap
threshold (128 KiB at start, raised dynamically up to 32 MiB) with fresh ``mmap`` calls and trims freed memory
at the top of the heap back to the OS, so every update pays for the same pages again: ~1,400 page faults
per update on this project's 2-core machine, 15-30 % of the train step (``benchmarks/train_throughput.py``).

:func:`keep_freed_memory` raises the mmap threshold to its maximum (32 MiB: the replay memory, which is far
larger, is still ``mmap``-ed) and the trim threshold to ``TRIM_THRESHOLD``: freed blocks stay in the heap and
are reused without faults. Nothing about the numerics changes. It is what PyTorch's own CPU launcher does
with jemalloc (``torch.backends.xeon.run_cpu``: ``dirty_decay_ms:-1``), done here with glibc's ``mallopt``.

The setting is **process-wide** and permanent: it applies to everything else in the process too. The
memory kept is bounded by the largest amount freed at once (tens of MB for a train step) and at most
``TRIM_THRESHOLD`` at the top of the heap. Elsewhere than glibc (macOS, Windows, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

#: glibc's ``mallopt`` parameter numbers (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: the largest mmap threshold glibc accepts on 64-bit systems (``DEFAULT_MMAP_THRESHOLD_MAX``)
MMAP_THRESHOLD = 32 * 1024 * 1024
#: free memory at the top of the heap kept for reuse before it is returned to the OS
TRIM_THRESHOLD = 512 * 1024 * 1024

_applied = False


def keep_freed_memory() -> bool:
    """Apply the settings above once per process; ``True`` if they are in effect (glibc only)."""
    global _applied
    if _applied:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _applied = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied
