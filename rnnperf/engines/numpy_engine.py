"""``numpy``: the reference oracle, a hand-written forward and BPTT.

float64 by default when used as the oracle (parity compares every engine with it); float32 on
request, when it doubles as the hand-written CPU baseline of the speed targets. It is written the
fast way, which is also the clearest way to state the maths:

* all input projections at once: ``XW = X Wxh^T + bh`` is one ``(T*B, I) x (I, H)`` GEMM;
* the loop holds only ``Whh``;
* the weight gradients are single GEMMs over all time steps after the backward loop.

A single sequence is a batch of one, so both variants share every line.
"""

from __future__ import annotations

import numpy as np

from ..model import PARAM_NAMES
from .base import Engine, check_inputs


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


class NumpyEngine(Engine):
    name = "numpy"

    def setup(self):
        self._params: dict[str, np.ndarray] = {}

    @classmethod
    def versions(cls):
        return {"numpy": np.__version__}

    def set_params(self, params):
        self._params = {k: np.array(params[k], dtype=self.dtype) for k in PARAM_NAMES}

    def get_params(self):
        return {k: v.copy() for k, v in self._params.items()}

    def device_actual(self):
        return "cpu"  # NumPy arrays live in host memory by construction

    def _batch(self, x, y, lengths):
        x, y, lengths = check_inputs(x, y, lengths, self.n_in, self.n_out, self.dtype)
        if x.ndim == 2:
            return x[:, None, :], (None if y is None else y[None]), np.array([x.shape[0]]), True
        return x, y, lengths, False

    def forward(self, x, lengths=None):
        xb, _, lb, single = self._batch(x, None, lengths)
        probs = probabilities(self._params, xb, lb)
        return probs[0] if single else probs

    def loss(self, x, y, lengths=None):
        xb, yb, lb, _ = self._batch(x, y, lengths)
        return loss_and_grads(self._params, xb, yb, lb, want_grads=False)[0]

    def gradients(self, x, y, lengths=None):
        xb, yb, lb, _ = self._batch(x, y, lengths)
        return loss_and_grads(self._params, xb, yb, lb)[2]

    def train_step(self, x, y, lr=0.1, lengths=None):
        xb, yb, lb, _ = self._batch(x, y, lengths)
        loss, _, grads = loss_and_grads(self._params, xb, yb, lb)
        for k in PARAM_NAMES:
            self._params[k] -= self.dtype.type(lr) * grads[k]
        return loss

    def runner(self, task, x, y, lengths, lr=0.01):
        xb, yb, lb, _ = self._batch(x, y, lengths)
        if task == "forward":
            return lambda: probabilities(self._params, xb, lb)

        def step():
            _, _, grads = loss_and_grads(self._params, xb, yb, lb)
            for k in PARAM_NAMES:
                self._params[k] -= self.dtype.type(lr) * grads[k]
        return step
