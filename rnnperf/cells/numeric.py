"""The NumPy helpers the cells' float64 oracles share."""

from __future__ import annotations

import numpy as np


def sigmoid(a):
    return 0.5 * (1 + np.tanh(0.5 * a))  # no overflow warning for large -a


def split(a, parts):
    return np.split(a, parts, axis=-1)
