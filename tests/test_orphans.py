"""No worker outlives its parent: SIGKILL or SIGHUP the parent of a busy worker, and within 2 s
nothing it started is left (rnnperf.bench.worker.die_with_parent, rnnperf.bench.process).

The worker is kept busy by the test-only ``busy`` fault (rnnperf.bench.faults): it computes in
long C calls that hold the GIL and never looks at its parent, as a worker deep in a measurement or
a compile does. Each test prints how long the worker took to die (``pytest -s`` shows it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from rnnperf.bench.faults import FAULT_VAR

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--shape", "T=5,B=2,I=3,H=4", "--task", "forward"]
SWEEP = [*TINY, "--rounds", "5", "--min-time", "0.01", "--no-progress"]
BUSY_CPU_S = 0.5          # a worker with this much CPU time is past its start, in the busy loop
DEADLINE_S = 2.0          # the bound from the parent's death to no worker left


def default_sighup():
    signal.signal(signal.SIGHUP, signal.SIG_DFL)   # a shell or nohup may have left it ignored


def start_parent(tmp_path, argv, fault):
    env = {**os.environ, FAULT_VAR: fault, "HOME": str(tmp_path / "home"),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    log = open(tmp_path / "parent.err", "w")
    try:
        return subprocess.Popen([sys.executable, *argv], env=env, cwd=tmp_path,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                                preexec_fn=default_sighup)
    finally:
        log.close()


def busy_worker(proc, tmp_path, limit=60.0):
    """The parent's worker once it is busy, and everything the parent has started by then."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        assert proc.poll() is None, (tmp_path / "parent.err").read_text()[-3000:]
        try:
            family = psutil.Process(proc.pid).children(recursive=True)
            for child in family:
                if "rnnperf.bench.worker" in " ".join(child.cmdline()) and \
                        sum(child.cpu_times()[:2]) >= BUSY_CPU_S:
                    return child, family
        except psutil.NoSuchProcess:
            pass                                       # a child came and went: look again
        time.sleep(0.05)
    pytest.fail(f"no busy worker in {limit} s")


def dead(p: psutil.Process) -> bool:
    try:
        return p.status() == psutil.STATUS_ZOMBIE      # exited; its new parent has not reaped it
    except psutil.NoSuchProcess:
        return True


def kill_parent_and_time_the_worker(proc, tmp_path, sig) -> float:
    """Send ``sig`` to the parent, then the seconds until every process it had started is dead
    (asserting that is within DEADLINE_S); survivors are killed afterwards whatever happens."""
    worker, family = busy_worker(proc, tmp_path)
    try:
        proc.send_signal(sig)
        killed = time.monotonic()
        proc.wait(timeout=30)
        while not all(dead(p) for p in family) and time.monotonic() - killed < DEADLINE_S + 1:
            time.sleep(0.005)
        took = time.monotonic() - killed
        alive = [p for p in family if not dead(p)]
        assert not alive, f"alive {took:.2f} s after {sig.name} to the parent: {alive}"
        assert took <= DEADLINE_S, f"the worker took {took:.2f} s to die"
        print(f"\n{sig.name} to the parent: worker {worker.pid} dead after {took * 1000:.0f} ms")
        return took
    finally:
        for p in family:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGHUP], ids=["SIGKILL", "SIGHUP"])
def test_bench_worker_dies_with_its_parent(tmp_path, sig):
    proc = start_parent(tmp_path, ["-m", "rnnperf", "bench", "--engines", "numpy",
                                   "--out", str(tmp_path / "r.json"), *SWEEP],
                        fault="busy@T=5,")
    kill_parent_and_time_the_worker(proc, tmp_path, sig)
    # SIGHUP's default action (the terminal closed), or a handler that stops the sweep
    assert proc.returncode in (-sig, 130)


@pytest.mark.parametrize("command", [
    ["parity", "--engines", "numpy"],
    ["warm", "--engines", "numpy", *TINY],
    ["tune", "--engines", "numpy", "--out", "best.theanorc", *SWEEP],
], ids=lambda argv: argv[0])
def test_every_command_s_worker_dies_with_its_parent(tmp_path, command):
    job = "warm" if command[0] == "warm" else "parity"   # tune checks parity first
    proc = start_parent(tmp_path, ["-m", "rnnperf", *command], fault=f"busy@worker:{job}")
    kill_parent_and_time_the_worker(proc, tmp_path, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL


LAUNCHED = """
import sys
from rnnperf import flags
from rnnperf.bench import process
process.worker_python = lambda config: sys.argv[1]
process.run_worker("info", flags.load(flags="engine=numpy", use_env=False), {}, timeout=120)
"""


def test_a_worker_behind_a_launcher_watches_the_pipe(tmp_path):
    """A launcher that does not exec sits between the parent and the worker, so the kernel's
    parent-death signal would watch the launcher: the worker sees that and watches its pipe
    instead (the path every non-Linux worker takes), and kills its process group, the launcher
    included, when the parent is gone."""
    launcher = tmp_path / "launcher.sh"
    launcher.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        "{sys.executable}" "$@"
        exit $?
        """))
    launcher.chmod(0o755)
    proc = start_parent(tmp_path, ["-c", LAUNCHED, str(launcher)], fault="busy@worker:info")
    kill_parent_and_time_the_worker(proc, tmp_path, signal.SIGKILL)
