"""What the seed model is, whatever runs it: its parameters, their shapes, its initialisation
and the tasks a timed step can be.

The Elman RNN of the classic Theano tutorial: ``h_t = tanh(Wxh x_t + Whh h_{t-1} + bh)`` from
``h_0 = 0``, ``p = softmax(Why h_T + by)``, categorical cross-entropy, SGD, argmax prediction.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError

PARAM_NAMES = ("Wxh", "Whh", "Why", "bh", "by")
#: what one timed step does: ``forward`` (probabilities) or ``train`` (loss, gradients, SGD)
TASKS = ("forward", "train")


def param_shapes(n_in: int, n_hidden: int, n_out: int) -> dict[str, tuple[int, ...]]:
    return {"Wxh": (n_hidden, n_in), "Whh": (n_hidden, n_hidden), "Why": (n_out, n_hidden),
            "bh": (n_hidden,), "by": (n_out,)}


def init_params(n_in: int, n_hidden: int, n_out: int, seed: int = 0,
                dtype: str = "float32") -> dict[str, np.ndarray]:
    """The tutorial's initialisation: weights ``randn * 0.01``, biases zero.

    Drawn in float64 from one seeded generator and then cast, so float32 and float64 parameters
    of the same seed are the same numbers up to rounding (parity depends on it).
    """
    for name, value in (("n_in", n_in), ("n_hidden", n_hidden), ("n_out", n_out)):
        if int(value) != value or value < 1:
            raise ConfigError(f"init_params: {name}={value!r} must be a positive integer")
    rng = np.random.default_rng(seed)
    shapes = param_shapes(n_in, n_hidden, n_out)
    params = {}
    for name in PARAM_NAMES:
        if name.startswith("b"):
            params[name] = np.zeros(shapes[name], dtype=dtype)
        else:
            params[name] = (rng.standard_normal(shapes[name]) * 0.01).astype(dtype)
    return params
