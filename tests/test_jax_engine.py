"""The hand-written ``jax`` peer against the float64 NumPy oracle.

The parity helper and the case are :mod:`oracle_helpers`' (those of :mod:`test_pytensor_backends`,
so both engines are held to the same comparison); JAX compiles each small function in about a
second, so every case is in the core suite.
"""

import numpy as np
import pytest

pytest.importorskip("jax")

from oracle_helpers import (  # noqa: E402
    CHECKS, RTOL, compare_with_oracle, data, make, params, run_cuda_probe)

pytestmark = pytest.mark.usefixtures("shared_compile_caches")  # JAX's persistent cache

_ENGINES: dict = {}


def jax_engine(dtype):
    """One engine per floatX, its x64 setting re-asserted (process-wide in JAX)."""
    from rnnperf.engines.jax_runtime import configure_jax
    if dtype not in _ENGINES:
        _ENGINES[dtype] = make("jax", dtype)
    engine = _ENGINES[dtype]
    configure_jax(engine.config)
    engine.set_params(params())
    return engine


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "single"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_matches_oracle(dtype, batched, check):
    compare_with_oracle(jax_engine(dtype), check, batched, RTOL[dtype], params=params(),
                        data=data())


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_padded_batch_equals_separate_runs(dtype):
    engine = jax_engine(dtype)
    x, y, lengths = data()
    probs = engine.forward(x, lengths)
    losses = []
    for b, n in enumerate(lengths):
        single = engine.forward(x[:n, b], None)
        np.testing.assert_allclose(probs[b], single, rtol=RTOL[dtype], atol=RTOL[dtype] * 1e-3)
        losses.append(engine.loss(x[:n, b], y[b]))
    assert engine.loss(x, y, lengths) == pytest.approx(np.mean(losses), rel=RTOL[dtype])


def test_params_stay_on_device_and_train_donates():
    import jax
    engine = jax_engine("float32")
    x, y, lengths = data()
    before = engine._params["Whh"]
    engine.train_step(x, y, 0.5, lengths)
    after = engine._params["Whh"]
    assert isinstance(after, jax.Array) and after.dtype == np.float32
    assert before.is_deleted()  # donated: the step reused the old parameters' buffers
    assert engine.device_actual() == "cpu"
    assert set(engine.versions()) == {"jax", "jaxlib"}


def test_runner_blocks_and_updates():
    engine = jax_engine("float32")
    x, y, lengths = data()
    start = engine.get_params()["Whh"]
    run = engine.runner("train", x, y, lengths, lr=0.5)
    loss = run()
    assert loss.is_ready() and np.isfinite(float(loss))
    run()
    assert not np.allclose(engine.get_params()["Whh"], start)
    forward = engine.runner("forward", x, None, lengths)
    assert forward().shape == (x.shape[1], 3)


def test_cuda_without_gpu_is_unavailable():
    line = run_cuda_probe("jax")
    assert line.startswith("UNAVAILABLE") and "not falling back" in line, line
