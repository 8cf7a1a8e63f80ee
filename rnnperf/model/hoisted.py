"""The hoisted recurrence with a hand-written gradient, for PyTensor's backends.

# Why
Autodiff of the seed's scan gives a backward scan that accumulates ``dWhh += da_t^T h_{t-1}``
(and ``dWxh``, ``dbh``) inside the loop: T small rank-B updates, each a tiny GEMM with per-step
overhead. The same sums are single GEMMs over all time steps once the per-step ``da_t`` are
known. So the recurrence is one ``OpFromGraph`` whose forward is one big GEMM for every input
projection, ``xw = x Wxh^T + bh``, then the scan over ``xw``, and whose pullback is

    dh = dh_T                                (a batch: 0, and g_b enters at b's last step)
    for t = T-1 .. 0:                        (the only loop: one (B,H)x(H,H) GEMM per step)
        da_t  = (dh + e_t g) * (1 - h_t^2)   (e_t[b] = 1 where t = len_b - 1)
        dh    = da_t Whh
    dWhh = da^T H_prev,  dWxh = da^T X,  dbh = sum da      (single GEMMs over all T*B rows)
    dh0  = dh,  dX = da Wxh                                 (pruned unless someone asks)

The recurrence runs unmasked: a finished sequence's state is read at its last step instead of
being frozen by a mask at every step (the same function; see :mod:`rnnperf.model.graph`).

``inline=True`` lets PyTensor inline the forward after the gradient is built, so every backend
sees plain scans and GEMMs, and no backend needs an OpFromGraph conversion.

The model stays the seed's model: same function, same parameters, parity-checked against the
oracle like the literal formulation (``formulation=seed``), which stays selectable.
"""

from __future__ import annotations

import inspect


def pytensor_hoisted_recurrence(lib, x, Wxh, bh, Whh, h0, lengths=None, fused=False):
    """Every state, and the final one of each sequence (``h_{len-1}``; ``h_T`` without lengths),
    of ``h_t = tanh(x_t Wxh^T + bh + h_{t-1} Whh^T)``, with our pullback.

    ``fused`` runs both loops as C kernels (:mod:`rnnperf.model.fused`, C backend only)
    instead of scans; everything around the loops is the same graph.
    """
    from pytensor.compile.builders import OpFromGraph
    from pytensor.gradient import DisconnectedType

    from .graph import hoisted_recurrence

    T = lib.T
    outer = [x, Wxh, bh, Whh, h0] + ([lengths] if lengths is not None else [])
    inputs = [v.type() for v in outer]
    loop = None
    if fused:
        from .fused import ElmanRecurrence
        loop = ElmanRecurrence()
    # The forward is the model's own hoisted recurrence (written once, in rnnperf.model.graph), over
    # this op's inner inputs; only the gradient below is ours.
    states, last = hoisted_recurrence(lib, *inputs[:5], inputs[5] if lengths is not None else None,
                                      loop=loop)
    backward_loop = _fused_backward_loop if fused else _scan_backward_loop

    def backward(op_inputs, op_outputs, output_grads):
        x_, wxh_, _, w, h0_ = op_inputs[:5]
        h_all, _ = op_outputs
        dh_all, dh_last = (None if isinstance(g.type, DisconnectedType) else g
                           for g in output_grads)
        lengths_ = op_inputs[5] if lengths is not None else None
        da, dh0 = backward_loop(T, lib, h_all, w, h0_, dh_all, dh_last, lengths_)
        n_in, n_hidden = wxh_.shape[1], w.shape[0]

        def rows(v):
            return v.reshape((-1, n_hidden))
        flat_da = rows(da)
        # dWhh = da^T [h0; h_0..h_{T-2}], as two products rather than one over a concatenated
        # copy of every state (a (T,B,H) copy per call; docs/performance.md)
        d_whh = (T.dot(rows(da[1:]).T, rows(h_all[:-1]))
                 + T.dot(rows(da[:1]).T, rows(T.shape_padleft(h0_))))
        d_wxh = T.dot(flat_da.T, x_.reshape((-1, n_in)))
        d_x = T.dot(flat_da, wxh_).reshape(x_.shape)
        grads = [d_x, d_wxh, flat_da.sum(axis=0), d_whh, dh0]
        if lengths is not None:
            grads.append(DisconnectedType()())
        return grads

    # PyTensor renamed lop_overrides to pullback (3.0 warns on the old name); take what exists.
    params = inspect.signature(OpFromGraph.__init__).parameters
    override = {("pullback" if "pullback" in params else "lop_overrides"): backward}
    # Two outputs, every state and each sequence's final one: the model reads the final ones;
    # the backward pass reads every state without recomputing them.
    op = OpFromGraph(inputs, [states, last], inline=True, name="HoistedRecurrence", **override)
    states_out, last_out = op(*outer)
    return states_out, last_out


def _scan_backward_loop(T, lib, h_all, w, h0_, dh_all, dh_last, lengths):
    """``(da, dh0)`` of the pullback's loop, as a scan (every backend)."""
    # ends[t, b] = 1 at sequence b's last step: where its final state's gradient enters.
    ends = None
    if lengths is not None and dh_last is not None:
        ends = T.cast(T.eq(T.arange(h_all.shape[0])[:, None], lengths[None, :] - 1),
                      h_all.dtype)[:, :, None]

    def back_step(*args):
        # sequences: [dH_t] (when every state is read), [ends_t], h_t; states: dh, [g]; Whh
        args = list(args)
        dh_t = args.pop(0) if dh_all is not None else None
        end_t = args.pop(0) if ends is not None else None
        h_t, dh_in = args.pop(0), args.pop(0)
        dh = dh_in
        g = args.pop(0) if ends is not None else None
        if end_t is not None:
            dh = dh + end_t * g
        if dh_t is not None:
            dh = dh + dh_t
        da = dh * (1 - h_t * h_t)
        # a loop state keeps its input's type: a static batch of 1 is broadcastable, which
        # the dot's output type does not carry (specify_shape is free on every backend)
        dh_prev = T.specify_shape(T.dot(da, args[0]), dh_in.type.shape)
        if g is None:
            return [dh_prev, da]
        return [dh_prev, T.specify_shape(g + 0, g.type.shape), da]

    seqs = [s for s in (dh_all, ends) if s is not None] + [h_all]
    # Without lengths the final state's gradient seeds the loop; with lengths it enters at
    # each sequence's last step, riding along as a loop state rather than a constant:
    # PyTensor pushes loop-invariant products out of a scan, and ``ends * g`` pushed out is
    # a fresh (T, B, H) tensor per call (as costly as the dense zero gradient of gathered
    # states would be).
    if ends is not None:
        outputs_info = [T.zeros_like(h0_), dh_last, None]
    else:
        outputs_info = [dh_last if dh_last is not None else T.zeros_like(h0_), None]
    dh_seq, *_, da_rev = lib.scan(back_step, sequences=seqs, outputs_info=outputs_info,
                                  non_sequences=[w], go_backwards=True, strict=True)
    return da_rev[::-1], dh_seq[-1]


def _fused_backward_loop(T, lib, h_all, w, h0_, dh_all, dh_last, lengths):
    """``(da, dh0)`` of the pullback's loop, as one C kernel (C backend only)."""
    from .fused import ElmanRecurrenceGrad

    n_steps = h_all.shape[0]
    if lengths is not None:
        last = T.cast(lengths, "int64") - 1
    elif h_all.ndim == 3:
        last = T.alloc(T.cast(n_steps - 1, "int64"), h_all.shape[1])
    else:
        last = T.stack([T.cast(n_steps - 1, "int64")])
    g = dh_last if dh_last is not None else T.zeros_like(h0_)
    extra = [dh_all] if dh_all is not None else []
    da, dh0 = ElmanRecurrenceGrad(with_dstates=dh_all is not None)(h_all, w, g, last, *extra)
    # dh0 takes h0's type (a static batch of 1 is broadcastable there)
    return da, T.specify_shape(dh0, h0_.type.shape)
