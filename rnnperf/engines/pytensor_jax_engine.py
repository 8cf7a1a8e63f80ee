"""``pytensor-jax``: the seed graph on PyTensor's JAX backend, compiled by PyTensor in-process.

This is the engine as PyTensor runs it, for a profile with ``function_cache=False`` or a machine
without flatbuffers (:attr:`function_cache` says ``off`` or ``unavailable``). Otherwise the
registry's ``pytensor-jax`` is :class:`~rnnperf.engines.cached_jax_engine.CachedJaxEngine`,
which loads the exported functions of an earlier process and uses this engine only to compile
what the cache lacks (``hit`` or ``miss``).

JAX's Scan conversion needs the trip count at trace time and one floatX throughout, so each input
shape gets its own graph with static shapes; JAX's persistent compilation cache
(:func:`rnnperf.engines.jax_runtime.configure_jax`) saves the XLA step across processes.
"""

from __future__ import annotations

import sys

import numpy as np

from . import function_cache
from .devices import array_device
from .jax_runtime import quiet_jax_conversion_warnings
from .pytensor_engine import PyTensorEngine


class PyTensorJaxEngine(PyTensorEngine):
    """PyTensor's own compiled JAX functions, shared variables holding the parameters."""

    static_shapes = True

    @property
    def function_cache(self) -> str | None:
        return function_cache.state(self.config)

    def setup(self):
        if self.function_cache == "unavailable":
            print(f"rnnperf: function cache off: {function_cache.unavailable_reason()}",
                  file=sys.stderr)
        quiet_jax_conversion_warnings()
        super().setup()

    def sync(self, value):
        import jax
        jax.block_until_ready(value)
        return value

    def device_actual(self) -> str:
        """Read from the shared parameter storage (or the last JAX output) itself."""
        value = self._shared["Whh"].get_value(borrow=True)
        if isinstance(value, np.ndarray):
            # Until the first call the shared variable holds the NumPy value it was given; JAX
            # moves it to its default device (the one configure_jax picked) at that call.
            import jax
            return array_device(jax.device_put(value))
        return array_device(value)

    # --- the peak probe: PyTensor's JAX-mode dot, operands on the default device ---------------
    def place_operand(self, value):
        import jax
        return jax.device_put(value)

    def matmul_origin(self):
        return "pytensor JAX", f"jax.numpy.dot on {self.device_actual()}"
