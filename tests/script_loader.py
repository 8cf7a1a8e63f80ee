"""Load one of ``scripts/*.py`` as a module, for the tests of the docs those scripts generate.

The scripts are not a package (each runs as ``python scripts/NAME.py``), so the tests import
them by path. Imported as ``from script_loader import load_script`` (``tests/`` is on
``sys.path``, as for ``oracle_helpers``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def load_script(name: str):
    """``scripts/<name>.py``, executed afresh: a test may monkeypatch it freely."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
