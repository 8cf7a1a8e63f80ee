"""Facts about the machine and the installed libraries, for every results document.

Read from ``/proc``, ``psutil``, ``nvidia-smi`` and package metadata (``importlib.metadata``),
never by importing a library, so the parent stays free of every engine (Theano-family flags are
read at import). The worker side of the machine's facts (its peak matrix-product rate, its BLAS)
is :mod:`.peak`.

Machine facts live inside the results document, not in a storage path (pytest-benchmark#276,
#185), so a CI comparison is never broken by a renamed runner.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import socket
import subprocess

#: distributions whose version goes into every results document.
VERSIONED = ("rnnperf", "numpy", "scipy", "pytensor", "numba", "jax", "jaxlib", "torch")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpus() -> list[str]:
    """GPU names and memory from ``nvidia-smi`` when it is present; empty otherwise."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=name,memory.total,driver_version",
                              "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def machine_facts() -> dict:
    import psutil
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cores_logical": os.cpu_count(),
        "cores_physical": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 2 ** 30, 1),
        "gpus": gpus(),
    }


def library_versions() -> dict:
    """Versions from package metadata; ``None`` for what is not installed."""
    out: dict = {"python": platform.python_version()}
    for dist in VERSIONED:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out
