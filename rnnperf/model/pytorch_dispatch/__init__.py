"""PyTensor -> PyTorch conversions that rnnperf needs and PyTensor's PyTorch backend lacks.

PyTensor 3.0-3.3 ships no ``pytorch_funcify`` for :class:`~pytensor.scan.op.Scan`, so any graph
with a ``scan`` (the seed RNN and every gradient of it) fails to compile in ``mode="PYTORCH"``;
and its Subtensor, IncSubtensor and elementwise ``EQ`` conversions are wrong for what
``pytensor.grad`` of a scan produces (negative-step slices, ``Assert(Eq(Shape_i, Shape_i))``).

Importing this package registers the conversions with ``pytorch_funcify``, replacing PyTensor's
own where it has one. One module per op family, as in PyTensor's ``pytensor/link/jax/dispatch/``:

* :mod:`.scan`: :class:`~pytensor.scan.op.Scan`, an eager loop outside ``torch.compile``;
* :mod:`.subtensor`: Subtensor and IncSubtensor with negative-step slices;
* :mod:`.elemwise`: the scalar ``EQ`` as the elementwise ``torch.eq``.
"""

from . import elemwise, scan, subtensor  # noqa: F401  (registers the conversions)
