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
                # between calls (the linker's design): device_actual() reads the tensors.
                import torch
                torch.set_default_device(self.torch_device)
        self.import_libraries(self.config)
        from pytensor.compile.mode import get_mode
        self.mode = get_mode(self.backend)
        self._torch_seen = None    # PyTorch: an empty tensor on the device the outputs were on
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
        fn = pytensor.function(inputs, outputs, updates=updates or [], mode=self.mode,
                               on_unused_input="ignore")
        if self.backend == "PYTORCH":
            self.watch_torch_outputs(fn)
        return fn

    def watch_torch_outputs(self, fn) -> None:
        """Have ``fn``'s next call note the device of the torch tensors it computes.

        PyTensor's PytorchLinker keeps no tensor: its ``jit_fn`` (``fn.vm.jit_fn``) runs the
        ``torch.compile``-d graph (its ``.fn``) on tensors made from the NumPy inputs and turns
        every output back into NumPy. So ``.fn`` is wrapped for one call, which keeps an empty
        tensor on its first output's device and puts the linker's own ``.fn`` back: the timed
        calls after it run PyTensor's path unchanged.
        """
        wrapper = fn.vm.jit_fn
        inner = wrapper.fn

        def first_call(*args, **kwargs):
            outs = inner(*args, **kwargs)
            wrapper.fn = inner
            tensor = next((o for o in outs or () if hasattr(o, "new_empty")), None)
            if tensor is not None:
                self._torch_seen = tensor.new_empty(0)
            return outs
        wrapper.fn = first_call

    def to_host(self, value):
        if hasattr(value, "detach"):  # torch tensor from the PyTorch backend
            return value.detach().cpu().numpy()
        return np.asarray(value)

    def sync(self, value):
        if self.backend == "PYTORCH" and self.torch_device.type == "cuda":
            import torch
            torch.cuda.synchronize(self.torch_device)
        return value

    def device_actual(self) -> str:
        """Read from the arrays themselves.

        C and Numba: the shared parameter storage (NumPy; the host). PyTorch: the storage is
        NumPy between calls on any device (the linker converts at every call), so it would say
        ``cpu`` even where the graph computes on a GPU; instead the device of the torch tensors
        a compiled function returned, on its first call, before the linker turned them into
        NumPy (:meth:`watch_torch_outputs`). Before any call, the device of the tensor the
        linker's own conversion (``pytorch_typify``, what every call applies to its inputs)
        makes of the parameter storage.
        """
        if self.backend != "PYTORCH":
            return array_device(self._shared["Whh"].get_value(borrow=True))
        if self._torch_seen is None:
            from pytensor.link.pytorch.dispatch import pytorch_typify
            return array_device(pytorch_typify(self._shared["Whh"].get_value(borrow=True)))
        return array_device(self._torch_seen)

    # --- the peak probe ------------------------------------------------------------------------
    def place_operand(self, value):
        """PyTorch: a tensor on the engine's device, which the linker's conversion passes
        through (only the product goes back to the host, as the linker does with any output)."""
        if self.backend == "PYTORCH":
            import torch
            return torch.as_tensor(value, device=self.torch_device)
        return value

    def matmul_origin(self):
        import pytensor
        if self.backend == "CVM":
            return "pytensor CVM", f"blas__ldflags={pytensor.config.blas__ldflags or '(none)'}"
        if self.backend == "NUMBA":
            return "pytensor NUMBA", f"Numba's np.dot: SciPy's cython_blas, {_scipy_blas()}"
        if self.backend == "PYTORCH":
            return "pytensor PYTORCH", (f"torch.matmul on {self.device_actual()}; "
                                        "product copied to host by the linker")
        return f"pytensor {self.backend}", "?"


def _scipy_blas() -> str:
    try:
        import scipy
        blas = scipy.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # an older SciPy: a fact for the record, not worth failing over
        return "?"
