"""``cell=lstm``: torch's LSTM, gates ``i, f, g, o`` stacked in ``Wxh`` (4H, I), ``Whh`` (4H, H),
``bh`` (4H) (one bias: torch's ``b_ih + b_hh``); ``c_t = f*c_{t-1} + i*g``, ``h_t = o*tanh(c_t)``,
``h_0 = c_0 = 0``. Carries ``(h, c)``; a finished sequence's cell state is frozen too."""

from __future__ import annotations

import numpy as np

from .contract import gate
from .gated import GatedCell, ends, same_type
from .numeric import sigmoid, split


def lstm_gates(T, sigmoid_fn, pre, c_prev, n_hidden):
    """One LSTM step from its pre-activations ``pre = xw_t + hw_t``: ``(h, c, gates)``, the
    gates after their nonlinearity, stacked as ``pre`` is."""
    i, f, o = (sigmoid_fn(gate(pre, k, n_hidden)) for k in (0, 1, 3))
    g = T.tanh(gate(pre, 2, n_hidden))
    c = f * c_prev + i * g
    h = o * T.tanh(c)
    return h, c, T.concatenate([i, f, g, o], axis=pre.ndim - 1)


class LSTM(GatedCell):
    name = "lstm"
    states = ("h", "c")
    GATES = 4
    lr_scale = 5.0
    loop_extras = ("cells", "gates")
    fused_ops = ("LSTMRecurrence", "LSTMRecurrenceGrad")

    def step(self, T, x_t, states, params):
        xw_t, hw_t = self.projections(T, x_t, states[0], params)
        h, c, _ = lstm_gates(T, T.sigmoid, xw_t + hw_t, states[1], self.hidden(params))
        return h, c

    # --- the float64 oracle ----------------------------------------------------------------------
    def oracle_step(self, params, xw_t, hw_t, prev):
        i, f, g, o = split(xw_t + hw_t, 4)
        i, f, g, o = sigmoid(i), sigmoid(f), np.tanh(g), sigmoid(o)
        c = f * prev[1] + i * g
        return (o * np.tanh(c), c), {"gates": np.concatenate([i, f, g, o], axis=-1)}

    def oracle_backward(self, params, seqs, mask, records, dh, grads):
        """Gates ``i, f, g, o`` (after their nonlinearity), cell states ``c``; ``dc`` rides
        along."""
        Whh, gates, cells = params["Whh"], records["gates"], seqs["c"]
        dpre = np.empty_like(gates)
        dc = np.zeros_like(dh)
        for t in range(len(dpre) - 1, -1, -1):
            m = mask[t]
            i, f, g, o = split(gates[t], 4)
            c_prev = cells[t]
            tanh_c = np.tanh(f * c_prev + i * g)
            dh_new = dh * m
            dc_new = dc * m + dh_new * o * (1 - tanh_c ** 2)
            dpre[t] = np.concatenate([dc_new * g * i * (1 - i), dc_new * c_prev * f * (1 - f),
                                      dc_new * i * (1 - g ** 2), dh_new * tanh_c * o * (1 - o)],
                                     axis=-1)
            dc = dc * (1 - m) + dc_new * f
            dh = dh * (1 - m) + dpre[t] @ Whh
        return dpre, dpre

    # --- the hoisted loops -----------------------------------------------------------------------
    def scan_forward(self, lib, n_hidden):
        """``loop(xw, h0, c0, Whh) -> (states, cells, gates)``, ``states[t] = h_{t+1}``."""
        T = lib.T

        def step(xw_t, h_prev, c_prev, w):
            return list(lstm_gates(T, lib.sigmoid, xw_t + T.dot(h_prev, w.T), c_prev, n_hidden))

        def loop(xw, h0, c0, Whh):
            return lib.scan(step, sequences=[xw], outputs_info=[h0, c0, None],
                            non_sequences=[Whh], strict=True)
        return loop

    def run_forward(self, T, loop, xw, h0, Whh, extra_weights):
        return loop(xw, h0, T.zeros_like(h0), Whh)

    def scan_backward(self, lib, n_hidden, with_dstates):
        """``loop(states, cells, gates, h0, c0, Whh, g, last[, dstates]) -> (da, dh0)``."""
        T = lib.T

        def step(*args):
            args = list(args)
            ds_t = args.pop(0) if with_dstates else None
            end_t, gates_t, c_t, c_prev, dh_in, dc_in, g, w = args
            dh = dh_in + end_t * g + (ds_t if ds_t is not None else 0)
            i, f, gg, o = (gate(gates_t, k, n_hidden) for k in range(4))
            tanh_c = T.tanh(c_t)
            dc = dc_in + dh * o * (1 - tanh_c * tanh_c)
            da = T.concatenate([dc * gg * i * (1 - i), dc * c_prev * f * (1 - f),
                                dc * i * (1 - gg * gg), dh * tanh_c * o * (1 - o)], axis=-1)
            return [same_type(T, T.dot(da, w), dh_in), same_type(T, dc * f, dc_in),
                    same_type(T, g + 0, g), da]

        def loop(states, cells, gates, h0, c0, Whh, g, last, dstates=None):
            c_prev = T.concatenate([T.shape_padleft(c0), cells[:-1]], axis=0)
            seqs = ([dstates] if with_dstates else []) + [ends(T, states, last), gates, cells,
                                                           c_prev]
            # g rides along as a loop state (see rnnperf.model.hoisted: a constant would be
            # pushed out of the loop as a (T, B, H) product per call)
            dh, _, _, da = lib.scan(step, sequences=seqs,
                                    outputs_info=[T.zeros_like(h0), T.zeros_like(c0), g, None],
                                    non_sequences=[Whh], go_backwards=True, strict=True)
            return da[::-1], dh[-1]
        return loop

    def run_backward(self, T, loop, states, extras, h0, Whh, g, last, dstates):
        da, dh0 = loop(states, *extras, h0, T.zeros_like(h0), Whh, g, last, *dstates)
        return da, da, dh0

    # --- the peers -------------------------------------------------------------------------------
    def torch_module(self, torch, n_in, n_hidden, **kw):
        return torch.nn.LSTM(n_in, n_hidden, **kw)

    def jax_step(self, params):
        import jax
        import jax.numpy as jnp
        whh_t, sig = params["Whh"].T, jax.nn.sigmoid

        def step(state, xw_t):
            i, f, g, o = jnp.split(xw_t + state[0] @ whh_t, 4, axis=-1)
            c = sig(f) * state[1] + sig(i) * jnp.tanh(g)
            return sig(o) * jnp.tanh(c), c
        return step
