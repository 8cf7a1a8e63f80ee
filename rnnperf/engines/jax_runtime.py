"""JAX set-up shared by ``pytensor-jax`` (cached or not) and the ``jax`` peer: platform,
threads, caches, matmul precision.

# Platform
``device=`` decides ``JAX_PLATFORMS``, whatever the environment says: a user whose shell exports
``JAX_PLATFORMS=cuda`` and who asks for ``device=cpu`` must get a CPU run (with the old
``setdefault`` pytensor-jax ran on the GPU and the ``jax`` peer's ``jax.devices("cpu")`` raised).
Where JAX was imported before (its config read the old variable) ``jax_platforms`` is updated
too; that takes effect as long as no backend has started, and a CPU run whose CPU backend JAX
can no longer start is refused (Unavailable) rather than run elsewhere.

# matmul_precision
JAX's default for float32 products (``jax_default_matmul_precision`` unset: ``Precision.DEFAULT``)
is TF32 on an A100/H100, and ignored on the CPU. So every run sets it, before anything is traced
(the setting is part of jit's cache key, so functions jitted earlier are traced again):

* ``float32``: ``"float32"`` (an alias of ``"highest"``: float32 products on a GPU);
* ``tf32``: ``"tensorfloat32"`` (an alias of ``"high"``: TF32 where the GPU has it);
* ``bf16``: ``"bfloat16"``, which jax/_src/lax/lax.py makes an alias of ``Precision.DEFAULT``:
  the fastest the platform offers, which on an A100/H100 is TF32, not bfloat16 (like torch's
  ``"medium"`` on CUDA). The one setting that would make bfloat16 operands, the dot-algorithm
  preset ``"BF16_BF16_F32"``, breaks compiles: XLA's elemental dot emitter refuses it (measured
  on the CPU: the jax peer's single-sequence gradient fails with "Algorithm not supported by the
  ElementalIrEmitter: ALG_DOT_BF16_BF16_F32"; XLA's GPU emitter has the same check), and it
  casts float64 operands to bfloat16 (measured: a float64 product off by 8e-2).

XLA's CPU backend ignores all three for float32 (measured: identical products and errors). Under
``floatX=float64`` the key is inert and ``"float32"`` is set, so nothing there depends on it. The
function cache's exported functions carry the precision they were traced with; its key holds
every profile value, this one too.
"""

from __future__ import annotations

import os
import sys

from ..errors import Unavailable
from ..host import user_cache_dir


def jax_cache_dir() -> str:
    return user_cache_dir("jax")


#: matmul_precision -> jax_default_matmul_precision (see the module's docstring)
JAX_PRECISION = {"float32": "float32", "tf32": "tensorfloat32", "bf16": "bfloat16"}


def jax_precision(config) -> str:
    """The ``jax_default_matmul_precision`` for the profile; ``"float32"`` under float64."""
    if config.floatX != "float32":
        return JAX_PRECISION["float32"]
    return JAX_PRECISION[config.get("matmul_precision", "float32")]


def configure_jax(config) -> None:
    """Pick JAX's platform from device= alone (never the environment, never a silent CPU
    fallback), set its matmul precision and turn its cache on; before anything compiles."""
    platform = "cuda" if config.wants_gpu else "cpu"
    os.environ["JAX_PLATFORMS"] = platform
    if config.threads == 1 and "jax" not in sys.modules:
        # XLA ignores OMP_NUM_THREADS and has no flag for its pool's size: the pool follows the
        # process's CPU affinity, which a worker pins (rnnperf.engines.threads). One thread also
        # turns Eigen's own pool off. Every XLA flag needs its leading "--": XLA's parser stops
        # at the first token without one (and JAX reads a lone one as a file name).
        flag = "--xla_cpu_multi_thread_eigen=false"
        os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", ""), flag]).strip()
    import jax
    if jax.config.jax_platforms != platform:   # imported earlier, under the old variable
        jax.config.update("jax_platforms", platform)
    jax.config.update("jax_enable_x64", config.floatX == "float64")
    jax.config.update("jax_default_matmul_precision", jax_precision(config))
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
    else:
        require_cpu_backend(jax)


def require_cpu_backend(jax) -> None:
    """Unavailable unless JAX can run on the CPU: where its backends started earlier in this
    process without one (``JAX_PLATFORMS=cuda`` at first use), device=cpu cannot be honoured."""
    try:
        jax.devices("cpu")
    except RuntimeError as exc:
        raise Unavailable("device=cpu: JAX started without its CPU backend earlier in this "
                          f"process ({exc}); not running elsewhere") from None


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
