"""``pytensor-jax``: the seed graph on PyTensor's JAX backend, with rnnperf's function cache.

With ``function_cache=True`` (the default) each compiled function is looked up in
:mod:`rnnperf.function_cache` first; only a miss imports PyTensor, builds the graph and compiles
it, then exports and stores the result. Either way the engine then calls the *exported* function
itself, in the calling convention of PyTensor's JAX linker: the inputs, then the parameters it
reads; back come the outputs, then the new values of the parameters it updates. So the
parameters live here, as device arrays of the default device (the one ``configure_jax`` picked),
instead of in PyTensor's shared variables, and never visit the host between steps.

With ``function_cache=False`` (or without flatbuffers, which serialisation needs) this is
:class:`~rnnperf.engines.pytensor_engine.PyTensorEngine` unchanged: PyTensor compiles in every
process and its own compiled functions run. :attr:`function_cache` says which it was: ``hit``
(every function loaded), ``miss`` (one at least compiled and stored), ``off`` or ``unavailable``.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from .. import function_cache
from ..model import PARAM_NAMES
from .graph_engine import GraphEngine
from .pytensor_engine import PyTensorEngine, array_device, quiet_jax_conversion_warnings


def cache_state(config) -> str:
    """``on``, ``off`` (the profile says so) or ``unavailable`` (this environment cannot)."""
    if config.get("function_cache", "True") == "False":
        return "off"
    return "unavailable" if function_cache.unavailable_reason() else "on"


class PyTensorJaxEngine(PyTensorEngine):
    _state: str | None = None         # on, off or unavailable (cache_state), set by setup()

    @classmethod
    def import_libraries(cls, config):
        if cache_state(config) != "on":
            return super().import_libraries(config)
        # PyTensor is imported on a miss only (timed into late_import_s); its flags are in
        # PYTENSOR_FLAGS by then
        cls.configure(config)
        import flatbuffers  # noqa: F401  (what jax.export's (de)serialiser imports late)
        from jax import export  # noqa: F401

    def setup(self):
        self._state = cache_state(self.config)
        if self._state == "unavailable":
            print(f"rnnperf: function cache off: {function_cache.unavailable_reason()}",
                  file=sys.stderr)
        if not self.cached:
            return super().setup()
        self.backend = "JAX"
        self.static_shapes = True
        quiet_jax_conversion_warnings()
        self.import_libraries(self.config)
        self.formulation = self.config.get("formulation", "seed")
        self.lib = None                       # PyTensor's side, built on the first miss
        self._params: dict = {}
        self._calls: dict[tuple, Call] = {}
        self._sources: list[str] = []

    @property
    def cached(self) -> bool:
        return self._state == "on"

    @property
    def function_cache(self) -> str | None:
        if not self.cached:
            return self._state
        return "miss" if "miss" in self._sources else ("hit" if self._sources else None)

    # --- parameters: device arrays held here ----------------------------------------------------
    def set_params(self, params):
        if not self.cached:
            return super().set_params(params)
        import jax
        # a private host copy: on the CPU device_put may alias the buffer it is given
        self._params = {k: jax.device_put(np.array(params[k], dtype=self.dtype))
                        for k in PARAM_NAMES}

    def get_params(self):
        if not self.cached:
            return super().get_params()
        return {k: np.array(v, dtype=self.dtype) for k, v in self._params.items()}

    def device_actual(self) -> str:
        if not self.cached:
            return super().device_actual()
        return array_device(self._params["Whh"])

    # --- compiled functions ----------------------------------------------------------------------
    def function(self, name: str, x):
        if not self.cached:
            return super().function(name, x)
        return lambda *args: self.call(name, x, args)(*args)

    def runner(self, task, x, y, lengths, lr=0.01):
        if not self.cached:
            return super().runner(task, x, y, lengths, lr)
        import jax
        train = task == "train"
        x, args = self._args(x, y if train else None, lengths, lr if train else None)
        fn = self.call("train" if train else "forward", x, args)
        args = [jax.device_put(a) for a in args]        # the data, placed once
        return lambda: self.sync(fn(*args))

    def call(self, name: str, x, args) -> "Call":
        """The function ``name`` for these arguments: loaded, or compiled and stored."""
        signature = [(np.shape(a), np.asarray(a).dtype.name) for a in args]
        key = (name, tuple((tuple(s), d) for s, d in signature))
        if key not in self._calls:
            params = {k: (v.shape, v.dtype.name) for k, v in self._params.items()}
            description = function_cache.describe(self.config, name, signature, params)
            entry = function_cache.load(description, len(args))
            if entry is None:
                entry = self._export(name, x, signature, description)
            self._sources.append("miss" if entry.stored else "hit")
            self._calls[key] = Call(self, entry)
        return self._calls[key]

    def _export(self, name, x, signature, description) -> "function_cache.Entry":
        """Compile with PyTensor, export, store; the entry returned is the stored one read back,
        so this process runs what later ones will."""
        import jax
        self._pytensor_side()
        fn = GraphEngine.function(self, name, x)
        avals = [jax.ShapeDtypeStruct(s, d) for s, d in signature]
        avals += [jax.ShapeDtypeStruct(v.get_value(borrow=True).shape, v.dtype)
                  for v in fn.maker.linker.fgraph.inputs[len(signature):]]
        entry = function_cache.from_pytensor(fn, len(signature), avals)
        entry.exported = function_cache.deserialize(function_cache.store(description, entry))
        entry.stored = True
        return entry

    def _pytensor_side(self) -> None:
        """Import PyTensor and make the shared variables the graph is built on (their values
        are only the parameters' shapes and dtypes: the compiled function never reads them)."""
        if self.lib is not None:
            return
        start = time.perf_counter()
        import pytensor  # noqa: F401
        from pytensor.compile.mode import get_mode
        self.late_import_s += time.perf_counter() - start
        self.mode = get_mode(self.backend)
        GraphEngine.setup(self)
        GraphEngine.set_params(self, self.get_params())


class Call:
    """One exported function, run with the engine's parameters; updates go back to the engine."""

    def __init__(self, engine: PyTensorJaxEngine, entry):
        import jax
        self.engine, self.entry = engine, entry
        self.jitted = jax.jit(entry.exported.call)

    def __call__(self, *args):
        entry, params = self.entry, self.engine._params
        out = self.jitted(*args, *(params[k] for k in entry.params))
        for k, value in zip(entry.updates, out[entry.n_outputs:]):
            params[k] = value
        return out[0] if entry.single else list(out[:entry.n_outputs])
