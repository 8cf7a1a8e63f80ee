"""``cell=gru``: torch's GRU, gates ``r, z, n`` stacked in ``Wxh`` (3H, I), ``Whh`` (3H, H), ``bh``
(3H), plus ``bhn`` (H): ``n_t = tanh(W_in x_t + b_in + r_t*(W_hn h_{t-1} + bhn))``,
``h_t = (1-z_t)*n_t + z_t*h_{t-1}``. ``bh`` holds ``b_ir+b_hr, b_iz+b_hz, b_in``; ``bhn`` is
torch's ``b_hn``, which stays inside ``r_t*(...)`` and so cannot fold into ``bh``."""

from __future__ import annotations

import numpy as np

from .contract import gate
from .gated import GatedCell, ends, same_type
from .numeric import sigmoid, split


def gru_gates(T, sigmoid_fn, xw_t, hw_t, h_prev, bhn, n_hidden):
    """One GRU step: ``(h, gates, hn)``, the gates ``r, z, n`` after their nonlinearity and
    ``hn = h_{t-1} W_hn^T + bhn`` (what the pullback needs, as the oracle keeps it)."""
    r = sigmoid_fn(gate(xw_t, 0, n_hidden) + gate(hw_t, 0, n_hidden))
    z = sigmoid_fn(gate(xw_t, 1, n_hidden) + gate(hw_t, 1, n_hidden))
    hn = gate(hw_t, 2, n_hidden) + bhn
    n = T.tanh(gate(xw_t, 2, n_hidden) + r * hn)
    h = (1 - z) * n + z * h_prev
    return h, T.concatenate([r, z, n], axis=xw_t.ndim - 1), hn


class GRU(GatedCell):
    name = "gru"
    states = ("h",)
    GATES = 3
    EXTRA = ("bhn",)
    lr_scale = 2.5
    loop_extras = ("gates", "hn")
    fused_ops = ("GRURecurrence", "GRURecurrenceGrad")

    def step(self, T, x_t, states, params):
        xw_t, hw_t = self.projections(T, x_t, states[0], params)
        h, _, _ = gru_gates(T, T.sigmoid, xw_t, hw_t, states[0], params["bhn"],
                            self.hidden(params))
        return (h,)

    # --- the float64 oracle ----------------------------------------------------------------------
    def oracle_step(self, params, xw_t, hw_t, prev):
        xr, xz, xn = split(xw_t, 3)
        hr, hz, hn = split(hw_t, 3)
        hn = hn + params["bhn"]
        r, z = sigmoid(xr + hr), sigmoid(xz + hz)
        n = np.tanh(xn + r * hn)
        h = (1 - z) * n + z * prev[0]
        return (h,), {"gates": np.concatenate([r, z, n], axis=-1), "hn": hn}

    def oracle_backward(self, params, seqs, mask, records, dh, grads):
        """The recurrent projection's gradient differs from the input one's in the ``n`` block:
        ``d(hn) = da_n * r``; ``bhn``'s gradient is its sum."""
        Whh, gates, states = params["Whh"], records["gates"], seqs["h"]
        dxw = np.empty_like(gates)
        dhw = np.empty_like(dxw)
        grads["bhn"] = np.zeros(Whh.shape[1], dtype=dh.dtype)
        for t in range(len(dxw) - 1, -1, -1):
            m = mask[t]
            r, z, n = split(gates[t], 3)
            dh_new = dh * m
            dan = dh_new * (1 - z) * (1 - n ** 2)
            dar = dan * records["hn"][t] * r * (1 - r)
            daz = dh_new * (states[t] - n) * z * (1 - z)
            dxw[t] = np.concatenate([dar, daz, dan], axis=-1)
            dhw[t] = np.concatenate([dar, daz, dan * r], axis=-1)
            grads["bhn"] += (dan * r).sum(axis=0)
            dh = dh * (1 - m) + dh_new * z + dhw[t] @ Whh
        return dxw, dhw

    # --- the hoisted loops -----------------------------------------------------------------------
    def scan_forward(self, lib, n_hidden):
        """``loop(xw, h0, Whh, bhn) -> (states, gates, hn)``."""
        T = lib.T

        def step(xw_t, h_prev, w, b):
            return list(gru_gates(T, lib.sigmoid, xw_t, T.dot(h_prev, w.T), h_prev, b, n_hidden))

        def loop(xw, h0, Whh, bhn):
            return lib.scan(step, sequences=[xw], outputs_info=[h0, None, None],
                            non_sequences=[Whh, bhn], strict=True)
        return loop

    def run_forward(self, T, loop, xw, h0, Whh, extra_weights):
        return loop(xw, h0, Whh, *extra_weights)

    def scan_backward(self, lib, n_hidden, with_dstates):
        """``loop(states, gates, hn, h0, Whh, g, last[, dstates]) -> (dxw, dhw, dh0)``."""
        T = lib.T

        def step(*args):
            args = list(args)
            ds_t = args.pop(0) if with_dstates else None
            end_t, gates_t, hn_t, h_prev, dh_in, g, w = args
            dh = dh_in + end_t * g + (ds_t if ds_t is not None else 0)
            r, z, n = (gate(gates_t, k, n_hidden) for k in range(3))
            dan = dh * (1 - z) * (1 - n * n)
            dar = dan * hn_t * r * (1 - r)
            daz = dh * (h_prev - n) * z * (1 - z)
            dxw = T.concatenate([dar, daz, dan], axis=-1)
            dhw = T.concatenate([dar, daz, dan * r], axis=-1)
            dh_prev = dh * z + T.dot(dhw, w)
            return [same_type(T, dh_prev, dh_in), same_type(T, g + 0, g), dxw, dhw]

        def loop(states, gates, hn, h0, Whh, g, last, dstates=None):
            h_prev = T.concatenate([T.shape_padleft(h0), states[:-1]], axis=0)
            seqs = ([dstates] if with_dstates else []) + [ends(T, states, last), gates, hn, h_prev]
            dh, _, dxw, dhw = lib.scan(step, sequences=seqs,
                                       outputs_info=[T.zeros_like(h0), g, None, None],
                                       non_sequences=[Whh], go_backwards=True, strict=True)
            return dxw[::-1], dhw[::-1], dh[-1]
        return loop

    def run_backward(self, T, loop, states, extras, h0, Whh, g, last, dstates):
        return loop(states, *extras, h0, Whh, g, last, *dstates)

    def extra_grads(self, dhw_rows, n_hidden):
        return [dhw_rows[:, 2 * n_hidden:].sum(axis=0)]

    # --- the peers -------------------------------------------------------------------------------
    def torch_module(self, torch, n_in, n_hidden, **kw):
        return torch.nn.GRU(n_in, n_hidden, **kw)

    def torch_bias_hh(self, torch, bias_hh, n_hidden):
        """``b_hn`` trains as the seed's ``bhn`` in ``bias_hh_l0``'s ``n`` rows; a gradient hook
        zeroes its ``r, z`` rows, which therefore stay zero (one ``3H`` multiply per step, and the
        module's own weights, cuDNN's flat buffer on a GPU, stay as they are)."""
        n_rows = slice(2 * n_hidden, 3 * n_hidden)
        mask = torch.zeros_like(bias_hh)
        mask[n_rows] = 1
        bias_hh.register_hook(lambda grad: grad * mask)
        return {"bhn": n_rows}

    def jax_step(self, params):
        import jax
        import jax.numpy as jnp
        whh_t, sig = params["Whh"].T, jax.nn.sigmoid

        def step(state, xw_t):
            (xr, xz, xn), (hr, hz, hn) = (jnp.split(a, 3, axis=-1)
                                          for a in (xw_t, state[0] @ whh_t))
            r, z = sig(xr + hr), sig(xz + hz)
            n = jnp.tanh(xn + r * (hn + params["bhn"]))
            return ((1 - z) * n + z * state[0],)
        return step
