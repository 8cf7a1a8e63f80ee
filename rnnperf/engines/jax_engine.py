"""``jax``: a hand-written JAX peer of the seed graph, ``jax.lax.scan`` + ``jax.value_and_grad``.

Not built from :mod:`rnnperf.model`: it is the "what would a JAX user write" baseline that
``pytensor-jax`` (the same graph traced through PyTensor's JAX linker) is measured against. The
maths is the seed's: the masked recurrence freezes a finished sequence's state, the loss is the
batch mean of ``-log p[y]``, SGD updates every parameter. Like :mod:`.numpy_engine`, a single
sequence is a batch of one, and the input projection is one GEMM before the scan (XLA would hoist
it anyway; writing it so keeps the loop body to ``Whh`` alone). The GRU and LSTM cells
(``cell=``) are other step functions in the same masked scan, each cell's ``jax_step``
(:mod:`rnnperf.cells`): it carries one array per state (``(h, c)`` for the LSTM), so a finished
sequence's cell state is frozen too; jax.grad differentiates them all.

Parameters stay on the device as a dict of ``jax.Array`` between calls; the training step is one
jitted function ``(params, x, y, lengths, lr) -> (new_params, loss)`` that donates the old
parameters' buffers, so a step allocates nothing new for them. Every function is jitted once per
input shape (jit retraces on a new shape by itself) and, through :func:`configure_jax`, lands in
JAX's persistent compilation cache.
"""

from __future__ import annotations

import functools

import numpy as np

from .. import cells
from .base import Engine, check_inputs, matmul_operands
from .devices import array_device
from .jax_runtime import configure_jax


def _logits(params, x, lengths, cell="elman"):
    """``Why h_T + by`` for a batch ``x`` ``(T, B, I)``; state frozen past each length."""
    import jax
    import jax.numpy as jnp
    n_steps, batch, _ = x.shape
    xw = jnp.einsum("tbi,hi->tbh", x, params["Wxh"]) + params["bh"]
    mask = (jnp.arange(n_steps)[:, None] < lengths[None, :]).astype(x.dtype)[:, :, None]
    the_cell = cells.get(cell)
    cell_step = the_cell.jax_step(params)   # (state, xw_t) -> new state, a tuple per the states

    def step(state, inputs):
        xw_t, m_t = inputs
        new = cell_step(state, xw_t)
        return tuple(m_t * a + (1 - m_t) * b for a, b in zip(new, state)), None

    h0 = jnp.zeros((batch, params["Whh"].shape[1]), dtype=x.dtype)
    state, _ = jax.lax.scan(step, (h0,) * len(the_cell.states), (xw, mask))
    return state[0] @ params["Why"].T + params["by"]


def _probs(params, x, lengths, cell="elman"):
    import jax
    return jax.nn.softmax(_logits(params, x, lengths, cell), axis=-1)


def _loss(params, x, y, lengths, cell="elman"):
    import jax
    import jax.numpy as jnp
    logp = jax.nn.log_softmax(_logits(params, x, lengths, cell), axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


def _train(params, x, y, lengths, lr, cell="elman"):
    import jax
    loss, grads = jax.value_and_grad(_loss)(params, x, y, lengths, cell)
    new = jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)
    return new, loss


@functools.lru_cache(maxsize=None)
def _compiled(cell="elman"):
    """The jitted functions of ``cell``, built once per process (after configure_jax set x64 and
    the cache); ``dot`` is the peak probe's product."""
    import jax
    import jax.numpy as jnp
    bind = functools.partial
    return {"forward": jax.jit(bind(_probs, cell=cell)), "loss": jax.jit(bind(_loss, cell=cell)),
            "gradients": jax.jit(jax.grad(bind(_loss, cell=cell))),
            "train": jax.jit(bind(_train, cell=cell), donate_argnums=(0,)),
            "dot": jax.jit(jnp.dot)}


class JaxEngine(Engine):
    """The hand-written JAX peer: parameters as device arrays, one jitted step."""

    @classmethod
    def versions(cls):
        import jax
        import jaxlib
        return {"jax": jax.__version__, "jaxlib": jaxlib.__version__}

    @classmethod
    def import_libraries(cls, config):
        configure_jax(config)               # imports jax, after its platform and threads are set

    def setup(self):
        self.import_libraries(self.config)
        import jax
        kind = "gpu" if self.config.wants_gpu else "cpu"
        self.device = jax.devices(kind)[self.config.device_index if kind == "gpu" else 0]
        self.fns = _compiled(self.cell)
        self._params = None

    # --- parameters live on the device ------------------------------------------------------
    def _put(self, value):
        import jax
        return jax.device_put(value, self.device)

    def set_params(self, params):
        self._params = {k: self._put(np.asarray(params[k], dtype=self.dtype))
                        for k in self.param_names}

    def get_params(self):
        return {k: np.array(v, dtype=self.dtype) for k, v in self._params.items()}

    def device_actual(self) -> str:
        return array_device(self._params["Whh"])

    # --- the NumPy interface -------------------------------------------------------------------
    def _batch(self, x, y, lengths, lr=None):
        """Checked inputs as device arrays, a single sequence as a batch of one."""
        x, y, lengths = check_inputs(x, y, lengths, self.n_in, self.n_out, self.dtype)
        single = x.ndim == 2
        if single:
            x, lengths = x[:, None, :], np.array([x.shape[0]], dtype=np.int64)
            y = None if y is None else y[None]
        args = [self._put(x), None if y is None else self._put(y), self._put(lengths)]
        if lr is not None:
            args.append(self._put(np.asarray(lr, dtype=self.dtype)))
        return single, args

    def forward(self, x, lengths=None):
        single, (xd, _, ld) = self._batch(x, None, lengths)
        probs = np.asarray(self.fns["forward"](self._params, xd, ld))
        return probs[0] if single else probs

    def loss(self, x, y, lengths=None):
        _, (xd, yd, ld) = self._batch(x, y, lengths)
        return float(self.fns["loss"](self._params, xd, yd, ld))

    def gradients(self, x, y, lengths=None):
        _, (xd, yd, ld) = self._batch(x, y, lengths)
        grads = self.fns["gradients"](self._params, xd, yd, ld)
        return {k: np.asarray(grads[k]) for k in self.param_names}

    def train_step(self, x, y, lr=0.1, lengths=None):
        _, (xd, yd, ld, lrd) = self._batch(x, y, lengths, lr)
        self._params, loss = self.fns["train"](self._params, xd, yd, ld, lrd)
        return float(loss)

    def runner(self, task, x, y, lengths, lr=0.01):
        """Data placed on the device once; each call runs one step and blocks until it is done."""
        import jax
        if task == "forward":
            _, (xd, _, ld) = self._batch(x, None, lengths)
            forward = self.fns["forward"]
            return lambda: jax.block_until_ready(forward(self._params, xd, ld))
        _, (xd, yd, ld, lrd) = self._batch(x, y, lengths, lr)
        train = self.fns["train"]

        def step():
            self._params, loss = train(self._params, xd, yd, ld, lrd)
            return jax.block_until_ready(loss)
        return step

    def sync(self, value=None):
        import jax
        return jax.block_until_ready(value if value is not None else self._params)

    # --- the peak probe --------------------------------------------------------------------------
    def matmul_step(self, n):
        """Jitted ``jnp.dot`` at the profile's dtype (and JAX's default precision, as the step's
        products) on the engine's device, the operands placed there once."""
        import jax
        a, b = (self._put(v) for v in matmul_operands(n, self.dtype))
        dot = self.fns["dot"]
        return lambda: jax.block_until_ready(dot(a, b))

    def matmul_label(self):
        return f"jax.numpy.dot (jit) on {self.device_actual()}"
