"""Every generated block in the docs (README's figures, performance.md's table) is its command's
output on the committed documents today."""

from __future__ import annotations

from pathlib import Path

import pytest
from script_loader import load_script

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def gen():
    return load_script("generated_docs")


def test_every_generated_block_is_fresh(gen):
    assert gen.stale() == [], "run python scripts/generated_docs.py --write"


def test_the_readme_figures_are_generated(gen):
    blocks = list(gen.BLOCK.finditer((ROOT / "README.md").read_text()))
    assert blocks and all("rnnperf table docs/performance.json" in b.group(2) for b in blocks)


def test_a_hand_edited_figure_is_caught(gen, tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    block = next(gen.BLOCK.finditer(readme))
    edited = readme.replace(block.group(3), block.group(3).replace("|", "| 1.0", 1), 1)
    (tmp_path / "README.md").write_text(edited)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "performance.json").write_text(
        (ROOT / "docs" / "performance.json").read_text())
    monkeypatch.setattr(gen, "documents", lambda: [tmp_path / "README.md"])
    monkeypatch.setattr(gen, "ROOT", tmp_path)
    assert gen.stale() == [f"README.md: {block.group(2)}"]


def readme_commands() -> list[str]:
    """The README's ``sh`` blocks, in order: the main job, then the test command."""
    import re
    return re.findall(r"```sh\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S)


def test_the_readme_opens_with_the_two_commands_and_ci_runs_the_second():
    main_job, tests = readme_commands()[:2]
    assert main_job.startswith("scripts/bootstrap.sh && ") and "rnnperf" in main_job
    assert tests.startswith("scripts/bootstrap.sh && ") and "pytest" in tests
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line and not line.startswith("#")]
    assert tests in ci, ".ci/run must call exactly the README's test command"


def test_the_readme_stays_short():
    assert len((ROOT / "README.md").read_text().splitlines()) < 120


def test_ci_md_shows_the_workflow_that_runs():
    import re
    shown = re.search(r"```yaml\n(.*?)```", (ROOT / "docs" / "ci.md").read_text(), re.S).group(1)
    assert shown == (ROOT / ".github" / "workflows" / "bench.yml").read_text(), \
        "docs/ci.md's workflow differs from .github/workflows/bench.yml"
