"""Legacy Theano 1.0.5 in its own virtual environment.

Theano's last release (1.0.5, 2020) predates NumPy 1.24 and Python 3.11, so it cannot share the
main environment: :func:`setup_legacy_venv` builds a venv in the user cache directory with a
Python 3.10 where one exists, pins ``numpy==1.23.5`` (NumPy 1.24 removed ``np.bool`` and other
aliases Theano uses) and ``scipy<1.11``, checks that ``import theano`` works there, and only
then writes the ``.rnnperf-ready`` marker that :func:`rnnperf.host.legacy_python` and the engine
registry look for. The ``theano`` engine's worker runs with that interpreter and this checkout on
``PYTHONPATH``.

Two facts of Theano 1.0.5 on a modern system shape :func:`import_theano`:

* without ``blas.ldflags`` it probes ``numpy.distutils`` ``blas_opt_info``, which fails on recent
  NumPy builds; we always set it (``-lopenblas`` where the system has OpenBLAS, else empty, which
  selects Theano's NumPy-backed GEMM);
* on Python >= 3.11 the Cython scan (``scan_perform``) does not build (its generated C uses
  removed frame internals), so we block ``theano.scan_module.scan_perform_ext`` and Theano falls
  back to its pure-Python scan loop. On 3.10 the C scan builds and is used.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

from ..host import LEGACY_MARKER, legacy_dir, legacy_python, openblas_ldflags

THEANO_REQUIREMENTS = ("Theano==1.0.5", "numpy==1.23.5", "scipy<1.11", "threadpoolctl>=3.1")
PYENV_GLOBS = ("/root/.pyenv/versions/3.10*/bin/python3.10",
               "~/.pyenv/versions/3.10*/bin/python3.10")


# --- building the venv (runs in the main environment) --------------------------------------------


def _python_version(python: str) -> tuple[int, int] | None:
    """``(major, minor)`` of an interpreter that actually runs, else None.

    A pyenv *shim* named ``python3.10`` is on PATH even when 3.10 is not the selected version and
    then fails with exit 127, so every candidate is run, not just found.
    """
    try:
        out = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    try:
        major, minor = (int(p) for p in out.stdout.split())
    except ValueError:
        return None
    return major, minor


def python310_candidates() -> list[str]:
    found = []
    on_path = shutil.which("python3.10")
    if on_path:
        found.append(on_path)
    for pattern in PYENV_GLOBS:
        found += sorted(glob.glob(os.path.expanduser(pattern)), reverse=True)
    return list(dict.fromkeys(found))


def find_python310() -> str | None:
    """The first Python 3.10 that runs: ``python3.10`` on PATH, then pyenv's installs."""
    for candidate in python310_candidates():
        if _python_version(candidate) == (3, 10):
            return candidate
    return None


def choose_python(python: str | None = None) -> str:
    """The interpreter for the legacy venv: the one given, else a 3.10, else this one."""
    return python or find_python310() or sys.executable


def legacy_env(extra: dict | None = None) -> dict:
    """Environment for a legacy-venv process: this checkout importable, no stray flags."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env.pop("PYTHONHOME", None)
    env.pop("THEANO_FLAGS", None)
    env.update(extra or {})
    return env


_VERIFY = ("from rnnperf.engines.legacy_venv import import_theano; import sys, numpy; "
           "t = import_theano({'floatX': 'float64'}); "
           "print(t.__version__, numpy.__version__, '%d.%d.%d' % sys.version_info[:3])")


def setup_legacy_venv(python: str | None = None, progress: Callable[[str], object] = print) -> Path:
    """Build (or finish) the legacy Theano venv and return its directory.

    Idempotent: an existing venv is reused and the install re-run (pip is a no-op when satisfied).
    The marker is written last, so an interrupted build is never mistaken for a working one.
    """
    from ..errors import Unavailable
    target = legacy_dir()
    marker = target / LEGACY_MARKER
    python = choose_python(python)
    version = _python_version(python)
    if version is None:
        raise Unavailable(f"legacy setup: {python} does not run")
    if version >= (3, 11):
        progress(f"legacy setup: no Python 3.10 found; using {python} "
                 f"({version[0]}.{version[1]}): Theano's C scan will not build, Python scan used")
    if marker.exists():
        marker.unlink()
    venv_python = target / "bin" / "python"
    if venv_python.exists() and _python_version(str(venv_python)) != version:
        progress(f"legacy setup: {target} holds another Python; rebuilding it")
        shutil.rmtree(target)
    if not venv_python.exists():
        progress(f"legacy setup: creating venv {target} with {python}")
        target.parent.mkdir(parents=True, exist_ok=True)
        _run([python, "-m", "venv", str(target)], "create the venv")
    progress(f"legacy setup: pip install {' '.join(THEANO_REQUIREMENTS)}")
    _run([str(venv_python), "-m", "pip", "install", "--quiet", *THEANO_REQUIREMENTS],
         "pip install")
    progress("legacy setup: checking `import theano` (first import compiles Theano's C "
             "helpers, about a minute)")
    out = _run([str(venv_python), "-c", _VERIFY], "import theano", env=legacy_env())
    theano_version, numpy_version, py_version = out.split()[-3:]
    marker.write_text(f"theano={theano_version} numpy={numpy_version} python={py_version}\n")
    progress(f"legacy setup: ready: Theano {theano_version}, NumPy {numpy_version}, "
             f"Python {py_version} in {target}")
    return target


def _run(cmd: list[str], what: str, env: dict | None = None) -> str:
    from ..errors import Unavailable
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        raise Unavailable(f"legacy setup: {what} failed: {lines[-1] if lines else 'no message'}")
    return proc.stdout


def legacy_status() -> dict:
    """What the legacy venv holds, for ``rnnperf legacy status``; ``ready`` False if unbuilt."""
    target = legacy_dir()
    status = {"dir": str(target), "ready": False, "python": None, "python_version": None,
              "theano": None, "numpy": None}
    python = legacy_python()
    if python is None:
        return status
    status["python"] = python
    try:
        proc = subprocess.run(
            [python, "-c", "import sys, importlib.metadata as m; "
             "print('%d.%d.%d' % sys.version_info[:3], m.version('Theano'), m.version('numpy'))"],
            capture_output=True, text=True, timeout=60, env=legacy_env())
        py_version, theano_version, numpy_version = proc.stdout.split()
    except (OSError, subprocess.TimeoutExpired, ValueError):
        status["error"] = "the venv's interpreter does not run; rebuild: rnnperf legacy setup"
        return status
    status.update(ready=True, python_version=py_version, theano=theano_version,
                  numpy=numpy_version)
    return status


# --- importing Theano (runs inside the legacy venv) ----------------------------------------------


def theano_flags(values: dict[str, str]) -> dict[str, str]:
    """Theano flags for a profile: ours plus the defaults Theano 1.0.5 needs to import."""
    flags = {"device": "cpu"}
    flags.update(values)
    if "blas.ldflags" not in flags:
        flags["blas.ldflags"] = openblas_ldflags()
    if "base_compiledir" not in flags and "compiledir" not in flags:
        # Theano's compiled modules for this venv's Python and NumPy, apart from any old ~/.theano
        flags["base_compiledir"] = str(legacy_dir() / "compiledir")
    return flags


def import_theano(values: dict[str, str]):
    """Set ``THEANO_FLAGS`` and import Theano; its flags are read once, at import."""
    if "theano" in sys.modules:
        return sys.modules["theano"]
    flags = theano_flags(values)
    from ..flags import format_flags          # quoted as Theano's shlex reads them back
    os.environ["THEANO_FLAGS"] = format_flags(flags)
    if sys.version_info >= (3, 11):
        # scan_perform's generated C does not compile on 3.11+; None makes its import fail fast
        # and Theano uses the Python scan loop (scan_op.py catches the ImportError).
        sys.modules["theano.scan_module.scan_perform_ext"] = None  # type: ignore[assignment]
    import theano
    return theano
