"""The parent's side of the parent/worker split: start a worker process, read its one answer.

Theano-family engines read their flags when imported, so a profile can only be honoured by a
fresh process (pyperf re-runs itself with ``--worker`` for the same reason). :func:`run_worker`
never imports an engine: it starts ``python -m rnnperf.bench.worker JOB`` (:mod:`.worker`) with
the profile in the environment (``RNNPERF_WORKER_FLAGS``) and the thread pins set, sends the
payload as JSON on stdin and reads one JSON object back from the last stdout line that carries
:data:`MARKER`. Anything else a library prints goes to stderr, so it cannot corrupt the answer.

A worker never outlives its parent, whatever killed the parent (SIGKILL, the terminal's SIGHUP):
a worker measuring beside a ``--resume`` would skew its numbers. :func:`run_worker` hands the
worker its pid (``RNNPERF_PARENT_PID``) and the read end of a pipe whose write end only this
process holds (``RNNPERF_PARENT_FD``); :func:`rnnperf.bench.worker.die_with_parent` arms the
kernel's parent-death signal on Linux and watches the pipe elsewhere.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .results import STATUSES

MARKER = "RNNPERF-RESULT "
FLAGS_VAR = "RNNPERF_WORKER_FLAGS"
#: the parent's pid, and the fd of the pipe read end the worker gets (EOF: the parent is gone)
PARENT_PID_VAR = "RNNPERF_PARENT_PID"
PARENT_FD_VAR = "RNNPERF_PARENT_FD"
XLA_PREALLOCATE_VAR = "XLA_PYTHON_CLIENT_PREALLOCATE"
#: the variables BLAS and OpenMP pools read their thread count from, when they load
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS")


@dataclasses.dataclass
class WorkerResult:
    status: str                 # ok | failed | timeout | unavailable
    data: dict
    error: str | None
    exit_code: int | None
    wall_s: float
    stderr_tail: str = ""


_live: set[subprocess.Popen] = set()


def kill_all_workers() -> None:
    """Stop every running worker (the parent got Ctrl-C or SIGTERM)."""
    for proc in list(_live):
        _kill(proc)


@contextlib.contextmanager
def workers_die_with_parent_signals():
    """Inside: Ctrl-C or SIGTERM kills the running workers at once, then raises KeyboardInterrupt
    (while :func:`run_worker` still holds the process, so no worker outlives the sweep)."""
    def stop(signum, frame):
        kill_all_workers()
        raise KeyboardInterrupt
    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def set_thread_env(threads: int | None, env: dict) -> None:
    """Pin BLAS/OpenMP threads through the environment, before any library reads it."""
    if threads:
        for var in THREAD_VARS:
            env[var] = str(threads)


def worker_env(config, extra_env: dict | None = None) -> dict:
    env = dict(os.environ)
    env.pop("THEANO_FLAGS", None)     # the parent already merged every source into the profile
    env.pop("RNNPERF_FLAGS", None)
    env[FLAGS_VAR] = config.profile()
    set_thread_env(config.threads, env)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    # JAX takes 75 % of a GPU's memory when it starts: two workers at once (parity --jobs) then
    # leave a torch worker none (seen on an H200: CUDA out of memory). Allocate on demand, unless
    # the user chose otherwise.
    env.setdefault(XLA_PREALLOCATE_VAR, "false")
    if extra_env:
        env.update(extra_env)
    return env


def worker_python(config) -> str:
    if config.engine == "theano":
        from ..host import legacy_python
        python = legacy_python()
        if python:
            return python
    return sys.executable


def spawn(cmd: list[str], env: dict, stderr=subprocess.PIPE):
    """Start a worker in its own session with pipes on stdin and stdout; returns it and the write
    end of its parent-death pipe, which the caller closes once the worker is gone.

    The worker dies with this process (see the module docstring). Its parent-death signal fires
    when the *thread* that started it exits: the caller's, which must outlive the worker. The
    pipe's ends are non-inheritable (os.pipe); pass_fds makes the read end inheritable for this
    worker alone, and only we hold the write end."""
    watch_r, watch_w = os.pipe()
    env = {**env, PARENT_PID_VAR: str(os.getpid()), PARENT_FD_VAR: str(watch_r)}
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=stderr, env=env, text=True,
                                start_new_session=True, pass_fds=(watch_r,))
    except BaseException:
        os.close(watch_w)
        raise
    finally:
        os.close(watch_r)
    return proc, watch_w


def run_worker(job: str, config, payload: dict, timeout: float | None = None,
               extra_env: dict | None = None) -> WorkerResult:
    """Run one job in a fresh worker process and return what it reported, whatever happened."""
    cmd = [worker_python(config), "-m", "rnnperf.bench.worker", job]
    start = time.perf_counter()
    proc, watch_w = spawn(cmd, worker_env(config, extra_env))
    try:
        _live.add(proc)
        out, err = proc.communicate(json.dumps(payload), timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        out, err = proc.communicate()
        return WorkerResult("timeout", {}, f"worker passed the {timeout:g} s timeout and was "
                            "killed", None, time.perf_counter() - start, _tail(err))
    except BaseException:          # Ctrl-C, SIGTERM turned into an exception: no orphans
        _kill(proc)
        _reap(proc)
        raise
    finally:
        _live.discard(proc)
        os.close(watch_w)            # the worker has exited (or was killed): nothing to watch
    wall = time.perf_counter() - start
    answer = None
    for line in reversed(out.splitlines()):
        if line.startswith(MARKER):
            answer = parse_answer(line)
            break
    if not isinstance(answer, dict):
        return no_answer(proc.returncode, err, wall)
    return answered(answer, proc.returncode, wall, err)


def parse_answer(line: str) -> dict | None:
    """The JSON object after :data:`MARKER` on a worker's answer line, or None."""
    try:
        answer = json.loads(line[len(MARKER):])
    except json.JSONDecodeError:
        return None
    return answer if isinstance(answer, dict) else None


def answered(answer: dict, code: int | None, wall: float, err: str) -> WorkerResult:
    status = answer.get("status", "failed")
    if status not in STATUSES:
        status = "failed"
    return WorkerResult(status, answer.get("data") or {}, answer.get("error"), code, wall,
                        _tail(err))


def no_answer(code: int | None, err: str, wall: float) -> WorkerResult:
    """A worker that ended without an answer line: why, in one line."""
    if code is not None and code < 0:
        why = f"worker killed by signal {signal.Signals(-code).name}"
    elif code:
        why = f"worker crashed with exit code {code}: {_last_line(err) or 'no message'}"
    else:
        why = "worker returned no result (garbage on stdout)"
    return WorkerResult("failed", {}, why, code, wall, _tail(err))


def _reap(proc: subprocess.Popen) -> None:
    """Close a killed worker's pipes and wait for it, so an interrupted caller that goes on
    (the in-process API, a library user) keeps no zombie and no open descriptors."""
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    with contextlib.suppress(Exception):
        proc.wait(timeout=5)


def _tail(text: str, n: int = 2000) -> str:
    return (text or "")[-n:]


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
