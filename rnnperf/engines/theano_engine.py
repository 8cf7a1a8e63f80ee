"""``theano``: the seed graph on legacy Theano 1.0.5, the library the tutorial was written for.

This module runs *inside* the legacy venv's interpreter (Python 3.10, NumPy 1.23.5; see
:mod:`rnnperf.engines.legacy_venv`), started by the worker with this checkout on ``PYTHONPATH``; the
main environment never imports it. The graph is :func:`rnnperf.model.build_seed_graph`, unchanged:
Theano and PyTensor differ only in module names and in how a typed input is declared, which
:meth:`TheanoEngine.make_lib` absorbs.

Theano reads ``THEANO_FLAGS`` once, at import, so the profile's passthrough keys, ``floatX``,
``blas.ldflags`` (Theano 1.0.5 fails to import without one on modern NumPy) and ``device=cpu``
are set first. GPUs need ``pygpu``/libgpuarray, which is not on
PyPI and no longer builds against current CUDA, so ``device=cuda`` is refused before anything is
imported.
"""

from __future__ import annotations

import importlib.metadata
import platform
import sys

import numpy as np

from ..errors import ConfigError, Unavailable
from ..model.graph import GraphLib
from .devices import array_device
from .graph_engine import GraphEngine

# The profile's mode= is PyTensor's vocabulary; these all mean Theano's default FAST_RUN + CVM.
_THEANO_MODES = ("FAST_RUN", "CVM", "C", "C_VM")


class TheanoEngine(GraphEngine):
    """The seed graph compiled by Theano 1.0.5's own C backend (mode=FAST_RUN)."""

    def __init__(self, config, *args, **kwargs):
        if config.wants_gpu:
            raise Unavailable(f"engine theano cannot honour device={config.device}: Theano's GPU "
                              "backend needs pygpu/libgpuarray, and pygpu is not on PyPI; "
                              "not falling back to the CPU")
        super().__init__(config, *args, **kwargs)

    @classmethod
    def versions(cls):
        # From package metadata: importing Theano here would read THEANO_FLAGS before setup().
        out = {"python": platform.python_version(), "numpy": np.__version__}
        try:
            out["theano"] = importlib.metadata.version("Theano")
        except importlib.metadata.PackageNotFoundError:
            out["theano"] = "not installed"
        return out

    @classmethod
    def import_libraries(cls, config):
        """Check mode=, set ``THEANO_FLAGS`` from the profile and import Theano (once)."""
        from .legacy_venv import import_theano
        mode = config["mode"]
        if mode and mode not in _THEANO_MODES:
            raise ConfigError(f"flags: mode={mode} is a PyTensor backend; engine=theano runs "
                              "Theano's own C backend (mode=FAST_RUN)")
        flags = dict(config.passthrough())
        flags["floatX"] = config.floatX
        flags["device"] = "cpu"
        try:
            return import_theano(flags)
        except ImportError as exc:
            raise Unavailable(f"engine theano: cannot import Theano in {sys.executable}: "
                              f"{exc}") from None

    def setup(self):
        self.theano = self.import_libraries(self.config)
        self.blas_ldflags = str(self.theano.config.blas.ldflags)
        super().setup()

    def make_lib(self):
        theano = self.theano
        T = theano.tensor

        def scan(fn, **kwargs):
            outputs, _updates = theano.scan(fn, **kwargs)
            return outputs

        def tensor(name, dtype, shape):
            # Theano types know only which axes broadcast, not static lengths.
            return T.TensorType(dtype, (False,) * len(shape))(name)

        # GRU and LSTM: Theano 1.0.5 keeps sigmoid in theano.tensor.nnet
        return GraphLib(T=T, scan=scan, grad=theano.grad, shared=theano.shared, tensor=tensor,
                        sigmoid=T.nnet.sigmoid)

    def compile(self, inputs, outputs, updates=None):
        return self.theano.function(inputs, outputs, updates=updates or [],
                                    on_unused_input="ignore")

    def uses_c_scan(self) -> bool:
        """Whether Theano's Cython scan loop is importable (it is not on Python >= 3.11)."""
        try:
            from theano.scan_module import scan_perform_ext  # noqa: F401
        except ImportError:
            return False
        return True

    def device_actual(self) -> str:
        return array_device(self._shared["Why"].get_value(borrow=True))

    def matmul_origin(self):
        return "theano FAST_RUN", f"blas.ldflags={self.blas_ldflags or '(none)'}"
