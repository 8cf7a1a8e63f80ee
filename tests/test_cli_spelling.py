"""One spelling per meaning across commands (issue #21): ``--engines all`` with what it skipped,
``--require-all``, ``--json`` (stdout) against ``--out`` (a file), one ``--timeout`` default, and
the old spellings still working for one release with a one-line deprecation."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from rnnperf import cli
from rnnperf.bench import results as res
from rnnperf.engines import registry

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--shape", "T=3,B=2,I=3,H=4", "--min-time", "0.001", "--rounds", "5", "--no-progress"]


@pytest.fixture
def only_numpy(monkeypatch):
    """Every engine but the oracle is 'not installed' (in this process: the parent decides)."""
    real = registry.availability

    def fake(name):
        if name == "numpy":
            return real(name)
        return False, f"{name} is not installed here (test)", {}
    monkeypatch.setattr(registry, "availability", fake)


def test_engines_all_names_every_engine_it_could_not_run(tmp_path, capsys, only_numpy):
    out = tmp_path / "r.json"
    assert cli.main(["bench", "--engines", "all", "--task", "forward", "--out", str(out),
                     *TINY]) == 0
    doc = res.load(out)
    assert {m.engine for m in doc.results} == {"numpy"}
    skipped = {s["engine"]: s["reason"] for s in doc.skipped}
    assert set(skipped) == set(registry.names()) - {"numpy"}
    assert "not installed here (test)" in skipped["torch"]
    assert "not run: torch: torch is not installed here (test)" in capsys.readouterr().out
    jsonschema.validate(json.loads(out.read_text()),
                        json.loads((ROOT / "docs" / "results.schema.json").read_text()))


@pytest.mark.parametrize("command", [["bench"], ["warm"], ["parity"],
                                     ["tune", "--shape", "T=3,B=2,I=3,H=4", "--out", "x.rc"]])
def test_require_all_fails_before_any_worker_when_an_engine_is_missing(command, capsys,
                                                                       only_numpy):
    assert cli.main([*command, "--engines", "all", "--require-all"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--require-all: engine" in err[0] and "not available" in err[0]


def test_engines_all_on_cuda_leaves_out_the_cpu_engines_by_design(monkeypatch):
    """Under device=cuda, ``all`` is the engines that run there; numpy and pytensor-c are listed
    as not run (they cannot honour cuda), and --require-all does not fail on them."""
    monkeypatch.setattr(registry, "availability", lambda name: (True, "", {}))
    selection = registry.select("all", device_kind="cuda")
    assert set(selection.names) == {n for n in registry.names()
                                    if "cuda" in registry.get(n).devices}
    off = dict(selection.off_device)
    assert {"numpy", "pytensor-c", "pytensor-numba"} <= set(off)
    assert "runs on cpu only; the profile asks device=cuda" in off["numpy"]
    assert dict(selection.not_run) == off
    selection.require_all()                          # nothing absent: no exit 3
    assert registry.select("all").off_device == ()   # on a cpu every engine runs


@pytest.mark.parametrize("argv, needle", [
    (["bench", "--engines", "numpy", "--require-all"], "only with --engines all"),
    (["parity", "--require-all"], "only with --engines all"),
    (["bench", "--engines", "all,numpy"], "'all' stands alone"),
    (["warm", "--engines", "nosuch"], "unknown engine 'nosuch'"),
])
def test_engine_lists_are_checked_the_same_everywhere(argv, needle, capsys):
    assert cli.main(argv) == 2
    assert needle in capsys.readouterr().err


def test_parity_json_prints_the_document_and_out_writes_it(tmp_path, capsys):
    path = tmp_path / "p.json"
    assert cli.main(["parity", "--engines", "numpy", "--dtypes", "float64", "--json",
                     "--out", str(path), "--no-progress"]) == 0
    printed = json.loads(capsys.readouterr().out)        # stdout is the document alone
    assert printed == json.loads(path.read_text())
    schema = json.loads((ROOT / "docs" / "parity.schema.json").read_text())
    jsonschema.validate(printed, schema)
    assert printed["tolerances"] == {"float64": 1e-9, "float32": 2e-4}
    assert {r["status"] for r in printed["rows"]} == {"ok"}


def test_the_parity_schema_rejects_a_row_without_a_status():
    schema = json.loads((ROOT / "docs" / "parity.schema.json").read_text())
    doc = {"schema": "rnnperf.parity/1", "shape": {"T": 2}, "rows": [{"engine": "numpy"}]}
    with pytest.raises(jsonschema.ValidationError, match="status"):
        jsonschema.validate(doc, schema)


@pytest.mark.parametrize("argv, old, new", [
    (["parity", "--engines", "numpy", "--dtypes", "float64", "--no-progress", "--json", "{f}"],
     "--json {f}", "--out {f}"),
    (["tune", "--shape", "T=3,B=2,I=3,H=4", "--out", "{f}", "--prewarm", "-1"],
     "--prewarm", "--jobs"),
])
def test_an_old_spelling_still_works_and_says_what_replaces_it(tmp_path, capsys, argv, old,
                                                                new):
    f = str(tmp_path / "f.json")
    code = cli.main([a.format(f=f) for a in argv])
    err = capsys.readouterr().err
    assert f"{old.format(f=f)} is deprecated; use {new.format(f=f)}" in err
    if argv[0] == "parity":
        assert code == 0 and json.loads(Path(f).read_text())["schema"] == "rnnperf.parity/1"
    else:
        assert code == 2 and "--jobs -1: must be 0 (off) or more" in err   # the value arrived


def test_plot_writes_out_and_output_is_deprecated(tmp_path, capsys):
    src = ROOT / "docs" / "performance.json"
    png = tmp_path / "a.png"
    assert cli.main(["plot", str(src), "--output", str(png)]) == 0
    assert png.stat().st_size > 0
    assert "--output is deprecated; use --out" in capsys.readouterr().err


def test_every_command_that_starts_workers_has_one_timeout_default():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    defaults = {name: next(a.default for a in p._actions if a.dest == "timeout")
                for name, p in sub.items() if any(a.dest == "timeout" for a in p._actions)}
    assert set(defaults) == {"bench", "warm", "parity", "tune"}
    assert set(defaults.values()) == {cli.args.DEFAULT_TIMEOUT}
