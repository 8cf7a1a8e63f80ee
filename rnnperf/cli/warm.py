"""Sub-command ``warm``: compile profiles x shapes x tasks into the caches, cold then cached
(:mod:`rnnperf.bench.warm`). Exit 1 if a worker failed, else 3 if an engine was unavailable."""

from __future__ import annotations

from .args import add_plan_args, plan_from_args


def register(sub) -> None:
    p = sub.add_parser("warm", help="pre-compile profiles x shapes x tasks into the caches")
    add_plan_args(p)
    p.add_argument("--timeout", type=float, default=900.0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_warm)


def cmd_warm(args) -> int:
    import json

    from ..bench import warm
    rows = warm.warm(plan_from_args(args), args.timeout)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        warm.render(rows)
    return warm.exit_code(rows)
