"""What each built-in cell compiles to, per engine, as a hash: two trees that print the same
lines compile the same programs, so a refactor that keeps them cannot have changed a timing
(a check that needs no quiet machine). Run it with each tree on PYTHONPATH and compare:

    PYTHONPATH=OLD python scripts/compiled_fingerprints.py > old.txt
    PYTHONPATH=NEW python scripts/compiled_fingerprints.py > new.txt && diff old.txt new.txt

pytensor-c (fused, and the seed formulation) and pytensor-jax (hoisted, its function cache off):
the compiled train function's graph as ``debugprint`` prints it; jax: the lowered StableHLO of
the jitted train step. torch builds ``torch.nn`` modules, not a graph of ours.
"""
import hashlib, io, sys, numpy as np
from rnnperf import flags
from rnnperf.engines import load
from rnnperf.model.spec import init_params
shape = dict(T=5, B=3, I=4, H=6, O=3)
for cell in ("elman", "gru", "lstm"):
    for engine in ("pytensor-c", "pytensor-jax", "jax", "pytensor-c,formulation=seed"):
        cfg = flags.load(flags=f"engine={engine},cell={cell},floatX=float32" + (",function_cache=False" if "jax" in engine and engine != "jax" else ""), use_env=False)
        params = init_params(4, 6, 3, cell=cell)
        eng = load(cfg.engine, cfg)(cfg, 4, 6, 3, params)
        x = np.zeros((5, 3, 4), np.float32); y = np.zeros(3, np.int64); l = np.full(3, 5)
        if cfg.engine == "jax":
            import jax
            _, (xd, yd, ld, lrd) = eng._batch(x, y, l, 0.1)
            text = eng.fns["train"].lower(eng._params, xd, yd, ld, lrd).as_text()
        else:
            import pytensor
            fn = eng.function("train", x)
            fn = getattr(fn, "__wrapped__", fn)
            if not hasattr(fn, "maker"):
                fn = next(v for v in eng._fns.values() if hasattr(v, "maker")) if hasattr(eng, "_fns") else fn
            buf = io.StringIO()
            pytensor.printing.debugprint(fn, file=buf, print_type=True)
            text = buf.getvalue()
        print(cell, engine, hashlib.sha256(text.encode()).hexdigest()[:16], len(text))
