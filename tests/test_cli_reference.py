"""docs/cli.md is the parsers' own account of the command line: generated, fresh, complete (every
option helped, every command's exit codes, every environment variable the code reads), and
without a default rendered as ``None``."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
from script_loader import load_script

from rnnperf import cli
from rnnperf.cli import reference

ROOT = Path(__file__).resolve().parent.parent
STALE = "run scripts/cli_reference.py --write"
#: an environment variable's name as the code spells it: a whole Python string literal, or a
#: shell expansion/assignment in a script
PY_LITERAL = re.compile(r"""["']((?:RNNPERF|THEANO)[A-Z0-9_]*)["']""")
SHELL_NAME = re.compile(r"(?:\$\{?|^\s*(?:export\s+)?)((?:RNNPERF|THEANO)[A-Z0-9_]*)\b",
                        re.MULTILINE)


@pytest.fixture(scope="module")
def page() -> str:
    return reference.markdown()


@pytest.fixture
def script():
    return load_script("cli_reference")


def every_command():
    return reference.commands(cli.build_parser())


def test_docs_cli_md_is_fresh(page):
    assert (ROOT / "docs" / "cli.md").read_text() == page, f"docs/cli.md is stale: {STALE}"


def test_the_page_does_not_depend_on_the_terminal(page, monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    assert reference.markdown() == page


def test_a_changed_help_makes_the_page_stale(page, script, monkeypatch):
    real = cli.build_parser

    def edited():
        parser = real()
        bench = dict((name, p) for name, p, _ in reference.commands(parser))["bench"]
        next(a for a in bench._actions if a.dest == "warmup").help = "changed (default %(default)s)"
        return parser
    monkeypatch.setattr(cli, "build_parser", edited)
    assert reference.markdown() != page
    assert "changed (default 1)" in reference.markdown()
    assert script.stale()


def test_the_script_says_how_to_fix_a_stale_page(script, monkeypatch, tmp_path, capsys):
    doc = tmp_path / "cli.md"
    doc.write_text(reference.markdown().replace("--warmup", "--warm-up"))
    monkeypatch.setattr(script, "DOC", doc)
    monkeypatch.setattr(script, "ROOT", tmp_path)
    assert script.main([]) == 1 and script.main(["--check"]) == 1
    assert STALE in capsys.readouterr().out
    assert script.main(["--write"]) == 0 and script.main([]) == 0


@pytest.mark.parametrize("name, parser", [(n, p) for n, p, _ in every_command()])
def test_every_option_says_what_it_does(name, parser):
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            continue
        assert action.help and action.help.strip() and action.help != argparse.SUPPRESS, \
            f"rnnperf {name} {'/'.join(action.option_strings) or action.dest}: no help"


def test_every_command_has_a_one_line_help():
    assert all(summary.strip() for _, _, summary in every_command())


def table_rows(page: str):
    """(header, cells) of every Markdown table row of the page; ``\\|`` is not a separator."""
    header = None
    for line in page.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if header is None:
            header = cells
        elif not set(line) <= set("|-"):
            yield header, cells


def test_no_default_is_rendered_as_none(page):
    defaults = [dict(zip(header, cells))["default"] for header, cells in table_rows(page)
                if "default" in header]
    assert len(defaults) > 50
    assert not [d for d in defaults if d.strip("`").strip() in ("None", "", "==SUPPRESS==")]


def test_the_tables_show_real_defaults_and_hide_help(page):
    bench = page[page.index("## rnnperf bench"):page.index("## rnnperf compare")]
    assert "| `--timeout` | `S` (float) | `900.0` |" in bench
    assert "| `--threads` | `N` (int) | see meaning |" in bench
    assert "`--help`" not in page and "%(default)" not in page
    plot = page[page.index("## rnnperf plot"):page.index("## rnnperf tune")]
    assert "**Deprecated**" in plot and "`--output`: use `--out`" in plot
    assert "| `--output`" not in plot


def environment_names() -> set[str]:
    found = set()
    for path in sorted((ROOT / "rnnperf").rglob("*.py")) + sorted((ROOT / "scripts").glob("*")):
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        found |= set(PY_LITERAL.findall(text))
        if path.suffix != ".py":
            found |= set(SHELL_NAME.findall(text))
    return found


def test_every_environment_variable_is_documented(page):
    names = environment_names()
    assert {"THEANO_FLAGS", "RNNPERF_FLAGS", "THEANORC", "RNNPERF_RC", "RNNPERF_CUDA"} <= names
    missing = sorted(names - set(reference.ENVIRONMENT))
    assert not missing, f"add to rnnperf.cli.reference.ENVIRONMENT: {missing}"
    for name in reference.ENVIRONMENT:
        assert f"| `{name}` |" in page


def test_every_command_has_its_exit_codes_and_files():
    codes = reference.command_facts("EXIT_CODES")
    writes = reference.command_facts("WRITES")
    for name, _, _ in every_command():
        assert name in codes, f"rnnperf {name}: no EXIT_CODES entry in its cli module"
        assert set(codes[name]) <= set(reference.EXIT_CODES), (name, codes[name])
        assert all(text.strip() for text in codes[name].values())
        assert name in writes and writes[name].strip(), f"rnnperf {name}: no WRITES entry"
    assert set(codes) == {name for name, _, _ in every_command()}


def test_every_profile_key_is_in_the_page(page):
    from rnnperf.flags import KEYS
    section = page[page.index("## Profile keys"):page.index("## Environment variables")]
    for name in KEYS:
        assert f"| `{name}` |" in section
