"""Bad input and faults: one line, the right exit code, literal text on the terminal.

Each test here reproduced a defect of issue #12 before its fix: a traceback, a wrong exit code,
or user text eaten by rich markup.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from rich.console import Console

from rnnperf import RNN, cli
from rnnperf.errors import ConfigError, Unavailable


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# --- device=cuda without a GPU: one line, exit 3 ------------------------------------------------

def test_jax_without_a_cuda_backend_is_unavailable_whatever_jax_raises(monkeypatch):
    """JAX 0.10 under JAX_PLATFORMS=cuda raises a bare AssertionError from jax.devices("gpu")."""
    pytest.importorskip("jax")
    import jax

    from rnnperf import flags
    from rnnperf.engines.jax_runtime import configure_jax

    def no_backend(*args, **kwargs):
        raise AssertionError()
    monkeypatch.setattr(jax, "devices", no_backend)
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    with pytest.raises(Unavailable, match="JAX sees no such GPU"):
        configure_jax(flags.load("engine=jax,device=cuda", use_env=False))


@pytest.mark.parametrize("argv", [
    ["parity", "--flags", "device=cuda", "--no-progress"],
    ["train", "--data", "synthetic", "--flags", "device=cuda", "--epochs", "1"],
])
def test_device_cuda_without_a_gpu_is_one_line_exit_3(argv, tmp_path):
    env = {**os.environ, "HOME": str(tmp_path), "JAX_PLATFORMS": ""}
    env.pop("JAX_PLATFORMS")
    out = subprocess.run([sys.executable, "-m", "rnnperf", *argv], capture_output=True,
                         text=True, env=env, timeout=600)
    assert out.returncode == 3, out.stderr
    line = one_line(out.stderr)
    assert "device=cuda" in line and "not falling back" in line


# --- user and library text reaches the terminal as typed ----------------------------------------

@pytest.mark.parametrize("value", ["[/]", "[red]x", "[bold]y[/bold]"])
def test_flag_values_are_shown_literally(capsys, value):
    code, out, err = run_cli(capsys, "flags", "--flags", f"cxx={value}")
    assert code == 0 and err == ""
    assert value in out


def test_engine_hints_are_shown_literally(capsys, monkeypatch):
    from rnnperf.engines import registry
    real = registry.availability

    def fake(name):
        if name == "torch":
            return False, "torch is not installed (pip install 'rnnperf[torch]')", {}
        return real(name)
    monkeypatch.setattr(registry, "availability", fake)
    monkeypatch.setattr("rnnperf.engines.availability", fake)
    code, out, _ = run_cli(capsys, "engines")
    assert code == 0 and "pip install 'rnnperf[torch]'" in " ".join(out.split())


def test_a_missing_extra_points_to_the_bootstrap_script_not_a_bare_pip_install():
    from rnnperf.engines import registry
    assert set(registry.INSTALL_HINT) >= {s.extra for s in registry.REGISTRY.values() if s.extra}
    assert all(hint.startswith("scripts/bootstrap.sh") for hint in registry.INSTALL_HINT.values())


# --- bad paths and shapes: one line, exit 2 -------------------------------------------------------

def test_out_naming_a_directory_is_one_line_exit_2(capsys, tmp_path):
    code, _, err = run_cli(capsys, "bench", "--engines", "numpy", "--out", str(tmp_path),
                           "--force", "--no-progress")
    assert code == 2 and "is a directory" in one_line(err)


@pytest.mark.parametrize("argv", [
    ["bench", "--engines", "numpy", "--shape", "T=²,B=1,I=2,H=3"],
    ["flags", "--flags", "threads=²"],
    ["tune", "--shape", "T=١,B=1,I=2,H=3", "--out", "x.rc"],
])
def test_digits_that_are_not_ascii_are_one_line_exit_2(capsys, argv):
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and "positive integer" in one_line(err)


def test_plot_to_a_directory_is_one_line_exit_2(capsys, tmp_path):
    from test_plot import sample_doc

    from rnnperf.bench import results as res
    doc = tmp_path / "r.json"
    res.save(sample_doc(), doc)
    (tmp_path / "d.png").mkdir()
    code, _, err = run_cli(capsys, "plot", str(doc), "-o", str(tmp_path / "d.png"))
    assert code == 2 and "is a directory" in one_line(err)


# --- a learning rate that would poison the parameters ---------------------------------------------

@pytest.mark.parametrize("lr", [float("nan"), float("inf"), -0.1, "fast"])
def test_a_bad_lr_is_refused_before_anything_is_touched(lr):
    net = RNN(3, 4, 2, flags="engine=numpy,floatX=float64", use_env=False)
    before = net.params
    x, y = np.ones((5, 3)), 1
    with pytest.raises(ConfigError, match="lr"):
        net.train_step(x, y, lr=lr)
    with pytest.raises(ConfigError, match="lr"):
        net.fit(np.ones((4, 5, 3)), np.array([0, 1, 0, 1]), epochs=1, lr=lr, progress=False)
    after = net.params
    assert all(np.array_equal(before[k], after[k]) for k in before)


# --- the terminal, for a person -------------------------------------------------------------------

def test_version_and_a_plain_help(capsys):
    from rnnperf import __version__
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"rnnperf {__version__}"
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert "``" not in out and "rnnperf: compile scan-based RNNs" in " ".join(out.split())


def parity_rows():
    from rnnperf.bench.parity import ParityRow, QuantityError
    rows = []
    for engine in ("numpy", "pytensor-pytorch"):
        for variant in ("single", "batched"):
            errors = [QuantityError("dWhh", 1e-7, 1.1e-6, 2e-4), QuantityError("loss", 0, 0, 2e-4)]
            rows.append(ParityRow(engine, "hoisted", "float32", variant, "ok", errors,
                                  device_actual="cpu"))
    return rows


def test_the_parity_table_fits_80_columns_and_ends_with_a_summary(monkeypatch):
    from rnnperf.cli import parity
    console = Console(width=80, record=True)
    monkeypatch.setattr(parity, "stdout_console", lambda width=None: console)
    rows = parity_rows()
    parity.print_parity(rows, [])
    lines = console.export_text().rstrip("\n").splitlines()
    body = [line for line in lines if line.startswith(("numpy", "pytensor"))]
    assert len(body) == len(rows)                           # one line per row: nothing wraps
    assert max(len(line) for line in lines[:-1]) <= 80
    assert lines[-1] == ("all 4 rows agree with the float64 oracle; worst relative error "
                         "1.1e-06 (numpy, dWhh)")


def test_the_results_table_fits_80_columns_unless_wide():
    from test_plot import sample_doc

    from rnnperf.bench.table import render_results
    doc = sample_doc()
    narrow, wide = Console(width=80, record=True), Console(width=300, record=True)
    render_results(doc.results, console=narrow)
    render_results(doc.results, console=wide, wide=True)
    narrow_lines = narrow.export_text().splitlines()
    assert max(len(line) for line in narrow_lines) <= 80
    assert "GFLOP/s" not in narrow.export_text() and "GFLOP/s" in wide.export_text()
