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
that sequence alone. Each cell's step and BPTT are its own (``oracle_step``,
``oracle_backward``: :mod:`rnnperf.cells`); this module runs them.
"""

from __future__ import annotations

import numpy as np

from .. import cells
from ..errors import ConfigError
from .spec import param_names


def oracle_cell(cell):
    """The cell, which must have a hand-written oracle (``oracle_step``, ``oracle_backward``)."""
    the_cell = cells.get(cell)
    missing = cells.missing_parts(the_cell, ("oracle_step", "oracle_backward"))
    if missing:
        raise ConfigError(f"cell={the_cell.name} has no hand-written oracle ({', '.join(missing)}"
                          "); its reference is its own graph (rnnperf.model.reference)")
    return the_cell


def forward_states(params, x, lengths, cell="elman"):
    """Run the recurrence: ``H`` of shape ``(T+1, B, H)`` with ``H[0] = 0``, the mask, and what
    the backward pass needs: every further state's sequence (an LSTM's ``c``, ``(T+1, B, H)``)
    and what the cell's ``oracle_step`` recorded at each step (gate activations; a GRU's
    ``hn``), by name."""
    the_cell = oracle_cell(cell)
    n_steps, batch, _ = x.shape
    Whh = params["Whh"]
    n_hidden = Whh.shape[1]
    xw = (x.reshape(n_steps * batch, -1) @ params["Wxh"].T).reshape(n_steps, batch, -1)
    xw = xw + params["bh"]
    mask = (np.arange(n_steps)[:, None] < lengths[None, :]).astype(x.dtype)[:, :, None]
    seqs = {name: np.zeros((n_steps + 1, batch, n_hidden), dtype=x.dtype)
            for name in the_cell.states}
    whh_t = np.ascontiguousarray(Whh.T)
    cache: dict[str, np.ndarray] = {}
    first = the_cell.states[0]
    for t in range(n_steps):
        prev = tuple(seqs[name][t] for name in the_cell.states)
        new, record = the_cell.oracle_step(params, xw[t], prev[0] @ whh_t, prev)
        for name, value in zip(the_cell.states, new):
            seqs[name][t + 1] = mask[t] * value + (1 - mask[t]) * seqs[name][t]
        for key, value in record.items():
            if key not in cache:
                cache[key] = np.empty((n_steps,) + value.shape, dtype=x.dtype)
            cache[key][t] = value
    cache.update({name: seq for name, seq in seqs.items() if name != first})
    return seqs[first], mask, cache


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def probabilities(params, x, lengths, cell="elman"):
    states, _, _ = forward_states(params, x, lengths, cell)
    return softmax(states[-1] @ params["Why"].T + params["by"])


def backward(params, states, mask, cache, dh, grads, cell="elman"):
    """``(dxw, dhw)``: the gradients of the input and recurrent projections at every step, by
    the cell's hand-written BPTT (``grads`` gets the cell's extra weights' gradients)."""
    the_cell = oracle_cell(cell)
    seqs = {the_cell.states[0]: states, **{k: cache[k] for k in the_cell.states[1:]}}
    return the_cell.oracle_backward(params, seqs, mask, cache, dh, grads)


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
    dxw, dhw = backward(params, states, mask, cache, dz @ params["Why"], grads, cell)
    flat = dxw.reshape(n_steps * batch, -1)
    grads["Wxh"] = flat.T @ x.reshape(n_steps * batch, -1)
    grads["bh"] = flat.sum(axis=0)
    grads["Whh"] = dhw.reshape(n_steps * batch, -1).T @ states[:-1].reshape(n_steps * batch, -1)
    return loss, probs, {k: grads[k].astype(x.dtype, copy=False) for k in param_names(cell)}
