"""``threads=N``, honoured by every pool an engine computes with, and read back.

Setting the environment (``OMP_NUM_THREADS`` and friends, before the libraries load; see
:func:`rnnperf.bench.process.set_thread_env`) is not enough: XLA ignores it, and a BLAS or
OpenMP runtime loaded later (a compiled PyTensor module, torch's) may size its pool on its own.
So a worker also

* runs on its first N CPUs (:func:`pin_affinity`): every library sizes its pool from the CPUs it
  may use (XLA's CPU client takes the process's affinity), and no pool can spread further;
* limits every BLAS and OpenMP pool loaded so far with threadpoolctl, and torch's and Numba's own
  (:func:`limit_pools`), once the engine has compiled (its libraries are loaded by then);
* reads each pool back after the run (:func:`pools`): the results record them and
  ``threads_actual``, the largest, next to the requested ``threads``.

The in-process API (``rnnperf.RNN``) limits the pools but leaves the calling process's affinity
alone (it is the user's process): there XLA follows whatever affinity it was started with.
"""

from __future__ import annotations

import os
import sys


def pin_affinity(threads: int | None) -> None:
    """Run this process on its first ``threads`` CPUs (no-op without ``threads`` or off Linux)."""
    if not threads or not hasattr(os, "sched_setaffinity"):
        return
    cpus = sorted(os.sched_getaffinity(0))
    if threads < len(cpus):
        os.sched_setaffinity(0, cpus[:threads])


#: the CPUs a shared worker started on (:func:`confine` narrows the computing thread within them)
_STARTED_ON: list[int] | None = None


def confine(threads: int | None) -> None:
    """One request of a shared worker (:func:`rnnperf.bench.worker.serve`): every thread of the
    process on the first ``threads`` of the CPUs it started on (all of them without
    ``threads``), and every pool loaded so far limited to as many.

    Every thread moves, not only the calling one (Linux's affinity is per thread, and a thread
    inherits its creator's): a pool started during a ``threads=1`` request would otherwise keep
    its threads on one CPU when a later request asks for more.
    """
    global _STARTED_ON
    if hasattr(os, "sched_getaffinity"):
        if _STARTED_ON is None:
            _STARTED_ON = sorted(os.sched_getaffinity(0))
        cpus = _STARTED_ON[:threads] if threads else _STARTED_ON
        for tid in _threads_of_this_process():
            try:
                os.sched_setaffinity(tid, cpus)
            except OSError:              # a thread that ended meanwhile
                pass
    limit_pools(threads or (len(_STARTED_ON) if _STARTED_ON else os.cpu_count()))


def _threads_of_this_process() -> list[int]:
    """Every thread id of this process (Linux: ``/proc/self/task``), else just this one (0)."""
    try:
        return [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        return [0]


def limit_pools(threads: int | None) -> None:
    """Every pool loaded in this process to ``threads``: BLAS and OpenMP, torch's, Numba's."""
    if not threads:
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:        # a legacy venv built before it was required: env pins only
        threadpool_limits = None
    if threadpool_limits is not None:
        threadpool_limits(limits=threads)       # not as a context: the limit stays
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    if "numba" in sys.modules:
        numba = sys.modules["numba"]
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def pools() -> dict[str, int]:
    """The threads each pool loaded in this process would use now, by name.

    BLAS and OpenMP runtimes as threadpoolctl names them (``openblas``, ``openmp``, ``mkl``; the
    largest when one is loaded twice), ``torch``, ``numba`` where imported, and ``cpus``: the CPUs
    this process may run on, which is what XLA's pool follows.
    """
    try:
        from threadpoolctl import threadpool_info
    except ImportError:        # a legacy venv built before it was required: the CPUs only
        threadpool_info = list
    out: dict[str, int] = {}
    for pool in threadpool_info():
        name = pool.get("internal_api") or pool.get("user_api") or "?"
        out[name] = max(out.get(name, 0), int(pool.get("num_threads") or 0))
    if "torch" in sys.modules:
        out["torch"] = int(sys.modules["torch"].get_num_threads())
    if "numba" in sys.modules and hasattr(sys.modules["numba"], "get_num_threads"):
        try:
            out["numba"] = int(sys.modules["numba"].get_num_threads())
        except Exception:          # no threading layer launched: Numba ran nothing parallel
            pass
    out["cpus"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        (os.cpu_count() or 1)
    return out
