"""A minimal gated unit (Zhou et al., 2016): one forget gate does the work of the GRU's two.

    f  = sigmoid(W_f x + U_f h + b_f)
    h' = (1 - f) * h + f * tanh(W_n x + U_n (f * h) + b_n)

Run it on every engine against its float64 reference, then measure it:

    rnnperf parity --flags cell=examples/cells/mgu.py:MGU --engines all
    rnnperf bench --flags cell=examples/cells/mgu.py:MGU --engines pytensor-c,pytensor-jax
"""


class MGU:
    states = ("h",)

    def param_shapes(self, n_in, n_hidden):
        return {"Wf": (n_hidden, n_in), "Uf": (n_hidden, n_hidden), "bf": (n_hidden,),
                "Wn": (n_hidden, n_in), "Un": (n_hidden, n_hidden), "bn": (n_hidden,)}

    def step(self, T, x_t, states, p):
        (h,) = states
        f = T.sigmoid(T.dot(x_t, p["Wf"].T) + T.dot(h, p["Uf"].T) + p["bf"])
        n = T.tanh(T.dot(x_t, p["Wn"].T) + T.dot(f * h, p["Un"].T) + p["bn"])
        return ((1 - f) * h + f * n,)
