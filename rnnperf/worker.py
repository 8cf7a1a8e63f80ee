"""Parent/worker split: every engine runs in a process of its own.

Theano-family engines read their flags when imported, so a profile can only be honoured by a
fresh process (pyperf re-runs itself with ``--worker`` for the same reason). The parent calls
:func:`run_worker`, which never imports an engine: it starts ``python -m rnnperf.worker`` with the
profile in the environment (``RNNPERF_WORKER_FLAGS``) and the thread pins set, sends the job as
JSON on stdin and reads one JSON object back from the last stdout line that carries
:data:`MARKER`. Anything else a library prints goes to stderr, so it cannot corrupt the answer.

Jobs are registered by name (``JOBS``) as ``module:function``; a job takes ``(config, payload)``
and returns a JSON-serialisable dict.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

MARKER = "RNNPERF-RESULT "
FLAGS_VAR = "RNNPERF_WORKER_FLAGS"

JOBS = {
    "parity": "rnnperf.parity:worker_job",
    "bench": "rnnperf.harness:worker_job",
    "warm": "rnnperf.warm:worker_job",
    "info": "rnnperf.worker:info_job",
}

STATUSES = ("ok", "failed", "timeout", "unavailable")


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


def worker_env(config, extra_env: dict | None = None) -> dict:
    from .engines.base import set_thread_env
    env = dict(os.environ)
    env.pop("THEANO_FLAGS", None)     # the parent already merged every source into the profile
    env.pop("RNNPERF_FLAGS", None)
    env[FLAGS_VAR] = config.profile()
    set_thread_env(config.threads, env)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    if extra_env:
        env.update(extra_env)
    return env


def worker_python(config) -> str:
    if config.engine == "theano":
        from .legacy import legacy_python
        python = legacy_python()
        if python:
            return python
    return sys.executable


def run_worker(job: str, config, payload: dict, timeout: float | None = None,
               extra_env: dict | None = None) -> WorkerResult:
    """Run one job in a fresh worker process and return what it reported, whatever happened."""
    cmd = [worker_python(config), "-m", "rnnperf.worker", job]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=worker_env(config, extra_env),
                            text=True, start_new_session=True)
    _live.add(proc)
    try:
        out, err = proc.communicate(json.dumps(payload), timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        out, err = proc.communicate()
        return WorkerResult("timeout", {}, f"worker passed the {timeout:g} s timeout and was "
                            "killed", None, time.perf_counter() - start, _tail(err))
    except BaseException:          # Ctrl-C, SIGTERM turned into an exception: no orphans
        _kill(proc)
        raise
    finally:
        _live.discard(proc)
    wall = time.perf_counter() - start
    answer = None
    for line in reversed(out.splitlines()):
        if line.startswith(MARKER):
            try:
                answer = json.loads(line[len(MARKER):])
            except json.JSONDecodeError:
                answer = None
            break
    code = proc.returncode
    if not isinstance(answer, dict):
        if code is not None and code < 0:
            why = f"worker killed by signal {signal.Signals(-code).name}"
        elif code:
            why = f"worker crashed with exit code {code}: {_last_line(err) or 'no message'}"
        else:
            why = "worker returned no result (garbage on stdout)"
        return WorkerResult("failed", {}, why, code, wall, _tail(err))
    status = answer.get("status", "failed")
    if status not in STATUSES:
        status = "failed"
    return WorkerResult(status, answer.get("data") or {}, answer.get("error"), code, wall,
                        _tail(err))


def _tail(text: str, n: int = 2000) -> str:
    return (text or "")[-n:]


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


# --- the worker side -----------------------------------------------------------------------------


def info_job(config, payload):
    """Import the engine and report what it is (versions, devices): used by `rnnperf engines`."""
    from .engines import load
    cls = load(config.engine)
    return {"versions": cls.versions()}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Keep the real stdout for our one answer line; everything else printed goes to stderr.
    real_stdout = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    from . import flags
    from .errors import RnnperfError, Unavailable, one_line

    def answer(status, data=None, error=None, code=0):
        real_stdout.write(MARKER + json.dumps({"status": status, "data": data or {},
                                               "error": error}, default=_jsonable) + "\n")
        real_stdout.flush()
        return code

    if len(argv) != 1 or argv[0] not in JOBS:
        return answer("failed", error=f"unknown worker job {argv!r}", code=2)
    try:
        payload = json.loads(sys.stdin.read() or "{}")
        config = flags.load(flags=os.environ.get(FLAGS_VAR, ""), use_env=False)
        module, func = JOBS[argv[0]].split(":")
        data = getattr(importlib.import_module(module), func)(config, payload)
        return answer("ok", data)
    except Unavailable as exc:
        return answer("unavailable", error=one_line(exc), code=exc.exit_code)
    except RnnperfError as exc:
        return answer("failed", error=one_line(exc), code=exc.exit_code)
    except Exception as exc:  # a bug or a library failure: one line back, traceback on stderr
        import traceback
        traceback.print_exc()
        return answer("failed", error=one_line(exc), code=1)


def _jsonable(value):
    import numpy as np
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
