"""pytensor-jax's function cache: a miss, then a hit, run what PyTensor's own function runs.

Every test gets an empty cache (``XDG_CACHE_HOME`` in its tmp dir). One helper runs the same
trajectory (three SGD steps, a parity step, the parameters after it) on an engine; the cases
compare those trajectories exactly (both sides run the same XLA program on the same inputs) with
the oracle tests' :func:`oracle_helpers.assert_close` at ``rtol=0``.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from rnnperf import flags
from rnnperf.engines import availability, load
from rnnperf.model.spec import init_params

from oracle_helpers import assert_close

pytestmark = [pytest.mark.filterwarnings("ignore:Skipping Assert"),
              pytest.mark.filterwarnings("ignore:Explicitly requested dtype float64")]
T_, B_, I_, H_, O_ = 5, 3, 4, 6, 3
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def needs_the_cache(monkeypatch, tmp_path):
    ok, reason, _ = availability("pytensor-jax")
    if not ok:
        pytest.skip(reason)
    from rnnperf.engines.function_cache import unavailable_reason
    if unavailable_reason():
        pytest.skip(f"the function cache needs it: {unavailable_reason()}")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def entries(tmp_path):
    folder = tmp_path / "cache" / "rnnperf" / "functions"
    return sorted(folder.glob("*.jaxfn")) if folder.exists() else []


def make(profile="", dtype="float32"):
    config = flags.load(flags=f"engine=pytensor-jax,floatX={dtype},{profile}", use_env=False)
    params = {k: v * 30 for k, v in init_params(I_, H_, O_, seed=1, dtype=dtype).items()}
    return load("pytensor-jax", config)(config, I_, H_, O_, params)


def trajectory(engine):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T_, B_, I_))
    y, lengths = np.array([0, 2, 1]), np.array([5, 2, 3])
    out = {f"loss{i}": np.asarray(engine.train_step(x, y, 0.3, lengths)) for i in range(3)}
    out.update(engine.parity_step(x, y, 0.3, lengths))
    out.update({f"param {k}": v for k, v in engine.get_params().items()})
    run = engine.runner("train", x, y, lengths, 0.1)
    run()
    out["runner loss"] = np.asarray(run())
    return out


@pytest.mark.slow  # compiles cold (the cache is empty), twice: with and without the cache
@pytest.mark.parametrize("formulation", ["hoisted", "seed"])
def test_miss_then_hit_runs_what_pytensor_runs(tmp_path, formulation):
    reference = make(f"formulation={formulation},function_cache=False")
    want = trajectory(reference)
    assert reference.function_cache == "off" and not entries(tmp_path)
    miss = make(f"formulation={formulation}")
    assert_close(trajectory(miss), want, 0, "miss")
    assert miss.function_cache == "miss" and len(entries(tmp_path)) == 2   # train, parity
    hit = make(f"formulation={formulation}")
    assert_close(trajectory(hit), want, 0, "hit")
    assert hit.function_cache == "hit" and hit._compiler is None  # PyTensor never compiled
    assert hit.device_actual() == "cpu"


def test_key_changes_with_shape_floatx_formulation_and_function():
    import jax

    from rnnperf.engines import function_cache as fc
    from rnnperf.model.spec import param_shapes

    def path(profile="", function="train", shape=(T_, B_, I_), dtype="float32"):
        config = flags.load(flags=f"engine=pytensor-jax,floatX={dtype},{profile}",
                            use_env=False)
        inputs = [(shape, dtype), (shape[1:2], "int64"), (shape[1:2], "int64"), ((), dtype)]
        params = {k: (s, dtype) for k, s in param_shapes(I_, H_, O_).items()}
        return fc.entry_path(fc.describe(config, function, inputs, params))

    base = path()
    assert path() == base
    others = [path(shape=(T_ + 1, B_, I_)), path(dtype="float64"),
              path("formulation=seed"), path(function="parity"), path("threads=1"),
              path("optimizer=fast_compile")]
    assert len({base, *others}) == len(others) + 1
    assert path("function_cache=False") == base      # the switch is not part of the program
    assert jax.devices()[0].platform in fc.describe(
        flags.load(flags="engine=pytensor-jax", use_env=False), "train", [], {})["backend"]


@pytest.mark.slow  # compiles cold twice: the entry, then its replacement
@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_a_corrupt_entry_is_compiled_again_and_replaced(tmp_path, capfd, damage):
    want = trajectory(make())
    for entry in entries(tmp_path):
        data = entry.read_bytes()
        entry.write_bytes({"garbage": b"not an entry" * 10, "truncated": data[:len(data) // 2],
                           "empty": b""}[damage])
    again = make()
    assert_close(trajectory(again), want, 0, "again")
    assert again.function_cache == "miss"
    assert "is unusable" in capfd.readouterr().err
    repaired = make()
    assert_close(trajectory(repaired), want, 0, "repaired")
    assert repaired.function_cache == "hit"


def test_the_off_switch_compiles_with_pytensor_and_stores_nothing(tmp_path):
    rc = tmp_path / "rc"
    rc.write_text("[rnnperf]\nfunction_cache = off\n")       # the rnnperf.* section, as an rc
    config = flags.load(flags="engine=pytensor-jax", rc=str(rc), use_env=False)
    assert config["function_cache"] == "False"
    engine = make("function_cache=False")
    trajectory(engine)
    assert engine.function_cache == "off" and engine._shared is not None
    assert not entries(tmp_path)


HIT_PROBE = """
import sys
from rnnperf.bench.step_job import build_runner
from rnnperf import flags
built = build_runner(flags.load(flags="engine=pytensor-jax", use_env=False),
                     {"shape": {"T": 5, "B": 3, "I": 4, "H": 6, "O": 3}, "task": "train"})
print(built.function_cache, "pytensor" in sys.modules, built.import_s >= 0, built.compile_s >= 0)
"""


@pytest.mark.slow  # compiles cold in a fresh process, then imports JAX in another
def test_a_hit_in_a_fresh_process_never_imports_pytensor():
    def probe():
        proc = subprocess.run([sys.executable, "-c", HIT_PROBE], capture_output=True,
                              text=True, cwd=ROOT, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stdout.split()[-4:]
    assert probe() == ["miss", "True", "True", "True"]
    assert probe() == ["hit", "False", "True", "True"]
