"""How busy the machine was while a worker timed its rounds, from the worker's own view.

Read around the timed rounds, inside the worker: the CPU time every process used (``/proc/stat``)
minus the worker's own (``os.times``) is what *other* processes took, as a share of the machine;
the hypervisor's ``steal`` is its share of the same interval; and the 1-minute load average at
the end. On this project's 2-core box a second busy process turned a 1.9x ratio into 1.3x
(docs/performance.md), so a measurement taken beside one is flagged (``Measurement.busy``) and
the table says so. Linux only; elsewhere every figure is None.
"""

from __future__ import annotations

import os
import time

_USER_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat() -> tuple[float, float, float] | None:
    """``(busy, steal, total)`` CPU seconds of the whole machine since boot, or None."""
    try:
        with open("/proc/stat") as fh:
            ticks = [int(v) for v in fh.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = (ticks + [0] * 8)[:8]
    busy = user + nice + system + irq + softirq
    return busy / _USER_HZ, steal / _USER_HZ, sum(ticks) / _USER_HZ


class LoadWindow:
    """Start it before the timed rounds, call :meth:`figures` after them."""

    def __init__(self):
        self.wall, self.stat, self.own = time.perf_counter(), _stat(), _own()

    def figures(self) -> dict:
        """``others_cpu`` and ``steal`` as shares of the machine, and ``loadavg``."""
        end, own = _stat(), _own()
        wall = time.perf_counter() - self.wall
        if self.stat is None or end is None or wall <= 0:
            return {"others_cpu": None, "steal": None, "loadavg": None}
        cpus = os.cpu_count() or 1
        busy = end[0] - self.stat[0]
        total = end[2] - self.stat[2]
        others = max(0.0, busy - (own - self.own)) / (wall * cpus)
        steal = (end[1] - self.stat[1]) / total if total > 0 else 0.0
        return {"others_cpu": round(min(others, 1.0), 4), "steal": round(steal, 4),
                "loadavg": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None}


def _own() -> float:
    times = os.times()
    return times.user + times.system
