"""device=cuda on every engine that can honour it, checked where a GPU is (scripts/gpu-check.sh).

The ``gpu`` tests skip, with the reason, where torch sees no CUDA device. They check what a first
GPU run could get wrong without failing: that each engine agrees with the float64 oracle on the
GPU at float32 with full-precision products (``matmul_precision=float32``: on an A100/H100 both
JAX's and cuDNN's defaults are TF32, which float32's tolerance does not admit); that its arrays
live on ``cuda:0`` (``cuda:1`` for ``device=cuda1``, where two GPUs exist); and that a timed step
waits for the GPU: the harness's median (its own runner, calibration and statistic) is not below
the time to *issue* the same step with every synchronisation made a no-op, nor below the
device's throughput over a run of unsynchronised steps. A runner that forgot to synchronise
would time kernel launches, which on a GPU are far quicker than the work they queue.

Each engine runs in a fresh process, as in ``rnnperf bench``: JAX fixes its platform at first
use, and the libraries read their flags when imported. The ordinary tests at the end run the
same helpers on the CPU, so the GPU tests' plumbing is proven before a GPU ever runs them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rnnperf import engines

#: every engine the registry says can honour device=cuda
CUDA_ENGINES = [n for n in engines.names() if "cuda" in engines.get(n).devices]
#: the reference workload (RW), where the bench measures
RW = {"T": 100, "B": 32, "I": 128, "H": 256, "O": 10}


def _cuda() -> tuple[int, str]:
    """``(CUDA devices torch sees, why none)``; torch is the probe (every box with a GPU that
    rnnperf can use has a CUDA torch: scripts/bootstrap.sh gpu, or the cluster's own)."""
    try:
        import torch
    except ImportError:
        return 0, "torch is not installed, so no CUDA device can be seen"
    if not torch.cuda.is_available():
        return 0, (f"no CUDA device: torch.cuda.is_available() is False (torch "
                   f"{torch.__version__}); scripts/gpu-check.sh runs these on a GPU box")
    return torch.cuda.device_count(), ""


N_GPUS, NO_GPU = _cuda()
needs_gpu = pytest.mark.skipif(N_GPUS == 0, reason=NO_GPU)
needs_two = pytest.mark.skipif(N_GPUS < 2, reason=NO_GPU or f"{N_GPUS} GPU here; cuda1 needs two")


def parity_rows(engine: str, device: str, tmp_path, formulation: str | None = None) -> list:
    """``rnnperf parity`` of one engine at float32 (matmul_precision=float32) on ``device``: the
    JSON rows; fails with the command's output unless it exited 0. ``formulation`` None is the
    engine's default (the one the bench measures); gpu-check's parity phase runs them all."""
    path = tmp_path / f"parity-{engine}-{device}.json"
    argv = ["parity", "--engines", engine, "--dtypes", "float32", "--no-progress",
            "--flags", f"device={device},matmul_precision=float32", "--json", str(path)]
    spec = engines.get(engine)
    if spec.has_formulations:
        argv += ["--formulations", formulation or spec.default_formulation]
    out = subprocess.run([sys.executable, "-m", "rnnperf", *argv], capture_output=True,
                         text=True, timeout=900, env=dict(os.environ))
    assert out.returncode == 0, f"exit {out.returncode}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return json.loads(path.read_text())["rows"]


SYNC_PROBE = r'''
import contextlib, json, sys, time
from rnnperf import flags
from rnnperf.bench.step_job import build_runner
from rnnperf.bench.timing import calibrate, median, time_rounds

args = json.loads(sys.argv[1])
config = flags.load(flags=args["flags"], use_env=False)
built = build_runner(config, {"shape": args["shape"], "task": args["task"]})
step, rounds = built.step, args["rounds"]
step()                                                   # the harness's warm-up call
loops = calibrate(step, args["min_time"])
synced = median(time_rounds(step, loops, rounds))        # what a result's median is


@contextlib.contextmanager
def launch_only():
    """Every synchronisation the engines use (torch.cuda.synchronize, jax.block_until_ready)
    made a no-op: what is left of a step is the host's time to issue it."""
    saved = []
    torch, jax = sys.modules.get("torch"), sys.modules.get("jax")
    if torch is not None:
        saved.append((torch.cuda, "synchronize", torch.cuda.synchronize))
        torch.cuda.synchronize = lambda *a, **k: None
    if jax is not None:
        saved.append((jax, "block_until_ready", jax.block_until_ready))
        jax.block_until_ready = lambda value: value
    try:
        yield
    finally:
        for owner, name, fn in saved:
            setattr(owner, name, fn)


def launch_round():
    with launch_only():
        start = time.perf_counter()
        for _ in range(loops):
            step()
        took = time.perf_counter() - start
    step()                                               # drain the queue, untimed
    return took / loops


def pipelined_round():
    start = time.perf_counter()
    with launch_only():
        for _ in range(loops - 1):
            step()
    step()                                               # the last one waits for them all
    return (time.perf_counter() - start) / loops


def synchronisers():
    torch, jax = sys.modules.get("torch"), sys.modules.get("jax")
    return [torch and torch.cuda.synchronize, jax and jax.block_until_ready]


before = synchronisers()
launch = median([launch_round() for _ in range(rounds)])
pipelined = median([pipelined_round() for _ in range(rounds)])
print(json.dumps({"median_s": synced, "launch_s": launch, "pipelined_s": pipelined,
                  "loops": loops, "device_actual": built.engine.device_actual(),
                  "restored": synchronisers() == before}))
'''


def sync_probe(engine: str, device: str, shape: dict, task: str, min_time: float = 0.05,
               rounds: int = 5) -> dict:
    """In a fresh process: the harness's synchronised median of one step, the launch-only time
    of the same step, and the pipelined time per step (unsynchronised steps, one wait at the
    end), with the device the engine's arrays are on."""
    args = {"flags": f"engine={engine},device={device},floatX=float32,matmul_precision=float32",
            "shape": shape, "task": task, "min_time": min_time, "rounds": rounds}
    out = subprocess.run([sys.executable, "-c", SYNC_PROBE, json.dumps(args)],
                         capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert out.returncode == 0, f"exit {out.returncode}\n{out.stderr[-3000:]}"
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- on a GPU ------------------------------------------------------------------------------------

@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("engine", CUDA_ENGINES)
def test_parity_on_cuda_at_float32_full_precision(engine, tmp_path):
    rows = parity_rows(engine, "cuda", tmp_path)
    assert rows and all(r["status"] == "ok" for r in rows), rows
    assert {r["device_actual"] for r in rows} == {"cuda:0"}


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("engine", CUDA_ENGINES)
def test_a_timed_step_waits_for_the_gpu(engine):
    got = sync_probe(engine, "cuda", RW, "train")
    assert got["device_actual"] == "cuda:0"
    # not below the launch-only time (10 % for noise where the step is host-bound and both are
    # the same time), nor below the device's throughput (where it is GPU-bound, a missing
    # synchronisation shows here: the launches return long before the work is done)
    assert got["median_s"] >= 0.9 * got["launch_s"], got
    assert got["median_s"] >= 0.8 * got["pipelined_s"], got


@pytest.mark.gpu
@needs_two
@pytest.mark.parametrize("engine", CUDA_ENGINES)
def test_cuda1_runs_on_the_second_gpu(engine, tmp_path):
    rows = parity_rows(engine, "cuda1", tmp_path)
    assert rows and all(r["status"] == "ok" for r in rows), rows
    assert {r["device_actual"] for r in rows} == {"cuda:1"}


# --- the same helpers on the CPU (ordinary tests) ----------------------------------------------

def test_cuda_engines_are_the_registry_s():
    assert {"torch", "jax", "pytensor-jax", "pytensor-pytorch"} <= set(CUDA_ENGINES)
    assert not {"numpy", "pytensor-c", "pytensor-numba", "theano"} & set(CUDA_ENGINES)


def test_parity_rows_on_the_cpu(tmp_path):
    rows = parity_rows("numpy", "cpu", tmp_path)
    assert {r["variant"] for r in rows} == {"single", "batched"}
    assert all(r["status"] == "ok" and r["device_actual"] == "cpu" for r in rows)


def test_sync_probe_on_the_cpu():
    pytest.importorskip("jax")
    got = sync_probe("jax", "cpu", {"T": 5, "B": 2, "I": 3, "H": 4, "O": 3}, "train",
                     min_time=0.005, rounds=3)
    assert got["device_actual"] == "cpu" and got["loops"] >= 1 and got["restored"]
    assert all(got[k] > 0 for k in ("median_s", "launch_s", "pipelined_s"))
