"""``rnnperf tune``: a tiny NumPy sweep end to end, here and on a 2-process Dask cluster.

The sweeps (``--strategy exhaustive``) use engine=numpy at T=5,B=2,I=3,H=4 with --min-time
0.001 so the file stays fast; the space is floatX x threads (4 points). One sweep is shared by
the tests that only read it; they and the Dask tests are ``slow``.
"""

import functools
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rnnperf import cli
from rnnperf.bench import plan, results, runners
from rnnperf.bench.sweep import Settings
from rnnperf.tune import space as tune_space
from rnnperf.tune.point import PERTURB_VAR
from rnnperf.tune.rank import rank, verdict

SHAPE = "T=5,B=2,I=3,H=4"
SPACE = '[space]\nengine = ["numpy"]\nfloatX = ["float32", "float64"]\nthreads = [1, 2]\n'
FAST = ["--min-time", "0.001", "--rounds", "5", "--no-progress", "--timeout", "120"]
#: every point at full length, each checked for parity (the default, halving, has its own file:
#: tests/test_tune_halving.py)
EXHAUSTIVE = ("--strategy", "exhaustive")
CLEAN = ("THEANO_FLAGS", "RNNPERF_FLAGS", "THEANORC", "RNNPERF_RC", "PYTENSOR_FLAGS")


def run_tune(tmp, *extra, space=SPACE, name="best"):
    (tmp / "space.toml").write_text(space)
    return cli.main(["tune", "--shape", SHAPE, "--space", str(tmp / "space.toml"),
                     "--out", str(tmp / f"{name}.theanorc"), *FAST, *extra])


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """The local sweep, with parity broken (test-only) for the threads=1 points."""
    tmp = tmp_path_factory.mktemp("tune")
    with pytest.MonkeyPatch.context() as mp:
        for var in CLEAN:
            mp.delenv(var, raising=False)
        mp.setenv("HOME", str(tmp))
        mp.setenv(PERTURB_VAR, "threads=1")
        code = run_tune(tmp, *EXHAUSTIVE)
    return tmp, code, results.load(tmp / "best.sweep.json")


@pytest.mark.slow  # the shared sweep: four measurements
def test_sweep_measures_every_point_and_writes_rc_plot_results(sweep):
    tmp, code, doc = sweep
    assert code == 0
    assert len(doc.results) == 4 and all(m.status == "ok" for m in doc.results)
    assert all(m.host and m.extra["parity"]["status"] in ("ok", "mismatch")
               for m in doc.results)
    assert (tmp / "best.png").stat().st_size > 0
    text = (tmp / "best.theanorc").read_text()
    assert text.startswith("# Chosen by rnnperf tune") and "seq/s" in text
    assert "engine = numpy" in text


@pytest.mark.slow  # the shared sweep: four measurements
def test_rc_reads_back_into_the_winning_profile(sweep):
    tmp, _, doc = sweep
    env = {k: v for k, v in os.environ.items() if k not in CLEAN}
    env["HOME"] = str(tmp)
    out = subprocess.run([sys.executable, "-m", "rnnperf", "flags", "--rc",
                          str(tmp / "best.theanorc")], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    profile = out.stdout.strip().splitlines()[-1].removeprefix("profile: ")
    best = rank(doc.results)[0]
    assert profile == best.profile and "engine=numpy" in profile


@pytest.mark.slow  # the shared sweep: four measurements
def test_parity_failure_is_rejected_and_never_chosen(sweep):
    _, _, doc = sweep
    verdicts = {m.profile: verdict(m) for m in doc.results}
    assert {p for p, v in verdicts.items() if v != "ok"} == \
        {m.profile for m in doc.results if "threads=1" in m.profile}
    assert all(v == "rejected: parity mismatch" for p, v in verdicts.items() if "threads=1" in p)
    assert "threads=2" in rank(doc.results)[0].profile


def test_rejected_point_loses_even_when_fastest():
    def point(profile, speed, parity):
        m = results.Measurement(key=profile, profile=profile, engine="numpy", task="train",
                                shape={"T": 5, "B": 2, "I": 3, "H": 4, "O": 10},
                                times_s=[2 / speed] * 5, extra={"parity": {"status": parity}})
        return m
    ranked = rank([point("slow", 10.0, "ok"), point("fast", 1e6, "mismatch"),
                        point("mid", 20.0, "ok")])
    assert [m.profile for m in ranked] == ["mid", "slow", "fast"]


def test_no_point_passing_parity_exits_1(tmp_path, monkeypatch):
    monkeypatch.setenv(PERTURB_VAR, "engine=numpy")
    space = '[space]\nengine = ["numpy"]\nfloatX = ["float64"]\nthreads = [1]\n'
    assert run_tune(tmp_path, space=space) == 1
    assert not (tmp_path / "best.theanorc").exists()


needs_dask = pytest.mark.skipif(importlib.util.find_spec("distributed") is None,
                                reason="Dask scale-out needs dask[distributed] "
                                       "(scripts/bootstrap.sh installs it)")


@pytest.mark.slow  # the shared sweep, then the same on a local Dask cluster
@needs_dask
def test_dask_local_measures_the_same_points(sweep, tmp_path):
    _, _, local = sweep
    assert run_tune(tmp_path, "--dask", "local", *EXHAUSTIVE) == 0
    doc = results.load(tmp_path / "best.sweep.json")
    assert {m.key for m in doc.results} == {m.key for m in local.results}
    assert all(m.status == "ok" and m.host for m in doc.results)
    assert all(m.extra.get("dask_worker", "").startswith("tcp://") for m in doc.results)


def die_once(marker_dir, job, settings):
    """Kills its Dask worker the first time it sees a key, or always for float64."""
    marker = Path(marker_dir) / job.config.floatX
    if "float64" in job.key or not marker.exists():
        marker.touch()
        os._exit(1)
    return job.blank(status="ok")


@pytest.mark.slow  # starts a local Dask cluster
@needs_dask
def test_lost_dask_worker_is_retried_once_then_failed(tmp_path, monkeypatch):
    jobs = tune_space.expand({"engine": ["numpy"], "floatX": ["float32", "float64"]},
                             plan.parse_shape(SHAPE), "train", None, None)
    client, cluster = runners.connect("local", 5)
    got = []
    try:
        runners.run_dask(jobs, functools.partial(die_once, str(tmp_path)), Settings(),
                         lambda job, m: got.append(m), lambda text: None, client)
    finally:
        client.close()
        cluster.close()
    status = {m.key: m.status for m in got}
    assert len(got) == 2
    assert [s for k, s in status.items() if "float32" in k] == ["ok"]          # retry worked
    assert [s for k, s in status.items() if "float64" in k] == ["failed"]      # lost twice


@pytest.mark.parametrize("space, needle", [
    ('[space]\nengnie = ["numpy"]\n', "engnie"),
    ('[space]\nfloatX = ["float16"]\n', "floatX"),
    ('[space]\nengine = ["nosuch"]\n', "engine"),
    ('[space]\nB = [0]\n', "B"),
    ('[space\nengine = "numpy"\n', "unparsable TOML"),
    ('[space]\nengine = []\n', "empty"),
    ('[space]\n', "empty"),
    ('[other]\nengine = ["numpy"]\n', "other"),
])
def test_bad_space_file_exits_2_with_one_line(tmp_path, capsys, space, needle):
    assert run_tune(tmp_path, space=space) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "space.toml" in err and needle in err
    assert not (tmp_path / "best.sweep.json").exists()


@needs_dask
def test_unreachable_scheduler_exits_3(tmp_path, capsys):
    import socket
    with socket.socket() as s:                      # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert run_tune(tmp_path, "--scheduler", f"tcp://127.0.0.1:{port}",
                    "--connect-timeout", "1") == 3
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and f"127.0.0.1:{port}" in err


def test_the_built_in_gpu_space_exits_3_in_one_line_without_a_gpu(tmp_path, capsys,
                                                                  monkeypatch):
    from rnnperf.bench import machine
    monkeypatch.setattr(machine, "gpus", lambda: [])
    out = tmp_path / "gpu.theanorc"
    assert cli.main(["tune", "--space", "gpu", "--shape", "T=100,B=32,I=128,H=256",
                     "--out", str(out)]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--space gpu: no CUDA device here" in err[0]
    assert not out.exists() and not list(tmp_path.iterdir())


def test_the_built_in_gpu_space_is_what_can_run_on_cuda(monkeypatch):
    from rnnperf.bench import machine
    from rnnperf.tune.space import build_space
    monkeypatch.setattr(machine, "gpus", lambda: ["NVIDIA H200, 143771 MiB, 580.1"])
    space = build_space("gpu", None)
    assert space["device"] == ["cuda"] and space["floatX"] == ["float32"]
    assert space["matmul_precision"] == ["float32", "tf32"]
    assert set(space["engine"]) <= {"torch", "jax", "pytensor-jax", "pytensor-pytorch"}
    assert "fused" not in space["formulation"]


def test_the_default_space_sweeps_speed_knobs_only(monkeypatch):
    """floatX is the profile's (a precision choice, not a speed knob); an engine that cannot win
    on a CPU (pytensor-pytorch: its scan loop runs eagerly) is left out, with the reason, unless
    named; the rest of what is installed is in."""
    from rnnperf import engines
    from rnnperf.engines import registry
    from rnnperf.tune import space as tune_space
    everything = lambda name: (True, "", {})  # noqa: E731  (as if every engine were installed)
    monkeypatch.setattr(registry, "availability", everything)
    monkeypatch.setattr(engines, "availability", everything)
    space = tune_space.default_space()
    assert "floatX" not in space
    assert "pytensor-pytorch" not in space["engine"]
    assert {"numpy", "pytensor-c", "pytensor-jax", "torch", "jax"} <= set(space["engine"])
    left = dict(tune_space.left_out(None, None))
    assert "eagerly" in left["pytensor-pytorch"]
    assert tune_space.left_out(None, "pytensor-pytorch") == []          # named: measured
    jobs = tune_space.expand({"engine": ["numpy"], "threads": ["1"]},
                             {"T": 3, "B": 2, "I": 3, "H": 4, "O": 2}, "train",
                             ["floatX=float64"], None)
    assert [j.config.floatX for j in jobs] == ["float64"]               # the profile's holds


def test_a_tune_says_and_records_what_the_default_space_left_out(tmp_path, monkeypatch, capsys):
    from rnnperf.engines import registry
    from rnnperf.tune import space as tune_space
    monkeypatch.setattr(tune_space, "default_engines",
                        lambda device_kind="cpu": ([("numpy", "")], [("pytensor-pytorch", "slow")]))
    monkeypatch.setattr(registry, "availability", lambda name: (name == "numpy", "", {}))
    out = tmp_path / "best.theanorc"
    assert cli.main(["tune", "--shape", "T=3,B=2,I=3,H=4", "--out", str(out), "--min-time",
                     "0.001", "--rounds", "5", "--no-progress", "--strategy", "exhaustive"]) == 0
    assert "left out of the default space: pytensor-pytorch: slow" in capsys.readouterr().out
    doc = results.load(out.with_suffix(".sweep.json"))
    assert {"engine": "pytensor-pytorch", "reason": "slow"} in doc.skipped
