"""The FLOP model of one step of the seed RNN: the only place FLOPs are counted.

Only matrix products are counted (``2·m·n·k`` for an ``(m, k) x (k, n)`` product), the convention
of every GEMM benchmark; ``tanh``, the mask, softmax and bias adds are ``O(B·H)`` per time step and
vanish next to the products at every shape we measure. For a batch of ``B`` sequences of ``T``
steps, ``I`` inputs, ``H`` hidden units and ``O`` classes:

* **forward** = ``T · 2·B·H·(I+H)`` (``Wxh x_t`` and ``Whh h_{t-1}`` at every step)
  ``+ 2·B·H·O`` (the output layer, once, on ``h_T``);
* **train** ≈ ``3 ×`` forward: the backward pass of a product ``Y = X W`` is two products of the
  same size (``dX = dY W^T``, ``dW = X^T dY``), so forward + backward is three times the forward
  products. The SGD update is ``O(params)`` and not counted.

The formulation (``seed`` or ``hoisted``) does not change the count: hoisting batches the same
input products into one GEMM. Engines that skip work (e.g. ``dX`` for the input, which nobody
needs) do fewer real FLOPs than counted, so their "GFLOP/s" is an *effective* rate: model FLOPs
per second, comparable across engines, which is what a throughput figure should be.
"""

from __future__ import annotations

TRAIN_FACTOR = 3


def forward_flops(T: int, B: int, I: int, H: int, O: int) -> int:  # noqa: E741 (the maths' names)
    """Matrix-product FLOPs of one forward pass over a ``(T, B, I)`` batch."""
    return T * 2 * B * H * (I + H) + 2 * B * H * O


def step_flops(task: str, T: int, B: int, I: int, H: int, O: int) -> int:  # noqa: E741
    """FLOPs of one timed step of ``task`` (``forward`` or ``train``)."""
    fwd = forward_flops(T, B, I, H, O)
    if task == "forward":
        return fwd
    if task == "train":
        return TRAIN_FACTOR * fwd
    raise ValueError(f"unknown task {task!r}")


def matmul_flops(n: int) -> int:
    """FLOPs of one ``(n, n) x (n, n)`` product: the peak probe's unit of work."""
    return 2 * n ** 3
