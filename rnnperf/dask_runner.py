"""Where ``rnnperf tune`` runs its points: one after another here, or on a Dask cluster.

Both paths call the same function, :func:`measure_point`, which runs on whichever host measures:
it starts the ``parity`` worker job and then the ``bench`` job (:func:`rnnperf.harness.measure`),
each a fresh process *on that host*, and returns one :class:`~rnnperf.results.Measurement` with the
host it ran on and the parity outcome in ``extra["parity"]``. The parent only records: after every
point it puts the measurement into the results document and saves it atomically, so a parent
killed mid-sweep keeps everything that finished, and ``--resume`` picks up the rest.

On Dask every point is submitted with ``resources={"bench": 1}``. Workers started with
``--resources bench=1 --nthreads 1`` then hold one measurement at a time, so two measurements
never share a machine's cores and disturb each other; the parent keeps only as many points in
flight as the cluster has ``bench`` slots (see :func:`run_dask`). A point whose Dask worker dies (the task
errors with ``KilledWorker`` or a lost connection) is resubmitted once; a second loss is recorded
as ``failed`` with the reason. The local cluster sets ``allowed-failures`` to 0 so that this one
retry is the whole policy; an external scheduler keeps its own setting on top of it.
"""

from __future__ import annotations

import logging
import socket

from . import results as res
from .errors import ConfigError, Unavailable, one_line
from .parity import json_number, severity

RESOURCE = "bench"
LOCAL_WORKERS = 2


def parity_outcome(rows) -> dict:
    """One JSON-safe summary of a point's parity rows (both variants)."""
    bad = [r for r in rows if r.status != "ok"]
    status = bad[0].status if bad else "ok"
    worsts = [(r, r.worst) for r in rows if r.worst is not None]
    out = {"status": status, "error": next((r.error for r in bad if r.error), None)}
    if worsts:
        row, worst = max(worsts, key=lambda rw: severity(rw[1]))
        out.update(quantity=worst.quantity, variant=row.variant,
                   max_rel=json_number(worst.max_rel), max_abs=json_number(worst.max_abs),
                   tolerance=worst.tolerance)
    return out


def measure_point(job, settings, parity_env: dict | None = None) -> res.Measurement:
    """Check parity, then measure, both in fresh processes on this host (the one that runs it)."""
    from .harness import measure
    from .parity import rows_from_worker
    from .worker import run_worker
    result = run_worker("parity", job.config, {}, timeout=settings.timeout,
                        extra_env=parity_env or None)
    outcome = parity_outcome(rows_from_worker(job.config, result))
    m = measure(job, settings, run_worker)
    m.host = socket.gethostname()
    m.extra = {**m.extra, "parity": outcome}
    try:
        from distributed import get_worker
        m.extra["dask_worker"] = get_worker().address
    except (ImportError, ValueError):
        pass                                   # not on a Dask worker
    return m


def run_local(jobs, settings, record, envs: dict, bar) -> None:
    """One point at a time in this process's children; Ctrl-C stops the running worker."""
    from .worker import workers_die_with_parent_signals
    with workers_die_with_parent_signals():
        for job in jobs:
            bar(f"{job.profile}")
            record(measure_point(job, settings, envs.get(job.key)))


def connect(scheduler: str, timeout: float):
    """``(client, cluster)`` for ``"local"`` or a ``tcp://`` address; errors are one line."""
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise Unavailable("Dask is not installed (pip install 'rnnperf[dask]')") from None
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


def run_dask(jobs, settings, record, envs: dict, bar, client) -> None:
    """Keep every ``bench`` slot busy, record each point as it finishes; one retry per loss.

    Only as many points are in flight as the cluster has ``bench`` slots: a point queued behind
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
            future = client.submit(measure_point, job, settings, envs.get(job.key),
                                   resources={RESOURCE: 1}, pure=False)
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
            bar(f"{m.profile} on {m.host or '?'}")
            record(m)
            fill()
    except BaseException:
        client.cancel(list(pending))
        raise
