"""The model in plain NumPy: a hand-written forward and BPTT, the float64 oracle's maths.

Parity compares every engine with it (:mod:`rnnperf.bench.parity`), the ``numpy`` engine runs it
(:mod:`rnnperf.engines.numpy_engine`), and it is written the fast way, which is also the clearest
way to state the maths:

* all input projections at once: ``XW = X Wxh^T + bh`` is one ``(T*B, I) x (I, H)`` GEMM;
* the loop holds only ``Whh``;
* the weight gradients are single GEMMs over all time steps after the backward loop.

Every function takes a batch ``(T, B, I)`` with ``lengths``; a single sequence is a batch of one.
"""

from __future__ import annotations

import numpy as np

from .spec import PARAM_NAMES


def forward_states(params, x, lengths):
    """Run the recurrence; return ``H`` of shape ``(T+1, B, H)`` with ``H[0] = 0``, and mask."""
    n_steps, batch, _ = x.shape
    Wxh, Whh, bh = params["Wxh"], params["Whh"], params["bh"]
    xw = (x.reshape(n_steps * batch, -1) @ Wxh.T).reshape(n_steps, batch, -1) + bh
    mask = (np.arange(n_steps)[:, None] < lengths[None, :]).astype(x.dtype)[:, :, None]
    states = np.zeros((n_steps + 1, batch, Whh.shape[0]), dtype=x.dtype)
    whh_t = np.ascontiguousarray(Whh.T)
    for t in range(n_steps):
        h_new = np.tanh(xw[t] + states[t] @ whh_t)
        states[t + 1] = mask[t] * h_new + (1 - mask[t]) * states[t]
    return states, mask


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def probabilities(params, x, lengths):
    states, _ = forward_states(params, x, lengths)
    return softmax(states[-1] @ params["Why"].T + params["by"])


def loss_and_grads(params, x, y, lengths, want_grads=True):
    """Mean cross-entropy of the batch and, by BPTT, the gradient of every parameter."""
    states, mask = forward_states(params, x, lengths)
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
    Whh = params["Whh"]
    dh = dz @ params["Why"]
    dpre = np.empty((n_steps, batch, Whh.shape[0]), dtype=x.dtype)
    for t in range(n_steps - 1, -1, -1):
        # h_{t+1} = m tanh(a) + (1-m) h_t  =>  da = dh m (1 - tanh^2), dh_t = dh (1-m) + da Whh
        h_new_sq = np.where(mask[t] > 0, states[t + 1], 0.0) ** 2
        dpre[t] = dh * mask[t] * (1 - h_new_sq)
        dh = dh * (1 - mask[t]) + dpre[t] @ Whh
    flat_dpre = dpre.reshape(n_steps * batch, -1)
    grads["Wxh"] = flat_dpre.T @ x.reshape(n_steps * batch, -1)
    grads["Whh"] = flat_dpre.T @ states[:-1].reshape(n_steps * batch, -1)
    grads["bh"] = flat_dpre.sum(axis=0)
    return loss, probs, {k: grads[k].astype(x.dtype, copy=False) for k in PARAM_NAMES}
