"""Parity: every engine against the float64 NumPy oracle, on the same parameters and data.

For each variant (single sequence, padded batch) the worker computes, with the engine under test:
the probabilities, the loss, all five gradients, and the parameters after one SGD step; the oracle
computes the same from the *same* parameter values (the engine's, upcast to float64), so only the
engine's arithmetic is measured. Each quantity reports its max absolute error and its error
relative to the quantity's scale (``max|a-b| / max|ref|``); it passes when the latter is within
the tolerance of the engine's dtype.

Parameters are the seed's initialisation with the weights scaled to std 0.3 and random biases:
with ``randn * 0.01`` every tanh works in its linear range and a wrong nonlinearity would pass.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from ..model.spec import PARAM_NAMES, init_params

VARIANTS = ("single", "batched")
QUANTITIES = ("probs", "loss") + tuple(f"d{k}" for k in PARAM_NAMES) + tuple(
    f"{k}+" for k in PARAM_NAMES)
TOLERANCE = {"float64": 1e-9, "float32": 2e-4}
SIZES = dict(T=7, B=4, I=5, H=6, O=4)
LENGTHS = np.array([7, 3, 1, 5])
LR = 0.5


def parity_params(dtype: str, seed: int = 0) -> dict[str, np.ndarray]:
    base = init_params(SIZES["I"], SIZES["H"], SIZES["O"], seed=seed, dtype="float64")
    rng = np.random.default_rng(seed + 1)
    out = {}
    for name, value in base.items():
        out[name] = value * 30.0 if name.startswith("W") else rng.normal(0, 0.3, value.shape)
    return {k: v.astype(dtype) for k, v in out.items()}


def parity_data(variant: str, dtype: str, seed: int = 0):
    rng = np.random.default_rng(seed + 2)
    T, B, I, O = SIZES["T"], SIZES["B"], SIZES["I"], SIZES["O"]
    if variant == "single":
        return rng.standard_normal((T, I)).astype(dtype), np.int64(2), None
    x = rng.standard_normal((T, B, I)).astype(dtype)
    for b, n in enumerate(LENGTHS):
        x[n:, b] = 0.0  # padding, as a real batch would carry
    return x, rng.integers(0, O, B).astype(np.int64), LENGTHS.copy()


def run_case(engine, variant: str, dtype: str) -> dict[str, np.ndarray]:
    x, y, lengths = parity_data(variant, dtype)
    out = dict(engine.parity_step(x, y, LR, lengths))
    out.update({f"{k}+": v for k, v in engine.get_params().items()})
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


def worker_job(config, payload):
    """In the worker: run both variants with the profile's engine; return raw arrays."""
    from ..engines import load
    cls = load(config.engine, config)
    dtype = config.floatX
    params = parity_params(dtype)
    out = {"engine": config.engine, "dtype": dtype, "versions": cls.versions(), "cases": {}}
    # Test-only fault injection: proves that a wrong engine fails the check (tests/test_cli.py).
    perturb = float(os.environ.get("RNNPERF_PARITY_PERTURB", "0"))
    for variant in payload.get("variants", VARIANTS):
        engine = cls(config, SIZES["I"], SIZES["H"], SIZES["O"], params)
        values = run_case(engine, variant, dtype)
        if perturb:
            values["dWhh"] = values["dWhh"] * (1 + perturb)
        out["device_actual"] = engine.device_actual()
        out["cases"][variant] = {k: v.tolist() for k, v in values.items()}
    return out


def oracle(variant: str, dtype: str) -> dict[str, np.ndarray]:
    """The float64 reference on the engine's own (dtype-rounded) parameters and data."""
    from ..model.oracle import loss_and_grads
    params = {k: v.astype(np.float64) for k, v in parity_params(dtype).items()}
    x, y, lengths = parity_data(variant, dtype)
    x = x.astype(np.float64)
    if variant == "single":                          # a single sequence is a batch of one
        x, y, lengths = x[:, None, :], np.asarray(y)[None], np.array([x.shape[0]])
    loss, probs, grads = loss_and_grads(params, x, y, lengths)
    out = {"probs": probs[0] if variant == "single" else probs, "loss": np.asarray(loss)}
    out.update({f"d{k}": v for k, v in grads.items()})
    out.update({f"{k}+": params[k] - LR * grads[k] for k in PARAM_NAMES})
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


@dataclasses.dataclass
class QuantityError:
    quantity: str
    max_abs: float
    max_rel: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return bool(np.isfinite(self.max_rel) and self.max_rel <= self.tolerance)


def compare_case(got: dict, ref: dict, dtype: str) -> list[QuantityError]:
    errors = []
    for quantity in QUANTITIES:
        want = np.asarray(ref[quantity], dtype=np.float64)
        have = np.asarray(got.get(quantity, np.full_like(want, np.nan)), dtype=np.float64)
        if have.shape != want.shape:
            errors.append(QuantityError(quantity, float("inf"), float("inf"), TOLERANCE[dtype]))
            continue
        diff = np.abs(have - want)
        max_abs = float(np.max(diff)) if diff.size else 0.0
        if not np.all(np.isfinite(have)):
            max_abs = float("nan")
        scale = float(np.max(np.abs(want))) if want.size else 1.0
        max_rel = max_abs / scale if scale > 0 else max_abs
        errors.append(QuantityError(quantity, max_abs, max_rel, TOLERANCE[dtype]))
    return errors


@dataclasses.dataclass
class ParityRow:
    engine: str
    formulation: str
    dtype: str
    variant: str
    status: str                  # ok | mismatch | failed | unavailable | timeout
    errors: list[QuantityError]
    error: str | None = None
    device_actual: str | None = None

    @property
    def worst(self) -> QuantityError | None:
        if not self.errors:
            return None
        return max(self.errors, key=severity)

    def as_json(self) -> dict:
        return {"engine": self.engine, "formulation": self.formulation, "dtype": self.dtype,
                "variant": self.variant, "status": self.status, "error": self.error,
                "device_actual": self.device_actual,
                "quantities": {e.quantity: {"max_abs": json_number(e.max_abs),
                                            "max_rel": json_number(e.max_rel),
                                            "tolerance": e.tolerance, "ok": e.ok}
                               for e in self.errors}}


def severity(err: QuantityError) -> tuple:
    """Sort key for errors: non-finite first, then by how far past the tolerance."""
    finite = bool(np.isfinite(err.max_rel))
    return (not finite, err.max_rel / err.tolerance if finite else 0.0)


def json_number(value: float):
    """NaN and Inf as strings: results documents are strict JSON."""
    return value if np.isfinite(value) else str(value)


def rows_from_worker(config, result) -> list[ParityRow]:
    """Turn one worker's answer into one row per variant."""
    from ..engines.registry import get
    has_formulations = get(config.engine).has_formulations
    formulation = config.get("formulation", "seed") if has_formulations else "-"
    if result.status != "ok":
        status = result.status if result.status in ("unavailable", "timeout") else "failed"
        return [ParityRow(config.engine, formulation, config.floatX, v, status, [], result.error)
                for v in VARIANTS]
    rows = []
    for variant in VARIANTS:
        got = {k: np.asarray(v, dtype=np.float64)
               for k, v in result.data["cases"][variant].items()}
        errors = compare_case(got, oracle(variant, config.floatX), config.floatX)
        status = "ok" if all(e.ok for e in errors) else "mismatch"
        rows.append(ParityRow(config.engine, formulation, config.floatX, variant, status, errors,
                              None, result.data.get("device_actual")))
    return rows
