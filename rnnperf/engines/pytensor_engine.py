"""``pytensor-c``, ``pytensor-numba``, ``pytensor-pytorch`` (and the base of ``pytensor-jax``): the
seed graph on PyTensor, Theano's maintained successor, one engine per backend (its ``mode``).

What must precede PyTensor's import (the profile as ``PYTENSOR_FLAGS``, the C backend's defaults,
JAX's and torch's own settings) is in :mod:`.pytensor_runtime`, :mod:`.jax_runtime` and
:mod:`.torch_runtime`. Backend notes:

* C (``mode=CVM``): its default formulation is ``fused`` (:mod:`rnnperf.model.fused`);
* JAX: its Scan conversion needs the trip count at trace time and one floatX throughout, so each
  input shape gets its own graph with static shapes (:mod:`.pytensor_jax_engine`);
* PyTorch: PyTensor 3.0-3.3 has no Scan conversion for this backend;
  :mod:`rnnperf.model.pytorch_dispatch` registers ours before the first compile.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os

import numpy as np

from ..model.graph import GraphLib
from .devices import array_device
from .graph_engine import GraphEngine
from .jax_runtime import configure_jax
from .pytensor_runtime import apply_pytensor_flags, c_thread_env, pytensor_flags
from .registry import get as spec_of
from .torch_runtime import configure_torch


class PyTensorEngine(GraphEngine):
    """The seed graph compiled by ``pytensor.function`` in the profile's backend mode."""

    @classmethod
    def versions(cls):
        # from package metadata: a process that loads its functions from the function cache
        # never imports PyTensor (rnnperf.engines.function_cache)
        return {"pytensor": importlib.metadata.version("pytensor")}

    @classmethod
    def configure(cls, config) -> None:
        """What must precede PyTensor's import: the backend library's settings, then the flags."""
        backend = spec_of(config.engine).mode
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
        if spec_of(config.engine).mode == "PYTORCH":
            from ..model import pytorch_dispatch  # noqa: F401  (registers our Scan conversion)

    def setup(self):
        self.backend = spec_of(self.config.engine).mode
        self.flags = pytensor_flags(self.config)
        if self.backend == "PYTORCH":
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

        from ..model.hoisted import pytensor_hoisted_recurrence
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
        if self.backend == "PYTORCH" and self.config.wants_gpu:
            import torch
            torch.cuda.synchronize()
        return value

    def device_actual(self) -> str:
        """Read from the shared parameter storage itself."""
        return array_device(self._shared["Whh"].get_value(borrow=True))
