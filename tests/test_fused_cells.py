"""The GRU and LSTM fused kernels (:mod:`rnnperf.model.fused_cells`): C code == NumPy ``perform``
== the float64 oracle's maths, case by case, and ``perform`` against finite differences.

The chain: every case holds the C code to ``perform`` (and checks that ``perform`` did not run in
its place); the cases that start from zero, as the model does, hold both to the oracle
(:mod:`rnnperf.model.oracle`), whose forward and backward are reused as they are: an identity
``Wxh`` makes its ``XW`` the ``xw`` given, its mask with ``lengths = last + 1`` injects each
sequence's gradient at its ``last`` step, and ``dstates`` is the sum of one such pull per step (the
backward loop is linear in what it is given). What the oracle cannot start from (a nonzero
``h0``/``c0``) and what it does not return (``dh0``) are held to finite differences.
"""

import functools

import numpy as np
import pytest

pytensor = pytest.importorskip("pytensor")

GATES = {"lstm": 4, "gru": 3}


@functools.lru_cache(maxsize=None)
def compile_both(cell, dtype, ndim, with_dstates):
    """The forward op and its gradient op chained, compiled with the C and the Python linker."""
    import pytensor.tensor as pt
    from pytensor.compile.mode import Mode

    from rnnperf.model import fused_cells as fc

    def var(name, nd):
        return pt.tensor(name, dtype=dtype, shape=(None,) * nd)
    xw, h0, c0, g, ds = var("xw", ndim), var("h0", ndim - 1), var("c0", ndim - 1), \
        var("g", ndim - 1), var("ds", ndim)
    w, bhn, last = var("w", 2), var("bhn", 1), pt.lvector("last")
    extra = [ds] if with_dstates else []
    if cell == "lstm":
        fwd = fc.LSTMRecurrence()(xw, h0, c0, w)
        back = fc.LSTMRecurrenceGrad(with_dstates)(*fwd, h0, c0, w, g, last, *extra)
        inputs = [xw, h0, c0, w, g, last] + extra
    else:
        fwd = fc.GRURecurrence()(xw, h0, w, bhn)
        back = fc.GRURecurrenceGrad(with_dstates)(*fwd, h0, w, g, last, *extra)
        inputs = [xw, h0, w, bhn, g, last] + extra
    outputs = list(fwd) + list(back)
    c = pytensor.function(inputs, outputs, mode=Mode(linker="cvm", optimizer="fast_run"))
    py = pytensor.function(inputs, outputs, mode=Mode(linker="py", optimizer="fast_run"))
    return c, py


def make_args(cell, shape, dtype, with_dstates, zero_start, seed=0):
    """Inputs in ``compile_both``'s order; ``shape`` is ``(T, B, H)`` or ``(T, H)``; ``last``
    ragged (every sequence ends somewhere else, one at the last step)."""
    rng = np.random.default_rng(seed)
    T, H, G = shape[0], shape[-1], GATES[cell]
    rows = shape[1:-1]
    B = rows[0] if rows else 1
    start = (lambda: np.zeros(rows + (H,))) if zero_start else \
        (lambda: rng.standard_normal(rows + (H,)))
    args = [rng.standard_normal((T,) + rows + (G * H,)), start()]
    if cell == "lstm":
        args.append(start())
    args.append(rng.standard_normal((G * H, H)) * (1.5 / np.sqrt(H)))
    if cell == "gru":
        args.append(rng.standard_normal(H))
    last = rng.integers(0, T, B)
    last[-1] = T - 1
    args += [rng.standard_normal(rows + (H,)), last]
    if with_dstates:
        args.append(rng.standard_normal(shape))
    return [a if a.dtype.kind == "i" else a.astype(dtype) for a in args]


def perform_calls():
    from rnnperf.model import fused_cells as fc
    return sum(op.perform_calls for op in (fc.LSTMRecurrence, fc.LSTMRecurrenceGrad,
                                           fc.GRURecurrence, fc.GRURecurrenceGrad))


def oracle_reference(cell, args, with_dstates):
    """The oracle's forward outputs and step gradients (``da``; the GRU's ``dxw``, ``dhw``) for
    a zero start, in float64, batched."""
    from rnnperf.model import oracle
    xw, whh = args[0].astype(np.float64), args[3 if cell == "lstm" else 2].astype(np.float64)
    g, last = args[-2 - with_dstates].astype(np.float64), args[-1 - with_dstates]
    if xw.ndim == 2:
        xw, g = xw[:, None], g[None]
    T, B, GH = xw.shape
    params = {"Wxh": np.eye(GH), "bh": np.zeros(GH), "Whh": whh}
    if cell == "gru":
        params["bhn"] = args[3].astype(np.float64)
    def pull(lengths, dh):
        states, mask, cache = oracle.forward_states(params, xw, lengths, cell)
        return oracle.backward(params, states, mask, cache, dh, {}, cell)
    states, _, cache = oracle.forward_states(params, xw, np.full(B, T), cell)
    fwd = [states[1:], cache["c"][1:], cache["gates"]] if cell == "lstm" else \
        [states[1:], cache["gates"], cache["hn"]]
    steps = [np.array(a) for a in pull(last + 1, g)]
    if with_dstates:
        dstates = args[-1].astype(np.float64).reshape(T, B, -1)
        for t in range(T):
            for total, part in zip(steps, pull(np.full(B, t + 1), dstates[t])):
                total += part
    back = steps[:1] if cell == "lstm" else steps
    return fwd + back


# (cell, dtype, shape, with_dstates), each run from a zero and from a random start: B=19 fills two
# register blocks of 8 rows and splits over threads with rows left over; H=40 leaves columns beside
# the vector panels; B=1; a single sequence
CASES = [(cell, *case) for cell in ("lstm", "gru") for case in [
    ("float64", (5, 19, 40), True),
    ("float32", (5, 19, 40), False),
    ("float64", (4, 1, 3), False),
    ("float32", (4, 6), True),
]]


@pytest.mark.parametrize("cell,dtype,shape,with_dstates", CASES)
@pytest.mark.parametrize("zero_start", [True, False], ids=["zero", "random"])
def test_c_kernels_match_perform_and_the_oracle(cell, dtype, shape, with_dstates, zero_start):
    c, py = compile_both(cell, dtype, len(shape), with_dstates)
    args = make_args(cell, shape, dtype, with_dstates, zero_start)
    before = perform_calls()
    got = c(*args)
    assert perform_calls() == before, "the C code did not run (perform did)"
    want = py(*args)
    assert perform_calls() == before + 2
    tol = 1e-12 if dtype == "float64" else 2e-5
    for i, (a, b) in enumerate(zip(got, want)):
        assert a.shape == b.shape and a.dtype == b.dtype == np.dtype(dtype), i
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=f"output {i}")
    assert np.abs(got[-1]).max() > 1e-3 and np.abs(got[-2]).max() > 1e-3  # not trivially zero
    if zero_start:
        tol = 1e-10 if dtype == "float64" else 2e-5
        for i, (a, ref) in enumerate(zip(got, oracle_reference(cell, args, with_dstates))):
            np.testing.assert_allclose(a.reshape(ref.shape), ref, rtol=tol, atol=tol,
                                       err_msg=f"output {i} against the oracle")


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_perform_gradients_against_finite_differences(cell):
    """From a nonzero start, every state's gradient read: d/dxw, d/dh0 and, through the step
    gradients, d/dWhh (and the GRU's d/dbhn, which only ``dhw``'s n block carries)."""
    _, py = compile_both(cell, "float64", 3, True)
    args = make_args(cell, (3, 2, 2), "float64", True, False, seed=1)
    outs = py(*args)
    g, last, dstates = args[-3:]
    n_fwd = 3
    states = outs[0]

    def objective(values):
        hs = py(*values)[0]
        return float(sum(g[b] @ hs[last[b], b] for b in range(len(last)))
                     + (dstates * hs).sum())
    w_at = 3 if cell == "lstm" else 2
    h_prev = np.concatenate([args[1][None], states[:-1]])
    dhw = outs[n_fwd] if cell == "lstm" else outs[n_fwd + 1]
    analytic = {0: outs[n_fwd], 1: outs[-1],
                w_at: np.einsum("tbg,tbh->gh", dhw, h_prev)}
    if cell == "gru":
        analytic[3] = dhw[..., -2:].sum(axis=(0, 1))
    for at, want in analytic.items():
        numeric = np.zeros_like(args[at])
        for idx in np.ndindex(numeric.shape):
            up, down = [a.copy() for a in args], [a.copy() for a in args]
            up[at][idx] += 1e-6
            down[at][idx] -= 1e-6
            numeric[idx] = (objective(up) - objective(down)) / 2e-6
        np.testing.assert_allclose(want, numeric, rtol=1e-6, atol=1e-8, err_msg=f"input {at}")


@pytest.mark.parametrize("make, why", [
    (lambda fc, v: fc.LSTMRecurrence()(v("xw", 3), v("h0", 2), v("c0", 2), v("w", 2, "float32")),
     "share float32 or float64"),
    (lambda fc, v: fc.LSTMRecurrence()(v("xw", 3, "int32"), v("h0", 2, "int32"),
                                       v("c0", 2, "int32"), v("w", 2, "int32")),
     "share float32 or float64"),
    (lambda fc, v: fc.GRURecurrence()(v("xw", 3), v("h0", 3), v("w", 2), v("b", 1)),
     "got xw 3-D, h0 3-D"),
    (lambda fc, v: fc.GRURecurrence()(v("xw", 4), v("h0", 3), v("w", 2), v("b", 1)),
     "want xw (T,[B,]GH)"),
    (lambda fc, v: fc.GRURecurrence()(v("xw", 3), v("h0", 2), v("w", 2)), "want 4 inputs"),
    (lambda fc, v: fc.LSTMRecurrenceGrad()(*[v("s", 3)] * 3, v("h0", 2), v("c0", 2), v("w", 2),
                                           v("g", 2), v("last", 1, "int32")), "int64 vector"),
    (lambda fc, v: fc.GRURecurrenceGrad()(*[v("s", 3)] * 3, v("h0", 2), v("w", 2), v("g", 2),
                                          v("last", 1, "int64"), v("ds", 3)), "want 7 inputs"),
])
def test_bad_inputs_raise_one_line_type_errors(make, why):
    import pytensor.tensor as pt

    from rnnperf.model import fused_cells as fc

    def var(name, nd, dtype="float64"):
        return pt.tensor(name, dtype=dtype, shape=(None,) * nd)
    with pytest.raises(TypeError) as info:
        make(fc, var)
    assert why in str(info.value) and "\n" not in str(info.value)


def test_shapes_that_disagree_raise_in_the_c_code():
    c, _ = compile_both("lstm", "float64", 3, False)
    args = make_args("lstm", (5, 19, 40), "float64", False, False)
    args[3] = args[3][:-4]       # Whh (4H-4, H)
    with pytest.raises(ValueError, match="LSTMRecurrence: shapes disagree"):
        c(*args)


def test_one_variable_for_two_inputs():
    """The model's ``h0`` and ``c0`` are one zero constant after PyTensor merges them: the C code
    must take a variable given twice (it once declared its C name twice and did not compile)."""
    import pytensor.tensor as pt
    from pytensor.compile.mode import Mode

    from rnnperf.model import fused_cells as fc
    xw, w, g = pt.tensor3("xw", dtype="float64"), pt.matrix("w", dtype="float64"), \
        pt.matrix("g", dtype="float64")
    zero = pt.zeros((xw.shape[1], w.shape[1]), dtype="float64")
    fwd = fc.LSTMRecurrence()(xw, zero, zero, w)
    back = fc.LSTMRecurrenceGrad()(*fwd, zero, zero, w, g, pt.lvector("last"))
    fns = [pytensor.function([xw, w, g, back[0].owner.inputs[7]], list(fwd) + list(back),
                             mode=Mode(linker=linker, optimizer="fast_run"))
           for linker in ("cvm", "py")]
    args = make_args("lstm", (3, 2, 4), "float64", False, True)
    args = [args[0], args[3], args[4], args[5]]
    for a, b in zip(*(fn(*args) for fn in fns)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
