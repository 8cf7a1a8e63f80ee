"""Sub-command ``parity``: every engine against the float64 NumPy oracle, each in its worker."""

from __future__ import annotations

import sys

from .. import flags as flagslib
from ..errors import ConfigError, Unavailable
from ..ui import progress_bar, stdout_console
from .args import add_profile_args, load_config


def register(sub) -> None:
    p = sub.add_parser("parity", help="compare engines with the float64 NumPy oracle")
    add_profile_args(p)
    p.add_argument("--engines", help="comma-separated registry names, or 'all' (every "
                                     "available engine)")
    p.add_argument("--dtypes", help="float32,float64 (default: both with --engines, else the "
                                    "profile's floatX)")
    p.add_argument("--formulations", help="seed,hoisted (default: both for Theano-family "
                                          "engines with --engines, else the profile's)")
    p.add_argument("--json", metavar="FILE", help="write the matrix as JSON")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per worker")
    p.set_defaults(func=cmd_parity)


def _split(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def parity_profiles(args, base: flagslib.Config):
    """Expand ``--engines``/``--dtypes``/``--formulations`` into (config, explicit) pairs."""
    from .. import engines
    skipped: list[tuple[str, str]] = []
    if args.engines:
        names = _split(args.engines)
        explicit = "all" not in names
        if not explicit:
            names = engines.names()
        dtypes = _split(args.dtypes) or ["float32", "float64"]
    else:
        names, explicit = [base.engine], True
        dtypes = _split(args.dtypes) or [base.floatX]
    for name in names:
        engines.get(name)  # unknown names are a usage error, before anything runs
    for dtype in dtypes:
        flagslib.check_value("floatX", dtype, "--dtypes")
    out = []
    for name in names:
        ok, reason, _ = engines.availability(name)
        if not ok:
            skipped.append((name, reason))
            continue
        spec = engines.get(name)
        family = spec.has_formulations
        if args.formulations:
            forms = _split(args.formulations)
        elif args.engines and family:
            forms = list(spec.formulations)
        else:
            forms = [base.get("formulation", "seed")]
        for form in forms if family else ["seed"]:
            flagslib.check_value("formulation", form, "--formulations")
            if form not in spec.formulations:
                continue  # not this engine's (as --formulations means nothing outside the family)
            for dtype in dtypes:
                extra = f"engine={name},floatX={dtype},formulation={form}"
                if args.engines and spec.mode:
                    extra += f",mode={spec.mode}"
                config = flagslib.load(flags=(args.flags or []) + [extra], rc=args.rc)
                out.append(config)
    return out, skipped, explicit


def cmd_parity(args) -> int:
    from ..bench.parity import rows_from_worker
    from ..bench.process import kill_all_workers, run_worker
    base = load_config(args)
    if args.engines and args.flags and any("engine=" in f or "mode=" in f for f in args.flags):
        raise ConfigError("--engines and an engine= or mode= in --flags contradict each other")
    configs, skipped, explicit = parity_profiles(args, base)
    rows = []
    progress = progress_bar(len(configs), "parity", enabled=len(configs) > 1)
    try:
        for config in configs:
            if progress:
                progress.update(progress.task_ids[0], description=f"{config.engine} "
                                f"{config.floatX} {config['formulation']}")
            result = run_worker("parity", config, {}, timeout=args.timeout)
            rows += rows_from_worker(config, result)
            if progress:
                progress.advance(progress.task_ids[0])
    except KeyboardInterrupt:
        kill_all_workers()
        raise
    finally:
        if progress:
            progress.stop()
    print_parity(rows, skipped)
    if args.json:
        from ..atomic import write_json_atomic
        write_json_atomic(args.json, {"schema": "rnnperf.parity/1",
                                      "rows": [r.as_json() for r in rows],
                                      "skipped": [{"engine": n, "reason": r} for n, r in skipped]})
    bad = [r for r in rows if r.status not in ("ok", "unavailable")]
    unavailable = [r for r in rows if r.status == "unavailable"]
    if bad:
        names = sorted({"/".join(p for p in (r.engine, r.dtype, r.formulation, r.variant)
                                 if p != "-") for r in bad})
        print(f"rnnperf parity: FAILED for {', '.join(names)}", file=sys.stderr)
        return 1
    if explicit and (skipped or unavailable):
        what = [n for n, _ in skipped] + [r.engine for r in unavailable]
        reasons = [r for _, r in skipped] + [r.error or "" for r in unavailable]
        raise Unavailable(f"engine {what[0]} is not available: {reasons[0]}")
    return 0


def _fmt(value: float) -> str:
    return f"{value:.1e}" if value == value else "nan"


def print_parity(rows, skipped) -> None:
    from rich.table import Table
    table = Table("engine", "formulation", "dtype", "variant", "status", "probs", "loss",
                  "grads", "params after SGD", "worst (max abs)", "device",
                  title="parity vs the float64 NumPy oracle: max error relative to the "
                        "quantity's scale")
    for row in rows:
        groups = {"probs": [], "loss": [], "grads": [], "params": []}
        for err in row.errors:
            key = ("grads" if err.quantity.startswith("d") else
                   "params" if err.quantity.endswith("+") else err.quantity)
            groups[key].append(err)
        cells = [_fmt(max(e.max_rel for e in g)) if g else "-" for g in groups.values()]
        worst = row.worst
        status = row.status if row.status == "ok" else f"[red]{row.status}[/red]"
        table.add_row(row.engine, row.formulation, row.dtype, row.variant, status, *cells,
                      f"{worst.quantity} {_fmt(worst.max_abs)}" if worst else (row.error or "")[:60],
                      row.device_actual or "-")
    out = stdout_console(160)
    out.print(table)
    for name, reason in skipped:
        out.print(f"not run: {name}: {reason}")
    for row in rows:
        if row.error and row.variant == "single":
            out.print(f"{row.engine} {row.dtype}: {row.error}")
