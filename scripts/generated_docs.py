"""Figures in the docs are never typed: each table between generated markers is a command's output.

    python scripts/generated_docs.py          exit 1 naming every stale block
    python scripts/generated_docs.py --write  rerun every block's command and rewrite it

A block is

    <!-- generated: rnnperf table docs/performance.json --markdown --task train -->
    ...the command's stdout, verbatim...
    <!-- end generated -->

in README.md or any docs/*.md. The command is an ``rnnperf`` command line run in this process
(``rnnperf.cli.main``), from the repository root, so only parent-side commands that read committed
files belong here (``table``, ``flags --rc``): no engine is imported and the output depends on
the committed document alone. ``tests/test_generated_docs.py`` checks every block is fresh.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"(<!-- generated: (rnnperf [^\n]*?) -->\n)(.*?)(<!-- end generated -->)",
                   re.DOTALL)


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def run(command: str) -> str:
    """The stdout of one ``rnnperf ...`` command line; a non-zero exit is an error."""
    from rnnperf.cli import main
    out = io.StringIO()
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(out):
            code = main(shlex.split(command)[1:])
    finally:
        os.chdir(cwd)
    if code:
        raise RuntimeError(f"{command}: exit {code}")
    return out.getvalue().rstrip("\n") + "\n"


def regenerate(text: str) -> str:
    return BLOCK.sub(lambda m: m.group(1) + run(m.group(2)) + m.group(4), text)


def stale() -> list[str]:
    """``path: command`` for every block whose text is not its command's output today."""
    found = []
    for path in documents():
        for m in BLOCK.finditer(path.read_text()):
            if m.group(3) != run(m.group(2)):
                found.append(f"{path.relative_to(ROOT)}: {m.group(2)}")
    return found


def main(argv: list[str]) -> int:
    if argv == ["--write"]:
        for path in documents():
            text = path.read_text()
            new = regenerate(text)
            if new != text:
                path.write_text(new)
                print(f"rewrote {path.relative_to(ROOT)}")
        return 0
    if argv:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    found = stale()
    for line in found:
        print(f"stale: {line} (run python scripts/generated_docs.py --write)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main(sys.argv[1:]))
