"""Legacy Theano 1.0.5: choosing the venv's Python, and the ``theano`` engine inside that venv.

The engine tests need the venv (``rnnperf legacy setup``, about a minute plus Theano's first C
compile) and skip with that reason where it is absent. They run the engine the way a benchmark
does, in the venv's own interpreter, and compare what it returns with the oracle run here.
Theano compiles each function to C on first use (tens of seconds per dtype, cached in the venv's
compiledir afterwards), so only float64 is in the core suite.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from rnnperf import flags, legacy
from rnnperf.engines import load
from rnnperf.model import PARAM_NAMES, init_params

# read at collection, before conftest gives each test a private HOME
LEGACY_DIR = str(legacy.legacy_dir())
LEGACY_PY = legacy.legacy_python()
needs_venv = pytest.mark.skipif(LEGACY_PY is None, reason="legacy Theano venv not built "
                                "(run: rnnperf legacy setup)")
RTOL = {"float64": 1e-9, "float32": 1e-4}


# --- choosing the interpreter (no venv needed) ----------------------------------------------


def fake_python(path, major_minor: str, code: int = 0):
    path.write_text(f"#!/bin/sh\necho {major_minor}\nexit {code}\n")
    path.chmod(0o755)
    return str(path)


def test_setup_picks_python310_when_present(tmp_path, monkeypatch):
    shim_dir, real_dir = tmp_path / "shims", tmp_path / "pyenv"
    shim_dir.mkdir()
    real_dir.mkdir()
    fake_python(shim_dir / "python3.10", "", code=127)  # a pyenv shim for an unselected version
    real = fake_python(real_dir / "python3.10", "3 10")
    monkeypatch.setenv("PATH", f"{shim_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(legacy, "PYENV_GLOBS", (str(real_dir / "python3.1*"),))
    assert legacy.find_python310() == real
    assert legacy.choose_python() == real
    assert legacy.choose_python("/explicit/python") == "/explicit/python"

    calls = []

    def record(cmd, what, env=None):
        calls.append(cmd)
        raise legacy_stop()
    monkeypatch.setattr(legacy, "_run", record)
    monkeypatch.setenv("RNNPERF_LEGACY_VENV", str(tmp_path / "venv"))
    with pytest.raises(legacy_stop):
        legacy.setup_legacy_venv(progress=lambda line: None)
    assert calls[0][:3] == [real, "-m", "venv"]
    assert legacy.legacy_python() is None  # no marker until the import check passes


class legacy_stop(Exception):
    pass


def test_setup_falls_back_to_current_python(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(legacy, "PYENV_GLOBS", ())
    assert legacy.find_python310() is None
    assert legacy.choose_python() == sys.executable


def test_status_without_venv(monkeypatch, tmp_path):
    monkeypatch.setenv("RNNPERF_LEGACY_VENV", str(tmp_path / "none"))
    status = legacy.legacy_status()
    assert status["ready"] is False and status["python"] is None


def test_theano_flags_always_set_blas():
    out = legacy.theano_flags({"floatX": "float32"})
    assert "blas.ldflags" in out and out["device"] == "cpu" and out["floatX"] == "float32"
    assert legacy.theano_flags({"blas.ldflags": ""})["blas.ldflags"] == ""


# --- the engine inside the venv -------------------------------------------------------------

PARITY_SCRIPT = r"""
import json, sys
import numpy as np
from rnnperf import flags
from rnnperf.engines.theano_engine import TheanoEngine
spec = json.loads(sys.stdin.read())
p = {k: np.array(v) for k, v in spec["params"].items()}
x, y, lengths = np.array(spec["x"]), np.array(spec["y"]), np.array(spec["lengths"])
config = flags.load(flags="engine=theano,floatX=" + spec["dtype"], use_env=False)
e = TheanoEngine(config, x.shape[-1], p["Whh"].shape[0], p["Why"].shape[0], p)
out = {"device": e.device_actual(), "c_scan": e.uses_c_scan()}
for name, (xs, ys, ls) in {"batched": (x, y, lengths), "single": (x[:, 0], y[0], None)}.items():
    e.set_params(p)
    r = {"probs": e.forward(xs, ls).tolist(), "loss": e.loss(xs, ys, ls),
         "grads": {k: v.tolist() for k, v in e.gradients(xs, ys, ls).items()},
         "train": [e.train_step(xs, ys, 0.5, ls) for _ in range(3)],
         "params": {k: v.tolist() for k, v in e.get_params().items()}}
    out[name] = r
print("PARITY " + json.dumps(out))
"""


def legacy_env():
    return legacy.legacy_env({"RNNPERF_LEGACY_VENV": LEGACY_DIR, "HOME": os.environ["HOME"]})


def run_in_venv(script, stdin="", timeout=900):
    proc = subprocess.run([LEGACY_PY, "-c", script], input=stdin, capture_output=True,
                          text=True, env=legacy_env(), timeout=timeout)
    return proc


def oracle_case(dtype):
    p = {k: v * 30 for k, v in init_params(4, 6, 3, seed=1, dtype="float64").items()}
    rng = np.random.default_rng(0)
    x, y, lengths = rng.standard_normal((5, 3, 4)), np.array([0, 2, 1]), np.array([5, 2, 3])
    spec = {"dtype": dtype, "params": {k: v.tolist() for k, v in p.items()}, "x": x.tolist(),
            "y": y.tolist(), "lengths": lengths.tolist()}
    return spec, p, x, y, lengths


def close(got, want, rtol, what):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    err = float(np.abs(got - want).max()) / max(float(np.abs(want).max()), 1e-30)
    assert err <= rtol, f"{what}: relative error {err:.3g} > {rtol:g}"


@needs_venv
@pytest.mark.parametrize("dtype", ["float64", pytest.param("float32", marks=pytest.mark.slow)])
def test_theano_matches_oracle(dtype):
    spec, p, x, y, lengths = oracle_case(dtype)
    proc = run_in_venv(PARITY_SCRIPT, json.dumps(spec))
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("PARITY ")]
    assert lines, proc.stderr[-3000:]
    got = json.loads(lines[-1][len("PARITY "):])
    assert got["device"] == "cpu"
    rtol = RTOL[dtype]
    config = flags.load(flags="engine=numpy,floatX=float64", use_env=False)
    for name, (xs, ys, ls) in {"batched": (x, y, lengths), "single": (x[:, 0], y[0], None)}.items():
        oracle = load("numpy")(config, 4, 6, 3, p)
        r = got[name]
        close(r["probs"], oracle.forward(xs, ls), rtol, f"{name} probs")
        close(r["loss"], oracle.loss(xs, ys, ls), rtol, f"{name} loss")
        want = oracle.gradients(xs, ys, ls)
        for k in PARAM_NAMES:
            close(r["grads"][k], want[k], rtol, f"{name} d{k}")
        close(r["train"], [oracle.train_step(xs, ys, 0.5, ls) for _ in range(3)], rtol,
              f"{name} train losses")
        for k, v in oracle.get_params().items():
            close(r["params"][k], v, rtol, f"{name} {k} after 3 steps")


CUDA_SCRIPT = r"""
import sys
from rnnperf import flags, init_params
from rnnperf.engines.theano_engine import TheanoEngine
from rnnperf.errors import Unavailable
config = flags.load(flags="engine=theano,device=cuda", use_env=False)
try:
    TheanoEngine(config, 4, 6, 3, init_params(4, 6, 3))
except Unavailable as exc:
    print("UNAVAILABLE", exc, "| theano imported:", "theano" in sys.modules)
"""


@needs_venv
def test_theano_cuda_is_unavailable_before_import():
    proc = run_in_venv(CUDA_SCRIPT, timeout=120)
    line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-2000:]
    assert line.startswith("UNAVAILABLE") and "pygpu is not on PyPI" in line, line
    assert line.endswith("theano imported: False"), line


@needs_venv
def test_worker_runs_in_the_venv(monkeypatch):
    from rnnperf.worker import run_worker
    monkeypatch.setenv("RNNPERF_LEGACY_VENV", LEGACY_DIR)
    config = flags.load(flags="engine=theano", use_env=False)
    result = run_worker("info", config, {}, timeout=120)
    assert result.status == "ok", (result.error, result.stderr_tail)
    assert result.data["versions"]["theano"] == "1.0.5"
    assert result.data["versions"]["python"].startswith("3.")


@needs_venv
def test_status_with_venv(monkeypatch):
    monkeypatch.setenv("RNNPERF_LEGACY_VENV", LEGACY_DIR)
    status = legacy.legacy_status()
    assert status["ready"] and status["theano"] == "1.0.5" and status["python"] == LEGACY_PY
