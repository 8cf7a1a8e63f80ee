"""``torch`` engine (nn.RNN with the seed's weights) against the float64 NumPy oracle."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the torch engine needs PyTorch "
                                             "(scripts/bootstrap.sh all)")

from rnnperf import flags  # noqa: E402
from rnnperf.engines.torch_engine import TorchEngine  # noqa: E402
from rnnperf.errors import Unavailable  # noqa: E402
from rnnperf.model.spec import PARAM_NAMES, init_params  # noqa: E402

from oracle_helpers import CHECKS, assert_close, compare_with_oracle, oracle  # noqa: E402

I, H, O, T, B = 3, 5, 4, 6, 3
RTOL = {"float64": 1e-10, "float32": 1e-4}


def params():
    """The tutorial's init plus noise, so that biases and gradients are not trivially zero."""
    rng = np.random.default_rng(7)
    return {k: v + 0.3 * rng.standard_normal(v.shape)
            for k, v in init_params(I, H, O, seed=3, dtype="float64").items()}


def engines(floatX):
    p = params()
    eng = TorchEngine(flags.load(flags=f"engine=torch,floatX={floatX}", use_env=False),
                      I, H, O, p)
    return eng, oracle(p)


def data():
    """A padded batch; its first sequence, whole, is the single-sequence variant."""
    rng = np.random.default_rng(11)
    return rng.standard_normal((T, B, I)), np.array([1, 3, 0]), np.array([T, 2, 4])


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("floatX", ["float64", "float32"])
@pytest.mark.parametrize("batched", [False, True], ids=["single", "batched"])
def test_parity_with_numpy_oracle(floatX, batched, check):
    eng, _ = engines(floatX)
    compare_with_oracle(eng, check, batched, RTOL[floatX], params=params(), data=data(),
                        steps=2)
    if check == "train_step":
        assert all(v.dtype == np.dtype(floatX) for v in eng.get_params().values())


def test_padded_batch_equals_separate_runs():
    eng, _ = engines("float64")
    x, y, lengths = data()
    x = x.copy()
    for b, n in enumerate(lengths):
        x[n:, b] = 1e3  # padding must not leak into a finished sequence
    batch = eng.forward(x, lengths)
    for b, n in enumerate(lengths):
        np.testing.assert_allclose(batch[b], eng.forward(x[:n, b], None), rtol=1e-12)
    # The batch loss is the mean of the per-sequence losses.
    singles = [eng.loss(x[:n, b], y[b], None) for b, n in enumerate(lengths)]
    np.testing.assert_allclose(eng.loss(x, y, lengths), np.mean(singles), rtol=1e-12)


def test_parameters_map_one_to_one():
    eng, _ = engines("float64")
    trainable = [n for n, p in eng.rnn.named_parameters() if p.requires_grad]
    assert sorted(trainable) == ["bias_ih_l0", "weight_hh_l0", "weight_ih_l0"]
    x, y, lengths = data()
    eng.train_step(x, y, 0.5, lengths)
    assert torch.count_nonzero(eng.rnn.bias_hh_l0) == 0  # frozen at zero through training
    got = eng.get_params()
    assert set(got) == set(PARAM_NAMES)
    assert eng.device_actual() == "cpu"


@pytest.mark.parametrize("task", ["forward", "train"])
def test_runner_matches_interface(task):
    eng, ref = engines("float64")
    x, y, lengths = data()
    step = eng.runner(task, x, y, lengths, lr=0.5)
    out = step()
    if task == "forward":
        assert_close(out.numpy(), ref.forward(x, lengths), RTOL["float64"], "runner forward")
    else:
        ref.train_step(x, y, 0.5, lengths)
        assert_close(eng.get_params(), ref.get_params(), RTOL["float64"], "after the runner's step")


def test_bad_input_is_a_config_error():
    from rnnperf.errors import ConfigError
    eng, _ = engines("float64")
    with pytest.raises(ConfigError, match="features"):
        eng.forward(np.zeros((T, I + 1)), None)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present; nothing to refuse")
def test_cuda_without_cuda_is_unavailable():
    config = flags.load(flags="engine=torch,device=cuda", use_env=False)
    with pytest.raises(Unavailable, match="not\\s+falling back"):
        TorchEngine(config, I, H, O, params())
