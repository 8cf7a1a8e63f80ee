"""One point of a tune, measured where the runner runs it: parity first, then the benchmark.

:func:`measure_point` is the *measure* function tune hands to :func:`rnnperf.bench.sweep.run_sweep`
(halving's rungs use :func:`measure_rung`, which may skip or carry the parity check);
on Dask it runs on the worker's host, so both checks are fresh processes *on that host*. It returns
one :class:`~rnnperf.bench.results.Measurement` with the host it ran on and the parity outcome in
``extra["parity"]`` (a point that fails parity is shown as rejected and never chosen).

Test-only: ``RNNPERF_TUNE_PERTURB=SUBSTRING`` perturbs the parity answer
(``RNNPERF_PARITY_PERTURB``) of every point whose key contains SUBSTRING
(:func:`perturb_envs`), so a test can make one point fail parity.
"""

from __future__ import annotations

import os
import socket

from ..bench import results as res
from ..bench.parity import json_number, severity

PERTURB_VAR = "RNNPERF_TUNE_PERTURB"


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


def measure_point(job, settings, envs: dict | None = None) -> res.Measurement:
    """Check parity, then measure, both in fresh processes on this host (the one that runs it)."""
    return measure_rung(job, settings, envs, parity="run")


def measure_rung(job, settings, envs: dict | None = None, parity="run",
                 share_timeout: bool = False) -> res.Measurement:
    """One measurement of a tune on this host: ``parity`` is ``"run"`` (check it first, in its
    own worker), ``"skip"`` (halving's rung 0: no check yet) or the outcome an earlier rung found
    (carried over, not checked again). With ``share_timeout`` the parity and bench workers share
    ``settings.timeout`` (halving under ``--budget``: the time left) rather than get it each."""
    import dataclasses
    import time
    from ..bench.parity import rows_from_worker
    from ..bench.process import run_worker
    from ..bench.sweep import measure
    outcome = parity if isinstance(parity, dict) else None
    if parity == "run":
        start = time.perf_counter()
        result = run_worker("parity", job.config, {}, timeout=settings.timeout,
                            extra_env=(envs or {}).get(job.key) or None)
        outcome = parity_outcome(rows_from_worker(job.config, result))
        if share_timeout:
            left = max(1.0, settings.timeout - (time.perf_counter() - start))
            settings = dataclasses.replace(settings, timeout=left)
    m = measure(job, settings)
    m.host = socket.gethostname()
    m.extra = {**m.extra, **({"parity": outcome} if outcome is not None else {})}
    try:
        from distributed import get_worker
        m.extra["dask_worker"] = get_worker().address
    except (ImportError, ValueError):
        pass                                   # not on a Dask worker
    return m


def perturb_envs(jobs) -> dict:
    """Test-only: the parity worker's environment per job key (see the module docstring)."""
    match = os.environ.get(PERTURB_VAR, "")
    if not match:
        return {}
    return {j.key: {"RNNPERF_PARITY_PERTURB": "0.5"} for j in jobs if match in j.key}
