"""``bench --grid`` (a Cartesian grid of shapes), ``plot --x`` (cost curves with their log-log
slopes) and ``step_peak_mb`` (the step's own peak memory). Sweeps use engine=numpy at tiny
shapes and are ``slow``; parsing, plotting and the schema are not."""

from __future__ import annotations

import json
import math

import pytest

from rnnperf import cli
from rnnperf.bench import cost_curves, grid
from rnnperf.bench import results as res
from rnnperf.bench.plan import REFERENCE_SHAPE
from rnnperf.bench.step_job import step_memory_mb
from rnnperf.bench.table import COLUMNS, result_rows
from rnnperf.cli.args import plan_from_args
from rnnperf.errors import ConfigError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
QUICK = ["--min-time", "0.01", "--rounds", "5", "--no-progress"]


def shapes_of(argv):
    return [j.shape for j in plan_from_args(cli.build_parser().parse_args(["bench", *argv]))]


# --- parsing ---------------------------------------------------------------------------------

def test_a_grid_is_the_cartesian_product_over_the_reference_workload():
    shapes = grid.grid_shapes(grid.parse_grid("T=10,100 b=1,32"), dict(REFERENCE_SHAPE))
    assert [(s["T"], s["B"]) for s in shapes] == [(10, 1), (10, 32), (100, 1), (100, 32)]
    assert all(s["I"] == 128 and s["H"] == 256 and s["O"] == 10 for s in shapes)


def test_keys_left_out_come_from_the_one_shape_else_the_reference():
    shapes = shapes_of(["--engines", "numpy", "--task", "forward", "--grid", "T=5,7",
                        "--shape", "T=1,B=2,I=3,H=4"])
    assert shapes == [{"T": 5, "B": 2, "I": 3, "H": 4, "O": 10},
                      {"T": 7, "B": 2, "I": 3, "H": 4, "O": 10}]
    shapes = shapes_of(["--engines", "numpy", "--task", "forward", "--grid", "H=64,256,1024"])
    assert [s["H"] for s in shapes] == [64, 256, 1024]
    assert all(s["T"] == 100 and s["B"] == 32 for s in shapes)


def test_repeated_values_are_measured_once():
    assert grid.parse_grid("T=10,10,20") == {"T": [10, 20]}


@pytest.mark.parametrize("text, bad", [
    ("T=10 Q=1", "'Q=1'"), ("T=", "T has no value"), ("T=,", "T has no value"),
    ("T=0,10", "T='0'"), ("B=1.5", "B='1.5'"), ("H=x", "H='x'"), ("T=-3", "T='-3'"),
    ("T=1 t=2", "T is given twice"), ("T=1 B", "'B'")])
def test_a_bad_grid_is_one_line(text, bad):
    with pytest.raises(ConfigError, match=bad) as info:
        grid.parse_grid(text)
    assert "\n" not in str(info.value)


def test_a_toml_grid(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text("[grid]\nT = [10, 100]\nh = 64\n")
    assert grid.parse_grid(str(path)) == {"T": [10, 100], "H": [64]}


@pytest.mark.parametrize("text, bad", [
    ("[grid]\nT = [10, 100", "unparsable TOML"), ("[space]\nT = [1]\n", "'space'"),
    ("[grid]\nT = []\n", "empty list"), ("[grid]\nT = [1.5]\n", "positive integers"),
    ("[grid]\nT = [true]\n", "positive integers"), ("[grid]\nT = [0]\n", "positive integers"),
    ("[grid]\nQ = [1]\n", "unknown key"), ("[grid]\nT = [1]\nt = [2]\n", "given twice"),
    ("[grid]\n", "no \\[grid\\] table")])
def test_a_bad_toml_grid_is_one_line(tmp_path, text, bad):
    path = tmp_path / "g.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=bad) as info:
        grid.parse_grid(str(path))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("argv, bad", [
    (["--grid", "T=1,2", "--shape", "T=1,B=1,I=1,H=1", "--shape", "T=2,B=1,I=1,H=1"],
     "several --shape"),
    (["--grid", "T=1,2 Z=3"], "'Z=3'"), (["--grid", "missing.toml"], "cannot read grid file")])
def test_bench_refuses_a_bad_grid_with_exit_2(tmp_path, capsys, argv, bad):
    out = tmp_path / "r.json"
    assert cli.main(["bench", "--engines", "numpy", "--out", str(out), *argv, *QUICK]) == 2
    err = capsys.readouterr().err.strip()
    assert bad in err and len(err.splitlines()) == 1
    assert not out.exists()


# --- a grid sweep and the step's memory --------------------------------------------------------

@pytest.mark.slow  # four numpy workers
def test_bench_grid_measures_every_shape_into_one_document(tmp_path):
    out = tmp_path / "r.json"
    code = cli.main(["bench", "--engines", "numpy", "--task", "forward", "--out", str(out),
                     "--grid", "T=3,5 B=1,2", "--shape", "T=1,B=1,I=3,H=4", *QUICK])
    assert code == 0
    doc = res.load(out)
    assert [(m.shape["T"], m.shape["B"]) for m in doc.results] == [(3, 1), (3, 2), (5, 1),
                                                                    (5, 2)]
    assert all(m.shape["I"] == 3 and m.shape["H"] == 4 and m.ok for m in doc.results)
    assert len({m.key for m in doc.results}) == 4
    assert all(m.key == res.make_key(m.profile, m.shape, "forward") for m in doc.results)


@pytest.mark.slow  # two numpy workers, one at T=2000
def test_step_peak_memory_grows_with_t(tmp_path):
    out = tmp_path / "r.json"
    code = cli.main(["bench", "--engines", "numpy", "--task", "forward", "--out", str(out),
                     "--grid", "T=50,2000", "--shape", "T=1,B=32,I=4,H=256", *QUICK])
    assert code == 0
    small, large = res.load(out).results
    assert small.shape["T"] == 50 and large.shape["T"] == 2000
    assert small.step_peak_mb is not None and small.step_peak_mb > 0
    assert large.step_peak_mb > small.step_peak_mb      # the states it keeps grow with T
    assert large.rss_mb >= large.step_peak_mb


def test_step_memory_is_the_rise_over_the_baseline_or_nothing():
    assert step_memory_mb(1024, 3072) == 2.0
    assert step_memory_mb(4096, 2048) == 0.0            # never negative
    assert step_memory_mb(None, 2048) is None and step_memory_mb(1024, None) is None


def test_step_memory_is_an_optional_field_of_version_3(tmp_path):
    m = res.Measurement(key="k", profile="engine=numpy", engine="numpy", task="forward",
                        shape=dict(REFERENCE_SHAPE), times_s=[0.1] * 5, step_peak_mb=12.5)
    doc = res.ResultsDoc(results=[m])
    res.save(doc, tmp_path / "new.json")
    assert res.load(tmp_path / "new.json").results[0].step_peak_mb == 12.5
    data = json.loads((tmp_path / "new.json").read_text())
    del data["results"][0]["step_peak_mb"]                # a /3 document written before it
    (tmp_path / "old.json").write_text(json.dumps(data))
    assert res.load(tmp_path / "old.json").results[0].step_peak_mb is None
    items = res.json_schema("rnnperf.results/2")["properties"]["results"]["items"]
    assert "step_peak_mb" not in items["properties"]
    row = result_rows([m])[0]
    assert row[COLUMNS.index("step MB")] == "12.5"


# --- cost curves --------------------------------------------------------------------------------

def grid_doc(memory: bool = False) -> res.ResultsDoc:
    """numpy's time grows as T, pytensor-c's as sqrt(T) (a fixed cost dominating), at two B."""
    doc = res.ResultsDoc(machine={"cpu": "synthetic CPU", "cores_logical": 2})
    for engine, power in (("numpy", 1.0), ("pytensor-c", 0.5)):
        for t in (10, 100, 1000):
            for b in (1, 32):
                shape = {**REFERENCE_SHAPE, "T": t, "B": b}
                base = 1e-4 * t ** power * b
                profile = f"engine={engine}"
                doc.put(res.Measurement(
                    key=res.make_key(profile, shape, "train"), profile=profile, engine=engine,
                    task="train", shape=shape, times_s=[base * f for f in (1, 1.01, 0.99, 1, 1)],
                    step_peak_mb=0.05 * t * b if memory else None))
    return doc


def test_slopes_follow_the_synthetic_growth():
    drawn, skipped = cost_curves.panels(grid_doc().results, "T")
    assert skipped == [] and len(drawn) == 2                         # one panel per B
    slopes = {(p.fixed["B"], line.profile): line.slope for p in drawn for line in p.lines}
    for b in (1, 32):
        assert slopes[(b, "engine=numpy")] == pytest.approx(1.0, abs=0.01)
        assert slopes[(b, "engine=pytensor-c")] == pytest.approx(0.5, abs=0.01)
    assert cost_curves.fit_slope([(1, 2.0)]) is None
    assert cost_curves.fit_slope([(2, 8.0), (4, 64.0)]) == pytest.approx(3.0)
    assert math.isclose(cost_curves.fit_slope([(1, 1.0), (10, 10.0), (100, 100.0)]), 1.0)


def test_plot_x_writes_the_curves_and_prints_the_slopes(tmp_path, capsys):
    src, png = tmp_path / "g.json", tmp_path / "curves.png"
    res.save(grid_doc(), src)
    assert cli.main(["plot", str(src), "-o", str(png), "--x", "T", "--at", "B=32"]) == 0
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 10_000
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == str(png)
    assert len(lines) == 3                                          # B=32 only: two lines
    assert "numpy  slope 1.00 (3 points)" in lines[1]
    assert "pytensor-c  slope 0.50 (3 points)" in lines[2]


def test_plot_memory_against_t(tmp_path, capsys):
    src, png = tmp_path / "g.json", tmp_path / "mem.png"
    res.save(grid_doc(memory=True), src)
    assert cli.main(["plot", str(src), "-o", str(png), "--x", "T", "--y", "memory"]) == 0
    assert png.read_bytes()[:8] == PNG_MAGIC
    out = capsys.readouterr().out
    assert out.count("slope 1.00") == 4                              # 2 engines x 2 panels
    res.save(grid_doc(memory=False), src)
    assert cli.main(["plot", str(src), "-o", str(png), "--x", "T", "--y", "memory"]) == 2
    assert "nothing to plot" in capsys.readouterr().err


@pytest.mark.parametrize("argv, bad", [
    (["--at", "B=32"], "only with --x"), (["--y", "memory"], "only with --x"),
    (["--x", "T", "--at", "T=10"], "bad token 'T=10'"),
    (["--x", "T", "--at", "B=7"], "no measurement"), (["--x", "B", "--at", "H=0"], "H='0'"),
    (["--x", "I"], "nothing to plot against I")])
def test_bad_cost_curve_requests_are_one_line(tmp_path, capsys, argv, bad):
    src = tmp_path / "g.json"
    res.save(grid_doc(), src)
    assert cli.main(["plot", str(src), "-o", str(tmp_path / "c.png"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert bad in err and len(err.splitlines()) == 1
    assert not (tmp_path / "c.png").exists()
