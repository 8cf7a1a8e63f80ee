"""The GRU and LSTM steps of the seed graph, written once for every Theano-family library.

Like :mod:`rnnperf.model.graph`, everything here is written against :class:`GraphLib`'s namespace
and keeps to what legacy Theano 1.0.5 had (``dot``, ``tanh``, ``concatenate``, basic slicing, and
``GraphLib.sigmoid``: ``theano.tensor.nnet.sigmoid`` there, ``pytensor.tensor.sigmoid`` here), so
that PyTensor's backends and Theano build the same graph. The equations are
:mod:`rnnperf.model.spec`'s (torch's gate order); the gates of a step are one ``(..., G*H)`` block
of pre-activations, ``xw_t = x_t Wxh^T + bh`` plus ``hw_t = h_{t-1} Whh^T``, sliced per gate.

Two uses of the same step:

* ``seed`` (:func:`seed_last_state`): the step computes ``x_t Wxh^T`` inside the loop, as the
  tutorial's Elman step does, and a mask freezes a finished sequence's state (an LSTM's ``h`` and
  ``c``), so ``h_T`` is each sequence's final state; the gradient is ``grad`` of the scan;
* ``hoisted`` (:func:`hoisted_last_state`): one GEMM for every input projection before the loop,
  the loop unmasked over ``xw`` holding only ``Whh`` (:func:`lstm_forward`, :func:`gru_forward`,
  which have the fused kernels' interface, :mod:`rnnperf.model.hoisted_cells`), each sequence's
  final state read at its own last step. This default takes its gradient by ``grad`` (legacy
  Theano); PyTensor swaps in a hand-written pullback (``GraphLib.hoisted_cells``).
"""

from __future__ import annotations

#: what the forward loop returns besides every state, per cell: what its pullback needs
LOOP_EXTRAS = {"lstm": ("cells", "gates"), "gru": ("gates", "hn")}


def gate(a, k: int, n_hidden):
    """Gate ``k``'s block of the stacked pre-activations ``a`` (last axis ``G*H``)."""
    if a.ndim == 1:
        return a[k * n_hidden:(k + 1) * n_hidden]
    return a[:, k * n_hidden:(k + 1) * n_hidden]


def lstm_cell(lib, pre, c_prev, n_hidden):
    """One LSTM step from its pre-activations ``pre = xw_t + hw_t``: ``(h, c, gates)``, the
    gates ``i, f, g, o`` after their nonlinearity, stacked as ``pre`` is."""
    T, sig = lib.T, lib.sigmoid
    i, f, o = (sig(gate(pre, k, n_hidden)) for k in (0, 1, 3))
    g = T.tanh(gate(pre, 2, n_hidden))
    c = f * c_prev + i * g
    h = o * T.tanh(c)
    return h, c, T.concatenate([i, f, g, o], axis=pre.ndim - 1)


def gru_cell(lib, xw_t, hw_t, h_prev, bhn, n_hidden):
    """One GRU step: ``(h, gates, hn)``, the gates ``r, z, n`` after their nonlinearity and
    ``hn = h_{t-1} W_hn^T + bhn`` (what the pullback needs, as the oracle keeps it)."""
    T, sig = lib.T, lib.sigmoid
    r = sig(gate(xw_t, 0, n_hidden) + gate(hw_t, 0, n_hidden))
    z = sig(gate(xw_t, 1, n_hidden) + gate(hw_t, 1, n_hidden))
    hn = gate(hw_t, 2, n_hidden) + bhn
    n = T.tanh(gate(xw_t, 2, n_hidden) + r * hn)
    h = (1 - z) * n + z * h_prev
    return h, T.concatenate([r, z, n], axis=xw_t.ndim - 1), hn


def running_mask(T, x, lengths, dtype: str):
    """``mask[t, b, 0] = 1`` while sequence b is still running at step t (the seed formulation's
    batched variant, every cell's)."""
    return T.cast(T.lt(T.arange(x.shape[0]).dimshuffle(0, "x"),
                       lengths.dimshuffle("x", 0)), dtype).dimshuffle(0, 1, "x")


def freeze(m_t, new, prev):
    """The masked step: a finished sequence's state stops changing (``m_t`` None: no mask)."""
    return new if m_t is None else m_t * new + (1 - m_t) * prev


def seed_last_state(lib, cell: str, x, lengths, h0, shared, dtype: str):
    """``h_T`` of the seed formulation: the cell's literal step in a scan, masked when batched
    (the masked state of a finished sequence stops changing, so ``h_T`` is its final state)."""
    T = lib.T
    Wxh, Whh, bh = shared["Wxh"], shared["Whh"], shared["bh"]
    bhn = shared.get("bhn")
    n_hidden = n_hidden_of(shared)
    batched = lengths is not None
    mask = running_mask(T, x, lengths, dtype) if batched else None

    def step(x_t, *rest):
        rest = list(rest)
        m_t = rest.pop(0) if batched else None
        xw_t = T.dot(x_t, Wxh.T) + bh
        hw_t = T.dot(rest[0], Whh.T)
        if cell == "lstm":
            h_prev, c_prev = rest[:2]
            h, c, _ = lstm_cell(lib, xw_t + hw_t, c_prev, n_hidden)
            return [freeze(m_t, h, h_prev), freeze(m_t, c, c_prev)]
        h_prev = rest[0]
        h, _, _ = gru_cell(lib, xw_t, hw_t, h_prev, bhn, n_hidden)
        return freeze(m_t, h, h_prev)

    sequences = [x] + ([mask] if batched else [])
    if cell == "lstm":
        states, _ = lib.scan(step, sequences=sequences, outputs_info=[h0, T.zeros_like(h0)],
                             non_sequences=[Wxh, Whh, bh], strict=True)
    else:
        states = lib.scan(step, sequences=sequences, outputs_info=[h0],
                          non_sequences=[Wxh, Whh, bh, bhn], strict=True)
    return states[-1]


def lstm_forward(lib, n_hidden: int):
    """The LSTM's unmasked loop over ``xw`` as a scan: ``loop(xw, h0, c0, Whh) -> (states,
    cells, gates)``, ``states[t] = h_{t+1}`` (the interface of the fused kernel,
    ``rnnperf.model.fused_cells.LSTMRecurrence``)."""
    T = lib.T

    def step(xw_t, h_prev, c_prev, w):
        return list(lstm_cell(lib, xw_t + T.dot(h_prev, w.T), c_prev, n_hidden))

    def loop(xw, h0, c0, Whh):
        states, cells, gates = lib.scan(step, sequences=[xw], outputs_info=[h0, c0, None],
                                        non_sequences=[Whh], strict=True)
        return states, cells, gates
    return loop


def gru_forward(lib, n_hidden: int):
    """The GRU's unmasked loop over ``xw`` as a scan: ``loop(xw, h0, Whh, bhn) -> (states,
    gates, hn)`` (the interface of ``rnnperf.model.fused_cells.GRURecurrence``)."""
    T = lib.T

    def step(xw_t, h_prev, w, b):
        return list(gru_cell(lib, xw_t, T.dot(h_prev, w.T), h_prev, b, n_hidden))

    def loop(xw, h0, Whh, bhn):
        states, gates, hn = lib.scan(step, sequences=[xw], outputs_info=[h0, None, None],
                                     non_sequences=[Whh, bhn], strict=True)
        return states, gates, hn
    return loop


#: the scan forward loop of each cell, by name
SCAN_FORWARD = {"lstm": lstm_forward, "gru": gru_forward}


def hoisted_loop(lib, cell: str, n_hidden: int, x, Wxh, bh, Whh, h0, bhn=None, forward=None):
    """``(xw, states, extras)`` of the hoisted formulation: ``xw = x Wxh^T + bh`` as one GEMM,
    then the unmasked loop ``forward`` (default: this module's scan; a fused kernel has the same
    interface), ``extras`` named by :data:`LOOP_EXTRAS`. ``c0`` of an LSTM is zero."""
    T = lib.T
    xw = T.dot(x, Wxh.T) + bh
    loop = forward or SCAN_FORWARD[cell](lib, n_hidden)
    if cell == "lstm":
        states, *extras = loop(xw, h0, T.zeros_like(h0), Whh)
    else:
        states, *extras = loop(xw, h0, Whh, bhn)
    return xw, states, tuple(extras)


def n_hidden_of(shared) -> int:
    """``H`` as a Python int, from the recurrent weights' value: gate slices need constant
    bounds (JAX's conversion)."""
    return int(shared["Whh"].get_value(borrow=True).shape[1])


def final_states(lib, states, lengths):
    """Each sequence's final state of an unmasked loop: ``h_{len-1}`` (``h_T`` without
    lengths)."""
    if lengths is None:
        return states[-1]
    return states[lengths - 1, lib.T.arange(states.shape[1])]


def hoisted_last_state(lib, cell: str, x, shared, h0, lengths=None):
    """The final states of the hoisted formulation, gradient by ``grad`` of its scan (the
    default ``GraphLib.hoisted_cells``; every library, legacy Theano included)."""
    _, states, _ = hoisted_loop(lib, cell, n_hidden_of(shared), x, shared["Wxh"], shared["bh"],
                                shared["Whh"], h0, shared.get("bhn"))
    return final_states(lib, states, lengths)
