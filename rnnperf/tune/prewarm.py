"""Compile first, side by side; then measure, one at a time.

Cold, a tune's time goes on compiles (PyTensor's C modules, Numba's and XLA's code: minutes per
engine), and a compile is no measurement: two at once disturb nothing that is kept. So before
rung 0 a halving tune compiles each *distinct function* once (points that differ only in
``threads`` share one: :func:`rnnperf.tune.halving.group_order`) in a ``warm`` worker
(:func:`rnnperf.bench.warm.worker_job`: import, build, compile, first call, exactly as a
measurement's worker does), ``jobs`` at a time. What they compile lands in the caches every
later worker reads (PyTensor's compiledir and Numba cache, JAX's persistent cache, rnnperf's
function cache); the measurements then run one at a time as always. One *lane* per engine runs
its functions in turn: PyTensor takes a lock per C module, so two ``pytensor-c`` compiles at
once would mostly wait on each other, while different engines share nothing.

Warm, each of these workers only finds its function in the caches (seconds), so ``--prewarm 0``
saves that time when the caches are known to be warm. A worker that fails here is not recorded:
rung 0 meets the same failure and records it.
"""

from __future__ import annotations

import time


def distinct(jobs) -> list:
    """The first job of each group that compiles the same function
    (:func:`.workers.function_key`), in order."""
    from .halving import group_order
    from .workers import function_key
    seen, out = set(), []
    for job in group_order(jobs):
        key = function_key(job)
        if key not in seen:
            seen.add(key)
            out.append(job)
    return out


def prewarm(jobs, timeout: float, parallel: int, budget, describe=None, workers=None) -> dict:
    """Compile each distinct function of ``jobs``, ``parallel`` engines at a time
    (:func:`rnnperf.bench.lanes.run_in_lanes`); returns ``{"functions", "wall_s", "failed"}``
    for the document. A lane stops when the budget is spent.

    With ``workers`` (:class:`.workers.SharedWorkers`) each function is built in the shared
    worker that will measure it, which keeps it: the load is paid once, here, side by side.
    Those workers are started here, in this thread, before the lanes' threads use them (a
    worker dies with the thread that started it)."""
    from ..bench.lanes import run_in_lanes
    from ..bench.process import run_worker
    todo = distinct(jobs)
    shared = workers.workers_for(todo) if workers is not None else {}   # beyond keep_alive:
    failed, start = [], time.perf_counter()                              # fresh, caches only

    def compile_one(job) -> bool:
        left = min(timeout, budget.remaining())
        if left <= 0:
            return False
        if describe:
            describe(f"compiling {job.profile}")
        payload = {"shape": job.shape, "task": job.task}
        if job.key in shared:
            out = shared[job.key].ask("warm", job.config, {**payload, "shared": True},
                                      timeout=left)
        else:
            out = run_worker("warm", job.config, payload, timeout=left)
        if out.status != "ok":
            failed.append(job.key)
        return True
    run_in_lanes(todo, lambda job: job.config.engine, compile_one, parallel)
    return {"functions": len(todo), "parallel": parallel, "shared": workers is not None,
            "wall_s": round(time.perf_counter() - start, 1), "failed": failed}
