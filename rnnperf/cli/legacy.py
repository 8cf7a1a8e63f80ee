"""Sub-command ``legacy``: build or inspect the legacy Theano 1.0.5 venv."""

from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("legacy", help="build or inspect the legacy Theano 1.0.5 venv")
    p.add_argument("action", choices=("setup", "status"),
                   help="setup: build the venv (idempotent); status: print what it holds as "
                        "JSON, exit 3 if it is not ready")
    p.add_argument("--python", help="interpreter for the venv (default: a python3.10 if any)")
    p.set_defaults(func=cmd_legacy)


def cmd_legacy(args) -> int:
    from ..engines import legacy_venv
    if args.action == "setup":
        path = legacy_venv.setup_legacy_venv(python=args.python)
        print(f"legacy Theano venv ready: {path}")
        return 0
    status = legacy_venv.legacy_status()
    print(json.dumps(status, indent=2))
    return 0 if status.get("ready") else 3
