"""``rnnperf bench`` on Dask: a real scheduler and real workers, one killed mid-measurement.

The cluster is a ``dask scheduler`` and ``dask worker`` processes started here on localhost (no
nanny, so SIGKILL to a worker's pid is that worker gone for good). The measurements are
engine=numpy at tiny shapes; the one to be lost is held busy by the test-only fault
``RNNPERF_FAULT=busy@T=7,`` (rnnperf.bench.faults), set only in the worker that will be killed,
so its rerun elsewhere ends normally. Two workers on one host share the host's cores, so the
parent must keep one measurement at a time there (rnnperf.bench.runners).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

pytest.importorskip("distributed", reason="Dask scale-out needs dask[distributed] "
                                          "(scripts/bootstrap.sh installs it)")

from rnnperf import cli  # noqa: E402
from rnnperf.bench import plan, results, runners, sweep  # noqa: E402
from rnnperf.bench.faults import FAULT_VAR  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FAST = ["--task", "forward", "--rounds", "5", "--min-time", "0.01", "--no-progress",
        "--timeout", "120", "--engines", "numpy"]
BUSY = {FAULT_VAR: "busy@T=7,"}        # the T=7 point computes until its worker is killed
LIMIT_S = 90.0


def env_with(extra=None) -> dict:
    env = {**os.environ, **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    for var in ("THEANO_FLAGS", "RNNPERF_FLAGS", "THEANORC", "RNNPERF_RC", FAULT_VAR):
        if var not in (extra or {}):
            env.pop(var, None)
    return env


class Cluster:
    """A scheduler and workers as subprocesses; :meth:`close` leaves nothing they started."""

    def __init__(self, tmp: Path):
        self.tmp, self.procs = tmp, []
        self.file = tmp / "scheduler.json"
        self.scheduler = self.spawn("dask_scheduler", "--port", "0", "--no-dashboard",
                                    "--scheduler-file", str(self.file))
        deadline = time.monotonic() + LIMIT_S
        while not self.file.exists() or not self.file.read_text().strip():
            assert self.scheduler.poll() is None, self.log("dask_scheduler")
            assert time.monotonic() < deadline, "the scheduler wrote no file"
            time.sleep(0.05)
        self.address = json.loads(self.file.read_text())["address"]

    def spawn(self, what: str, *argv, env=None) -> subprocess.Popen:
        log = open(self.tmp / f"{what}-{len(self.procs)}.log", "w")
        with log:
            proc = subprocess.Popen([sys.executable, "-m", f"distributed.cli.{what}",
                                     "--host", "127.0.0.1", *argv], env=env_with(env),
                                    cwd=self.tmp, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def log(self, what: str) -> str:
        return "\n".join(p.read_text()[-2000:] for p in self.tmp.glob(f"{what}-*.log"))

    def worker(self, env=None) -> tuple[subprocess.Popen, str]:
        """A worker with ``bench=1``, once the scheduler knows it: (process, address)."""
        from distributed import Client
        before = set(self.workers())
        proc = self.spawn("dask_worker", "--scheduler-file", str(self.file), "--nthreads", "1",
                          "--no-nanny", "--no-dashboard", "--resources", "bench=1",
                          "--local-directory", str(self.tmp / "scratch"), env=env)
        with Client(self.address, timeout=LIMIT_S) as client:
            client.wait_for_workers(len(before) + 1, timeout=LIMIT_S)
        new = set(self.workers()) - before
        assert len(new) == 1, self.log("dask_worker")
        return proc, new.pop()

    def workers(self) -> dict:
        from distributed import Client
        with Client(self.address, timeout=LIMIT_S) as client:
            return client.scheduler_info(n_workers=-1)["workers"]

    def close(self) -> None:
        family = []
        for proc in self.procs:
            try:
                family += psutil.Process(proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                pass
        for p in [*self.procs, *family]:
            try:
                p.kill()
            except (ProcessLookupError, psutil.NoSuchProcess):
                pass
        for proc in self.procs:
            proc.wait(timeout=30)
        psutil.wait_procs(family, timeout=10)


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.close()


def measuring(proc) -> list[psutil.Process]:
    """The rnnperf measurement workers a Dask worker process has running now."""
    try:
        kids = psutil.Process(proc.pid).children(recursive=True)
        return [k for k in kids if "rnnperf.bench.worker" in " ".join(k.cmdline())]
    except psutil.NoSuchProcess:
        return []


def wait_for(what: str, check, proc=None, limit=LIMIT_S):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        if proc is not None:
            assert proc.poll() is None, f"the sweep ended first while waiting for {what}"
        time.sleep(0.02)
    pytest.fail(f"no {what} in {limit} s")


def start_bench(tmp: Path, address: str, *shapes) -> subprocess.Popen:
    argv = [sys.executable, "-m", "rnnperf", "bench", "--scheduler", address, "--out",
            str(tmp / "r.json"), *FAST, *(a for s in shapes for a in ("--shape", s))]
    with open(tmp / "bench.log", "w") as log:
        return subprocess.Popen(argv, env=env_with(), cwd=tmp, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT)


def test_killed_worker_s_point_reruns_on_the_spare_one_at_a_time(cluster, tmp_path):
    """SIGKILL the worker holding a measurement: the point reruns on the host's other worker,
    every point ends ok (exit 0), every one records the worker and host that measured it, and
    the spare never measured beside the busy one (one measurement per machine)."""
    doomed, doomed_addr = cluster.worker(env=BUSY)
    bench = start_bench(tmp_path, cluster.address, "T=7,B=2,I=3,H=4", "T=5,B=2,I=3,H=4",
                        "T=6,B=2,I=3,H=4")
    try:
        busy = wait_for("busy measurement", lambda: measuring(doomed), bench)
        spare, spare_addr = cluster.worker()
        seen_spare = []
        deadline = time.monotonic() + 2.5      # > the runner's 1 s look at the hosts
        while time.monotonic() < deadline:
            seen_spare += measuring(spare)
            time.sleep(0.02)
        assert not seen_spare, "two measurements at once on one host"
        assert bench.poll() is None and all(p.is_running() for p in busy)
        doomed.send_signal(signal.SIGKILL)
        assert bench.wait(timeout=LIMIT_S) == 0, (tmp_path / "bench.log").read_text()[-3000:]
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
    gone, alive = psutil.wait_procs(busy, timeout=10)
    assert not alive, "the killed worker's measurement outlived it"
    doc = results.load(tmp_path / "r.json")
    assert sorted(m.shape["T"] for m in doc.results) == [5, 6, 7]
    assert all(m.status == "ok" and m.times_s for m in doc.results)
    assert all(m.host == socket.gethostname() for m in doc.results)
    assert {m.extra["dask_worker"] for m in doc.results} == {spare_addr}   # 7 reran there
    assert doomed_addr != spare_addr


def test_only_worker_lost_never_hangs_the_sweep(cluster, tmp_path):
    """No worker left at all: the lost point is retried, then recorded unavailable with the
    reason once no host came back for ``lost_after``; what finished is kept."""
    from distributed import Client
    doomed, _ = cluster.worker(env=BUSY)
    jobs = plan.plan(plan.profiles(None, "numpy", None, None, None),
                     [plan.parse_shape("T=5,B=2,I=3,H=4"), plan.parse_shape("T=7,B=2,I=3,H=4")],
                     ["forward"])
    got = {}
    killer = threading.Thread(target=lambda: (wait_for("busy measurement",   # after T=5's
                                                       lambda: 5 in got and measuring(doomed)),
                                              doomed.send_signal(signal.SIGKILL)), daemon=True)
    killer.start()
    with Client(cluster.address, timeout=LIMIT_S) as client:
        runners.run_dask(jobs, sweep.measure, sweep.Settings(min_time=0.01, rounds=5),
                         lambda job, m: got.__setitem__(job.shape["T"], m), lambda text: None,
                         client, lost_after=1.0)
    killer.join(timeout=1)
    assert got[5].status == "ok" and got[5].extra["dask_worker"]
    assert got[7].status == "unavailable" and "no Dask worker" in got[7].error
    assert got[7].host is None


def test_lost_twice_is_failed_and_resume_reruns_it():
    """A point lost twice is failed with the reason (exit 1), yet ``--resume`` reruns it."""
    job = plan.plan(plan.profiles(None, "numpy", None, None, None),
                    [plan.parse_shape("T=5,B=2,I=3,H=4")], ["forward"])[0]
    got = []
    sweep_ = runners._DaskSweep([], None, None, lambda j, m: got.append(m), None, None, 1.0)
    sweep_.lost(job, 0, "KilledWorker: gone")
    assert not got and list(sweep_.queue) == [(job, 1)]
    sweep_.lost(job, 1, "KilledWorker: gone again")
    (m,) = got
    assert m.status == "failed" and "lost twice" in m.error and m.extra["dask_lost"] == 2
    assert sweep.exit_code([m]) == 1
    state = sweep._SweepState(results.ResultsDoc(), None, sweep.Settings(), ())
    assert state.passes_done(m) == 0
    assert state.passes_done(job.blank(status="failed", error="NaN")) == 1


def test_dask_local_starts_one_single_threaded_worker(tmp_path, monkeypatch):
    """...whose measurements still run on every core: Dask's nanny sets OMP_NUM_THREADS=1 and
    friends for its workers (and a LocalCluster leaves them set in its maker's environment)."""
    from rnnperf.bench.process import THREAD_VARS
    for var in THREAD_VARS:
        monkeypatch.delenv(var, raising=False)
    seen = {}
    real = runners.connect

    def spy(scheduler, timeout):
        client, local = real(scheduler, timeout)
        seen.update(client.scheduler_info(n_workers=-1)["workers"])
        return client, local
    monkeypatch.setattr(runners, "connect", spy)
    code = cli.main(["bench", "--dask", "local", "--out", str(tmp_path / "r.json"), *FAST,
                     "--shape", "T=5,B=2,I=3,H=4"])
    assert code == 0
    assert [(w["nthreads"], w["resources"]) for w in seen.values()] == [(1, {"bench": 1})]
    (m,) = results.load(tmp_path / "r.json").results
    assert m.status == "ok" and m.extra["dask_worker"] in seen
    assert not any(var in os.environ for var in THREAD_VARS)       # nothing left behind here
    if hasattr(os, "sched_getaffinity"):
        assert m.threads_actual == len(os.sched_getaffinity(0))    # the default: every core


def mute_listener():
    """A port that accepts connections and never answers (a handshake that would hang)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    return s


@pytest.mark.parametrize("address, code", [
    ("nonsense", 2),                          # malformed: bad usage
    ("tcp://127.0.0.1:notaport", 2),
    ("MUTE", 3),                              # answers nothing: unavailable, after the timeout
    ("CLOSED", 3),                            # nobody listens
])
def test_bad_or_unreachable_scheduler_is_one_line(tmp_path, capsys, address, code):
    with mute_listener() as s:
        port = s.getsockname()[1]
        if address == "CLOSED":
            s.close()
        address = {"MUTE": f"tcp://127.0.0.1:{port}",
                   "CLOSED": f"tcp://127.0.0.1:{port}"}.get(address, address)
        got = cli.main(["bench", "--scheduler", address, "--connect-timeout", "1",
                        "--out", str(tmp_path / "r.json"), *FAST, "--shape", "T=5,B=2,I=3,H=4"])
    err = capsys.readouterr().err
    assert got == code
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert address in err
    assert not (tmp_path / "r.json").exists()
