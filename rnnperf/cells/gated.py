"""What the GRU and the LSTM share beyond their stacked layout: the hoisted formulation's loops.

The hoisted formulation computes every input projection as one GEMM, ``xw = x Wxh^T + bh``, then
runs an unmasked loop over ``xw`` holding only ``Whh``, and reads each sequence's final state at
its own last step. Each gated cell writes that loop twice with the fused C kernels' interface
(:mod:`rnnperf.model.fused_cells`), as scans over :class:`~rnnperf.model.graph.GraphLib`:
``scan_forward(lib, H)`` and, for PyTensor's hand-written pullback
(:mod:`rnnperf.model.hoisted_cells`), ``scan_backward(lib, H, with_dstates)``; ``run_forward`` and
``run_backward`` call either kind of loop with the cell's own arguments, so the graph around them
is written once.
"""

from __future__ import annotations

from ..errors import ConfigError
from .stacked import StackedCell


class GatedCell(StackedCell):
    """A stacked cell with hoisted and fused formulations (the GRU, the LSTM)."""

    #: what the forward loop returns besides every state: what its pullback reads
    loop_extras: tuple[str, ...] = ()

    def hoisted_last_state(self, lib, x, shared, h0, lengths=None, fused=False):
        """Each sequence's final state of the hoisted (or ``fused``) formulation: the library's
        recurrence (``GraphLib.hoisted_cells``/``fused_cells``) for this cell."""
        recurrence = lib.fused_cells if fused else lib.hoisted_cells
        if recurrence is None:
            raise ConfigError(f"formulation=fused: this engine has no fused {self.name} kernels "
                              "(PyTensor's C backend has them)")
        return recurrence(lib, self, x, shared, h0, lengths)

    def scan_forward(self, lib, n_hidden: int):
        raise NotImplementedError

    def scan_backward(self, lib, n_hidden: int, with_dstates: bool):
        raise NotImplementedError

    def run_forward(self, T, loop, xw, h0, Whh, extra_weights):
        """``(states, *extras)`` of the forward ``loop`` (a scan or a fused kernel)."""
        raise NotImplementedError

    def run_backward(self, T, loop, states, extras, h0, Whh, g, last, dstates):
        """``(dxw, dhw, dh0)`` of the backward ``loop``: the gradients of the input and
        recurrent projections at every step, and of ``h0``."""
        raise NotImplementedError

    def extra_grads(self, dhw_rows, n_hidden: int) -> list:
        """The gradients of :attr:`EXTRA`'s weights from ``dhw`` as ``(T*B, G*H)`` rows."""
        return []


def ends(T, states, last):
    """``ends[t] = 1`` where step t holds a sequence's final state: ``(T, B, 1)``, or ``(T,)``
    for a single sequence; where ``g`` enters the backward loop."""
    steps = T.arange(states.shape[0])
    if states.ndim == 2:
        return T.cast(T.eq(steps, last[0]), states.dtype)
    return T.cast(T.eq(steps[:, None], last[None, :]), states.dtype)[:, :, None]


def same_type(T, value, like):
    """``value`` with ``like``'s static shape: a loop state keeps its input's type, and a static
    batch of 1 is broadcastable, which a product's output type does not carry."""
    return T.specify_shape(value, like.type.shape)
