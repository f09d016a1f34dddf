"""The process's memory allocator on a CPU: keep freed memory in the heap instead of handing it back.

torch's CPU tensors come from the C library's ``malloc``. glibc serves a block larger than its *mmap threshold*
(128 kB at start, raised dynamically up to 32 MiB as large blocks are freed) by mapping fresh pages, and hands
freed memory above its *trim threshold* back to the system; every page mapped again costs a page fault and a
zeroing the next time it is touched. A training step allocates and frees the same temporaries of several MB at
every layer, so on a CPU a large part of it can be page faults (mallopt(3)). Measured on this project's 2-core
machine, one thread:

* a lattice flow's training step (``hepgen.lattice.Phi4Flow``, 8 spline layers of (16, 16) channels, L = 12,
  batch 4096, forward + backward + Adam): 16.2 s with 3.7 million page faults per step, 5.9 s and none with
  :func:`keep_freed_memory` (the activations exceed glibc's 32 MiB cap on the dynamic threshold, so they were
  mapped afresh at every step whatever happened before); at batch 1024 no gain (1.46 against 1.51 s), the
  dynamic threshold already covers it (benchmarks/malloc_pagefaults.py, committed results);
* that flow's MCMC proposals (:func:`hepgen.lattice.mcmc.propose`, which only warms the heap with :func:`warm_heap`, a
  library call not changing the process's settings): 1.4-2x cheaper in a fresh process (a probe, not a committed
  benchmark); inside benchmarks/lattice_mcmc.py, after training and with the flows' stride-2 path as well, 0.354 ->
  0.308 ms per proposal at L = 8 and 0.641 -> 0.564 ms at L = 10 (its --remeasure records).

``hepgen`` (the command line) calls :func:`keep_freed_memory` at its start, as do the benchmarks; from Python call
it once yourself. The price: the process's resident memory stays at its peak instead of shrinking after it. A
user's own ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` / ``MALLOC_TOP_PAD_`` (glibc's environment
variables, read at start) are left alone, and ``HEPGEN_MALLOC=system`` turns it off. Other C libraries (macOS,
musl, Windows) are not touched.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

#: mallopt(3) parameter numbers (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
#: blocks up to this size come from the heap; freed memory up to ``TRIM_BYTES`` stays there
MMAP_BYTES = 1 << 30
TRIM_BYTES = (1 << 31) - 1  # mallopt takes a C int
#: bytes of the block :func:`warm_heap` allocates and frees
WARM_BYTES = 30 * 2**20
#: glibc's environment variables that set what :func:`keep_freed_memory` would
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")

_kept = False


def _glibc() -> ctypes.CDLL | None:
    """The process's glibc, or None (another C library or platform)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()
        libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        libc.mallopt.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


def keep_freed_memory() -> bool:
    """Make glibc serve blocks up to 1 GiB from its heap and keep up to 2 GiB of freed memory (once per process).

    Returns whether the setting is in force: False on other C libraries, when the user set glibc's own variables
    (``MALLOC_MMAP_THRESHOLD_`` …) or ``HEPGEN_MALLOC=system``. Numerics are untouched: only where memory comes
    from changes.
    """
    global _kept
    if _kept:
        return True
    if os.environ.get("HEPGEN_MALLOC", "").strip().lower() == "system":
        return False
    if any(name in os.environ for name in USER_SETTINGS):
        return False
    libc = _glibc()
    if libc is None:
        return False
    _kept = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_BYTES)) and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_BYTES))
    return _kept


def warm_heap(nbytes: int = WARM_BYTES) -> None:
    """Allocate and free ``nbytes`` (untouched): glibc then raises its dynamic mmap threshold to that size and its
    trim threshold to twice it, as after any freed tensor of that size. For library code that would otherwise map
    and unmap temporaries of a few MB at every layer (:func:`hepgen.lattice.mcmc.propose`); it sets nothing."""
    import torch  # here: keep_freed_memory runs before the command line imports torch

    torch.empty(int(nbytes), dtype=torch.uint8)
