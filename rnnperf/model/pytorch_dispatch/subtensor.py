"""Subtensor and IncSubtensor conversions for PyTensor's PyTorch backend.

``pytensor.grad`` of a scan reverses sequences and traces with negative-step slices, which
PyTensor 3.0-3.3's PyTorch conversions reject; importing this module registers conversions that
support them (the same behaviour for positive steps).
"""

from __future__ import annotations

import torch
from pytensor.graph.basic import Constant
from pytensor.link.pytorch.dispatch import pytorch_funcify
from pytensor.tensor.subtensor import IncSubtensor, Subtensor, indices_from_subtensor

# --- reversed slices ------------------------------------------------------------------------------
# `pytensor.grad` of a scan walks the sequences backwards: it feeds the backward Scan `x[::-1]`
# and reverses its traces the same way. PyTorch tensors have no negative-step slicing, and
# PyTensor 3.0's PyTorch Subtensor/IncSubtensor conversions raise "Negative step sizes are not
# supported in Pytorch" for them. The two conversions below replace those (the same behaviour for
# positive steps) and turn each negative-step slice into the equivalent positive slice followed by
# `torch.flip` on that axis.


def _split_negative_steps(x, indices):
    """``(positive_indices, flip_dims)`` with ``x[indices] == x[positive].flip(flip_dims)``."""
    positive, flip_dims, out_dim = [], [], 0
    for axis, index in enumerate(indices):
        if not isinstance(index, slice):
            positive.append(index)  # an integer index drops the axis
            continue
        step = None if index.step is None else int(index.step)
        if step is not None and step < 0:
            bound = lambda v: None if v is None else int(v)  # noqa: E731
            start, stop, step = slice(bound(index.start), bound(index.stop), step).indices(
                x.shape[axis])
            count = len(range(start, stop, step))
            if count == 0:
                index = slice(0, 0)
            else:
                index = slice(start + (count - 1) * step, start + 1, -step)
                flip_dims.append(out_dim)
        positive.append(index)
        out_dim += 1
    return tuple(positive), tuple(flip_dims)


@pytorch_funcify.register(Subtensor)
def pytorch_funcify_Subtensor(op, node, **kwargs):
    idx_list = op.idx_list
    _x, *idxs = node.inputs
    constant = all(isinstance(idx, Constant) for idx in idxs)
    fixed = indices_from_subtensor([int(idx.data) for idx in idxs], idx_list) if constant else None

    def subtensor(x, *flattened_indices):
        indices = fixed if constant else indices_from_subtensor(flattened_indices, idx_list)
        positive, flip_dims = _split_negative_steps(x, indices)
        out = x[positive]
        return out.flip(flip_dims) if flip_dims else out

    return subtensor


@pytorch_funcify.register(IncSubtensor)
def pytorch_funcify_IncSubtensor(op, node, **kwargs):
    idx_list = op.idx_list
    inplace, set_instead_of_inc = op.inplace, op.set_instead_of_inc

    def inc_subtensor(x, y, *flattened_indices):
        indices = indices_from_subtensor(flattened_indices, idx_list)
        positive, flip_dims = _split_negative_steps(x, indices)
        if flip_dims:
            # y broadcasts against x[indices]; give it that rank before flipping its axes.
            target_ndim = x[positive].ndim
            y = torch.as_tensor(y).reshape((1,) * (target_ndim - y.ndim) + tuple(y.shape))
            y = y.flip(flip_dims)
        if not inplace:
            x = x.clone()
        if set_instead_of_inc:
            x[positive] = y
        else:
            x[positive] += y
        return x

    return inc_subtensor
