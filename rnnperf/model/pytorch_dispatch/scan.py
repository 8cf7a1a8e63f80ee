"""The Scan conversion for PyTensor's PyTorch backend (``mode="PYTORCH"``).

PyTensor 3.0-3.3 ships no ``pytorch_funcify`` for :class:`~pytensor.scan.op.Scan`, so any graph
with a ``scan`` (the seed RNN and every gradient of it) fails to compile there. Importing this
module registers one, modelled on ``pytensor/link/jax/dispatch/scan.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from pytensor.compile.mode import PYTORCH
from pytensor.link.pytorch.dispatch import pytorch_funcify
from pytensor.scan.op import Scan

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


@pytorch_funcify.register(Scan)
def pytorch_funcify_Scan(op: Scan, node, **kwargs):
    if op.info.as_while and op.info.n_mit_mot:
        raise NotImplementedError("PyTorch Scan: MIT-MOT outputs in a while loop are not "
                                  "supported (rnnperf.model.pytorch_dispatch)")
    inner_func = _inner_function(op, **kwargs)
    layout = _Layout.of(op, node)

    @torch.compiler.disable
    def scan(*outer_inputs):
        loop = _start_loop(op, layout, outer_inputs)
        for i in range(loop.n_steps):
            outs = inner_func(*_step_inputs(loop, layout, i))
            _write_step_outputs(loop, layout, i, outs)
            loop.n_done = i + 1
            if layout.info.as_while and bool(outs[-1]):  # `until(cond)` stops once cond holds
                break
        return _results(loop, layout)

    return scan


def _inner_function(op: Scan, **kwargs):
    """The inner graph converted to a PyTorch function of one step's inputs."""
    # Rewrite a copy of the inner graph for this backend (the Op's fgraph may be shared with a
    # function compiled in another mode), then convert it like any other graph.
    inner_fgraph = _mutable_copy(op.fgraph)
    PYTORCH.optimizer(inner_fgraph)  # fast_run minus PytorchLinker.incompatible_rewrites
    kwargs.pop("storage_map", None)
    kwargs.pop("input_storage", None)
    return pytorch_funcify(inner_fgraph, fgraph_name="scan_inner_fgraph", **kwargs)


def _mutable_copy(fgraph):
    """A rewritable copy of a Scan's inner graph: PyTensor 3.3 keeps it as an immutable
    ``FrozenFunctionGraph`` (``unfreeze()``), 3.0-3.2 as a ``FunctionGraph`` (``clone()``)."""
    unfreeze = getattr(fgraph, "unfreeze", None)
    return unfreeze() if unfreeze is not None else fgraph.clone()


@dataclass(frozen=True)
class _Layout:
    """What is read off the Op once, at conversion time: the taps of each kind of state."""

    mit_mot_in: list
    mit_mot_out: list
    recurrent_taps: list  # MIT-SOT then SIT-SOT input taps (tap -1 only, for SIT-SOT)
    n_init: list          # rows of initial state in each recurrent buffer
    nit_sot_dtypes: list
    info: object          # the Op's ScanInfo

    @classmethod
    def of(cls, op: Scan, node) -> _Layout:
        info = op.info
        mit_sot_in = [tuple(taps) for taps in info.mit_sot_in_slices]
        sit_sot_in = [tuple(taps) for taps in info.sit_sot_in_slices]
        recurrent_taps = mit_sot_in + sit_sot_in
        return cls(
            mit_mot_in=info.normalized_mit_mot_in_slices,
            mit_mot_out=info.normalized_mit_mot_out_slices,
            recurrent_taps=recurrent_taps,
            n_init=[-min(taps) for taps in recurrent_taps],
            nit_sot_dtypes=[getattr(torch, out.type.dtype)
                            for out in op.outer_nitsot_outs(node.outputs)],
            info=info,
        )


@dataclass
class _Loop:
    """One call's state: per-step sequence views, the buffers the steps write, what is carried."""

    n_steps: int
    seq_steps: list    # per sequence, its first n_steps rows as views
    mit_mot: list      # clones of the outer MIT-MOT buffers, read and written in place
    in_buffers: list   # the outer MIT-SOT and SIT-SOT buffers (initial states, output lengths)
    traces: list       # their full traces, init + n_steps rows
    nit_sot_keep: list  # rows of each NIT-SOT trace the outer graph keeps
    nit_traces: list   # allocated at the first step, once a row's shape is known
    untraced: list     # untraced SIT-SOT, carried from step to step
    non_seqs: list
    n_done: int = 0


def _start_loop(op: Scan, layout: _Layout, outer_inputs) -> _Loop:
    """Check the outer inputs and allocate the traces for one call of the Scan."""
    n_steps = int(outer_inputs[0])
    if n_steps < 0:
        raise ValueError(f"PyTorch Scan: n_steps={n_steps} must be >= 0")
    seq_steps = [seq.unbind(0)[:n_steps] for seq in op.outer_seqs(outer_inputs)]
    if any(len(steps) < n_steps for steps in seq_steps):
        raise ValueError(f"PyTorch Scan: a sequence is shorter than n_steps={n_steps}")
    mit_mot = [buf.clone() for buf in op.outer_mitmot(outer_inputs)]
    in_buffers = op.outer_mitsot(outer_inputs) + op.outer_sitsot(outer_inputs)
    traces = _recurrent_traces(in_buffers, layout.n_init, n_steps)
    nit_sot_keep = [int(size) for size in op.outer_nitsot(outer_inputs)]
    return _Loop(
        n_steps=n_steps,
        seq_steps=seq_steps,
        mit_mot=mit_mot,
        in_buffers=in_buffers,
        traces=traces,
        nit_sot_keep=nit_sot_keep,
        nit_traces=[None] * len(nit_sot_keep),
        untraced=list(op.outer_untraced_sit_sot(outer_inputs)),
        non_seqs=list(op.outer_non_seqs(outer_inputs)),
    )


def _recurrent_traces(in_buffers, n_init, n_steps):
    """A ``k + n_steps``-row trace per recurrent buffer, its first ``k`` rows the initial state."""
    traces = []
    for buf, k in zip(in_buffers, n_init):
        if buf.shape[0] > k + n_steps:
            raise NotImplementedError(
                f"PyTorch Scan: outer buffer of {buf.shape[0]} rows is longer than the "
                f"{k} initial + {n_steps} computed states (rnnperf.model.pytorch_dispatch)")
        trace = torch.empty((k + n_steps, *buf.shape[1:]), dtype=buf.dtype, device=buf.device)
        trace[:k] = buf[:k]
        traces.append(trace)
    return traces


def _step_inputs(loop: _Loop, layout: _Layout, i: int) -> list:
    """The inner function's arguments for step ``i``, in the order of the inner graph's inputs."""
    args = [steps[i] for steps in loop.seq_steps]
    for buf, taps in zip(loop.mit_mot, layout.mit_mot_in):
        args.extend(buf[i + tap] for tap in taps)
    for trace, taps, k in zip(loop.traces, layout.recurrent_taps, layout.n_init):
        args.extend(trace[k + i + tap] for tap in taps)
    args.extend(loop.untraced)
    args.extend(loop.non_seqs)
    return args


def _write_step_outputs(loop: _Loop, layout: _Layout, i: int, outs) -> None:
    """Write step ``i``'s outputs into the buffers and traces; carry the untraced states."""
    pos = 0
    for buf, taps in zip(loop.mit_mot, layout.mit_mot_out):
        for tap in taps:
            buf[i + tap] = outs[pos]
            pos += 1
    for trace, k in zip(loop.traces, layout.n_init):
        trace[k + i] = outs[pos]
        pos += 1
    nit_traces = loop.nit_traces
    for j, value in enumerate(outs[pos:pos + len(nit_traces)]):
        if nit_traces[j] is None:
            value = torch.as_tensor(value)
            nit_traces[j] = torch.empty((loop.n_steps, *value.shape),
                                        dtype=layout.nit_sot_dtypes[j], device=value.device)
        nit_traces[j][i] = value
    pos += len(nit_traces)
    loop.untraced = list(outs[pos:pos + len(loop.untraced)])


def _results(loop: _Loop, layout: _Layout):
    """The Scan's outer outputs: each trace cut to the steps run and the rows the graph keeps."""
    if loop.nit_traces and loop.n_steps == 0:
        raise NotImplementedError("PyTorch Scan: NIT-SOT outputs of a zero-step scan are "
                                  "not supported (rnnperf.model.pytorch_dispatch)")
    n_done = loop.n_done
    results = list(loop.mit_mot)
    for trace, buf, k in zip(loop.traces, loop.in_buffers, layout.n_init):
        results.append(trace[:k + n_done][-buf.shape[0]:])
    for trace, keep in zip(loop.nit_traces, loop.nit_sot_keep):
        results.append(trace[:n_done][-keep:] if keep else trace[:0])
    results.extend(loop.untraced)
    assert len(results) == layout.info.n_outer_outputs, (len(results), layout.info)
    return results[0] if len(results) == 1 else results
