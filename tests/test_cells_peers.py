"""The peers run GRU and LSTM (issue #15): the parameter contract against torch's own modules,
the ``torch`` and ``jax`` engines against the float64 oracle, and the API's round trip.

The contract (:mod:`rnnperf.model.spec`) is stated here a second time, by hand, from torch's
modules: an engine and the oracle could agree with each other and both misread torch.
"""

from __future__ import annotations

import numpy as np
import pytest

from rnnperf import flags
from rnnperf.engines import load
from rnnperf.engines.numpy_engine import NumpyEngine
from rnnperf.model.spec import init_params, param_names, param_shapes

from oracle_helpers import CHECKS, assert_close, run_check

pytestmark = pytest.mark.usefixtures("shared_compile_caches")  # JAX's persistent cache

I, H, O, T = 3, 4, 3, 5
CELLS = ("gru", "lstm")
RTOL = {"float64": 1e-9, "float32": 1e-4}


def needs(library: str):
    return pytest.importorskip(library, reason=f"the {library} peer needs {library} "
                                               "(scripts/bootstrap.sh all)")


def params(cell: str, seed: int = 1) -> dict[str, np.ndarray]:
    """The tutorial's init times 30 (tanh and the gates off their linear range) plus noise on
    the biases, which init_params leaves at zero: a bias mapped to the wrong rows must show."""
    rng = np.random.default_rng(seed + 100)
    out = {k: v * 30 for k, v in init_params(I, H, O, seed=seed, dtype="float64",
                                              cell=cell).items()}
    return {k: v + 0.5 * rng.standard_normal(v.shape) if k.startswith("b") else v
            for k, v in out.items()}


def data():
    """A ragged batch (lengths 5, 2, 3) whose padding is huge: any leak of it shows."""
    rng = np.random.default_rng(0)
    x, lengths = rng.standard_normal((T, 3, I)), np.array([5, 2, 3])
    for b, n in enumerate(lengths):
        x[n:, b] = 1e3
    return x, np.array([0, 2, 1]), lengths


def oracle(cell: str, values) -> NumpyEngine:
    config = flags.load(flags=f"engine=numpy,floatX=float64,cell={cell}", use_env=False)
    return NumpyEngine(config, I, H, O, dict(values))


# --- (a) the contract, against torch.nn.LSTM / torch.nn.GRU ----------------------------------


def torch_model(cell: str, seed: int = 0):
    """torch's own module with its default random weights and both biases (all nonzero)."""
    torch = needs("torch")
    torch.manual_seed(seed)
    rnn = getattr(torch.nn, cell.upper())(I, H, dtype=torch.float64)
    out = torch.nn.Linear(H, O, dtype=torch.float64)
    return rnn, out


def torch_logits(rnn, out, x, lengths):
    torch = needs("torch")
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.as_tensor(x), torch.as_tensor(lengths),
                                                     enforce_sorted=False)
    _, h_n = rnn(packed)
    return out((h_n[0] if isinstance(rnn, torch.nn.LSTM) else h_n)[0])


def from_torch(cell: str, rnn, out) -> dict[str, np.ndarray]:
    """torch's weights as ours: LSTM ``bh = b_ih + b_hh``; GRU ``bh = [b_ir+b_hr, b_iz+b_hz,
    b_in]``, ``bhn = b_hn``."""
    def np_(t):
        return t.detach().numpy().copy()
    b_ih, b_hh = np_(rnn.bias_ih_l0), np_(rnn.bias_hh_l0)
    ours = {"Wxh": np_(rnn.weight_ih_l0), "Whh": np_(rnn.weight_hh_l0), "Why": np_(out.weight),
            "by": np_(out.bias)}
    if cell == "lstm":
        ours["bh"] = b_ih + b_hh
    else:
        ours["bh"] = np.concatenate([b_ih[:2 * H] + b_hh[:2 * H], b_ih[2 * H:]])
        ours["bhn"] = b_hh[2 * H:]
    return ours


def into_torch(cell: str, ours, rnn, out) -> None:
    """Ours into torch's module, ``bh`` split at random between torch's two biases where the
    contract allows it (all of LSTM's; GRU's r and z rows), so no split is privileged."""
    torch = needs("torch")
    split = np.random.default_rng(5).standard_normal(ours["bh"].shape)
    if cell == "gru":
        split[2 * H:] = 0
    b_hh = split + np.concatenate([np.zeros(2 * H), ours["bhn"]]) if cell == "gru" else split
    values = {rnn.weight_ih_l0: ours["Wxh"], rnn.weight_hh_l0: ours["Whh"],
              rnn.bias_ih_l0: ours["bh"] - split, rnn.bias_hh_l0: b_hh,
              out.weight: ours["Why"], out.bias: ours["by"]}
    with torch.no_grad():
        for tensor, value in values.items():
            tensor.copy_(torch.as_tensor(value))


@pytest.mark.parametrize("cell", CELLS)
def test_oracle_equals_torch_module(cell):
    torch = needs("torch")
    rnn, out = torch_model(cell)
    x, y, lengths = data()
    logits = torch_logits(rnn, out, x, lengths)
    ref = oracle(cell, from_torch(cell, rnn, out))
    assert_close(ref.forward(x, lengths), torch.softmax(logits, -1).detach().numpy(), 1e-12,
                 f"{cell} probs")
    # Gradients: torch's two biases each get the gradient of their sum, so ours equals either.
    loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(y))
    names = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
    g = dict(zip(names, (t.numpy() for t in torch.autograd.grad(
        loss, [getattr(rnn, n) for n in names]))))
    want = {"Wxh": g["weight_ih_l0"], "Whh": g["weight_hh_l0"], "bh": g["bias_ih_l0"]}
    if cell == "gru":
        want["bhn"] = g["bias_hh_l0"][2 * H:]
        assert_close(g["bias_hh_l0"][:2 * H], g["bias_ih_l0"][:2 * H], 1e-12, "b_hr,b_hz")
    else:
        assert_close(g["bias_hh_l0"], g["bias_ih_l0"], 1e-12, "b_hh")
    got = ref.gradients(x, y, lengths)
    assert_close({k: got[k] for k in want}, want, 1e-10, f"{cell} gradients")


@pytest.mark.parametrize("cell", CELLS)
def test_our_params_into_torch_module(cell):
    torch = needs("torch")
    rnn, out = torch_model(cell, seed=1)
    ours = params(cell)
    into_torch(cell, ours, rnn, out)
    x, _, lengths = data()
    with torch.no_grad():
        probs = torch.softmax(torch_logits(rnn, out, x, lengths), -1).numpy()
    assert_close(probs, oracle(cell, ours).forward(x, lengths), 1e-12, f"{cell} probs")
    # and back: the round trip gives our parameters again (the split folds back into bh)
    assert_close(from_torch(cell, rnn, out), ours, 1e-14, f"{cell} round trip")


# --- (b) the torch and jax engines against the oracle ----------------------------------------

_ENGINES: dict = {}


def engine(name: str, cell: str, dtype: str = "float64"):
    """One engine per (engine, cell, floatX); JAX's x64 setting re-asserted (process-wide)."""
    needs(name)
    key = (name, cell, dtype)
    if key not in _ENGINES:
        config = flags.load(flags=f"engine={name},floatX={dtype},cell={cell}", use_env=False)
        _ENGINES[key] = load(name, config)(config, I, H, O, params(cell))
    eng = _ENGINES[key]
    if name == "jax":
        from rnnperf.engines.jax_runtime import configure_jax
        configure_jax(eng.config)
    return eng


def compare(eng, cell, check, batched, rtol):
    """``check`` on ``eng`` and on the oracle, both from :func:`params`, held to ``rtol``."""
    eng.set_params(params(cell))
    ref = oracle(cell, params(cell))
    x, y, lengths = data()
    if not batched:
        x, y, lengths = x[:, 0], y[0], None
    got = run_check(eng, check, x, y, lengths, steps=2)
    want = run_check(ref, check, x, y, lengths, steps=2)
    assert_close(got, want, rtol, f"{eng.name} {cell} {check}:")
    if check == "train_step":
        assert not np.allclose(ref.get_params()["bh"], params(cell)["bh"]), "nothing trained"
    if check == "gradients":
        assert set(got) == {f"d{k}" for k in param_names(cell)}


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "single"])
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("name", ["torch", "jax"])
def test_peer_matches_oracle(name, cell, batched, check):
    compare(engine(name, cell), cell, check, batched, RTOL["float64"])


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("name", ["torch", "jax"])
def test_peer_float32_trains_like_oracle(name, cell):
    compare(engine(name, cell, "float32"), cell, "train_step", True, RTOL["float32"])


@pytest.mark.parametrize("cell", CELLS)
def test_torch_second_bias_does_not_train(cell):
    """``bias_hh`` stays zero (LSTM) or zero outside the GRU's ``b_hn`` rows through SGD, and
    only the GRU's is a tensor SGD touches."""
    torch = needs("torch")
    eng = engine("torch", cell)
    eng.set_params(params(cell))
    x, y, lengths = data()
    eng.train_step(x, y, 0.5, lengths)
    bias_hh = eng.rnn.bias_hh_l0.detach().numpy()
    assert bias_hh.shape == ({"gru": 3, "lstm": 4}[cell] * H,)
    assert torch.count_nonzero(torch.as_tensor(bias_hh[:2 * H])) == 0
    assert eng.rnn.bias_hh_l0.requires_grad == (cell == "gru")
    if cell == "gru":
        np.testing.assert_array_equal(bias_hh[2 * H:], eng.get_params()["bhn"])
        assert not np.allclose(bias_hh[2 * H:], params(cell)["bhn"]), "bhn did not train"


# --- (c) the API ---------------------------------------------------------------------------


def test_rnn_api_round_trip_gru():
    needs("torch")
    from rnnperf import RNN
    from rnnperf.errors import ConfigError
    net = RNN(I, H, O, flags="engine=torch,cell=gru,floatX=float64", use_env=False)
    first = net.params
    assert {k: v.shape for k, v in first.items()} == param_shapes(I, H, O, "gru")
    new = params("gru", seed=4)
    net.params = new
    assert_close(net.params, new, 0, "params after set")
    x, _, lengths = data()
    assert_close(net.forward(x, lengths), oracle("gru", new).forward(x, lengths), 1e-12,
                 "forward after set")
    with pytest.raises(ConfigError, match="bhn"):
        net.params = {k: v for k, v in new.items() if k != "bhn"}
