"""Where a sweep runs its measurements: one after another here, or on a Dask cluster.

Both runners take the jobs, a *measure* function ``(job, settings) -> Measurement`` that runs on
whichever host measures (it starts fresh worker processes *on that host*), and a ``record``
callback the parent calls after every measurement (:mod:`.sweep` saves the document there).

**One measurement per machine.** A measurement's worker process owns its host's cores: two at once
on one machine disturb each other. On Dask the parent therefore groups the cluster's workers by
host (the host part of each worker's address) and keeps at most one measurement in flight per
host, each submitted with the host as a strict restriction (``workers=[host]``,
``allow_other_workers=False``) and ``resources={"bench": 1}`` (so only workers started with
``--resources bench=1`` measure, one task each). Two workers on one machine then still measure
one point at a time, and a second worker there is a warm spare.

**A lost worker.** Its task either comes back as an error (``KilledWorker`` once the scheduler's
``allowed-failures`` is spent, a lost connection) or, if the scheduler re-runs it on another
worker of the same host, simply finishes there. If its host has no ``bench`` worker left for
``lost_after`` seconds, the parent cancels it (a strictly restricted task would wait forever).
Either way a lost measurement is resubmitted once, to whichever host is free; a second loss
records it as ``failed`` with the reason and ``extra["dask_lost"]``, which ``--resume`` reruns
(the loss says nothing about the build). If no host is left for ``lost_after`` seconds, the
points not yet started are recorded ``unavailable`` (``--resume`` reruns those too). The local
cluster sets ``allowed-failures`` to 0 so that the parent's one retry is the whole policy.
"""

from __future__ import annotations

import contextlib
import os
import logging
import socket
import threading
import time
from collections import deque

from ..errors import ConfigError, Unavailable, one_line

RESOURCE = "bench"
#: one: two measurements at once on one machine disturb each other (and a worker pinned to
#: threads=1 takes the first CPU, so two such workers would share it)
LOCAL_WORKERS = 1
#: seconds to reach a scheduler and see a ``bench`` worker
CONNECT_TIMEOUT = 5.0
#: seconds a host may have no ``bench`` worker before its measurement counts as lost (a nanny
#: restarts a killed worker within a few seconds; the task then runs on the new one)
LOST_AFTER_S = 30.0
POLL_S = 0.1
WORKER_HINT = f"dask worker ADDRESS --nworkers 1 --nthreads 1 --resources {RESOURCE}=1"


def describe_job(job) -> str:
    from .results import shape_label
    return f"{job.config.engine} {shape_label(job.shape)} {job.task}"


def run_local(jobs, measure, settings, record, describe) -> None:
    """One measurement at a time in this process's children."""
    for job in jobs:
        describe(describe_job(job))
        record(job, measure(job, settings))


def connect(scheduler: str, timeout: float = CONNECT_TIMEOUT):
    """``(client, cluster)`` for ``"local"`` or a ``tcp://`` address; errors are one line.

    A malformed address is bad usage (exit 2); anything else that keeps us from a scheduler with
    a ``bench`` worker within about ``timeout`` seconds is exit 3, whatever answered the address.
    """
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise Unavailable("Dask is not installed (run scripts/bootstrap.sh)") from None
    if scheduler == "local":
        with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
                thread_environ_as(thread_environ()):     # the cluster changes them in here
            cluster = LocalCluster(n_workers=LOCAL_WORKERS, threads_per_worker=1,
                                   resources={RESOURCE: 1}, processes=True,
                                   dashboard_address=None, silence_logs=logging.ERROR)
            return Client(cluster), cluster
    where = f"--scheduler {scheduler}"
    try:
        client = _within(2 * timeout + 1, lambda: Client(scheduler, timeout=timeout))
    except ValueError as exc:
        raise ConfigError(f"{where}: {one_line(exc)}") from None
    except Exception as exc:            # OSError, TimeoutError, garbage from a non-Dask server
        raise Unavailable(f"{where}: cannot reach a Dask scheduler ({one_line(exc)})") from None
    try:
        _within(2 * timeout + 1, lambda: client.wait_for_workers(1, timeout=timeout))
        hosts = bench_hosts(client)
    except Exception:
        client.close()
        raise Unavailable(f"{where}: no worker joined within {timeout:g} s "
                          f"(start one per machine with: {WORKER_HINT})") from None
    if not hosts:
        client.close()
        raise Unavailable(f"{where}: no worker offers the resource {RESOURCE}=1 "
                          f"(start one per machine with: {WORKER_HINT})")
    return client, None


@contextlib.contextmanager
def dask_session(scheduler: str | None, timeout: float = CONNECT_TIMEOUT):
    """The runner for ``--dask local``/``--scheduler`` (None: here), connected before the sweep
    opens its document (an unreachable scheduler exits 3 before any file); closed after."""
    if not scheduler:
        yield None
        return
    client, cluster = connect(scheduler, timeout)
    try:
        yield dask_runner(client)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _within(seconds: float, call):
    """``call()``, or TimeoutError after ``seconds``: Dask's own timeout does not bound every
    handshake (a server that accepts and then says nothing, or garbage)."""
    box: dict = {}

    def run():
        try:
            box["value"] = call()
        except BaseException as exc:            # handed to the caller's thread below
            box["error"] = exc
    thread = threading.Thread(target=run, daemon=True, name="rnnperf-dask-connect")
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError(f"no answer in {seconds:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def bench_hosts(client) -> set[str]:
    """The hosts with at least one worker that offers ``bench``: one measurement each."""
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    return {w.get("host") or addr for addr, w in workers.items()
            if (w.get("resources") or {}).get(RESOURCE)}


def capacity(client) -> int:
    """How many measurements the cluster can hold at once: one per host (>= 1)."""
    return max(1, len(bench_hosts(client)))


def thread_environ() -> dict[str, str | None]:
    """This process's thread variables (``OMP_NUM_THREADS`` and friends; None where unset)."""
    from .process import THREAD_VARS
    return {var: os.environ.get(var) for var in THREAD_VARS}


@contextlib.contextmanager
def thread_environ_as(values: dict[str, str | None]):
    """``os.environ``'s thread variables set to ``values`` (None: unset) inside the block.

    Dask's nanny sets ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` and ``OPENBLAS_NUM_THREADS`` to 1
    for its workers (``distributed.nanny.pre-spawn-environ``), and a ``LocalCluster`` leaves them
    so in the process that made it; a measurement worker inherits its parent's environment, so
    a profile without ``threads=`` would run on one thread under Dask and on every core here.
    The submitting parent's values are the user's intent; they travel with each task."""
    before = thread_environ()
    try:
        _set_environ(values)
        yield
    finally:
        _set_environ(before)


def _set_environ(values: dict[str, str | None]) -> None:
    for var, value in values.items():
        if value is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = value


def measure_on_worker(measure, job, settings, thread_env=None):
    """``measure`` on a Dask worker, under the submitting parent's thread variables
    (:func:`thread_environ_as`), stamped with the host and worker that measured (read here, on
    the worker, not in the parent)."""
    with thread_environ_as(thread_env if thread_env is not None else thread_environ()):
        m = measure(job, settings)
    m.host = socket.gethostname()
    try:
        from distributed import get_worker
        m.extra = {**(m.extra or {}), "dask_worker": get_worker().address}
    except (ImportError, ValueError):
        pass                                    # called outside a worker (a test)
    return m


def dask_runner(client, lost_after: float = LOST_AFTER_S):
    """A runner (same call as :func:`run_local`) that measures on ``client``'s cluster."""
    def run(jobs, measure, settings, record, describe) -> None:
        run_dask(jobs, measure, settings, record, describe, client, lost_after=lost_after)
    return run


def run_dask(jobs, measure, settings, record, describe, client,
             lost_after: float = LOST_AFTER_S) -> None:
    """Keep every host busy with one measurement, record each as it finishes (module docstring:
    one per host, one retry per loss, nothing left waiting on a host that is gone)."""
    sweep = _DaskSweep(jobs, measure, settings, record, describe, client, lost_after)
    try:
        sweep.run()
    except BaseException:
        client.cancel([f for f in sweep.pending])
        raise


class _DaskSweep:
    """One pass on Dask: what waits, what runs on which host, when each host was last seen."""

    def __init__(self, jobs, measure, settings, record, describe, client, lost_after):
        self.queue = deque((job, 0) for job in jobs)        # (job, losses so far)
        self.pending: dict = {}                             # future -> (job, losses, host)
        self.measure, self.settings, self.client = measure, settings, client
        self.record, self.describe, self.lost_after = record, describe, lost_after
        self.seen: dict[str, float] = {}                    # host -> when it last had a worker
        self.started = time.monotonic()

    def run(self) -> None:
        from distributed import wait
        while self.queue or self.pending:
            hosts = bench_hosts(self.client)
            now = time.monotonic()
            self.seen.update(dict.fromkeys(hosts, now))
            self.reap_finished()
            self.reap_stranded(hosts, now)
            self.fill(hosts)
            if self.queue and not self.pending and not hosts and \
                    now - max(self.seen.values(), default=self.started) > self.lost_after:
                self.give_up()
            if self.pending:
                try:
                    wait(list(self.pending), timeout=1.0, return_when="FIRST_COMPLETED")
                except TimeoutError:
                    pass                                # look at the hosts again
            elif self.queue:
                time.sleep(POLL_S)

    def reap_finished(self) -> None:
        import asyncio
        for future in [f for f in self.pending if f.done()]:
            job, losses, _ = self.pending.pop(future)
            try:
                m = future.result()
            except (Exception, asyncio.CancelledError) as exc:   # KilledWorker, lost comm, ...
                self.lost(job, losses, one_line(exc))
                continue
            self.describe(f"{m.profile} on {m.host or '?'}")
            self.record(job, m)

    def reap_stranded(self, hosts: set[str], now: float) -> None:
        """Cancel what waits on a host gone for ``lost_after`` s (it would wait forever)."""
        for future, (job, losses, host) in list(self.pending.items()):
            if host not in hosts and now - self.seen.get(host, self.started) > self.lost_after:
                del self.pending[future]
                self.client.cancel([future])
                self.lost(job, losses, f"no {RESOURCE} worker left on {host} for "
                                       f"{self.lost_after:g} s")

    def lost(self, job, losses: int, why: str) -> None:
        """Once: back to the front of the queue; twice: recorded failed, rerun by --resume."""
        if losses < 1:
            self.queue.appendleft((job, losses + 1))
            return
        m = job.blank(status="failed", error=f"Dask worker lost twice: {why}")
        m.host = None                                   # it ran nowhere that answered
        m.extra = {**m.extra, "dask_lost": losses + 1}
        self.record(job, m)

    def fill(self, hosts: set[str]) -> None:
        """One measurement on every host that has none."""
        busy = {host for _, _, host in self.pending.values()}
        for host in sorted(hosts - busy):
            if not self.queue:
                return
            job, losses = self.queue.popleft()
            self.describe(f"{describe_job(job)} on {host}")
            future = self.client.submit(measure_on_worker, self.measure, job, self.settings,
                                        thread_environ(), workers=[host],
                                        allow_other_workers=False,
                                        resources={RESOURCE: 1}, pure=False)
            self.pending[future] = (job, losses, host)

    def give_up(self) -> None:
        """No host for ``lost_after`` s: what has not run is unavailable (``--resume`` reruns)."""
        while self.queue:
            job, _ = self.queue.popleft()
            m = job.blank(status="unavailable", error=f"no Dask worker with {RESOURCE}=1 left "
                                                      f"for {self.lost_after:g} s")
            m.host = None
            self.record(job, m)
