"""A halving tune's document: each rung's measurements recorded, saved, shown, cut by a budget.

:mod:`.halving` decides what to measure; this module measures it through a sweep runner (here or
on Dask, one point at a time per ``bench`` slot, like every sweep) and keeps the results
document. A point's measurement is replaced by its latest rung's; what it measured at every rung
it reached stays in ``extra["halving"]``::

    {"rung": 2, "of": 4, "rungs": [{"rung": 0, "min_time_s": 0.0037, "rounds": 3, "loops": 1,
                                    "median_s": ..., "seq_per_s": ..., "status": "ok"}, ...]}

``--resume`` keeps every rung figure already in the document (a point measured at rung ``r``
is not measured at ``r`` again) and goes on from there. Under ``--budget`` the measurement in
flight when the time runs out is killed and thrown away (:mod:`.budget`), the tune stops, and
the document's ``settings["halving"]["cut"]`` says where.
"""

from __future__ import annotations

import copy
import functools

from ..bench import results as res
from .budget import CUT, within
from .halving import Stop, eligible_at, figure, run_halving, schedule

#: statuses a rung's figure is kept for on --resume (as the sweep keeps them)
KEEP = ("ok", "failed")


def point_measure(job, settings, envs=None, skip_parity=False, parities=None,
                  share_timeout=False):
    """The measure function of one rung (runs where the runner runs it): rung 0 (unless it is
    the last) skips parity, a later rung checks it once, then carries it (``parities``: the
    outcomes found so far)."""
    from .point import measure_rung
    return measure_rung(job, settings, envs, parity=parity_mode(job, skip_parity, parities),
                        share_timeout=share_timeout)


def parity_mode(job, skip_parity: bool, parities) -> str | dict:
    """``"skip"``, the outcome an earlier rung found for ``job`` (carried), or ``"run"``."""
    known = (parities or {}).get(job.key)
    return "skip" if skip_parity else (known if known is not None else "run")


def shared_point_measure(job, settings, workers=None, envs=None, skip_parity=False,
                         parities=None, share_timeout=False):
    """:func:`point_measure` in the point's shared worker (:mod:`.workers`): here, not on Dask."""
    return workers.measure(job, settings, parity=parity_mode(job, skip_parity, parities),
                           share_timeout=share_timeout)


class HalvingTune:
    """The document, the rungs, the budget and the live view of one halving tune."""

    def __init__(self, doc, path, rungs, budget, runner, envs, view, measure=point_measure,
                 workers=None, lanes: int = 0):
        self.doc, self.path, self.rungs, self.budget = doc, path, rungs, budget
        self.runner, self.envs, self.view, self.measure = runner, envs, view, measure
        self.workers = workers           # the shared workers, closed as points drop out
        self.lanes = lanes               # parity checks side by side (--jobs), before timing
        self.cut: dict | None = None

    def start_rung(self, rung, jobs) -> None:
        if self.workers is not None:
            self.workers.keep_only(jobs)
        self.view.start_rung(rung, jobs)

    def lookup(self, key):
        return self.doc.by_key().get(key)

    def measure_rung(self, rung, batch) -> None:
        """Measure the jobs of ``batch`` not yet measured at ``rung`` (``--resume``)."""
        from ..engines import availability
        todo = []
        for job in batch:
            entry = figure(self.lookup(job.key), rung.index)
            if entry and entry.get("status") in KEEP:
                self.view.done(job, self.lookup(job.key))
                continue
            ok, reason, _ = availability(job.config.engine)
            if ok:
                todo.append(job)
            else:                          # recorded without a worker, as the sweep does
                self.record(rung, job, job.blank(status="unavailable", error=f"engine "
                            f"{job.config.engine} is not available: {reason}"))
        parities = {j.key: (self.lookup(j.key).extra or {}).get("parity") for j in todo
                    if self.lookup(j.key) is not None}
        skip = rung.index == 0 and len(self.rungs) > 1
        if self.workers is not None and self.lanes > 0 and not skip:
            unknown = [j for j in todo if not parities.get(j.key)]
            timeout = lambda: max(1.0, min(rung.settings.timeout, self.budget.remaining()))  # noqa: E731
            parities.update(self.workers.check_parity(unknown, timeout, self.lanes,
                                                      self.view.describe))
        self.runner(todo, self.measure_fn(skip, parities), rung.settings,
                    functools.partial(self.record, rung), self.view.describe)
        for pass_no in range(2, rung.settings.processes + 1):
            self.pass_again(rung, batch, pass_no)

    def measure_fn(self, skip_parity: bool, parities: dict):
        return within(functools.partial(self.measure, envs=self.envs, skip_parity=skip_parity,
                                        parities={k: v for k, v in parities.items() if v},
                                        share_timeout=self.budget.seconds is not None),
                      self.budget.deadline)

    def pass_again(self, rung, jobs, pass_no: int) -> None:
        """``--processes N`` at the last rung: every point measured once more after all the
        others (interleaved, as the sweep does), its rounds pooled with the passes before, so
        each point samples the same stretches of the machine's drift."""
        from ..bench.sweep import pool
        again = [j for j in jobs if eligible_at(self.lookup(j.key), rung.index) is not None
                 and (self.lookup(j.key).processes or 1) < pass_no]     # --resume: the rest
        parities = {j.key: (self.lookup(j.key).extra or {}).get("parity") for j in again}

        def record(job, m):
            if (m.extra or {}).get(CUT):       # the budget ran out: stop, keep what was pooled
                self.view.cut(job)
                raise Stop
            before = copy.deepcopy(self.lookup(job.key))
            self.record(rung, job, pool(before, m, pass_no))
        self.runner(again, self.measure_fn(False, parities), rung.settings, record,
                    self.view.describe)

    def record(self, rung, job, m: res.Measurement) -> None:
        """Keep one rung's measurement with the figures of the rungs before; save; show."""
        if (m.extra or {}).get(CUT):
            self.view.cut(job)
            raise Stop
        before = self.lookup(job.key)
        old = ((before.extra or {}).get("halving") or {}) if before is not None else {}
        history = [e for e in old.get("rungs", []) if e.get("rung", 0) < rung.index]
        history.append({"rung": rung.index, "min_time_s": rung.settings.min_time,
                        "rounds": rung.settings.rounds, "loops": m.loops,
                        "median_s": m.median_s, "seq_per_s": m.seq_per_s, "status": m.status,
                        **({"retried": m.extra["retried"]} if "retried" in (m.extra or {})
                           else {})})
        extra = dict(m.extra or {})
        if "parity" not in extra and before is not None and "parity" in (before.extra or {}):
            extra["parity"] = before.extra["parity"]
        extra["halving"] = {"rung": rung.index, "of": len(self.rungs), "rungs": history}
        m.extra = extra
        self.doc.put(m)
        res.save(self.doc, self.path)
        self.view.done(job, m)
        if self.budget.spent():
            raise Stop

    def run(self, jobs) -> dict | None:
        """All rungs; returns what was cut (``{"rung", "of", "budget"}``) or None."""
        from ..bench.process import workers_die_with_parent_signals
        with workers_die_with_parent_signals():
            cut = run_halving(jobs, self.rungs, self.measure_rung, self.lookup,
                              on_rung=self.start_rung)
        if cut is not None:
            self.cut = {"rung": cut, "of": len(self.rungs), "budget": self.budget.text,
                        "budget_s": self.budget.seconds}
        self.doc.settings.setdefault("halving", {})["cut"] = self.cut
        res.save(self.doc, self.path)
        return self.cut


def halving_sweep(jobs, settings, path, *, resume: bool, force: bool, progress: bool,
                  runner, envs: dict, eta: int, budget, prewarm_jobs: int = 0,
                  measure=None) -> tuple[res.ResultsDoc, dict | None]:
    """Open (or resume) the document, compile every distinct function first (``prewarm_jobs``
    at a time, :mod:`.prewarm`; 0: not), run the rungs, return it and what the budget cut.

    Here (no ``runner``) every point is measured in its function's shared worker
    (:mod:`.workers`); on Dask, or with a ``measure`` handed in, as that measures it."""
    import contextlib
    from .workers import SharedWorkers
    workers = SharedWorkers(jobs, envs) if runner is None and measure is None else None
    if workers is not None:
        measure = functools.partial(shared_point_measure, workers=workers)
    with workers if workers is not None else contextlib.nullcontext():
        return _halving_sweep(jobs, settings, path, resume=resume, force=force,
                              progress=progress, runner=runner, envs=envs, eta=eta,
                              budget=budget, prewarm_jobs=prewarm_jobs,
                              measure=measure or point_measure, workers=workers)


def _halving_sweep(jobs, settings, path, *, resume, force, progress, runner, envs, eta, budget,
                   prewarm_jobs, measure, workers):
    from ..bench.runners import run_local
    from ..bench.sweep import open_document
    from .live import live_view
    settings.check()
    doc = open_document(path, resume, force)
    rungs = schedule(len(jobs), settings, eta)
    doc.settings = {**settings.to_json(), "strategy": "halving",
                    "halving": {"eta": eta, "rungs": [r.to_json() for r in rungs],
                                "budget_s": budget.seconds}}
    res.save(doc, path)
    with live_view(progress, rungs) as view:
        missing = [j for j in jobs if figure(doc.by_key().get(j.key), 0) is None]
        if prewarm_jobs > 0 and missing and runner is None:
            from .prewarm import prewarm
            doc.settings["halving"]["prewarm"] = prewarm(missing, settings.timeout,
                                                         prewarm_jobs, budget, view.describe,
                                                         workers)
        tune = HalvingTune(doc, path, rungs, budget, runner or run_local, envs, view, measure,
                           workers, lanes=prewarm_jobs)
        cut = tune.run(jobs)
    if workers is not None:
        doc.settings["workers"] = {"shared": True, "started": workers.started}
        res.save(doc, path)
    return doc, cut
