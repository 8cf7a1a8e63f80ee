"""The ``rnnperf`` command line.

Each sub-command lives in the module that does its job and registers itself through a
``register(subparsers)`` function listed in :data:`COMMAND_MODULES`; this module only builds the
parser and turns errors into exit codes, which are part of the API:

0 all good, 1 a check failed, 2 bad usage or configuration, 3 engine or device unavailable.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import RnnperfError

COMMAND_MODULES = (
    "rnnperf.commands",      # flags, engines, parity, train, legacy, warm
    "rnnperf.harness_cli",   # bench, compare, plot
    "rnnperf.tune",          # tune
    "rnnperf.warm",          # warm
)


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad usage already; make its message one line."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def add_profile_args(parser: argparse.ArgumentParser) -> None:
    """``--flags`` and ``--rc``: the command-line layer of the profile (highest priority)."""
    parser.add_argument("--flags", action="append", default=None, metavar="FLAGS",
                        help="Theano-style flags, e.g. engine=pytensor-c,floatX=float32 "
                             "(repeatable; later wins)")
    parser.add_argument("--rc", action="append", default=None, metavar="FILE",
                        help="an INI rc file like theanorc.example (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rnnperf", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # a command module not written yet
            raise
        module.register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except RnnperfError as exc:
        print(f"rnnperf {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"rnnperf {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
