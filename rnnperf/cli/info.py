"""Sub-commands ``flags`` (the effective profile and its sources) and ``engines`` (the registry)."""

from __future__ import annotations

import json

from ..ui import stdout_console
from .args import add_profile_args, load_config


def register(sub) -> None:
    p = sub.add_parser("flags", help="print the effective configuration and where each value "
                                     "came from")
    add_profile_args(p)
    p.add_argument("--json", action="store_true", help="an object keyed by dotted name")
    p.set_defaults(func=cmd_flags)

    p = sub.add_parser("engines", help="list every engine, available or not, with versions")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_engines)


def cmd_flags(args) -> int:
    config = load_config(args)
    if args.json:
        print(json.dumps(config.as_json(), indent=2))
        return 0
    from rich.table import Table
    table = Table("key", "value", "source", title="effective rnnperf profile")
    for key, setting in sorted(config.settings.items()):
        table.add_row(key, setting.value, setting.source)
    stdout_console(160).print(table)
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
    from rich.table import Table
    table = Table("engine", "available", "devices", "versions", "notes")
    for row in rows:
        table.add_row(row["name"], "yes" if row["available"] else "no", ",".join(row["devices"]),
                      " ".join(f"{k} {v}" for k, v in row["versions"].items()),
                      row["reason"] or row["description"])
    stdout_console(160).print(table)
    return 0
