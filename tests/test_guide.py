"""The guide's worked examples run as written, at a tiny shape, so the guide cannot rot.

Every ``console`` block of docs/guide.md is one test: its ``$ rnnperf ...`` lines run in order in
a scratch directory (``examples/`` linked in), each ``--shape`` made tiny and each ``--grid`` a
two-by-two of tiny values, and each must end with the exit code its ``# exit N`` comment says
(0 without one). A ``<!-- file: NAME -->`` line before a fenced block writes that block to NAME
first; ``python`` blocks run as scripts. The ``# exit 3 without a GPU`` line runs only where no
GPU is seen (there it would tune for real).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "guide.md"
TINY_SHAPE = "T=4,B=3,I=3,H=4"
TINY_GRID = "T=2,4 B=1,3"
FAST = ["--min-time", "0.001", "--rounds", "5", "--no-progress"]


def blocks(text: str) -> list[tuple[str, str, str | None]]:
    """(language, body, file name from a preceding ``<!-- file: -->``) of every fenced block."""
    out = []
    for m in re.finditer(r"(?:<!-- file: (\S+) -->\n)?```(\w*)\n(.*?)```", text, re.S):
        out.append((m.group(2), m.group(3), m.group(1)))
    return out


def commands(body: str) -> list[tuple[list[str], int, str]]:
    """Each ``$ `` line: its argv, the exit code its comment expects, and the comment."""
    out = []
    for line in body.splitlines():
        if not line.startswith("$ "):
            continue
        text, _, comment = line[2:].partition("  # ")
        m = re.match(r"exit (\d)", comment)
        out.append((shlex.split(text), int(m.group(1)) if m else 0, comment))
    return out


def tiny(argv: list[str]) -> list[str]:
    """The command at a tiny shape, timed briefly (what it proves is that it runs as written)."""
    out = list(argv)
    for flag, value in (("--shape", TINY_SHAPE), ("--grid", TINY_GRID)):
        if flag in out:
            out[out.index(flag) + 1] = value
    if out[1] in ("bench", "tune"):
        out += FAST if out[1] == "bench" else FAST[:2] + ["--no-progress"]
    return out


def console_blocks():
    return [body for lang, body, _ in blocks(GUIDE.read_text()) if lang == "console"]


def test_the_guide_has_worked_examples_for_each_job():
    text = " ".join(console_blocks())
    for needle in ("rnnperf bench", "rnnperf tune", "--space gpu", "rnnperf parity",
                   "--resume", "--grid", "plot"):
        assert needle in text, f"docs/guide.md lost its worked example of {needle}"


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(console_blocks())))
def test_a_worked_example_runs_as_written(index, tmp_path):
    from rnnperf.bench.machine import gpus
    for _, body, name in blocks(GUIDE.read_text()):
        if name:
            (tmp_path / name).write_text(body)
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    for argv, expected, comment in commands(console_blocks()[index]):
        assert argv[0] == "rnnperf"
        if "without a GPU" in comment and gpus():
            continue
        run = [sys.executable, "-m", "rnnperf", *tiny(argv)[1:]]
        done = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, timeout=900,
                              env={**os.environ, "COLUMNS": "160"})
        assert done.returncode == expected, (
            f"docs/guide.md: `{' '.join(argv)}` exited {done.returncode}, the guide says "
            f"{expected}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


@pytest.mark.slow
def test_the_python_example_runs(tmp_path):
    code = [body for lang, body, _ in blocks(GUIDE.read_text()) if lang == "python"]
    assert code, "docs/guide.md lost its Python example"
    for body in code:
        done = subprocess.run([sys.executable, "-c", body], cwd=tmp_path, capture_output=True,
                              text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-2000:]
