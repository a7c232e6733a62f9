"""glibc's malloc told to keep freed memory, so that CPU training stops paying the kernel for it.

A training step allocates and frees the same large activation and gradient buffers every step.
By default glibc serves requests above its mmap threshold (dynamic, at most 32 MiB) with fresh
mmap'd pages that it unmaps on free, and trims the heap's free top back to the system: every
step then maps new pages and takes a page fault on each first touch, which costs a large
share of a CPU epoch in kernel time; benchmarks/allocator.py measures both side by side
(results in benchmarks/results/).
Setting them in-process (mallopt, from :func:`mobilenet_study.training.loop.train`) rather
than through MALLOC_* environment variables gives every way of training the fix: the stages,
`make`, the queue's workers, the benchmarks and the tests.
"""

from __future__ import annotations

import ctypes
import os
import platform

# mallopt parameters (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

SETTINGS = {
    # Serve every request up to 1 GiB from the heap (reused), not from fresh mmap'd pages.
    M_MMAP_THRESHOLD: 1 << 30,
    # Never hand the heap's free top back to the system (it is reused next step)...
    M_TRIM_THRESHOLD: (1 << 31) - 1,
    # ...and grow it in large steps, so few brk calls.
    M_TOP_PAD: 256 << 20,
}
# `MOBILENET_STUDY_MALLOC=default` leaves glibc's defaults, for measuring the difference
# (benchmarks/allocator.py runs both side by side).
OPT_OUT_VARIABLE = "MOBILENET_STUDY_MALLOC"

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Apply :data:`SETTINGS` once per process; True if glibc took them (False elsewhere:
    macOS, musl, or opted out), so callers may report it."""
    global _applied
    if _applied is None:
        _applied = _apply()
    return _applied


def _apply() -> bool:
    if os.environ.get(OPT_OUT_VARIABLE) == "default" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return all(libc.mallopt(param, value) == 1 for param, value in SETTINGS.items())
