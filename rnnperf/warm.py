"""``rnnperf warm``: pre-compile the shapes a sweep will use, and show compile cost honestly.

Every engine with a compiler keeps a cache across processes: PyTensor's compiledir (C modules),
Numba's on-disk cache (``numba__cache``), JAX's persistent compilation cache (turned on by
:func:`rnnperf.engines.pytensor_engine.configure_jax`), and for ``pytensor-jax`` rnnperf's own
function cache (:mod:`rnnperf.function_cache`). ``warm`` runs each profile x shape x task in a
fresh worker that imports the engine's libraries, builds the engine and makes the first call,
then does it again in a second fresh worker: the first figures are the cold cost (when the
caches were empty) and the second the cost a later sweep pays. Import, compile (graph build +
compile + first call) and where the function came from are reported apart, for both workers.
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
    """Import, build the engine and make the first call: that is what a cache can save."""
    from .harness import build_runner
    built = build_runner(config, payload)
    return {"import_s": built.import_s, "compile_s": built.compile_s,
            "function_cache": built.function_cache,
            "device_actual": built.engine.device_actual()}


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
        row = {"profile": job.profile, "shape": job.shape, "task": job.task, "status": status,
               "error": first.error or second.error}
        for label, out in (("first", first), ("cached", second)):
            for field in ("import_s", "compile_s", "function_cache"):
                row[f"{label}_{field}"] = out.data.get(field)
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        render(rows)
    return 1 if worst == 1 else worst


def render(rows) -> None:
    from rich.table import Table

    from .ui import stdout_console
    table = Table("profile", "shape", "task", "1st import s", "1st compile s", "1st function",
                  "2nd import s", "2nd compile s", "2nd function", "status",
                  title="two fresh workers: first (cold caches), then second (what a later sweep "
                        "pays); compile = graph build + compile + first call")

    def fmt(value):
        return f"{value:.2f}" if isinstance(value, (int, float)) else "-"
    for r in rows:
        cells = []
        for label in ("first", "cached"):
            cells += [fmt(r[f"{label}_import_s"]), fmt(r[f"{label}_compile_s"]),
                      r[f"{label}_function_cache"] or "-"]
        table.add_row(r["profile"], ",".join(f"{k}={v}" for k, v in r["shape"].items()),
                      r["task"], *cells,
                      r["status"] if not r["error"] else f"{r['status']}: {r['error']}")
    stdout_console(180).print(table)
