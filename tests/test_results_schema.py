"""The results document's published JSON Schema, and what every load refuses: a field of the
wrong type or a non-finite figure in an ok measurement is one line, exit 2, in every command."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jsonschema
import pytest
from script_loader import load_script

from rnnperf import cli
from rnnperf.bench import results as res
from rnnperf.model.spec import TASKS

ROOT = Path(__file__).resolve().parent.parent
SHAPE = {"T": 5, "B": 2, "I": 3, "H": 4, "O": 10}


def valid_document() -> dict:
    doc = res.ResultsDoc(machine={"cpu": "synthetic"})
    for task in TASKS:
        profile = "engine=numpy"
        doc.put(res.Measurement(key=res.make_key(profile, SHAPE, task), profile=profile,
                                engine="numpy", task=task, shape=dict(SHAPE),
                                times_s=[0.010, 0.011, 0.012, 0.010, 0.013], peak_gflops=10.0))
    return json.loads(json.dumps(doc.to_json()))


def write(path: Path, document: dict) -> str:
    path.write_text(json.dumps(document, indent=1))          # NaN written as Python's json does
    return str(path)


# --- (a) the committed schema files are what the code generates -------------------------------
def test_the_committed_schema_files_are_generated_from_the_code():
    files = load_script("results_schema").generated()
    assert {p.name for p in files} == {"results.schema.json", "results-1.schema.json",
                                       "results-2.schema.json", "parity.schema.json"}
    for path, text in files.items():
        assert path.exists(), f"{path} is missing: run python scripts/results_schema.py --write"
        assert path.read_text() == text, \
            f"{path} is stale: run python scripts/results_schema.py --write"


def test_the_schemas_are_valid_draft_2020_12_and_follow_the_dataclass():
    for version in res.READABLE:
        schema = res.json_schema(version)
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["properties"]["schema"] == {"const": version}
    fields = set(res.json_schema()["properties"]["results"]["items"]["properties"])
    assert fields == {f.name for f in res.dataclasses.fields(res.Measurement)} | set(res.DERIVED)
    old = set(res.json_schema("rnnperf.results/1")["properties"]["results"]["items"]["properties"])
    assert fields - old == {"import_s", "function_cache", "threads_actual", "pools", "others_cpu",
                            "steal", "loadavg", "step_peak_mb", "cell"}


# --- (b) our real documents validate, with plain jsonschema, as another tool would ------------
@pytest.mark.parametrize("name", ["performance.json", "performance-levers.json"])
def test_the_published_documents_validate_against_the_published_schema(name):
    document = json.loads((ROOT / "docs" / name).read_text())
    version = document["schema"].rpartition("/")[2]          # each document its own version's
    published = "results.schema.json" if document["schema"] == res.SCHEMA else \
        f"results-{version}.schema.json"
    schema = json.loads((ROOT / "docs" / published).read_text())
    jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)
    res.load(ROOT / "docs" / name)


def test_a_newer_writers_extra_field_is_allowed():
    document = valid_document()
    document["results"][0]["energy_j"] = 1.5
    document["host_notes"] = "added by a newer writer"
    loaded = res.ResultsDoc.from_json(document, "x.json")
    assert not hasattr(loaded.results[0], "energy_j")


# --- (c) every command refuses a bad document in one line, exit 2 -----------------------------
BAD = {   # id: (mutation of results[0], the field the message names)
    "shape is a string": (lambda m: m.update(shape="T=5"), "shape"),
    "median_s is a string": (lambda m: m.update(median_s="fast"), "median_s"),
    "times_s holds a string": (lambda m: m.update(times_s=["x"]), "times_s[0]"),
    "status unknown": (lambda m: m.update(status="great"), "status"),
    "median_s NaN": (lambda m: m.update(median_s=math.nan), "median_s"),
    "times_s NaN": (lambda m: m.update(times_s=[math.nan]), "times_s[0]"),
    "times_s empty": (lambda m: m.update(times_s=[]), "times_s"),
}


def argv(command: str, path: str, tmp_path: Path) -> list[str]:
    return {"table": ["table", path],
            "compare": ["compare", path, path],
            "plot": ["plot", path, "-o", str(tmp_path / "out.png")],
            "bench": ["bench", "--resume", "--engines", "numpy", "--out", path,
                      "--shape", "T=5,B=2,I=3,H=4"]}[command]


@pytest.fixture
def no_workers(monkeypatch):
    """``bench --resume`` must fail at load: no worker, no sweep."""
    from rnnperf.bench import process, runners

    def forbidden(*args, **kwargs):
        raise AssertionError("a worker ran before the document was validated")
    monkeypatch.setattr(process, "run_worker", forbidden)
    monkeypatch.setattr(runners, "run_local", forbidden)


@pytest.mark.parametrize("command", ["table", "compare", "plot", "bench"])
@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_document_is_one_line_and_exit_2(tmp_path, capsys, no_workers, command, case):
    mutate, field = BAD[case]
    document = valid_document()
    mutate(document["results"][0])
    path = write(tmp_path / "bad.json", document)
    before = Path(path).read_text()
    assert cli.main(argv(command, path, tmp_path)) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err + out
    key = document["results"][0]["key"]
    assert f"{path}: results[0] ({key}): {field}: " in lines[0]
    assert Path(path).read_text() == before                     # never rewritten
    assert not (tmp_path / "out.png").exists()


def test_messages_say_what_is_wrong(tmp_path):
    cases = [(BAD["median_s is a string"][0], "median_s: must be a number or null, not 'fast'"),
             (BAD["median_s NaN"][0], "median_s: must be finite in an ok measurement, not nan"),
             (BAD["status unknown"][0],
              "status: 'great' is not one of 'ok', 'failed', 'timeout', 'unavailable'"),
             (BAD["times_s empty"][0], "times_s: is empty in an ok measurement"),
             (lambda m: m["shape"].update(T=0), "shape.T: must be >= 1, not 0"),
             (lambda m: m["extra"].update(parity={"max_err": math.inf}),
              "extra.parity.max_err: must be finite in an ok measurement, not inf")]
    for mutate, message in cases:
        document = valid_document()
        mutate(document["results"][0])
        with pytest.raises(res.ConfigError) as info:
            res.load(write(tmp_path / "r.json", document))
        assert str(info.value).endswith(message), str(info.value)


def test_the_first_violation_in_document_order_is_reported(tmp_path):
    document = valid_document()
    document["results"][1]["shape"] = "T=5"
    document["results"][0]["times_s"] = [0.01, math.inf]
    document["results"][0]["threads"] = "four"
    with pytest.raises(res.ConfigError, match=r"results\[0\] \(.*\): threads: must be an "):
        res.load(write(tmp_path / "r.json", document))
    document["machine"] = []
    with pytest.raises(res.ConfigError, match=r"r\.json: machine: must be an object, not \[\]$"):
        res.load(write(tmp_path / "r.json", document))


# --- (d) a failed measurement may carry NaN: it failed ----------------------------------------
def test_nan_in_a_failed_measurement_is_allowed(tmp_path, capsys):
    document = valid_document()
    document["results"][0].update(status="failed", error="result contains NaN or Inf",
                                  median_s=math.nan, times_s=[math.nan], gflops=math.inf)
    path = write(tmp_path / "r.json", document)
    (failed, ok) = res.load(path).results
    assert failed.status == "failed" and ok.ok
    assert cli.main(["table", path]) == 0
    assert capsys.readouterr().err == ""
