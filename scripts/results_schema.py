"""The results and parity documents' JSON Schemas in docs/, generated from
rnnperf/bench/results.py and rnnperf/bench/parity_doc.py.

    python scripts/results_schema.py          say which schema files are stale (exit 1 if any)
    python scripts/results_schema.py --write  regenerate them

One file per readable version (``rnnperf.bench.results.READABLE``): ``docs/results.schema.json``
for the current one, ``docs/results-<n>.schema.json`` for each older ``rnnperf.results/<n>``;
``docs/parity.schema.json`` for ``rnnperf.parity/1``.
``tests/test_results_schema.py`` fails when a committed file differs from :func:`generated`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rnnperf.bench import parity_doc, results  # noqa: E402 (after the path above)


def schema_path(version: str) -> Path:
    if version == results.SCHEMA:
        return ROOT / "docs" / "results.schema.json"
    return ROOT / "docs" / f"results-{version.rpartition('/')[2]}.schema.json"


def generated() -> dict[Path, str]:
    """Every schema file and the text it must hold."""
    files = {schema_path(v): json.dumps(results.json_schema(v), indent=2) + "\n"
             for v in results.READABLE}
    files[ROOT / "docs" / "parity.schema.json"] = \
        json.dumps(parity_doc.json_schema(), indent=2) + "\n"
    return files


def main(argv: list[str]) -> int:
    stale = 0
    for path, text in generated().items():
        if argv == ["--write"]:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
        elif not path.exists() or path.read_text() != text:
            print(f"{path.relative_to(ROOT)}: stale (python scripts/results_schema.py --write)")
            stale = 1
    return stale


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
