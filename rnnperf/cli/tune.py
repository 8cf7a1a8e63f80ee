"""Sub-command ``tune``: sweep a space of profiles, reject parity failures, write the fastest as an
rc file (:mod:`rnnperf.tune`, whose docstring has the space file and the exit codes)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..model.spec import TASKS
from .args import (Deprecated, add_dask_args, add_engines_arg, add_profile_args,
                   add_progress_arg, add_sweep_args, add_wide_arg, engine_selection,
                   jobs_or_default, print_skipped)


#: what each command's exit status means, and what it writes (docs/cli.md; the package
#: docstring of :mod:`rnnperf.tune` says the same)
EXIT_CODES = {
    "tune": {0: "a winner was written to --out",
             1: "no point passed parity and measured ok (or --budget ran out first): no rc "
                "written; or a user cell's reference fails its finite-difference check",
             2: "bad usage: an unknown key or value in the space file, unparsable TOML, an empty "
                "space, --out a directory, an existing sweep document without --resume or "
                "--force, a bad --eta, --jobs or --budget",
             3: "--space gpu without a CUDA device; with --engines all --require-all, an engine "
                "missing; Dask missing, or a scheduler that cannot be reached or has no bench "
                "worker"},
}
WRITES = {
    "tune": "--out: the winner's rc file, with the figures it was chosen on as a comment header; "
            "--results (default <out>.sweep.json): the sweep's rnnperf.results/3 document, "
            "saved after every point; <out>.png: the sweep's plot; the engines' compile caches",
}


def register(sub) -> None:
    p = sub.add_parser("tune", help="sweep profiles, reject parity failures, write the fastest "
                                    "as an rc file",
                       description="Measure every point of a flag space (each in its own worker, "
                                   "each checked for parity) and write the fastest as an rc.")
    p.add_argument("--shape", required=True, metavar="T=..,B=..,I=..,H=..[,O=..]",
                   help="the shape to tune for: sequence length T, batch B, input width I, "
                        "hidden width H, classes O (default 10)")
    p.add_argument("--task", choices=TASKS, default="train",
                   help="what is timed: the forward pass, or a whole SGD step "
                        "(default %(default)s)")
    p.add_argument("--space", metavar="FILE.toml|gpu",
                   help="a TOML file whose [space] table of key = [values] replaces those keys "
                        "of the default (CPU) space, or gpu: the built-in space for a CUDA "
                        "device, exit 3 without one (docs/guide.md, 'Tune for your hardware')")
    add_engines_arg(p, what="the space's engine key is these")
    add_profile_args(p)
    p.add_argument("--out", required=True, metavar="BEST.theanorc", help="the winner's rc file")
    p.add_argument("--results", metavar="SWEEP.json",
                   help="the sweep's results document (default <out>.sweep.json)")
    add_sweep_args(p, what="worker")
    add_dask_args(p)
    add_strategy_args(p)
    add_progress_arg(p)
    add_wide_arg(p)
    p.set_defaults(func=cmd_tune)


def add_strategy_args(p) -> None:
    """How the space is searched (docs/tuning.md, "Successive halving")."""
    p.add_argument("--strategy", choices=("halving", "exhaustive"), default="halving",
                   help="halving: short runs of every point, longer runs of the best third, "
                        "... (default); exhaustive: every point at full length")
    p.add_argument("--eta", type=int, default=3, metavar="N",
                   help="halving keeps the best 1/N of each rung (default %(default)s)")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="halving: compile every distinct function first, N engines at a time "
                        "(compiles are no measurement; 0: off; default the cores, at most 4)")
    p.add_argument("--prewarm", type=int, dest="jobs", action=Deprecated, instead="--jobs",
                   metavar="N")
    p.add_argument("--processes", type=int, default=1, metavar="N",
                   help="measure the finalists (halving's last rung; every point when "
                        "exhaustive) N times, interleaved, and pool their rounds: a median "
                        "of one stretch of a busy machine's time can be 20 %% off "
                        "(default %(default)s)")
    p.add_argument("--budget", metavar="DURATION",
                   help="stop after this long (90s, 10m, 1h) with the best point so far; "
                        "halving only")


def cmd_tune(args: argparse.Namespace) -> int:
    from ..bench.plan import parse_shape
    from ..bench.results import shape_label
    from ..bench.sweep import Settings
    from ..errors import ConfigError
    from ..tune.run import choose, sweep_space
    from ..tune.space import build_space, expand, left_out
    shape = parse_shape(args.shape)
    if Path(args.out).is_dir():
        raise ConfigError(f"--out {args.out}: is a directory; it names the rc file to write")
    args.engine_aliases = ("pytensor",)      # engine=pytensor picks its backend from mode=
    selection = engine_selection(args)
    print_skipped(selection, file=sys.stderr)
    engines_arg = ",".join(selection.names) if args.engines else None
    jobs = expand(build_space(args.space, engines_arg), shape, args.task, args.flags, args.rc)
    skipped = [*selection.not_run, *left_out(args.space, engines_arg)]
    for name, reason in left_out(args.space, engines_arg):
        print(f"left out of the default space: {name}: {reason}")
    from ..bench.cell_check import check_cells, fd_failures
    # a user's cell: its step checked, its FLOPs counted, its reference for parity on promotion
    fd_failures(check_cells([j.config for j in jobs], jobs=jobs, reference=True))
    settings = Settings(min_time=args.min_time, rounds=args.rounds, timeout=args.timeout,
                        processes=args.processes)
    settings.check()
    budget = strategy_budget(args)
    out = Path(args.out)
    sweep = Path(args.results) if args.results else out.with_suffix(".sweep.json")
    doc, cut = sweep_space(jobs, settings, sweep, resume=args.resume, force=args.force,
                           progress=not args.no_progress,
                           scheduler=args.scheduler or ("local" if args.dask else None),
                           connect_timeout=args.connect_timeout, strategy=args.strategy,
                           eta=args.eta, budget=budget, prewarm=args.jobs)
    if skipped:                                 # recorded, as bench records --engines all's
        from ..bench import results as res
        doc.skipped = [{"engine": n, "reason": r} for n, r in skipped]
        res.save(doc, sweep)
    choose(doc, jobs, out, sweep, f"rnnperf tune: {shape_label(shape)} {args.task}", args.wide,
           cut=cut)
    return 0


def strategy_budget(args):
    """The checked ``--strategy``/``--eta``/``--budget``: a Budget (started now); one line,
    exit 2, for a bad value."""
    from ..errors import ConfigError
    from ..tune.budget import Budget, parse_budget
    if args.eta < 2:
        raise ConfigError(f"--eta {args.eta}: must be at least 2")
    args.jobs = jobs_or_default(args.jobs)
    if args.jobs < 0:
        raise ConfigError(f"--jobs {args.jobs}: must be 0 (off) or more")
    if args.budget is None:
        return Budget()
    seconds = parse_budget(args.budget)
    if args.strategy != "halving":
        raise ConfigError("--budget needs --strategy halving (an exhaustive sweep has no "
                          "rungs to cut)")
    return Budget(seconds, text=args.budget)
