"""The fused recurrence kernels: their C code against their NumPy ``perform``, case by case.

The engines' oracle comparisons (``test_pytensor_backends``) check the whole model with
``formulation=fused``; these cases pin the kernels' own edges: a single sequence, a batch of
one, every state's gradient read (``with_dstates``), lengths that end anywhere, float32/64, and
a batch that fills register blocks and splits over threads with rows and columns left over.
"""

import numpy as np
import pytest

pytensor = pytest.importorskip("pytensor")



def compile_both(dtype, ndim, with_dstates):
    import pytensor.tensor as pt
    from pytensor.compile.mode import Mode

    from rnnperf.model.fused import ElmanRecurrence, ElmanRecurrenceGrad
    xw = pt.tensor("xw", dtype=dtype, shape=(None,) * ndim)
    h0 = pt.tensor("h0", dtype=dtype, shape=(None,) * (ndim - 1))
    g = pt.tensor("g", dtype=dtype, shape=(None,) * (ndim - 1))
    w = pt.matrix("w", dtype=dtype)
    last = pt.lvector("last")
    dstates = pt.tensor("ds", dtype=dtype, shape=(None,) * ndim)
    states = ElmanRecurrence()(xw, h0, w)
    extra = [dstates] if with_dstates else []
    da, dh0 = ElmanRecurrenceGrad(with_dstates)(states, w, g, last, *extra)
    inputs, outputs = [xw, h0, w, g, last] + extra, [states, da, dh0]
    c = pytensor.function(inputs, outputs, mode=Mode(linker="cvm", optimizer="fast_run"))
    py = pytensor.function(inputs, outputs, mode=Mode(linker="py", optimizer="fast_run"))
    return c, py


@pytest.mark.parametrize("dtype", ["float64", "float32"])
# (5, 19, 40): register blocks of 8 rows and a vector panel, with rows and columns left over.
# B < 8 splits columns over threads (T = 64, H = 260: enough work for two threads, in chunks of
# 32 columns with 4 left; H = 67: one thread, a panel with 3 columns left); B = 9: one block of
# 8 rows and one left, panels with 4 columns and K chunks with 4 rows of the weight left.
@pytest.mark.parametrize("shape", [(7, 3, 5), (6, 1, 4), (6, 4), (5, 19, 40), (64, 1, 260),
                                   (64, 260), (64, 3, 260), (5, 7, 67), (5, 9, 260)],
                         ids=["batch", "one", "single", "blocks", "B1-cols", "single-cols",
                              "B3-cols", "B7", "B9"])
@pytest.mark.parametrize("with_dstates", [False, True])
def test_c_kernels_match_their_numpy_perform(dtype, shape, with_dstates):
    c, py = compile_both(dtype, len(shape), with_dstates)
    rng = np.random.default_rng(len(shape) + with_dstates)
    n_hidden, batch = shape[-1], (shape[1] if len(shape) == 3 else 1)
    args = [rng.standard_normal(shape), rng.standard_normal(shape[1:]),
            rng.standard_normal((n_hidden, n_hidden)) * (0.9 / np.sqrt(n_hidden)),
            rng.standard_normal(shape[1:]),
            rng.integers(0, shape[0], batch)]
    if with_dstates:
        args.append(rng.standard_normal(shape))
    args = [a if a.dtype.kind == "i" else a.astype(dtype) for a in args]
    got, want = c(*args), py(*args)
    tol = 1e-12 if dtype == "float64" else 1e-5 * max(1.0, np.sqrt(n_hidden / 40))
    for name, a, b in zip(("states", "da", "dh0"), got, want):
        assert a.shape == b.shape and a.dtype == b.dtype, name
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=name)
    assert np.abs(got[1]).max() > 0.01  # the gradient is not trivially zero


def test_perform_is_the_recurrence_and_its_gradient():
    """The NumPy reference itself, against finite differences of sum(g * h_last)."""
    import pytensor.tensor as pt
    from pytensor.compile.mode import Mode

    from rnnperf.model.fused import ElmanRecurrence, ElmanRecurrenceGrad
    rng = np.random.default_rng(3)
    T, B, H = 4, 2, 3
    xw, w, g = rng.standard_normal((T, B, H)), rng.standard_normal((H, H)) * 0.5, \
        rng.standard_normal((B, H))
    last = np.array([3, 1])
    # dtypes spelled out: an engine built earlier in this process may have set floatX=float32
    xs, ws, gs = (pt.tensor3("xw", dtype="float64"), pt.matrix("w", dtype="float64"),
                  pt.matrix("g", dtype="float64"))
    ls = pt.lvector("last")
    states = ElmanRecurrence()(xs, pt.zeros((B, H), dtype="float64"), ws)
    da, _ = ElmanRecurrenceGrad()(states, ws, gs, ls)
    fn = pytensor.function([xs, ws, gs, ls], [states, da], mode=Mode(linker="py"))
    h, d_a = fn(xw, w, g, last)
    h_ref = np.zeros((B, H))
    for t in range(T):
        h_ref = np.tanh(xw[t] + h_ref @ w.T)
        np.testing.assert_allclose(h[t], h_ref)

    def objective(x):
        hs = fn(x, w, g, last)[0]
        return float(sum(g[b] @ hs[last[b], b] for b in range(B)))
    eps, numeric = 1e-6, np.zeros_like(xw)
    for idx in np.ndindex(xw.shape):
        step = np.zeros_like(xw)
        step[idx] = eps
        numeric[idx] = (objective(xw + step) - objective(xw - step)) / (2 * eps)
    np.testing.assert_allclose(d_a, numeric, rtol=1e-6, atol=1e-8)  # d/dxw is da
