"""The peak probe measured through the engine itself (rnnperf.bench.peak, Engine.matmul_step).

Every available engine's ``matmul_step`` must compute the right product (the same seeded operands,
:func:`rnnperf.engines.base.matmul_operands`, against NumPy in float64) and
:func:`~rnnperf.bench.peak.peak_gflops` must give a positive rate through it; no speed is asserted.
Then what each probe goes through: pytensor-c's is PyTensor's compiled dot on its blas__ldflags,
the cached pytensor-jax engine's never imports PyTensor, pytensor-pytorch's device is read from
torch tensors.
"""

import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from rnnperf.bench.flops import matmul_flops
from rnnperf.bench.peak import peak_gflops
from rnnperf.engines import availability
from rnnperf.engines.base import matmul_operands

from oracle_helpers import assert_close, make

pytestmark = [pytest.mark.filterwarnings("ignore:Skipping Assert"),
              pytest.mark.filterwarnings("ignore:Explicitly requested dtype float64"),
              pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS"),
              pytest.mark.usefixtures("shared_compile_caches")]

#: the product's tolerance, relative to its largest magnitude
TOL = {"float64": 1e-10, "float32": 1e-4}
#: (engine, extra flags); pytensor-jax with and without its function cache
ENGINES = [("numpy", ""), ("pytensor-c", ""), ("pytensor-numba", ""),
           ("pytensor-jax", "function_cache=True"), ("pytensor-jax", "function_cache=False"),
           ("pytensor-pytorch", ""), ("torch", ""), ("jax", "")]
#: torch.compile's first compile of the dot takes several seconds on a small box
SLOW = {"pytensor-pytorch"}


def build(name: str, dtype: str, more: str = ""):
    ok, reason, _ = availability(name)
    if not ok:
        pytest.skip(f"{name}: {reason}")
    return make(name, dtype, more=more)


def host(value) -> np.ndarray:
    if hasattr(value, "detach"):                       # torch.Tensor
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _cases():
    for name, more in ENGINES:
        for dtype in ("float64", "float32"):
            yield pytest.param(name, more, dtype, id=f"{name}-{more or 'default'}-{dtype}",
                               marks=pytest.mark.slow if name in SLOW else ())


@pytest.mark.parametrize("name,more,dtype", list(_cases()))
def test_matmul_step_is_the_product_and_peak_is_positive(name, more, dtype):
    engine = build(name, dtype, more)
    got = host(engine.matmul_step(64)())
    a, b = matmul_operands(64, dtype)
    assert got.dtype == np.dtype(dtype), got.dtype
    assert_close(got, a.astype(np.float64) @ b.astype(np.float64), TOL[dtype], f"{name} product")
    gflops, n, label = peak_gflops(engine, engine.config, 0.001, 5, max_n=1024)
    assert np.isfinite(gflops) and gflops > 0
    assert 256 <= n <= 1024
    assert label == engine.matmul_label() and label


# --- the size search and the statistic, on a fake engine ------------------------------------


class FakeEngine:
    """A product that sleeps like an ideal machine: ``seconds_at_1024 * (n / 1024) ** 3``."""

    def __init__(self, seconds_at_1024: float):
        self.per, self.sizes = seconds_at_1024, []

    def matmul_step(self, n):
        import time
        self.sizes.append(n)
        return lambda: time.sleep(self.per * (n / 1024) ** 3)

    def matmul_label(self):
        return "fake"


def test_size_search_stops_at_target_with_cpu_floor_and_cap():
    cpu, gpu = SimpleNamespace(wants_gpu=False), SimpleNamespace(wants_gpu=True)
    slow = FakeEngine(0.02)         # 256 already lasts the target: the CPU floor asks for 1024
    assert peak_gflops(slow, cpu, 0.001, 2, target_s=0.0002)[1:] == (1024, "fake")
    assert slow.sizes == [256, 512, 1024]
    assert peak_gflops(FakeEngine(0.02), gpu, 0.001, 2, target_s=0.0002)[1] == 256
    fast = FakeEngine(0.0)          # never reaches the target: stops at max_n
    assert peak_gflops(fast, cpu, 0.001, 2, max_n=2048)[1] == 2048


def test_rate_is_median_of_rounds_calibrated_like_the_step(monkeypatch):
    from rnnperf.bench import peak
    seen = {}
    monkeypatch.setattr(peak, "calibrate", lambda step, min_time: seen.update(t=min_time) or 4)
    monkeypatch.setattr(peak, "time_rounds",
                        lambda step, loops, rounds: seen.update(l=loops, r=rounds) or
                        [0.001, 0.004, 0.002, 0.5, 0.003])
    gflops, n, _ = peak_gflops(FakeEngine(0.0), SimpleNamespace(wants_gpu=False), 0.25, 5,
                               max_n=1024)
    assert seen == {"t": 0.25, "l": 4, "r": 5}
    assert gflops == pytest.approx(matmul_flops(n) / 0.003 / 1e9)   # the median, not the best


# --- what each probe goes through -----------------------------------------------------------


def test_pytensor_c_probe_is_pytensors_compiled_dot():
    import pytensor
    engine = build("pytensor-c", "float64")
    fn = engine.matmul_function()
    ops = {type(node.op).__name__ for node in fn.maker.fgraph.apply_nodes}
    assert any(op.startswith(("Dot", "Gemm")) for op in ops), ops
    assert type(fn.vm).__name__ == "CVM", type(fn.vm)
    label = engine.matmul_label()
    assert label.startswith("pytensor CVM ")
    assert f"blas__ldflags={pytensor.config.blas__ldflags}" in label, label
    calls = []
    engine._matmul_fn = lambda *args: calls.append(len(args)) or fn(*args)
    engine.matmul_step(32)()
    assert calls == [2], "the probe did not call the compiled dot"


CACHED_JAX_PROBE = """
import sys
from rnnperf import flags
from rnnperf.bench.peak import peak_gflops
from rnnperf.engines import load
from rnnperf.model.spec import init_params
config = flags.load(flags="engine=pytensor-jax,floatX=float32,function_cache=True", use_env=False)
cls = load("pytensor-jax", config)
engine = cls(config, 4, 6, 3, init_params(4, 6, 3))
engine.matmul_step(64)()
rate, n, label = peak_gflops(engine, config, 0.001, 3, max_n=512)
print(cls.__name__, "pytensor" in sys.modules, rate > 0, label)
"""


def test_cached_jax_probe_never_imports_pytensor():
    ok, reason, _ = availability("pytensor-jax")
    if not ok:
        pytest.skip(reason)
    proc = subprocess.run([sys.executable, "-c", CACHED_JAX_PROBE], capture_output=True,
                          text=True, env=dict(os.environ), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    words = proc.stdout.strip().splitlines()[-1].split(" ", 3)
    if words[0] != "CachedJaxEngine":
        pytest.skip(f"the function cache is off here ({words[0]})")
    assert words[1:3] == ["False", "True"], proc.stdout
    assert words[3].startswith("jax.numpy.dot"), words[3]


def _spy_device_reads(monkeypatch, engine) -> list:
    """The types of what ``device_actual`` reads the device from, from now on."""
    from rnnperf.engines import pytensor_engine
    seen, real = [], pytensor_engine.array_device
    monkeypatch.setattr(pytensor_engine, "array_device", lambda v: seen.append(type(v)) or real(v))
    return seen


def test_pytorch_device_actual_reads_torch_tensors(monkeypatch):
    torch = pytest.importorskip("torch", reason="pytensor-pytorch needs torch")
    engine = build("pytensor-pytorch", "float64")
    seen = _spy_device_reads(monkeypatch, engine)
    monkeypatch.setattr(engine._shared["Why"], "get_value", _no_numpy_storage)
    # the parameters the compiled function computes with are torch tensors the engine holds
    assert engine.device_actual() == "cpu" and seen == [torch.Tensor]
    engine._params["Why"] = torch.empty(3, device="meta")      # the held tensor decides
    assert engine.device_actual() == "meta:0"


@pytest.mark.slow  # torch.compile of the seed forward graph: several seconds
def test_pytorch_device_actual_after_a_real_call(monkeypatch):
    torch = pytest.importorskip("torch", reason="pytensor-pytorch needs torch")
    engine = build("pytensor-pytorch", "float32")
    x = np.random.default_rng(0).standard_normal((5, 4)).astype("float32")
    engine.forward(x)
    seen = _spy_device_reads(monkeypatch, engine)
    monkeypatch.setattr(engine._shared["Why"], "get_value", _no_numpy_storage)
    assert engine.device_actual() == "cpu" and seen == [torch.Tensor]


def _no_numpy_storage(*args, **kwargs):
    raise AssertionError("device_actual read the NumPy parameter storage")


@pytest.mark.slow  # the default size search: several products of up to ~0.2 s each
def test_peak_with_default_sizes():
    engine = build("numpy", "float32")
    gflops, n, label = peak_gflops(engine, engine.config, 0.001, 3)
    assert gflops > 0 and 1024 <= n <= 8192 and label.startswith("numpy matmul")
