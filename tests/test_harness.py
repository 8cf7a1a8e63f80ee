"""The bench harness: one worker per measurement, faults recorded, resume after a killed parent.

Every sweep uses engine=numpy at a tiny shape with a tiny --min-time so that it takes about a
second per measurement; no test asserts a wall-clock time. The tests that run a sweep are ``slow``;
planning and refused command lines are not.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from rnnperf import cli
from rnnperf.bench import plan
from rnnperf.bench.faults import FAULT_VAR
from rnnperf.bench import results as res
from rnnperf.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--shape", "T=5,B=2,I=3,H=4", "--min-time", "0.001", "--no-progress"]  # T=5 first


def bench(tmp_path, *args, out="r.json"):
    """Run ``rnnperf bench`` in this process (its workers are processes of their own)."""
    path = tmp_path / out
    code = cli.main(["bench", "--out", str(path), *args])
    return code, (res.load(path) if path.exists() else None)


def bench_process(tmp_path, *args, env=None):
    full = {**os.environ, **(env or {})}
    full["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), full.get("PYTHONPATH")) if p)
    return subprocess.Popen([sys.executable, "-m", "rnnperf", "bench", "--out",
                             str(tmp_path / "r.json"), *args], env=full,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_results(path, count, proc, limit=120.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            if len(res.load(path).results) >= count:
                return
        except ConfigError:
            pass                                  # not written yet (atomic: never half)
        time.sleep(0.05)
    pytest.fail(f"no {count} results in {limit} s")


def hung_worker(proc, limit=60.0):
    """The worker processes of ``proc`` once one has run long enough to be in its hang."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        children = psutil.Process(proc.pid).children(recursive=True)
        if children and time.time() - min(c.create_time() for c in children) > 2.0:
            return children
        time.sleep(0.05)
    pytest.fail("the hung worker never started")


# --- planning ------------------------------------------------------------------------------------

def test_parse_shape():
    assert plan.parse_shape("T=100,B=32,I=128,H=256") == \
        {"T": 100, "B": 32, "I": 128, "H": 256, "O": 10}
    assert plan.parse_shape("t=1, b=2, i=3, h=4, o=5")["O"] == 5


@pytest.mark.parametrize("text, bad", [("T=1,B=2,I=3", "missing H"), ("T=1,B=2,I=3,H=x", "H="),
                                       ("T=1,B=2,I=3,H=4,Q=1", "'Q=1'"), ("T=0,B=1,I=1,H=1", "T=")])
def test_bad_shape_is_one_line(text, bad):
    with pytest.raises(ConfigError, match=bad):
        plan.parse_shape(text)


def test_profiles_expand_engines_and_flags():
    configs = plan.profiles(["engine=numpy,floatX=float64"], "numpy,pytensor-c",
                               ["floatX=float64"], None, 1)
    assert [c.profile() for c in configs] == [
        "engine=numpy,floatX=float64,threads=1", "engine=pytensor-c,floatX=float64,threads=1"]


# --- a sweep -------------------------------------------------------------------------------------

@pytest.mark.slow  # runs a sweep
def test_sweep_never_imports_an_engine_in_the_parent(tmp_path):
    script = (
        "import sys; from rnnperf import cli\n"
        f"code = cli.main(['bench', '--engines', 'numpy', '--out', {str(tmp_path / 'r.json')!r},"
        f" *{TINY!r}])\n"
        "bad = [m for m in ('pytensor', 'torch', 'jax', 'numba') if m in sys.modules]\n"
        "print('IMPORTED', bad); sys.exit(code)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "IMPORTED []" in out.stdout
    doc = res.load(tmp_path / "r.json")
    assert [m.task for m in doc.results] == ["forward", "train"]
    for m in doc.results:
        assert m.status == "ok" and m.error is None
        assert len(m.times_s) == 7 and m.median_s > 0 and m.iqr_s >= 0
        assert m.peak_gflops > 0 and m.peak_fraction > 0 and m.rss_mb > 0
        assert m.device_actual == "cpu" and m.threads == os.cpu_count() and m.compile_s >= 0
        assert m.import_s >= 0 and m.function_cache is None    # numpy: nothing to cache
    assert doc.versions["blas"]["numpy"]
    assert doc.machine["cores_logical"] == os.cpu_count()


def test_existing_out_is_refused_without_resume_or_force(tmp_path, capsys):
    (tmp_path / "r.json").write_text("precious")
    code = cli.main(["bench", "--engines", "numpy", "--out", str(tmp_path / "r.json"), *TINY])
    assert code == 2 and "--resume" in capsys.readouterr().err
    code = cli.main(["bench", "--engines", "numpy", "--resume", "--out",
                     str(tmp_path / "r.json"), *TINY])
    assert code == 2
    assert (tmp_path / "r.json").read_text() == "precious"


# --- faults --------------------------------------------------------------------------------------

@pytest.mark.slow  # runs a sweep
@pytest.mark.parametrize("fault, status, error", [
    ("sigkill", "failed", "killed by signal SIGKILL"),
    ("crash", "failed", "exit code 70"),
    ("raise", "failed", "RuntimeError: injected fault"),
    ("garbage", "failed", "garbage on stdout"),
    ("nan", "failed", "NaN or Inf"),
    ("hang", "timeout", "timeout"),
])
def test_faulty_worker_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch, fault, status,
                                                         error):
    monkeypatch.setenv(FAULT_VAR, f"{fault}@T=5,")
    code, doc = bench(tmp_path, "--engines", "numpy", "--task", "forward", *TINY,
                      "--shape", "T=6,B=2,I=3,H=4",
                      # long enough for a healthy worker on a busy 2-core box, short for a hang
                      "--timeout", "15" if fault == "hang" else "120")
    assert code == 1
    bad, good = doc.results
    assert bad.shape["T"] == 5 and bad.status == status and error in bad.error
    assert "\n" not in bad.error and bad.median_s is None
    assert good.status == "ok" and good.median_s > 0


@pytest.mark.slow  # runs a sweep
def test_unavailable_engine_exits_3(tmp_path, monkeypatch):
    import rnnperf.engines as engines
    real = engines.availability
    monkeypatch.setattr(engines, "availability", lambda name: (False, "not here", {})
                        if name == "pytensor-c" else real(name))
    code, doc = bench(tmp_path, "--engines", "pytensor-c,numpy", "--task", "forward", *TINY)
    assert code == 3
    assert [m.status for m in doc.results] == ["unavailable", "ok"]
    assert doc.results[0].engine == "pytensor-c"
    assert "not here" in doc.results[0].error


# --- several workers per measurement (--processes) -----------------------------------------------

@pytest.mark.slow  # runs a sweep
def test_processes_pool_interleaved_workers_and_resume_tops_up(tmp_path, monkeypatch):
    from rnnperf.bench import process
    order = []
    real = process.run_worker

    def spy(job, config, payload, **kwargs):
        order.append(payload["measurement"]["shape"]["T"])
        return real(job, config, payload, **kwargs)
    monkeypatch.setattr(process, "run_worker", spy)
    args = ["--engines", "numpy", "--task", "forward", *TINY, "--shape", "T=6,B=2,I=3,H=4",
            "--rounds", "5"]
    code, doc = bench(tmp_path, *args, "--processes", "2")
    assert code == 0
    assert order == [5, 6, 5, 6]                       # passes interleave, never 5, 5, 6, 6
    assert doc.settings["processes"] == 2
    for m in doc.results:
        assert m.processes == 2 and len(m.times_s) == 10
        assert m.median_s == pytest.approx(float(np.median(m.times_s)))
    # a third worker per measurement on resume: the first two workers' rounds are kept
    first = {m.key: list(m.times_s) for m in doc.results}
    order.clear()
    code, doc = bench(tmp_path, *args, "--processes", "3", "--resume")
    assert code == 0 and order == [5, 6]
    for m in doc.results:
        assert m.processes == 3 and m.times_s[:10] == first[m.key] and len(m.times_s) == 15


@pytest.mark.slow  # runs a sweep
def test_a_failing_later_worker_fails_the_measurement(tmp_path, monkeypatch):
    code, doc = bench(tmp_path, "--engines", "numpy", "--task", "forward", *TINY, "--rounds", "5")
    assert code == 0 and doc.results[0].processes == 1
    monkeypatch.setenv(FAULT_VAR, "crash")
    code, doc = bench(tmp_path, "--engines", "numpy", "--task", "forward", *TINY, "--rounds", "5",
                      "--processes", "2", "--resume")
    assert code == 1
    m = doc.results[0]
    assert m.status == "failed" and m.error.startswith("worker 2: ") and "exit code 70" in m.error


def test_processes_must_be_positive(tmp_path, capsys):
    code, _ = bench(tmp_path, "--engines", "numpy", *TINY, "--processes", "0")
    assert code == 2
    assert "--processes 0" in capsys.readouterr().err


# --- resume --------------------------------------------------------------------------------------

@pytest.mark.slow  # runs a sweep
def test_resume_keeps_ok_and_failed_and_reruns_timeout(tmp_path, monkeypatch):
    args = ["--engines", "numpy", "--task", "forward", *TINY, "--shape", "T=6,B=2,I=3,H=4",
            "--shape", "T=7,B=2,I=3,H=4"]
    monkeypatch.setenv(FAULT_VAR, "nan@T=6,")
    code, doc = bench(tmp_path, *args)
    assert code == 1
    # pretend the T=7 one timed out
    doc.results[2].status, doc.results[2].error = "timeout", "worker passed the 1 s timeout"
    res.save(doc, tmp_path / "r.json")
    before = {m.key: m.to_json() for m in doc.results}
    monkeypatch.delenv(FAULT_VAR)
    code, after = bench(tmp_path, "--resume", *args)
    assert code == 1                                   # the kept NaN still fails the sweep
    now = {m.key: m.to_json() for m in after.results}
    assert list(now) == list(before)
    keys = list(before)
    assert now[keys[0]] == before[keys[0]] and now[keys[1]] == before[keys[1]]
    assert now[keys[2]]["status"] == "ok"


@pytest.mark.slow  # runs a sweep
def test_parent_killed_mid_sweep_then_resume_runs_only_the_rest(tmp_path):
    path = tmp_path / "r.json"
    args = ["--engines", "numpy", "--task", "forward", *TINY, "--shape", "T=6,B=2,I=3,H=4",
            "--shape", "T=7,B=2,I=3,H=4"]
    proc = bench_process(tmp_path, *args, env={FAULT_VAR: "hang@T=6,"})
    wait_for_results(path, 1, proc)                    # T=5 done, T=6 hangs
    hung = hung_worker(proc)
    try:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        gone, alive = psutil.wait_procs(hung, timeout=20)
        assert not alive, "an orphaned hung worker gives up by itself"
    finally:
        for child in hung:
            if child.is_running():
                child.kill()
    first = res.load(path)
    assert [m.status for m in first.results] == ["ok"]
    done = first.results[0].to_json()

    proc = bench_process(tmp_path, "--resume", *args)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    doc = res.load(path)
    assert [m.shape["T"] for m in doc.results] == [5, 6, 7]
    assert all(m.status == "ok" for m in doc.results)
    assert doc.results[0].to_json() == done            # not measured again


@pytest.mark.slow  # runs a sweep
def test_sigterm_stops_the_worker_and_keeps_what_finished(tmp_path):
    path = tmp_path / "r.json"
    proc = bench_process(tmp_path, "--engines", "numpy", "--task", "forward", *TINY,
                         "--shape", "T=6,B=2,I=3,H=4",
                         env={FAULT_VAR: "hang@T=6,"})
    wait_for_results(path, 1, proc)
    children = hung_worker(proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive
    assert [m.status for m in res.load(path).results] == ["ok"]
    assert json.loads(path.read_text())["schema"] == res.SCHEMA


def test_workers_allocate_gpu_memory_on_demand_unless_the_user_chose(monkeypatch):
    """JAX preallocates 75 % of a GPU at start: two workers at once left torch none (H200)."""
    from rnnperf import flags
    from rnnperf.bench.process import XLA_PREALLOCATE_VAR, worker_env
    config = flags.load(flags=["engine=jax,device=cuda"])
    monkeypatch.delenv(XLA_PREALLOCATE_VAR, raising=False)
    assert worker_env(config)[XLA_PREALLOCATE_VAR] == "false"
    monkeypatch.setenv(XLA_PREALLOCATE_VAR, "true")
    assert worker_env(config)[XLA_PREALLOCATE_VAR] == "true"
