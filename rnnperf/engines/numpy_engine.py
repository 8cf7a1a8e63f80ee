"""``numpy``: the reference oracle, :mod:`rnnperf.model.oracle`'s forward and BPTT as an engine.

float64 by default when used as the oracle (parity compares every engine with it); float32 on
request, when it doubles as the hand-written CPU baseline of the speed targets. A single sequence
is a batch of one, so both variants share every line.
"""

from __future__ import annotations

import numpy as np

from ..model.oracle import loss_and_grads, probabilities
from .base import Engine, check_inputs


class NumpyEngine(Engine):
    """The oracle's maths as an engine: parameters are NumPy arrays held here."""

    def setup(self):
        self._params: dict[str, np.ndarray] = {}

    @classmethod
    def versions(cls):
        return {"numpy": np.__version__}

    def set_params(self, params):
        self._params = {k: np.array(params[k], dtype=self.dtype) for k in self.param_names}

    def get_params(self):
        return {k: v.copy() for k, v in self._params.items()}

    def device_actual(self):
        return "cpu"  # NumPy arrays live in host memory by construction

    def _batch(self, x, y, lengths):
        x, y, lengths = check_inputs(x, y, lengths, self.n_in, self.n_out, self.dtype)
        if x.ndim == 2:
            return x[:, None, :], (None if y is None else y[None]), np.array([x.shape[0]]), True
        return x, y, lengths, False

    def forward(self, x, lengths=None):
        xb, _, lb, single = self._batch(x, None, lengths)
        probs = probabilities(self._params, xb, lb, self.cell)
        return probs[0] if single else probs

    def loss(self, x, y, lengths=None):
        xb, yb, lb, _ = self._batch(x, y, lengths)
        return loss_and_grads(self._params, xb, yb, lb, want_grads=False, cell=self.cell)[0]

    def gradients(self, x, y, lengths=None):
        xb, yb, lb, _ = self._batch(x, y, lengths)
        return loss_and_grads(self._params, xb, yb, lb, cell=self.cell)[2]

    def train_step(self, x, y, lr=0.1, lengths=None):
        xb, yb, lb, _ = self._batch(x, y, lengths)
        loss, _, grads = loss_and_grads(self._params, xb, yb, lb, cell=self.cell)
        for k in self.param_names:
            self._params[k] -= self.dtype.type(lr) * grads[k]
        return loss

    def runner(self, task, x, y, lengths, lr=0.01):
        xb, yb, lb, _ = self._batch(x, y, lengths)
        if task == "forward":
            return lambda: probabilities(self._params, xb, lb, self.cell)

        def step():
            _, _, grads = loss_and_grads(self._params, xb, yb, lb, cell=self.cell)
            for k in self.param_names:
                self._params[k] -= self.dtype.type(lr) * grads[k]
        return step
