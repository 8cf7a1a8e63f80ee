"""The worker process: ``python -m rnnperf.bench.worker JOB``, one job, one answer line.

Started by :func:`rnnperf.bench.process.run_worker` with the profile in ``RNNPERF_WORKER_FLAGS``
and the payload as JSON on stdin. Jobs are registered by name (:data:`JOBS`) as
``module:function``; a job takes ``(config, payload)`` and returns a JSON-serialisable dict, which
goes back on the real stdout after :data:`~rnnperf.bench.process.MARKER` (everything else a
library prints goes to stderr). The legacy Theano venv's Python 3.10 runs this module too.
"""

from __future__ import annotations

import importlib
import json
import os
import sys

from .process import FLAGS_VAR, MARKER

JOBS = {
    "parity": "rnnperf.bench.parity:worker_job",
    "bench": "rnnperf.bench.step_job:worker_job",
    "warm": "rnnperf.bench.warm:worker_job",
    "info": "rnnperf.bench.worker:info_job",
}


def info_job(config, payload):
    """Import the engine and report what it is (versions, devices): used by `rnnperf engines`."""
    from ..engines import load
    cls = load(config.engine, config)
    return {"versions": cls.versions()}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Keep the real stdout for our one answer line; everything else printed goes to stderr.
    real_stdout = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    from .. import flags
    from ..errors import RnnperfError, Unavailable, one_line

    def answer(status, data=None, error=None, code=0):
        real_stdout.write(MARKER + json.dumps({"status": status, "data": data or {},
                                               "error": error}, default=_jsonable) + "\n")
        real_stdout.flush()
        return code

    if len(argv) != 1 or argv[0] not in JOBS:
        return answer("failed", error=f"unknown worker job {argv!r}", code=2)
    try:
        payload = json.loads(sys.stdin.read() or "{}")
        config = flags.load(flags=os.environ.get(FLAGS_VAR, ""), use_env=False)
        module, func = JOBS[argv[0]].split(":")
        data = getattr(importlib.import_module(module), func)(config, payload)
        return answer("ok", data)
    except Unavailable as exc:
        return answer("unavailable", error=one_line(exc), code=exc.exit_code)
    except RnnperfError as exc:
        return answer("failed", error=one_line(exc), code=exc.exit_code)
    except Exception as exc:  # a bug or a library failure: one line back, traceback on stderr
        import traceback
        traceback.print_exc()
        return answer("failed", error=one_line(exc), code=1)


def _jsonable(value):
    import numpy as np
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
