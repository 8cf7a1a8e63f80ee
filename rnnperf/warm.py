"""``rnnperf warm``: pre-compile the shapes a sweep will use, and show compile cost honestly.

Every engine with a compiler keeps a cache across processes: PyTensor's compiledir (C modules),
Numba's on-disk cache (``numba__cache``), JAX's persistent compilation cache (turned on by
:func:`rnnperf.engines.pytensor_engine.configure_jax`). ``warm`` runs each profile x shape x task
in a fresh worker that builds the engine and makes the first call, then does it again in a second
fresh worker: the first figure is the cold cost (when the cache was empty) and the second the
cost a later sweep pays, so the two are reported apart.
"""

from __future__ import annotations


def register(sub) -> None:
    from . import harness
    p = sub.add_parser("warm", help="pre-compile profiles x shapes x tasks into the caches")
    harness.add_plan_args(p)
    p.add_argument("--timeout", type=float, default=900.0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_warm)


def worker_job(config, payload):
    """Build the engine and make the first call: that is what a cache can save."""
    from .harness import build_runner
    _, engine, _, _, compile_s = build_runner(config, payload)
    return {"compile_s": compile_s, "device_actual": engine.device_actual()}


def cmd_warm(args) -> int:
    import json

    from . import harness
    from .worker import run_worker
    rows, worst = [], 0
    for job in harness.plan_from_args(args):
        payload = {"shape": job.shape, "task": job.task}
        first = run_worker("warm", job.config, payload, timeout=args.timeout)
        second = run_worker("warm", job.config, payload, timeout=args.timeout) \
            if first.status == "ok" else first
        status = first.status if first.status != "ok" else second.status
        worst = max(worst, {"ok": 0, "unavailable": 3}.get(status, 1))
        rows.append({"profile": job.profile, "shape": job.shape, "task": job.task,
                     "status": status, "error": first.error or second.error,
                     "first_compile_s": first.data.get("compile_s"),
                     "cached_compile_s": second.data.get("compile_s")})
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        from .ui import stdout_console
        from rich.table import Table
        table = Table("profile", "shape", "task", "first process s", "second process s",
                      "status", title="compile + first call, in two fresh workers")
        for r in rows:
            fmt = (lambda v: f"{v:.2f}" if isinstance(v, (int, float)) else "-")
            table.add_row(r["profile"], ",".join(f"{k}={v}" for k, v in r["shape"].items()),
                          r["task"], fmt(r["first_compile_s"]), fmt(r["cached_compile_s"]),
                          r["status"] if not r["error"] else f"{r['status']}: {r['error']}")
        stdout_console(160).print(table)
    return 1 if worst == 1 else worst
