"""A worker kept for many requests: one process measures every rung of one compiled function.

:func:`.process.run_worker` starts a process per job, so a tune paid, for every rung of every
point, the import of its libraries (1.5-2.5 s for JAX or torch) and the load of its function
from the caches (2-3 s for PyTensor's), and a parity check in a process of its own.
A :class:`SharedWorker` starts ``python -m rnnperf.bench.worker serve`` once
(:func:`rnnperf.bench.worker.serve`) and sends it one JSON request per line; it answers each
with one :data:`.process.MARKER` line and keeps what it loaded (the bench job keeps its compiled
step: :func:`rnnperf.bench.step_job.built_for`).

What is the same as a fresh worker's: the profile in the environment, the thread pins (the
largest ``threads=`` it will be asked for; each request confines itself to its own), the
parent-death pipe and signal (:func:`.process.spawn`), one timeout per request. Its stderr goes
to a temporary file, not a pipe (a pipe nobody reads while the worker lives would fill and block
it), and its tail comes back with a failure.

A request that passes its timeout kills the worker (its whole process group) and answers
``timeout``; a worker that dies answers ``failed`` with the signal or exit code; either way the
worker is gone (:attr:`SharedWorker.alive` is False), and the caller decides whether a fresh one
runs the request again (:mod:`rnnperf.tune.workers`).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import tempfile
import threading
import time

from .process import (MARKER, WorkerResult, _kill, _live, _reap, answered, no_answer,
                      parse_answer, spawn, worker_env, worker_python)


class SharedWorker:
    """One ``serve`` worker for ``config`` (its ``threads=``: the most any request will ask)."""

    def __init__(self, config, extra_env: dict | None = None):
        self.stderr = tempfile.TemporaryFile()
        cmd = [worker_python(config), "-m", "rnnperf.bench.worker", "serve"]
        self.proc, self._watch_w = spawn(cmd, worker_env(config, extra_env), stderr=self.stderr)
        _live.add(self.proc)                   # Ctrl-C and SIGTERM kill it with the others
        self.requests = 0
        self._lines: queue.Queue = queue.Queue()
        self._gone = False
        threading.Thread(target=self._read, name="rnnperf-shared-worker", daemon=True).start()

    def _read(self) -> None:
        try:
            for line in self.proc.stdout:
                self._lines.put(line)
        except (OSError, ValueError):          # closed under us by close(): the worker is gone
            pass
        self._lines.put(None)                  # EOF: the worker has exited

    @property
    def alive(self) -> bool:
        return not self._gone and self.proc.poll() is None

    def ask(self, job: str, config, payload: dict, timeout: float | None) -> WorkerResult:
        """Run ``job`` for ``config`` in this worker; its answer, whatever happens to it."""
        start = time.perf_counter()
        if not self.alive:
            return self._ended(start)
        self.requests += 1
        request = json.dumps({"job": job, "flags": config.profile(), "payload": payload})
        try:
            self.proc.stdin.write(request + "\n")
            self.proc.stdin.flush()
        except OSError:                        # it died between requests
            return self._ended(start)
        deadline = None if timeout is None else start + timeout
        while True:
            left = None if deadline is None else deadline - time.perf_counter()
            if left is not None and left <= 0:
                err = self._stderr_tail()
                self.close(kill=True)
                return WorkerResult("timeout", {}, f"worker passed the {timeout:g} s timeout "
                                    "and was killed", None, time.perf_counter() - start, err)
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                return self._ended(start)
            if line.startswith(MARKER):
                answer = parse_answer(line.rstrip("\n"))
                if answer is None:
                    continue                   # garbage after the marker: not an answer
                return answered(answer, None, time.perf_counter() - start, "")

    def _ended(self, start: float) -> WorkerResult:
        """The worker exited without answering: why, from its exit status and stderr."""
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        err = self._stderr_tail()
        self.close(kill=True)
        return no_answer(code, err, time.perf_counter() - start)

    def _stderr_tail(self, n: int = 2000) -> str:
        try:
            size = os.fstat(self.stderr.fileno()).st_size
            self.stderr.seek(max(0, size - n))
            return self.stderr.read().decode("utf-8", errors="replace")
        except (OSError, ValueError):
            return ""

    def close(self, kill: bool = False) -> None:
        """End the worker: stdin closed (it returns), or killed; idempotent."""
        if self._gone:
            return
        self._gone = True
        if not kill:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                kill = True
        if kill:
            _kill(self.proc)
        _reap(self.proc)
        _live.discard(self.proc)
        try:
            os.close(self._watch_w)
        except OSError:
            pass
        self.stderr.close()
