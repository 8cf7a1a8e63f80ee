"""Warming: pre-compile the shapes a sweep will use, and show compile cost honestly.

Every engine with a compiler keeps a cache across processes: PyTensor's compiledir (C modules),
Numba's on-disk cache (``numba__cache``), JAX's persistent compilation cache (turned on by
:func:`rnnperf.engines.jax_runtime.configure_jax`), and for ``pytensor-jax`` rnnperf's own function
cache (:mod:`rnnperf.engines.function_cache`). ``warm`` runs each profile x shape x task in a fresh
worker that imports the engine's libraries, builds the engine and makes the first call, then does it
again in a second fresh worker: the first figures are the cold cost (when the caches were empty) and
the second the cost a later sweep pays. Import, compile (graph build + compile + first call) and
where the function came from are reported apart, for both workers.
"""

from __future__ import annotations


def worker_job(config, payload):
    """Import, build the engine and make the first call: that is what a cache can save. In a
    shared worker (``payload["shared"]``) the step is kept for the bench requests after it."""
    from .step_job import built_for
    built, _ = built_for(config, payload)
    return {"import_s": built.import_s, "compile_s": built.compile_s,
            "function_cache": built.function_cache,
            "device_actual": built.engine.device_actual()}


def warm(jobs, timeout: float) -> list[dict]:
    """Each job in two fresh workers, one after the other: cold figures, then cached ones."""
    from .process import run_worker
    rows = []
    for job in jobs:
        payload = {"shape": job.shape, "task": job.task}
        first = run_worker("warm", job.config, payload, timeout=timeout)
        second = run_worker("warm", job.config, payload, timeout=timeout) \
            if first.status == "ok" else first
        status = first.status if first.status != "ok" else second.status
        row = {"profile": job.profile, "shape": job.shape, "task": job.task, "status": status,
               "error": first.error or second.error}
        for label, out in (("first", first), ("cached", second)):
            for field in ("import_s", "compile_s", "function_cache"):
                row[f"{label}_{field}"] = out.data.get(field)
        rows.append(row)
    return rows


def exit_code(rows) -> int:
    """1 if a worker failed or timed out, else 3 if an engine was unavailable, else 0."""
    from .sweep import status_exit_code
    return status_exit_code(r["status"] for r in rows)


def render(rows) -> None:
    from ..ui import Column, stdout_console, table
    cols = [Column("profile"), Column("shape"), Column("task")] + [
        Column(f"{n} {what}", right=what != "function") for n in ("1st", "2nd")
        for what in ("import s", "compile s", "function")] + [Column("status")]

    def fmt(value):
        return f"{value:.2f}" if isinstance(value, (int, float)) else "-"
    cells = []
    for r in rows:
        timings = []
        for label in ("first", "cached"):
            timings += [fmt(r[f"{label}_import_s"]), fmt(r[f"{label}_compile_s"]),
                        r[f"{label}_function_cache"] or "-"]
        cells.append([r["profile"], ",".join(f"{k}={v}" for k, v in r["shape"].items()),
                      r["task"], *timings,
                      r["status"] if not r["error"] else f"{r['status']}: {r['error']}"])
    stdout_console(180).print(table(
        cols, cells, wide=True, title="two fresh workers: first (cold caches), then second (what "
        "a later sweep pays); compile = graph build + compile + first call"))
