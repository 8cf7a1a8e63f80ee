"""The FLOP model of one step of the seed RNN: the only place FLOPs are counted.

Only matrix products are counted (``2·m·n·k`` for an ``(m, k) x (k, n)`` product), the convention
of every GEMM benchmark; ``tanh``, the mask, softmax and bias adds are ``O(B·H)`` per time step and
vanish next to the products at every shape we measure. Counted are the products a *minimal*
implementation must perform (convention :data:`CONVENTION`), so that FLOPs per second over a peak
measured in the same library is a physical ratio, at most 1. For a batch of ``B`` sequences of
``T`` steps, ``I`` inputs, ``H`` hidden units and ``O`` classes:

* **forward** = ``T · 2·B·H·(I+H)`` (``Wxh x_t`` and ``Whh h_{t-1}`` at every step)
  ``+ 2·B·H·O`` (the output layer, once, on ``h_T``);
* **train** = forward ``+ T · 2·B·H·H`` (``dh`` through ``Whh`` at every step)
  ``+ T · 2·B·H·H`` (``dWhh``) ``+ T · 2·B·H·I`` (``dWxh``) ``+ 2 · 2·B·H·O`` (the output
  layer's ``dWhy`` and ``dh_T``). ``dX``, the gradient of the input, is not counted: no engine
  computes it, nobody needs it. The SGD update is ``O(params)`` and not counted either.

A GRU or LSTM cell (``cell=``) stacks ``G`` gates (3 or 4) in ``Wxh`` and ``Whh``: every product
with either has ``G·H`` rows instead of ``H``, so each ``H`` that counts their rows above becomes
``G·H`` (the same rule, no new convention); the gates' elementwise work is ``O(B·G·H)`` per step
and not counted, like ``tanh``. The formulas are each cell's ``flops`` (:mod:`rnnperf.cells`).
A user's cell is counted from its step's graph by the same rule (every product forward; backward
one more for each operand that needs a gradient), unless it declares its own count.

The formulation (``seed``, ``hoisted``, ``fused``) does not change the count: hoisting batches the
same products into one GEMM. Documents before ``rnnperf.results/3`` counted train as 3 x forward
(:data:`OLD_CONVENTION`), which includes ``dX``: 12.5 % more than performed at the reference
workload; ``compare`` says which convention each document used.
"""

from __future__ import annotations

from .. import cells
from ..errors import ConfigError

#: the convention of this module, recorded in every results document
CONVENTION = "minimal-products/1"
#: what documents before rnnperf.results/3 counted (train = 3 x forward)
OLD_CONVENTION = "3x-forward/0"
#: FLOPs counted from a user cell's step graph (in a worker: :mod:`.cell_check`), by
#: ``(sha256, task, (T, B, I, H, O))``
GRAPH_FLOPS: dict[tuple, int] = {}


def step_flops(task: str, T: int, B: int, I: int, H: int, O: int,  # noqa: E741
               cell="elman") -> int:
    """FLOPs of one timed step of ``task`` (``forward`` or ``train``) of ``cell``: its own count
    (every built-in cell's formula; a user's cell may declare one), else the count made from its
    step's graph before the sweep (:data:`GRAPH_FLOPS`)."""
    if task not in ("forward", "train"):
        raise ValueError(f"unknown task {task!r}")
    the_cell = cells.get(cell)
    if the_cell.has("flops"):
        return int(the_cell.flops(task, T, B, I, H, O))
    key = (the_cell.sha256, task, (T, B, I, H, O))
    if key not in GRAPH_FLOPS:
        raise ConfigError(f"cell={the_cell.name}: its FLOPs at T={T},B={B},I={I},H={H},O={O} "
                          "were not counted (rnnperf.bench.cell_check.check_cells counts them "
                          "from the step's graph before a sweep)")
    return GRAPH_FLOPS[key]


def forward_flops(T: int, B: int, I: int, H: int, O: int,  # noqa: E741
                  cell="elman") -> int:
    """Matrix-product FLOPs of one forward pass over a ``(T, B, I)`` batch."""
    return step_flops("forward", T, B, I, H, O, cell)


def backward_flops(T: int, B: int, I: int, H: int, O: int,  # noqa: E741
                   cell="elman") -> int:
    """Matrix-product FLOPs of the backward pass a minimal implementation performs."""
    return step_flops("train", T, B, I, H, O, cell) - step_flops("forward", T, B, I, H, O, cell)


def matmul_flops(n: int) -> int:
    """FLOPs of one ``(n, n) x (n, n)`` product: the peak probe's unit of work."""
    return 2 * n ** 3
