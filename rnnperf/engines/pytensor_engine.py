"""``pytensor-c``, ``pytensor-numba``, ``pytensor-pytorch`` (and the base of ``pytensor-jax``): the
seed graph on PyTensor, Theano's maintained successor, one engine per backend (its ``mode``).

What must precede PyTensor's import (the profile as ``PYTENSOR_FLAGS``, the C backend's defaults,
JAX's and torch's own settings) is in :mod:`.pytensor_runtime`, :mod:`.jax_runtime` and
:mod:`.torch_runtime`. Backend notes:

* C (``mode=CVM``): its default formulation is ``fused`` (:mod:`rnnperf.model.fused`; GRU and
  LSTM: ``rnnperf.model.fused_cells`` in :mod:`rnnperf.model.hoisted_cells`' graph);
* JAX: its Scan conversion needs the trip count at trace time and one floatX throughout, so each
  input shape gets its own graph with static shapes (:mod:`.pytensor_jax_engine`);
* PyTorch: PyTensor 3.0-3.3 has no Scan conversion for this backend;
  :mod:`rnnperf.model.pytorch_dispatch` registers ours before the first compile. Its linker
  converts every input and output between NumPy and torch at every call, so the engine holds
  the parameters as tensors on the device and calls the torch function behind each compiled
  function itself (:class:`TorchCall`).
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
                # What the converted graph creates itself (its constants, converted once by
                # `pytorch_typify`, and `torch.empty` buffers) names no device: without a default
                # device they would sit on the CPU beside the parameters on the GPU.
                import torch
                torch.set_default_device(self.torch_device)
        self.import_libraries(self.config)
        from pytensor.compile.mode import get_mode
        self.mode = get_mode(self.backend)
        self._params: dict = {}           # PyTorch: the parameters, tensors on self.torch_device
        self._torch_calls: dict = {}      # PyTorch: compiled function -> its TorchCall
        super().setup()

    def make_lib(self):
        import pytensor
        import pytensor.tensor as pt

        def scan(fn, **kwargs):
            return pytensor.scan(fn, return_updates=False, **kwargs)

        def tensor(name, dtype, shape):
            return pt.tensor(name, dtype=dtype, shape=shape)

        from ..model.hoisted import pytensor_hoisted_recurrence
        from ..model.hoisted_cells import pytensor_hoisted_cells
        fused = functools.partial(pytensor_hoisted_recurrence, fused=True)
        fused_cells = functools.partial(pytensor_hoisted_cells, fused=True)
        c_backend = self.backend == "CVM"
        return GraphLib(T=pt, scan=scan, grad=pytensor.grad, shared=self._make_shared,
                        tensor=tensor, hoisted_scan=pytensor_hoisted_recurrence,
                        fused_scan=fused if c_backend else None, sigmoid=pt.sigmoid,
                        hoisted_cells=pytensor_hoisted_cells,
                        fused_cells=fused_cells if c_backend else None)

    def _make_shared(self, value, name):
        import pytensor
        return pytensor.shared(value, name=name)

    def compile(self, inputs, outputs, updates=None):
        import pytensor
        return pytensor.function(inputs, outputs, updates=updates or [], mode=self.mode,
                                 on_unused_input="ignore")

    # --- PyTorch: parameters and inputs held as tensors on the device ---------------------------
    def function(self, name: str, x):
        """PyTorch: the compiled function's torch graph, run by a :class:`TorchCall` on the
        parameters held here (other backends: PyTensor's function itself)."""
        return self.runnable(super().function(name, x))

    def runnable(self, fn):
        """PyTorch: a :class:`TorchCall` of ``fn`` (one per function), which runs it on device
        tensors; other backends call PyTensor's function itself."""
        if self.backend != "PYTORCH":
            return fn
        if fn not in self._torch_calls:
            self._torch_calls[fn] = TorchCall(self, fn)
        return self._torch_calls[fn]

    def set_params(self, params):
        """PyTorch: the parameters are copied onto the device and held here, because PyTensor's
        linker would otherwise convert the shared variables' NumPy storage at every call (and
        turn the updates back into NumPy). The shared variables still take the values: they are
        what the graph is built on (shapes and dtypes), but the compiled functions never read
        them, so after a step they are stale."""
        super().set_params(params)
        if self.backend == "PYTORCH":
            import torch
            self._params = {k: torch.tensor(np.asarray(params[k], dtype=self.dtype),
                                            device=self.torch_device)
                            for k in self.param_names}

    def get_params(self):
        if self.backend != "PYTORCH":
            return super().get_params()
        return {k: np.array(self.to_host(v), dtype=self.dtype) for k, v in self._params.items()}

    def place_inputs(self, args):
        """PyTorch: the runner's inputs as tensors on the device, placed once (copies: on the
        CPU ``as_tensor`` would share the caller's arrays); a :class:`TorchCall` passes tensors
        through unconverted."""
        if self.backend != "PYTORCH":
            return args
        import torch
        return [torch.tensor(np.asarray(a), device=self.torch_device) for a in args]

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
        """Read from the arrays themselves: the shared parameter storage (C and Numba: NumPy, the
        host); PyTorch: the parameter tensors held here, which every step reads and replaces."""
        if self.backend == "PYTORCH":
            return array_device(self._params["Why"])
        return array_device(self._shared["Why"].get_value(borrow=True))

    # --- the peak probe ------------------------------------------------------------------------
    def place_operand(self, value):
        """PyTorch: a tensor on the engine's device, which :meth:`runnable`'s
        :class:`TorchCall` takes as it is (the product stays on the device too)."""
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
            return "pytensor PYTORCH", (f"torch.matmul on {self.device_actual()}; run on "
                                        "device tensors, as the step")
        return f"pytensor {self.backend}", "?"


class TorchCall:
    """One compiled PyTorch-mode function, run on device tensors: the parameters held by the
    engine go in and the updated ones come back without visiting the host.

    PyTensor's ``PytorchLinker`` jits the graph as one function of plain tensors and wraps it
    (``fn.vm.jit_fn``: ``torch.compile``-d function in ``.fn``, generated helpers in
    ``.gen_functors``) in a call that applies ``torch.as_tensor`` to every input and returns
    ``out.cpu().numpy()`` for every output; ``Function.__call__`` then writes the updates into
    the shared variables' storage as NumPy. So each call of the function itself copies the
    inputs and all five parameters to the device and every output and update back. This calls
    the torch function itself, in the linker's calling convention (the one the function cache
    exports for JAX, :mod:`rnnperf.engines.function_cache`): the inputs, then the shared
    variables in ``fgraph.inputs`` order; back come the outputs, then the new values of the
    shared variables in ``fgraph.update_mapping`` order, written into the engine's tensors.
    """

    def __init__(self, engine: PyTensorEngine, fn):
        from pytensor.compile.sharedvalue import SharedVariable
        from pytensor.link.pytorch.linker import PytorchLinker
        linker = fn.maker.linker
        if not isinstance(linker, PytorchLinker):
            raise TypeError(f"TorchCall needs a PYTORCH-mode function, not {type(linker)}")
        fgraph = linker.fgraph
        n_inputs = sum(not isinstance(v, SharedVariable) for v in fgraph.inputs)
        shared = fgraph.inputs[n_inputs:]
        if not all(isinstance(v, SharedVariable) for v in shared):
            raise RuntimeError("TorchCall: the shared variables are not the trailing inputs")
        mapping = fgraph.update_mapping or {}          # output index -> input index
        n_outputs = len(fgraph.outputs) - len(mapping)
        if sorted(mapping) != list(range(n_outputs, len(fgraph.outputs))):
            raise RuntimeError("TorchCall: the updates are not the trailing outputs")
        self.engine, self.fn = engine, fn
        self.params = [v.name for v in shared]
        self.updates = [fgraph.inputs[mapping[i]].name for i in range(n_outputs,
                                                                       len(fgraph.outputs))]
        self.n_outputs, self.single = n_outputs, bool(fn.unpack_single)
        wrapper = fn.vm.jit_fn
        self.torch_fn, self.functors = wrapper.fn, list(wrapper.gen_functors)

    def __call__(self, *args):
        """The NumPy interface's call: NumPy arguments are copied to the device (tensors, such
        as :meth:`PyTensorEngine.place_inputs` makes, pass as they are)."""
        import torch
        device = self.engine.torch_device
        return self.run(*(a if isinstance(a, torch.Tensor) else torch.as_tensor(a, device=device)
                          for a in args))

    def run(self, *tensors):
        """The torch function on ``tensors`` and the held parameters; outputs stay tensors."""
        import pytensor.link.utils as utils
        params = self.engine._params
        # what the linker's wrapper does around its call: the generated helpers the compiled
        # code looks up as attributes of pytensor.link.utils
        for name, functor in self.functors:
            setattr(utils, name[1:], functor)
        try:
            out = self.torch_fn(*tensors, *(params[k] for k in self.params))
        finally:
            for name, _ in self.functors:
                if getattr(utils, name[1:], False):
                    delattr(utils, name[1:])
        for k, value in zip(self.updates, out[self.n_outputs:]):
            params[k] = value
        return out[0] if self.single else list(out[:self.n_outputs])


def _scipy_blas() -> str:
    try:
        import scipy
        blas = scipy.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # an older SciPy: a fact for the record, not worth failing over
        return "?"
