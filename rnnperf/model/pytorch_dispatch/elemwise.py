"""The elementwise-equality conversion for PyTensor's PyTorch backend.

PyTensor 3.0-3.3 converts its scalar ``EQ`` to the whole-tensor ``torch.equal``, which breaks the
shape checks ``pytensor.grad`` of a scan inserts; importing this module registers ``torch.eq``.
"""

from __future__ import annotations

import torch
from pytensor.link.pytorch.dispatch import pytorch_funcify
from pytensor.scalar.basic import EQ

# --- elementwise equality -------------------------------------------------------------------------
# PyTensor maps its scalar `EQ` onto NumPy's name `equal`, and the PyTorch backend looks that name
# up in `torch`: but `torch.equal` is whole-tensor equality returning a Python bool, not the
# elementwise `torch.eq`. The shape checks `pytensor.grad` inserts (`Assert(Eq(Shape_i, Shape_i))`)
# then fail with "'bool' object is not subscriptable".


@pytorch_funcify.register(EQ)
def pytorch_funcify_EQ(op, node, **kwargs):
    return torch.eq
