"""Workers side by side, one *lane* per engine: for work where overlap distorts nothing kept
(parity's checks, a tune's prewarm compiles), never for a measurement.

A lane runs its engine's items one after another: they share that engine's compile caches, and
PyTensor takes a lock per C module, so two of its workers at once would mostly wait on each
other; engines share nothing, so their lanes run ``jobs`` at a time, busiest first.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable


def run_in_lanes(items: Iterable, engine_of: Callable, work: Callable, jobs: int) -> None:
    """``work(item)`` for every item, one lane per ``engine_of(item)``, ``jobs`` lanes at a
    time; ``work`` returning ``False`` ends its lane. On Ctrl-C (or an error) no lane starts
    another worker and the running ones are killed."""
    from .process import kill_all_workers
    lanes: dict = {}
    for item in items:
        lanes.setdefault(engine_of(item), []).append(item)
    stop = threading.Event()

    def lane(batch):
        for item in batch:
            if stop.is_set() or work(item) is False:
                return
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        for future in [pool.submit(lane, batch)
                       for batch in sorted(lanes.values(), key=len, reverse=True)]:
            future.result()
    except BaseException:
        stop.set()
        kill_all_workers()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
