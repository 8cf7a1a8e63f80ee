"""Facts about this host that several layers need, read without importing any engine.

* :func:`user_cache_dir`: where caches that outlive a process live (JAX's compilation cache, the
  pytensor-jax function cache, the legacy Theano venv);
* :func:`openblas_ldflags`: the BLAS link flags PyTensor's and Theano's C backends get when the
  profile names none;
* :func:`legacy_dir` and :func:`legacy_python`: the legacy Theano 1.0.5 venv and its interpreter,
  which the engine registry asks about (is ``theano`` available?) and the worker starts.

Standard library only: the legacy venv's Python 3.10 imports this module too.
"""

from __future__ import annotations

import ctypes.util
import os
from pathlib import Path

#: written last by ``rnnperf legacy setup``, so a half-built venv is never taken for a ready one
LEGACY_MARKER = ".rnnperf-ready"


def user_cache_dir(*parts: str) -> str:
    """``$XDG_CACHE_HOME/rnnperf/...`` (``~/.cache/rnnperf/...`` without it)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "rnnperf", *parts)


def openblas_ldflags() -> str:
    """``-lopenblas`` where the system has OpenBLAS, else empty (the backends' own default)."""
    return "-lopenblas" if ctypes.util.find_library("openblas") else ""


def legacy_dir() -> Path:
    """The legacy Theano venv: ``$RNNPERF_LEGACY_VENV``, else under :func:`user_cache_dir`."""
    return Path(os.environ.get("RNNPERF_LEGACY_VENV") or user_cache_dir("theano-venv"))


def legacy_python() -> str | None:
    """The legacy venv's interpreter if it has been built and has Theano, else None."""
    python = legacy_dir() / "bin" / "python"
    marker = legacy_dir() / LEGACY_MARKER
    return str(python) if python.exists() and marker.exists() else None
