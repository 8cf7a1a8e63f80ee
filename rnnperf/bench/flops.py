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
and not counted, like ``tanh``.

The formulation (``seed``, ``hoisted``, ``fused``) does not change the count: hoisting batches the
same products into one GEMM. Documents before ``rnnperf.results/3`` counted train as 3 x forward
(:data:`OLD_CONVENTION`), which includes ``dX``: 12.5 % more than performed at the reference
workload; ``compare`` says which convention each document used.
"""

from __future__ import annotations

from ..model.spec import GATES

#: the convention of this module, recorded in every results document
CONVENTION = "minimal-products/1"
#: what documents before rnnperf.results/3 counted (train = 3 x forward)
OLD_CONVENTION = "3x-forward/0"




def forward_flops(T: int, B: int, I: int, H: int, O: int,  # noqa: E741 (the maths' names)
                  cell: str = "elman") -> int:
    """Matrix-product FLOPs of one forward pass over a ``(T, B, I)`` batch."""
    GH = GATES[cell] * H
    return T * 2 * B * GH * (I + H) + 2 * B * H * O


def backward_flops(T: int, B: int, I: int, H: int, O: int,  # noqa: E741
                   cell: str = "elman") -> int:
    """Matrix-product FLOPs of the backward pass a minimal implementation performs."""
    GH = GATES[cell] * H
    return T * 2 * B * GH * H * 2 + T * 2 * B * GH * I + 2 * (2 * B * H * O)


def step_flops(task: str, T: int, B: int, I: int, H: int, O: int,  # noqa: E741
               cell: str = "elman") -> int:
    """FLOPs of one timed step of ``task`` (``forward`` or ``train``) of ``cell``."""
    fwd = forward_flops(T, B, I, H, O, cell)
    if task == "forward":
        return fwd
    if task == "train":
        return fwd + backward_flops(T, B, I, H, O, cell)
    raise ValueError(f"unknown task {task!r}")


def matmul_flops(n: int) -> int:
    """FLOPs of one ``(n, n) x (n, n)`` product: the peak probe's unit of work."""
    return 2 * n ** 3
