"""Parity: every engine against the float64 NumPy oracle, on the same parameters and data.

For each variant (single sequence, padded batch) the worker computes, with the engine under test:
the probabilities, the loss, every gradient, and the parameters after one SGD step (of the
profile's ``cell``: five parameters, six for a GRU); the oracle
computes the same from the *same* parameter values (the engine's, upcast to float64), so only the
engine's arithmetic is measured. Each quantity reports its max absolute error and its error
relative to the quantity's scale (``max|a-b| / max|ref|``); it passes when the latter is within
the tolerance of the engine's dtype.

Parameters are the seed's initialisation with the weights scaled to std 0.3 and random biases:
with ``randn * 0.01`` every tanh works in its linear range and a wrong nonlinearity would pass.

# Shapes
By default the case is tiny (:data:`SIZES`, :data:`LENGTHS`). ``rnnperf parity --shape`` runs it at
any shape, e.g. the reference workload (RW, T=100,B=32,I=128,H=256), where the kernels take their
production path (``formulation=fused``: full 8-row register blocks split over the profile's
threads, the vectorised tanh of ``-D__FAST_MATH__``); lengths there are ragged over ``T .. 1``
(:func:`parity_lengths`) and the padding is random, so a read past a sequence's end shows. Beyond
:data:`SIZES` the weights scale with ``1/sqrt(fan-in)`` (:func:`parity_params`). Unscaled, std
0.3 at H=256 is a chaotic recurrence (``Whh``'s spectral radius 5.0): a float32 state's error
grows tenfold every five steps, to 0.4 by step 30, whatever the engine (numpy float32 at RW:
relative errors 0.06 to 2.6), and no tolerance could tell right from wrong. Scaled (radius 0.76),
the float32 states stay within 1e-6 over all 100 steps, and are as nonlinear as at
:data:`SIZES` (at RW half of them beyond ``|h| = 0.5``, 8% beyond 0.9).

# Tolerance
Relative to each quantity's scale, from :func:`tolerance` (dtype and ``matmul_precision``): 1e-9
for float64, 2e-4 for float32 products in float32, at every shape. Measured at RW (worst quantity
over both variants): float32 numpy 9.8e-7, pytensor-c fused 9.9e-7 and hoisted 3.8e-7; float64
pytensor-c at most 1.3e-15; at :data:`SIZES` float32 numpy 3.5e-7. So no bound growing with T*H
is needed: the recurrence contracts, and rounding does not compound.

Under ``matmul_precision=tf32`` or ``bf16`` the products round their operands to 11 or 8
significant bits, so the bound is :data:`GROWTH` times the unit roundoff ``u`` (2^-11 for TF32,
2^-8 for bfloat16): 7.8e-3 and 6.25e-2. No CPU here rounds so (XLA's CPU backend ignores the
precision; torch's oneDNN on AVX-512-BF16 without AMX keeps float32), so the factor was measured
by emulation: the oracle's maths in float32 with every product's operands rounded to TF32 or
bfloat16, their exact products summed and rounded once to float32 (a tensor core sums in
float32; that differs by ~1e-7, far below these errors). Worst quantity over both variants, in
units of u: TF32 6.4 (SIZES) and 1.8 (RW) rounding to nearest, 7.6 and 4.0 truncating; bfloat16
3.4 and 1.8 to nearest, 5.9 and 4.6 truncating; always a weight gradient. GROWTH = 16 leaves 2.1
times the worst (TF32 truncating, which some tensor-core paths do) and 2.5 times the worst
rounding to nearest; a wrong formula is off by O(1), so the check still tells right from wrong.
On CUDA both libraries run ``bf16`` as TF32 (:mod:`rnnperf.engines.torch_runtime`,
:mod:`rnnperf.engines.jax_runtime`), so its bound is wider than needed there; it is the one for
products that do round to bfloat16 (torch's oneDNN where the CPU honours ``fpmath_mode=bf16``).
float64 keeps 1e-9 whatever ``matmul_precision`` says: no library applies it to float64.

# Did the fused kernels run as C?
:mod:`.fused_check` says; a row whose kernels did not run as C fails.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from .. import cells
from ..model.spec import init_params, param_names, param_shapes
from .fused_check import fused_perform_calls, fused_report

VARIANTS = ("single", "batched")


def quantities(cell: str = "elman") -> tuple[str, ...]:
    """What parity compares for ``cell``: probabilities, loss, every gradient, every parameter
    after one SGD step."""
    names = param_names(cell)
    return ("probs", "loss") + tuple(f"d{k}" for k in names) + tuple(f"{k}+" for k in names)


QUANTITIES = quantities("elman")
#: the bound at full precision (``matmul_precision=float32``), by dtype
TOLERANCE = {"float64": 1e-9, "float32": 2e-4}
#: the unit roundoff of the reduced-precision products' operands (round to nearest)
UNIT_ROUNDOFF = {"tf32": 2.0 ** -11, "bf16": 2.0 ** -8}
#: how many unit roundoffs a reduced-precision product may cost (see "Tolerance" above)
GROWTH = 16
SIZES = dict(T=7, B=4, I=5, H=6, O=4)
LENGTHS = np.array([7, 3, 1, 5])
LR = 0.5


def parity_shape(shape: dict | None = None) -> dict:
    """The parity case's sizes: ``shape`` (T, B, I, H[, O]) or the tiny default :data:`SIZES`."""
    return dict(SIZES) if shape is None else {**SIZES, "O": 10, **shape}


def parity_lengths(shape: dict | None = None, seed: int = 0) -> np.ndarray:
    """Ragged lengths: :data:`LENGTHS` at :data:`SIZES`; else B lengths spread evenly over
    ``T .. 1`` (both ends included where B > 1) in a seeded random order."""
    s = parity_shape(shape)
    if s == SIZES:
        return LENGTHS.copy()
    lengths = np.rint(np.linspace(s["T"], 1, s["B"])).astype(np.int64)
    np.random.default_rng(seed + 3).shuffle(lengths)
    return lengths


def parity_params(dtype: str, seed: int = 0, shape: dict | None = None,
                  cell: str = "elman") -> dict[str, np.ndarray]:
    """The seed's weight matrices scaled to std 0.3 at :data:`SIZES` and by ``1/sqrt(fan-in)``
    beyond it (the same pre-activation spread at every shape; see "Shapes" above); every other
    parameter (biases, a user cell's element-wise weights) random, std 0.3.
    A GRU or LSTM gets the same spread per gate: every gate then works off its linear range."""
    s = parity_shape(shape)
    base = init_params(s["I"], s["H"], s["O"], seed=seed, dtype="float64", cell=cell)
    tiny = param_shapes(SIZES["I"], SIZES["H"], SIZES["O"], cell)
    rng = np.random.default_rng(seed + 1)
    out = {}
    for name, value in base.items():
        if value.ndim == 2:                              # a weight matrix: scaled by fan-in
            out[name] = value * (30.0 * np.sqrt(tiny[name][1] / value.shape[1]))
        else:
            out[name] = rng.normal(0, 0.3, value.shape)
    return {k: v.astype(dtype) for k, v in out.items()}


def parity_data(variant: str, dtype: str, seed: int = 0, shape: dict | None = None):
    """``(x, y, lengths)``; at :data:`SIZES` the padding is zeros, at any other shape random
    values (which a kernel that reads past a sequence's end would turn into an error)."""
    s = parity_shape(shape)
    rng = np.random.default_rng(seed + 2)
    T, B, I, O = s["T"], s["B"], s["I"], s["O"]
    if variant == "single":
        return rng.standard_normal((T, I)).astype(dtype), np.int64(min(2, O - 1)), None
    x = rng.standard_normal((T, B, I)).astype(dtype)
    lengths = parity_lengths(s, seed)
    if s == SIZES:
        for b, n in enumerate(lengths):
            x[n:, b] = 0.0  # padding, as a real batch would carry
    return x, rng.integers(0, O, B).astype(np.int64), lengths


def tolerance(dtype: str, matmul_precision: str = "float32") -> float:
    """The relative bound for ``dtype`` when float32 products run at ``matmul_precision``."""
    if dtype != "float32" or matmul_precision == "float32":
        return TOLERANCE[dtype]
    return GROWTH * UNIT_ROUNDOFF[matmul_precision]


def run_case(engine, variant: str, dtype: str, shape: dict | None = None) -> dict[str, np.ndarray]:
    x, y, lengths = parity_data(variant, dtype, shape=shape)
    out = dict(engine.parity_step(x, y, LR, lengths))
    out.update({f"{k}+": v for k, v in engine.get_params().items()})
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


def worker_job(config, payload):
    """In the worker: run both variants with the profile's engine; return raw arrays.

    ``payload["shape"]`` (optional) is the case's shape; under ``formulation=fused`` the answer's
    ``c_kernels`` says whether both kernels ran as C (:func:`fused_ran_in_c`)."""
    from ..engines import load
    cls = load(config.engine, config)
    dtype, shape = config.floatX, parity_shape(payload.get("shape"))
    params = parity_params(dtype, shape=shape, cell=config.cell)
    out = {"engine": config.engine, "dtype": dtype, "versions": cls.versions(), "cases": {},
           "shape": shape, "cell": config.cell, "cell_sha256": cells.get(config.cell).sha256}
    fused = config.get("formulation", "seed") == "fused"
    performs = fused_perform_calls() if fused else 0
    # Test-only fault injection: proves that a wrong engine fails the check (tests/test_cli.py).
    perturb = float(os.environ.get("RNNPERF_PARITY_PERTURB", "0"))
    fns = []
    for variant in payload.get("variants", VARIANTS):
        engine = cls(config, shape["I"], shape["H"], shape["O"], params)
        values = run_case(engine, variant, dtype, shape)
        if fused:
            fns.append(engine.function("parity", parity_data(variant, dtype, shape=shape)[0]))
        if perturb:
            values["dWhh"] = values["dWhh"] * (1 + perturb)
        out["device_actual"] = engine.device_actual()
        out["cases"][variant] = {k: v.tolist() for k, v in values.items()}
    if fused:
        out.update(fused_report(fns, performs, config.cell))
    return out


def oracle(variant: str, dtype: str, shape: dict | None = None,
           cell: str = "elman") -> dict[str, np.ndarray]:
    """The float64 reference on the engine's own (dtype-rounded) parameters and data; computed
    once per process for each case (every engine's rows compare with the same one; at the RW
    shape one costs a fraction of a second). Read-only: callers share the arrays.

    A cell with a hand-written oracle gets it here; a user's cell without one, the reference
    its check stored (:func:`store_reference`, :mod:`.cell_check`)."""
    key = _oracle_key(variant, dtype, shape, cell)
    if key not in _ORACLES:
        if cells.refusal(cells.get(cell), "numpy"):
            raise KeyError(f"cell={cell}: no reference was computed for {key} "
                           "(rnnperf.bench.cell_check.check_cells computes it)")
        _ORACLES[key] = _oracle(variant, dtype, shape, cell)
    return _ORACLES[key]


def _oracle_key(variant, dtype, shape, cell) -> tuple:
    the_cell = cells.get(cell)
    return (variant, dtype, tuple(sorted(parity_shape(shape).items())), cell, the_cell.sha256)


def store_reference(variant: str, dtype: str, shape: dict | None, cell: str, values: dict):
    """A user cell's reference, computed in its check's worker, as :func:`oracle`'s answer."""
    _ORACLES[_oracle_key(variant, dtype, shape, cell)] = {
        k: np.asarray(v, dtype=np.float64) for k, v in values.items()}


_ORACLES: dict[tuple, dict[str, np.ndarray]] = {}


def _oracle(variant: str, dtype: str, shape: dict | None, cell: str) -> dict[str, np.ndarray]:
    from ..model.oracle import loss_and_grads
    params = {k: v.astype(np.float64)
              for k, v in parity_params(dtype, shape=shape, cell=cell).items()}
    x, y, lengths = parity_data(variant, dtype, shape=shape)
    x = x.astype(np.float64)
    if variant == "single":                          # a single sequence is a batch of one
        x, y, lengths = x[:, None, :], np.asarray(y)[None], np.array([x.shape[0]])
    loss, probs, grads = loss_and_grads(params, x, y, lengths, cell=cell)
    out = {"probs": probs[0] if variant == "single" else probs, "loss": np.asarray(loss)}
    out.update({f"d{k}": v for k, v in grads.items()})
    out.update({f"{k}+": params[k] - LR * grads[k] for k in param_names(cell)})
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


def compare_case(got: dict, ref: dict, dtype: str, matmul_precision: str = "float32",
                 cell: str = "elman") -> list[QuantityError]:
    limit = tolerance(dtype, matmul_precision)
    errors = []
    for quantity in quantities(cell):
        want = np.asarray(ref[quantity], dtype=np.float64)
        have = np.asarray(got.get(quantity, np.full_like(want, np.nan)), dtype=np.float64)
        if have.shape != want.shape:
            errors.append(QuantityError(quantity, float("inf"), float("inf"), limit))
            continue
        diff = np.abs(have - want)
        max_abs = float(np.max(diff)) if diff.size else 0.0
        if not np.all(np.isfinite(have)):
            max_abs = float("nan")
        scale = float(np.max(np.abs(want))) if want.size else 1.0
        max_rel = max_abs / scale if scale > 0 else max_abs
        errors.append(QuantityError(quantity, max_abs, max_rel, limit))
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
    c_kernels: bool | None = None   # formulation=fused: both kernels ran as C (else None)
    cell: str = "elman"

    @property
    def worst(self) -> QuantityError | None:
        if not self.errors:
            return None
        return max(self.errors, key=severity)

    def as_json(self) -> dict:
        return {"engine": self.engine, "cell": self.cell, "formulation": self.formulation,
                "dtype": self.dtype,
                "variant": self.variant, "status": self.status, "error": self.error,
                "device_actual": self.device_actual, "c_kernels": self.c_kernels,
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


def rows_from_worker(config, result, shape: dict | None = None) -> list[ParityRow]:
    """Turn one worker's answer into one row per variant, against the oracle at ``shape``.

    A row fails (status ``failed``) when the worker computed at another shape, or when
    ``formulation=fused`` did not run both kernels as C (``c_kernels``)."""
    from ..engines.registry import get
    has_formulations = get(config.engine).has_formulations
    formulation = config.get("formulation", "seed") if has_formulations else "-"
    if result.status != "ok":
        status = result.status if result.status in ("unavailable", "timeout") else "failed"
        return [ParityRow(config.engine, formulation, config.floatX, v, status, [], result.error,
                          cell=config.cell) for v in VARIANTS]
    shape, data = parity_shape(shape), result.data
    precision = config.get("matmul_precision", "float32")
    c_kernels = data.get("c_kernels") if formulation == "fused" else None
    problem = None
    if data.get("shape", shape) != shape:
        problem = f"the worker computed at {data['shape']}, not at {shape}"
    elif formulation == "fused" and c_kernels is not True:
        problem = ("formulation=fused did not run its C kernels (a fall-back to perform would "
                   f"compare NumPy with NumPy): {data.get('c_kernels_detail', 'not reported')}")
    rows = []
    for variant in VARIANTS:
        got = {k: np.asarray(v, dtype=np.float64) for k, v in data["cases"][variant].items()}
        errors = [] if data.get("shape", shape) != shape else compare_case(
            got, oracle(variant, config.floatX, shape, config.cell), config.floatX, precision,
            config.cell)
        status = "failed" if problem else "ok" if all(e.ok for e in errors) else "mismatch"
        rows.append(ParityRow(config.engine, formulation, config.floatX, variant, status, errors,
                              problem, data.get("device_actual"), c_kernels, config.cell))
    return rows
