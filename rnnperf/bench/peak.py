"""The worker's side of the machine facts: its peak matrix-product rate and its BLAS.

Run inside the worker that already built the engine, in the *same* array library, dtype and
device as the engine (the registry's :attr:`~rnnperf.engines.registry.EngineSpec.peak_library`),
so a peak fraction compares like with like.
"""

from __future__ import annotations

import os
import sys
import time

from ..engines.registry import get as spec_of
from .flops import matmul_flops


def _numpy_matmul(n: int, dtype: str, device: str):
    import numpy as np
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    return lambda: a @ b


def _torch_matmul(n: int, dtype: str, device: str):
    import torch
    dev = torch.device("cuda", int(device[4:] or 0)) if device.startswith("cuda") else "cpu"
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen, dtype=getattr(torch, dtype)).to(dev)
    b = torch.randn(n, n, generator=gen, dtype=getattr(torch, dtype)).to(dev)
    sync = torch.cuda.synchronize if dev != "cpu" else (lambda: None)

    def step():
        c = a @ b
        sync()
        return c
    return step


def _jax_matmul(n: int, dtype: str, device: str):
    import jax
    import jax.numpy as jnp
    key_a, key_b = jax.random.split(jax.random.PRNGKey(0))
    a = jax.random.normal(key_a, (n, n), dtype=dtype)
    b = jax.random.normal(key_b, (n, n), dtype=dtype)
    mm = jax.jit(jnp.matmul)
    return lambda: mm(a, b).block_until_ready()


_MATMULS = {"numpy": _numpy_matmul, "torch": _torch_matmul, "jax": _jax_matmul}


def peak_gflops(engine: str, dtype: str, device: str = "cpu", target_s: float = 0.03,
                max_n: int = 8192, repeats: int = 5,
                min_n: int = 1024) -> tuple[float, int, str]:
    """Best-of-``repeats`` rate of a square matmul sized so one product lasts ``target_s``.

    Returns ``(gflops, n, library)``. Doubles ``n`` from 256 until one product takes
    ``target_s`` (about 1024 on a laptop core in float32), so a GPU gets a size that fills it,
    and reports the best rate seen at any size from 256 up (at least ``min_n``).
    """
    library = spec_of(engine).peak_library
    make = _MATMULS[library]
    n, best_rate, best_n = 256, 0.0, 256
    while True:
        step = make(n, dtype, device)
        step()                                       # first call: JIT, allocation, BLAS init
        # Best of a few at every size, and the best size wins: a shared machine only ever makes
        # a product slower, and one slow product must not stop the search at a small n.
        best = min(_once(step) for _ in range(repeats))
        rate = matmul_flops(n) / best / 1e9
        if rate > best_rate:
            best_rate, best_n = rate, n
        if (best >= target_s and n >= min_n) or n * 2 > max_n:
            return best_rate, best_n, library
        n *= 2


def _once(step) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


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
        if engine == "pytensor-c":   # how the thread pools idle (engines.pytensor_runtime)
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
