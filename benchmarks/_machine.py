"""What every benchmark records about the machine it ran on: load averages and CPU-seconds.

A timing taken while the 1-minute load average exceeded 2.5 (other processes sharing the 2 cores) is
void; ``record()`` says so in ``timings_valid``. Importing this module also makes glibc keep freed memory in the
heap (:func:`hepgen.memory.keep_freed_memory`, as the ``hepgen`` command does): without it a training step of
large temporaries page-faults on every layer (a lattice flow at L = 12, batch 4096: 16.2 s per step against 5.9 s; malloc_pagefaults.py).
Records say whether it was in force (``malloc_kept``); results from before 2026-12-07 16:30 UTC ran without it.

    meter = Meter()            # at the start of the work
    ...
    results["machine"] = meter.record()
"""

from __future__ import annotations

import os
import platform
import time
from datetime import datetime, timezone

from hepgen.memory import keep_freed_memory

MALLOC_KEPT = keep_freed_memory() or bool(os.environ.get("MALLOC_MMAP_THRESHOLD_"))

VOID_ABOVE = 2.5


class Meter:
    """Wall and CPU time (this process and its children) and the load average since construction."""

    def __init__(self) -> None:
        self.load_at_start = os.getloadavg()
        # names this invocation in records merged across runs (UTC to the microsecond, and the process)
        self.started = f"{datetime.now(timezone.utc).isoformat(timespec='microseconds')} pid {os.getpid()}"
        self.wall_start = time.perf_counter()
        self.cpu_start = self._cpu()
        self.peak_load = self.load_at_start[0]

    @staticmethod
    def _cpu() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def sample(self) -> float:
        """The 1-minute load now (also kept as the peak); call it between pieces of work."""
        now = os.getloadavg()[0]
        self.peak_load = max(self.peak_load, now)
        return now

    def record(self) -> dict:
        self.sample()
        end = os.getloadavg()
        return {"started": self.started, "load_average_at_start": [round(v, 2) for v in self.load_at_start],
                "load_average_at_end": [round(v, 2) for v in end],
                "peak_load_1min_sampled": round(self.peak_load, 2),
                "timings_valid": bool(max(self.load_at_start[0], end[0], self.peak_load) <= VOID_ABOVE),
                "wall_s": round(time.perf_counter() - self.wall_start, 1),
                "cpu_s": round(self._cpu() - self.cpu_start, 1),
                "cores": os.cpu_count(), "python": platform.python_version(), "malloc_kept": MALLOC_KEPT}
