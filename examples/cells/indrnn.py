"""An independently recurrent network (Li et al., 2018): each unit sees only its own past, through
an element-wise recurrent weight, and a ReLU.

    h' = relu(W x + u * h + b)        u: (H,), one recurrent weight per unit

No product with the state: the step's only matrix product is the input's. Check and measure:

    rnnperf parity --flags cell=examples/cells/indrnn.py:IndRNN --engines all
    rnnperf bench --flags cell=examples/cells/indrnn.py:IndRNN --engines pytensor-c,pytensor-jax
"""

import numpy as np


class IndRNN:
    states = ("h",)

    def param_shapes(self, n_in, n_hidden):
        return {"W": (n_hidden, n_in), "u": (n_hidden,), "b": (n_hidden,)}

    def init(self, shapes, rng, dtype):
        """The default draws, but ``u`` starts at 0.5 (IndRNN's paper keeps |u| <= 1 for a
        recurrence that neither explodes nor forgets at once)."""
        out = {k: (rng.standard_normal(s) * 0.01).astype(dtype) for k, s in shapes.items()}
        out.update(u=np.full(shapes["u"], 0.5, dtype), b=np.zeros(shapes["b"], dtype),
                   by=np.zeros(shapes["by"], dtype))
        return out

    def step(self, T, x_t, states, p):
        (h,) = states
        a = T.dot(x_t, p["W"].T) + p["u"] * h + p["b"]
        # ReLU as a switch, not T.maximum(a, 0): maximum's gradient tests eq(maximum(a, 0), a),
        # and where a backend recomputes a with other rounding (Numba's fast-math, XLA) that
        # equality fails and the gradient is lost (pymc-devs/pytensor#2187; parity shows it)
        return (T.switch(a > 0, a, 0 * a),)
