"""The fused kernels' production path against the oracle, and proof that their C code ran.

* parity at a reference-sized batch (``--shape``): ragged lengths over ``T .. 1``, random padding,
  full 8-row register blocks split over the profile's threads, the ``-D__FAST_MATH__`` tanh;
* a fall-back to the ops' NumPy ``perform`` is caught (it would compare NumPy with NumPy);
* ``ElmanRecurrenceGrad.make_node`` checks its inputs' dtypes and ranks as the forward op does.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from rnnperf import flags
from rnnperf.bench import fused_check, parity
from rnnperf.bench.process import WorkerResult, run_worker

pytensor = pytest.importorskip("pytensor")

pytestmark = pytest.mark.usefixtures("shared_compile_caches")   # PyTensor's compiledir

RW = dict(T=100, B=32, I=128, H=256, O=10)
# full 8-row blocks on one thread, the edge rows (16..18) on the other; with AVX-512 a 32-float
# panel and 8 columns left over (float32)
SMALL = dict(T=20, B=19, I=8, H=40, O=10)
FUSED32 = "engine=pytensor-c,floatX=float32,formulation=fused"


def rnnperf(*args):
    return subprocess.run([sys.executable, "-m", "rnnperf", *args], capture_output=True,
                          text=True, timeout=900)


def fused_parity(shape, extra=""):
    config = flags.load(flags=[FUSED32 + extra], use_env=False)
    result = run_worker("parity", config, {"shape": shape}, timeout=900)
    assert result.status == "ok", (result.error, result.stderr_tail)
    return result, parity.rows_from_worker(config, result, shape)


def check_production_path(shape):
    result, rows = fused_parity(shape)
    assert [r.status for r in rows] == ["ok", "ok"], [r.as_json() for r in rows]
    assert all(r.c_kernels is True for r in rows)
    data = result.data
    assert data["shape"] == shape and data["c_kernels"] is True, data["c_kernels_detail"]
    assert "-D__FAST_MATH__" in data["cxxflags"] or not parity_fast_math()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    assert data["omp_threads"] >= min(2, cpus)        # the profile's default: every core
    worst = max(e.max_rel for r in rows for e in r.errors)
    assert 0 < worst < parity.TOLERANCE["float32"]
    return rows


def parity_fast_math() -> bool:
    from rnnperf.engines.pytensor_runtime import vector_math_cxxflags
    return bool(vector_math_cxxflags())


def test_small_reference_like_shape_passes_in_c():
    check_production_path(SMALL)


@pytest.mark.slow
def test_reference_workload_passes_in_c():
    check_production_path(RW)


@pytest.mark.slow
def test_cli_shape_at_the_reference_workload(tmp_path):
    path = tmp_path / "parity.json"
    out = rnnperf("parity", "--engines", "pytensor-c", "--formulations", "fused", "--dtypes",
                  "float32", "--shape", "T=100,B=32,I=128,H=256", "--out", str(path),
                  "--no-progress")
    assert out.returncode == 0, out.stdout + out.stderr
    doc = json.loads(path.read_text())
    assert doc["shape"] == RW and "T=100,B=32" in out.stdout
    assert [(r["status"], r["c_kernels"]) for r in doc["rows"]] == [("ok", True)] * 2


def test_cli_fails_when_the_kernels_fall_back_to_perform(tmp_path):
    """``cxx=`` leaves PyTensor no compiler: every op runs its ``perform``."""
    path = tmp_path / "parity.json"
    out = rnnperf("parity", "--flags", FUSED32 + ",cxx=", "--shape", "T=5,B=3,I=4,H=6",
                  "--out", str(path))
    assert out.returncode == 1, out.stdout + out.stderr
    doc = json.loads(path.read_text())
    assert [(r["status"], r["c_kernels"]) for r in doc["rows"]] == [("failed", False)] * 2
    assert "did not run its C kernels" in out.stdout and "perform ran" in out.stdout


# --- the shape's case -----------------------------------------------------------------------------
def test_default_case_is_unchanged():
    p = parity.parity_params("float64")
    x, y, lengths = parity.parity_data("batched", "float64")
    assert parity.parity_shape(None) == parity.SIZES and lengths.tolist() == [7, 3, 1, 5]
    assert all(np.all(x[n:, b] == 0) for b, n in enumerate(lengths))    # zero padding
    from rnnperf.model.spec import init_params
    base = init_params(5, 6, 4, seed=0, dtype="float64")
    for name in ("Wxh", "Whh", "Why"):
        np.testing.assert_array_equal(p[name], base[name] * 30.0)


def test_ragged_lengths_and_random_padding_at_a_shape():
    lengths = parity.parity_lengths(RW)
    assert lengths.tolist() == parity.parity_lengths(RW).tolist()       # seeded
    assert sorted(lengths)[0] == 1 and max(lengths) == 100 and len(set(lengths)) > 25
    x, y, got = parity.parity_data("batched", "float32", shape=RW)
    assert x.shape == (100, 32, 128) and got.tolist() == lengths.tolist() and y.max() < 10
    short = int(np.argmin(lengths))
    assert np.abs(x[1:, short]).min() > 0                              # padding is random
    assert parity.parity_lengths(dict(T=9, B=1, I=2, H=3)).tolist() == [9]
    params = parity.parity_params("float64", shape=RW)
    assert 0.9 < np.std(params["Whh"]) * np.sqrt(256) / (0.3 * np.sqrt(6)) < 1.1  # 1/sqrt(fan-in)


def test_oracle_follows_the_shape():
    ref = parity.oracle("batched", "float32", RW)
    assert ref["probs"].shape == (32, 10) and ref["dWhh"].shape == (256, 256)
    assert parity.oracle("single", "float64")["dWxh"].shape == (6, 5)


def fake_result(c_kernels, shape=None):
    shape = parity.parity_shape(shape)
    cases = {v: {k: val.tolist() for k, val in parity.oracle(v, "float32", shape).items()}
             for v in parity.VARIANTS}
    data = {"cases": cases, "shape": shape, "device_actual": "cpu"}
    if c_kernels is not None:
        data.update(c_kernels=c_kernels, c_kernels_detail="ElmanRecurrence 0 of 1 C")
    return WorkerResult("ok", data, None, None, 1.0, "")


@pytest.mark.parametrize("c_kernels", [False, None])
def test_fused_rows_fail_unless_the_worker_saw_c(c_kernels):
    config = flags.load(flags=[FUSED32], use_env=False)
    rows = parity.rows_from_worker(config, fake_result(c_kernels))
    assert [r.status for r in rows] == ["failed"] * 2
    assert all(e.ok for r in rows for e in r.errors)           # the numbers alone would pass
    assert "did not run its C kernels" in rows[0].error
    ok = parity.rows_from_worker(config, fake_result(True))
    assert [(r.status, r.c_kernels) for r in ok] == [("ok", True)] * 2
    hoisted = flags.load(flags=[FUSED32.replace("fused", "hoisted")], use_env=False)
    assert [r.status for r in parity.rows_from_worker(hoisted, fake_result(None))] == ["ok"] * 2


def test_a_worker_at_another_shape_fails():
    config = flags.load(flags=[FUSED32], use_env=False)
    rows = parity.rows_from_worker(config, fake_result(True), dict(SMALL))
    assert [r.status for r in rows] == ["failed"] * 2 and "not at" in rows[0].error


# --- which thunk ran --------------------------------------------------------------------------
def kernels_fn(linker):
    import pytensor.tensor as pt
    from pytensor.compile.mode import Mode

    from rnnperf.model.fused import ElmanRecurrence, ElmanRecurrenceGrad
    xw, w = pt.tensor3("xw", dtype="float64"), pt.matrix("w", dtype="float64")
    h0, g = pt.matrix("h0", dtype="float64"), pt.matrix("g", dtype="float64")
    last = pt.lvector("last")
    states = ElmanRecurrence()(xw, h0, w)
    da, dh0 = ElmanRecurrenceGrad()(states, w, g, last)
    return pytensor.function([xw, h0, w, g, last], [states, da, dh0],
                             mode=Mode(linker=linker, optimizer="fast_run"))


def run_kernels(fn):
    rng = np.random.default_rng(0)
    T, B, H = 4, 9, 5
    fn(rng.standard_normal((T, B, H)), rng.standard_normal((B, H)),
       rng.standard_normal((H, H)) * 0.3, rng.standard_normal((B, H)),
       rng.integers(0, T, B))


def vm_without_c():
    from pytensor.link.vm import VMLinker
    return VMLinker(c_thunks=False, use_cloop=False)


@pytest.mark.parametrize("linker", ["cvm", "vm_nogc", vm_without_c, "py"],
                         ids=["cvm", "vm", "vm-without-c", "py"])
def test_the_check_tells_c_from_perform(linker):
    linker = linker() if callable(linker) else linker
    in_c = linker in ("cvm", "vm_nogc")
    fn = kernels_fn(linker)
    before = fused_check.fused_perform_calls()
    run_kernels(fn)
    thunks = fused_check.kernel_thunks(fn)
    if linker == "py":              # PerformLinker keeps no per-node thunks: nothing to show
        assert thunks == {}
    else:
        assert thunks == {"ElmanRecurrence": [in_c], "ElmanRecurrenceGrad": [in_c]}
    assert (fused_check.fused_perform_calls() - before) == (0 if in_c else 2)
    ok, detail = fused_check.fused_ran_in_c([fn], before)
    assert ok is in_c, detail
    assert ("perform ran 0 time(s)" in detail) is in_c


def test_a_perform_anywhere_fails_the_check():
    """C thunks in the function, but a perform ran since (another function, a fall-back)."""
    fn = kernels_fn("cvm")
    before = fused_check.fused_perform_calls()
    run_kernels(kernels_fn("py"))
    assert fused_check.fused_ran_in_c([fn], before)[0] is False
    assert fused_check.fused_ran_in_c([fn], fused_check.fused_perform_calls())[0] is True
    assert fused_check.fused_ran_in_c([], fused_check.fused_perform_calls()) == (
        False, "no kernel nodes; perform ran 0 time(s)")


# --- ElmanRecurrenceGrad.make_node --------------------------------------------------------------
def grad_inputs(dtype="float64", ndim=3, **override):
    import pytensor.tensor as pt
    args = dict(states=pt.tensor("s", dtype=dtype, shape=(None,) * ndim),
                whh=pt.matrix("w", dtype=dtype),
                g=pt.tensor("g", dtype=dtype, shape=(None,) * (ndim - 1)),
                last=pt.lvector("last"))
    args.update(override)
    return args


@pytest.mark.parametrize("dtype, ndim", [("float64", 3), ("float32", 3), ("float32", 2)])
def test_grad_make_node_accepts_what_the_forward_accepts(dtype, ndim):
    import pytensor.tensor as pt

    from rnnperf.model.fused import ElmanRecurrenceGrad
    node = ElmanRecurrenceGrad().make_node(**grad_inputs(dtype, ndim))
    assert [o.type.ndim for o in node.outputs] == [ndim, ndim - 1]
    ds = pt.tensor("ds", dtype=dtype, shape=(None,) * ndim)
    node = ElmanRecurrenceGrad(with_dstates=True).make_node(**grad_inputs(dtype, ndim), dstates=ds)
    assert len(node.inputs) == 5 and node.outputs[0].dtype == dtype


def bad_grad_cases():
    import pytensor.tensor as pt
    f32, f64 = dict(dtype="float32"), dict(dtype="float64")   # floatX may be either here
    return {
        "states 4-D": (dict(states=pt.tensor4("s", **f64)), "states 4-D"),
        "states 1-D": (dict(states=pt.vector("s", **f64)), "states 1-D"),
        "whh 3-D": (dict(whh=pt.tensor3("w", **f64)), "Whh 3-D"),
        "g rank": (dict(g=pt.tensor3("g", **f64)), "g 3-D"),
        "last 2-D": (dict(last=pt.lmatrix("last")), "last 2-D"),
        "dstates rank": (dict(dstates=pt.matrix("ds", **f64)), "dstates 2-D"),
        "whh dtype": (dict(whh=pt.matrix("w", **f32)), "Whh float32"),
        "g dtype": (dict(g=pt.matrix("g", **f32)), "g float32"),
        "dstates dtype": (dict(dstates=pt.tensor3("ds", **f32)), "dstates float32"),
        "integer states": (dict(states=pt.ltensor3("s"), whh=pt.lmatrix("w"),
                                g=pt.lmatrix("g")), "states int64"),
        "last float": (dict(last=pt.vector("last", **f64)), "got float64"),
        "last int32": (dict(last=pt.ivector("last")), "got int32"),
    }


BAD_GRAD_CASES = ["states 4-D", "states 1-D", "whh 3-D", "g rank", "last 2-D", "dstates rank",
                  "whh dtype", "g dtype", "dstates dtype", "integer states", "last float",
                  "last int32"]


@pytest.mark.parametrize("case", BAD_GRAD_CASES)
def test_grad_make_node_rejects(case):
    from rnnperf.model.fused import ElmanRecurrenceGrad
    override, message = bad_grad_cases()[case]
    with_dstates = "dstates" in override
    inputs = grad_inputs(**override)                # dstates rides along as a keyword
    with pytest.raises(TypeError, match="ElmanRecurrenceGrad") as info:
        ElmanRecurrenceGrad(with_dstates=with_dstates).make_node(**inputs)
    assert message in str(info.value)


def test_grad_make_node_wants_dstates_exactly_when_told():
    import pytensor.tensor as pt

    from rnnperf.model.fused import ElmanRecurrenceGrad
    with pytest.raises(TypeError, match="dstates missing"):
        ElmanRecurrenceGrad(with_dstates=True).make_node(**grad_inputs())
    with pytest.raises(TypeError, match="dstates given"):
        ElmanRecurrenceGrad().make_node(**grad_inputs(), dstates=pt.tensor3("ds", dtype="float64"))
