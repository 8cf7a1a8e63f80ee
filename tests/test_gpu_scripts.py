"""The GPU scripts' plumbing, on a CPU box and without downloading anything.

``scripts/gpu-check.sh --dry-run`` lists its phases and the commands each would run, so CI can
check them without a GPU; without a GPU the script says so in one line and exits 3.
``scripts/gpu-wheels.sh`` runs offline here against a stand-in for pip (a ``PYTHON`` that
answers ``-m pip`` with a canned resolution), so what it keeps and leaves out, and its size
limit, are checked without an index. ``scripts/bootstrap.sh gpu --dry-run`` shows the CUDA
builds it would install, with a stand-in ``nvidia-smi`` for the driver check.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
ENGINES = ("torch", "jax", "pytensor-jax", "pytensor-pytorch")


def script(name: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPTS / name), *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env={**os.environ, **(env or {})})


def path_without_nvidia_smi() -> str:
    """This PATH less every folder holding an ``nvidia-smi``: a box without a GPU driver."""
    return os.pathsep.join(d for d in os.environ["PATH"].split(os.pathsep)
                           if d and not os.access(os.path.join(d, "nvidia-smi"), os.X_OK))


def executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def fake_nvidia_smi(tmp_path: Path) -> str:
    """A PATH whose ``nvidia-smi`` reports one H100 and driver ``$FAKE_DRIVER``."""
    executable(tmp_path / "bin" / "nvidia-smi", '#!/bin/sh\ncase "$*" in\n'
               '  *driver_version*) echo "${FAKE_DRIVER:-550.54.15}" ;;\n'
               '  *) echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-fake)" ;;\nesac\n')
    return f"{tmp_path / 'bin'}{os.pathsep}{path_without_nvidia_smi()}"


def commands(stdout: str) -> list[str]:
    return [line[2:] for line in stdout.splitlines() if line.startswith("+ ")]


def phases(stdout: str) -> list[str]:
    return re.findall(r"^== gpu-check: phase (\w+)$", stdout, flags=re.M)


# --- gpu-check.sh ------------------------------------------------------------------------------

def test_gpu_check_dry_run_lists_phases_and_commands():
    out = script("gpu-check.sh", "--dry-run", env={"PATH": path_without_nvidia_smi()})
    assert out.returncode == 0, out.stderr
    assert phases(out.stdout) == ["detect", "tests", "parity", "bench", "table", "tune"]
    assert len(re.findall(r"^== gpu-check: phase \w+ took [0-9.]+ s", out.stdout, re.M)) == 6
    cmds = commands(out.stdout)
    assert any(c.startswith("nvidia-smi ") for c in cmds)
    assert any(c.endswith("-m pytest -q -p no:cacheprovider -m gpu tests/test_gpu.py")
               for c in cmds)
    assert any("-m rnnperf parity --flags device=cuda --engines all" in c for c in cmds)
    bench = [c for c in cmds if "-m rnnperf bench " in c]
    assert len(bench) == 1, "one rnnperf bench"
    bench = bench[0]
    profiles = re.findall(r"--profile (\S+)", bench)
    assert sorted(profiles) == sorted(f"engine={e},matmul_precision={p}"
                                      for e in ENGINES for p in ("float32", "tf32"))
    for part in ("--flags device=cuda,floatX=float32", "--shape T=100,B=32,I=128,H=256",
                 "--shape T=100,B=1,I=16,H=32", "--task train --task forward",
                 "--min-time 0.05 --rounds 5", "--timeout 120"):
        assert part in bench, part
    stamp = re.search(r"--out gpu-results/(\d{4}-\d\d-\d\dT\d{6}Z)\.json$", bench)
    assert stamp, bench
    assert any(c.endswith(f"--markdown > gpu-results/{stamp[1]}.md") for c in cmds)
    tune = [c for c in cmds if "-m rnnperf tune " in c]
    assert len(tune) == 1 and "--space gpu --shape T=100,B=32,I=128,H=256" in tune[0], tune
    assert tune[0].endswith(f"--budget 3m --timeout 120 --no-progress "
                            f"--out gpu-results/{stamp[1]}.theanorc"), tune
    assert "time per phase: detect" in out.stdout
    assert not (ROOT / "gpu-results" / f"{stamp[1]}.json").exists()


def test_gpu_check_out_dir_and_tune_budget(tmp_path):
    out = script("gpu-check.sh", "--dry-run", "--only", "tune", "--out-dir", str(tmp_path / "o"),
                 "--tune-budget", "90s", env={"PATH": path_without_nvidia_smi()})
    assert out.returncode == 0, out.stderr
    assert phases(out.stdout) == ["detect", "tune"]
    tune = [c for c in commands(out.stdout) if "-m rnnperf tune " in c]
    assert re.search(rf"--budget 90s .* --out {tmp_path}/o/\S+\.theanorc$", tune[0]), tune
    assert not (tmp_path / "o").exists()


def test_gpu_check_dry_run_with_wheels_never_installs_torch_or_jax(tmp_path):
    wheels, venv = tmp_path / "wheels", tmp_path / "venv"
    out = script("gpu-check.sh", "--dry-run", "--wheels", str(wheels), "--venv", str(venv),
                 "--only", "install,tests", env={"PATH": path_without_nvidia_smi()})
    assert out.returncode == 0, out.stderr
    assert phases(out.stdout) == ["detect", "install", "tests"]
    cmds = commands(out.stdout)
    assert f"python3 -m venv --system-site-packages {venv}" in cmds
    # the GPU image's python3 is itself a venv: its torch and JAX reach the new venv by a .pth
    assert f"python3's site folders -> {venv}'s site-packages/gpu-check-base.pth" in cmds
    pips = [c for c in cmds if " -m pip install " in c]
    assert len(pips) == 2 and pips[-1].endswith("-e .")
    for pip in pips:
        assert pip.startswith(f"{venv}/bin/python -m pip install ")
        assert f"--no-index --find-links {wheels} --no-deps" in pip
        assert not [t for t in pip.split() if re.match(r"(torch|jax|jaxlib|nvidia-)", t)]
    assert any(c.startswith(f"{venv}/bin/python -m pytest ") for c in cmds)
    assert not venv.exists()


def test_gpu_check_without_nvidia_smi_exits_3_in_one_line():
    out = script("gpu-check.sh", env={"PATH": path_without_nvidia_smi()})
    assert out.returncode == 3, (out.stdout, out.stderr)
    assert out.stdout == ""
    assert out.stderr.count("\n") == 1 and "no GPU here: nvidia-smi not found" in out.stderr


def test_gpu_check_without_a_cuda_torch_exits_3_in_one_line(tmp_path):
    try:
        import torch
        if torch.cuda.is_available():
            pytest.skip("torch sees a CUDA device here")
    except ImportError:
        pass  # "torch is not importable" is the line then
    out = script("gpu-check.sh", env={"PATH": fake_nvidia_smi(tmp_path),
                                      "PYTHON": sys.executable})
    assert out.returncode == 3, (out.stdout, out.stderr)
    assert out.stdout == "" and out.stderr.count("\n") == 1
    assert re.search(r"no GPU here: torch .*(sees no CUDA device|not importable)", out.stderr)


@pytest.mark.parametrize("args", [["--bogus"], ["--timeout", "soon"], ["--only", "everything"],
                                  ["--wheels"], ["--wheels", "/nonexistent/wheels"],
                                  ["--out-dir"], ["--tune-budget"]])
def test_gpu_check_bad_usage_exits_2(args):
    out = script("gpu-check.sh", *args, env={"PATH": path_without_nvidia_smi()})
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert out.stderr.strip() and "Traceback" not in out.stderr


# --- gpu-wheels.sh -----------------------------------------------------------------------------

def test_gpu_wheels_refuses_a_missing_dir():
    out = script("gpu-wheels.sh")
    assert out.returncode == 2
    assert out.stderr.startswith("gpu-wheels: no DIR given") and "usage:" in out.stderr


@pytest.mark.parametrize("args", [["DIR", "--python", "3"], ["DIR", "--nope"], ["A", "B"]])
def test_gpu_wheels_bad_usage_exits_2(args, tmp_path):
    out = script("gpu-wheels.sh", *[str(tmp_path / a) if a.isupper() else a for a in args])
    assert out.returncode == 2 and "Traceback" not in out.stderr


def test_gpu_wheels_dry_run_targets_manylinux_wheels_only(tmp_path):
    out = script("gpu-wheels.sh", str(tmp_path / "w"), "--python", "3.12", "--dry-run")
    assert out.returncode == 0, out.stderr
    cmds = commands(out.stdout)
    resolve = [c for c in cmds if " install --dry-run " in c]
    download = [c for c in cmds if " download " in c]
    assert len(resolve) == 1 and len(download) == 1
    for cmd in resolve + download:
        assert "--only-binary=:all: --python-version 3.12" in cmd
        assert "--platform manylinux_2_28_x86_64" in cmd
    assert "pytensor>=3.0,<3.4" in resolve[0] and "pytest>=8" in resolve[0]
    assert "--no-deps" in download[0] and download[0].endswith("requirements-3.12.txt")
    assert not (tmp_path / "w").exists()


FAKE_PIP = r'''
import json, os, sys
args = sys.argv[1:]
def pkg(name, requires=()):
    return {"metadata": {"name": name, "version": "1.0", "requires_dist": list(requires)}}
if "install" in args:
    install = [
        pkg("pytensor", ["numpy>=2", "scipy", "numba", "etuples", "filelock"]),
        pkg("numpy"), pkg("scipy", ["numpy"]), pkg("numba", ["llvmlite", "numpy"]),
        pkg("llvmlite"), pkg("etuples", ["cons"]), pkg("cons"), pkg("filelock"),
        pkg("rich", ["Pygments", 'typing-extensions; python_version < "3.11"']),
        pkg("Pygments"), pkg("typing_extensions"), pkg("psutil"),
        pkg("jsonschema", ["attrs", 'fqdn; extra == "format"']), pkg("attrs"), pkg("fqdn"),
        pkg("threadpoolctl"), pkg("flatbuffers"), pkg("setuptools"),
        pkg("matplotlib", ["packaging", "pillow", "numpy"]), pkg("pillow"),
        pkg("pytest", ["packaging", "pluggy"]), pkg("packaging"), pkg("pluggy"),
        pkg("jax", ["jaxlib", "typing_extensions"]), pkg("jaxlib", ["nvidia-cublas-cu12"]),
        pkg("nvidia-cublas-cu12"), pkg("torch", ["triton"]), pkg("triton")]
    json.dump({"install": install}, open(args[args.index("--report") + 1], "w"))
elif "download" in args:
    dest = args[args.index("--dest") + 1]
    for line in open(args[args.index("-r") + 1]).read().split():
        name, version = line.split("==")
        with open(os.path.join(dest, f"{name}-{version}-py3-none-any.whl"), "wb") as f:
            f.truncate(int(os.environ.get("FAKE_WHEEL_BYTES", "1000")))
'''


def fake_python(tmp_path: Path) -> str:
    """A PYTHON whose ``-m pip`` is :data:`FAKE_PIP`; everything else goes to this Python."""
    fake = tmp_path / "fakepip.py"
    fake.write_text(FAKE_PIP)
    return str(executable(tmp_path / "python", f'#!/bin/sh\nif [ "$1" = -m ] && '
                          f'[ "$2" = pip ]; then shift 2; exec "{sys.executable}" "{fake}" "$@"; '
                          f'fi\nexec "{sys.executable}" "$@"\n'))


def test_gpu_wheels_keeps_what_a_cuda_python_lacks(tmp_path):
    wheels = tmp_path / "wheels"
    out = script("gpu-wheels.sh", str(wheels), "--python", "3.12",
                 env={"PYTHON": fake_python(tmp_path)})
    assert out.returncode == 0, out.stderr
    kept = {line.split("==")[0] for line in (wheels / "requirements-3.12.txt").read_text().split()}
    assert kept == {"pytensor", "etuples", "cons", "filelock", "rich", "Pygments", "psutil",
                    "jsonschema", "attrs", "threadpoolctl", "flatbuffers", "setuptools",
                    "pytest", "packaging", "pluggy"}
    assert len(list(wheels.glob("*.whl"))) == len(kept)
    assert f"{len(kept)} wheels, 0.0 MB" in out.stdout


def test_gpu_wheels_fails_past_60_mb(tmp_path):
    out = script("gpu-wheels.sh", str(tmp_path / "wheels"), "--python", "3.12",
                 env={"PYTHON": fake_python(tmp_path), "FAKE_WHEEL_BYTES": str(5 * 2 ** 20)})
    assert out.returncode == 1
    assert "75.0 MB (15 wheels), over the 60 MB limit" in out.stderr


# --- bootstrap.sh gpu ----------------------------------------------------------------------------

def test_bootstrap_gpu_dry_run_installs_cuda12_builds_then_the_package():
    out = script("bootstrap.sh", "gpu", "--dry-run", env={"PATH": path_without_nvidia_smi()})
    assert out.returncode == 0, out.stderr
    pips = [c for c in commands(out.stdout) if " -m pip install " in c]
    torch = next(i for i, c in enumerate(pips) if "torch==" in c)
    assert "--index-url https://download.pytorch.org/whl/cu126 torch==2.13.0+cu126" in pips[torch]
    jax = next(i for i, c in enumerate(pips) if "jax[" in c)
    assert re.search(r"jax\[cuda12\](==[0-9.]+)?$", pips[jax])
    assert torch < jax < len(pips) - 1 and pips[-1].endswith("-e .[all]")
    assert "no nvidia-smi" in out.stderr and "dry run" in out.stderr


def test_bootstrap_gpu_cuda13_needs_driver_580(tmp_path):
    env = {"PATH": fake_nvidia_smi(tmp_path), "RNNPERF_CUDA": "13"}
    out = script("bootstrap.sh", "gpu", "--dry-run", env={**env, "FAKE_DRIVER": "580.65.06"})
    assert out.returncode == 0, out.stderr
    assert "whl/cu130 torch==2.13.0+cu130" in out.stdout and "jax[cuda13]" in out.stdout
    out = script("bootstrap.sh", "gpu", "--dry-run", env={**env, "FAKE_DRIVER": "550.54.15"})
    assert out.returncode == 3 and "older than 580" in out.stderr


def test_bootstrap_gpu_refuses_a_driver_cuda12_cannot_use(tmp_path):
    out = script("bootstrap.sh", "gpu", "--dry-run",
                 env={"PATH": fake_nvidia_smi(tmp_path), "FAKE_DRIVER": "470.82.01"})
    assert out.returncode == 3 and "driver 470.82.01 is older than 525" in out.stderr
    assert commands(out.stdout) == []


def test_bootstrap_all_dry_run_keeps_the_cpu_torch():
    out = script("bootstrap.sh", "all", "--dry-run")
    assert out.returncode == 0, out.stderr
    assert any(c.endswith("install -q --disable-pip-version-check torch==2.13.0")
               for c in commands(out.stdout))


@pytest.mark.parametrize("args,env", [(["gpus"], {}), (["gpu", "--dry-run"],
                                                      {"RNNPERF_CUDA": "11"})])
def test_bootstrap_bad_mode_exits_2(args, env):
    out = script("bootstrap.sh", *args, env=env)
    assert out.returncode == 2 and out.stderr.count("\n") == 1


def test_scripts_parse():
    for name in ("bootstrap.sh", "gpu-check.sh", "gpu-wheels.sh"):
        assert subprocess.run(["bash", "-n", str(SCRIPTS / name)]).returncode == 0, name
    if shutil.which("shellcheck"):
        out = subprocess.run(["shellcheck", *(str(SCRIPTS / n) for n in
                                              ("bootstrap.sh", "gpu-check.sh", "gpu-wheels.sh"))],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stdout
