"""Test-only fault injection for the worker's ``bench`` job, and for any worker as a whole.

``RNNPERF_FAULT=KIND`` or ``KIND@SUBSTRING`` (only jobs whose key contains SUBSTRING) makes the
worker ``crash`` (exit 70), ``raise``, ``sigkill`` itself, print ``garbage`` instead of an answer,
``hang`` (until killed or orphaned), stay ``busy`` (computing, as in a long measurement or compile,
until killed; it never looks at its parent) or report a ``nan`` result. The tests use it to prove
that a misbehaving worker is recorded and the sweep goes on, and that no worker outlives its
parent. ``KIND@worker:JOB`` (JOB: ``bench``, ``parity``, ``warm``, ...) hits every worker of that
job before the job starts (:func:`worker_fault`).
"""

from __future__ import annotations

import os
import signal
import sys
import time

from ..errors import ConfigError

FAULT_VAR = "RNNPERF_FAULT"
FAULTS = ("crash", "raise", "sigkill", "garbage", "hang", "busy", "nan")
WORKER_PREFIX = "worker:"
#: how long ``busy`` computes at most (a safety net: the parent or the test kills it long before)
BUSY_LIMIT_S = 120.0


def fault_for(key: str) -> str | None:
    """The fault ``RNNPERF_FAULT`` asks for the job with this key, or None."""
    spec = os.environ.get(FAULT_VAR, "")
    if not spec:
        return None
    kind, _, match = spec.partition("@")
    if kind not in FAULTS:
        raise ConfigError(f"{FAULT_VAR}={spec}: unknown fault {kind!r}")
    return kind if match in key else None


def worker_fault(job: str) -> str | None:
    """The fault ``RNNPERF_FAULT=KIND@worker:JOB`` asks for every worker of ``job``, or None."""
    kind, _, match = os.environ.get(FAULT_VAR, "").partition("@")
    if not match.startswith(WORKER_PREFIX):
        return None
    if kind not in FAULTS:
        raise ConfigError(f"{FAULT_VAR}={kind}@{match}: unknown fault {kind!r}")
    return kind if match == WORKER_PREFIX + job and kind != "nan" else None


def inject(kind: str) -> None:
    """Test-only misbehaviour; see the module docstring."""
    if kind == "crash":
        print("injected crash", file=sys.stderr, flush=True)
        os._exit(70)
    if kind == "raise":
        raise RuntimeError("injected fault")
    if kind == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "garbage":
        print("this is not an answer", flush=True)
        os._exit(0)
    if kind == "hang":
        # Until the parent kills us, or we are orphaned by a killed parent (re-parented: our
        # ppid changes, or already was 1 when we got here), or five minutes pass.
        parent = os.getppid()
        deadline = time.monotonic() + 300
        while os.getppid() == parent != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        os._exit(75)
    if kind == "busy":
        # Compute in long C calls that hold the GIL (as BLAS set-up or a compile can), never
        # looking at the parent: only the worker's parent-death handling can end it early.
        print("injected busy", file=sys.stderr, flush=True)
        deadline = time.monotonic() + BUSY_LIMIT_S
        while time.monotonic() < deadline:
            sum(range(5_000_000))
        os._exit(75)
