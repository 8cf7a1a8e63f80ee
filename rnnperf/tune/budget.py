"""``--budget``: a wall-clock limit on a whole tune, and the measure wrapper that honours it.

A tune with a budget stops with the best point measured so far rather than run over: the
measurement in flight when the budget runs out is cut (its worker's timeout is the time left, so
the worker is killed on time, never waited for) and thrown away, and the rung in progress ends
there. The deadline is wall-clock time (``time.time()``) because on Dask the wrapper runs on the
worker's host, which shares the clock but not the parent's monotonic one.
"""

from __future__ import annotations

import dataclasses
import re
import time

from ..errors import ConfigError

UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([smh]?)")
#: the mark a measurement cut by the budget carries in ``extra`` (never saved)
CUT = "budget_cut"


def parse_budget(text: str) -> float:
    """``90s``, ``10m``, ``1h``, ``1h30m`` or bare seconds -> seconds; one line naming the bad
    value otherwise (exit 2)."""
    raw = (text or "").strip().lower()
    pos, total, units = 0, 0.0, []
    while pos < len(raw):
        match = _PART.match(raw, pos)
        if not match:
            break
        total += float(match.group(1)) * UNITS[match.group(2) or "s"]
        units.append(match.group(2) or "s")
        pos = match.end()
    if not raw or pos != len(raw) or len(set(units)) != len(units) or total <= 0:
        raise ConfigError(f"--budget {text}: expected a positive duration such as 90s, 10m, "
                          "1h or 1h30m")
    return total


@dataclasses.dataclass
class Budget:
    """Seconds a tune may take from ``start``; ``seconds=None`` is no limit."""

    seconds: float | None = None
    start: float = dataclasses.field(default_factory=time.time)
    text: str | None = None             # as the user wrote it, for the rc file

    @property
    def deadline(self) -> float | None:
        return None if self.seconds is None else self.start + self.seconds

    def remaining(self, now: float | None = None) -> float:
        if self.seconds is None:
            return float("inf")
        return self.deadline - (time.time() if now is None else now)

    def spent(self) -> bool:
        return self.remaining() <= 0


def within(measure_fn, deadline: float | None):
    """``measure_fn`` whose worker timeout never passes ``deadline`` (see the module docstring);
    a measurement cut by it carries ``extra[CUT]``. Picklable for Dask (a partial of a module
    function)."""
    import functools
    if deadline is None:
        return measure_fn
    return functools.partial(_measure_within, measure_fn, deadline)


def _measure_within(measure_fn, deadline: float, job, settings):
    left = deadline - time.time()
    if left <= 0:
        m = job.blank(status="timeout", error="cut by --budget before it started")
        m.extra = {CUT: True}
        return m
    clamped = left < settings.timeout
    m = measure_fn(job, dataclasses.replace(settings, timeout=min(settings.timeout, left)))
    if clamped and (m.status == "timeout" or time.time() >= deadline):
        m.extra = {**(m.extra or {}), CUT: True}
    return m
