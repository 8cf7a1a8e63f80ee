"""Options that several commands share, and how they turn into a profile or a plan."""

from __future__ import annotations

import argparse
import os
import sys

from ..model.spec import TASKS

#: seconds a worker may take, compile included, in every command that starts workers: a cold
#: compile of the largest built-in graph (pytensor-numba, LSTM) takes minutes on a 2-core box
DEFAULT_TIMEOUT = 900.0


class Deprecated(argparse.Action):
    """An old spelling kept for one release: it still works, and says on stderr what replaces
    it (like pytest's deprecation warnings, in one line)."""

    def __init__(self, option_strings, dest, instead: str, nargs=None, const=None, **kwargs):
        self.instead = instead
        kwargs.setdefault("help", f"deprecated spelling of {instead}, kept for one release")
        super().__init__(option_strings, dest, nargs=nargs, const=const, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog}: {option_string} is deprecated; use {self.instead}",
              file=sys.stderr)
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)


def jobs_or_default(jobs: int | None) -> int:
    """``--jobs`` unset: the cores, at most 4 (parity's lanes, tune's compiles; past four lanes
    the engines' compile locks, not the cores, are what they wait on)."""
    return min(os.cpu_count() or 1, 4) if jobs is None else jobs


def add_timeout_arg(parser, what: str = "worker") -> None:
    """``--timeout``: one default everywhere (:data:`DEFAULT_TIMEOUT`)."""
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
                        help=f"seconds per {what}, compile included; a worker past it is killed "
                             "and recorded as timed out (default %(default)s)")


def add_engines_arg(parser, what: str = "each is a profile engine=NAME") -> None:
    """``--engines A,B|all`` and ``--require-all``, the same in every command."""
    parser.add_argument("--engines", metavar="A,B,...|all",
                        help=f"registry names (rnnperf engines), or all: every engine that can "
                             f"run here, the others listed as not run with the reason; {what}")
    parser.add_argument("--require-all", action="store_true",
                        help="with --engines all: exit 3 if any engine cannot run here (for CI)")


def engine_selection(args):
    """The checked ``--engines``/``--require-all``: a :class:`rnnperf.engines.Selection`."""
    from ..engines import select
    from ..errors import ConfigError
    device_kind = "cuda" if load_config(args).wants_gpu else "cpu"
    selection = select(args.engines, allow=getattr(args, "engine_aliases", ()),
                       device_kind=device_kind)
    if args.require_all:
        if not selection.everything:
            raise ConfigError("--require-all: only with --engines all")
        selection.require_all()
    return selection


def print_skipped(selection, file=None) -> None:
    """One line per engine ``--engines all`` left out, with the reason."""
    for name, reason in selection.not_run:
        print(f"not run: {name}: {reason}", file=file or sys.stdout)


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
    add_engines_arg(parser)
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
    selection = engine_selection(args)
    args.selection = selection                   # what --engines all left out, for the report
    configs = profiles(args.profile, ",".join(selection.names), args.flags, args.rc,
                       args.threads)
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
    add_timeout_arg(parser, what)
    parser.add_argument("--min-time", type=float, default=0.1, metavar="S",
                        help="minimum seconds per timed round (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=7,
                        help="timed rounds per worker, >= 5 (default %(default)s)")
