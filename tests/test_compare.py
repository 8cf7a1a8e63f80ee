"""The regression gate: 1 on a real slowdown, 0 on a re-run of the same build."""

from __future__ import annotations

import pytest

from rnnperf import cli
from rnnperf.bench import compare as cmp
from rnnperf.bench import results as res
from rnnperf.errors import ConfigError

BASE_TIMES = [0.0100, 0.0102, 0.0099, 0.0101, 0.0100, 0.0103, 0.0098]


def doc(scale=1.0, times=BASE_TIMES, status="ok", tasks=("forward", "train")) -> res.ResultsDoc:
    out = res.ResultsDoc(machine={"cpu": "synthetic"})
    for engine in ("numpy", "pytensor-c"):
        for task in tasks:
            shape = {"T": 5, "B": 2, "I": 3, "H": 4, "O": 10}
            profile = f"engine={engine}"
            m = res.Measurement(key=res.make_key(profile, shape, task), profile=profile,
                                engine=engine, task=task, shape=shape, status=status,
                                times_s=[t * scale for t in times] if status == "ok" else [],
                                peak_gflops=10.0, compile_s=1.0)
            out.put(m)
    return out


def write(tmp_path, name, d):
    path = tmp_path / name
    res.save(d, path)
    return str(path)


def test_identical_input_passes(tmp_path, capsys):
    base = write(tmp_path, "base.json", doc())
    assert cli.main(["compare", base, base]) == 0
    out = capsys.readouterr().out
    assert "same" in out and "REGRESSION" not in out


def test_twenty_percent_slowdown_fails(tmp_path, capsys):
    base = write(tmp_path, "base.json", doc())
    new = write(tmp_path, "new.json", doc(scale=1.2))
    assert cli.main(["compare", base, new, "--threshold", "5%"]) == 1
    assert "REGRESSION" in capsys.readouterr().out
    assert cli.main(["compare", base, new, "--threshold", "25%"]) == 0
    assert cli.main(["compare", new, base]) == 0          # a speed-up never fails


def test_slowdown_within_the_spread_passes():
    wide = [0.008, 0.010, 0.012, 0.014, 0.009, 0.011, 0.013]      # IQR ~ 3 ms
    rows = cmp.compare_docs(doc(times=wide), doc(times=wide, scale=1.1), 0.05)
    assert {r.verdict for r in rows} == {"slower (noise)"}
    assert cmp.exit_code(rows) == 0


def test_new_failure_fails_and_missing_keys_do_not():
    rows = cmp.compare_docs(doc(), doc(status="failed"), 0.05)
    assert {r.verdict for r in rows} == {"FAILED"} and cmp.exit_code(rows) == 1
    rows = cmp.compare_docs(doc(), doc(tasks=("forward",)), 0.05)
    assert sorted({r.verdict for r in rows}) == ["base only", "same"]
    assert cmp.exit_code(rows) == 0
    rows = cmp.compare_docs(doc(status="timeout"), doc(), 0.05)
    assert {r.verdict for r in rows} == {"base timeout"} and cmp.exit_code(rows) == 0


def test_ratio():
    rows = cmp.compare_docs(doc(), doc(scale=1.2), 0.05)
    assert all(r.ratio == pytest.approx(1.2) for r in rows)


@pytest.mark.parametrize("text, value", [("5%", 0.05), ("0.05", 0.05), ("12.5%", 0.125),
                                         ("0", 0.0)])
def test_parse_threshold(text, value):
    assert cmp.parse_threshold(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["5", "abc", "-1%"])
def test_bad_threshold(text):
    with pytest.raises(ConfigError, match="--threshold"):
        cmp.parse_threshold(text)


def test_foreign_file_exits_2(tmp_path, capsys):
    base = write(tmp_path, "base.json", doc())
    other = tmp_path / "other.json"
    other.write_text('{"schema": "something/2", "results": []}')
    assert cli.main(["compare", base, str(other)]) == 2
    err = capsys.readouterr().err
    assert "other.json" in err and len(err.strip().splitlines()) == 1


def test_bench_with_compare_gates_in_one_go(tmp_path, capsys):
    """`rnnperf bench --compare BASE` measures, then compares; its exit code is compare's.

    Against a BASE a thousand times slower the fresh run always passes; against one a billion
    times faster the verdict depends on the fresh run's own spread (a busy box can have an IQR
    above its median), so the exit code is checked against compare's own verdict.
    """
    shape = {"T": 5, "B": 2, "I": 3, "H": 4, "O": 10}
    args = ["bench", "--engines", "numpy", "--task", "forward", "--shape", "T=5,B=2,I=3,H=4",
            "--min-time", "0.001", "--no-progress"]
    for name, seconds in (("slow", 1e3), ("fast", 1e-9)):
        base = res.ResultsDoc()
        base.put(res.Measurement(key=res.make_key("engine=numpy", shape, "forward"),
                                 profile="engine=numpy", engine="numpy", task="forward",
                                 shape=shape, times_s=[seconds] * 7))
        base_path = write(tmp_path, f"{name}.json", base)
        new_path = tmp_path / f"new-{name}.json"
        code = cli.main([*args, "--out", str(new_path), "--compare", base_path])
        assert "rnnperf compare" in capsys.readouterr().out
        rows = cmp.compare_docs(base, res.load(new_path), cmp.DEFAULT_THRESHOLD)
        assert rows[0].verdict != "FAILED"
        assert code == cmp.exit_code(rows)
        if name == "slow":
            assert code == 0 and rows[0].verdict == "faster"


def test_a_burst_of_load_on_most_rounds_is_not_a_regression():
    """Median up 30%, but the best round is as fast as before: the machine, not the build."""
    burst = [0.0100, 0.0130, 0.0131, 0.0132, 0.0130, 0.0133, 0.0131]
    rows = cmp.compare_docs(doc(), doc(times=burst), 0.05)
    assert cmp.exit_code(rows) == 0


def test_table_ratio_is_relative_to_the_baseline_in_the_same_document():
    from rnnperf.bench.table import result_rows
    from rnnperf.bench.results import Measurement

    def m(engine, median):
        return Measurement(key=engine, profile=f"engine={engine}", engine=engine, task="train",
                           shape={"T": 1, "B": 1, "I": 1, "H": 1, "O": 2}, status="ok",
                           times_s=[median] * 5)
    rows = result_rows([m("torch", 0.030), m("pytensor-jax", 0.020), m("numpy", 0.060)])
    from rnnperf.bench.table import COLUMNS
    ratio = {row[0]: row[COLUMNS.index("x baseline")] for row in rows}
    assert ratio == {"engine=torch": "1.00", "engine=pytensor-jax": "1.50",
                     "engine=numpy": "0.50"}


def test_table_ratio_compares_a_cell_with_the_baseline_s_same_cell():
    """An LSTM against torch's LSTM, never against its (faster) RNN."""
    from rnnperf.bench.results import Measurement
    from rnnperf.bench.table import COLUMNS, result_rows

    def m(engine, cell, median):
        return Measurement(key=f"{engine}{cell}", profile=f"engine={engine},cell={cell}",
                           engine=engine, task="train", flags={"cell": cell},
                           shape={"T": 1, "B": 1, "I": 1, "H": 1, "O": 2}, status="ok",
                           times_s=[median] * 5)
    rows = result_rows([m("torch", "elman", 0.010), m("torch", "lstm", 0.040),
                        m("pytensor-c", "elman", 0.005), m("pytensor-c", "lstm", 0.020)])
    ratio = {row[0]: row[COLUMNS.index("x baseline")] for row in rows}
    assert ratio["engine=pytensor-c,cell=lstm"] == "2.00"
    assert ratio["engine=pytensor-c,cell=elman"] == "2.00"
