"""What a run may use of the machine: the memory available on a device, and the refusal of a run that cannot fit.

A model that knows the memory its training needs (:meth:`check_fit` of a data-free flow: activations ∝
batch × sites × channels × layers) compares that estimate with :func:`available_memory` before anything is
trained or written, so that an oversized run is refused with the options to lower instead of growing until
the kernel's OOM killer (which acts machine-wide) ends it.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from hepgen.errors import ConfigError

__all__ = ["available_memory", "check_memory", "format_bytes"]


def _meminfo_available(path: str | Path = "/proc/meminfo") -> int | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_available() -> int | None:
    """Memory left under a cgroup v2 limit (containers), or None without one."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else max(int(limit) - used, 0)


def available_memory(device: torch.device | str = "cpu") -> int | None:
    """Bytes that a run may still allocate on ``device``: free GPU memory on CUDA; on the CPU the kernel's
    MemAvailable (``/proc/meminfo``, else ``os.sysconf``), capped by a cgroup limit; None when unknown."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    available = _meminfo_available()
    if available is None:
        try:
            available = int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            available = None
    cgroup = _cgroup_available()
    if cgroup is not None:
        available = cgroup if available is None else min(available, cgroup)
    return available


def format_bytes(n: float) -> str:
    """1.3 TB, 820 MB, 4.0 kB (powers of 1000)."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} B"


def check_memory(need: float, what: str, lower: str, device: torch.device | str = "cpu",
                 available: float | None = None) -> None:
    """Refuse a run whose estimated memory ``need`` (bytes) exceeds ``available`` (default: what
    :func:`available_memory` finds on ``device``; unknown: no check): a ConfigError saying ``what`` needs it
    and which options to ``lower``."""
    if available is None:
        available = available_memory(device)
    if available is None or need <= available:
        return
    device = torch.device(device)
    where = "this machine" if device.type == "cpu" else f"{device}"
    raise ConfigError(f"{what} needs about {format_bytes(need)} of memory, but {where} has "
                      f"{format_bytes(available)} available; {lower}")
