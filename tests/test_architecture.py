"""The layers hold: no import cycle, no upward import, no engine in the parent, modules that import
on their own, sizes within bounds, and docs/architecture.md's picture drawn from today's code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from script_loader import load_script

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def arch():
    return load_script("architecture")


def test_the_package_breaks_no_rule(arch):
    assert arch.violations() == []


def test_the_picture_in_the_docs_is_current(arch):
    assert arch.current_doc_block() == arch.diagram(), \
        "docs/architecture.md is stale: run python scripts/architecture.py --write"


def test_every_module_is_in_a_layer(arch):
    for name in arch.modules():
        arch.layer_of(name)                      # KeyError names the stray module


def fake_package(tmp_path, files: dict[str, str]):
    for name, text in files.items():
        path = tmp_path / "rnnperf" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


@pytest.mark.parametrize("files, needle", [
    ({"errors.py": "from .bench import plan\n", "bench/__init__.py": "",
      "bench/plan.py": ""}, "the foundation layer may not import the bench layer"),
    ({"model/__init__.py": "", "model/a.py": "from . import b\n",
      "model/b.py": "def f():\n    from .a import x\n"}, "import cycle: rnnperf.model.a"),
    ({"bench/__init__.py": "", "bench/sweep.py": "from ..engines import numpy_engine\n",
      "engines/__init__.py": "", "engines/numpy_engine.py": "import numpy\n"},
     "the parent side never imports an engine"),
    ({"bench/__init__.py": "", "bench/table.py": "import torch\n"},
     "imports torch at import time"),
    ({"ui.py": "def f():\n" + "    x = 1\n" * 61}, "ui.f (line 1): 62 lines"),
    ({"ui.py": "x = 1\n" * 401}, "rnnperf.ui: 401 lines"),
])
def test_the_check_catches_each_kind_of_breach(arch, monkeypatch, tmp_path, files, needle):
    root = fake_package(tmp_path, files)
    monkeypatch.setattr(arch, "ROOT", root)
    monkeypatch.setattr(arch, "PACKAGE", root / "rnnperf")
    found = arch.violations()
    assert any(needle in line for line in found), found


def test_a_long_function_may_say_why(arch, monkeypatch, tmp_path):
    body = '    """Long because the table reads best in one piece."""\n' + "    x = 1\n" * 61
    root = fake_package(tmp_path, {"ui.py": "def f():\n" + body})
    monkeypatch.setattr(arch, "ROOT", root)
    monkeypatch.setattr(arch, "PACKAGE", root / "rnnperf")
    assert arch.violations() == []


ISOLATION = r"""
import importlib, json, sys
names = json.loads(sys.argv[1])
failed = {}
for name in names:
    for loaded in [m for m in sys.modules if m == "rnnperf" or m.startswith("rnnperf.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("rnnperf"):
            continue                      # an optional library (torch, ...) is not installed
        failed[name] = repr(exc)
    except Exception as exc:
        failed[name] = repr(exc)
print(json.dumps(failed))
"""


def test_every_module_imports_on_its_own(arch):
    """Each module imported first, with no other rnnperf module loaded before it: an import
    cycle that only bites in one order fails here."""
    names = [n for n in arch.modules() if not n.endswith("__main__")]
    out = subprocess.run([sys.executable, "-c", ISOLATION, json.dumps(names)], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {}
