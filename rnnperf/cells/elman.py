"""``cell=elman``: the classic Theano tutorial's tanh RNN, ``h_t = tanh(Wxh x_t + Whh h_{t-1} +
bh)``; parameters ``Wxh`` (H, I), ``Whh`` (H, H), ``bh`` (H); torch's ``nn.RNN(tanh)``.

Its hoisted and fused formulations are :mod:`rnnperf.model.hoisted` and :mod:`rnnperf.model.fused`
(the library's ``hoisted_scan`` and ``fused_scan``), older than the gated cells' and with their
own kernels' interface.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .stacked import StackedCell


class Elman(StackedCell):
    name = "elman"
    states = ("h",)
    GATES = 1
    fused_ops = ("ElmanRecurrence", "ElmanRecurrenceGrad")

    def step(self, T, x_t, states, params):
        """The tutorial's literal step, ``Wxh x_t`` inside the loop (written as it always was,
        so the seed formulation compiles to the graph it did before cells were objects)."""
        Wxh, Whh, bh, h = params["Wxh"], params["Whh"], params["bh"], states[0]
        if x_t.ndim == 1:
            return (T.tanh(T.dot(Wxh, x_t) + T.dot(Whh, h) + bh),)
        return (T.tanh(T.dot(x_t, Wxh.T) + T.dot(h, Whh.T) + bh),)

    # --- the float64 oracle (rnnperf.model.oracle) ------------------------------------------------
    def oracle_step(self, params, xw_t, hw_t, prev):
        h = np.tanh(xw_t + hw_t)
        return (h,), {"gates": h}

    def oracle_backward(self, params, seqs, mask, records, dh, grads):
        """``h_{t+1} = m tanh(a) + (1-m) h_t``: ``da = dh m (1 - tanh^2)``, ``dh_t = dh (1-m) +
        da Whh``; the input and recurrent projections share ``da``."""
        Whh, gates = params["Whh"], records["gates"]
        dpre = np.empty_like(gates)
        for t in range(len(dpre) - 1, -1, -1):
            dpre[t] = dh * mask[t] * (1 - gates[t] ** 2)
            dh = dh * (1 - mask[t]) + dpre[t] @ Whh
        return dpre, dpre

    # --- the hoisted and fused formulations -------------------------------------------------------
    def hoisted_last_state(self, lib, x, shared, h0, lengths=None, fused=False):
        recurrence = lib.fused_scan if fused else lib.hoisted_scan
        if recurrence is None:
            raise ConfigError("formulation=fused: this engine has no fused recurrence kernels "
                              "(PyTensor's C backend has)")
        _, h_last = recurrence(lib, x, shared["Wxh"], shared["bh"], shared["Whh"], h0, lengths)
        return h_last

    # --- the peers --------------------------------------------------------------------------------
    def torch_module(self, torch, n_in, n_hidden, **kw):
        return torch.nn.RNN(n_in, n_hidden, nonlinearity="tanh", **kw)

    def jax_step(self, params):
        import jax.numpy as jnp
        whh_t = params["Whh"].T

        def step(state, xw_t):
            return (jnp.tanh(xw_t + state[0] @ whh_t),)
        return step
