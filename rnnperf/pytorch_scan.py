"""A Scan conversion for PyTensor's PyTorch backend (``mode="PYTORCH"``).

PyTensor 3.0-3.3 ships no ``pytorch_funcify`` for :class:`~pytensor.scan.op.Scan`, so any graph
with a ``scan`` (the seed RNN and every gradient of it) fails to compile there. Importing this
module registers one, modelled on ``pytensor/link/jax/dispatch/scan.py``.
"""

from __future__ import annotations

import torch
from pytensor.compile.mode import PYTORCH
from pytensor.link.pytorch.dispatch import pytorch_funcify
from pytensor.graph.basic import Constant
from pytensor.scalar.basic import EQ
from pytensor.scan.op import Scan
from pytensor.tensor.subtensor import IncSubtensor, Subtensor, indices_from_subtensor


@pytorch_funcify.register(Scan)
def pytorch_funcify_Scan(op: Scan, node, **kwargs):
    # How this differs from the JAX conversion, and why:
    #
    # * JAX needs a traceable `lax.scan`; PyTorch has no such primitive, so the loop is a plain
    #   Python `for` over the inner function, run eagerly. The PyTorch linker wraps the whole outer
    #   graph in `torch.compile`; if dynamo traced this closure it would unroll the loop (T copies
    #   of the step, a recompile for every new T, `int(n_steps)` a graph break anyway), so the
    #   closure is wrapped in `torch.compiler.disable`: the outer graph is compiled around it and
    #   the loop runs in eager mode, one Python call of the inner graph per step.
    # * Like PyTensor's own Scan (and unlike the JAX one) traced outputs are written into
    #   preallocated buffers (`torch.empty` of `init + n_steps` rows on the inputs' device) rather
    #   than collected in a list and stacked; the state for the next step is read back from the
    #   same buffer at its taps, so MIT-SOT needs no concatenation.
    # * The outer graph decides how many rows of each trace it keeps (the `scan_save_mem` rewrite
    #   shrinks the buffers to the last `k` entries when only `h_T` is used). We always run the
    #   full trace and return its last `len(outer buffer)` rows, the rule of the JAX conversion;
    #   it costs `T x state` memory, never a wrong answer.
    # * MIT-MOT (what `pytensor.grad` produces for the adjoint of a recurrent state) behaves like
    #   PyTensor's Scan: a clone of the outer buffer is read at `i + in_taps` and written at
    #   `i + out_taps` as the loop goes, and is itself the output.
    # * Sequences are `unbind`-ed once into per-step views; the step counter is a Python int, and
    #   nothing goes through NumPy inside the loop.
    # * `while` loops stop after the step whose `until` condition is true and return the traces
    #   truncated to the steps actually run, as PyTensor's Scan does.
    #
    # Not covered (NotImplementedError at conversion or call time): a scan whose trace would be
    # *longer* than the state computed (an outer buffer bigger than `init + n_steps`, which only a
    # hand-built Scan produces), NIT-SOT outputs of a zero-step scan (their row shape is unknown
    # without running a step), and MIT-MOT inside `while` loops. Untraced SIT-SOT (shared
    # variables updated by the loop, e.g. RNG states) are carried and returned, but RNG ops
    # themselves depend on the PyTorch backend's own support.
    info = op.info
    if info.as_while and info.n_mit_mot:
        raise NotImplementedError("PyTorch Scan: MIT-MOT outputs in a while loop are not "
                                  "supported (rnnperf.pytorch_scan)")

    # Rewrite a copy of the inner graph for this backend (the Op's fgraph may be shared with a
    # function compiled in another mode), then convert it like any other graph.
    inner_fgraph = op.fgraph.clone()
    PYTORCH.optimizer(inner_fgraph)  # fast_run minus PytorchLinker.incompatible_rewrites
    kwargs.pop("storage_map", None)
    kwargs.pop("input_storage", None)
    inner_func = pytorch_funcify(inner_fgraph, fgraph_name="scan_inner_fgraph", **kwargs)

    mit_sot_in = [tuple(taps) for taps in info.mit_sot_in_slices]
    sit_sot_in = [tuple(taps) for taps in info.sit_sot_in_slices]
    recurrent_taps = mit_sot_in + sit_sot_in          # tap -1 only, for SIT-SOT
    n_init = [-min(taps) for taps in recurrent_taps]  # rows of initial state in each buffer
    mit_mot_in = info.normalized_mit_mot_in_slices
    mit_mot_out = info.normalized_mit_mot_out_slices
    nit_sot_dtypes = [getattr(torch, out.type.dtype) for out in op.outer_nitsot_outs(node.outputs)]

    @torch.compiler.disable
    def scan(*outer_inputs):
        n_steps = int(outer_inputs[0])
        if n_steps < 0:
            raise ValueError(f"PyTorch Scan: n_steps={n_steps} must be >= 0")
        seq_steps = [seq.unbind(0)[:n_steps] for seq in op.outer_seqs(outer_inputs)]
        if any(len(steps) < n_steps for steps in seq_steps):
            raise ValueError(f"PyTorch Scan: a sequence is shorter than n_steps={n_steps}")
        mit_mot = [buf.clone() for buf in op.outer_mitmot(outer_inputs)]
        in_buffers = op.outer_mitsot(outer_inputs) + op.outer_sitsot(outer_inputs)
        traces = []
        for buf, k in zip(in_buffers, n_init):
            if buf.shape[0] > k + n_steps:
                raise NotImplementedError(
                    f"PyTorch Scan: outer buffer of {buf.shape[0]} rows is longer than the "
                    f"{k} initial + {n_steps} computed states (rnnperf.pytorch_scan)")
            trace = torch.empty((k + n_steps, *buf.shape[1:]), dtype=buf.dtype,
                                device=buf.device)
            trace[:k] = buf[:k]
            traces.append(trace)
        nit_sot_keep = [int(size) for size in op.outer_nitsot(outer_inputs)]
        nit_traces: list = [None] * len(nit_sot_keep)
        untraced = list(op.outer_untraced_sit_sot(outer_inputs))
        non_seqs = list(op.outer_non_seqs(outer_inputs))

        n_done = 0
        for i in range(n_steps):
            args = [steps[i] for steps in seq_steps]
            for buf, taps in zip(mit_mot, mit_mot_in):
                args.extend(buf[i + tap] for tap in taps)
            for trace, taps, k in zip(traces, recurrent_taps, n_init):
                args.extend(trace[k + i + tap] for tap in taps)
            args.extend(untraced)
            args.extend(non_seqs)
            outs = inner_func(*args)

            pos = 0
            for buf, taps in zip(mit_mot, mit_mot_out):
                for tap in taps:
                    buf[i + tap] = outs[pos]
                    pos += 1
            for trace, k in zip(traces, n_init):
                trace[k + i] = outs[pos]
                pos += 1
            for j, value in enumerate(outs[pos:pos + len(nit_traces)]):
                if nit_traces[j] is None:
                    value = torch.as_tensor(value)
                    nit_traces[j] = torch.empty((n_steps, *value.shape), dtype=nit_sot_dtypes[j],
                                                device=value.device)
                nit_traces[j][i] = value
            pos += len(nit_traces)
            untraced = list(outs[pos:pos + len(untraced)])
            n_done = i + 1
            if info.as_while and bool(outs[-1]):  # `until(cond)` stops once cond holds
                break

        if nit_traces and n_steps == 0:
            raise NotImplementedError("PyTorch Scan: NIT-SOT outputs of a zero-step scan are "
                                      "not supported (rnnperf.pytorch_scan)")
        results = list(mit_mot)
        for trace, buf, k in zip(traces, in_buffers, n_init):
            results.append(trace[:k + n_done][-buf.shape[0]:])
        for trace, keep in zip(nit_traces, nit_sot_keep):
            results.append(trace[:n_done][-keep:] if keep else trace[:0])
        results.extend(untraced)
        assert len(results) == info.n_outer_outputs, (len(results), info)
        return results[0] if len(results) == 1 else results

    return scan


# --- reversed slices ------------------------------------------------------------------------------
# `pytensor.grad` of a scan walks the sequences backwards: it feeds the backward Scan `x[::-1]`
# and reverses its traces the same way. PyTorch tensors have no negative-step slicing, and
# PyTensor 3.0's PyTorch Subtensor/IncSubtensor conversions raise "Negative step sizes are not
# supported in Pytorch" for them. The two conversions below replace those (the same behaviour for
# positive steps) and turn each negative-step slice into the equivalent positive slice followed by
# `torch.flip` on that axis.


def _split_negative_steps(x, indices):
    """``(positive_indices, flip_dims)`` with ``x[indices] == x[positive].flip(flip_dims)``."""
    positive, flip_dims, out_dim = [], [], 0
    for axis, index in enumerate(indices):
        if not isinstance(index, slice):
            positive.append(index)  # an integer index drops the axis
            continue
        step = None if index.step is None else int(index.step)
        if step is not None and step < 0:
            bound = lambda v: None if v is None else int(v)  # noqa: E731
            start, stop, step = slice(bound(index.start), bound(index.stop), step).indices(
                x.shape[axis])
            count = len(range(start, stop, step))
            if count == 0:
                index = slice(0, 0)
            else:
                index = slice(start + (count - 1) * step, start + 1, -step)
                flip_dims.append(out_dim)
        positive.append(index)
        out_dim += 1
    return tuple(positive), tuple(flip_dims)


@pytorch_funcify.register(Subtensor)
def pytorch_funcify_Subtensor(op, node, **kwargs):
    idx_list = op.idx_list
    _x, *idxs = node.inputs
    constant = all(isinstance(idx, Constant) for idx in idxs)
    fixed = indices_from_subtensor([int(idx.data) for idx in idxs], idx_list) if constant else None

    def subtensor(x, *flattened_indices):
        indices = fixed if constant else indices_from_subtensor(flattened_indices, idx_list)
        positive, flip_dims = _split_negative_steps(x, indices)
        out = x[positive]
        return out.flip(flip_dims) if flip_dims else out

    return subtensor


@pytorch_funcify.register(IncSubtensor)
def pytorch_funcify_IncSubtensor(op, node, **kwargs):
    idx_list = op.idx_list
    inplace, set_instead_of_inc = op.inplace, op.set_instead_of_inc

    def inc_subtensor(x, y, *flattened_indices):
        indices = indices_from_subtensor(flattened_indices, idx_list)
        positive, flip_dims = _split_negative_steps(x, indices)
        if flip_dims:
            # y broadcasts against x[indices]; give it that rank before flipping its axes.
            target_ndim = x[positive].ndim
            y = torch.as_tensor(y).reshape((1,) * (target_ndim - y.ndim) + tuple(y.shape))
            y = y.flip(flip_dims)
        if not inplace:
            x = x.clone()
        if set_instead_of_inc:
            x[positive] = y
        else:
            x[positive] += y
        return x

    return inc_subtensor


# --- elementwise equality -------------------------------------------------------------------------
# PyTensor maps its scalar `EQ` onto NumPy's name `equal`, and the PyTorch backend looks that name
# up in `torch`: but `torch.equal` is whole-tensor equality returning a Python bool, not the
# elementwise `torch.eq`. The shape checks `pytensor.grad` inserts (`Assert(Eq(Shape_i, Shape_i))`)
# then fail with "'bool' object is not subscriptable".


@pytorch_funcify.register(EQ)
def pytorch_funcify_EQ(op, node, **kwargs):
    return torch.eq
