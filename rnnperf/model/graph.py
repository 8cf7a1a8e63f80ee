"""The seed graph: the Elman RNN of the classic Theano tutorial, written once for every
Theano-family library.

``h_t = tanh(Wxh x_t + Whh h_{t-1} + bh)`` from ``h_0 = 0`` run by **scan**,
``p = softmax(Why h_T + by)``, categorical cross-entropy, SGD, argmax prediction.

The tutorial's own code does not run (``forward_step`` is never defined, the target is a matrix,
the function is recompiled on every ``train`` call). :func:`build_seed_graph` is the working
version, written against a small namespace (:class:`GraphLib`) so that the *same* graph is built by
PyTensor (every backend) and by legacy Theano 1.0.5, whose APIs differ only in module names.

Two variants share one step function:

* single sequence: ``x`` is ``(T, I)``, ``y`` an int, ``p`` is ``(O,)``;
* batched minibatch: ``x`` is ``(T, B, I)`` with ``lengths`` ``(B,)``; a mask freezes the state of a
  finished sequence, so each row equals running that sequence alone; the loss is the batch mean.

Three formulations, all in the parity matrix:

* ``seed``: the tutorial's literal step, ``Wxh x_t`` computed inside the loop;
* ``hoisted``: one ``(T*B, I) x (I, H)`` GEMM for every input projection before the scan, only
  ``Whh`` inside it, and the weight gradients as single GEMMs after the backward scan (see
  :mod:`rnnperf.model.hoisted`).  Same function, same numbers, fewer and larger matrix products;
* ``fused``: the hoisted graph with its forward and backward loops as C kernels instead of scans
  (:mod:`rnnperf.model.fused`; PyTensor's C backend only, ``GraphLib.fused_scan``).

Every cell (``cell=``, :mod:`rnnperf.cells`: the built-in GRU and LSTM, a user's own) keeps
everything but the recurrence: its step runs in the seed formulation's scan
(:mod:`rnnperf.model.recurrence`), and a cell that has the optional part builds the hoisted and
fused formulations itself (the gated cells' pullback is :mod:`rnnperf.model.hoisted_cells`,
``GraphLib.hoisted_cells`` and ``fused_cells``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from .. import cells
from ..errors import ConfigError
from . import recurrence
from .spec import param_names


@dataclasses.dataclass
class GraphLib:
    """The handful of symbols the seed graph needs from a Theano-family library."""

    T: Any                       # pytensor.tensor or theano.tensor
    scan: Callable               # scan(fn, sequences, outputs_info, non_sequences, strict)
    grad: Callable
    shared: Callable
    tensor: Callable             # tensor(name, dtype, shape) -> symbolic input
    hoisted_scan: Callable = None  # type: ignore[assignment]  # set in __post_init__
    fused_scan: Callable | None = None  # the hoisted recurrence with C-kernel loops, if any
    # sigmoid (theano.tensor.nnet.sigmoid in Theano 1.0.5; T.sigmoid by default), and the gated
    # cells' hoisted and fused final states,
    # f(lib, cell, x, shared, h0, lengths) -> each sequence's final state
    sigmoid: Callable = None  # type: ignore[assignment]
    hoisted_cells: Callable = None  # type: ignore[assignment]
    fused_cells: Callable | None = None
    #: the namespace a cell's step is written against: ``T`` with ``T.sigmoid`` (set below)
    step_T: Any = None

    def __post_init__(self):
        if self.hoisted_scan is None:
            self.hoisted_scan = hoisted_recurrence
        if self.sigmoid is None:
            self.sigmoid = getattr(self.T, "sigmoid", None) or self.T.nnet.sigmoid
        if self.hoisted_cells is None:
            self.hoisted_cells = recurrence.hoisted_last_state
        if self.step_T is None:
            self.step_T = self.T if hasattr(self.T, "sigmoid") else StepNamespace(self.T,
                                                                                  self.sigmoid)


class StepNamespace:
    """A library's tensor namespace with ``sigmoid`` beside its own names: what a cell's step is
    written against on legacy Theano, which keeps sigmoid in ``theano.tensor.nnet``."""

    def __init__(self, T, sigmoid):
        self._T, self.sigmoid = T, sigmoid

    def __getattr__(self, name):
        return getattr(self._T, name)


@dataclasses.dataclass
class SeedGraph:
    """Symbolic inputs, shared parameters and outputs of one variant, ready to compile."""

    x: Any
    y: Any
    lengths: Any | None
    lr: Any
    params: dict[str, Any]
    probs: Any
    loss: Any
    grads: dict[str, Any]
    updates: list

    def inputs(self, *, with_y: bool = False, with_lr: bool = False) -> list:
        out = [self.x] + ([self.lengths] if self.lengths is not None else [])
        if with_y:
            out.append(self.y)
        if with_lr:
            out.append(self.lr)
        return out


def softmax_and_logp(T, z):
    """Numerically stable softmax and log-softmax along the last axis, in plain ops."""
    shifted = z - T.max(z, axis=-1, keepdims=True)
    logsum = T.log(T.sum(T.exp(shifted), axis=-1, keepdims=True))
    logp = shifted - logsum
    return T.exp(logp), logp


def build_seed_graph(lib: GraphLib, shared: dict[str, Any], *, batched: bool,
                     formulation: str = "seed", dtype: str = "float32",
                     shape: tuple[int, ...] | None = None, cell: str = "elman") -> SeedGraph:
    """Build the RNN graph once for any Theano-family library.

    ``shared`` holds the engine's shared variables, one per parameter, created once and reused by
    every compiled function so that parameters stay on the engine's side between calls.
    ``shape`` fixes the static input shape (``(T, I)`` or ``(T, B, I)``) for backends that need it
    at trace time (PyTensor's JAX Scan conversion); ``None`` leaves it dynamic.
    """
    T = lib.T
    the_cell = cells.get(cell)
    names = param_names(the_cell)
    Why, by = shared["Why"], shared["by"]
    n_hidden = int(Why.get_value(borrow=True).shape[1])

    if batched:
        x = lib.tensor("x", dtype, shape or (None, None, None))
        lengths = lib.tensor("lengths", "int64", (shape[1],) if shape else (None,))
        y = lib.tensor("y", "int64", (shape[1],) if shape else (None,))
        h0 = T.zeros((x.shape[1], n_hidden), dtype=dtype)
    else:
        x = lib.tensor("x", dtype, shape or (None, None))
        lengths = None
        y = lib.tensor("y", "int64", ())
        h0 = T.zeros((n_hidden,), dtype=dtype)

    if formulation == "seed":
        h_last = recurrence.seed_last_state(lib, the_cell, x, lengths, h0, shared, dtype)
    elif formulation in ("hoisted", "fused"):
        # One GEMM for every input projection; only Whh stays in the recurrence. The recurrence
        # runs unmasked and a sequence's final state is read at its own last step: h_T of the
        # masked recurrence is h_{len-1} of the unmasked one, so the function is the seed's,
        # while each step loses the mask's elementwise work (docs/performance.md).
        why = cells.refusal(the_cell, "", formulation)
        if why:
            raise ConfigError(why)
        h_last = the_cell.hoisted_last_state(lib, x, shared, h0, lengths,
                                             fused=formulation == "fused")
    else:
        raise ValueError(f"unknown formulation {formulation!r}")

    z = T.dot(h_last, Why.T) + by
    probs, logp = softmax_and_logp(T, z)
    if batched:
        loss = -T.mean(logp[T.arange(y.shape[0]), y])
    else:
        loss = -logp[y]
    grad_list = lib.grad(loss, [shared[n] for n in names])
    grads = dict(zip(names, grad_list))
    lr = lib.tensor("lr", dtype, ())
    updates = [(shared[n], shared[n] - lr * grads[n]) for n in names]
    return SeedGraph(x=x, y=y, lengths=lengths, lr=lr, params=shared, probs=probs, loss=loss,
                     grads=grads, updates=updates)


def hoisted_recurrence(lib: GraphLib, x, Wxh, bh, Whh, h0, lengths=None, loop=None):
    """``h_t = tanh(xw_t + Whh h_{t-1})`` over ``xw = x Wxh^T + bh``, unmasked.

    Returns every state and each sequence's final one: ``h_{len-1}`` (``h_T`` without lengths).
    ``xw`` is one GEMM for every step at once. Backends may swap in a recurrence with a
    hand-written gradient (``GraphLib.hoisted_scan``), and the loop itself: ``loop(xw, h0, Whh)
    -> states`` (a fused kernel) instead of the scan.
    """
    T = lib.T
    xw = T.dot(x, Wxh.T) + bh

    def step(xw_t, h_prev, w):
        return T.tanh(xw_t + T.dot(h_prev, w.T))

    if loop is not None:
        states = loop(xw, h0, Whh)
    else:
        states = lib.scan(step, sequences=[xw], outputs_info=[h0], non_sequences=[Whh],
                          strict=True)
    if lengths is None:
        return states, states[-1]
    return states, states[lengths - 1, T.arange(states.shape[1])]
