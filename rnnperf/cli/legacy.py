"""Sub-command ``legacy``: build or inspect the legacy Theano 1.0.5 venv."""

from __future__ import annotations

import json


#: what each command's exit status means, and what it writes (docs/cli.md)
EXIT_CODES = {
    "legacy": {0: "setup: the venv is ready; status: the venv is ready (its facts as JSON)",
               3: "setup: the interpreter does not run, or creating the venv or pip failed; "
                  "status: the venv is not ready"},
}
WRITES = {
    "legacy": "setup: the venv at $RNNPERF_LEGACY_VENV, else $XDG_CACHE_HOME/rnnperf/theano-venv "
              "(~/.cache/rnnperf/theano-venv), marked ready last; status: nothing",
}


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
