"""One worker per distinct compiled function: a tune's points measured in shared workers.

Points that differ only in what can be set inside a running process share a compiled function:
``threads=`` on an engine whose pools can be resized at run time (the registry's
``threads_at_run_time``: BLAS and OpenMP through threadpoolctl, torch's and Numba's own; XLA
sizes its pool once, at start, so ``jax`` and ``pytensor-jax`` keep one worker per value). Such
points share one :class:`~rnnperf.bench.shared_worker.SharedWorker`, started on as many CPUs as
the largest ``threads=`` among them; it checks each point's parity when asked (the parity job
in the same process) and times every rung of every one of them on the function it loaded once.

A worker that dies (a crash, a signal) loses only the request in flight: that point is measured
once more in a fresh worker, and recorded as it ends there (``failed``, as before). A request
that passes its timeout is recorded ``timeout`` (its worker is killed; the next request of that
function starts a fresh one). Workers of functions no longer in play are closed when a rung
starts (:meth:`SharedWorkers.keep_only`), and at most :data:`KEEP_ALIVE` stay alive, the least
recently used closed first, so a big space cannot hold every function in memory at once.

Local only: on Dask each measurement still starts fresh processes on the worker's host
(:mod:`.point`).
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from collections import OrderedDict

from ..bench import results as res

#: shared workers alive at once, at most (each holds its libraries and one compiled function:
#: 0.1-0.5 GB); fewer while the machine's free memory is under :data:`MIN_FREE_SHARE`
KEEP_ALIVE = 24
MIN_FREE_SHARE = 0.25


def function_key(job, env: dict | None = None) -> str:
    """What compiles one function: the profile less the run-time settings, the shape, the task
    (and a test's environment for the point, which only its own worker may have)."""
    from .. import engines
    values = job.config.values()
    spec = engines.REGISTRY.get(job.config.engine)
    if spec is not None and spec.threads_at_run_time:
        values = {k: v for k, v in values.items() if k != "threads"}
    return repr((sorted(values.items()), sorted(job.shape.items()), job.task,
                 sorted((env or {}).items())))


def low_memory() -> bool:
    """Less than :data:`MIN_FREE_SHARE` of the machine's memory is free."""
    try:
        import psutil
        vm = psutil.virtual_memory()
        return vm.available < MIN_FREE_SHARE * vm.total
    except (ImportError, OSError):
        return False


class SharedWorkers:
    """The shared workers of one tune; :meth:`measure` is its measure function."""

    def __init__(self, jobs, envs: dict | None = None, keep_alive: int = KEEP_ALIVE):
        self.envs = envs or {}
        self.keep_alive = keep_alive
        self.key_of = {j.key: function_key(j, self.envs.get(j.key)) for j in jobs}
        self.threads: dict[str, int] = {}
        for job in jobs:
            want = job.config.threads or os.cpu_count() or 1
            group = self.key_of[job.key]
            self.threads[group] = max(self.threads.get(group, 0), want)
        self.workers: OrderedDict = OrderedDict()
        self.started = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        while self.workers:
            self.workers.popitem()[1].close()

    def keep_only(self, jobs) -> None:
        """Close the workers of functions none of ``jobs`` needs (a rung's points)."""
        wanted = {self.key_of.get(j.key) for j in jobs}
        for group in [g for g in self.workers if g not in wanted]:
            self.workers.pop(group).close()

    def group_of(self, job) -> str:
        return self.key_of.get(job.key) or function_key(job, self.envs.get(job.key))

    def worker_for(self, job, protect=()):
        """The live worker of ``job``'s function, started if there is none. Starting one closes
        the least recently used beyond :attr:`keep_alive`, and one more while memory is low,
        never one of the functions in ``protect`` (a batch about to use them)."""
        from .. import flags
        from ..bench.process import set_thread_env
        from ..bench.shared_worker import SharedWorker
        group = self.group_of(job)
        worker = self.workers.get(group)
        if worker is not None and worker.alive:
            self.workers.move_to_end(group)
            return worker
        if worker is not None:                     # it died: closed before it is replaced
            self.workers.pop(group).close(kill=True)
        threads = self.threads.get(group) or job.config.threads or os.cpu_count() or 1
        config = flags.load(flags=[job.config.profile(), f"threads={threads}"], use_env=False)
        env = dict(self.envs.get(job.key) or {})
        set_thread_env(threads, env)
        spare = [g for g in self.workers if g not in protect]      # least recently used first
        over = max(0, len(self.workers) + 1 - self.keep_alive) + (1 if low_memory() else 0)
        for old in spare[:over]:
            self.workers.pop(old).close()
        worker = self.workers[group] = SharedWorker(config, env)
        self.started += 1
        return worker

    def workers_for(self, jobs) -> dict:
        """Each job's worker, started here, in this thread (a worker dies with the thread that
        started it), none evicting another of the batch; at most :attr:`keep_alive` jobs."""
        jobs = list(jobs)[:self.keep_alive]
        protect = {self.group_of(j) for j in jobs}
        return {j.key: self.worker_for(j, protect) for j in jobs}

    def check_parity(self, jobs, timeout, parallel: int, describe=None) -> dict:
        """Parity of ``jobs`` (at most :attr:`keep_alive`) in their shared workers, ``parallel``
        engines at a time: a check is no measurement, so checks may overlap (as prewarm's
        compiles do), and the rung's timings then run one at a time with the outcome carried.
        ``timeout()`` gives each check its seconds. Returns ``{job key: outcome}``; a check
        whose worker died is left out (the point's measurement checks it again, with a retry).
        """
        from ..bench.lanes import run_in_lanes
        from ..bench.parity import rows_from_worker
        from .point import parity_outcome
        shared = self.workers_for(jobs)
        jobs = [j for j in jobs if j.key in shared]
        outcomes: dict = {}

        def check(job):
            if describe:
                describe(f"parity {job.profile}")
            result = shared[job.key].ask("parity", job.config, {}, timeout=timeout())
            if shared[job.key].alive or result.status != "failed":
                outcomes[job.key] = parity_outcome(rows_from_worker(job.config, result))
        run_in_lanes(jobs, lambda job: job.config.engine, check, max(1, parallel))
        return outcomes

    def measure(self, job, settings, envs=None, parity="run",
                share_timeout: bool = False) -> res.Measurement:
        """One point at one rung, as :func:`.point.measure_rung` does it, in the point's shared
        worker; a worker lost mid-request gets one more try in a fresh one."""
        m = self._measure_once(job, settings, parity, share_timeout)
        if (m.extra or {}).get("worker_lost"):
            first = m.error
            m = self._measure_once(job, settings, parity, share_timeout)
            m.extra = {**(m.extra or {}), "retried": first}
        (m.extra or {}).pop("worker_lost", None)
        m.host = socket.gethostname()
        return m

    def _measure_once(self, job, settings, parity, share_timeout) -> res.Measurement:
        from ..bench.parity import rows_from_worker
        from ..bench.sweep import bench_payload, measurement_from
        from .point import parity_outcome
        worker = self.worker_for(job)
        outcome = parity if isinstance(parity, dict) else None
        if parity == "run":
            start = time.perf_counter()
            result = worker.ask("parity", job.config, {}, timeout=settings.timeout)
            if not worker.alive and result.status == "failed":
                return self._lost(job, result.error)
            outcome = parity_outcome(rows_from_worker(job.config, result))
            if share_timeout:
                left = max(1.0, settings.timeout - (time.perf_counter() - start))
                settings = dataclasses.replace(settings, timeout=left)
        worker = self.worker_for(job)           # a parity timeout killed it: a fresh one
        payload = {**bench_payload(job, settings), "shared": True}
        out = worker.ask("bench", job.config, payload, timeout=settings.timeout)
        if not worker.alive and out.status == "failed":
            return self._lost(job, out.error)
        m = measurement_from(job, out)
        m.extra = {**(m.extra or {}), **({"parity": outcome} if outcome is not None else {})}
        return m

    @staticmethod
    def _lost(job, why: str | None) -> res.Measurement:
        m = job.blank(processes=1, status="failed", error=f"shared worker lost: {why}")
        m.extra = {"worker_lost": True}
        return m
