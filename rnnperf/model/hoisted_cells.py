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
of every state (only when something reads them). The scan loops are each cell's own (``scan_forward``, ``scan_backward``:
:mod:`rnnperf.cells.gated`); the fused kernels are named by its ``fused_ops``.
"""

from __future__ import annotations

import functools
import inspect

from ..errors import ConfigError
from .recurrence import extra_weights, final_states, hoisted_loop, n_hidden_of


def pytensor_hoisted_cells(lib, cell, x, shared, h0, lengths=None, fused=False):
    """Each sequence's final state (``h_{len-1}``; ``h_T`` without lengths) of the hoisted
    ``cell``, with our pullback; ``fused`` runs both loops as C kernels instead of scans.

    Long because it is one closure: the OpFromGraph's inner graph and the pullback that reads it.
    """
    from pytensor.compile.builders import OpFromGraph
    from pytensor.gradient import DisconnectedType

    T = lib.T
    n_hidden = n_hidden_of(shared)
    width, n_in = shared["Wxh"].get_value(borrow=True).shape   # G*H and I, as Python ints
    weights = [shared[k] for k in ("Wxh", "bh", "Whh")] + extra_weights(cell, shared)
    outer = [x, *weights, h0] + ([lengths] if lengths is not None else [])
    inputs = [v.type() for v in outer]
    forward, backward_loop = loops(lib, cell, n_hidden, fused)
    x_, wxh_, bh_, whh_ = inputs[:4]
    extra_ = inputs[4:len(weights) + 1]
    h0_ = inputs[len(weights) + 1]
    lengths_ = inputs[-1] if lengths is not None else None
    _, states, extras = hoisted_loop(lib, cell, n_hidden, x_, wxh_, bh_, whh_, h0_, extra_,
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
            raise NotImplementedError(f"{cell.name} hoisted recurrence: the gradient of "
                                      f"{'/'.join(cell.loop_extras)} is not implemented")
        g = dlast if dlast is not None else T.zeros_like(h0_in)
        last_steps = _last_steps(T, states_out, lengths_in)
        extra = [dstates] if dstates is not None else []
        loop = backward_loop(dstates is not None)
        dxw, dhw, dh0 = cell.run_backward(T, loop, states_out, extras_out, h0_in, whh, g,
                                          last_steps, extra)

        def rows(v, width):
            return v.reshape((-1, width))
        flat = rows(dxw, width)
        # dWhh = dhw^T [h0; h_0..h_{T-2}], as two products (no concatenated copy of the states)
        d_whh = (T.dot(rows(dhw[1:], width).T, rows(states_out[:-1], n_hidden))
                 + T.dot(rows(dhw[:1], width).T, rows(T.shape_padleft(h0_in), n_hidden)))
        grads = [T.dot(flat, wxh).reshape(x_in.shape), T.dot(flat.T, rows(x_in, n_in)),
                 flat.sum(axis=0), d_whh]
        grads.extend(cell.extra_grads(rows(dhw, width), n_hidden))
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
                     name=f"Hoisted{cell.name.upper()}Recurrence", **override)
    return op(*outer)[1]


def loops(lib, cell, n_hidden: int, fused: bool):
    """``(forward, backward)`` of ``cell``: its scans, or the fused C kernels its ``fused_ops``
    name (``backward`` takes ``with_dstates`` and returns the loop)."""
    if not fused:
        return (cell.scan_forward(lib, n_hidden),
                functools.partial(cell.scan_backward, lib, n_hidden))
    try:
        from . import fused_cells
        forward_op, backward_op = (getattr(fused_cells, name) for name in cell.fused_ops)
    except (ImportError, AttributeError, TypeError):
        raise ConfigError(f"formulation=fused: no fused {cell.name} kernels in this rnnperf "
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
