"""The worker's side of the machine facts: its peak matrix-product rate and its BLAS.

The peak is measured *through the engine*, in the worker that already built it and timed its
step: :meth:`Engine.matmul_step <rnnperf.engines.base.Engine.matmul_step>` is one ``(n, n) x
(n, n)`` product in the engine's own library, dtype, device, flags and threads (a ``dot``
compiled by PyTensor's or Theano's mode, so ``pytensor-c``'s runs on the BLAS its
``blas__ldflags`` link and ``pytensor-numba``'s on what Numba lowers ``np.dot`` to; ``torch.mm``;
jitted ``jnp.dot``). It is timed like the step, with the same calibration and statistic (the
median of rounds, :mod:`rnnperf.bench.timing`), so both sides of a peak fraction are measured
alike: the results' peak convention ``engine-median/1``
(:data:`rnnperf.bench.measurement.CONVENTIONS`). The registry's
:attr:`~rnnperf.engines.registry.EngineSpec.peak_library` no longer picks the probe; it only says
which library's facts :func:`blas_info` reports.
"""

from __future__ import annotations

import os
import sys

from ..engines.registry import get as spec_of
from .flops import matmul_flops
from .timing import calibrate, median, time_round, time_rounds


def peak_gflops(engine, config, min_time: float, rounds: int, target_s: float = 0.03,
                max_n: int = 8192, min_n: int | None = None) -> tuple[float, int, str]:
    """The engine's square-matmul rate: ``(gflops, n, library_label)``.

    ``n`` doubles from 256 until one product lasts ``target_s`` (at least ``min_n``: 1024 on the
    CPU, 256 on a GPU; at most ``max_n``), each size judged on the faster of two single calls
    after a first one (compile, allocation, BLAS start-up). At that ``n`` the product is
    calibrated and timed like the step (``calibrate(step, min_time)``, then ``rounds`` rounds)
    and the rate is ``matmul_flops(n)`` over the median per-call time. ``library_label`` is
    what ran (:meth:`Engine.matmul_label <rnnperf.engines.base.Engine.matmul_label>`).
    """
    if min_n is None:
        min_n = 256 if config.wants_gpu else 1024
    n = 256
    while True:
        step = engine.matmul_step(n)
        step()
        took = min(time_round(step, 1) for _ in range(2))
        if (took >= target_s and n >= min_n) or n * 2 > max_n:
            break
        n *= 2
    loops = calibrate(step, min_time)
    times = time_rounds(step, loops, rounds)
    return matmul_flops(n) / median(times) / 1e9, n, engine.matmul_label()


def blas_info(engine: str) -> str:
    """The BLAS the engine's products run on, as its library reports it; never raises."""
    try:
        return _blas_info(engine)
    except Exception as exc:  # a fact for the record, not worth failing a measurement over
        return f"? ({type(exc).__name__})"


def _blas_info(engine: str) -> str:
    library = spec_of(engine).peak_library
    if library == "torch":
        return f"torch {_torch_blas()}"
    if library == "jax":
        return "jax XLA (its own CPU dot kernels: YNNPACK fusions, Eigen)"
    parts = []
    for name in ("pytensor", "theano"):
        # the C backends link their own BLAS (blas__ldflags); Numba's dot goes through NumPy's
        if engine in ("pytensor-c", "theano") and name in sys.modules:
            config = sys.modules[name].config
            try:
                flags = str(config.blas__ldflags)
            except AttributeError:                   # Theano 1.0 spells it config.blas.ldflags
                flags = str(getattr(getattr(config, "blas", None), "ldflags", "?"))
            parts.append(f"{name} blas__ldflags={flags or '(none: slow fallback)'}")
            cxx = getattr(config, "gcc__cxxflags", None)
            if cxx:
                parts.append(f"{name} gcc__cxxflags={cxx}")
            if name == "pytensor":  # buffers kept between calls or not: a speed fact as well
                parts.append(f"pytensor allow_gc={config.allow_gc}")
    if engine == "pytensor-c":       # how the thread pools idle (engines.pytensor_runtime)
        parts += [f"{k}={os.environ.get(k, '(unset)')}"
                  for k in ("OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT")]
    parts.append(f"numpy {_numpy_blas()}")
    return "; ".join(parts)


def _numpy_blas() -> str:
    import numpy as np
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # NumPy < 1.25 has no mode="dicts"
        for name in ("blas_opt_info", "blas_ilp64_opt_info"):
            info = getattr(np.__config__, name, None)
            if info and info.get("libraries"):
                return ",".join(dict.fromkeys(info["libraries"]))
        return "?"


def _torch_blas() -> str:
    import re
    import torch
    match = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    return match.group(1) if match else "?"
