"""The built-in GRU's required part alone, as a user's cell: its states, parameters and step,
none of its optional parts (no oracle, no hoisted or fused formulation, no peers). It runs the
seed formulation, like any user cell, and gives the built-in ``cell=gru``'s seed numbers:

    rnnperf parity --flags cell=examples/cells/gru_step.py:GRUStep --engines pytensor-c
"""

from rnnperf.cells.gru import GRU


class GRUStep:
    states = GRU.states

    def param_shapes(self, n_in, n_hidden):
        return GRU().param_shapes(n_in, n_hidden)

    def step(self, T, x_t, states, params):
        return GRU().step(T, x_t, states, params)
