"""The NumPy oracle: its BPTT gradients against central finite differences in float64."""

import numpy as np
import pytest

from rnnperf import flags
from rnnperf.engines.numpy_engine import NumpyEngine
from rnnperf.bench.parity import parity_data, parity_params
from rnnperf.model.spec import PARAM_NAMES


def oracle(params):
    return NumpyEngine(flags.load("engine=numpy,floatX=float64", use_env=False), 5, 6, 4, params)


@pytest.mark.parametrize("variant", ["single", "batched"])
def test_gradients_match_finite_differences(variant):
    params = parity_params("float64")
    x, y, lengths = parity_data(variant, "float64")
    grads = oracle(params).gradients(x, y, lengths)
    eps = 1e-6
    for name in PARAM_NAMES:
        numeric = np.zeros_like(params[name])
        for idx in np.ndindex(params[name].shape):
            plus = {k: v.copy() for k, v in params.items()}
            minus = {k: v.copy() for k, v in params.items()}
            plus[name][idx] += eps
            minus[name][idx] -= eps
            numeric[idx] = (oracle(plus).loss(x, y, lengths)
                            - oracle(minus).loss(x, y, lengths)) / (2 * eps)
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-6, atol=1e-9, err_msg=name)


def test_finished_sequences_get_no_gradient_from_padding():
    params = parity_params("float64")
    x, y, lengths = parity_data("batched", "float64")
    noisy = x.copy()
    for b, n in enumerate(lengths):
        noisy[n:, b] = 100.0  # garbage in the padding must change nothing
    a, b = oracle(params), oracle(params)
    np.testing.assert_array_equal(a.forward(x, lengths), b.forward(noisy, lengths))
    ga, gb = a.gradients(x, y, lengths), b.gradients(noisy, y, lengths)
    for name in PARAM_NAMES:
        np.testing.assert_allclose(ga[name], gb[name], atol=1e-15)


def test_sgd_step_moves_against_the_gradient():
    params = parity_params("float64")
    x, y, lengths = parity_data("batched", "float64")
    engine = oracle(params)
    grads = engine.gradients(x, y, lengths)
    before = engine.loss(x, y, lengths)
    engine.train_step(x, y, 0.01, lengths)
    after = engine.get_params()
    for name in PARAM_NAMES:
        np.testing.assert_allclose(after[name], params[name] - 0.01 * grads[name])
    assert engine.loss(x, y, lengths) < before
