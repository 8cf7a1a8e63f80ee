"""The model in plain NumPy: a hand-written forward and BPTT for every cell, the float64 oracle's
maths.

Parity compares every engine with it (:mod:`rnnperf.bench.parity`), the ``numpy`` engine runs it
(:mod:`rnnperf.engines.numpy_engine`), and it is written the fast way, which is also the clearest
way to state the maths:

* all input projections at once: ``XW = X Wxh^T + bh`` is one ``(T*B, I) x (I, G*H)`` GEMM
  (``G`` gates: 1 Elman, 3 GRU, 4 LSTM);
* the loop holds only ``Whh``;
* the weight gradients are single GEMMs over all time steps after the backward loop:
  ``dWxh = dXW^T X``, ``dWhh = dHW^T H_prev``, where ``dXW`` and ``dHW`` are the gradients of the
  input and recurrent projections (the same array except for the GRU's ``n`` gate, whose
  recurrent part is scaled by ``r``).

Every function takes a batch ``(T, B, I)`` with ``lengths``; a single sequence is a batch of one.
A mask freezes a finished sequence's state (and an LSTM's cell state), so each row equals running
that sequence alone. The cells' equations are :mod:`rnnperf.model.spec`'s.
"""

from __future__ import annotations

import numpy as np

from .spec import param_names


def sigmoid(a):
    return 0.5 * (1 + np.tanh(0.5 * a))  # no overflow warning for large -a


def _split(a, parts):
    return np.split(a, parts, axis=-1)


def forward_states(params, x, lengths, cell="elman"):
    """Run the recurrence: ``H`` of shape ``(T+1, B, H)`` with ``H[0] = 0``, the mask, and what
    the backward pass of ``cell`` needs (gate activations, cell states)."""
    n_steps, batch, _ = x.shape
    Whh = params["Whh"]
    n_hidden = Whh.shape[1]
    xw = (x.reshape(n_steps * batch, -1) @ params["Wxh"].T).reshape(n_steps, batch, -1)
    xw = xw + params["bh"]
    mask = (np.arange(n_steps)[:, None] < lengths[None, :]).astype(x.dtype)[:, :, None]
    states = np.zeros((n_steps + 1, batch, n_hidden), dtype=x.dtype)
    whh_t = np.ascontiguousarray(Whh.T)
    cache = {"gates": np.empty((n_steps, batch, Whh.shape[0]), dtype=x.dtype)}
    if cell == "lstm":
        cache["c"] = np.zeros_like(states)
    if cell == "gru":
        cache["hn"] = np.empty((n_steps, batch, n_hidden), dtype=x.dtype)
    for t in range(n_steps):
        hw = states[t] @ whh_t
        if cell == "elman":
            h_new = cache["gates"][t] = np.tanh(xw[t] + hw)
        elif cell == "lstm":
            i, f, g, o = _split(xw[t] + hw, 4)
            i, f, g, o = sigmoid(i), sigmoid(f), np.tanh(g), sigmoid(o)
            cache["gates"][t] = np.concatenate([i, f, g, o], axis=-1)
            c_new = f * cache["c"][t] + i * g
            h_new = o * np.tanh(c_new)
            cache["c"][t + 1] = mask[t] * c_new + (1 - mask[t]) * cache["c"][t]
        else:
            xr, xz, xn = _split(xw[t], 3)
            hr, hz, hn = _split(hw, 3)
            hn = cache["hn"][t] = hn + params["bhn"]
            r, z = sigmoid(xr + hr), sigmoid(xz + hz)
            n = np.tanh(xn + r * hn)
            cache["gates"][t] = np.concatenate([r, z, n], axis=-1)
            h_new = (1 - z) * n + z * states[t]
        states[t + 1] = mask[t] * h_new + (1 - mask[t]) * states[t]
    return states, mask, cache


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def probabilities(params, x, lengths, cell="elman"):
    states, _, _ = forward_states(params, x, lengths, cell)
    return softmax(states[-1] @ params["Why"].T + params["by"])


def loss_and_grads(params, x, y, lengths, want_grads=True, cell="elman"):
    """Mean cross-entropy of the batch and, by BPTT, the gradient of every parameter."""
    states, mask, cache = forward_states(params, x, lengths, cell)
    n_steps, batch, _ = x.shape
    probs = softmax(states[-1] @ params["Why"].T + params["by"])
    rows = np.arange(batch)
    loss = float(-np.mean(np.log(probs[rows, y])))
    if not want_grads:
        return loss, probs, None
    dz = probs.copy()
    dz[rows, y] -= 1
    dz /= batch
    grads = {"Why": dz.T @ states[-1], "by": dz.sum(axis=0)}
    backward = {"elman": _elman_backward, "lstm": _lstm_backward, "gru": _gru_backward}[cell]
    dxw, dhw = backward(params, states, mask, cache, dz @ params["Why"], grads)
    flat = dxw.reshape(n_steps * batch, -1)
    grads["Wxh"] = flat.T @ x.reshape(n_steps * batch, -1)
    grads["bh"] = flat.sum(axis=0)
    grads["Whh"] = dhw.reshape(n_steps * batch, -1).T @ states[:-1].reshape(n_steps * batch, -1)
    return loss, probs, {k: grads[k].astype(x.dtype, copy=False) for k in param_names(cell)}


def _elman_backward(params, states, mask, cache, dh, grads):
    """``h_{t+1} = m tanh(a) + (1-m) h_t``: ``da = dh m (1 - tanh^2)``, ``dh_t = dh (1-m) +
    da Whh``; the input and recurrent projections share ``da``."""
    Whh = params["Whh"]
    dpre = np.empty_like(cache["gates"])
    for t in range(len(dpre) - 1, -1, -1):
        dpre[t] = dh * mask[t] * (1 - cache["gates"][t] ** 2)
        dh = dh * (1 - mask[t]) + dpre[t] @ Whh
    return dpre, dpre


def _lstm_backward(params, states, mask, cache, dh, grads):
    """Gates ``i, f, g, o`` (after their nonlinearity), cell states ``c``; ``dc`` rides along."""
    Whh = params["Whh"]
    dpre = np.empty_like(cache["gates"])
    dc = np.zeros_like(dh)
    for t in range(len(dpre) - 1, -1, -1):
        m = mask[t]
        i, f, g, o = _split(cache["gates"][t], 4)
        c_prev = cache["c"][t]
        tanh_c = np.tanh(f * c_prev + i * g)
        dh_new = dh * m
        dc_new = dc * m + dh_new * o * (1 - tanh_c ** 2)
        dpre[t] = np.concatenate([dc_new * g * i * (1 - i), dc_new * c_prev * f * (1 - f),
                                  dc_new * i * (1 - g ** 2), dh_new * tanh_c * o * (1 - o)],
                                 axis=-1)
        dc = dc * (1 - m) + dc_new * f
        dh = dh * (1 - m) + dpre[t] @ Whh
    return dpre, dpre


def _gru_backward(params, states, mask, cache, dh, grads):
    """Gates ``r, z, n``; ``hn = W_hn h_{t-1} + bhn``. The recurrent projection's gradient differs
    from the input one's in the ``n`` block: ``d(hn) = da_n * r``."""
    Whh = params["Whh"]
    dxw = np.empty_like(cache["gates"])
    dhw = np.empty_like(dxw)
    grads["bhn"] = np.zeros(Whh.shape[1], dtype=dh.dtype)
    for t in range(len(dxw) - 1, -1, -1):
        m = mask[t]
        r, z, n = _split(cache["gates"][t], 3)
        dh_new = dh * m
        dan = dh_new * (1 - z) * (1 - n ** 2)
        dar = dan * cache["hn"][t] * r * (1 - r)
        daz = dh_new * (states[t] - n) * z * (1 - z)
        dxw[t] = np.concatenate([dar, daz, dan], axis=-1)
        dhw[t] = np.concatenate([dar, daz, dan * r], axis=-1)
        grads["bhn"] += (dan * r).sum(axis=0)
        dh = dh * (1 - m) + dh_new * z + dhw[t] @ Whh
    return dxw, dhw
