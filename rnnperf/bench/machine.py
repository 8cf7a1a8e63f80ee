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


#: the vector extensions that decide which kernels run fast, as /proc/cpuinfo names them
ISA_FLAGS = ("sse4_2", "avx", "fma", "avx2", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
             "avx512_bf16", "amx_tile")


def cpu_fields() -> dict[str, str]:
    """The first processor's ``/proc/cpuinfo`` fields (empty off Linux)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if not line.strip():
                    break                              # the first processor only
                key, _, value = line.partition(":")
                fields.setdefault(key.strip().lower(), value.strip())
    except OSError:
        pass
    return fields


def cpu_model() -> str:
    return cpu_fields().get("model name") or platform.processor() or platform.machine()


def cpu_id() -> dict:
    """Vendor, family, model and stepping, and which of :data:`ISA_FLAGS` the CPU has: two
    machines with the same model name can differ (a Zen 3 and a Zen 5 are both "AMD EPYC" in a
    VM), and a kernel fast with AVX-512 can spill registers with AVX2 alone."""
    fields = cpu_fields()
    flags = set(fields.get("flags", "").split())

    def number(key):
        try:
            return int(fields[key])
        except (KeyError, ValueError):
            return None
    return {"vendor": fields.get("vendor_id"), "family": number("cpu family"),
            "model": number("model"), "stepping": number("stepping"),
            "isa": [f for f in ISA_FLAGS if f in flags]}


def cpu_label(machine: dict) -> str:
    """``AMD EPYC (family 25 model 1, AVX2, no AVX-512)``: the model name and what tells two
    machines of that name apart, from a results document's ``machine`` block."""
    name = machine.get("cpu", "?")
    ident = machine.get("cpu_id") or {}
    if ident.get("family") is None:
        return name                                     # a document from before cpu_id
    isa = ident.get("isa") or []
    vector = "AVX-512" if "avx512f" in isa else "AVX2, no AVX-512" if "avx2" in isa else \
        "no AVX2"
    return f"{name} (family {ident['family']} model {ident.get('model')}, {vector})"


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
        "cpu_id": cpu_id(),
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
