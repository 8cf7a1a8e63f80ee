"""JAX set-up shared by ``pytensor-jax`` and the ``jax`` peer: platform, threads, caches."""

from __future__ import annotations

import os
import sys

from ..errors import Unavailable
from ..host import user_cache_dir


def jax_cache_dir() -> str:
    return user_cache_dir("jax")


def configure_jax(config) -> None:
    """Pick JAX's platform from device= (never a silent CPU fallback) and turn its cache on."""
    if config.wants_gpu:
        os.environ.setdefault("JAX_PLATFORMS", "cuda")
    else:
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
    if config.threads == 1 and "jax" not in sys.modules:
        # XLA ignores OMP_NUM_THREADS and has no flag for its pool's size: the pool follows the
        # process's CPU affinity, which a worker pins (rnnperf.engines.threads). One thread also
        # turns Eigen's own pool off. Every XLA flag needs its leading "--": XLA's parser stops
        # at the first token without one (and JAX reads a lone one as a file name).
        flag = "--xla_cpu_multi_thread_eigen=false"
        os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", ""), flag]).strip()
    import jax
    jax.config.update("jax_enable_x64", config.floatX == "float64")
    try:
        jax.config.update("jax_compilation_cache_dir", jax_cache_dir())
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    except Exception:  # older JAX: the cache is an optimisation, not a requirement
        pass
    if config.wants_gpu:
        try:
            gpus = jax.devices("gpu")
        except Exception:
            # no CUDA backend: RuntimeError ("Unknown backend"), or under JAX_PLATFORMS=cuda a
            # bare AssertionError from the backend's initialisation (JAX 0.10)
            gpus = []
        if len(gpus) <= config.device_index:
            raise Unavailable(f"device={config.device}: JAX sees no such GPU "
                              f"({len(gpus)} found); not falling back to the CPU")
        jax.config.update("jax_default_device", gpus[config.device_index])


def quiet_jax_conversion_warnings() -> None:
    """Silence two warnings PyTensor's JAX linker prints on every compile of the seed graph.

    * ``Skipping Assert ... Could not broadcast``: the shape check of ``mask * h`` and similar,
      which JAX's tracing would drop anyway (shapes are static there).
    * ``Explicitly requested dtype float64``: PyTensor's ``Sum`` accumulates float32 in float64
      (``acc_dtype``); without ``jax_enable_x64`` JAX truncates it to float32 and says so. The
      result is float32 either way; parity with the oracle is checked in the tests.
    """
    import warnings
    warnings.filterwarnings("ignore", message="Skipping Assert", category=UserWarning)
    warnings.filterwarnings("ignore", message="Explicitly requested dtype float64",
                            category=UserWarning)
