"""One worker per compiled function (issue #22): the ``serve`` worker, the tune's shared workers.

Real workers with ``engine=numpy`` at a tiny shape (each request takes well under a second): one
process answers several requests and keeps its step; a request past its timeout, or a worker
that dies, is answered in one line and the worker is gone; a tune measures every ``threads=`` of
a function in one worker, and a worker killed mid-rung costs only a re-run of its point.
"""

from __future__ import annotations

import os
import signal

import pytest

from rnnperf import cli, flags
from rnnperf.bench import plan, results
from rnnperf.bench.faults import FAULT_VAR
from rnnperf.bench.shared_worker import SharedWorker
from rnnperf.bench.sweep import Settings, bench_payload, measurement_from
from rnnperf.tune import space as tune_space
from rnnperf.tune.halving import schedule
from rnnperf.tune.workers import SharedWorkers, function_key

SHAPE = {"T": 4, "B": 2, "I": 3, "H": 4, "O": 2}
FAST = Settings(min_time=0.001, rounds=5, timeout=120)
TUNE = ["--shape", "T=4,B=2,I=3,H=4", "--min-time", "0.001", "--rounds", "5", "--no-progress",
        "--jobs", "0"]


def job(threads: int = 1, engine: str = "numpy") -> plan.Job:
    config = flags.load(flags=[f"engine={engine},threads={threads}"], use_env=False)
    return plan.Job(config, dict(SHAPE), "train")


def test_one_process_answers_many_requests_and_keeps_its_step():
    one, two = job(1), job(2)
    worker = SharedWorker(flags.load(flags=["engine=numpy,threads=2"], use_env=False))
    try:
        pid = worker.proc.pid
        first = measurement_from(one, worker.ask("bench", one.config,
                                                 {**bench_payload(one, FAST), "shared": True},
                                                 timeout=120))
        parity = worker.ask("parity", two.config, {}, timeout=120)
        second = measurement_from(two, worker.ask("bench", two.config,
                                                  {**bench_payload(two, FAST), "shared": True},
                                                  timeout=120))
        assert worker.alive and worker.proc.pid == pid and worker.requests == 3
    finally:
        worker.close()
    assert first.status == second.status == parity.status == "ok", (first.error, second.error)
    assert first.extra["worker"] == {"shared": True, "function": "built"}
    assert second.extra["worker"] == {"shared": True, "function": "kept"}
    assert second.compile_s == first.compile_s          # the build's, not a second one
    assert (first.pools["cpus"], second.pools["cpus"]) == (1, min(2, os.cpu_count()))
    assert not worker.alive


@pytest.mark.parametrize("fault, status, says", [("hang", "timeout", "timeout"),
                                                 ("crash", "failed", "exit code 70"),
                                                 ("sigkill", "failed", "SIGKILL")])
def test_a_request_that_hangs_or_kills_its_worker_is_answered_in_one_line(fault, status, says,
                                                                         monkeypatch):
    monkeypatch.setenv(FAULT_VAR, f"{fault}@worker:bench")
    one = job(1)
    worker = SharedWorker(one.config)
    try:
        out = worker.ask("bench", one.config, bench_payload(one, FAST), timeout=3)
    finally:
        worker.close()
    assert out.status == status and says in out.error and "\n" not in out.error
    assert not worker.alive


def test_threads_share_a_function_where_the_pools_resize_at_run_time():
    assert function_key(job(1)) == function_key(job(2))                   # numpy: threadpoolctl
    assert function_key(job(1, "jax")) != function_key(job(2, "jax"))     # XLA: at start


def tune_doc(tmp_path, *args):
    (tmp_path / "space.toml").write_text('[space]\nengine = ["numpy"]\nthreads = [1, 2]\n'
                                         'T = [4, 5, 6]\n')
    out = tmp_path / "best.theanorc"
    code = cli.main(["tune", *TUNE, "--space", str(tmp_path / "space.toml"), "--out", str(out),
                     *args])
    return code, results.load(out.with_suffix(".sweep.json"))


def test_a_halving_tune_starts_one_worker_per_function(tmp_path):
    code, doc = tune_doc(tmp_path)
    assert code == 0
    assert doc.settings["workers"] == {"shared": True, "started": 3}   # 6 points, 3 functions
    assert all(m.status == "ok" and m.extra["worker"]["shared"] for m in doc.results)


def test_a_shared_worker_killed_mid_rung_costs_a_re_run_of_its_point(tmp_path, monkeypatch):
    real_ask = SharedWorker.ask
    killed: list[str] = []

    def ask(self, name, config, payload, timeout):
        if name == "bench" and not killed and config.threads == 2:
            killed.append(config.profile())
            os.killpg(self.proc.pid, signal.SIGKILL)        # dead before it answers
        return real_ask(self, name, config, payload, timeout)
    monkeypatch.setattr(SharedWorker, "ask", ask)
    code, doc = tune_doc(tmp_path)
    assert code == 0 and killed
    assert all(m.status == "ok" for m in doc.results)
    retried = [r["retried"] for m in doc.results for r in m.extra["halving"]["rungs"]
               if "retried" in r]                       # the rung it happened at says so
    assert len(retried) == 1 and "shared worker lost" in retried[0] and "SIGKILL" in retried[0]


def test_the_strategies_measure_the_winner_the_same_way(tmp_path):
    """Halving's last rung times with the user's settings, in the same kind of worker as the
    exhaustive sweep: shared, the function loaded once, parity checked in that worker."""
    final = Settings(min_time=0.2, rounds=9, warmup=2, timeout=60, processes=1)
    assert schedule(12, final)[-1].settings == final
    code, doc = tune_doc(tmp_path, "--strategy", "exhaustive")
    assert code == 0
    assert all(m.extra["worker"]["shared"] and m.extra["parity"]["status"] == "ok"
               for m in doc.results)


def test_the_pool_closes_what_no_rung_needs():
    jobs = tune_space.expand({"engine": ["numpy"], "threads": ["1"], "T": ["4", "5"]},
                             dict(SHAPE), "train", None, None)
    with SharedWorkers(jobs, keep_alive=1) as pool:
        first, second = (pool.worker_for(j) for j in jobs)
        assert not first.alive and second.alive             # at most keep_alive at once
        pool.keep_only(jobs[:1])
        assert not second.alive and not pool.workers


def cpus_of_every_thread(pid: int) -> set[str]:
    out = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as fh:
                out |= {line.split()[1] for line in fh if line.startswith("Cpus_allowed_list")}
        except OSError:
            pass
    return out


@pytest.mark.skipif((os.cpu_count() or 1) < 2 or not os.path.isdir("/proc/self/task"),
                    reason="needs two CPUs and Linux's /proc")
def test_a_pool_started_under_threads_1_widens_for_threads_2():
    """Every thread moves with each request: a BLAS pool started while the worker ran on one
    CPU (threads=1 first, as a tune's order has it) must not stay there for threads=2."""
    one, two = job(1), job(2)
    worker = SharedWorker(flags.load(flags=["engine=numpy,threads=2"], use_env=False))
    try:
        first = worker.ask("bench", one.config, {**bench_payload(one, FAST), "shared": True}, 120)
        narrow = cpus_of_every_thread(worker.proc.pid)
        second = worker.ask("bench", two.config, {**bench_payload(two, FAST), "shared": True},
                            120)
        wide = cpus_of_every_thread(worker.proc.pid)
    finally:
        worker.close()
    assert first.status == second.status == "ok"
    assert len(narrow) == 1 and len(wide) == 1 and narrow != wide     # one set for all threads
