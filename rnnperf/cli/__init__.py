"""The ``rnnperf`` command line.

One module per command group (like ASV's ``asv/commands/``), each registering its sub-commands
through a ``register(subparsers)`` function listed in :data:`COMMAND_MODULES`; the options they
share are in :mod:`.args`. This module only builds the parser and turns errors into exit codes,
which are part of the API:

0 all good, 1 a check failed, 2 bad usage or configuration, 3 engine or device unavailable.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import RnnperfError, single_line

COMMAND_MODULES = (
    "rnnperf.cli.info",      # flags, engines
    "rnnperf.cli.parity",    # parity
    "rnnperf.cli.train",     # train
    "rnnperf.cli.legacy",    # legacy
    "rnnperf.cli.bench",     # bench
    "rnnperf.cli.results",   # compare, table, plot
    "rnnperf.cli.tune",      # tune
    "rnnperf.cli.warm",      # warm
)


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad usage already; make its message one line."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {single_line(message)}\n")


DESCRIPTION = ("rnnperf: compile scan-based RNNs under Theano-style flags on every backend of the "
               "Theano family, measure them, and prove that their numbers agree. Exit codes: 0 "
               "good, 1 a check failed, 2 bad usage or configuration, 3 engine or device "
               "unavailable.")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__
    parser = _Parser(prog="rnnperf", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"rnnperf {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except RnnperfError as exc:
        print(f"rnnperf {args.command}: {single_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"rnnperf {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:
        if exc.filename is None:
            raise                                   # not about a path the user named: a bug
        print(f"rnnperf {args.command}: {single_line(f'{exc.filename}: {exc.strerror or exc}')}",
              file=sys.stderr)
        return 2
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
