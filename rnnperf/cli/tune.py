"""Sub-command ``tune``: sweep a space of profiles, reject parity failures, write the fastest as an
rc file (:mod:`rnnperf.tune`, whose docstring has the space file and the exit codes)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..model.spec import TASKS
from .args import add_profile_args, add_progress_arg, add_sweep_args, add_wide_arg


def register(sub) -> None:
    from ..tune.run import CONNECT_TIMEOUT
    p = sub.add_parser("tune", help="sweep profiles, reject parity failures, write the fastest "
                                    "as an rc file",
                       description="Measure every point of a flag space (each in its own worker, "
                                   "each checked for parity) and write the fastest as an rc.")
    p.add_argument("--shape", required=True, metavar="T=..,B=..,I=..,H=..[,O=..]")
    p.add_argument("--task", choices=TASKS, default="train")
    p.add_argument("--space", metavar="FILE.toml", help="a [space] table of key = [values]")
    p.add_argument("--engines", metavar="A,B,...", help="restrict the engine key to these")
    add_profile_args(p)
    p.add_argument("--out", required=True, metavar="BEST.theanorc", help="the winner's rc file")
    p.add_argument("--results", metavar="SWEEP.json",
                   help="the sweep's results document (default <out>.sweep.json)")
    add_sweep_args(p, what="worker")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--dask", choices=("local",), help="a local Dask cluster (one worker: measurements never overlap)")
    where.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="an existing Dask cluster")
    p.add_argument("--connect-timeout", type=float, default=CONNECT_TIMEOUT, metavar="S",
                   help="seconds to reach --scheduler and see a worker (default %(default)s)")
    add_progress_arg(p)
    add_wide_arg(p)
    p.set_defaults(func=cmd_tune)


def cmd_tune(args: argparse.Namespace) -> int:
    from ..bench.plan import parse_shape
    from ..bench.results import shape_label
    from ..bench.sweep import Settings
    from ..errors import ConfigError
    from ..tune.run import choose, sweep_space
    from ..tune.space import build_space, expand
    shape = parse_shape(args.shape)
    if Path(args.out).is_dir():
        raise ConfigError(f"--out {args.out}: is a directory; it names the rc file to write")
    jobs = expand(build_space(args.space, args.engines), shape, args.task, args.flags, args.rc)
    settings = Settings(min_time=args.min_time, rounds=args.rounds, timeout=args.timeout)
    settings.check()
    out = Path(args.out)
    sweep = Path(args.results) if args.results else out.with_suffix(".sweep.json")
    doc = sweep_space(jobs, settings, sweep, resume=args.resume, force=args.force,
                      progress=not args.no_progress,
                      scheduler=args.scheduler or ("local" if args.dask else None),
                      connect_timeout=args.connect_timeout)
    choose(doc, jobs, out, sweep, f"rnnperf tune: {shape_label(shape)} {args.task}", args.wide)
    return 0
