"""What a timed step moves between host and device: nothing, for pytensor-pytorch and pytensor-jax.

PyTensor's PyTorch linker converts every input (the five parameters included) with
``torch.as_tensor`` and every output back with ``.cpu().numpy()``; its ``Function.__call__``
filters a jax.Array into NumPy unless the function trusts its inputs. The engines hold the
parameters on the device and place the runner's inputs there once
(:class:`rnnperf.engines.pytensor_engine.TorchCall`,
:meth:`rnnperf.engines.pytensor_jax_engine.PyTensorJaxEngine.timed_function`). Here, on the CPU,
spies check that the timed call hands the compiled function the same device objects every time
and converts nothing, and that training through the runner moves the parameters as
``train_step`` and the oracle do. The ``gpu`` tests run the same on ``device=cuda`` in a fresh
process (JAX fixes its platform, and ``pytensor-pytorch`` torch's default device, process-wide).
"""

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from rnnperf.engines import availability

from oracle_helpers import RTOL, assert_close, data, make, oracle, params

pytestmark = [pytest.mark.filterwarnings("ignore:Skipping Assert"),
              pytest.mark.filterwarnings("ignore:Explicitly requested dtype float64"),
              pytest.mark.filterwarnings("ignore:The given NumPy array is not writable"),
              pytest.mark.usefixtures("shared_compile_caches")]

LR, STEPS = 0.5, 3
_ENGINES: dict = {}


def engine_for(name: str, more: str = ""):
    """One float64 engine per configuration for the module (torch.compile is slow), reset to
    :func:`oracle_helpers.params`."""
    ok, reason, _ = availability(name)
    if not ok:
        pytest.skip(f"{name}: {reason}")
    if (name, more) not in _ENGINES:
        _ENGINES[name, more] = make(name, "float64", more=more)
    engine = _ENGINES[name, more]
    if name == "pytensor-jax":
        from rnnperf.engines.jax_runtime import configure_jax
        configure_jax(engine.config)      # jax_enable_x64 is process-wide: re-assert float64's
    engine.set_params(params())
    return engine


# --- pytensor-pytorch --------------------------------------------------------------------------


def test_torch_call_follows_the_linkers_convention():
    """Inputs, then the shared variables in fgraph.inputs order; outputs, then the updates in
    update_mapping order: the same numbers as PyTensor's own function, the updates written
    into the engine's tensors (two updates, given in the reverse of the inputs' order)."""
    torch = pytest.importorskip("torch", reason="pytensor-pytorch needs torch")
    if not availability("pytensor-pytorch")[0]:
        pytest.skip("pytensor-pytorch is not available")
    import pytensor
    import pytensor.tensor as pt
    from pytensor.compile.mode import get_mode

    from rnnperf.engines.pytensor_engine import TorchCall
    values = {"a": np.arange(3.0), "b": np.ones(3), "c": np.full(3, 2.0)}
    shared = {k: pytensor.shared(v.copy(), name=k) for k, v in values.items()}
    a, b, c = shared.values()
    x = pt.vector("x", dtype="float64")
    fn = pytensor.function([x], [x * a + c, (x + b).sum()], updates=[(c, c * x), (b, b + x)],
                           mode=get_mode("PYTORCH"))
    held = {k: torch.tensor(v) for k, v in values.items()}
    engine = SimpleNamespace(_params=held, torch_device=torch.device("cpu"))
    call = TorchCall(engine, fn)
    assert set(call.params) == {"a", "b", "c"} and set(call.updates) == {"b", "c"}
    a_before = held["a"]
    arg = np.array([1.0, 2.0, 3.0])
    for _ in range(2):
        got = call(arg)
        want = fn(arg)
        assert all(isinstance(g, torch.Tensor) for g in got)
        assert_close({i: g.numpy() for i, g in enumerate(got)}, dict(enumerate(want)), 0,
                     "outputs")
        for k in "abc":
            assert_close(held[k].numpy(), shared[k].get_value(), 0, f"parameter {k}")
    assert held["a"] is a_before, "a parameter without an update was replaced"


def test_pytorch_parameters_are_held_tensors_copied_in_and_out(monkeypatch):
    torch = pytest.importorskip("torch", reason="pytensor-pytorch needs torch")
    from rnnperf.engines import pytensor_engine
    engine = engine_for("pytensor-pytorch")
    seen, real = [], pytensor_engine.array_device
    monkeypatch.setattr(pytensor_engine, "array_device", lambda v: seen.append(v) or real(v))
    assert engine.device_actual() == "cpu"
    assert len(seen) == 1 and seen[0] is engine._params["Why"]
    given = params()
    engine.set_params(given)
    given["Whh"][:] = 0                                  # the caller's array, not the engine's
    out = engine.get_params()
    out["Whh"][:] = 0                                    # a copy, not the engine's tensor
    assert_close(engine.get_params()["Whh"], params()["Whh"], 0, "held Whh")
    assert all(isinstance(v, torch.Tensor) for v in engine._params.values())


def _spy_torch_conversions(monkeypatch, torch) -> list:
    """Every NumPy -> tensor conversion from now on (the linker's is ``torch.as_tensor``); torch's
    own ``torch.tensor(())`` (AOTAutograd resets its RNG state trackers at each call) is none."""
    calls = []

    def spy(*args, _real, _name, **kwargs):
        if args and isinstance(args[0], (np.ndarray, np.generic)):
            calls.append(f"{_name}{np.shape(args[0])}")
        return _real(*args, **kwargs)
    for name in ("as_tensor", "tensor", "from_numpy"):
        real = getattr(torch, name)
        monkeypatch.setattr(torch, name, lambda *a, _real=real, _name=name, **k:
                            spy(*a, _real=_real, _name=_name, **k))
    return calls


@pytest.mark.slow  # torch.compile of the seed graph's train function: several seconds
@pytest.mark.parametrize("task", ["train", "forward"])
def test_pytorch_timed_call_passes_the_same_device_tensors_and_converts_nothing(monkeypatch,
                                                                              task):
    torch = pytest.importorskip("torch", reason="pytensor-pytorch needs torch")
    engine = engine_for("pytensor-pytorch")
    x, y, lengths = data()
    run = engine.runner(task, x, y, lengths, lr=LR)
    run()                                                      # the first call compiles
    call = engine.function(task, x)
    calls, inner = [], call.torch_fn

    def spy(*args):
        calls.append((args, dict(engine._params)))
        return inner(*args)
    monkeypatch.setattr(call, "torch_fn", spy)
    wrapper = type(call.fn.vm.jit_fn)                          # the linker's converting call
    monkeypatch.setattr(wrapper, "__call__", lambda *a, **k: pytest.fail("linker's wrapper"))
    conversions = _spy_torch_conversions(monkeypatch, torch)
    for _ in range(STEPS):
        out = run()
    assert conversions == [], f"conversions in timed calls: {conversions}"
    assert isinstance(out, torch.Tensor) and len(calls) == STEPS
    n_inputs = len(calls[0][0]) - len(call.params)
    assert n_inputs == (4 if task == "train" else 2)          # x, lengths (, y, lr)
    for args, held in calls:
        assert all(isinstance(a, torch.Tensor) for a in args)
        assert all(a is b for a, b in zip(args[:n_inputs], calls[0][0][:n_inputs])), \
            "the inputs were placed again"
        assert all(args[n_inputs + i] is held[k] for i, k in enumerate(call.params)), \
            "the parameters passed are not the engine's tensors"


@pytest.mark.slow  # torch.compile of the seed graph's train function: several seconds
def test_pytorch_runner_trains_like_train_step_and_the_oracle():
    engine = engine_for("pytensor-pytorch")
    x, y, lengths = data()
    run = engine.runner("train", x, y, lengths, lr=LR)
    losses = [float(run()) for _ in range(STEPS)]
    through_runner = engine.get_params()
    reference = oracle(params())
    assert_close(losses, [reference.train_step(x, y, LR, lengths) for _ in range(STEPS)],
                 RTOL["float64"], "runner losses")
    assert_close(through_runner, reference.get_params(), RTOL["float64"], "runner parameters")
    engine.set_params(params())
    assert_close([engine.train_step(x, y, LR, lengths) for _ in range(STEPS)], losses, 0,
                 "train_step losses")
    assert_close(engine.get_params(), through_runner, 0, "train_step parameters")
    assert engine.device_actual() == "cpu"


# --- pytensor-jax without its function cache --------------------------------------------------


class VMSpy:
    """Stands in for a compiled function's VM (the JAX linker's thunk): notes the values in its
    input cells, which the thunk hands the jitted function as they are, before each call."""

    def __init__(self, vm):
        self.vm, self.seen = vm, []

    def __call__(self):
        self.seen.append([cell[0] for cell in self.vm.inputs])
        return self.vm()

    def __getattr__(self, name):
        return getattr(self.vm, name)


@pytest.mark.parametrize("task", ["train", "forward"])
def test_jax_timed_call_gets_device_arrays_placed_once(monkeypatch, task):
    jax = pytest.importorskip("jax", reason="pytensor-jax needs jax")
    engine = engine_for("pytensor-jax", "function_cache=False")
    assert engine.function_cache == "off"
    device = engine.jax_device()
    x, y, lengths = data()
    run = engine.runner(task, x, y, lengths, lr=LR)
    fn = engine.function(task, x)
    assert fn.trust_input, "PyTensor would filter the device arrays into NumPy"
    run()                                                       # the first call compiles
    spy = VMSpy(fn.vm)
    monkeypatch.setattr(fn, "vm", spy)
    puts = []
    real_put = jax.device_put
    monkeypatch.setattr(jax, "device_put", lambda *a, **k: puts.append(1) or real_put(*a, **k))
    for _ in range(STEPS):
        out = run()
    assert puts == [], "the timed call placed something"
    assert len(spy.seen) == STEPS
    assert isinstance(out, jax.Array) and out.devices() == {device}
    n_inputs = 4 if task == "train" else 2                      # x, lengths (, y, lr)
    for values in spy.seen:
        assert all(isinstance(v, jax.Array) for v in values), [type(v) for v in values]
        assert all(v.devices() == {device} for v in values)
        assert all(a is b for a, b in zip(values[:n_inputs], spy.seen[0][:n_inputs])), \
            "the inputs were placed again"
    params_seen = spy.seen[-1][n_inputs:]
    assert len(params_seen) == 5
    if task == "forward":   # parameters placed by set_params, read in place at every call
        assert all(a is b for a, b in zip(params_seen, spy.seen[0][n_inputs:]))


def test_jax_set_params_places_the_parameters_on_the_device():
    jax = pytest.importorskip("jax", reason="pytensor-jax needs jax")
    engine = engine_for("pytensor-jax", "function_cache=False")
    for k, shared in engine._shared.items():
        value = shared.get_value(borrow=True)
        assert isinstance(value, jax.Array) and value.devices() == {engine.jax_device()}, k
    assert engine.device_actual() == "cpu"
    assert_close(engine.get_params(), params(), 0, "parameters")


@pytest.mark.slow  # compiles cold with the function cache (an empty one) as well
def test_jax_runner_without_the_cache_matches_the_cached_engine(monkeypatch, tmp_path):
    from rnnperf.engines.function_cache import unavailable_reason
    if unavailable_reason():
        pytest.skip(f"the function cache: {unavailable_reason()}")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    x, y, lengths = data()
    got = {}
    for more in ("function_cache=False", "function_cache=True"):
        engine = engine_for("pytensor-jax", more)
        run = engine.runner("train", x, y, lengths, lr=LR)
        out = {f"loss {i}": np.asarray(run()) for i in range(STEPS)}
        out.update(engine.get_params())
        out["probs"] = np.asarray(engine.runner("forward", x, y, lengths)())
        got[more] = out
    assert _ENGINES["pytensor-jax", "function_cache=True"].function_cache in ("hit", "miss")
    assert_close(got["function_cache=False"], got["function_cache=True"], 0, "cache off vs on")
    reference = oracle(params())
    assert_close([got["function_cache=False"][f"loss {i}"] for i in range(STEPS)],
                 [reference.train_step(x, y, LR, lengths) for _ in range(STEPS)],
                 RTOL["float64"], "oracle losses")


# --- on a GPU ----------------------------------------------------------------------------------

CUDA_STEPS = """
import json, sys
sys.path.insert(0, {tests!r})
import numpy as np
from oracle_helpers import data, make
from rnnperf.engines.devices import array_device
from rnnperf.errors import Unavailable
try:
    engine = make({name!r}, "float64", device="cuda", more={more!r})
except Unavailable as exc:
    print("UNAVAILABLE", exc); sys.exit(0)
def held():
    if {name!r} == "pytensor-pytorch" or engine.function_cache in ("hit", "miss"):
        return dict(engine._params)
    return {{k: v.get_value(borrow=True) for k, v in engine._shared.items()}}
before = engine.device_actual()
x, y, lengths = data()
run = engine.runner("train", x, y, lengths, lr={lr})
losses = [float(np.asarray(engine.to_host(run()))) for _ in range({steps})]
print("RESULT", json.dumps({{
    "before": before, "after": engine.device_actual(),
    "param_devices": sorted({{array_device(v) for v in held().values()}}),
    "losses": losses,
    "params": {{k: v.tolist() for k, v in engine.get_params().items()}}}}))
"""


@pytest.mark.gpu
@pytest.mark.parametrize("name,more", [("pytensor-pytorch", ""),
                                       ("pytensor-jax", "function_cache=False"),
                                       ("pytensor-jax", "function_cache=True")])
def test_cuda_parameters_stay_on_the_gpu(name, more, tmp_path):
    torch = pytest.importorskip("torch", reason="the GPU check asks torch for a CUDA device")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device (torch.cuda.is_available() is false)")
    if not availability(name)[0]:
        pytest.skip(f"{name} is not available")
    env = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    tests = os.path.dirname(os.path.abspath(__file__))
    script = CUDA_STEPS.format(tests=tests, name=name, more=more, lr=LR, steps=STEPS)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=600)
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    if lines[-1].startswith("UNAVAILABLE"):
        pytest.skip(lines[-1])                # e.g. a CPU-only jaxlib beside a CUDA torch
    assert lines[-1].startswith("RESULT "), proc.stdout[-2000:]
    out = json.loads(lines[-1][len("RESULT "):])
    assert out["before"] == "cuda:0" and out["after"] == "cuda:0", out
    assert out["param_devices"] == ["cuda:0"], out["param_devices"]
    x, y, lengths = data()
    reference = oracle(params())
    assert_close(out["losses"], [reference.train_step(x, y, LR, lengths) for _ in range(STEPS)],
                 RTOL["float64"], f"{name} losses on cuda")
    assert_close({k: np.array(v) for k, v in out["params"].items()}, reference.get_params(),
                 RTOL["float64"], f"{name} parameters on cuda")
