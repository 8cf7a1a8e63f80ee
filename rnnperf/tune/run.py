"""A whole tune: expand the space, sweep it (here or on Dask), rank, write the winner."""

from __future__ import annotations

import functools
from pathlib import Path

from ..bench import results as res
from ..errors import CheckFailed

CONNECT_TIMEOUT = 5.0


def sweep_space(jobs, settings, sweep_path, *, resume: bool, force: bool, progress: bool,
                scheduler: str | None = None,
                connect_timeout: float = CONNECT_TIMEOUT) -> res.ResultsDoc:
    """Measure what the document lacks, with parity, here or on Dask; saved after every point."""
    from ..bench import runners
    from ..bench.sweep import run_sweep
    from .point import measure_point, perturb_envs
    client = cluster = None
    if scheduler:                                    # unreachable: exit 3 before any file
        client, cluster = runners.connect(scheduler, connect_timeout)
    try:
        measure = functools.partial(measure_point, envs=perturb_envs(jobs))
        return run_sweep(jobs, settings, sweep_path, resume=resume, force=force,
                         progress=progress, measure_fn=measure, needs=("parity",),
                         runner=runners.dask_runner(client) if client is not None else None,
                         label="tune")
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


def choose(doc: res.ResultsDoc, jobs, out: Path, sweep_path: Path, title: str,
           wide: bool = False):
    """Rank the sweep's points, show them, plot them, and write the winner's rc to ``out``."""
    from ..atomic import write_text_atomic
    from .rank import rank, verdict
    from .report import plot_ranked, rc_text, render
    keys = {j.key for j in jobs}
    ranked = rank([m for m in doc.results if m.key in keys])
    eligible = [m for m in ranked if verdict(m) == "ok" and m.seq_per_s]
    best = eligible[0] if eligible else None
    render(ranked, best, wide=wide)
    png = out.with_suffix(".png")
    plot_ranked(ranked, best, png, f"{title}, {doc.machine.get('cpu', '?')}")
    print(f"sweep: {sweep_path}\nplot: {png}")
    if best is None:
        raise CheckFailed(f"no point of {len(jobs)} passed parity and measured ok; "
                          f"no rc written (see {sweep_path})")
    rejected = sum(1 for m in ranked if verdict(m) != "ok")
    write_text_atomic(out, rc_text(best, eligible[1] if len(eligible) > 1 else None, doc,
                                   len(ranked), rejected))
    print(f"winner: {best.profile} ({best.seq_per_s:.1f} seq/s) -> {out}")
    return best
