"""GRU and LSTM in the shared seed graph, on every Theano-family engine, against the float64 oracle.

One helper, many small cases (PyTensor's ``compare_jax_and_py`` style): each case takes one engine
per (engine, cell, formulation, function cache), held for the module so compiled functions are
reused, runs one ``parity_step`` (probabilities, loss, every gradient, then one SGD step) on one
variant and holds it, and the parameters it leaves, to :func:`rnnperf.model.oracle.loss_and_grads`.
The weights are the tutorial's times 60 and the biases random, so that the gates are spread over
their range rather than all near 0.5 (:func:`test_gates_are_not_trivial` checks it). Compiling is
what costs here (Numba's and torch.compile's cold compiles most): the core suite runs the C
backend and JAX's hoisted graphs; the rest are ``slow``.
"""

import numpy as np
import pytest

from rnnperf import flags
from rnnperf.engines import availability, load
from rnnperf.model import oracle
from rnnperf.model.spec import init_params

from oracle_helpers import RTOL, assert_close

# PyTensor's JAX conversion warnings, silenced in workers by quiet_jax_conversion_warnings()
pytestmark = [pytest.mark.filterwarnings("ignore:Skipping Assert"),
              pytest.mark.filterwarnings("ignore:Explicitly requested dtype float64"),
              pytest.mark.usefixtures("shared_compile_caches")]

T_, B_, I_, H_, O_ = 4, 3, 3, 5, 3
LR = 0.3
CELLS = ("gru", "lstm")
_ENGINES: dict = {}


def params(cell: str) -> dict[str, np.ndarray]:
    """Weights of ~0.6 and biases of ~0.5: every gate away from 0.5, every gradient sizeable."""
    rng = np.random.default_rng(7)
    out = {}
    for k, v in init_params(I_, H_, O_, seed=1, dtype="float64", cell=cell).items():
        out[k] = rng.standard_normal(v.shape) * 0.5 if k.startswith("b") else v * 60
    return out


def data():
    """A padded batch of three: lengths 4, 2, 3, the padding random (it must not leak in)."""
    rng = np.random.default_rng(0)
    return rng.standard_normal((T_, B_, I_)), np.array([0, 2, 1]), np.array([4, 2, 3])


def engine_for(name: str, cell: str, formulation: str, more: str = ""):
    """One engine per configuration for the whole module, reset to :func:`params`."""
    ok, reason, _ = availability(name)
    if not ok:
        pytest.skip(reason)
    key = (name, cell, formulation, more)
    if key not in _ENGINES:
        config = flags.load(flags=f"engine={name},floatX=float64,formulation={formulation},"
                                  f"cell={cell}{more}", use_env=False)
        _ENGINES[key] = load(name, config)(config, I_, H_, O_, params(cell))
    engine = _ENGINES[key]
    if "jax" in name:   # jax_enable_x64 is process-wide; re-assert this profile's
        from rnnperf.engines.jax_runtime import configure_jax
        configure_jax(engine.config)
    engine.set_params(params(cell))
    return engine


def expected(cell: str, batched: bool) -> dict:
    """The oracle's probabilities, loss, gradients and SGD update on the variant's data."""
    x, y, lengths = data()
    if not batched:   # the first sequence, whole, as a batch of one
        x, y, lengths = x[:, :1], y[:1], np.array([T_])
    p = params(cell)
    loss, probs, grads = oracle.loss_and_grads(p, x, y, lengths, cell=cell)
    out = {"probs": probs if batched else probs[0], "loss": loss}
    out.update({f"d{k}": v for k, v in grads.items()})
    out.update({f"{k}+": p[k] - LR * grads[k] for k in p})
    return out


def check_against_oracle(engine, batched: bool) -> None:
    x, y, lengths = data()
    args = (x, y, lengths) if batched else (x[:, 0], y[0], None)
    got = engine.parity_step(args[0], args[1], LR, args[2])
    got.update({f"{k}+": v for k, v in engine.get_params().items()})
    assert_close(got, expected(engine.cell, batched), RTOL["float64"],
                 f"{engine.name} {engine.cell} {engine.config['formulation']} "
                 f"{'batched' if batched else 'single'}:")


#: the core suite's cases: pytensor-c's default (fused) and JAX's scans, whose compiles are
#: seconds (the C backend's scans cost most cold: a C module per scan)
CORE = {("pytensor-c", "fused", "lstm", True), ("pytensor-c", "fused", "gru", True),
        ("pytensor-jax", "seed", "lstm", True), ("pytensor-jax", "seed", "gru", False),
        ("pytensor-jax", "hoisted", "lstm", True), ("pytensor-jax", "hoisted", "gru", True),
        ("pytensor-jax", "hoisted", "lstm", False)}


#: the slow cases where a compile is long and the matrix adds little: pytensor-c's scans (a C
#: module per scan, cold) and Numba's (cold compiles of a minute) run each formulation once per
#: cell, not once per variant; ``rnnperf parity --engines all --cells all`` is the full matrix
SPARSE = {"pytensor-c": {("seed", "gru", True), ("seed", "lstm", False),
                         ("hoisted", "lstm", True), ("hoisted", "gru", False)},
          "pytensor-numba": {("seed", "gru", True), ("hoisted", "lstm", True),
                             ("hoisted", "gru", False)}}


EARLY = ("pytensor-c", "pytensor-numba")


def _cases():
    matrix = (pytest.mark.slow, pytest.mark.matrix)
    early = pytest.mark.slow    # a cold C or Numba compile: started first under xdist
    engines = [("pytensor-c", ("seed", "hoisted", "fused"), ""),
               ("pytensor-jax", ("seed", "hoisted"), ""),
               ("pytensor-jax", ("hoisted",), ",function_cache=False"),
               ("pytensor-numba", ("seed", "hoisted"), ""),
               ("pytensor-pytorch", ("seed", "hoisted"), "")]
    for name, formulations, more in engines:
        for formulation in formulations:
            for cell in CELLS:
                for batched in (True, False):
                    core = (name, formulation, cell, batched) in CORE and not more
                    if not core and (formulation, cell, batched) not in SPARSE.get(
                            name, {(formulation, cell, batched)}):
                        continue
                    tag = name.split("-")[1] + ("-nocache" if more else "")
                    yield pytest.param(name, formulation, cell, batched, more,
                                       id=f"{tag}-{formulation}-{cell}-"
                                          f"{'batched' if batched else 'single'}",
                                       marks=(early if name in EARLY else ()) if core
                                       else matrix)


@pytest.mark.parametrize("name,formulation,cell,batched,more", list(_cases()))
def test_matches_oracle(name, formulation, cell, batched, more):
    check_against_oracle(engine_for(name, cell, formulation, more), batched)


@pytest.mark.parametrize("cell", CELLS)
def test_gates_are_not_trivial(cell):
    """The cases above test something: the gates spread over their range at these weights."""
    x, _, lengths = data()
    _, _, cache = oracle.forward_states(params(cell), x, lengths, cell)
    sigmoids = cache["gates"][..., :2 * H_]        # i, f (LSTM) or r, z (GRU)
    assert sigmoids.min() < 0.2 and sigmoids.max() > 0.8, (sigmoids.min(), sigmoids.max())


def _scans(engine):
    """The Scan ops of the parity function's graph before any rewrite (nothing compiled),
    those inside OpFromGraphs (the hoisted recurrence and its pullback) included."""
    from pytensor.compile.builders import OpFromGraph
    from pytensor.graph.traversal import ancestors
    from pytensor.scan.op import Scan
    graph = engine._graph(data()[0])
    found, todo = [], [graph.probs, graph.loss, *graph.grads.values()]
    while todo:
        ops = [v.owner.op for v in ancestors(todo) if v.owner is not None]
        found += [op for op in ops if isinstance(op, Scan)]
        todo = [v for op in ops if isinstance(op, OpFromGraph) for v in op.fgraph.outputs]
    return found


@pytest.mark.parametrize("cell", CELLS)
def test_hoisted_pullback_is_ours(cell):
    """The hoisted graph's gradient is our pullback's scan, which accumulates no weight gradient:
    no scan holds MIT-MOT state (what ``grad`` of a scan makes), while the seed's autodiff does."""
    hoisted = _scans(engine_for("pytensor-c", cell, "hoisted"))
    assert len(set(hoisted)) == 2, hoisted             # the forward loop and the pullback's
    assert all(op.info.n_mit_mot == 0 for op in hoisted)
    seed = _scans(engine_for("pytensor-c", cell, "seed"))
    assert any(op.info.n_mit_mot > 0 for op in seed)


@pytest.mark.parametrize("cell", CELLS)
def test_fused_runs_its_c_kernels(cell):
    """The fused graph holds the cell's C ops and no scan, and their C code ran (PyTensor falls
    back to an op's ``perform`` silently)."""
    fused_cells = pytest.importorskip("rnnperf.model.fused_cells")
    engine = engine_for("pytensor-c", cell, "fused")
    ops = [getattr(fused_cells, f"{cell.upper()}Recurrence{s}") for s in ("", "Grad")]
    before = [op.perform_calls for op in ops]
    check_against_oracle(engine, True)
    fn = engine.function("parity", data()[0])
    names = {type(n.op).__name__ for n in fn.maker.fgraph.apply_nodes}
    assert {op.__name__ for op in ops} <= names and "Scan" not in names, names
    assert [op.perform_calls for op in ops] == before


def test_fused_without_kernels_is_one_line_config_error(monkeypatch):
    """Where the kernels are missing, formulation=fused says so in one line."""
    pytest.importorskip("pytensor")
    import sys

    import rnnperf.model
    from rnnperf.errors import ConfigError
    from rnnperf.model import hoisted_cells
    from rnnperf import cells
    monkeypatch.delattr(rnnperf.model, "fused_cells", raising=False)
    monkeypatch.setitem(sys.modules, "rnnperf.model.fused_cells", None)   # an import fails
    with pytest.raises(ConfigError, match=r"^formulation=fused: no fused gru kernels[^\n]*$"):
        hoisted_cells.loops(None, cells.get("gru"), H_, fused=True)


def test_rnn_lstm_trains():
    """The in-process API on pytensor-c's default formulation: the loss falls."""
    import rnnperf
    if not availability("pytensor-c")[0]:
        pytest.skip("pytensor is not installed")
    net = rnnperf.RNN(4, 8, 3, flags="engine=pytensor-c,cell=lstm", use_env=False)
    assert set(net.params) == set(rnnperf.param_names("lstm"))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 5, 4)).astype("float32")
    y, lengths = np.array([0, 1, 2, 0, 1]), np.array([6, 3, 5, 2, 6])
    losses = [net.train_step(x, y, 1.0, lengths) for _ in range(30)]
    assert losses[-1] < 0.8 * losses[0], losses


def test_function_cache_key_has_the_cell():
    """pytensor-jax's exported functions are keyed by the cell (and a GRU's bhn)."""
    pytest.importorskip("jax", reason="pytensor-jax needs jax (scripts/bootstrap.sh)")
    from rnnperf.engines import function_cache
    keys = {}
    for cell in ("elman",) + CELLS:
        config = flags.load(flags=f"engine=pytensor-jax,cell={cell}", use_env=False)
        shapes = {k: (v.shape, "float32") for k, v in init_params(3, 5, 3, cell=cell).items()}
        keys[cell] = function_cache.describe(config, "train", [((4, 3), "float32")], shapes)
    assert len({function_cache.entry_path(k) for k in keys.values()}) == 3
    assert "bhn" in keys["gru"]["params"] and "bhn" not in keys["lstm"]["params"]
    assert {"model/recurrence.py", "model/hoisted_cells.py", "cells/gru.py", "cells/lstm.py"} <= set(function_cache.SOURCES)


@pytest.mark.slow
@pytest.mark.parametrize("cell", CELLS)
def test_jax_hoisted_batch_of_one(cell):
    """JAX compiles static shapes: a batch of one is broadcastable, and the pullback's loop
    states must keep that type (Elman's once failed here)."""
    engine = engine_for("pytensor-jax", cell, "hoisted")
    x, y, lengths = data()
    got = engine.gradients(x[:, 1:2], y[1:2], lengths[1:2])
    _, _, want = oracle.loss_and_grads(params(cell), x[:, 1:2], y[1:2], lengths[1:2], cell=cell)
    assert_close(got, want, RTOL["float64"], f"{cell} batch of one:")
