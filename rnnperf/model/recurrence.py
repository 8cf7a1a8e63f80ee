"""Any cell's recurrence in the seed graph, written once for every Theano-family library.

Like :mod:`rnnperf.model.graph`, everything here is written against :class:`GraphLib`'s
namespace and keeps to what legacy Theano 1.0.5 had, so PyTensor's backends and Theano build the
same graph. The cell (:mod:`rnnperf.cells`) supplies the step; this module runs it:

* ``seed`` (:func:`seed_last_state`): the cell's own step inside ``scan``, masked when batched
  (a finished sequence's states stop changing, so ``h_T`` is each sequence's final state); the
  gradient is ``grad`` of the scan. Every cell has it, a user's included.
* ``hoisted`` (:func:`hoisted_last_state`, for a gated cell that has the part): one GEMM for
  every input projection before the loop, the loop unmasked over ``xw`` holding only ``Whh``,
  each sequence's final state read at its own last step; its gradient by ``grad`` (legacy
  Theano; PyTensor swaps in a hand-written pullback, ``GraphLib.hoisted_cells``).
"""

from __future__ import annotations

from ..cells import StepParams


def running_mask(T, x, lengths, dtype: str):
    """``mask[t, b, 0] = 1`` while sequence b is still running at step t (the seed formulation's
    batched variant, every cell's)."""
    return T.cast(T.lt(T.arange(x.shape[0]).dimshuffle(0, "x"),
                       lengths.dimshuffle("x", 0)), dtype).dimshuffle(0, 1, "x")


def freeze(m_t, new, prev):
    """The masked step: a finished sequence's state stops changing (``m_t`` None: no mask)."""
    return new if m_t is None else m_t * new + (1 - m_t) * prev


def recurrent_params(cell, shared) -> StepParams:
    """The cell's recurrent parameters among the model's shared variables, with their shapes."""
    names = [n for n in cell.all_param_names() if n not in ("Why", "by")]
    return StepParams({n: shared[n] for n in names},
                      {n: shared[n].get_value(borrow=True).shape for n in names})


def as_states(cell, out) -> list:
    """A step's answer as a list of new states, one per ``cell.states`` (a lone variable is one
    state)."""
    if not isinstance(out, (tuple, list)):
        out = [out]
    if len(out) != len(cell.states):
        raise ValueError(f"cell={cell.name}: step returned {len(out)} state(s), its states are "
                         f"{', '.join(cell.states)}")
    return list(out)


def seed_last_state(lib, cell, x, lengths, h0, shared, dtype: str):
    """``h_T`` of the seed formulation: the cell's step in a scan, masked when batched, every
    state starting at zero like ``h0``."""
    T, batched = lib.T, lengths is not None
    params = recurrent_params(cell, shared)
    names = list(params)
    mask = running_mask(T, x, lengths, dtype) if batched else None
    n_states = len(cell.states)

    def step(x_t, *rest):
        rest = list(rest)
        m_t = rest.pop(0) if batched else None
        prev, weights = rest[:n_states], rest[n_states:]
        inner = StepParams(dict(zip(names, weights)), params.shapes)
        new = as_states(cell, cell.step(lib.step_T, x_t, tuple(prev), inner))
        return [freeze(m_t, n, p) for n, p in zip(new, prev)]

    sequences = [x] + ([mask] if batched else [])
    outputs_info = [h0] + [T.zeros_like(h0) for _ in range(n_states - 1)]
    states = lib.scan(step, sequences=sequences, outputs_info=outputs_info,
                      non_sequences=[params[n] for n in names], strict=True)
    first = states[0] if n_states > 1 else states
    return first[-1]


def hoisted_loop(lib, cell, n_hidden: int, x, Wxh, bh, Whh, h0, extra_weights=(), forward=None):
    """``(xw, states, extras)`` of the hoisted formulation: ``xw = x Wxh^T + bh`` as one GEMM,
    then the unmasked loop ``forward`` (default: the cell's scan; a fused kernel has the same
    interface), ``extras`` named by the cell's ``loop_extras``."""
    xw = lib.T.dot(x, Wxh.T) + bh
    loop = forward or cell.scan_forward(lib, n_hidden)
    states, *extras = cell.run_forward(lib.T, loop, xw, h0, Whh, list(extra_weights))
    return xw, states, tuple(extras)


def n_hidden_of(shared) -> int:
    """``H`` as a Python int, from the recurrent weights' value: gate slices need constant
    bounds (JAX's conversion)."""
    return int(shared["Whh"].get_value(borrow=True).shape[1])


def extra_weights(cell, shared) -> list:
    """The cell's weights beyond ``Wxh``, ``bh``, ``Whh`` (the GRU's ``bhn``), in order."""
    return [shared[k] for k in getattr(cell, "EXTRA", ())]


def final_states(lib, states, lengths):
    """Each sequence's final state of an unmasked loop: ``h_{len-1}`` (``h_T`` without
    lengths)."""
    if lengths is None:
        return states[-1]
    return states[lengths - 1, lib.T.arange(states.shape[1])]


def hoisted_last_state(lib, cell, x, shared, h0, lengths=None):
    """The final states of a gated cell's hoisted formulation, gradient by ``grad`` of its scan
    (the default ``GraphLib.hoisted_cells``; every library, legacy Theano included)."""
    _, states, _ = hoisted_loop(lib, cell, n_hidden_of(shared), x, shared["Wxh"], shared["bh"],
                                shared["Whh"], h0, extra_weights(cell, shared))
    return final_states(lib, states, lengths)
