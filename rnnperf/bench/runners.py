"""Where a sweep runs its measurements: one after another here, or on a Dask cluster.

Both runners take the jobs, a *measure* function ``(job, settings) -> Measurement`` that runs on
whichever host measures (it starts fresh worker processes *on that host*), and a ``record``
callback the parent calls after every measurement (:mod:`.sweep` saves the document there).

On Dask every measurement is submitted with ``resources={"bench": 1}``. Workers started with
``--resources bench=1 --nthreads 1`` then hold one measurement at a time, so two measurements
never share a machine's cores and disturb each other; the parent keeps only as many in flight
as the cluster has ``bench`` slots (see :func:`run_dask`). A measurement whose Dask worker dies
(the task errors with ``KilledWorker`` or a lost connection) is resubmitted once; a second loss
is recorded as ``failed`` with the reason. The local cluster sets ``allowed-failures`` to 0 so
that this one retry is the whole policy; an external scheduler keeps its own setting on top.
"""

from __future__ import annotations

import logging

from ..errors import ConfigError, Unavailable, one_line

RESOURCE = "bench"
#: one: two measurements at once on one machine disturb each other (and a worker pinned to
#: threads=1 takes the first CPU, so two such workers would share it)
LOCAL_WORKERS = 1


def describe_job(job) -> str:
    from .results import shape_label
    return f"{job.config.engine} {shape_label(job.shape)} {job.task}"


def run_local(jobs, measure, settings, record, describe) -> None:
    """One measurement at a time in this process's children."""
    for job in jobs:
        describe(describe_job(job))
        record(job, measure(job, settings))


def connect(scheduler: str, timeout: float):
    """``(client, cluster)`` for ``"local"`` or a ``tcp://`` address; errors are one line."""
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise Unavailable("Dask is not installed (run scripts/bootstrap.sh)") from None
    if scheduler == "local":
        with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
            cluster = LocalCluster(n_workers=LOCAL_WORKERS, threads_per_worker=1,
                                   resources={RESOURCE: 1}, processes=True,
                                   dashboard_address=None, silence_logs=logging.ERROR)
            return Client(cluster), cluster
    try:
        client = Client(scheduler, timeout=timeout)
    except ValueError as exc:
        raise ConfigError(f"--scheduler {scheduler}: {one_line(exc)}") from None
    except (OSError, TimeoutError) as exc:
        raise Unavailable(f"--scheduler {scheduler}: cannot reach the scheduler "
                          f"({one_line(exc)})") from None
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (OSError, TimeoutError):
        client.close()
        raise Unavailable(f"--scheduler {scheduler}: no worker joined within {timeout:g} s "
                          f"(start one with: dask worker {scheduler} --nworkers 1 --nthreads 1 "
                          f"--resources {RESOURCE}=1)") from None
    workers = client.scheduler_info().get("workers", {})
    if not any((w.get("resources") or {}).get(RESOURCE) for w in workers.values()):
        client.close()
        raise Unavailable(f"--scheduler {scheduler}: no worker offers the resource "
                          f"{RESOURCE}=1 (start workers with --resources {RESOURCE}=1)")
    return client, None


def capacity(client) -> int:
    """How many measurements the cluster can hold at once: its ``bench`` resources (>= 1)."""
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    return max(1, int(sum((w.get("resources") or {}).get(RESOURCE, 0)
                          for w in workers.values())))


def dask_runner(client):
    """A runner (same call as :func:`run_local`) that measures on ``client``'s cluster."""
    def run(jobs, measure, settings, record, describe) -> None:
        run_dask(jobs, measure, settings, record, describe, client)
    return run


def run_dask(jobs, measure, settings, record, describe, client) -> None:
    """Keep every ``bench`` slot busy, record each measurement as it finishes; one retry per loss.

    Only as many are in flight as the cluster has ``bench`` slots: a measurement queued behind
    another on a worker would be blamed (and killed) with it if that worker died.
    """
    from distributed import as_completed

    queue = [(job, 0) for job in jobs]
    pending: dict = {}
    done = as_completed()

    def fill():
        slots = capacity(client)
        while queue and len(pending) < slots:
            job, tries = queue.pop(0)
            future = client.submit(measure, job, settings, resources={RESOURCE: 1}, pure=False)
            pending[future] = (job, tries)
            done.add(future)

    fill()
    try:
        for future in done:
            job, tries = pending.pop(future)
            try:
                m = future.result()
            except Exception as exc:            # KilledWorker, CommClosedError, ...: the host
                if tries < 1:
                    queue.insert(0, (job, tries + 1))
                    fill()
                    continue
                m = job.blank(status="failed", error=f"Dask worker lost twice: {one_line(exc)}")
                m.host = None                   # it ran nowhere that answered
            describe(f"{m.profile} on {m.host or '?'}")
            record(job, m)
            fill()
    except BaseException:
        client.cancel(list(pending))
        raise
