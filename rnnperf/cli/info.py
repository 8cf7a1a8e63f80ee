"""Sub-commands ``flags`` (the effective profile and its sources) and ``engines`` (the registry)."""

from __future__ import annotations

import json

from ..ui import Column, stdout_console, table
from .args import add_profile_args, add_wide_arg, load_config


#: what each command's exit status means, and what it writes (docs/cli.md shows them; the
#: generator is :mod:`rnnperf.cli.reference`)
EXIT_CODES = {
    "flags": {0: "the effective profile was printed",
              2: "a bad key or value in --flags, an rc file or the environment (the line names "
                 "the source and the token), or an --rc file that cannot be read"},
    "engines": {0: "the list was printed; an engine that cannot run here is a row, not an error"},
}
WRITES = {
    "flags": "nothing: the table (or --json) on stdout",
    "engines": "nothing: the table (or --json) on stdout",
}


def register(sub) -> None:
    p = sub.add_parser("flags", help="print the effective configuration and where each value "
                                     "came from")
    add_profile_args(p)
    p.add_argument("--json", action="store_true",
                   help="print an object keyed by dotted name on stdout instead of the table")
    p.set_defaults(func=cmd_flags)

    p = sub.add_parser("engines", help="list every engine, available or not, with versions")
    p.add_argument("--json", action="store_true",
                   help="print a list of objects on stdout instead of the table")
    add_wide_arg(p)
    p.set_defaults(func=cmd_engines)


def cmd_flags(args) -> int:
    config = load_config(args)
    if args.json:
        print(json.dumps(config.as_json(), indent=2))
        return 0
    cols = [Column("key"), Column("value"), Column("source")]
    rows = [(key, setting.value, setting.source)
            for key, setting in sorted(config.settings.items())]
    stdout_console(160).print(table(cols, rows, title="effective rnnperf profile", wide=True))
    print(f"profile: {config.profile() or '(defaults)'}")
    return 0


def cmd_engines(args) -> int:
    from .. import engines
    rows = []
    for name in engines.names():
        spec = engines.get(name)
        ok, reason, versions = engines.availability(name)
        rows.append({"name": name, "available": ok, "reason": reason or None,
                     "versions": versions, "devices": list(spec.devices),
                     "description": spec.description})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    cols = [Column("engine"), Column("available"), Column("devices", essential=False),
            Column("versions", essential=False), Column("notes")]
    cells = [(row["name"], "yes" if row["available"] else "no", ",".join(row["devices"]),
              " ".join(f"{k} {v}" for k, v in row["versions"].items()),
              row["reason"] or row["description"]) for row in rows]
    stdout_console(160).print(table(cols, cells, wide=args.wide))
    return 0
