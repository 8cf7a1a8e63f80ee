"""``matmul_precision=``: the key, what it sets in torch and JAX, parity's tolerance, and the
platform JAX runs on (device= decides, never the environment).

What a GPU is needed for (TF32 and bfloat16 products exist there only; XLA's CPU backend ignores
the precision, torch's oneDNN keeps float32 on this CPU) is in the ``gpu``-marked tests at the end.
Every test that changes torch's or JAX's process-wide settings puts them back.
"""

import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

from rnnperf import flags
from rnnperf.bench import parity
from rnnperf.cli import main
from rnnperf.errors import ConfigError, Unavailable
from rnnperf.flags.keys import matmul_precision_refusal

VALUES = ("float32", "tf32", "bf16")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --- the key ---------------------------------------------------------------------------------
def test_default_is_float32_recorded_but_not_in_the_profile():
    cfg = flags.load("engine=jax", use_env=False)
    assert cfg["matmul_precision"] == "float32"
    assert cfg.values()["matmul_precision"] == "float32"
    assert "matmul_precision" not in cfg.profile()       # a default, not something typed
    assert "matmul_precision=bf16" in flags.load("engine=jax,matmul_precision=bf16",
                                                 use_env=False).profile()


@pytest.mark.parametrize("value", VALUES)
def test_every_value_parses(value):
    assert flags.load(f"matmul_precision={value}", use_env=False)["matmul_precision"] == value


@pytest.mark.parametrize("bad", ["fp8", "TF32", "float16", "", "highest"])
def test_bad_value_is_one_line_config_error(bad):
    with pytest.raises(ConfigError) as err:
        flags.load(f"matmul_precision={bad}", use_env=False)
    assert "matmul_precision" in str(err.value) and "\n" not in str(err.value)
    assert "float32, tf32, bf16" in str(err.value)


def test_cli_refuses_a_bad_value_with_exit_2_and_one_line(capsys):
    assert main(["flags", "--flags", "matmul_precision=fp8"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "matmul_precision='fp8'" in err


def test_a_bench_result_records_the_precision():
    """Measurement.flags holds every effective key (Config.values()), this one included."""
    from rnnperf.bench.plan import Job
    shape = dict(T=3, B=2, I=4, H=5, O=3)
    for text, want in (("engine=jax", "float32"), ("engine=torch,matmul_precision=tf32", "tf32")):
        measurement = Job(flags.load(text, use_env=False), shape, "train").blank()
        assert measurement.flags["matmul_precision"] == want


@pytest.mark.parametrize("engine", ["numpy", "pytensor-c", "pytensor-numba", "theano"])
def test_engines_outside_torch_and_xla_can_only_honour_float32(engine):
    assert matmul_precision_refusal(engine, "float32") is None
    for value in ("tf32", "bf16"):
        why = matmul_precision_refusal(engine, value)
        assert f"engine={engine}" in why and f"matmul_precision={value}" in why
        assert "\n" not in why


@pytest.mark.parametrize("engine", ["torch", "pytensor-pytorch", "jax", "pytensor-jax"])
def test_torch_and_xla_engines_honour_every_value(engine):
    assert all(matmul_precision_refusal(engine, v) is None for v in VALUES)


# --- parity's tolerance ----------------------------------------------------------------------
def test_tolerance_follows_dtype_and_precision():
    assert parity.tolerance("float32") == parity.tolerance("float32", "float32") == 2e-4
    assert parity.tolerance("float32", "tf32") == 16 * 2.0 ** -11
    assert parity.tolerance("float32", "bf16") == 16 * 2.0 ** -8
    for value in VALUES:                # no library applies it to float64 products
        assert parity.tolerance("float64", value) == 1e-9
    with pytest.raises(KeyError):
        parity.tolerance("float32", "fp8")


def _perturbed_worker_answer(rel: float):
    """A worker's parity answer: the oracle's float32 case, every value off by ``rel``."""
    cases = {v: {k: (np.asarray(a) * (1 + rel)).tolist()
                 for k, a in parity.oracle(v, "float32").items()} for v in parity.VARIANTS}
    return types.SimpleNamespace(status="ok", error=None,
                                 data={"cases": cases, "shape": parity.parity_shape()})


@pytest.mark.parametrize("value,status", [("float32", "mismatch"), ("tf32", "ok"),
                                          ("bf16", "ok")])
def test_rows_from_worker_use_the_profiles_precision(value, status):
    config = flags.load(f"engine=jax,floatX=float32,matmul_precision={value}", use_env=False)
    rows = parity.rows_from_worker(config, _perturbed_worker_answer(3e-3))
    assert {r.status for r in rows} == {status}
    assert rows[0].errors[0].tolerance == parity.tolerance("float32", value)


# --- torch -----------------------------------------------------------------------------------
@pytest.fixture
def torch_state():
    """torch's precision switches as they were, put back after the test."""
    torch = pytest.importorskip("torch")
    saved = (torch.get_float32_matmul_precision(), torch.backends.cuda.matmul.allow_tf32,
             torch.backends.cudnn.allow_tf32)
    yield torch
    torch.set_float32_matmul_precision(saved[0])
    torch.backends.cuda.matmul.allow_tf32 = saved[1]
    torch.backends.cudnn.allow_tf32 = saved[2]


TORCH_READBACK = {  # value: (precision, cuBLAS TF32, cuDNN TF32, oneDNN (CPU) matmul precision)
    "float32": ("highest", False, False, "ieee"),
    "tf32": ("high", True, True, "tf32"),
    "bf16": ("medium", True, True, "bf16"),
}


@pytest.mark.parametrize("start", VALUES)
@pytest.mark.parametrize("value", VALUES)
def test_configure_torch_sets_every_switch(torch_state, value, start):
    """From any earlier setting (torch's own default has cuDNN's TF32 on)."""
    from rnnperf.engines.torch_runtime import apply_torch_precision, configure_torch
    torch = torch_state
    apply_torch_precision(start)
    device = configure_torch(flags.load(f"engine=torch,matmul_precision={value}",
                                        use_env=False))
    assert device == torch.device("cpu")
    level, cublas, cudnn, onednn = TORCH_READBACK[value]
    assert torch.get_float32_matmul_precision() == level
    assert torch.backends.cuda.matmul.allow_tf32 is cublas
    assert torch.backends.cudnn.allow_tf32 is cudnn
    assert (torch.backends.cudnn.rnn.fp32_precision == "tf32") is cudnn  # nn.RNN on cuDNN
    assert torch.backends.mkldnn.matmul.fp32_precision == onednn


@pytest.mark.parametrize("value", ["float32", "bf16"])
def test_torch_engine_passes_parity_under_each_precision_on_cpu(torch_state, value):
    """On this CPU bf16 ("medium") changes the kernels (oneDNN), not the rounding."""
    _assert_parity(_parity_engine(f"engine=torch,matmul_precision={value}"),
                   parity.tolerance("float32"))


def _parity_engine(text: str):
    """The profile's engine at parity's tiny shape, in this process."""
    from rnnperf.engines import load
    config = flags.load(f"{text},floatX=float32", use_env=False)
    s = parity.parity_shape()
    return load(config.engine, config)(config, s["I"], s["H"], s["O"],
                                       parity.parity_params("float32"))


def _assert_parity(engine, limit):
    """Both variants, each from parity's parameters, within ``limit`` of the oracle."""
    for variant in parity.VARIANTS:
        engine.set_params(parity.parity_params("float32"))
        got = parity.run_case(engine, variant, "float32")
        errors = parity.compare_case(got, parity.oracle(variant, "float32"), "float32")
        worst = max(e.max_rel for e in errors)
        assert worst <= limit, (variant, worst)


# --- JAX -------------------------------------------------------------------------------------
@pytest.fixture
def jax_state(monkeypatch, shared_compile_caches):
    """JAX's process-wide settings and JAX_PLATFORMS as they were, put back after the test."""
    jax = pytest.importorskip("jax")
    monkeypatch.setenv("JAX_PLATFORMS", os.environ.get("JAX_PLATFORMS", "cpu"))
    names = ("jax_default_matmul_precision", "jax_enable_x64", "jax_platforms")
    saved = {n: getattr(jax.config, n) for n in names}
    yield jax
    for name, value in saved.items():
        jax.config.update(name, value)


@pytest.mark.parametrize("floatX", ["float32", "float64"])
@pytest.mark.parametrize("value,want", [("float32", "float32"), ("tf32", "tensorfloat32"),
                                        ("bf16", "bfloat16")])
def test_configure_jax_sets_the_default_precision(jax_state, value, want, floatX):
    from rnnperf.engines.jax_runtime import configure_jax
    jax = jax_state
    jax.config.update("jax_default_matmul_precision", "bfloat16")   # whatever ran before
    configure_jax(flags.load(f"engine=jax,floatX={floatX},matmul_precision={value}",
                             use_env=False))
    expected = want if floatX == "float32" else "float32"
    assert jax.config.jax_default_matmul_precision == expected
    assert os.environ["JAX_PLATFORMS"] == "cpu" and jax.config.jax_platforms == "cpu"


@pytest.mark.parametrize("value,needle", [("float32", "precision = [HIGHEST, HIGHEST]"),
                                          ("tf32", "precision = [HIGH, HIGH]"),
                                          ("bf16", "precision = [DEFAULT, DEFAULT]")])
def test_the_precision_reaches_what_jit_traces(jax_state, value, needle):
    """It is part of jit's key: a function jitted before is traced again under the new value."""
    import jax.numpy as jnp

    from rnnperf.engines.jax_runtime import configure_jax
    jax = jax_state
    configure_jax(flags.load(f"engine=jax,matmul_precision={value}", use_env=False))
    a = np.ones((8, 8), np.float32)
    assert needle in jax.jit(jnp.dot).lower(a, a).as_text()


@pytest.mark.parametrize("value", ["tf32", "bf16"])
def test_jax_engine_passes_float32_parity_on_cpu_whatever_the_precision(jax_state, value):
    """XLA's CPU backend ignores the precision: float32's bound holds here (a GPU needs the
    wider one)."""
    engine = _parity_engine(f"engine=jax,matmul_precision={value}")
    assert jax_state.config.jax_default_matmul_precision == {"tf32": "tensorfloat32",
                                                             "bf16": "bfloat16"}[value]
    _assert_parity(engine, parity.tolerance("float32"))


def test_why_bf16_is_not_the_bf16_dot_algorithm_preset(jax_state):
    """The preset that would give bfloat16 operands does not compile the jax peer's single-
    sequence gradient (XLA's elemental dot emitter refuses it). Should a JAX release accept it,
    this fails, and jax_runtime's choice for bf16 can be revisited."""
    from rnnperf.engines.jax_engine import _loss
    jax = jax_state
    params = {k: jax.numpy.asarray(v) for k, v in parity.parity_params("float32").items()}
    x, y, _ = parity.parity_data("single", "float32")
    jax.config.update("jax_default_matmul_precision", "BF16_BF16_F32")
    with pytest.raises(Exception, match="ElementalIrEmitter"):
        jax.jit(jax.grad(_loss))(params, x[:, None, :], np.asarray(y)[None],
                                 np.array([x.shape[0]]))


def test_device_cpu_needs_jax_cpu_backend(jax_state, monkeypatch):
    """Backends started earlier without a CPU one (JAX_PLATFORMS=cuda at first use): refused."""
    from rnnperf.engines.jax_runtime import configure_jax
    jax = jax_state

    def no_cpu(*args, **kwargs):
        raise RuntimeError("Unknown backend: 'cpu' requested")
    monkeypatch.setattr(jax, "devices", no_cpu)
    with pytest.raises(Unavailable, match="device=cpu"):
        configure_jax(flags.load("engine=jax,device=cpu", use_env=False))


PLATFORM_PROBE = """
import os, sys
{pre}
from rnnperf import flags, init_params
from rnnperf.engines import load
from rnnperf.engines.jax_runtime import configure_jax
config = flags.load("engine={engine},device=cpu", use_env=False)
configure_jax(config)
import jax
print(os.environ["JAX_PLATFORMS"], jax.devices()[0].platform)
engine = load("{engine}", config)(config, 4, 6, 3, init_params(4, 6, 3))
engine.forward(__import__("numpy").ones((3, 4), "float32"))
print(engine.device_actual())
"""


def _probe(engine: str, pre: str = "") -> list[str]:
    """``engine`` with device=cpu in a fresh process whose environment says JAX_PLATFORMS=cuda
    (JAX reads the variable when it first starts a backend, so never in this process)."""
    env = {**os.environ, "JAX_PLATFORMS": "cuda", "PYTHONPATH": ROOT}
    code = PLATFORM_PROBE.replace("{pre}", pre).replace("{engine}", engine)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.split()


def test_device_cpu_wins_over_an_environment_that_says_cuda():
    pytest.importorskip("jax")
    assert _probe("jax") == ["cpu", "cpu", "cpu"]


def test_device_cpu_wins_even_where_jax_was_imported_first():
    """JAX imported under JAX_PLATFORMS=cuda (its config read the variable): the config too."""
    pytest.importorskip("jax")
    assert _probe("jax", pre="import jax") == ["cpu", "cpu", "cpu"]


@pytest.mark.slow
def test_pytensor_jax_device_cpu_wins_over_the_environment():
    pytest.importorskip("jax")
    assert _probe("pytensor-jax")[-1] == "cpu"


# --- on a GPU ----------------------------------------------------------------------------------
def _cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device: torch.cuda.is_available() is False")
    return torch


@pytest.mark.gpu
@pytest.mark.parametrize("shape", [None, "T=100,B=32,I=128,H=256"], ids=["tiny", "RW"])
def test_gpu_float32_parity_at_2e4(tmp_path, shape):
    """pytensor-jax, jax and torch on device=cuda agree with the oracle at float32's 2e-4 once
    matmul_precision=float32 turns TF32 off (JAX's and cuDNN's defaults would fail it)."""
    _cuda()
    out = tmp_path / "parity.json"
    argv = ["parity", "--engines", "pytensor-jax,jax,torch", "--dtypes", "float32",
            "--flags", "device=cuda,matmul_precision=float32", "--json", str(out),
            "--no-progress"] + (["--shape", shape] if shape else [])
    code = main(argv)
    rows = json.loads(out.read_text())["rows"]
    assert code == 0, [(r["engine"], r["status"], r["error"]) for r in rows]
    assert {r["engine"] for r in rows} == {"pytensor-jax", "jax", "torch"}
    for row in rows:
        assert row["status"] == "ok" and row["device_actual"].startswith("cuda"), row
        assert all(q["tolerance"] == 2e-4 for q in row["quantities"].values())


GPU_JAX_PROBE = """
import numpy as np
from rnnperf import flags
from rnnperf.engines.jax_runtime import configure_jax
import jax, jax.numpy as jnp
rng = np.random.default_rng(0)
a, b = (rng.standard_normal((1024, 1024)).astype(np.float32) for _ in range(2))
ref = a.astype(np.float64) @ b.astype(np.float64)
for value in ("float32", "tf32", "bf16"):
    configure_jax(flags.load(f"engine=jax,device=cuda,matmul_precision={value}", use_env=False))
    got = np.asarray(jax.jit(jnp.dot)(a, b))
    print(value, float(np.abs(got - ref).max() / np.abs(ref).max()))
"""


@pytest.mark.gpu
def test_gpu_each_precision_changes_the_rounding():
    """On an Ampere or later GPU: float32 rounds like float32, tf32 and bf16 visibly coarser
    (the settings reach cuBLAS and XLA, not just the libraries' flags; bf16 is TF32 in both)."""
    torch = _cuda()
    if torch.cuda.get_device_capability()[0] < 8:
        pytest.skip("TF32 and bfloat16 products need compute capability 8.0 or later")
    from rnnperf.engines.torch_runtime import apply_torch_precision
    a, b = (torch.randn(1024, 1024, device="cuda") for _ in range(2))
    ref = a.double() @ b.double()
    errors = {}
    saved = (torch.get_float32_matmul_precision(), torch.backends.cuda.matmul.allow_tf32,
             torch.backends.cudnn.allow_tf32)
    try:
        for value in VALUES:
            apply_torch_precision(value)
            errors[value] = float(((a @ b).double() - ref).abs().max() / ref.abs().max())
    finally:
        torch.set_float32_matmul_precision(saved[0])
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[1:]
    assert errors["float32"] < 1e-5 < min(errors["tf32"], errors["bf16"]), errors
    env = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"}
    proc = subprocess.run([sys.executable, "-c", GPU_JAX_PROBE], capture_output=True, text=True,
                          env={**env, "PYTHONPATH": ROOT}, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    jax_errors = {line.split()[0]: float(line.split()[1]) for line in proc.stdout.splitlines()}
    assert jax_errors["float32"] < 1e-5 < min(jax_errors["tf32"], jax_errors["bf16"]), jax_errors


@pytest.mark.parametrize("engine", ["numpy", "pytensor-c", "pytensor-numba"])
def test_a_profile_asking_a_precision_its_engine_cannot_honour_is_refused(engine, capsys):
    from rnnperf import cli
    assert cli.main(["flags", "--flags", f"engine={engine},matmul_precision=tf32"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "has no meaning" in err
    assert cli.main(["flags", "--flags", f"engine={engine},matmul_precision=float32"]) == 0
