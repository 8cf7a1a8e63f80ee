"""``pytensor-jax`` with its function cache: exported functions of an earlier process, loaded.

The registry's ``pytensor-jax`` class; a profile with ``function_cache=False`` (or a machine
without flatbuffers) is handed to :class:`~rnnperf.engines.pytensor_jax_engine.PyTensorJaxEngine`
by :meth:`CachedJaxEngine.variant_for`.

Each compiled function is looked up in :mod:`rnnperf.engines.function_cache` first; only a miss
imports PyTensor, has :class:`~rnnperf.engines.pytensor_jax_engine.PyTensorJaxEngine` build the
graph and compile it, then exports and stores the result. Either way this engine then calls the
*exported* function itself, in the calling convention of PyTensor's JAX linker: the inputs, then
the parameters it reads; back come the outputs, then the new values of the parameters it updates.
So the parameters live here, as device arrays of the default device (the one ``configure_jax``
picked), instead of in PyTensor's shared variables, and never visit the host between steps.
:attr:`function_cache` is ``hit`` (every function loaded) or ``miss`` (one at least compiled).
"""

from __future__ import annotations

import time

import numpy as np

from . import function_cache
from .base import matmul_operands
from .devices import array_device
from .graph_engine import FunctionEngine
from .jax_runtime import quiet_jax_conversion_warnings
from .pytensor_engine import PyTensorEngine
from .pytensor_jax_engine import PyTensorJaxEngine


class CachedJaxEngine(FunctionEngine):
    """The seed graph's functions as ``jax.export``-ed programs, parameters held as jax.Arrays."""

    static_shapes = True
    versions = PyTensorEngine.versions

    @classmethod
    def variant_for(cls, config) -> type:
        return cls if function_cache.state(config) == "on" else PyTensorJaxEngine

    @classmethod
    def import_libraries(cls, config):
        # PyTensor is imported on a miss only (timed into late_import_s); its flags are in
        # PYTENSOR_FLAGS by then
        PyTensorEngine.configure(config)
        import flatbuffers  # noqa: F401  (what jax.export's (de)serialiser imports late)
        from jax import export  # noqa: F401

    def setup(self):
        quiet_jax_conversion_warnings()
        self.import_libraries(self.config)
        self._compiler = None                 # a PyTensorJaxEngine, built on the first miss
        self._params: dict = {}
        self._calls: dict[tuple, Call] = {}
        self._sources: list[str] = []
        self._dot = None                      # the peak probe's jitted jnp.dot

    @property
    def function_cache(self) -> str | None:
        return "miss" if "miss" in self._sources else ("hit" if self._sources else None)

    # --- parameters: device arrays held here ----------------------------------------------------
    def set_params(self, params):
        import jax
        # a private host copy: on the CPU device_put may alias the buffer it is given
        self._params = {k: jax.device_put(np.array(params[k], dtype=self.dtype))
                        for k in self.param_names}

    def get_params(self):
        return {k: np.array(v, dtype=self.dtype) for k, v in self._params.items()}

    def device_actual(self) -> str:
        return array_device(self._params["Why"])

    def sync(self, value):
        import jax
        jax.block_until_ready(value)
        return value

    # --- the peak probe: never through PyTensor, which a hit does not import -------------------
    def matmul_step(self, n):
        """``jax.jit(jnp.dot)`` on the default device (where the parameters and the exported
        functions' data live), the operands placed there once."""
        import jax
        import jax.numpy as jnp
        if self._dot is None:
            self._dot = jax.jit(jnp.dot)
        a, b = (jax.device_put(v) for v in matmul_operands(n, self.dtype))
        dot = self._dot
        return lambda: jax.block_until_ready(dot(a, b))

    def matmul_label(self):
        return f"jax.numpy.dot (jit) on {self.device_actual()}"

    # --- compiled functions ----------------------------------------------------------------------
    def function(self, name: str, x):
        return lambda *args: self.call(name, x, args)(*args)

    def runner(self, task, x, y, lengths, lr=0.01):
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
        fn = self._compiler_engine().function(name, x)
        avals = [jax.ShapeDtypeStruct(s, d) for s, d in signature]
        avals += [jax.ShapeDtypeStruct(v.get_value(borrow=True).shape, v.dtype)
                  for v in fn.maker.linker.fgraph.inputs[len(signature):]]
        entry = function_cache.from_pytensor(fn, len(signature), avals)
        entry.exported = function_cache.deserialize(function_cache.store(description, entry))
        entry.stored = True
        return entry

    def _compiler_engine(self):
        """PyTensor's side: the in-process engine whose shared variables the graph is built on
        (their values are only the parameters' shapes and dtypes: the exported function takes
        the parameters as arguments)."""
        if self._compiler is None:
            start = time.perf_counter()
            import pytensor  # noqa: F401
            self.late_import_s += time.perf_counter() - start
            self._compiler = PyTensorJaxEngine(self.config, self.n_in, self.n_hidden, self.n_out,
                                               self.get_params())
        return self._compiler


class Call:
    """One exported function, run with the engine's parameters; updates go back to the engine."""

    def __init__(self, engine: CachedJaxEngine, entry):
        import jax
        self.engine, self.entry = engine, entry
        self.jitted = jax.jit(entry.exported.call)

    def __call__(self, *args):
        entry, params = self.entry, self.engine._params
        out = self.jitted(*args, *(params[k] for k in entry.params))
        for k, value in zip(entry.updates, out[entry.n_outputs:]):
            params[k] = value
        return out[0] if entry.single else list(out[:entry.n_outputs])
