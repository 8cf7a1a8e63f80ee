"""The sweep: every job not already measured, one worker each, saved after every measurement.

One loop for ``bench`` and ``tune`` (:func:`run_sweep`). The parent expands nothing and imports no
engine: it checks each engine's availability from package metadata (an unavailable one is
recorded without a worker), hands the rest to a *runner* (:mod:`.runners`: one after another
here, or on Dask) with a *measure* function (:func:`measure`, or tune's parity-then-measure), and
after every measurement writes the results document atomically (:mod:`.results`), so a parent
killed by SIGKILL loses at most the measurements in flight. Ctrl-C or SIGTERM stops the running
worker and keeps what finished.

``--resume`` keeps every measurement whose status is ``ok`` or ``failed`` (a failure is a property
of the build: rerunning it gives the same NaN) and that carries what the sweep adds (tune's
``extra["parity"]``), and reruns ``timeout`` (often a busy machine), ``unavailable`` (cheap to
re-check, and the engine may have been installed since) and a ``failed`` whose Dask worker was lost
twice (``extra["dask_lost"]``: the loss says nothing about the build) together with everything not
measured yet. Without ``--resume`` an existing ``--out`` file is refused (exit 2) unless ``--force``
replaces it; a corrupt or foreign file is never overwritten either way.

With ``processes = N`` the sweep makes N passes over the jobs, one fresh worker per job per pass,
and pools each job's rounds (pyperf's ``--processes``, interleaved): on a shared machine whose
speed drifts by tens of percent over minutes, every engine then samples the same stretches of
time, and the ratios within one document stay honest.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
from pathlib import Path
from typing import Callable

from ..errors import ConfigError
from . import results as res
from .plan import Job

KEEP_ON_RESUME = ("ok", "failed")


@dataclasses.dataclass
class Settings:
    min_time: float = 0.1
    rounds: int = 7
    warmup: int = 1
    timeout: float = 600.0
    processes: int = 1
    #: probe the engine's product rate after the rounds (the table's peak %); a tune's early
    #: rungs, which rank by speed alone, leave it out
    probe_peak: bool = True

    def check(self) -> None:
        if self.rounds < 5:
            raise ConfigError(f"--rounds {self.rounds}: at least 5 rounds make a median and IQR")
        if self.min_time <= 0 or self.timeout <= 0 or self.warmup < 0:
            raise ConfigError("--min-time and --timeout must be positive, --warmup >= 0")
        if self.processes < 1:
            raise ConfigError(f"--processes {self.processes}: must be a positive integer")

    def to_json(self) -> dict:
        return {"min_time_s": self.min_time, "rounds": self.rounds, "warmup": self.warmup,
                "timeout_s": self.timeout, "processes": self.processes}


def open_document(out, resume: bool, force: bool) -> res.ResultsDoc:
    """The document to fill: resumed, fresh, or a refusal (exit 2) naming the file."""
    from .machine import library_versions, machine_facts
    path = Path(out)
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory; --out names the results file to write")
    if resume and path.exists():
        doc = res.load(path)                        # corrupt/foreign: ConfigError, untouched
        if doc.conventions != res.CONVENTIONS:
            raise ConfigError(f"{path}: counted under older conventions "
                              f"({doc.said_conventions()}); "
                              "its figures and new ones would not compare: start a new document")
    elif path.exists() and not force:
        raise ConfigError(f"{path}: already exists; pass --resume to continue it or --force to "
                          "replace it")
    else:
        doc = res.ResultsDoc()
    blas = doc.versions.get("blas", {})
    doc.machine = machine_facts()
    doc.versions = {**library_versions(), "blas": blas}
    return doc


def measure(job: Job, settings: Settings) -> res.Measurement:
    """One worker, one measurement, whatever happens to the worker (on the host that calls it)."""
    from .process import run_worker, set_thread_env
    extra: dict = {}
    set_thread_env(job.config.threads or os.cpu_count(), extra)
    out = run_worker("bench", job.config, bench_payload(job, settings),
                     timeout=settings.timeout, extra_env=extra)
    return measurement_from(job, out)


def bench_payload(job: Job, settings: Settings) -> dict:
    """What the ``bench`` worker job is sent: the blank measurement and how to time it."""
    return {"measurement": job.blank(processes=1).to_json(), "min_time": settings.min_time,
            "rounds": settings.rounds, "warmup": settings.warmup, "peak": settings.probe_peak}


def measurement_from(job: Job, out) -> res.Measurement:
    """The measurement a ``bench`` worker's answer (:class:`.process.WorkerResult`) carries, or
    the job's blank one with the status and the reason."""
    m = job.blank(processes=1)
    if out.status == "ok":
        m = res.Measurement.from_json(out.data, f"worker for {job.key}")
    m.status, m.error, m.wall_s = out.status, out.error, round(out.wall_s, 3)
    return m


def pool(before: res.Measurement, new: res.Measurement, process_no: int) -> res.Measurement:
    """``before`` with the rounds of one more worker; a worker that fails fails the measurement.

    ``import_s``, ``compile_s``, ``function_cache``, ``loops`` and ``pools`` stay the first
    worker's (later ones find warm caches); the peak is the median of the workers' (each the
    median of its rounds; all kept in ``extra["peak_gflops_workers"]``); the RSS, the threads and
    the load are the highest seen; the statistics follow from every pooled round.
    """
    if new.status != "ok":
        before.status, before.error = new.status, f"worker {process_no}: {new.error}"
        if "dask_lost" in (new.extra or {}):         # so --resume reruns it (module docstring)
            before.extra = {**(before.extra or {}), "dask_lost": new.extra["dask_lost"]}
        return before
    before.times_s = list(before.times_s) + list(new.times_s)
    before.processes = process_no
    peaks = list((before.extra or {}).get("peak_gflops_workers") or [before.peak_gflops])
    peaks = [p for p in peaks + [new.peak_gflops] if p is not None]
    if peaks:                        # the peak pooled as the step is: the median of the workers'
        before.extra = {**(before.extra or {}), "peak_gflops_workers": peaks}
        before.peak_gflops = statistics.median(peaks)
    for name in ("rss_mb", "step_peak_mb", "threads_actual", "others_cpu", "steal", "loadavg"):
        seen = [v for v in (getattr(before, name), getattr(new, name)) if v is not None]
        setattr(before, name, max(seen, default=None))     # the worst any worker saw
    before.wall_s = round((before.wall_s or 0) + (new.wall_s or 0), 3)
    return before


def exit_code(measurements) -> int:
    """1 if anything failed or timed out, else 3 if an engine was unavailable, else 0."""
    return status_exit_code(m.status for m in measurements)


def status_exit_code(statuses) -> int:
    """:func:`exit_code` of bare statuses."""
    statuses = set(statuses)
    if statuses & {"failed", "timeout"}:
        return 1
    if "unavailable" in statuses:
        return 3
    return 0


def run_sweep(jobs: list[Job], settings: Settings, out, resume: bool = False,
              force: bool = False, progress: bool = True, measure_fn: Callable = measure,
              runner: Callable | None = None, needs: tuple[str, ...] = (),
              label: str = "bench") -> res.ResultsDoc:
    """Measure every job the document lacks, saving after each; returns the document.

    ``measure_fn(job, settings) -> Measurement`` runs where ``runner`` runs it
    (:func:`.runners.run_local` by default); ``needs`` names the ``extra`` keys a kept
    measurement must carry.
    """
    from .process import workers_die_with_parent_signals
    from .runners import run_local
    from ..ui import sweep_progress
    settings.check()
    doc = open_document(out, resume, force)
    doc.settings = settings.to_json()
    res.save(doc, out)
    state = _SweepState(doc, out, settings, needs)
    with workers_die_with_parent_signals(), sweep_progress(progress) as bar:
        state.start(bar, label, jobs)
        for pass_no in range(settings.processes):
            todo = state.todo(jobs, pass_no)
            (runner or run_local)(todo, measure_fn, settings, state.record, state.describe)
    return doc


class _SweepState:
    """The document being filled and the bookkeeping of passes, resumes and the progress bar."""

    def __init__(self, doc: res.ResultsDoc, out, settings: Settings, needs: tuple[str, ...]):
        self.doc, self.out, self.settings, self.needs = doc, out, settings, needs
        self.stopped: set[str] = set()    # ended as timeout/unavailable here: not retried
        self.pass_no = 0

    def passes_done(self, m: res.Measurement | None) -> int:
        if m is None or m.status not in KEEP_ON_RESUME or "dask_lost" in (m.extra or {}):
            return 0
        if any(need not in (m.extra or {}) for need in self.needs):
            return 0
        return self.settings.processes if m.status == "failed" else (m.processes or 1)

    def start(self, bar, label: str, jobs: list[Job]) -> None:
        total = self.settings.processes
        known = self.doc.by_key()
        self.bar = bar
        self.task = bar.add_task(label, total=len(jobs) * total, completed=sum(
            min(self.passes_done(known.get(j.key)), total) for j in jobs))

    def todo(self, jobs: list[Job], pass_no: int) -> list[Job]:
        """This pass's jobs; an unavailable engine is recorded at once, without a worker."""
        from ..engines import availability
        self.pass_no, todo = pass_no, []
        for job in jobs:
            if self.passes_done(self.doc.by_key().get(job.key)) > pass_no or \
                    job.key in self.stopped:
                continue
            ok, reason, _ = availability(job.config.engine)
            if ok:
                todo.append(job)
            else:
                self.record(job, job.blank(status="unavailable", error=f"engine "
                                           f"{job.config.engine} is not available: {reason}"))
        return todo

    def describe(self, text: str) -> None:
        self.bar.update(self.task, description=text[:60])

    def record(self, job: Job, m: res.Measurement) -> None:
        """Put one finished measurement into the document (pooled with earlier passes), save."""
        before = self.doc.by_key().get(job.key)
        done = self.passes_done(before)
        if done:
            m = pool(before, m, done + 1)
        if m.status not in KEEP_ON_RESUME or "dask_lost" in (m.extra or {}):
            self.stopped.add(job.key)
        self.doc.put(m)
        res.save(self.doc, self.out)
        self.bar.advance(self.task, 1 if m.status == "ok" else
                         self.settings.processes - self.pass_no)
