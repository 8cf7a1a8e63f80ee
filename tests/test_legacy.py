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

import pytest

from rnnperf import flags, host
from rnnperf.engines import legacy_venv as legacy

from oracle_helpers import CHECKS, RTOL, compare_with_oracle, data, params

# read at collection, before conftest gives each test a private HOME
LEGACY_DIR = str(host.legacy_dir())
LEGACY_PY = host.legacy_python()
needs_venv = pytest.mark.skipif(LEGACY_PY is None, reason="legacy Theano venv not built "
                                "(run: rnnperf legacy setup)")


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
    """The shared case of the engine tests (:mod:`oracle_helpers`), as JSON for the venv."""
    x, y, lengths = data()
    return {"dtype": dtype, "params": {k: v.tolist() for k, v in params().items()},
            "x": x.tolist(), "y": y.tolist(), "lengths": lengths.tolist()}


class Replay:
    """What the engine in the venv returned, played back through the engine interface, so that
    :func:`oracle_helpers.compare_with_oracle` holds it to the checks every engine meets. The venv
    ran from the same parameters and data, three SGD steps at lr=0.5 (the helper's defaults)."""

    def __init__(self, recorded):
        self.recorded = recorded
        self.set_params(None)

    def set_params(self, params):
        self.steps = iter(self.recorded["train"])        # the venv's engine started from params

    def forward(self, x, lengths):
        return self.recorded["probs"]

    def loss(self, x, y, lengths):
        return self.recorded["loss"]

    def gradients(self, x, y, lengths):
        return self.recorded["grads"]

    def train_step(self, x, y, lr, lengths):
        assert lr == 0.5, lr
        return next(self.steps)                           # a fourth step fails: none recorded

    def get_params(self):
        return self.recorded["params"]


@needs_venv
@pytest.mark.parametrize("dtype", ["float64", pytest.param("float32", marks=pytest.mark.slow)])
def test_theano_matches_oracle(dtype):
    proc = run_in_venv(PARITY_SCRIPT, json.dumps(oracle_case(dtype)))
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("PARITY ")]
    assert lines, proc.stderr[-3000:]
    got = json.loads(lines[-1][len("PARITY "):])
    assert got["device"] == "cpu"
    for variant, batched in (("batched", True), ("single", False)):
        for check in CHECKS:
            compare_with_oracle(Replay(got[variant]), check, batched, RTOL[dtype],
                                params=params(), data=data())


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
    from rnnperf.bench.process import run_worker
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
