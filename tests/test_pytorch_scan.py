"""rnnperf's conversions for PyTensor's PyTorch backend (``mode="PYTORCH"``), from
:mod:`rnnperf.model.pytorch_dispatch`: Scan, negative-step Subtensor/IncSubtensor, and EQ.

Each case compiles one graph twice, PyTorch and a reference, and compares, the way PyTensor's
``compare_pytorch_and_py`` does. The reference is ``FAST_RUN`` (the C VM), not ``FAST_COMPILE``:
PyTensor 3.0.7's Python Scan gives a wrong gradient for ``ys[-1] * ys.sum()`` (its MIT-MOT path;
``FAST_COMPILE`` and ``Mode("py", "fast_run")`` both answer ``[150, 120, 90, 60, 30]`` where the
C VM, Numba and the closed form answer ``[70, 60, 50, 40, 30]``), so cases that hit it would test
the reference instead of ours. Closed forms back up the reference where they are short.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch", reason="the PyTorch backend needs PyTorch (scripts/bootstrap.sh all)")
pytensor = pytest.importorskip("pytensor", reason="needs PyTensor")

import pytensor.tensor as pt  # noqa: E402

import rnnperf.model.pytorch_dispatch  # noqa: E402,F401  (registers the conversions)
from rnnperf import flags  # noqa: E402
from rnnperf.engines.pytensor_engine import PyTensorEngine, array_device  # noqa: E402
from rnnperf.model.spec import init_params  # noqa: E402

from oracle_helpers import CHECKS, compare_with_oracle  # noqa: E402


@pytest.fixture(autouse=True)
def float64_default():
    """Engines built in-process earlier in the session may have set floatX=float32 globally
    (PyTensor's config is process-wide); these graphs use the default dtype, so pin it."""
    with pytensor.config.change_flags(floatX="float64"):
        yield


def scan(fn, **kwargs):
    return pytensor.scan(fn, return_updates=False, **kwargs)


def compare_pytorch_and_ref(inputs, outputs, values, rtol=1e-10, ref="FAST_RUN"):
    """Compile ``outputs`` in PYTORCH mode and in ``ref``; assert equal results; return them."""
    outputs = outputs if isinstance(outputs, list) else [outputs]
    got = pytensor.function(inputs, outputs, mode="PYTORCH")(*values)
    want = pytensor.function(inputs, outputs, mode=ref)(*values)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert np.shape(g) == np.shape(w)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=1e-12)
    return got


def test_cumulative_sum():
    x = pt.vector("x")
    ys = scan(lambda x_t, acc: acc + x_t, sequences=[x], outputs_info=[pt.zeros(())])
    (got,) = compare_pytorch_and_ref([x], ys, [np.arange(1.0, 6.0)])
    np.testing.assert_allclose(got, np.cumsum(np.arange(1.0, 6.0)))


def test_sequences_sit_sot_and_non_sequences():
    x, W, h0 = pt.matrix("x"), pt.matrix("W"), pt.vector("h0")
    b = pt.vector("b")

    def step(x_t, h, W, b):
        return pt.tanh(pt.dot(W, h) + x_t + b)

    hs = scan(step, sequences=[x], outputs_info=[h0], non_sequences=[W, b], strict=True)
    rng = np.random.default_rng(0)
    values = [rng.standard_normal((7, 3)), rng.standard_normal((3, 3)), rng.standard_normal(3),
              rng.standard_normal(3)]
    # the whole trace, and only its last state (the scan_save_mem rewrite shrinks that buffer)
    compare_pytorch_and_ref([x, W, h0, b], [hs, hs[-1]], values)


def test_grad_of_scan_mit_mot():
    x = pt.vector("x")
    ys = scan(lambda x_t, acc: acc + x_t, sequences=[x], outputs_info=[pt.zeros(())])
    cost = ys[-1] * ys.sum()
    (got,) = compare_pytorch_and_ref([x], pytensor.grad(cost, x), [np.arange(5.0)])
    np.testing.assert_allclose(got, [70.0, 60.0, 50.0, 40.0, 30.0])


def test_grad_of_recurrence_wrt_weights_and_inputs():
    x, W, h0 = pt.matrix("x"), pt.matrix("W"), pt.vector("h0")
    hs = scan(lambda x_t, h, W: pt.tanh(pt.dot(W, h) + x_t), sequences=[x],
              outputs_info=[h0], non_sequences=[W], strict=True)
    cost = (hs ** 2).sum() + hs[-1].sum()
    rng = np.random.default_rng(1)
    values = [rng.standard_normal((6, 4)), 0.5 * rng.standard_normal((4, 4)),
              rng.standard_normal(4)]
    compare_pytorch_and_ref([x, W, h0], pytensor.grad(cost, [x, W, h0]), values)


def test_nit_sot():
    x, w = pt.matrix("x"), pt.vector("w")
    ys = scan(lambda x_t, w: (x_t * w).sum(), sequences=[x], non_sequences=[w])
    rng = np.random.default_rng(2)
    values = [rng.standard_normal((5, 3)), rng.standard_normal(3)]
    (got,) = compare_pytorch_and_ref([x, w], ys, values)
    np.testing.assert_allclose(got, values[0] @ values[1])


def test_mit_sot_and_n_steps():
    a = pt.vector("a")
    fib = scan(lambda f2, f1: f1 + f2, outputs_info=[{"initial": a, "taps": [-2, -1]}],
               n_steps=8)
    (got,) = compare_pytorch_and_ref([a], fib, [np.array([1.0, 1.0])])
    np.testing.assert_allclose(got, [2, 3, 5, 8, 13, 21, 34, 55])


def test_go_backwards_uses_reversed_slices():
    x = pt.vector("x")
    ys = scan(lambda x_t, acc: acc + x_t, sequences=[x], outputs_info=[pt.zeros(())],
              go_backwards=True)
    (got,) = compare_pytorch_and_ref([x], ys, [np.arange(1.0, 6.0)])
    np.testing.assert_allclose(got, np.cumsum(np.arange(5.0, 0.0, -1.0)))


def test_while_loop_stops_early():
    x0 = pt.scalar("x0")
    from pytensor.scan.utils import until
    ys = scan(lambda x: (2 * x, until(2 * x > 50)), outputs_info=[x0], n_steps=20)
    (got,) = compare_pytorch_and_ref([x0], ys, [np.array(1.0)])
    np.testing.assert_allclose(got, [2, 4, 8, 16, 32, 64])


@pytest.mark.parametrize("index", [np.s_[::-1], np.s_[::-2], np.s_[5:1:-1], np.s_[1, ::-3],
                                   np.s_[-2:-7:-2]], ids=str)
def test_negative_step_slices(index):
    x = pt.matrix("x")
    value = np.arange(42.0).reshape(7, 6)
    (got,) = compare_pytorch_and_ref([x], x[index], [value])
    np.testing.assert_array_equal(got, value[index])


def test_inc_subtensor_with_negative_step():
    x, y = pt.vector("x"), pt.vector("y")
    out = [pt.inc_subtensor(x[5:0:-2], y), pt.set_subtensor(x[::-1], y.sum())]
    compare_pytorch_and_ref([x, y], out, [np.arange(7.0), np.array([10.0, 20.0, 30.0])])


def test_elementwise_equality():
    a, b = pt.vector("a"), pt.vector("b")
    (got,) = compare_pytorch_and_ref([a, b], pt.eq(a, b), [np.array([1.0, 2, 3]),
                                                           np.array([1.0, 0, 3])])
    np.testing.assert_array_equal(got, [True, False, True])


# --- the seed model through PyTensorEngine, against the float64 NumPy oracle ---------------------

I, H, O, T, B = 3, 4, 3, 5, 3
RTOL = {"float64": 1e-10, "float32": 1e-4}


def seed_params():
    rng = np.random.default_rng(5)
    return {k: v + 0.3 * rng.standard_normal(v.shape)
            for k, v in init_params(I, H, O, seed=2, dtype="float64").items()}


def seed_data():
    """A padded batch; its first sequence, whole, is the single-sequence variant."""
    rng = np.random.default_rng(9)
    return rng.standard_normal((T, B, I)), np.array([2, 0, 1]), np.array([T, 2, 4])


@pytest.mark.slow  # compiles the seed graph's four functions through PyTorch: > 3 s
@pytest.mark.parametrize("floatX,batched", [("float64", False), ("float64", True),
                                            ("float32", True)])
def test_seed_graph_matches_oracle(floatX, batched):
    eng = PyTensorEngine(flags.load(flags=f"engine=pytensor-pytorch,floatX={floatX}",
                                    use_env=False), I, H, O, seed_params())
    for check in CHECKS:
        compare_with_oracle(eng, check, batched, RTOL[floatX], params=seed_params(),
                            data=seed_data(), steps=2)
    assert eng.device_actual() == "cpu"


def test_array_device_reads_torch_tensors():
    import torch
    assert array_device(torch.zeros(2)) == "cpu"
    assert array_device(np.zeros(2)) == "cpu"
    if torch.cuda.is_available():
        assert array_device(torch.zeros(2, device="cuda")) == "cuda:0"


def test_the_inner_graph_is_copied_from_a_frozen_graph_too():
    """PyTensor 3.3 keeps a Scan's inner graph frozen (``unfreeze()``, no ``clone()``): the
    conversion failed there with AttributeError on every scan (seen on the GPU box's Python
    3.12); 3.0-3.2 keep a FunctionGraph (``clone()``)."""
    from pytensor.graph.fg import FunctionGraph
    from rnnperf.model.pytorch_dispatch.scan import _mutable_copy
    x = pt.vector("x")
    graph = FunctionGraph([x], [x * 2])
    copy = _mutable_copy(graph)
    assert copy is not graph and isinstance(copy, FunctionGraph)

    class Frozen:
        def unfreeze(self):
            return graph
    assert _mutable_copy(Frozen()) is graph
