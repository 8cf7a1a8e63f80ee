"""Calibration and the statistics of one measurement.

Like pyperf (``_worker.py``: double the loop count until one value passes ``min_time``) and torch's
``blocked_autorange`` (grow the block until timer overhead is negligible, then time blocks), a
*round* runs the step ``loops`` times back to back and its per-step time is the round's time over
``loops``. Calibration has no upper time bound that a slow JIT runtime could trip over (pyperf#45):
it only stops doubling once a round lasts ``min_time``, or at :data:`MAX_LOOPS`.

The statistics are the ones pytest-benchmark's ``Stats`` and torch's ``Measurement`` report:
median and interquartile range (robust to the odd slow round a busy box produces) and min.
Everything here is the standard library: the parent process computes the figures too and must
not import an engine, and NumPy is one.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable, Sequence

MAX_LOOPS = 2 ** 20


def calibrate(step: Callable[[], object], min_time: float,
              clock: Callable[[], float] = time.perf_counter) -> int:
    """Smallest power-of-two loop count whose round lasts at least ``min_time`` seconds."""
    loops = 1
    while True:
        elapsed = time_round(step, loops, clock)
        if elapsed >= min_time or loops >= MAX_LOOPS:
            return loops
        # Jump close to the target when the estimate is clear, then keep doubling (pyperf).
        if elapsed > 0:
            guess = int(min_time / (elapsed / loops))
            while loops * 2 <= guess and loops * 2 <= MAX_LOOPS:
                loops *= 2
        loops = min(loops * 2, MAX_LOOPS)


def time_round(step: Callable[[], object], loops: int,
               clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds taken by ``loops`` back-to-back calls of ``step`` (each call synchronises)."""
    start = clock()
    for _ in range(loops):
        step()
    return clock() - start


def time_rounds(step: Callable[[], object], loops: int, rounds: int,
                clock: Callable[[], float] = time.perf_counter) -> list[float]:
    """Per-step seconds of each of ``rounds`` rounds."""
    return [time_round(step, loops, clock) / loops for _ in range(rounds)]


def median(times: Sequence[float]) -> float:
    return statistics.median(times)


def iqr(times: Sequence[float]) -> float:
    """Interquartile range, inclusive method (numpy's default linear interpolation)."""
    if len(times) < 2:
        return 0.0
    q1, _, q3 = statistics.quantiles(times, n=4, method="inclusive")
    return q3 - q1
