"""The benchmark harness: a parent that sweeps, and the worker job that measures.

**Parent** (:func:`run_sweep`): expands profiles x shapes x tasks into jobs, checks each engine's
availability from package metadata, and runs one worker process per measurement through
:func:`rnnperf.worker.run_worker`; it never imports an engine (a test checks ``sys.modules``).
After every measurement the results document is written atomically (:mod:`rnnperf.results`), so
a parent killed by SIGKILL loses at most the measurement in flight. Ctrl-C or SIGTERM stops the
running worker and keeps what finished.

``--resume`` keeps every measurement whose status is ``ok`` or ``failed`` (a failure is a property
of the build: rerunning it gives the same NaN) and reruns ``timeout`` (often a busy machine) and
``unavailable`` (cheap to re-check, and the engine may have been installed since) together with
everything not measured yet. Without ``--resume`` an existing ``--out`` file is refused (exit 2)
unless ``--force`` replaces it; a corrupt or foreign file is never overwritten either way.

**Worker** (:func:`worker_job`, job ``bench``): builds the seed parameters and random data,
imports the engine's libraries (timed as ``import_s``), builds the engine (graph build, compile
and first call timed as ``compile_s``), warms up, calibrates the loop count (:mod:`rnnperf.timing`),
times the rounds, checks the result is finite, and measures the peak matmul rate in the engine's
own library (:mod:`rnnperf.machine`).

Fault injection, **test-only**: ``RNNPERF_FAULT=KIND`` or ``KIND@SUBSTRING`` (only jobs whose key
contains SUBSTRING) makes the worker ``crash`` (exit 70), ``raise``, ``sigkill`` itself, print
``garbage`` instead of an answer, ``hang`` (until killed or orphaned) or report a ``nan`` result.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import sys
import time
from pathlib import Path

from . import results as res
from .errors import CheckFailed, ConfigError

REFERENCE_SHAPE = {"T": 100, "B": 32, "I": 128, "H": 256, "O": 10}
TASKS = ("forward", "train")
KEEP_ON_RESUME = ("ok", "failed")
FAULT_VAR = "RNNPERF_FAULT"
FAULTS = ("crash", "raise", "sigkill", "garbage", "hang", "nan")


# --- planning ------------------------------------------------------------------------------------

def parse_shape(text: str) -> dict:
    """``T=100,B=32,I=128,H=256[,O=10]`` -> dict; one ConfigError line naming the bad token."""
    shape: dict = {}
    for token in text.split(","):
        token = token.strip()
        if not token:
            continue
        key, sep, value = token.partition("=")
        key = key.strip().upper()
        if not sep or key not in res.SHAPE_KEYS:
            raise ConfigError(f"--shape {text}: bad token {token!r} (expected T=,B=,I=,H=[,O=])")
        if not value.strip().isdigit() or int(value) < 1:
            raise ConfigError(f"--shape {text}: {key}={value!r} must be a positive integer")
        shape[key] = int(value)
    missing = [k for k in ("T", "B", "I", "H") if k not in shape]
    if missing:
        raise ConfigError(f"--shape {text}: missing {', '.join(missing)}")
    shape.setdefault("O", 10)
    return {k: shape[k] for k in res.SHAPE_KEYS}


@dataclasses.dataclass
class Job:
    config: object          # rnnperf.flags.Config
    shape: dict
    task: str

    @property
    def profile(self) -> str:
        return self.config.profile()

    @property
    def key(self) -> str:
        return res.make_key(self.profile, self.shape, self.task)

    def blank(self, **fields) -> res.Measurement:
        """The measurement's identity, filled before anything runs."""
        cfg = self.config
        return res.Measurement(
            key=self.key, profile=self.profile, engine=cfg.engine, task=self.task,
            shape=dict(self.shape), flags=cfg.values(), device_requested=cfg.device,
            dtype=cfg.floatX, threads=cfg.threads or os.cpu_count(),
            host=socket.gethostname(), started=res.now(), **fields)


def profiles(profile_args, engines_arg, flags_args, rc_args, threads) -> list:
    """Configs for ``--profile``/``--engines`` under ``--flags``/``--rc``; ``--threads`` wins."""
    from . import flags
    texts = list(profile_args or [])
    for name in (engines_arg or "").split(","):
        if name.strip():
            texts.append(f"engine={name.strip()}")
    if not texts:
        texts = [""]                       # the profile from env/rc/--flags alone
    top = [f"threads={threads}"] if threads else []
    configs, seen = [], set()
    for text in texts:
        config = flags.load(flags=list(flags_args or []) + [text] + top, rc=rc_args)
        if config.profile() not in seen:
            seen.add(config.profile())
            configs.append(config)
    return configs


def plan(configs, shapes, tasks) -> list[Job]:
    return [Job(c, s, t) for c in configs for s in shapes for t in tasks]


def add_plan_args(parser) -> None:
    """What a sweep covers (``bench``, ``warm``): profiles x shapes x tasks, and the threads."""
    from .cli import add_profile_args
    parser.add_argument("--profile", action="append", metavar="FLAGS",
                        help="a profile, e.g. engine=pytensor-c,floatX=float64 (repeatable)")
    parser.add_argument("--engines", metavar="A,B,...",
                        help="registry names; each is a profile engine=NAME")
    add_profile_args(parser)
    parser.add_argument("--shape", action="append", metavar="T=..,B=..,I=..,H=..[,O=..]",
                        help="input shape (repeatable; default T=100,B=32,I=128,H=256,O=10)")
    parser.add_argument("--task", action="append", choices=TASKS,
                        help="forward and/or train (repeatable; default both)")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="CPU threads (the profile's threads=; default all cores)")


def plan_from_args(args) -> list[Job]:
    """The jobs :func:`add_plan_args`' options ask for."""
    configs = profiles(args.profile, args.engines, args.flags, args.rc, args.threads)
    shapes = [parse_shape(s) for s in args.shape] if args.shape else [dict(REFERENCE_SHAPE)]
    return plan(configs, shapes, list(dict.fromkeys(args.task or TASKS)))


# --- the sweep (parent) --------------------------------------------------------------------------

@dataclasses.dataclass
class Settings:
    min_time: float = 0.1
    rounds: int = 7
    warmup: int = 1
    timeout: float = 600.0
    processes: int = 1

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


def add_sweep_args(parser, what: str = "measurement") -> None:
    """The options every sweep shares (``bench``, ``tune``): resume, timeouts, rounds."""
    parser.add_argument("--resume", action="store_true",
                        help="keep the finished measurements already in the results document, "
                             "run the rest")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing results document")
    parser.add_argument("--timeout", type=float, default=600.0, metavar="S",
                        help=f"seconds per {what}, compile included (default %(default)s)")
    parser.add_argument("--min-time", type=float, default=0.1, metavar="S",
                        help="minimum seconds per timed round (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=7,
                        help="timed rounds per worker, >= 5 (default %(default)s)")


def open_document(out, resume: bool, force: bool) -> res.ResultsDoc:
    """The document to fill: resumed, fresh, or a refusal (exit 2) naming the file."""
    from .machine import library_versions, machine_facts
    path = Path(out)
    if resume and path.exists():
        doc = res.load(path)                        # corrupt/foreign: ConfigError, untouched
    elif path.exists() and not force:
        raise ConfigError(f"{path}: already exists; pass --resume to continue it or --force to "
                          "replace it")
    else:
        doc = res.ResultsDoc()
    blas = doc.versions.get("blas", {})
    doc.machine = machine_facts()
    doc.versions = {**library_versions(), "blas": blas}
    return doc


def run_sweep(jobs: list[Job], settings: Settings, out, resume: bool = False,
              force: bool = False, progress: bool = True) -> res.ResultsDoc:
    """Measure every job not already done, saving after each worker; returns the document.

    With ``settings.processes = N`` the sweep makes N passes over the jobs, one fresh worker per
    job per pass, and pools each job's rounds (pyperf's ``--processes``, interleaved): on a
    shared machine whose speed drifts by tens of percent over minutes, every engine then samples
    the same stretches of time, and the ratios within one document stay honest.
    """
    from .engines import availability
    from .ui import sweep_progress
    from .worker import run_worker, workers_die_with_parent_signals
    settings.check()
    doc = open_document(out, resume, force)
    doc.settings = settings.to_json()
    res.save(doc, out)
    stopped: set[str] = set()            # ended as timeout/unavailable in this sweep: not retried

    def passes_done(m: res.Measurement | None) -> int:
        if m is None or m.status not in KEEP_ON_RESUME:
            return 0
        return settings.processes if m.status == "failed" else (m.processes or 1)

    bar = sweep_progress(progress)
    with workers_die_with_parent_signals(), bar:
        known = doc.by_key()
        task_id = bar.add_task("bench", total=len(jobs) * settings.processes, completed=sum(
            min(passes_done(known.get(j.key)), settings.processes) for j in jobs))
        for pass_no in range(settings.processes):
            for job in jobs:
                before = doc.by_key().get(job.key)
                done = passes_done(before)
                if done > pass_no or job.key in stopped:
                    continue
                bar.update(task_id, description=f"{job.config.engine} "
                           f"{res.shape_label(job.shape)} {job.task}")
                ok, reason, _ = availability(job.config.engine)
                if not ok:
                    m = job.blank(status="unavailable", error=f"engine {job.config.engine} "
                                  f"is not available: {reason}")
                else:
                    m = measure(job, settings, run_worker)
                if done:
                    m = pool(before, m, done + 1)
                if m.status not in KEEP_ON_RESUME:
                    stopped.add(job.key)
                doc.put(m)
                res.save(doc, out)
                bar.advance(task_id, 1 if m.status == "ok" else settings.processes - pass_no)
    return doc


def pool(before: res.Measurement, new: res.Measurement, process_no: int) -> res.Measurement:
    """``before`` with the rounds of one more worker; a worker that fails fails the measurement.

    ``import_s``, ``compile_s``, ``function_cache`` and ``loops`` stay the first worker's (later
    ones find warm caches); the peak and RSS are the highest seen; the statistics are re-derived
    from every pooled round.
    """
    if new.status != "ok":
        before.status, before.error = new.status, f"worker {process_no}: {new.error}"
        return before
    before.times_s = list(before.times_s) + list(new.times_s)
    before.processes = process_no
    before.peak_gflops = max(filter(None, (before.peak_gflops, new.peak_gflops)), default=None)
    before.rss_mb = max(filter(None, (before.rss_mb, new.rss_mb)), default=None)
    before.wall_s = round((before.wall_s or 0) + (new.wall_s or 0), 3)
    return before.finish()


def measure(job: Job, settings: Settings, run_worker) -> res.Measurement:
    """One worker, one measurement, whatever happens to the worker."""
    from .engines.base import set_thread_env
    extra: dict = {}
    set_thread_env(job.config.threads or os.cpu_count(), extra)
    payload = {"key": job.key, "shape": job.shape, "task": job.task,
               "min_time": settings.min_time, "rounds": settings.rounds,
               "warmup": settings.warmup}
    m = job.blank()
    m.processes = 1
    out = run_worker("bench", job.config, payload, timeout=settings.timeout, extra_env=extra)
    m.status, m.error, m.wall_s = out.status, out.error, round(out.wall_s, 3)
    names = {f.name for f in dataclasses.fields(res.Measurement)}
    for name, value in (out.data or {}).items():
        if name in names and name not in ("key", "profile", "engine", "task", "shape", "status",
                                          "error"):
            setattr(m, name, value)
    if m.status == "ok":
        m.finish()
    return m


def exit_code(measurements) -> int:
    """1 if anything failed or timed out, else 3 if an engine was unavailable, else 0."""
    statuses = {m.status for m in measurements}
    if statuses & {"failed", "timeout"}:
        return 1
    if "unavailable" in statuses:
        return 3
    return 0


# --- the worker ----------------------------------------------------------------------------------

@dataclasses.dataclass
class Built:
    """What :func:`build_runner` made, and what it cost."""

    cls: type               # the engine class
    engine: object
    step: object            # one synchronised step of the task
    first: object           # the first call's result
    import_s: float         # importing the engine's libraries (after the profile's settings)
    compile_s: float        # engine construction + graph build + compile + first call
    function_cache: str | None  # where the compiled function came from (Engine.function_cache)


def build_runner(config, payload: dict) -> Built:
    """Seed parameters, random data, the engine and its first call, timed as ``compile_s``.

    The engine's libraries are imported first and timed apart as ``import_s``, with whatever the
    engine imported late (a library only some paths need, :attr:`Engine.late_import_s`) moved
    from compile to import. Shared by the ``bench`` and ``warm`` jobs so both time exactly the
    same thing.
    """
    import numpy as np

    from .engines import load
    from .model import init_params
    s, task = payload["shape"], payload["task"]
    if task not in TASKS:
        raise ConfigError(f"task {task!r}: must be one of {', '.join(TASKS)}")
    dtype = config.floatX
    seed = int(payload.get("seed", 0))
    params = init_params(s["I"], s["H"], s["O"], seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((s["T"], s["B"], s["I"])).astype(dtype)
    y = rng.integers(0, s["O"], size=s["B"])
    lengths = np.full(s["B"], s["T"], dtype=np.int64)

    cls = load(config.engine)               # rnnperf's own module: neither import nor compile
    start = time.perf_counter()
    cls.import_libraries(config)
    import_s = time.perf_counter() - start
    start = time.perf_counter()
    engine = cls(config, s["I"], s["H"], s["O"], params)
    step = engine.runner(task, x, y, lengths, float(payload.get("lr", 0.01)))
    first = step()
    compile_s = time.perf_counter() - start - engine.late_import_s
    return Built(cls, engine, step, first, import_s + engine.late_import_s, compile_s,
                 engine.function_cache)


def worker_job(config, payload: dict) -> dict:
    """Job ``bench``: measure one profile x shape x task in this (fresh) process."""
    import resource

    from .machine import blas_info, peak_gflops
    from .timing import calibrate, time_rounds

    fault = _fault(payload.get("key", ""))
    if fault and fault != "nan":
        _inject(fault)
    dtype = config.floatX
    built = build_runner(config, payload)
    engine, step = built.engine, built.step
    _check_finite("first call", built.first, fault)
    for _ in range(int(payload.get("warmup", 1))):
        step()
    loops = calibrate(step, float(payload["min_time"]))
    times = time_rounds(step, loops, int(payload["rounds"]))
    _check_finite("result", step(), fault)
    _check_finite("parameters", engine.get_params(), fault)
    peak, peak_n, _ = peak_gflops(config.engine, dtype, config.device)
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"import_s": built.import_s, "compile_s": built.compile_s,
            "function_cache": built.function_cache, "loops": loops, "times_s": times,
            "peak_gflops": peak, "peak_n": peak_n, "rss_mb": rss_kb / 1024,
            "device_actual": engine.device_actual(), "blas": blas_info(config.engine),
            "versions": built.cls.versions(), "dtype": dtype}


def _check_finite(what: str, value, fault: str | None) -> None:
    if fault == "nan" or not _finite(value):
        raise CheckFailed(f"{what} contains NaN or Inf")


def _finite(value) -> bool:
    import numpy as np
    if value is None:
        return True
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_finite(v) for v in value)
    if hasattr(value, "detach"):                     # torch.Tensor
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return True                                   # not numeric: nothing to check
    return bool(np.all(np.isfinite(arr)))


def _fault(key: str) -> str | None:
    spec = os.environ.get(FAULT_VAR, "")
    if not spec:
        return None
    kind, _, match = spec.partition("@")
    if kind not in FAULTS:
        raise ConfigError(f"{FAULT_VAR}={spec}: unknown fault {kind!r}")
    return kind if match in key else None


def _inject(kind: str) -> None:
    """Test-only misbehaviour; see the module docstring."""
    if kind == "crash":
        print("injected crash", file=sys.stderr, flush=True)
        os._exit(70)
    if kind == "raise":
        raise RuntimeError("injected fault")
    if kind == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "garbage":
        print("this is not an answer", flush=True)
        os._exit(0)
    if kind == "hang":
        # Until the parent kills us, or we are orphaned by a killed parent (re-parented: our
        # ppid changes, or already was 1 when we got here), or five minutes pass.
        parent = os.getppid()
        deadline = time.monotonic() + 300
        while os.getppid() == parent != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        os._exit(75)
