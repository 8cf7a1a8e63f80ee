"""``pytensor-jax``, ``pytensor-numba`` and ``pytensor-c`` (fused) against the float64 NumPy oracle.

One helper, many small cases (PyTensor's own ``compare_jax_and_py`` style): each case builds or
reuses one engine per (engine, floatX, formulation) and hands it to
:func:`oracle_helpers.compare_with_oracle`, which resets its parameters, runs one check on one
variant and compares it with a fresh oracle. Numba's cold compile costs 20-40 s per function on
a small box, so the core suite compiles only the batched gradient and train functions in float64;
every other Numba case is ``slow``.
"""

import pytest

from rnnperf import flags
from rnnperf.engines import availability

from oracle_helpers import CHECKS, RTOL, compare_with_oracle, data, make, params, run_cuda_probe

# PyTensor's JAX conversion warnings, silenced in workers by quiet_jax_conversion_warnings()
pytestmark = [pytest.mark.filterwarnings("ignore:Skipping Assert"),
              pytest.mark.filterwarnings("ignore:Explicitly requested dtype float64"),
              pytest.mark.usefixtures("shared_compile_caches")]

_ENGINES: dict = {}


def engine_for(name, dtype, formulation="seed", more=""):
    """One engine per configuration for the whole module: compiled functions are reused."""
    ok, reason, _ = availability(name)
    if not ok:
        pytest.skip(reason)
    key = (name, dtype, formulation, more)
    if key not in _ENGINES:
        _ENGINES[key] = make(name, dtype, formulation, more=more)
    engine = _ENGINES[key]
    if name == "pytensor-jax":
        # jax_enable_x64 is process-wide (workers run one profile each); re-assert this one's
        from rnnperf.engines.jax_runtime import configure_jax
        configure_jax(engine.config)
    engine.set_params(params())
    return engine


def _cases():
    slow = (pytest.mark.slow, pytest.mark.matrix)  # `rnnperf parity --engines all` runs them all
    for dtype in ("float64", "float32"):
        for batched in (True, False):
            for check in CHECKS:
                variant = "batched" if batched else "single"
                yield pytest.param("pytensor-jax", dtype, "seed", batched, check,
                                   id=f"jax-{dtype}-{variant}-{check}")
                core = dtype == "float64" and batched and check in ("gradients", "train_step")
                # Numba compiles a scan's gradient cold in minutes (195 s here): its core point
                # is the forward graph; its gradients are the matrix's (rnnperf parity runs them)
                numba_core = dtype == "float64" and batched and check in ("forward", "loss")
                # the default formulation: its pullback reads each sequence's final state at
                # its length, and data() pads with random values that must not leak in
                yield pytest.param("pytensor-jax", dtype, "hoisted", batched, check,
                                   id=f"jax-hoisted-{dtype}-{variant}-{check}",
                                   marks=() if core else slow)
                yield pytest.param("pytensor-numba", dtype, "seed", batched, check,
                                   id=f"numba-{dtype}-{variant}-{check}",
                                   marks=pytest.mark.slow if numba_core else slow)
                # pytensor-c's default: the hoisted graph with C-kernel loops
                yield pytest.param("pytensor-c", dtype, "fused", batched, check,
                                   id=f"c-fused-{dtype}-{variant}-{check}",
                                   marks=pytest.mark.slow if core or check == "train_step"
                                   else slow)


@pytest.mark.parametrize("name,dtype,formulation,batched,check", list(_cases()))
def test_matches_oracle(name, dtype, formulation, batched, check):
    engine = engine_for(name, dtype, formulation)
    compare_with_oracle(engine, check, batched, RTOL[dtype], params=params(), data=data())


def test_jax_hoisted_batch_of_one():
    """JAX compiles static shapes: a batch of one is broadcastable, and the hoisted pullback's
    loop states must keep that type (the Small benchmark shape, B=1, once failed here)."""
    engine = engine_for("pytensor-jax", "float64", "hoisted")
    x, y, lengths = data()
    one = (x[:, 1:2], y[1:2], lengths[1:2])
    for check in ("gradients", "train_step"):
        compare_with_oracle(engine, check, True, RTOL["float64"], params=params(), data=one,
                            steps=1)


# --- JAX specifics: updates persist on the device, reads are real, sync blocks ---------------


def device_params(engine) -> dict:
    """The parameters' device arrays: the engine's own with the function cache (exported
    functions), PyTensor's shared variables' storage without it."""
    if engine.function_cache in ("hit", "miss"):
        return dict(engine._params)
    return {k: v.get_value(borrow=True) for k, v in engine._shared.items()}


@pytest.mark.parametrize("cache", ["True", "False"])
def test_jax_shared_updates_persist_as_device_arrays(cache):
    jax = pytest.importorskip("jax", reason="pytensor-jax needs jax (scripts/bootstrap.sh)")
    engine = engine_for("pytensor-jax", "float64", more=f"function_cache={cache}")
    x, y, lengths = data()
    assert engine.device_actual() == "cpu"
    first = engine.train_step(x, y, 0.5, lengths)
    value = device_params(engine)["Whh"]
    assert isinstance(value, jax.Array), type(value)
    assert engine.device_actual() == "cpu"
    assert engine.train_step(x, y, 0.5, lengths) < first  # the second step saw the first's update


@pytest.mark.parametrize("cache", ["True", "False"])
def test_jax_runner_blocks_until_ready(cache):
    jax = pytest.importorskip("jax", reason="pytensor-jax needs jax (scripts/bootstrap.sh)")
    engine = engine_for("pytensor-jax", "float64", more=f"function_cache={cache}")
    x, y, lengths = data()
    run = engine.runner("train", x, y, lengths, lr=0.1)
    out = run()
    leaves = [o for o in jax.tree_util.tree_leaves(out) if isinstance(o, jax.Array)]
    assert all(o.is_ready() for o in leaves)
    assert all(v.is_ready() for v in device_params(engine).values())


def test_jax_cuda_without_gpu_is_unavailable():
    if not availability("pytensor-jax")[0]:
        pytest.skip("jax not installed")
    line = run_cuda_probe("pytensor-jax")
    assert line.startswith("UNAVAILABLE") and "not falling back" in line, line


def test_numba_refuses_cuda():
    from rnnperf.errors import Unavailable
    if not availability("pytensor-numba")[0]:
        pytest.skip("numba not installed")
    with pytest.raises(Unavailable, match="not falling back"):
        make("pytensor-numba", device="cuda")


# --- the C backend's defaults: a real BLAS and vectorised math, unless the profile says ------


def test_c_defaults_link_blas_and_vector_math_unless_the_profile_sets_them(monkeypatch):
    from rnnperf.engines import pytensor_runtime as pe
    monkeypatch.setattr(pe, "openblas_ldflags", lambda: "-lopenblas")
    monkeypatch.setattr(pe.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(pe.platform, "libc_ver", lambda: ("glibc", "2.36"))
    c = pe.pytensor_flags(flags.load("engine=pytensor-c", use_env=False))
    assert c["blas__ldflags"] == "-lopenblas"
    assert c["gcc__cxxflags"] == "-D__FAST_MATH__"
    assert c["allow_gc"] == "False"
    mine = pe.pytensor_flags(flags.load("engine=pytensor-c,gcc.cxxflags=-O2,blas.ldflags=-lblas",
                                        use_env=False))
    assert (mine["gcc__cxxflags"], mine["blas__ldflags"]) == ("-O2", "-lblas")
    assert pe.pytensor_flags(flags.load("engine=pytensor-c,allow_gc=True",
                                        use_env=False))["allow_gc"] == "True"
    jax = pe.pytensor_flags(flags.load("engine=pytensor-jax", use_env=False))
    assert "gcc__cxxflags" not in jax and "blas__ldflags" not in jax and "allow_gc" not in jax
    monkeypatch.setattr(pe.platform, "machine", lambda: "aarch64")
    assert pe.vector_math_cxxflags() == ""


def test_c_fused_lets_idle_threads_sleep_and_the_scan_formulations_do_not():
    from rnnperf.engines import pytensor_runtime as pe
    fused = pe.c_thread_env(flags.load("engine=pytensor-c", use_env=False))
    assert fused == {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "4"}
    for form in ("hoisted", "seed"):
        assert pe.c_thread_env(flags.load(f"engine=pytensor-c,formulation={form}",
                                          use_env=False)) == {}
