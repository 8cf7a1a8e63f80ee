"""A whole tune: expand the space, sweep it (here or on Dask; every point, or by successive
halving, :mod:`.halving`), rank, write the winner."""

from __future__ import annotations

import functools
from pathlib import Path

from ..bench import results as res
from ..errors import CheckFailed

CONNECT_TIMEOUT = 5.0


def sweep_space(jobs, settings, sweep_path, *, resume: bool, force: bool, progress: bool,
                scheduler: str | None = None, connect_timeout: float = CONNECT_TIMEOUT,
                strategy: str = "exhaustive", eta: int = 3, budget=None, prewarm: int = 0):
    """Measure what the document lacks, with parity, here or on Dask; saved after every point.

    Returns ``(document, cut)``: ``cut`` says which rung ``budget`` (a :class:`.budget.Budget`)
    cut short under ``strategy="halving"``, else None."""
    from ..bench import runners
    from ..bench.sweep import run_sweep
    from .budget import Budget
    from .halving_run import halving_sweep
    from .point import measure_point, perturb_envs
    client = cluster = None
    if scheduler:                                    # unreachable: exit 3 before any file
        client, cluster = runners.connect(scheduler, connect_timeout)
    try:
        runner = runners.dask_runner(client) if client is not None else None
        if strategy == "halving":
            return halving_sweep(jobs, settings, sweep_path, resume=resume, force=force,
                                 progress=progress, runner=runner, envs=perturb_envs(jobs),
                                 eta=eta, budget=budget or Budget(), prewarm_jobs=prewarm)
        if runner is not None:                       # Dask: fresh processes on its hosts
            measure = functools.partial(measure_point, envs=perturb_envs(jobs))
            return run_sweep(jobs, settings, sweep_path, resume=resume, force=force,
                             progress=progress, measure_fn=measure, needs=("parity",),
                             runner=runner, label="tune"), None
        from .halving import group_order
        from .workers import SharedWorkers
        with SharedWorkers(jobs, perturb_envs(jobs)) as workers:
            doc = run_sweep(group_order(jobs), settings, sweep_path, resume=resume, force=force,
                            progress=progress, measure_fn=workers.measure, needs=("parity",),
                            label="tune")
        return doc, None
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


def choose(doc: res.ResultsDoc, jobs, out: Path, sweep_path: Path, title: str,
           wide: bool = False, cut: dict | None = None):
    """Rank the sweep's points, show them, plot them, and write the winner's rc to ``out``.

    A halving sweep ranks by the rung each point reached, then speed
    (:func:`.halving.rank_reached`); ``cut`` (the budget ran out) goes into the rc's header."""
    from ..atomic import write_text_atomic
    from ..bench.machine import cpu_label
    from .halving import rank_reached
    from .rank import rank, verdict
    from .report import plot_ranked, rc_text, render
    keys = {j.key for j in jobs}
    ranker = rank_reached if doc.settings.get("strategy") == "halving" else rank
    ranked = ranker([m for m in doc.results if m.key in keys])
    eligible = [m for m in ranked if verdict(m) == "ok" and m.seq_per_s]
    best = eligible[0] if eligible else None
    render(ranked, best, wide=wide)
    png = out.with_suffix(".png")
    plot_ranked(ranked, best, png, f"{title}, {cpu_label(doc.machine or {})}")
    print(f"sweep: {sweep_path}\nplot: {png}")
    if best is None:
        why = (f"--budget {cut['budget']} ran out at rung {cut['rung']} before any point "
               "passed parity" if cut else f"no point of {len(jobs)} passed parity and "
               "measured ok")
        raise CheckFailed(f"{why}; no rc written (see {sweep_path})")
    rejected = sum(1 for m in ranked if verdict(m) not in ("ok",) and
                   not verdict(m).startswith("dropped"))
    write_text_atomic(out, rc_text(best, eligible[1] if len(eligible) > 1 else None, doc,
                                   len(ranked), rejected, cut=cut))
    print(f"winner: {best.profile} ({best.seq_per_s:.1f} seq/s) -> {out}")
    return best
