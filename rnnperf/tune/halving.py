"""Successive halving: measure every point briefly, then only the best again, longer.

Most of an exhaustive tune's time goes on points that were never close to the winner. Halving
(Jamieson and Talwalkar's successive halving, Hyperband's inner loop) spends it on the contenders:

* **rung 0** measures every point with a short setting (few rounds, a small ``min_time``), in
  an order that puts points differing only in run-time settings (``threads``) side by side, so
  the first of them compiles and the others find the compile caches warm;
* each later rung keeps the best ``1/eta`` of the one before (at least :data:`FINAL_SIZE`) and
  measures them again, each rung's ``min_time`` ``eta`` times the last, until the final rung
  measures :data:`FINAL_SIZE` points with the user's full ``--rounds`` and ``--min-time``;
* the ranking and the rc file come from the highest rung each point reached, then its speed
  there: the final rung's points first (:func:`rank_reached`).

A point that fails at rung 0 (a compile error, an unavailable engine, a timeout) drops out
there and costs no later rung. Parity is checked when a point is first promoted (rung 1 and
later: :func:`rnnperf.tune.point.measure_rung`), not at rung 0: a point that loses at rung 0 is
never chosen, so checking it would only cost time. A promoted point that fails parity is
replaced by the next best of the rung before, so the rung still measures its size in eligible
points. Points that dropped at rung 0 are shown as ``dropped at rung 0``, never as chosen.

This module is the schedule and the loop (:func:`run_halving`), with the measuring and the
recording handed in, so the logic is testable with a fake measure function; the document it
fills and the tune around it are :mod:`.halving_run`.
"""

from __future__ import annotations

import dataclasses
import math

from ..bench.sweep import Settings

ETA = 3
#: the final rung measures this many at full length: the winner and the runner-up its rc cites
FINAL_SIZE = 2
#: rounds of every rung but the last (the last has the user's ``--rounds``)
SHORT_ROUNDS = 3
MIN_TIME_FLOOR = 0.001


@dataclasses.dataclass(frozen=True)
class Rung:
    index: int
    size: int                  # how many eligible points it measures (at most)
    settings: Settings

    def to_json(self) -> dict:
        return {"rung": self.index, "size": self.size, "min_time_s": self.settings.min_time,
                "rounds": self.settings.rounds}


class Stop(Exception):
    """Raised by the record callback to end the tune now (the budget ran out)."""


def schedule(n_points: int, final: Settings, eta: int = ETA) -> list[Rung]:
    """The rungs for ``n_points``: sizes ``n, ceil(n/eta), ...`` down to :data:`FINAL_SIZE`;
    ``min_time`` divided by ``eta`` per rung below the last, never under 1 ms."""
    if eta < 2:
        raise ValueError("eta must be at least 2")
    sizes = [max(n_points, 1)]
    while sizes[-1] > FINAL_SIZE:
        sizes.append(max(FINAL_SIZE, math.ceil(sizes[-1] / eta)))
    last = len(sizes) - 1
    rungs = []
    for r, size in enumerate(sizes):
        settings = final if r == last else dataclasses.replace(
            final, rounds=min(SHORT_ROUNDS, final.rounds), processes=1, probe_peak=False,
            min_time=max(MIN_TIME_FLOOR, min(final.min_time,
                                             final.min_time / eta ** (last - r))))
        rungs.append(Rung(r, size, settings))
    return rungs


def group_order(jobs) -> list:
    """Jobs with those that compile the same function (differing only in ``threads``) adjacent,
    in first-seen order: the first of each group warms the caches for the rest."""
    groups: dict[str, list] = {}
    for job in jobs:
        values = {k: v for k, v in job.config.values().items() if k != "threads"}
        groups.setdefault(repr((sorted(values.items()), job.shape, job.task)), []).append(job)
    return [job for group in groups.values() for job in group]


def figure(m, rung: int) -> dict | None:
    """The figures ``m`` recorded at ``rung`` (``extra["halving"]["rungs"]``), if any."""
    if m is None:
        return None
    for entry in ((m.extra or {}).get("halving") or {}).get("rungs", []):
        if entry.get("rung") == rung:
            return entry
    return None


def reached(m) -> int:
    """The highest rung ``m`` was measured at (-1 for none)."""
    return ((m.extra or {}).get("halving") or {}).get("rung", -1) if m is not None else -1


def parity_status(m) -> str | None:
    return ((m.extra or {}).get("parity") or {}).get("status") if m is not None else None


def eligible_at(m, rung: int) -> float | None:
    """``m``'s speed at ``rung`` if it may be promoted from there (measured ok; parity ok, or
    not yet checked at rung 0), else None."""
    entry = figure(m, rung)
    if not entry or entry.get("status") != "ok" or not entry.get("seq_per_s"):
        return None
    if parity_status(m) not in (None, "ok") or (rung > 0 and parity_status(m) != "ok"):
        return None
    return entry["seq_per_s"]


def promoted(jobs, lookup, rung: int) -> list:
    """The jobs eligible at ``rung``, fastest first: the queue the next rung draws from."""
    speeds = [(eligible_at(lookup(j.key), rung), i, j) for i, j in enumerate(jobs)]
    return [j for s, i, j in sorted((t for t in speeds if t[0] is not None),
                                    key=lambda t: (-t[0], t[1]))]


def run_halving(jobs, rungs: list[Rung], measure_rung, lookup, on_rung=None) -> int | None:
    """Measure rung after rung; returns the rung cut short by :class:`Stop`, or None.

    ``measure_rung(rung, jobs)`` measures (or, on ``--resume``, finds) each job at ``rung`` and
    records it, so that ``lookup(key)`` then returns its measurement, with the rung's figures
    (:func:`figure`); it raises :class:`Stop` to end the tune. ``on_rung(rung, jobs)`` is told
    which jobs a rung starts with (the live table).
    """
    current = group_order(jobs)
    for rung in rungs:
        queue = list(current) if rung.index == 0 else promoted(current, lookup, rung.index - 1)
        done: list = []
        if on_rung:
            on_rung(rung, queue[:rung.size])
        try:
            while queue:
                want = rung.size - sum(1 for j in done
                                       if eligible_at(lookup(j.key), rung.index) is not None)
                if want <= 0:
                    break
                batch, queue = queue[:want], queue[want:]
                measure_rung(rung, batch)
                done += batch
        except Stop:
            return rung.index
        current = done
        if not current:
            break
    return None


def rank_reached(measurements) -> list:
    """Eligible points (status and parity ok) by rung reached, then speed; the rest below them,
    the same way: the final rung's ranking first, as halving promises."""
    from .rank import verdict

    def key(m):
        return (-reached(m), -(m.seq_per_s or 0.0))
    good = sorted((m for m in measurements if verdict(m) == "ok" and m.seq_per_s), key=key)
    rest = sorted((m for m in measurements if m not in good), key=key)
    return good + rest
