"""The worker's side of a measurement (job ``bench``): build, warm up, calibrate, time.

:func:`build_runner` builds the seed parameters and random data, imports the engine's libraries
(timed as ``import_s``), builds the engine (graph build, compile and first call timed as
``compile_s``). :func:`worker_job` then warms up, calibrates the loop count
(:mod:`rnnperf.bench.timing`), times the rounds, checks the result is finite, measures the peak
matmul rate in the engine's own library (:mod:`rnnperf.bench.peak`), and returns the
measurement it was sent, filled in (:class:`rnnperf.bench.results.Measurement`).
"""

from __future__ import annotations

import dataclasses
import time

from ..errors import CheckFailed, ConfigError
from ..model.spec import TASKS
from .faults import fault_for, inject
from .results import Measurement


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
    rss_before_kb: int | None = None  # the resident set just before the first call (rss_kb)


def build_runner(config, payload: dict) -> Built:
    """Seed parameters, random data, the engine and its first call, timed as ``compile_s``.

    The engine's libraries are imported first and timed apart as ``import_s``, with whatever the
    engine imported late (a library only some paths need, :attr:`Engine.late_import_s`) moved
    from compile to import. Shared by the ``bench`` and ``warm`` jobs so both time exactly the
    same thing.
    """
    import numpy as np

    from ..engines import load
    from ..model.spec import init_params
    s, task = payload["shape"], payload["task"]
    if task not in TASKS:
        raise ConfigError(f"task {task!r}: must be one of {', '.join(TASKS)}")
    dtype = config.floatX
    seed = int(payload.get("seed", 0))
    params = init_params(s["I"], s["H"], s["O"], seed=seed, dtype=dtype, cell=config.cell)
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((s["T"], s["B"], s["I"])).astype(dtype)
    y = rng.integers(0, s["O"], size=s["B"])
    lengths = np.full(s["B"], s["T"], dtype=np.int64)

    cls = load(config.engine, config)       # rnnperf's own module: neither import nor compile
    start = time.perf_counter()
    cls.import_libraries(config)
    import_s = time.perf_counter() - start
    from ..engines.threads import limit_pools
    limit_pools(config.threads)       # the pools loaded so far, before the first call sizes one
    start = time.perf_counter()
    engine = cls(config, s["I"], s["H"], s["O"], params)
    step = engine.runner(task, x, y, lengths, float(payload.get("lr", 0.01)))
    rss_before_kb = rss_kb()
    first = step()
    compile_s = time.perf_counter() - start - engine.late_import_s
    return Built(cls, engine, step, first, import_s + engine.late_import_s, compile_s,
                 engine.function_cache, rss_before_kb)


#: a shared worker's built steps, by what compiles them (not ``threads=``): :func:`built_for`
_KEPT: dict[str, Built] = {}


def built_for(config, payload: dict) -> tuple[Built, bool]:
    """The step to time and whether it was kept from an earlier request. Only a shared worker's
    request (``payload["shared"]``) keeps its step: the same compiled function is then timed at
    every rung and every ``threads=`` it is asked for, and ``import_s``/``compile_s`` stay those
    of the build. A kept train step goes on from the parameters its last rounds left (SGD on the
    same data): the same work per step, as in a fresh worker's rounds."""
    if not payload.get("shared"):
        return build_runner(config, payload), False
    import json
    what = {k: v for k, v in config.values().items() if k != "threads"}
    key = json.dumps([what, payload["shape"], payload["task"], payload.get("seed", 0),
                      payload.get("lr", 0.01)], sort_keys=True)
    if key in _KEPT:
        return _KEPT[key], True
    _KEPT[key] = build_runner(config, payload)
    return _KEPT[key], False


def worker_job(config, payload: dict) -> dict:
    """Job ``bench``: measure one profile x shape x task in this (fresh) process.

    ``payload["measurement"]`` is the job's blank :class:`Measurement` (its identity); the answer
    is the same document with what this worker measured.
    """
    import resource

    from ..engines.threads import limit_pools, pools
    from .load import LoadWindow
    from .peak import blas_info, peak_gflops
    from .timing import calibrate, time_rounds

    m = Measurement.from_json(payload["measurement"], "payload")
    fault = fault_for(m.key)
    if fault and fault != "nan":
        inject(fault)
    dtype = config.floatX
    built, kept = built_for(config, {**payload, "shape": m.shape, "task": m.task})
    engine, step = built.engine, built.step
    _check_finite("first call", built.first, fault)
    limit_pools(config.threads)          # every pool the compile loaded, to threads=
    for _ in range(int(payload.get("warmup", 1))):
        step()
    loops = calibrate(step, float(payload["min_time"]))
    window = LoadWindow()
    peak_reset = reset_peak()
    times = time_rounds(step, loops, int(payload["rounds"]))
    load = window.figures()
    step_peak_mb = step_memory_mb(built.rss_before_kb, peak_kb() if peak_reset else None)
    in_use = pools()
    _check_finite("result", step(), fault)
    _check_finite("parameters", engine.get_params(), fault)
    peak, peak_n = None, None
    if payload.get("peak", True):       # a tune's early rungs rank by speed alone: no probe
        peak, peak_n, _ = peak_gflops(engine, config, float(payload["min_time"]),
                                      int(payload["rounds"]))
    max_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    filled = dataclasses.replace(
        m, import_s=built.import_s, compile_s=built.compile_s,
        function_cache=built.function_cache, loops=loops, times_s=times, peak_gflops=peak,
        peak_n=peak_n, rss_mb=max_kb / 1024, step_peak_mb=step_peak_mb,
        device_actual=engine.device_actual(),
        blas=blas_info(config.engine), versions=built.cls.versions(), dtype=dtype,
        pools=in_use, threads_actual=max(in_use.values(), default=None), **load)
    if payload.get("shared"):
        filled.extra = {**filled.extra, "worker": {"shared": True,
                                                   "function": "kept" if kept else "built"}}
    return filled.to_json()


# --- the step's memory --------------------------------------------------------------------------
# ``rss_mb`` (getrusage's ru_maxrss) is the worker's whole life: imports, compile and the peak
# probe's square products, which at a small shape dwarf the step. ``step_peak_mb`` is the step's
# own: Linux's high-water mark (VmHWM), reset to the current RSS just before the timed rounds
# (``echo 5 > /proc/self/clear_refs``, Linux >= 4.0) and read right after them, minus the RSS
# just before the first call. So the buffers a step keeps between calls (allow_gc=False) count,
# and the import, the data and the parameters do not; nor does a compile done before the first
# call (PyTensor's C, Theano), but what a JIT's first call leaves resident (XLA's, Numba's
# compiled code and arenas: about 20 MB for engine=jax at a tiny shape) does, as a floor that
# does not grow with T. glibc's malloc_trim(0) runs before both readings, so memory freed earlier
# but kept by the allocator neither hides the step's allocations (reused without a page fault)
# nor inflates its peak. Where the mark cannot be reset the figure is None, never a lifetime peak
# passed off as the step's.

STATUS = "/proc/self/status"


def _status_kb(field: str) -> int | None:
    try:
        with open(STATUS) as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def rss_kb() -> int | None:
    """This process's resident set now (VmRSS), in KiB, after :func:`trim`; None off Linux."""
    trim()
    return _status_kb("VmRSS")


def trim() -> None:
    """Hand the allocator's free memory back to the kernel (glibc; a no-op elsewhere)."""
    try:
        import ctypes
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_kb() -> int | None:
    """The resident set's high-water mark (VmHWM) since the last :func:`reset_peak`, in KiB."""
    return _status_kb("VmHWM")


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS; False where the kernel or a sandbox refuses."""
    trim()
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def step_memory_mb(before_kb: int | None, peak: int | None) -> float | None:
    """The step's peak need in MiB (0 when the rounds never rose above the baseline)."""
    if before_kb is None or peak is None:
        return None
    return max(peak - before_kb, 0) / 1024


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
