"""What the seed model is, whatever runs it: its parameters, their shapes, its initialisation and
the tasks a timed step can be.

The Elman RNN of the classic Theano tutorial: ``h_t = tanh(Wxh x_t + Whh h_{t-1} + bh)`` from
``h_0 = 0``, ``p = softmax(Why h_T + by)``, categorical cross-entropy, SGD, argmax prediction.
The recurrence is the cell's (``cell=``, :mod:`rnnperf.cells`): its recurrent parameters and its
step; the softmax head's ``Why`` (O, H) and ``by`` (O) are the model's, whatever the cell.
"""

from __future__ import annotations

import numpy as np

from .. import cells
from ..errors import ConfigError

#: the built-in cells' names (the profile key's choices beyond a user's reference)
CELLS = cells.names()
#: the Elman cell's parameters
PARAM_NAMES = cells.get("elman").all_param_names()
#: what one timed step does: ``forward`` (probabilities) or ``train`` (loss, gradients, SGD)
TASKS = ("forward", "train")


def param_names(cell="elman") -> tuple[str, ...]:
    """The parameters of ``cell``, in a fixed order (gradients and updates follow it)."""
    return cells.get(cell).all_param_names()


def param_shapes(n_in: int, n_hidden: int, n_out: int, cell="elman") -> dict[str, tuple]:
    shapes = dict(cells.get(cell).param_shapes(n_in, n_hidden))
    shapes.update(Why=(n_out, n_hidden), by=(n_out,))
    return {name: tuple(shapes[name]) for name in param_names(cell)}


def init_params(n_in: int, n_hidden: int, n_out: int, seed: int = 0,
                dtype: str = "float32", cell="elman") -> dict[str, np.ndarray]:
    """The cell's initialisation (default: weights ``randn * 0.01``, biases zero), drawn in
    :func:`param_names` order from one seeded generator in float64 and then cast, so float32 and
    float64 parameters of one seed are the same numbers up to rounding (parity depends on it),
    and an Elman model's parameters are the numbers they were before cells existed."""
    for name, value in (("n_in", n_in), ("n_hidden", n_hidden), ("n_out", n_out)):
        if int(value) != value or value < 1:
            raise ConfigError(f"init_params: {name}={value!r} must be a positive integer")
    the_cell = cells.get(cell)
    shapes = param_shapes(n_in, n_hidden, n_out, cell)
    rng = np.random.default_rng(seed)
    init = getattr(the_cell, "init", None) or cells.default_init
    params = init(shapes, rng, dtype)
    if set(params) != set(shapes):
        raise ConfigError(f"cell={the_cell.name}: init returned {sorted(params)}, expected "
                          f"{sorted(shapes)}")
    return {k: np.asarray(params[k], dtype=dtype) for k in shapes}
