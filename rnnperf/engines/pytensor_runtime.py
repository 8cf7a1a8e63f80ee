"""PyTensor set-up: the profile as ``PYTENSOR_FLAGS``, and rnnperf's defaults for the C backend.

PyTensor reads its configuration when it is imported (``PYTENSOR_FLAGS``), so the profile's
passthrough keys are turned into that variable *before* the import; a process that already
imported PyTensor can only change the flags PyTensor allows to change at run time.

For ``pytensor-c`` rnnperf fills three flags the profile leaves unset, each measured in
docs/performance.md ("What each lever gave"): ``blas.ldflags`` (PyTensor links no BLAS by default),
``gcc.cxxflags`` (:func:`vector_math_cxxflags`) and ``allow_gc=False``; and under
``formulation=fused`` it lets idle pool threads sleep (:func:`c_thread_env`).
"""

from __future__ import annotations

import os
import platform
import sys

from ..errors import ConfigError
from ..flags import format_flags
from ..host import openblas_ldflags


def vector_math_cxxflags() -> str:
    """``-D__FAST_MATH__`` on x86-64 glibc, else empty.

    glibc's ``<math.h>`` declares its SIMD variants of ``tanhf``, ``expf``, ... (libmvec) only
    under ``__FAST_MATH__``; with them declared gcc vectorises PyTensor's contiguous elementwise
    loops over those functions (the recurrence's tanh among them). Unlike ``-ffast-math`` this
    changes no arithmetic: NaN/Inf handling, rounding and evaluation order stay IEEE; libmvec's
    results are within 4 ulp (checked by parity).
    """
    if platform.machine() in ("x86_64", "AMD64") and platform.libc_ver()[0] == "glibc":
        return "-D__FAST_MATH__"
    return ""


def c_thread_env(config) -> dict[str, str]:
    """Idle threads that sleep, for ``formulation=fused``: two thread pools on the same cores.

    OpenBLAS's threads (the big GEMMs) spin after each call and OpenMP's (the fused kernels,
    :mod:`rnnperf.model.fused`) spin after each parallel region, and each pool's spinning takes
    the other's core; so both are told to sleep soon (docs/performance.md has the figures). Both
    are read when the libraries load, which is after PyTensor's import; the user's own values
    win. The scan formulations keep OpenBLAS's default: their many small in-loop GEMMs want its
    threads awake.
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
            flags["blas__ldflags"] = openblas_ldflags()
        if "gcc__cxxflags" not in flags:
            flags["gcc__cxxflags"] = vector_math_cxxflags()
        if "allow_gc" not in flags:
            # Theano's own speed advice: keep intermediate buffers between calls instead of
            # re-allocating them (and paying fresh pages) on every call; it costs their RAM.
            flags["allow_gc"] = "False"
    return flags


def apply_pytensor_flags(flags: dict[str, str]) -> None:
    """Set flags before PyTensor's import, or at run time where it is already imported."""
    if "pytensor" not in sys.modules:
        current = os.environ.get("PYTENSOR_FLAGS", "")
        extra = format_flags(flags)          # a value's comma quoted, as PyTensor's shlex reads it
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
