"""The tests' one comparison with the float64 NumPy oracle, in PyTensor's ``compare_jax_and_py``
style.

``compare_with_oracle(engine, check, batched, rtol, params=..., data=...)`` resets ``engine`` to
``params``, runs one check on it and on a fresh float64 :class:`NumpyEngine` built from the same
parameters, on the same data, and holds every output to :func:`assert_close`. ``data`` is always a
padded batch ``(x[T, B, I], y[B], lengths[B])``; ``batched=False`` runs its first sequence, whole,
as a single sequence. An unknown check name raises: it never passes by doing nothing.

:func:`assert_close` is also the comparison for anything else a test holds to a reference (another
engine's trajectory, a result recorded in another interpreter): relative to the reference's largest
magnitude, shapes equal, every value finite; ``rtol=0`` asks for the same numbers exactly.

Imported by the test modules as ``from oracle_helpers import ...`` (``tests/`` is on ``sys.path``
under pytest's default rootdir-relative imports). The shared case below (sizes, ``params()``,
``data()``, ``make()``) is the one every PyTensor- and JAX-backed engine test uses.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping

import numpy as np
import pytest

from rnnperf import flags
from rnnperf.engines import load
from rnnperf.engines.numpy_engine import NumpyEngine

CHECKS = ("forward", "loss", "gradients", "train_step")
ORACLE_FLAGS = "engine=numpy,floatX=float64"
#: the engine tests' tolerances, relative to the reference's largest magnitude
RTOL = {"float64": 1e-9, "float32": 1e-4}


# --- the one comparison ----------------------------------------------------------------------


def assert_close(got, want, rtol: float, what: str) -> None:
    """``max|got - want| <= rtol * max|want|``, with equal shapes and only finite values.

    ``got`` and ``want`` are arrays or scalars, or mappings of them with the same keys (each
    compared as ``"{what} {key}"``). ``rtol=0`` is exact equality.
    """
    if isinstance(want, Mapping):
        assert isinstance(got, Mapping), f"{what}: got {type(got).__name__}, not a mapping"
        assert set(got) == set(want), f"{what}: keys {sorted(got)} != {sorted(want)}"
        for key in want:
            assert_close(got[key], want[key], rtol, f"{what} {key}")
        return
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert np.isfinite(want).all(), f"{what}: the reference has NaN or Inf"
    assert np.isfinite(got).all(), f"{what}: NaN or Inf where the reference is finite"
    if got.size == 0:
        return
    scale = max(float(np.abs(want).max()), 1e-30)
    err = float(np.abs(got - want).max()) / scale
    assert err <= rtol, f"{what}: relative error {err:.3g} > {rtol:g}"


def oracle(params: Mapping[str, np.ndarray]) -> NumpyEngine:
    """A fresh float64 NumPy oracle holding ``params`` (its sizes read from their shapes)."""
    n_hidden, n_in = np.shape(params["Wxh"])
    n_out = np.shape(params["Why"])[0]
    config = flags.load(flags=ORACLE_FLAGS, use_env=False)
    return NumpyEngine(config, n_in, n_hidden, n_out, dict(params))


def variant(data, batched: bool):
    """``data``'s padded batch as it is, or its first sequence (whole) as a single sequence."""
    x, y, lengths = data
    return (x, y, lengths) if batched else (x[:, 0], y[0], None)


def run_check(engine, check: str, x, y, lengths, *, steps: int = 3, lr: float = 0.5) -> dict:
    """What ``check`` produces on ``engine``, by name. ``train_step`` runs ``steps`` SGD steps
    (the shared parameters must carry each update into the next call), then reads the parameters.
    """
    if check == "forward":
        return {"probs": engine.forward(x, lengths)}
    if check == "loss":
        return {"loss": engine.loss(x, y, lengths)}
    if check == "gradients":
        return {f"d{k}": v for k, v in engine.gradients(x, y, lengths).items()}
    if check == "train_step":
        out = {f"loss at step {i}": engine.train_step(x, y, lr, lengths) for i in range(steps)}
        out.update({f"{k} after {steps} steps": v for k, v in engine.get_params().items()})
        return out
    raise ValueError(f"unknown check {check!r}: one of {', '.join(CHECKS)}")


def compare_with_oracle(engine, check: str, batched: bool, rtol: float, *, params, data,
                        steps: int = 3, lr: float = 0.5) -> dict:
    """Run ``check`` on ``engine`` and on a fresh float64 oracle, both from ``params``, on
    ``variant(data, batched)``; assert every output close. Returns the engine's outputs."""
    if check not in CHECKS:
        raise ValueError(f"unknown check {check!r}: one of {', '.join(CHECKS)}")
    engine.set_params(params)
    reference = oracle(params)
    x, y, lengths = variant(data, batched)
    got = run_check(engine, check, x, y, lengths, steps=steps, lr=lr)
    want = run_check(reference, check, x, y, lengths, steps=steps, lr=lr)
    assert_close(got, want, rtol, f"{check} ({'batched' if batched else 'single'}):")
    if check == "train_step":  # the steps moved the parameters: an update that did nothing fails
        assert not np.allclose(reference.get_params()["Whh"], params["Whh"]), \
            "train_step: the oracle's parameters did not move"
    return got


# --- the shared case of the PyTensor and JAX engine tests ------------------------------------

T_, B_, I_, H_, O_ = 5, 3, 4, 6, 3


def params() -> dict[str, np.ndarray]:
    """The tutorial's initialisation (seed 1, float64) times 30: weights of ~0.3 put tanh in its
    non-linear range, so gradients are not all ~1e-6."""
    from rnnperf.model.spec import init_params
    return {k: v * 30 for k, v in init_params(I_, H_, O_, seed=1, dtype="float64").items()}


def data():
    """A padded batch of three: lengths 5, 2, 3, the padding random (it must not leak in)."""
    rng = np.random.default_rng(0)
    return (rng.standard_normal((T_, B_, I_)), np.array([0, 2, 1]), np.array([5, 2, 3]))


def make(engine: str, dtype: str = "float64", formulation: str = "seed", device: str = "cpu",
         more: str = ""):
    """``engine`` at the shared sizes, holding :func:`params`."""
    config = flags.load(flags=f"engine={engine},floatX={dtype},formulation={formulation},"
                              f"device={device},{more}", use_env=False)
    return load(engine, config)(config, I_, H_, O_, params())


CUDA_PROBE = """
import sys
from rnnperf import flags
from rnnperf.engines import load
from rnnperf.errors import Unavailable
import jax
try:
    jax.devices("gpu"); print("HAS_GPU"); sys.exit(0)
except RuntimeError:
    pass
config = flags.load(flags="engine={engine},device=cuda", use_env=False)
try:
    load("{engine}", config)(config, 4, 6, 3, __import__("rnnperf").init_params(4, 6, 3))
except Unavailable as exc:
    print("UNAVAILABLE", exc)
else:
    print("RAN")
"""


def run_cuda_probe(engine: str) -> str:
    """``engine`` with device=cuda in a fresh process (JAX's platform is fixed at its first use,
    so never in this one): its last line, UNAVAILABLE or RAN. Skips where JAX sees a GPU."""
    env = dict(os.environ)
    env.pop("JAX_PLATFORMS", None)
    proc = subprocess.run([sys.executable, "-c", CUDA_PROBE.replace("{engine}", engine)],
                          capture_output=True, text=True, env=env, timeout=300)
    out = proc.stdout.strip().splitlines()
    assert out, proc.stderr[-2000:]
    if out[-1] == "HAS_GPU":
        pytest.skip("JAX sees a GPU here")
    return out[-1]
