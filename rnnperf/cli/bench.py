"""Sub-command ``bench``: measure profiles x shapes x tasks, one worker each.

Progress goes to stderr (rich), the table to stdout. Exit codes: 1 if a measurement failed (NaN
included) or timed out, else 3 if an engine was unavailable, else 0; with ``--compare`` a
regression is also 1. Bad usage or a corrupt/foreign results file 2. A ``--scheduler`` that cannot
be reached or has no ``bench`` worker 3, before any file is written. On Dask a measurement whose
worker was lost twice is ``failed`` (1); one left with no worker at all is ``unavailable``.
"""

from __future__ import annotations

import argparse

from ..bench.compare import DEFAULT_THRESHOLD
from .args import (add_dask_args, add_plan_args, add_progress_arg, add_sweep_args,
                   add_wide_arg, plan_from_args, print_skipped)


#: what each command's exit status means, and what it writes (docs/cli.md; the module
#: docstring says the same at more length)
EXIT_CODES = {
    "bench": {0: "every measurement ran (and, with --compare, no regression)",
              1: "a measurement failed (NaN included) or timed out, or a worker lost twice on "
                 "Dask; with --compare, a regression",
              2: "bad usage or configuration: a bad flag, shape or grid, an existing --out "
                 "without --resume or --force, a corrupt or foreign results document",
              3: "nothing failed but an engine was unavailable; Dask not installed, or a "
                 "--scheduler that cannot be reached or has no bench worker (before any file "
                 "is written)"},
}
WRITES = {
    "bench": "--out (default results.json): the rnnperf.results/3 document, rewritten "
             "atomically after every measurement so that --resume can continue it; the "
             "engines' compile caches",
}


def register(sub) -> None:
    p = sub.add_parser("bench", help="benchmark profiles x shapes x tasks, one worker each",
                       description="Benchmark each profile x shape x task in its own worker "
                                   "process and write an rnnperf.results/3 document.")
    add_plan_args(p)
    p.add_argument("--out", default="results.json", help="results document (default %(default)s)")
    add_sweep_args(p)
    add_dask_args(p)
    p.add_argument("--processes", type=int, default=1, metavar="N",
                   help="repetitions, as pyperf's --processes: N fresh workers per "
                        "measurement, in N interleaved passes over the sweep, their rounds "
                        "pooled; never run at the same time (default %(default)s)")
    p.add_argument("--warmup", type=int, default=1, metavar="N",
                   help="untimed calls after the first (default %(default)s)")
    p.add_argument("--compare", metavar="BASE.json", help="then compare with BASE.json")
    p.add_argument("--threshold", default=f"{DEFAULT_THRESHOLD:.0%}",
                   help="regression threshold for --compare (default %(default)s)")
    add_progress_arg(p)
    add_wide_arg(p)
    p.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    from ..bench import results, sweep
    from ..bench.runners import dask_session
    from ..bench.compare import (compare_docs, conventions_line, exit_code, parse_threshold,
                                 render)
    from ..bench.table import render_results
    from ..errors import ConfigError
    from ..ui import stdout_console
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads {args.threads}: must be a positive integer")
    threshold = parse_threshold(args.threshold)
    base = results.load(args.compare) if args.compare else None   # fail before the sweep
    jobs = plan_from_args(args)
    settings = sweep.Settings(min_time=args.min_time, rounds=args.rounds, warmup=args.warmup,
                              timeout=args.timeout, processes=args.processes)
    with dask_session(args.scheduler or args.dask, args.connect_timeout) as runner:
        doc = sweep.run_sweep(jobs, settings, args.out, resume=args.resume, force=args.force,
                              progress=not args.no_progress, runner=runner)
    keys = {j.key for j in jobs}
    mine = [m for m in doc.results if m.key in keys]
    if args.selection.not_run:                # --engines all: what it left out, and why
        doc.skipped = [{"engine": n, "reason": r} for n, r in args.selection.not_run]
        results.save(doc, args.out)
    render_results(mine, wide=args.wide)
    print_skipped(args.selection)
    code = sweep.exit_code(mine)
    if base is not None:
        rows = compare_docs(base, doc, threshold)
        render(rows, threshold, stdout_console())
        print(conventions_line(base, doc))
        if exit_code(rows):
            return 1
    return code
