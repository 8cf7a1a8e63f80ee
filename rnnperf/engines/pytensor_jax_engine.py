"""``pytensor-jax``: the seed graph on PyTensor's JAX backend, compiled by PyTensor in-process.

This is the engine as PyTensor runs it, for a profile with ``function_cache=False`` or a machine
without flatbuffers (:attr:`function_cache` says ``off`` or ``unavailable``). Otherwise the
registry's ``pytensor-jax`` is :class:`~rnnperf.engines.cached_jax_engine.CachedJaxEngine`,
which loads the exported functions of an earlier process and uses this engine only to compile
what the cache lacks (``hit`` or ``miss``).

JAX's Scan conversion needs the trip count at trace time and one floatX throughout, so each input
shape gets its own graph with static shapes; JAX's persistent compilation cache
(:func:`rnnperf.engines.jax_runtime.configure_jax`) saves the XLA step across processes.

The parameters live in the shared variables' storage as jax.Arrays on the engine's device from
:meth:`~PyTensorJaxEngine.set_params` on; the runner places its inputs there once and calls the
function with ``trust_input``, so PyTensor hands them to the jitted function unconverted.
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

    def jax_device(self):
        """The engine's device: JAX's default one, which configure_jax picked from device=."""
        import jax
        return jax.config.jax_default_device or jax.devices()[0]

    # --- parameters and inputs: jax.Arrays on the device ----------------------------------------
    def set_params(self, params):
        """The shared variables' storage gets device arrays, not the NumPy values they were
        given: the compiled functions read that storage at every call, so a NumPy value would
        be copied to the device at each call of a function that does not update it (a forward
        benchmark's every step). ``set_value`` cannot do it: ``TensorType.filter`` turns a
        jax.Array back into NumPy. The storage cell is written directly, as PyTensor's own
        ``Function.__call__`` writes the updates (device arrays) after each call."""
        import jax
        super().set_params(params)
        device = self.jax_device()
        for shared in self._shared.values():
            cell = shared.container.storage
            cell[0] = jax.device_put(cell[0], device)

    def place_inputs(self, args):
        """The runner's inputs as jax.Arrays on the engine's device, placed once."""
        import jax
        device = self.jax_device()
        return [jax.device_put(a, device) for a in args]

    def timed_function(self, name, x):
        """The function with ``trust_input``: without it ``Function.__call__`` passes every
        argument through ``TensorType.filter``, which makes NumPy of a jax.Array (a copy to the
        host), and the JAX linker's jitted function copies it back to the device. The inputs
        need no check: ``_args`` made them of the function's exact dtypes and number. The flag
        stays on the function, which the NumPy interface shares, on the same grounds."""
        fn = self.function(name, x)
        fn.trust_input = True
        return fn

    def device_actual(self) -> str:
        """Read from the shared parameter storage itself: device arrays (:meth:`set_params`),
        then each update's output."""
        value = self._shared["Why"].get_value(borrow=True)
        if isinstance(value, np.ndarray):    # a NumPy value set behind set_params' back
            import jax
            return array_device(jax.device_put(value, self.jax_device()))
        return array_device(value)

    # --- the peak probe: PyTensor's JAX-mode dot, operands on the default device ---------------
    def place_operand(self, value):
        import jax
        return jax.device_put(value, self.jax_device())

    def matmul_origin(self):
        return "pytensor JAX", f"jax.numpy.dot on {self.device_actual()}"
