"""The command line under generated input: an exit code of the API, one line for 2 and 3, never
a traceback.

hypothesis drives ``rnnperf.cli.main`` in-process with generated argv: flag strings, rc texts,
shapes, paths, and results documents mutated field by field. Workers are replaced by a fake
(``run_worker``) that answers at once, so the property is about rnnperf's own handling of input,
not about compiling engines. ``RNNPERF_FUZZ_EXAMPLES=N`` runs N examples per test (the note of
issue #12 quotes a long run); ``-s`` prints the outcomes by exit code.
"""

from __future__ import annotations

import collections
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnperf import cli
from rnnperf.bench import process
from rnnperf.bench import results as res

EXAMPLES = int(os.environ.get("RNNPERF_FUZZ_EXAMPLES", "60"))
OUTCOMES: collections.Counter = collections.Counter()
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])

NASTY = "=,;[]/\\\"' \n\t²١xX.-_%$:#0123456789"
text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
nasty = st.text(alphabet=NASTY, max_size=12)
keys = st.sampled_from(["engine", "device", "floatX", "mode", "formulation", "threads",
                        "function_cache", "cxx", "blas.ldflags", "blas__ldflags", "allow_gc",
                        "gcc.cxxflags", "rnnperf.threads", "global.device", "floatx", "enigne",
                        ""]) | nasty
values = st.sampled_from(["numpy", "pytensor-c", "pytensor", "torch", "jax", "theano", "cuda",
                          "cuda1", "gpu", "cpu", "float64", "CVM", "JAX", "fused", "seed", "0",
                          "2", "-1", "True", "[/]", "[red]x", ""]) | nasty | text
flag_strings = st.lists(st.tuples(keys, values).map("=".join) | nasty, max_size=5).map(",".join)
shapes = st.one_of(
    st.fixed_dictionaries({k: st.integers(-2, 9) for k in "TBIH"}).map(
        lambda d: ",".join(f"{k}={v}" for k, v in d.items())),
    nasty, text)
rc_texts = st.lists(st.one_of(st.sampled_from(["[global]", "[blas]", "[rnnperf]", "[", "x"]),
                              st.tuples(keys, values).map(" = ".join), nasty),
                    max_size=6).map("\n".join)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10 ** 6) | st.floats() | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6)
MEASUREMENT_FIELDS = [f for f in res.Measurement.__dataclass_fields__] + list(res.DERIVED)


def valid_document() -> dict:
    doc = res.ResultsDoc(machine={"cpu": "fuzz"})
    for engine in ("numpy", "torch"):
        shape = {"T": 5, "B": 2, "I": 3, "H": 4, "O": 10}
        profile = f"engine={engine}"
        doc.put(res.Measurement(key=res.make_key(profile, shape, "train"), profile=profile,
                                engine=engine, task="train", shape=shape, peak_gflops=10.0,
                                times_s=[0.01, 0.011, 0.012, 0.01, 0.013]))
    return doc.to_json()


documents = st.one_of(
    st.tuples(st.sampled_from(MEASUREMENT_FIELDS), json_values).map(
        lambda fv: ("field", fv)),
    st.tuples(st.sampled_from(["schema", "results", "machine", "versions", "settings",
                               "created"]), json_values).map(lambda fv: ("top", fv)),
    st.just(("delete", None)), text.map(lambda t: ("text", t)))


def write_document(path, mutation) -> None:
    kind, arg = mutation
    data = valid_document()
    if kind == "field":
        data["results"][0][arg[0]] = arg[1]
    elif kind == "top":
        data[arg[0]] = arg[1]
    elif kind == "delete":
        del data["results"][0]["shape"]
    if kind == "text":
        path.write_text(arg)
    else:
        path.write_text(json.dumps(data))


def fake_worker(job, config, payload, timeout=None, extra_env=None):
    """Answers at once: a bench job measures 1 ms rounds; anything else is 'unavailable'."""
    if job == "bench":
        m = dict(payload["measurement"], times_s=[0.001] * 5, peak_gflops=1.0,
                 device_actual="cpu")
        return process.WorkerResult("ok", m, None, 0, 0.01)
    return process.WorkerResult("unavailable", {}, "fake worker", 3, 0.01)


@pytest.fixture
def sandbox(monkeypatch, tmp_path_factory):
    monkeypatch.setattr(process, "run_worker", fake_worker)
    return tmp_path_factory.mktemp("fuzz")


def check(capsys, argv) -> None:
    try:
        code = cli.main(argv)
    except SystemExit as exc:                   # argparse: --help, --version, usage errors
        code = exc.code
    out, err = capsys.readouterr()
    OUTCOMES[code] += 1
    assert code in (0, 1, 2, 3), (argv, code, err)
    assert "Traceback" not in err and "Traceback" not in out, (argv, err)
    if code in (2, 3):
        assert len([line for line in err.splitlines() if line.strip()]) <= 1, (argv, err)


@FUZZ
@given(command=st.sampled_from(["flags", "engines", "parity", "bench", "tune", "legacy"]),
       flags=st.lists(flag_strings, max_size=2), rc=st.none() | rc_texts,
       shape=st.none() | shapes, extra=st.lists(nasty, max_size=2))
def test_generated_argv_gets_an_api_exit_code_and_at_most_one_line(
        capsys, sandbox, command, flags, rc, shape, extra):
    argv = [command]
    for text_ in flags:
        argv += ["--flags", text_]
    if rc is not None and command in ("flags", "parity", "bench", "tune"):
        path = sandbox / "fuzz.theanorc"
        path.write_text(rc)
        argv += ["--rc", str(path)]
    if command in ("bench", "tune"):
        argv += ["--shape", shape or "T=3,B=2,I=2,H=2", "--out", str(sandbox / "out.any"),
                 "--force", "--rounds", "5", "--min-time", "0.001", "--no-progress"]
    if command == "legacy":
        argv += ["status"]
    check(capsys, argv + (extra if command == "flags" else []))


@FUZZ
@given(mutation=documents, command=st.sampled_from(["table", "compare", "plot", "resume"]))
def test_mutated_results_documents_get_an_api_exit_code_and_at_most_one_line(
        capsys, sandbox, mutation, command):
    path = sandbox / "doc.json"
    write_document(path, mutation)
    argv = {"table": ["table", str(path)], "compare": ["compare", str(path), str(path)],
            "plot": ["plot", str(path), "-o", str(sandbox / "p.png")],
            "resume": ["bench", "--resume", "--engines", "numpy", "--out", str(path),
                       "--shape", "T=5,B=2,I=3,H=4", "--task", "train", "--rounds", "5",
                       "--no-progress"]}[command]
    check(capsys, argv)


def teardown_module(module):
    total = sum(OUTCOMES.values())
    print(f"\ncli fuzz: {total} examples; by exit code: {dict(sorted(OUTCOMES.items()))}")
