"""A user's cell: loaded from a file by ``cell=PATH.py:Name``, checked before anything runs, run
by every Theano-family engine against its own float64 reference, measured with its FLOPs and its
file's hash."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from rnnperf import cells, flags
from rnnperf.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
MGU = f"{ROOT}/examples/cells/mgu.py:MGU"
INDRNN = f"{ROOT}/examples/cells/indrnn.py:IndRNN"
GOOD = """
class Cell:
    states = ("h",)
    def param_shapes(self, n_in, n_hidden):
        return {"W": (n_hidden, n_in), "U": (n_hidden, n_hidden)}
    def step(self, T, x_t, states, p):
        return (T.tanh(T.dot(x_t, p["W"].T) + T.dot(states[0], p["U"].T)),)
"""
#: the built-in GRU's required part alone: its states, parameters and step, nothing optional
GRU_STEP = """
from rnnperf.cells.gru import GRU

class GRUStep:
    states = ("h",)
    def param_shapes(self, n_in, n_hidden):
        return GRU().param_shapes(n_in, n_hidden)
    def step(self, T, x_t, states, params):
        return GRU().step(T, x_t, states, params)
"""


def rnnperf(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "rnnperf", *args], capture_output=True,
                          text=True, timeout=900, cwd=cwd)


def cell_file(tmp_path, text, name="cell.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


# --- loading: every problem one line naming the file, before anything runs ----------------------
@pytest.mark.parametrize("text,ref,message", [
    (None, "nosuch.py:Cell", "no such file"),
    ("class Cell(:\n", "cell.py:Cell", r"cell.py:1: syntax error"),
    ("import nosuchmodule_xyz\n", "cell.py:Cell", "import failed: ModuleNotFoundError"),
    (GOOD, "cell.py:Other", "has no class Other"),
    ("class Cell:\n    states = ('h',)\n    def step(self, T, x, s, p): return s\n",
     "cell.py:Cell", "lacks the required part 'param_shapes'"),
    (GOOD.replace('"U": (n_hidden, n_hidden)', '"Why": (n_hidden, n_hidden)'), "cell.py:Cell",
     "'Why' clashes with the model's softmax head"),
    (GOOD.replace('states = ("h",)', 'states = "h"'), "cell.py:Cell",
     "states must be a non-empty tuple"),
    (GOOD.replace("(n_hidden, n_in)", "(n_hidden, -1)"), "cell.py:Cell",
     "must be a tuple of positive ints"),
])
def test_bad_cell_file_is_one_config_line(tmp_path, text, ref, message):
    if text is not None:
        cell_file(tmp_path, text)
    spec = f"{tmp_path}/{ref}"
    with pytest.raises(ConfigError, match=message) as info:
        flags.load(flags=f"cell={spec}")
    assert "\n" not in str(info.value) and "cell=" in str(info.value)


def test_bad_cell_exits_2_from_the_cli(tmp_path):
    out = rnnperf("bench", "--flags", f"cell={tmp_path}/nosuch.py:Cell", "--out",
                  str(tmp_path / "r.json"))
    assert out.returncode == 2 and "no such file" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_a_cell_is_loaded_by_file_module_and_entry_point(tmp_path, monkeypatch):
    path = cell_file(tmp_path, GOOD, "mycells.py")
    by_file = cells.get(f"{path}:Cell")
    assert by_file.source == path and len(by_file.sha256) == 64
    assert by_file.all_param_names() == ("W", "U", "Why", "by")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert cells.get("mycells:Cell").sha256 == by_file.sha256
    dist = tmp_path / "mycells_pkg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mycells-pkg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[rnnperf.cells]\nmine = mycells:Cell\n")
    assert cells.get("mine").record() == {"name": "mine", "source": path,
                                          "sha256": by_file.sha256}
    with pytest.raises(ConfigError, match="no installed package registers it"):
        cells.get("nosuchcell")


def test_an_edited_file_is_loaded_again(tmp_path):
    path = cell_file(tmp_path, GOOD)
    first = cells.get(f"{path}:Cell")
    Path(path).write_text(textwrap.dedent(GOOD) + "\n# edited\n")
    second = cells.get(f"{path}:Cell")
    assert second is not first and second.sha256 != first.sha256


def test_formulations_and_peers_that_need_parts_refuse_naming_them(tmp_path):
    with pytest.raises(ConfigError, match=r"formulation=hoisted needs the cell's "
                                          r"hoisted_last_state"):
        flags.load(flags=f"cell={MGU},engine=pytensor-jax,formulation=hoisted")
    with pytest.raises(ConfigError, match="engine=torch needs the cell's torch_module"):
        flags.load(flags=f"cell={MGU},engine=torch")
    # unset, an engine's default formulation falls back to the one that runs any step
    config = flags.load(flags=f"cell={MGU},engine=pytensor-c")
    assert config["formulation"] == "seed"
    assert flags.load(flags="cell=gru,engine=pytensor-c")["formulation"] == "fused"


def test_peer_named_explicitly_exits_2_naming_the_part():
    out = rnnperf("parity", "--flags", f"cell={MGU}", "--engines", "jax")
    assert out.returncode == 2 and "engine=jax needs the cell's jax_step" in out.stderr


# --- the graph: step checks, FLOPs, the reference ----------------------------------------------
@pytest.mark.parametrize("step,message", [
    ("return (states[0], states[0])", r"returned 2 state\(s\), its states are h"),
    ("return (T.concatenate([states[0], states[0]], axis=-1),)", "of shape"),
    ("return (T.cast(states[0], 'float64') * 2,)", "as float64, not float32"),
])
def test_bad_step_is_one_config_line(tmp_path, step, message):
    pytest.importorskip("pytensor")
    from rnnperf.model import reference
    path = cell_file(tmp_path, GOOD.replace(
        'return (T.tanh(T.dot(x_t, p["W"].T) + T.dot(states[0], p["U"].T)),)', step))
    cell = cells.get(f"{path}:Cell")
    with pytest.raises(ConfigError, match=message) as info:
        for dtype in ("float64", "float32"):
            reference.check_step(cell, dtype)
    assert "\n" not in str(info.value) and path in str(info.value)


@pytest.mark.parametrize("cell", ["elman", "gru", "lstm"])
@pytest.mark.parametrize("task", ["forward", "train"])
def test_graph_flops_equal_the_builtin_formulas(cell, task):
    pytest.importorskip("pytensor")
    from rnnperf.model import reference
    the_cell = cells.get(cell)
    for shape in [(7, 3, 5, 6, 4), (100, 32, 128, 256, 10)]:
        assert reference.step_graph_flops(the_cell, task, *shape) == the_cell.flops(task, *shape)


def test_graph_flops_of_the_example_cells():
    pytest.importorskip("pytensor")
    from rnnperf.model import reference
    T, B, I, H, O = 10, 4, 5, 6, 3
    head = 2 * B * H * O
    mgu = 4 * B * H * (I + H)               # four products a step: W_f x, U_f h, W_n x, U_n (f h)
    mgu_back = 2 * B * H * I * 2 + 2 * B * H * H * 4  # x's: one gradient each; h's: two each
    assert reference.step_graph_flops(cells.get(MGU), "forward", T, B, I, H, O) == T * mgu + head
    assert reference.step_graph_flops(cells.get(MGU), "train", T, B, I, H, O) == \
        T * (mgu + mgu_back) + 3 * head
    ind = 2 * B * I * H                     # only the input's product; u * h is element-wise
    assert reference.step_graph_flops(cells.get(INDRNN), "train", T, B, I, H, O) == \
        T * 2 * ind + 3 * head


@pytest.mark.parametrize("cell", ["elman", "gru", "lstm"])
@pytest.mark.slow
def test_reference_agrees_with_the_handwritten_oracle(cell):
    pytest.importorskip("pytensor")
    from rnnperf.bench import parity
    from rnnperf.model import reference
    params = {k: v.astype(np.float64) for k, v in parity.parity_params("float32",
                                                                        cell=cell).items()}
    for variant in parity.VARIANTS:
        x, y, lengths = parity.parity_data(variant, "float32")
        got = reference.reference_case(cells.get(cell), params, x, y, lengths, parity.LR)
        want = parity.oracle(variant, "float32", cell=cell)
        for quantity, value in want.items():
            scale = max(float(np.max(np.abs(value))), 1e-300)
            assert np.max(np.abs(got[quantity] - value)) / scale < 1e-10, (variant, quantity)


@pytest.mark.slow
def test_gru_step_as_a_user_cell_gives_the_builtin_seed_numbers(tmp_path):
    """The built-in GRU's required part alone, loaded as a user's cell, on pytensor-jax's seed
    formulation in float64: the built-in's numbers to 1e-12."""
    pytest.importorskip("jax")
    from rnnperf import RNN, init_params
    from rnnperf.bench import parity
    path = cell_file(tmp_path, GRU_STEP)
    params = init_params(5, 6, 4, seed=3, dtype="float64", cell="gru")
    params = {k: v + np.random.default_rng(1).normal(0, 0.3, v.shape) for k, v in params.items()}
    x, y, lengths = parity.parity_data("batched", "float64")
    out = {}
    for cell in ("gru", f"{path}:GRUStep"):
        net = RNN(5, 6, 4, flags=f"engine=pytensor-jax,formulation=seed,floatX=float64,"
                  f"cell={cell}")
        net.engine.set_params(params)
        out[cell] = net.engine.parity_step(x, y, 0.5, lengths)
    builtin, user = out.values()
    for quantity, value in builtin.items():
        np.testing.assert_allclose(user[quantity], value, rtol=0, atol=1e-12)


@pytest.mark.slow
def test_finite_differences_catch_a_wrong_gradient(tmp_path):
    """A step whose gradient is wrong (forward the identity, gradient doubled) fails the check
    that gates parity, and the examples pass it."""
    pytest.importorskip("pytensor")
    from rnnperf.bench.cell_check import CellReport, fd_failures
    from rnnperf.errors import CheckFailed
    from rnnperf.model import reference
    path = cell_file(tmp_path, GOOD.replace(
        "return (T.tanh(", "from pytensor.gradient import grad_scale\n"
        "        return (grad_scale(T.tanh(").replace("].T)),)", "].T)), 2.0),)"))
    error = reference.finite_difference_error(cells.get(f"{path}:Cell"))
    assert error > 0.1
    with pytest.raises(CheckFailed, match="disagree with finite differences"):
        fd_failures({"c": CellReport("c", error)})
    for good in (MGU, INDRNN, "lstm"):
        assert reference.finite_difference_error(cells.get(good)) < 1e-6


# --- the commands --------------------------------------------------------------------------------
@pytest.mark.usefixtures("shared_compile_caches")
@pytest.mark.slow
def test_parity_of_a_user_cell_on_jax(tmp_path):
    out = rnnperf("parity", "--flags", f"cell={INDRNN},engine=pytensor-jax", "--out",
                  str(tmp_path / "p.json"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "finite differences: max relative error" in out.stdout
    doc = json.loads((tmp_path / "p.json").read_text())
    record = doc["cells"][INDRNN]
    assert record["sha256"] == cells.get(INDRNN).sha256 and record["source"].endswith("indrnn.py")
    assert {r["status"] for r in doc["rows"]} == {"ok"} and len(doc["rows"]) == 2


@pytest.mark.usefixtures("shared_compile_caches")
@pytest.mark.slow
def test_bench_records_the_cell_its_hash_and_its_graph_flops(tmp_path):
    out = rnnperf("bench", "--flags", f"cell={MGU}", "--engines", "pytensor-jax", "--shape",
                  "T=10,B=4,I=5,H=6,O=3", "--task", "train", "--min-time", "0.01",
                  "--out", str(tmp_path / "r.json"), "--no-progress")
    assert out.returncode == 0, out.stdout + out.stderr
    (m,) = json.loads((tmp_path / "r.json").read_text())["results"]
    assert m["status"] == "ok" and m["cell"]["sha256"] == cells.get(MGU).sha256
    T, B, I, H, O = 10, 4, 5, 6, 3
    assert m["flops_per_step"] == T * (4 * B * H * (I + H) + 4 * B * H * I + 8 * B * H * H) \
        + 6 * B * H * O


@pytest.mark.usefixtures("shared_compile_caches")
@pytest.mark.slow
def test_tune_accepts_a_space_over_a_user_cell(tmp_path):
    space = tmp_path / "space.toml"
    space.write_text('[space]\nengine = ["pytensor-jax"]\nfloatX = ["float32"]\n'
                     'threads = [1]\nformulation = ["seed", "hoisted"]\n')
    out = rnnperf("tune", "--flags", f"cell={INDRNN}", "--space", str(space), "--shape",
                  "T=10,B=4,I=5,H=6", "--strategy", "exhaustive", "--min-time", "0.01",
                  "--out", str(tmp_path / "best.theanorc"), "--no-progress")
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"cell = {INDRNN}" in (tmp_path / "best.theanorc").read_text()


@pytest.mark.usefixtures("shared_compile_caches")
@pytest.mark.slow
def test_train_a_user_cell(tmp_path):
    out = rnnperf("train", "--data", "synthetic", "--flags", f"cell={MGU},engine=pytensor-jax",
                  "--epochs", "3", "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["cell"] == MGU and summary["losses"][-1] < summary["losses"][0]
