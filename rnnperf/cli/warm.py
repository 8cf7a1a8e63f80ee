"""Sub-command ``warm``: compile profiles x shapes x tasks into the caches, cold then cached
(:mod:`rnnperf.bench.warm`). Exit 1 if a worker failed, else 3 if an engine was unavailable."""

from __future__ import annotations

from .args import add_plan_args, add_timeout_arg, plan_from_args, print_skipped


#: what each command's exit status means, and what it writes (docs/cli.md)
EXIT_CODES = {
    "warm": {0: "every profile x shape x task compiled, cold then from the caches",
             1: "a worker failed or timed out",
             2: "bad usage: a bad flag, shape or grid, an unknown engine",
             3: "nothing failed but an engine was unavailable"},
}
WRITES = {
    "warm": "the engines' compile caches only: PyTensor's compiledir (~/.pytensor unless "
            "base_compiledir= says otherwise), and under $XDG_CACHE_HOME/rnnperf "
            "(~/.cache/rnnperf) JAX's compilation cache and the pytensor-jax function cache",
}


def register(sub) -> None:
    p = sub.add_parser("warm", help="pre-compile profiles x shapes x tasks into the caches")
    add_plan_args(p)
    add_timeout_arg(p)
    p.add_argument("--json", action="store_true",
                   help="print the rows as JSON on stdout instead of the table")
    p.set_defaults(func=cmd_warm)


def cmd_warm(args) -> int:
    import json
    import sys

    from ..bench import warm
    rows = warm.warm(plan_from_args(args), args.timeout)
    if args.json:
        print(json.dumps(rows, indent=1))
        print_skipped(args.selection, file=sys.stderr)
    else:
        warm.render(rows)
        print_skipped(args.selection)
    return warm.exit_code(rows)
