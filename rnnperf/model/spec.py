"""What the seed model is, whatever runs it: its cells, their parameters and shapes, its
initialisation and the tasks a timed step can be.

The Elman RNN of the classic Theano tutorial: ``h_t = tanh(Wxh x_t + Whh h_{t-1} + bh)`` from
``h_0 = 0``, ``p = softmax(Why h_T + by)``, categorical cross-entropy, SGD, argmax prediction.

GRU and LSTM cells (``cell=``) keep everything but the step, and the seed's parameter names,
stacked per gate in torch's gate order so that weights copy to and from ``torch.nn.LSTM``/``GRU``:

* ``lstm``: ``Wxh`` (4H, I), ``Whh`` (4H, H), ``bh`` (4H), gates ``i, f, g, o``;
  ``c_t = f*c_{t-1} + i*g``, ``h_t = o*tanh(c_t)``, ``h_0 = c_0 = 0``; one bias
  (torch's ``b_ih + b_hh``).
* ``gru``: ``Wxh`` (3H, I), ``Whh`` (3H, H), ``bh`` (3H), ``bhn`` (H), gates ``r, z, n``;
  ``n_t = tanh(W_in x_t + b_in + r_t*(W_hn h_{t-1} + bhn))``, ``h_t = (1-z_t)*n_t + z_t*h_{t-1}``;
  ``bh`` holds ``b_ir+b_hr, b_iz+b_hz, b_in`` (torch's equations: ``bhn`` is torch's ``b_hn``,
  which stays inside ``r_t*(...)``).
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..engines.registry import CELLS  # noqa: F401  (the profile key's choices; re-exported)

#: gates per cell: the rows of ``Wxh``, ``Whh`` and ``bh`` are ``GATES[cell] * H``
GATES = {"elman": 1, "gru": 3, "lstm": 4}
#: the Elman cell's parameters (every cell has these; ``gru`` adds ``bhn``)
PARAM_NAMES = ("Wxh", "Whh", "Why", "bh", "by")
#: what one timed step does: ``forward`` (probabilities) or ``train`` (loss, gradients, SGD)
TASKS = ("forward", "train")


def check_cell(cell: str) -> str:
    if cell not in CELLS:
        raise ConfigError(f"cell={cell!r}: must be one of {', '.join(CELLS)}")
    return cell


def param_names(cell: str = "elman") -> tuple[str, ...]:
    """The parameters of ``cell``, in a fixed order (gradients and updates follow it)."""
    return PARAM_NAMES + (("bhn",) if check_cell(cell) == "gru" else ())


def param_shapes(n_in: int, n_hidden: int, n_out: int,
                 cell: str = "elman") -> dict[str, tuple[int, ...]]:
    rows = GATES[check_cell(cell)] * n_hidden
    shapes = {"Wxh": (rows, n_in), "Whh": (rows, n_hidden), "Why": (n_out, n_hidden),
              "bh": (rows,), "by": (n_out,)}
    if cell == "gru":
        shapes["bhn"] = (n_hidden,)
    return shapes


def init_params(n_in: int, n_hidden: int, n_out: int, seed: int = 0,
                dtype: str = "float32", cell: str = "elman") -> dict[str, np.ndarray]:
    """The tutorial's initialisation for every cell: weights ``randn * 0.01``, biases zero.

    Drawn in float64 from one seeded generator and then cast, so float32 and float64 parameters
    of the same seed are the same numbers up to rounding (parity depends on it). The draws go in
    :data:`PARAM_NAMES` order, so an Elman model's parameters are the same for a given seed as
    before cells existed.
    """
    for name, value in (("n_in", n_in), ("n_hidden", n_hidden), ("n_out", n_out)):
        if int(value) != value or value < 1:
            raise ConfigError(f"init_params: {name}={value!r} must be a positive integer")
    rng = np.random.default_rng(seed)
    shapes = param_shapes(n_in, n_hidden, n_out, cell)
    params = {}
    for name in param_names(cell):
        if name.startswith("b"):
            params[name] = np.zeros(shapes[name], dtype=dtype)
        else:
            params[name] = (rng.standard_normal(shapes[name]) * 0.01).astype(dtype)
    return params
