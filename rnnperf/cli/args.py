"""Options that several commands share, and how they turn into a profile or a plan."""

from __future__ import annotations

import argparse

from ..model.spec import TASKS


def add_profile_args(parser: argparse.ArgumentParser) -> None:
    """``--flags`` and ``--rc``: the command-line layer of the profile (highest priority)."""
    parser.add_argument("--flags", action="append", default=None, metavar="FLAGS",
                        help="Theano-style flags, e.g. engine=pytensor-c,floatX=float32 "
                             "(repeatable; later wins)")
    parser.add_argument("--rc", action="append", default=None, metavar="FILE",
                        help="an INI rc file like theanorc.example (repeatable)")


def add_wide_arg(parser) -> None:
    """``--wide``: every column of the command's table (the default fits 80 columns)."""
    parser.add_argument("--wide", action="store_true",
                        help="show every column (the default table fits 80 columns)")


def add_progress_arg(parser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def load_config(args):
    """The effective profile of ``--flags``/``--rc`` over the environment and rc files."""
    from .. import flags
    return flags.load(flags=args.flags, rc=args.rc)


def add_plan_args(parser) -> None:
    """What a sweep covers (``bench``, ``warm``): profiles x shapes x tasks, and the threads."""
    parser.add_argument("--profile", action="append", metavar="FLAGS",
                        help="a profile, e.g. engine=pytensor-c,floatX=float64 (repeatable)")
    parser.add_argument("--engines", metavar="A,B,...",
                        help="registry names; each is a profile engine=NAME")
    add_profile_args(parser)
    parser.add_argument("--shape", action="append", metavar="T=..,B=..,I=..,H=..[,O=..]",
                        help="input shape (repeatable; default T=100,B=32,I=128,H=256,O=10)")
    parser.add_argument("--grid", metavar="GRID",
                        help="every shape of a grid: per-key value lists (keys T,B,I,H,O "
                             "separated by spaces, values by commas) or a TOML [grid] table; "
                             "a key left out keeps --shape's value, else the reference's")
    parser.add_argument("--task", action="append", choices=TASKS,
                        help="forward and/or train (repeatable; default both)")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="CPU threads (the profile's threads=; default all cores)")


def plan_from_args(args) -> list:
    """The jobs :func:`add_plan_args`' options ask for."""
    from ..bench.plan import REFERENCE_SHAPE, parse_shape, plan, profiles
    from ..errors import ConfigError
    configs = profiles(args.profile, args.engines, args.flags, args.rc, args.threads)
    shapes = [parse_shape(s) for s in args.shape] if args.shape else [dict(REFERENCE_SHAPE)]
    if getattr(args, "grid", None) is not None:
        from ..bench.grid import grid_shapes, parse_grid
        if len(shapes) > 1:
            raise ConfigError("--grid with several --shape: give at most one, the grid's base")
        shapes = grid_shapes(parse_grid(args.grid), shapes[0])
    jobs = plan(configs, shapes, list(dict.fromkeys(args.task or TASKS)))
    from ..bench.cell_check import check_cells
    check_cells(configs, jobs=jobs)          # a user's cell: its step checked, its FLOPs counted
    return jobs


def add_dask_args(parser) -> None:
    """``--dask local`` / ``--scheduler``: measure on Dask, one measurement per machine at a time
    (:mod:`rnnperf.bench.runners`; docs/tuning.md, "Scaling out on Dask")."""
    from ..bench.runners import CONNECT_TIMEOUT, WORKER_HINT
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--dask", choices=("local",),
                       help="a local Dask cluster of one worker with one thread: measurements "
                            "never overlap")
    where.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                       help="an existing Dask cluster; one measurement per machine at a time "
                            f"(start one worker per machine: {WORKER_HINT}); a lost worker's "
                            "measurement is rerun once, then recorded failed")
    parser.add_argument("--connect-timeout", type=float, default=CONNECT_TIMEOUT, metavar="S",
                        help="seconds to reach --scheduler and see a worker; else exit 3 "
                             "(default %(default)s)")


def add_sweep_args(parser, what: str = "measurement") -> None:
    """The options every sweep shares (``bench``, ``tune``): resume, timeouts, rounds."""
    parser.add_argument("--resume", action="store_true",
                        help="keep the finished measurements already in the results document, "
                             "run the rest")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing results document")
    parser.add_argument("--timeout", type=float, default=600.0, metavar="S",
                        help=f"seconds per {what}, compile included (default %(default)s)")
    parser.add_argument("--min-time", type=float, default=0.1, metavar="S",
                        help="minimum seconds per timed round (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=7,
                        help="timed rounds per worker, >= 5 (default %(default)s)")
