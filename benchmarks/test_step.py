"""Forward and train step of every engine and cell at the small and the reference shape.

pytest-benchmark times the engine's runner closure (one synchronised step, data placed once);
``benchmark.pedantic`` with warm-up rounds keeps compile and first-call cost out of the figures,
and the iteration count is calibrated the way ``rnnperf bench`` does (:mod:`rnnperf.bench.timing`).
``extra_info`` carries the model FLOPs (:mod:`rnnperf.bench.flops`) and the achieved GFLOP/s.
"""

from __future__ import annotations

import numpy as np
import pytest

from rnnperf.bench.flops import step_flops
from rnnperf.bench.timing import calibrate


def data(shape, dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((shape["T"], shape["B"], shape["I"])).astype(dtype)
    y = rng.integers(0, shape["O"], size=shape["B"])
    return x, y, np.full(shape["B"], shape["T"], dtype=np.int64)


@pytest.mark.parametrize("task", ["forward", "train"])
def test_step(benchmark, engine, engine_name, shape_name, shape, cell, task):
    x, y, lengths = data(shape, engine.dtype)
    step = engine.runner(task, x, y, lengths, 0.01)
    step()                                        # compile / first call, not timed
    iterations = calibrate(step, 0.02)
    benchmark.group = f"{shape_name} {cell} {task}"
    benchmark.extra_info.update(engine=engine_name, cell=cell, task=task, shape=dict(shape),
                                flops=step_flops(task, *(shape[k] for k in "TBIHO"), cell))
    benchmark.pedantic(step, rounds=5, iterations=iterations, warmup_rounds=1)
    median = benchmark.stats.stats.median
    benchmark.extra_info["gflops"] = benchmark.extra_info["flops"] / median / 1e9
