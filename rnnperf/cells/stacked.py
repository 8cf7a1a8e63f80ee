"""What rnnperf's built-in cells share: their gates stacked in one ``Wxh`` ``(G*H, I)``, one
``Whh`` ``(G*H, H)`` and one ``bh`` ``(G*H,)``, in torch's gate order.

That layout is what the optional parts are written for: the FLOP formula (every product with
``Wxh`` or ``Whh`` is G times taller than Elman's, :mod:`rnnperf.bench.flops`' convention), the
oracle's hoisted input projection (``xw = x Wxh^T + bh``, one GEMM), the hoisted and fused
formulations, and the peers' weight copies (``weight_ih_l0 = Wxh`` ...). A cell with another
layout implements the required parts alone (:mod:`.contract`) and gets the defaults.
"""

from __future__ import annotations

from .contract import Cell


class StackedCell(Cell):
    """A cell of ``GATES`` stacked gates; subclasses write the step and the optional parts."""

    GATES = 1
    #: recurrent parameters beyond the stacked three (the GRU's ``bhn``), each ``(H,)``
    EXTRA = ()

    @property
    def param_order(self) -> tuple[str, ...]:
        # the Elman seed's order first, so an Elman model draws the numbers it always drew
        return ("Wxh", "Whh", "Why", "bh", "by") + self.EXTRA

    def param_shapes(self, n_in: int, n_hidden: int) -> dict:
        rows = self.GATES * n_hidden
        shapes = {"Wxh": (rows, n_in), "Whh": (rows, n_hidden), "bh": (rows,)}
        shapes.update({name: (n_hidden,) for name in self.EXTRA})
        return shapes

    def flops(self, task: str, T: int, B: int, I: int, H: int, O: int) -> int:  # noqa: E741
        """Matrix-product FLOPs of one timed step (:mod:`rnnperf.bench.flops`' convention):
        forward ``T·2·B·GH·(I+H) + 2·B·H·O``; train adds ``dh`` through ``Whh`` and ``dWhh``
        (``T·2·B·GH·H`` each), ``dWxh`` (``T·2·B·GH·I``) and the head's two (``2·2·B·H·O``)."""
        GH = self.GATES * H
        forward = T * 2 * B * GH * (I + H) + 2 * B * H * O
        if task == "forward":
            return forward
        if task != "train":
            raise ValueError(f"unknown task {task!r}")
        return forward + T * 2 * B * GH * H * 2 + T * 2 * B * GH * I + 2 * (2 * B * H * O)

    def projections(self, T, x_t, h, params):
        """``(xw_t, hw_t)``: ``x_t Wxh^T + bh`` and ``h Whh^T``, the step's two products."""
        return T.dot(x_t, params["Wxh"].T) + params["bh"], T.dot(h, params["Whh"].T)

    def hidden(self, params) -> int:
        """``H`` as a Python int (gate slices need constant bounds)."""
        return params.shapes["Whh"][1]
