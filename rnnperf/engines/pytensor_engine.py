"""``pytensor-c``, ``pytensor-numba``, ``pytensor-jax``, ``pytensor-pytorch``: the seed graph on
PyTensor, Theano's maintained successor, one engine per backend (its ``mode``).

PyTensor reads its configuration when it is imported (``PYTENSOR_FLAGS``), so the profile's
passthrough keys are turned into that variable *before* the import; a process that already
imported PyTensor can only change the flags PyTensor allows to change at run time.

Backend notes (each measured, see docs/performance.md):

* C (``mode=CVM``): PyTensor links no BLAS by default (``blas__ldflags`` empty, ~3.5x slower);
  when the profile does not set ``blas.ldflags`` we link OpenBLAS if the system has it and record
  what was linked; ``gcc.cxxflags`` defaults to :func:`vector_math_cxxflags` (vectorised tanh)
  and ``allow_gc`` to False (buffers kept between calls). Its default formulation is ``fused``.
* JAX: its Scan conversion needs the trip count at trace time and one floatX throughout, so each
  input shape gets its own graph with static shapes; JAX's persistent compilation cache lives in
  the user cache directory so the XLA compile is paid once per machine, and
  :mod:`rnnperf.engines.pytensor_jax_engine` keeps the exported functions themselves
  (:mod:`rnnperf.function_cache`) so PyTensor's graph build and rewrites are too.
* PyTorch: PyTensor 3.0-3.3 has no Scan conversion for this backend; :mod:`rnnperf.pytorch_scan`
  registers ours before the first compile.
"""

from __future__ import annotations

import ctypes.util
import functools
import importlib.metadata
import os
import platform
import sys

import numpy as np

from ..errors import ConfigError, Unavailable
from ..flags import ENGINE_MODE
from ..model import GraphLib
from .base import user_cache_dir
from .graph_engine import GraphEngine


def detect_blas_ldflags() -> str:
    """``-lopenblas`` where the system has OpenBLAS, else empty (PyTensor's own default)."""
    return "-lopenblas" if ctypes.util.find_library("openblas") else ""


def vector_math_cxxflags() -> str:
    """``-D__FAST_MATH__`` on x86-64 glibc, else empty.

    glibc's ``<math.h>`` declares its SIMD variants of ``tanhf``, ``expf``, ... (libmvec) only
    under ``__FAST_MATH__``; with them declared gcc vectorises PyTensor's contiguous elementwise
    loops over those functions (``tanh`` of a 32x256 float32 block: 87 -> 6 us, the recurrence's
    step at RW). Unlike ``-ffast-math`` this changes no arithmetic: NaN/Inf handling, rounding
    and evaluation order stay IEEE; libmvec's results are within 4 ulp (checked by parity).
    """
    if platform.machine() in ("x86_64", "AMD64") and platform.libc_ver()[0] == "glibc":
        return "-D__FAST_MATH__"
    return ""


def c_thread_env(config) -> dict[str, str]:
    """Idle threads that sleep, for ``formulation=fused``: two thread pools on the same cores.

    OpenBLAS's threads (the big GEMMs) spin after each call and OpenMP's (the fused kernels,
    :mod:`rnnperf.fused_recurrence`) spin after each parallel region; each pool's spinning took
    the other's core (RW train step, fused: 19-20 ms; OMP_WAIT_POLICY=PASSIVE alone 14.5 ms;
    with OPENBLAS_THREAD_TIMEOUT=4 as well, 2^4 cycles of spinning, 10.1 ms). Both are read when
    the libraries load, which is after PyTensor's import; the user's own values win. The scan
    formulations keep OpenBLAS's default: their 200 small in-loop GEMMs per RW train step want
    its threads awake (hoisted: 16-18 -> 23 ms with the short timeout).
    """
    if config["formulation"] != "fused":
        return {}
    return {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "4"}


def pytensor_flags(config) -> dict[str, str]:
    """PyTensor config names (``blas__ldflags``) for this profile, with our C defaults."""
    flags = {k.replace(".", "__"): v for k, v in config.passthrough().items()}
    flags["floatX"] = config.floatX
    if config.engine == "pytensor-c":
        if "blas__ldflags" not in flags:
            flags["blas__ldflags"] = detect_blas_ldflags()
        if "gcc__cxxflags" not in flags:
            flags["gcc__cxxflags"] = vector_math_cxxflags()
        if "allow_gc" not in flags:
            # Theano's own speed advice: keep intermediate buffers between calls. Freed, each
            # call re-allocates them (MBs at RW) and pays the page faults of fresh memory:
            # 21 -> 16 ms per RW train step (hoisted), 19 -> 12.5 ms (fused); costs their RAM.
            flags["allow_gc"] = "False"
    return flags


def apply_pytensor_flags(flags: dict[str, str]) -> None:
    """Set flags before PyTensor's import, or at run time where it is already imported."""
    if "pytensor" not in sys.modules:
        current = os.environ.get("PYTENSOR_FLAGS", "")
        extra = ",".join(f"{k}={v}" for k, v in flags.items())
        os.environ["PYTENSOR_FLAGS"] = ",".join(p for p in (current, extra) if p)
        return
    import pytensor
    for key, value in flags.items():
        try:
            if str(getattr(pytensor.config, key)) != value:
                setattr(pytensor.config, key, value)
        except AttributeError:
            raise ConfigError(f"flags: PyTensor has no config key {key.replace('__', '.')!r}") \
                from None
        except Exception:
            raise ConfigError(f"flags: {key.replace('__', '.')} is read when PyTensor is "
                              "imported; set it in a fresh process (rnnperf runs workers)") \
                from None


def jax_cache_dir() -> str:
    return user_cache_dir("jax")


def configure_jax(config) -> None:
    """Pick JAX's platform from device= (never a silent CPU fallback) and turn its cache on."""
    if config.wants_gpu:
        os.environ.setdefault("JAX_PLATFORMS", "cuda")
    else:
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
    if config.threads and "jax" not in sys.modules:
        # XLA ignores OMP_NUM_THREADS: pin its own pools, so threads= is what really ran.
        flags = [f"--xla_cpu_multi_thread_eigen={'false' if config.threads == 1 else 'true'}",
                 f"intra_op_parallelism_threads={config.threads}"]
        os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", "")] + flags).strip()
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
        except RuntimeError:
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


def configure_torch(config):
    import torch
    if config.threads:
        torch.set_num_threads(config.threads)
    if config.wants_gpu:
        if not torch.cuda.is_available() or torch.cuda.device_count() <= config.device_index:
            raise Unavailable(f"device={config.device}: torch sees no such CUDA device; not "
                              "falling back to the CPU")
        return torch.device("cuda", config.device_index)
    return torch.device("cpu")


class PyTensorEngine(GraphEngine):
    devices = ("cpu", "cuda")

    def __init__(self, config, *args, **kwargs):
        self.name = config.engine
        if config.engine in ("pytensor-c", "pytensor-numba"):
            self.devices = ("cpu",)
        super().__init__(config, *args, **kwargs)

    @classmethod
    def versions(cls):
        # from package metadata: a process that loads its functions from the function cache
        # never imports PyTensor (rnnperf.function_cache)
        return {"pytensor": importlib.metadata.version("pytensor")}

    @classmethod
    def configure(cls, config) -> None:
        """What must precede PyTensor's import: the backend library's settings, then the flags."""
        backend = ENGINE_MODE[config.engine]
        if backend == "JAX":
            configure_jax(config)
        elif backend == "PYTORCH":
            configure_torch(config)
        elif backend == "CVM":
            for name, value in c_thread_env(config).items():
                os.environ.setdefault(name, value)
        apply_pytensor_flags(pytensor_flags(config))

    @classmethod
    def import_libraries(cls, config):
        cls.configure(config)
        import pytensor  # noqa: F401
        from pytensor.compile.mode import get_mode  # noqa: F401
        if ENGINE_MODE[config.engine] == "PYTORCH":
            from .. import pytorch_scan  # noqa: F401  (registers our Scan conversion)

    def setup(self):
        self.backend = ENGINE_MODE[self.config.engine]
        self.flags = pytensor_flags(self.config)
        if self.backend == "JAX":
            self.static_shapes = True
            quiet_jax_conversion_warnings()
        elif self.backend == "PYTORCH":
            self.torch_device = configure_torch(self.config)
            if self.torch_device.type == "cuda":
                # PyTensor's PytorchLinker turns every input into `torch.as_tensor(ndarray)` and
                # every output back into NumPy, naming no device: without a default device a
                # device=cuda run would compute on the CPU. Parameters still cross the host
                # between calls (the linker's design), so device_actual() reads "cpu".
                import torch
                torch.set_default_device(self.torch_device)
        self.import_libraries(self.config)
        from pytensor.compile.mode import get_mode
        self.mode = get_mode(self.backend)
        super().setup()

    def make_lib(self):
        import pytensor
        import pytensor.tensor as pt

        def scan(fn, **kwargs):
            return pytensor.scan(fn, return_updates=False, **kwargs)

        def tensor(name, dtype, shape):
            return pt.tensor(name, dtype=dtype, shape=shape)

        from ..hoisted import pytensor_hoisted_recurrence
        fused = functools.partial(pytensor_hoisted_recurrence, fused=True)
        return GraphLib(T=pt, scan=scan, grad=pytensor.grad, shared=self._make_shared,
                        tensor=tensor, hoisted_scan=pytensor_hoisted_recurrence,
                        fused_scan=fused if self.backend == "CVM" else None)

    def _make_shared(self, value, name):
        import pytensor
        return pytensor.shared(value, name=name)

    def compile(self, inputs, outputs, updates=None):
        import pytensor
        return pytensor.function(inputs, outputs, updates=updates or [], mode=self.mode,
                                 on_unused_input="ignore")

    def to_host(self, value):
        if hasattr(value, "detach"):  # torch tensor from the PyTorch backend
            return value.detach().cpu().numpy()
        return np.asarray(value)

    def sync(self, value):
        if self.backend == "JAX":
            import jax
            jax.block_until_ready(value)
        elif self.backend == "PYTORCH" and self.config.wants_gpu:
            import torch
            torch.cuda.synchronize()
        return value

    def device_actual(self) -> str:
        """Read from the shared parameter storage (or the last JAX output) itself."""
        value = self._shared["Whh"].get_value(borrow=True)
        if self.backend == "JAX" and isinstance(value, np.ndarray):
            # Until the first call the shared variable holds the NumPy value it was given; JAX
            # moves it to its default device (the one configure_jax picked) at that call.
            import jax
            return array_device(jax.device_put(value))
        return array_device(value)


def array_device(value) -> str:
    """The device an array lives on, read from the array: ``cpu``, ``cuda:0``, ..."""
    if isinstance(value, np.ndarray):
        return "cpu"
    if hasattr(value, "devices"):  # jax.Array
        devs = sorted(value.devices(), key=str)
        dev = devs[0]
        kind = "cuda" if dev.platform in ("gpu", "cuda") else dev.platform
        return f"{kind}:{dev.id}" if kind != "cpu" else "cpu"
    if hasattr(value, "device"):  # torch.Tensor
        dev = value.device
        return "cpu" if dev.type == "cpu" else f"{dev.type}:{dev.index or 0}"
    return type(value).__name__
