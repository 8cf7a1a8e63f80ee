"""Test-only fault injection for the worker's ``bench`` job.

``RNNPERF_FAULT=KIND`` or ``KIND@SUBSTRING`` (only jobs whose key contains SUBSTRING) makes the
worker ``crash`` (exit 70), ``raise``, ``sigkill`` itself, print ``garbage`` instead of an answer,
``hang`` (until killed or orphaned) or report a ``nan`` result. The tests use it to prove that a
misbehaving worker is recorded and the sweep goes on.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from ..errors import ConfigError

FAULT_VAR = "RNNPERF_FAULT"
FAULTS = ("crash", "raise", "sigkill", "garbage", "hang", "nan")


def fault_for(key: str) -> str | None:
    """The fault ``RNNPERF_FAULT`` asks for the job with this key, or None."""
    spec = os.environ.get(FAULT_VAR, "")
    if not spec:
        return None
    kind, _, match = spec.partition("@")
    if kind not in FAULTS:
        raise ConfigError(f"{FAULT_VAR}={spec}: unknown fault {kind!r}")
    return kind if match in key else None


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
