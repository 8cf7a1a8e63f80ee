"""The GRU and LSTM hoisted recurrences with a hand-written gradient, for PyTensor's backends.

# Why
The same reason as the Elman cell's (:mod:`rnnperf.model.hoisted`): autodiff of a scan
accumulates every weight gradient inside the backward loop, T small rank-B updates. Here the
forward is one GEMM for every input projection, ``xw = x Wxh^T + bh`` ``(T*B, G*H)``, then the
unmasked loop holding only ``Whh``; the pullback's loop produces the per-step gradients of the
input and recurrent projections (the oracle's ``dxw`` and ``dhw``: the same array but for the
GRU's ``n`` block, ``dhw_n = dxw_n * r``), and the weights' gradients are single GEMMs after it:

    dWxh = dxw^T X,  dbh = sum dxw,  dWhh = dhw^T [h0; H_{:-1}],  GRU: dbhn = sum dhw_n

# The loops are pluggable
Both loops have the fused kernels' interface (``rnnperf.model.fused_cells``), so the fused
formulation is this graph with the kernels swapped in:

* LSTM: ``forward(xw, h0, c0, Whh) -> (states, cells, gates)``,
  ``backward(with_dstates)(states, cells, gates, h0, c0, Whh, g, last[, dstates]) -> (da, dh0)``;
* GRU: ``forward(xw, h0, Whh, bhn) -> (states, gates, hn)``,
  ``backward(with_dstates)(states, gates, hn, h0, Whh, g, last[, dstates]) -> (dxw, dhw, dh0)``.

``g[b]`` is the gradient of ``states[last[b], b]`` (each sequence's final state), ``dstates`` that
of every state (only when something reads them). The scan loops are
:func:`rnnperf.model.cells.lstm_forward` / ``gru_forward`` and this module's backward scans.
"""

from __future__ import annotations

import functools
import inspect

from ..errors import ConfigError
from .cells import LOOP_EXTRAS, SCAN_FORWARD, final_states, gate, hoisted_loop, n_hidden_of

#: the fused kernels of each cell in rnnperf.model.fused_cells: (forward, backward)
FUSED_OPS = {"lstm": ("LSTMRecurrence", "LSTMRecurrenceGrad"),
             "gru": ("GRURecurrence", "GRURecurrenceGrad")}


def pytensor_hoisted_cells(lib, cell: str, x, shared, h0, lengths=None, fused=False):
    """Each sequence's final state (``h_{len-1}``; ``h_T`` without lengths) of the hoisted
    ``cell``, with our pullback; ``fused`` runs both loops as C kernels instead of scans.

    Long because it is one closure: the OpFromGraph's inner graph and the pullback that reads it.
    """
    from pytensor.compile.builders import OpFromGraph
    from pytensor.gradient import DisconnectedType

    T = lib.T
    n_hidden = n_hidden_of(shared)
    width, n_in = shared["Wxh"].get_value(borrow=True).shape   # G*H and I, as Python ints
    gru = cell == "gru"
    weights = [shared[k] for k in ("Wxh", "bh", "Whh") + (("bhn",) if gru else ())]
    outer = [x, *weights, h0] + ([lengths] if lengths is not None else [])
    inputs = [v.type() for v in outer]
    forward, backward_loop = loops(lib, cell, n_hidden, fused)
    x_, wxh_, bh_, whh_ = inputs[:4]
    bhn_ = inputs[4] if gru else None
    h0_ = inputs[len(weights) + 1]
    lengths_ = inputs[-1] if lengths is not None else None
    _, states, extras = hoisted_loop(lib, cell, n_hidden, x_, wxh_, bh_, whh_, h0_, bhn_,
                                     forward=forward)
    last = final_states(lib, states, lengths_)

    def backward(op_inputs, op_outputs, output_grads):
        x_in, wxh, _, whh = op_inputs[:4]
        h0_in = op_inputs[len(weights) + 1]
        lengths_in = op_inputs[-1] if lengths is not None else None
        states_out, _, *extras_out = op_outputs
        dstates, dlast, *dextras = (None if isinstance(g.type, DisconnectedType) else g
                                    for g in output_grads)
        if any(d is not None for d in dextras):
            raise NotImplementedError(f"{cell} hoisted recurrence: the gradient of "
                                      f"{'/'.join(LOOP_EXTRAS[cell])} is not implemented")
        g = dlast if dlast is not None else T.zeros_like(h0_in)
        last_steps = _last_steps(T, states_out, lengths_in)
        extra = [dstates] if dstates is not None else []
        loop = backward_loop(dstates is not None)
        if gru:
            dxw, dhw, dh0 = loop(states_out, *extras_out, h0_in, whh, g, last_steps, *extra)
        else:
            da, dh0 = loop(states_out, *extras_out, h0_in, T.zeros_like(h0_in), whh, g,
                           last_steps, *extra)
            dxw = dhw = da

        def rows(v, width):
            return v.reshape((-1, width))
        flat = rows(dxw, width)
        # dWhh = dhw^T [h0; h_0..h_{T-2}], as two products (no concatenated copy of the states)
        d_whh = (T.dot(rows(dhw[1:], width).T, rows(states_out[:-1], n_hidden))
                 + T.dot(rows(dhw[:1], width).T, rows(T.shape_padleft(h0_in), n_hidden)))
        grads = [T.dot(flat, wxh).reshape(x_in.shape), T.dot(flat.T, rows(x_in, n_in)),
                 flat.sum(axis=0), d_whh]
        if gru:
            grads.append(rows(dhw, width)[:, 2 * n_hidden:].sum(axis=0))
        # dh0 takes h0's type (a static batch of 1 is broadcastable there)
        grads.append(T.specify_shape(dh0, h0_in.type.shape))
        if lengths is not None:
            grads.append(DisconnectedType()())
        return grads

    # PyTensor renamed lop_overrides to pullback (3.0 warns on the old name); take what exists.
    params = inspect.signature(OpFromGraph.__init__).parameters
    override = {("pullback" if "pullback" in params else "lop_overrides"): backward}
    # Outputs: every state, each sequence's final one (what the model reads), and what the
    # pullback reads of the forward loop (the gates, an LSTM's cells, a GRU's hn), so that the
    # backward pass recomputes nothing.
    op = OpFromGraph(inputs, [states, last, *extras], inline=True,
                     name=f"Hoisted{cell.upper()}Recurrence", **override)
    return op(*outer)[1]


def loops(lib, cell: str, n_hidden: int, fused: bool):
    """``(forward, backward)`` of ``cell``: scans, or the fused C kernels (``backward`` takes
    ``with_dstates`` and returns the loop)."""
    if not fused:
        return (SCAN_FORWARD[cell](lib, n_hidden),
                functools.partial(SCAN_BACKWARD[cell], lib, n_hidden))
    try:
        from . import fused_cells
        forward_op, backward_op = (getattr(fused_cells, name) for name in FUSED_OPS[cell])
    except (ImportError, AttributeError):
        raise ConfigError(f"formulation=fused: no fused {cell} kernels in this rnnperf "
                          "(rnnperf.model.fused_cells); use formulation=hoisted") from None
    return forward_op(), lambda with_dstates: backward_op(with_dstates=with_dstates)


def _last_steps(T, states, lengths):
    """``last[b]``, the step of sequence b's final state (int64, ``(B,)``; ``(1,)`` for a single
    sequence), as the fused kernels take it."""
    n_steps = states.shape[0]
    if lengths is not None:
        return T.cast(lengths, "int64") - 1
    if states.ndim == 3:
        return T.alloc(T.cast(n_steps - 1, "int64"), states.shape[1])
    return T.stack([T.cast(n_steps - 1, "int64")])


def _ends(T, states, last):
    """``ends[t] = 1`` where step t holds a sequence's final state: ``(T, B, 1)``, or ``(T,)``
    for a single sequence; where ``g`` enters the backward loop."""
    steps = T.arange(states.shape[0])
    if states.ndim == 2:
        return T.cast(T.eq(steps, last[0]), states.dtype)
    return T.cast(T.eq(steps[:, None], last[None, :]), states.dtype)[:, :, None]


def _same_type(T, value, like):
    """``value`` with ``like``'s static shape: a loop state keeps its input's type, and a static
    batch of 1 is broadcastable, which a product's output type does not carry."""
    return T.specify_shape(value, like.type.shape)


def lstm_scan_backward(lib, n_hidden: int, with_dstates: bool):
    """The LSTM pullback's loop as a scan, with the fused kernel's interface:
    ``(states, cells, gates, h0, c0, Whh, g, last[, dstates]) -> (da, dh0)``."""
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
        return [_same_type(T, T.dot(da, w), dh_in), _same_type(T, dc * f, dc_in),
                _same_type(T, g + 0, g), da]

    def loop(states, cells, gates, h0, c0, Whh, g, last, dstates=None):
        c_prev = T.concatenate([T.shape_padleft(c0), cells[:-1]], axis=0)
        seqs = ([dstates] if with_dstates else []) + [_ends(T, states, last), gates, cells,
                                                       c_prev]
        # g rides along as a loop state (see rnnperf.model.hoisted: a constant would be
        # pushed out of the loop as a (T, B, H) product per call)
        dh, _, _, da = lib.scan(step, sequences=seqs,
                                outputs_info=[T.zeros_like(h0), T.zeros_like(c0), g, None],
                                non_sequences=[Whh], go_backwards=True, strict=True)
        return da[::-1], dh[-1]
    return loop


def gru_scan_backward(lib, n_hidden: int, with_dstates: bool):
    """The GRU pullback's loop as a scan, with the fused kernel's interface:
    ``(states, gates, hn, h0, Whh, g, last[, dstates]) -> (dxw, dhw, dh0)``."""
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
        return [_same_type(T, dh_prev, dh_in), _same_type(T, g + 0, g), dxw, dhw]

    def loop(states, gates, hn, h0, Whh, g, last, dstates=None):
        h_prev = T.concatenate([T.shape_padleft(h0), states[:-1]], axis=0)
        seqs = ([dstates] if with_dstates else []) + [_ends(T, states, last), gates, hn, h_prev]
        dh, _, dxw, dhw = lib.scan(step, sequences=seqs,
                                   outputs_info=[T.zeros_like(h0), g, None, None],
                                   non_sequences=[Whh], go_backwards=True, strict=True)
        return dxw[::-1], dhw[::-1], dh[-1]
    return loop


#: the scan backward loop of each cell: f(lib, n_hidden, with_dstates) -> loop
SCAN_BACKWARD = {"lstm": lstm_scan_backward, "gru": gru_scan_backward}
