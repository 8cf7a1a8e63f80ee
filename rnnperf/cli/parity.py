"""Sub-command ``parity``: every engine against the float64 NumPy oracle, each in its worker."""

from __future__ import annotations

import dataclasses
import sys

from .. import cells as cellslib
from .. import flags as flagslib
from ..errors import ConfigError, Unavailable
from ..ui import Column, print_lines, progress_bar, stdout_console, table
from .args import (add_engines_arg, add_profile_args, add_progress_arg, add_timeout_arg,
                   add_wide_arg, engine_selection, jobs_or_default, load_config)


#: what each command's exit status means, and what it writes (docs/cli.md)
EXIT_CODES = {
    "parity": {0: "every row agrees with the float64 NumPy oracle within its dtype's tolerance",
               1: "a row disagrees, or its worker failed or timed out; or a user cell's float64 "
                  "reference disagrees with finite differences",
               2: "bad usage: an unknown engine, cell, dtype or formulation, --engines with "
                  "engine= or mode= in --flags, a cell an engine named explicitly cannot run, "
                  "--jobs below 1, --require-all without --engines all",
               3: "the engine asked for (by name or by the profile) is not available here; with "
                  "--engines all --require-all, any engine"},
}
WRITES = {
    "parity": "--out FILE: the rnnperf.parity/1 document (docs/parity.schema.json), written "
              "atomically; the engines' compile caches",
}


def register(sub) -> None:
    p = sub.add_parser("parity", help="compare engines with the float64 NumPy oracle",
                       description="Run each engine x cell x dtype x formulation in its own "
                                   "worker on a small ragged batch and a single sequence, and "
                                   "compare probabilities, loss, gradients and updated "
                                   "parameters with the float64 NumPy oracle.")
    add_profile_args(p)
    add_engines_arg(p, what="without it, the profile's engine alone")
    p.add_argument("--dtypes", metavar="A,B",
                   help="float32,float64 (default: both with --engines, else the profile's "
                        "floatX)")
    p.add_argument("--formulations", metavar="A,B",
                   help="seed,hoisted,fused (default: every one the engine builds with "
                        "--engines, else the profile's)")
    p.add_argument("--cells", metavar="A,B|all",
                   help="elman,gru,lstm, a user's PATH.py:Class, or all (every built-in cell; "
                        "default: the profile's cell=)")
    p.add_argument("--shape", metavar="T=..,B=..,I=..,H=..[,O=..]",
                   help="the case's shape, with ragged lengths over 1..T (default: the tiny "
                        "T=7,B=4,I=5,H=6,O=4)")
    p.add_argument("--out", metavar="FILE",
                   help="also write the matrix as an rnnperf.parity/1 document "
                        "(docs/parity.schema.json)")
    p.add_argument("--json", nargs="?", const="-", metavar="FILE",
                   help="print the rnnperf.parity/1 document on stdout instead of the table "
                        "(--json FILE, which wrote FILE, is deprecated: use --out FILE)")
    add_timeout_arg(p)
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="engines checked at once, each in its own worker (default: the cores, "
                        "at most 4; parity is correctness, not timing, so they may overlap)")
    add_wide_arg(p)
    add_progress_arg(p)
    p.set_defaults(func=cmd_parity)


def _split(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def parity_profiles(args, base: flagslib.Config):
    """Expand ``--engines``/``--dtypes``/``--formulations`` into the configs to run, what was not
    run and why, whether the engines were named, and which of the not-run are engines absent
    here. A formulation the cell cannot run, which nobody named, is listed, not counted as
    absent: a user's cell on pytensor-c runs ``seed``, and that is a pass, not an exit 3."""
    from .. import engines
    skipped: list[tuple[str, str]] = []
    absent: list[tuple[str, str]] = []
    if args.engines:
        selection = engine_selection(args)    # unknown names: exit 2, before anything runs
        names, explicit = list(selection.names), not selection.everything
        skipped += selection.not_run
        absent += selection.skipped           # off the profile's device is by design, not absent
        dtypes = _split(args.dtypes) or ["float32", "float64"]
    else:
        if args.require_all:
            raise ConfigError("--require-all: only with --engines all")
        names, explicit = [base.engine], True
        dtypes = _split(args.dtypes) or [base.floatX]
    for dtype in dtypes:
        flagslib.check_value("floatX", dtype, "--dtypes")
    cells = parity_cells_arg(args.cells, base)
    out = []
    for name in names:
        ok, reason, _ = engines.availability(name)
        if not ok:
            skipped.append((name, reason))
            absent.append((name, reason))
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
            for cell in cells:
                why = cellslib.refusal(cellslib.get(cell), name, form if family else None)
                if why:
                    if (explicit and not family) or (family and args.formulations):
                        raise ConfigError(why)       # asked for by name: refused, exit 2
                    skipped.append((f"{name} {form}" if family else name, why))
                    continue
                for dtype in dtypes:
                    extra = flagslib.format_flags({"engine": name, "floatX": dtype,
                                                   "formulation": form, "cell": cell})
                    if args.engines and spec.mode:
                        extra += f",mode={spec.mode}"
                    out.append(flagslib.load(flags=(args.flags or []) + [extra], rc=args.rc))
    return out, list(dict.fromkeys(skipped)), explicit, absent


def parity_cells_arg(text: str | None, base: flagslib.Config) -> list[str]:
    """``--cells``: names or ``all``; unset, the profile's own cell."""
    names = _split(text)
    if not names:
        return [base.cell]
    if "all" in names:
        return list(cellslib.names())
    for name in names:
        flagslib.check_value("cell", name, "--cells")
    return list(dict.fromkeys(names))


def cmd_parity(args) -> int:
    from ..bench.parity import parity_shape
    from ..bench.plan import parse_shape
    from ..bench.process import kill_all_workers
    shape = parity_shape(parse_shape(args.shape) if args.shape else None)
    base = load_config(args)
    if args.engines and args.flags and any("engine=" in f or "mode=" in f for f in args.flags):
        raise ConfigError("--engines and an engine= or mode= in --flags contradict each other")
    configs, skipped, explicit, absent = parity_profiles(args, base)
    from ..bench.cell_check import check_cells, fd_failures
    reports = check_cells(configs, reference=True, parity_shape=shape, timeout=args.timeout)
    to_stdout = args.json == "-"             # --json: the document is stdout's only content
    if args.json not in (None, "-"):
        print(f"rnnperf parity: --json {args.json} is deprecated; use --out {args.json}",
              file=sys.stderr)
        args.out = args.out or args.json
    for report in reports.values():
        print(report.line(), file=sys.stderr if to_stdout else sys.stdout)
    fd_failures(reports)
    progress = progress_bar(len(configs), "parity",
                            enabled=len(configs) > 1 and not args.no_progress)
    try:
        rows = run_lanes(configs, shape, args.timeout, progress, jobs_or_default(args.jobs))
    except KeyboardInterrupt:
        kill_all_workers()
        raise
    finally:
        if progress:
            progress.stop()
    from ..bench.parity_doc import document
    doc = document(shape, {c: cellslib.get(c).record() for c in sorted({r.cell for r in rows})},
                   rows, skipped)
    if to_stdout:
        import json
        print(json.dumps(doc, indent=1))
    else:
        print_parity(rows, skipped, wide=args.wide, shape=args.shape and shape)
    if args.out:
        from ..atomic import write_json_atomic
        write_json_atomic(args.out, doc)
    bad = [r for r in rows if r.status not in ("ok", "unavailable")]
    unavailable = [r for r in rows if r.status == "unavailable"]
    if bad:
        names = sorted({"/".join(p for p in (r.engine, r.cell, r.dtype, r.formulation, r.variant)
                                 if p != "-") for r in bad})
        print(f"rnnperf parity: FAILED for {', '.join(names)}", file=sys.stderr)
        return 1
    if explicit and (absent or unavailable):
        what = [n for n, _ in absent] + [r.engine for r in unavailable]
        reasons = [r for _, r in absent] + [r.error or "" for r in unavailable]
        raise Unavailable(f"engine {what[0]} is not available: {reasons[0]}")
    return 0


def run_lanes(configs, shape, timeout, progress, jobs: int) -> list:
    """Every config's parity rows, in ``configs``' order, one lane per engine, ``jobs`` lanes
    at a time (:func:`rnnperf.bench.lanes.run_in_lanes`). Cold, the time goes on compiles
    (docs/tuning.md, "Parity, cold")."""
    from ..bench.lanes import run_in_lanes
    from ..bench.parity import rows_from_worker
    from ..bench.process import run_worker
    if jobs < 1:
        raise ConfigError(f"--jobs {jobs}: must be a positive integer")
    found: dict[int, list] = {}

    def check(item) -> None:
        i, config = item
        if progress:
            # one worker compiles (cold: seconds to a minute) and checks both variants
            progress.update(progress.task_ids[0], description=f"compiling and checking "
                            f"{config.engine} {config.cell} {config.floatX} "
                            f"{config['formulation']}")
        result = run_worker("parity", config, {"shape": shape}, timeout=timeout)
        found[i] = rows_from_worker(config, result, shape)
        if progress:
            progress.advance(progress.task_ids[0])
    run_in_lanes(enumerate(configs), lambda item: item[1].engine, check, jobs)
    return [row for i in sorted(found) for row in found[i]]


def _fmt(value: float) -> str:
    return f"{value:.1e}" if value == value else "nan"


PARITY_COLUMNS = [Column("engine"), Column("cell"), Column("formulation"), Column("dtype"),
                  Column("variant"),
                  Column("status"), Column("worst rel", right=True),
                  Column("probs", right=True, essential=False),
                  Column("loss", right=True, essential=False),
                  Column("grads", right=True, essential=False),
                  Column("params+", right=True, essential=False),
                  Column("worst (max abs)", essential=False), Column("device")]


def parity_cells(row) -> list:
    """One row of the parity table: relative errors per group of quantities, the worst."""
    groups = {"probs": [], "loss": [], "grads": [], "params": []}
    for err in row.errors:
        key = ("grads" if err.quantity.startswith("d") else
               "params" if err.quantity.endswith("+") else err.quantity)
        groups[key].append(err)
    cells = [_fmt(max(e.max_rel for e in g)) if g else "-" for g in groups.values()]
    worst = row.worst
    worst_rel = f"{worst.quantity} {_fmt(worst.max_rel)}" if worst else "-"
    worst_abs = f"{worst.quantity} {_fmt(worst.max_abs)}" if worst else (row.error or "")[:60]
    return [row.engine, row.cell, row.formulation, row.dtype, row.variant, row.status, worst_rel,
            *cells,
            worst_abs, row.device_actual or "-"]


def summary(rows, skipped) -> str:
    """The verdict in one line, with the worst relative error and where it was."""
    from ..bench.parity import severity
    ok = [r for r in rows if r.status == "ok"]
    worst = max(((r, r.worst) for r in rows if r.worst is not None),
                key=lambda rw: severity(rw[1]), default=None)
    where = (f"; worst relative error {_fmt(worst[1].max_rel)} ({worst[0].engine}, "
             f"{worst[1].quantity})" if worst else "")
    not_run = f"; {len(skipped)} not run (listed above)" if skipped else ""
    if len(ok) == len(rows):
        return f"all {len(rows)} rows agree with the float64 oracle{where}{not_run}"
    return (f"{len(rows) - len(ok)} of {len(rows)} rows do not agree with the float64 oracle"
            f"{where}{not_run}")


def print_parity(rows, skipped, wide: bool = False, shape: dict | None = None) -> None:
    out = stdout_console(160)
    at = f" at {','.join(f'{k}={v}' for k, v in shape.items())}" if shape else ""
    cells = sorted({r.cell for r in rows})
    columns = PARITY_COLUMNS
    if len(cells) == 1:          # one cell: said once, in the title, and the table stays narrow
        at = f" cell={cells[0]}{at}"
        columns = [dataclasses.replace(c, essential=False) if c.name == "cell" else c
                   for c in PARITY_COLUMNS]
    out.print(table(columns, [parity_cells(r) for r in rows], wide=wide,
                    styles=[None if r.status == "ok" else "red" for r in rows],
                    title=f"parity vs the float64 NumPy oracle{at} (error relative to the "
                          "quantity's scale)"))
    print_lines(out, [f"not run: {name}: {reason}" for name, reason in skipped])
    print_lines(out, [f"{row.engine} {row.dtype}: {row.error}" for row in rows
                      if row.error and row.variant == "single"])
    print_lines(out, [summary(rows, skipped)])
