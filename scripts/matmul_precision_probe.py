"""What matmul_precision does to float32 products on this machine: docs/performance.md.

    .venv/bin/python scripts/matmul_precision_probe.py

For each precision: torch.mm and jnp.dot of two 1024x1024 float32 matrices (median of 7 calls
after 5 warm-up calls, max relative error against float64) and a torch.nn.RNN forward at RW.
Run it on a quiet machine: it is a timing.
"""

import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import torch

jax.config.update("jax_enable_x64", True)
rng = np.random.default_rng(0)
a = rng.standard_normal((1024, 1024)).astype("float32")
b = rng.standard_normal((1024, 1024)).astype("float32")
ref = a.astype("float64") @ b.astype("float64")


def med(f, k=7):
    for _ in range(5):
        f()
    ts = []
    for _ in range(k):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def err(x):
    return float(np.abs(np.asarray(x, dtype=np.float64) - ref).max() / np.abs(ref).max())


ta, tb = torch.from_numpy(a), torch.from_numpy(b)
rnn = torch.nn.RNN(128, 256)
x = torch.randn(100, 32, 128)
PRECISIONS = [("float32", "highest", "float32"), ("tf32", "high", "tensorfloat32"),
              ("bf16", "medium", "bfloat16")]
for p, tp, jp in PRECISIONS:
    torch.set_float32_matmul_precision(tp)
    t_mm, e_mm = med(lambda: torch.mm(ta, tb)), err(torch.mm(ta, tb))
    with torch.no_grad():
        t_rnn = med(lambda: rnn(x))
    f = jax.jit(lambda u, v, jp=jp: jnp.dot(u, v, precision=jp))
    ja, jb = jax.device_put(a), jax.device_put(b)
    t_j, e_j = med(lambda: f(ja, jb).block_until_ready()), err(f(ja, jb))
    print(f"{p}: torch.mm {t_mm * 1e3:.2f} ms err {e_mm:.1e} | nn.RNN fwd {t_rnn * 1e3:.2f} ms"
          f" | jnp.dot {t_j * 1e3:.2f} ms err {e_j:.1e}")
