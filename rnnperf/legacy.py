"""Legacy Theano 1.0.5 in its own virtual environment (filled in by the engines issue)."""

from __future__ import annotations

import os
from pathlib import Path


def legacy_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(os.environ.get("RNNPERF_LEGACY_VENV") or os.path.join(base, "rnnperf", "theano-venv"))


def legacy_python() -> str | None:
    """The legacy venv's interpreter if it has been built and has Theano, else None."""
    python = legacy_dir() / "bin" / "python"
    marker = legacy_dir() / ".rnnperf-ready"
    return str(python) if python.exists() and marker.exists() else None
