"""The worker process: ``python -m rnnperf.bench.worker JOB``, one job, one answer line.

Started by :func:`rnnperf.bench.process.run_worker` with the profile in ``RNNPERF_WORKER_FLAGS``
and the payload as JSON on stdin. Jobs are registered by name (:data:`JOBS`) as
``module:function``; a job takes ``(config, payload)`` and returns a JSON-serialisable dict, which
goes back on the real stdout after :data:`~rnnperf.bench.process.MARKER` (everything else a
library prints goes to stderr). The legacy Theano venv's Python 3.10 runs this module too.

A worker dies with its parent (:func:`die_with_parent`, the first thing :func:`main` does): a
worker orphaned by a killed parent would go on measuring beside the next run and skew it.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import threading

from .faults import inject, worker_fault
from .process import FLAGS_VAR, MARKER, PARENT_FD_VAR, PARENT_PID_VAR

PR_SET_PDEATHSIG = 1                     # <linux/prctl.h>
#: the job that keeps a worker for many requests (:func:`serve`)
SERVE = "serve"

JOBS = {
    "parity": "rnnperf.bench.parity:worker_job",
    "bench": "rnnperf.bench.step_job:worker_job",
    "warm": "rnnperf.bench.warm:worker_job",
    "info": "rnnperf.bench.worker:info_job",
    "cell": "rnnperf.bench.cell_check:worker_job",
}


def info_job(config, payload):
    """Import the engine and report what it is (versions, devices): used by `rnnperf engines`."""
    from ..engines import load
    cls = load(config.engine, config)
    return {"versions": cls.versions()}


def die_with_parent(pdeathsig: bool = True) -> str:
    """Make this worker die within moments of the process that started it, whatever kills that.

    Only for a worker started by :func:`~rnnperf.bench.process.run_worker` (it sets
    ``RNNPERF_PARENT_PID`` and ``RNNPERF_PARENT_FD``); anywhere else a no-op. On Linux the kernel
    sends SIGKILL when the parent's thread that started us exits (``PR_SET_PDEATHSIG``): no GIL
    needed, so a worker busy in a long C call dies too. Then, as the parent may have died before
    that was armed, a parent already gone ends us now. Where the signal cannot be armed (not
    Linux; or a launcher process between us and the parent), a daemon thread reads the pipe and
    kills our process group (the worker and what it started) at EOF. Returns the mechanism:
    ``pdeathsig``, ``pipe`` or ``none``.
    """
    pid = os.environ.pop(PARENT_PID_VAR, "")          # not for our own children
    fd = _pipe_fd(os.environ.pop(PARENT_FD_VAR, ""))
    if not pid and fd is None:
        return "none"
    armed = pdeathsig and _arm_pdeathsig()
    if _parent_gone(pid, fd):
        os._exit(1)                                    # nobody is left to read an answer
    if fd is not None and (not armed or str(os.getppid()) != pid):
        threading.Thread(target=_watch_parent, args=(fd,), name="rnnperf-parent-watch",
                         daemon=True).start()
        return "pipe"
    return "pdeathsig" if armed else "none"


def _arm_pdeathsig() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGKILL), ctypes.c_ulong(0),
                          ctypes.c_ulong(0), ctypes.c_ulong(0)) == 0
    except (ImportError, OSError, AttributeError):
        return False


def _pipe_fd(text: str):
    """The inherited pipe read end, or None when there is none (or it is not a pipe)."""
    import stat
    try:
        fd = int(text)
        return fd if stat.S_ISFIFO(os.fstat(fd).st_mode) else None
    except (ValueError, OSError):
        return None


def _parent_gone(pid: str, fd) -> bool:
    """The pipe at EOF (nobody writes to it: readable means every write end closed), or without
    a pipe, our parent is no longer the pid we were given (we were re-parented)."""
    if fd is not None:
        import select
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            return bool(poller.poll(0))              # POLLIN or POLLHUP: EOF
        return bool(select.select([fd], [], [], 0)[0])
    return bool(pid) and str(os.getppid()) != pid


def _watch_parent(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except OSError:
        pass
    try:
        if os.getpgrp() == os.getpid():              # run_worker's start_new_session: our group
            os.killpg(0, signal.SIGKILL)
    finally:
        os.kill(os.getpid(), signal.SIGKILL)


def main(argv=None) -> int:
    die_with_parent()                    # first, before the job's heavy imports
    argv = sys.argv[1:] if argv is None else argv
    # Keep the real stdout for our one answer line; everything else printed goes to stderr.
    real_stdout = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def answer(status, data=None, error=None, code=0):
        real_stdout.write(MARKER + json.dumps({"status": status, "data": data or {},
                                               "error": error}, default=_jsonable) + "\n")
        real_stdout.flush()
        return code

    if len(argv) != 1 or (argv[0] not in JOBS and argv[0] != SERVE):
        return answer("failed", error=f"unknown worker job {argv!r}", code=2)
    if argv[0] == SERVE:
        return serve(answer)

    def one():
        from .. import flags
        payload = json.loads(sys.stdin.read() or "{}")
        config = flags.load(flags=os.environ.get(FLAGS_VAR, ""), use_env=False)
        from ..engines.threads import pin_affinity
        pin_affinity(config.threads)                  # before any library sizes its pool
        return run_job(argv[0], config, payload)
    return answered(one, answer)


def run_job(name: str, config, payload: dict) -> dict:
    """One registered job, with its test-only fault (``RNNPERF_FAULT=KIND@worker:JOB``)."""
    fault = worker_fault(name)
    if fault:
        inject(fault)
    module, func = JOBS[name].split(":")
    return getattr(importlib.import_module(module), func)(config, payload)


def answered(work, answer) -> int:
    """Run ``work()`` and answer with its data, or with one line saying why not."""
    from ..errors import RnnperfError, Unavailable, one_line
    try:
        return answer("ok", work())
    except Unavailable as exc:
        return answer("unavailable", error=one_line(exc), code=exc.exit_code)
    except RnnperfError as exc:
        return answer("failed", error=one_line(exc), code=exc.exit_code)
    except Exception as exc:  # a bug or a library failure: one line back, traceback on stderr
        import traceback
        traceback.print_exc()
        return answer("failed", error=one_line(exc), code=1)


def serve(answer) -> int:
    """Job ``serve``: one request per stdin line, one answer line each, until stdin closes.

    A request is ``{"job": NAME, "flags": PROFILE, "payload": {...}}``: the job runs in this
    process, so what it loaded stays loaded for the next request (a tune's shared worker,
    :mod:`rnnperf.bench.shared_worker`; the bench job keeps its compiled step,
    :func:`rnnperf.bench.step_job.build_runner`). The process runs on the CPUs of the profile it
    was started with (``RNNPERF_WORKER_FLAGS``: the largest ``threads=`` it will be asked for);
    each request's ``threads=`` confines the computing thread and the pools to its own share
    (:func:`rnnperf.engines.threads.confine`).
    """
    from .. import flags
    from ..engines.threads import confine, pin_affinity
    started = flags.load(flags=os.environ.get(FLAGS_VAR, ""), use_env=False)
    pin_affinity(started.threads)
    for line in sys.stdin:
        if not line.strip():
            continue

        def one(line=line):
            request = json.loads(line)
            if request.get("job") not in JOBS:
                raise ValueError(f"unknown worker job {request.get('job')!r}")
            config = flags.load(flags=request.get("flags", ""), use_env=False)
            confine(config.threads)
            return run_job(request["job"], config, request.get("payload") or {})
        answered(one, answer)
    return 0


def _jsonable(value):
    import numpy as np
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
