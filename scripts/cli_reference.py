"""docs/cli.md, the command-line reference, generated from rnnperf's parsers.

    python scripts/cli_reference.py          say whether docs/cli.md is stale (exit 1 if it is)
    python scripts/cli_reference.py --check  the same
    python scripts/cli_reference.py --write  regenerate docs/cli.md

The page is :func:`rnnperf.cli.reference.markdown`; ``tests/test_cli_reference.py`` fails when the
committed file differs from it, so an option changed without regenerating the page fails CI.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rnnperf.cli.reference import markdown  # noqa: E402 (after the path above)

DOC = ROOT / "docs" / "cli.md"


def stale() -> bool:
    """Whether docs/cli.md differs from what the parsers generate today (or is missing)."""
    return not DOC.is_file() or DOC.read_text() != markdown()


def main(argv: list[str]) -> int:
    if argv == ["--write"]:
        DOC.write_text(markdown())
        print(f"wrote {DOC.relative_to(ROOT)}")
        return 0
    if argv not in ([], ["--check"]):
        print("usage: python scripts/cli_reference.py [--check | --write]", file=sys.stderr)
        return 2
    if stale():
        print(f"{DOC.relative_to(ROOT)} is stale: run scripts/cli_reference.py --write")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
