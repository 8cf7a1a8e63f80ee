"""The parity document, schema ``rnnperf.parity/1``: what ``rnnperf parity --out`` writes and
``--json`` prints, published as ``docs/parity.schema.json`` (``scripts/results_schema.py``).

One JSON object::

    {
      "schema":     "rnnperf.parity/1",
      "shape":      {"T", "B", "I", "H", "O"},           # the case (lengths ragged over 1..T)
      "tolerances": {"float64": 1e-9, "float32": 2e-4},  # relative to each quantity's scale
      "cells":      {name: {"name", "source"?, "sha256"?}},
      "rows":       [{"engine", "cell", "formulation", "dtype", "variant", "status", "error",
                      "device_actual", "c_kernels",
                      "quantities": {name: {"max_abs", "max_rel", "tolerance", "ok"}}}],
      "skipped":    [{"engine", "reason"}]                # not run here, and why
    }

``status`` is ``ok`` (every quantity within its tolerance), ``mismatch``, ``failed``,
``timeout`` or ``unavailable``. A quantity's ``tolerance`` is the one it was judged by: the
dtype's, widened under ``matmul_precision=tf32``/``bf16`` (:func:`rnnperf.bench.parity.tolerance`).
A figure that is not finite is the string ``"nan"`` or ``"inf"``: the document is strict JSON.
"""

from __future__ import annotations

from .parity import TOLERANCE
from .schema import SKIPPED_ITEM

SCHEMA = "rnnperf.parity/1"
STATUSES = ("ok", "mismatch", "failed", "timeout", "unavailable")


def document(shape: dict, cells: dict, rows: list, skipped) -> dict:
    """The document of one parity run (rows are :class:`rnnperf.bench.parity.ParityRow`)."""
    return {"schema": SCHEMA, "shape": shape, "tolerances": dict(TOLERANCE), "cells": cells,
            "rows": [r.as_json() for r in rows],
            "skipped": [{"engine": n, "reason": r} for n, r in skipped]}


def json_schema() -> dict:
    """The JSON Schema (draft 2020-12) of :data:`SCHEMA`: ``docs/parity.schema.json``."""
    number = {"type": ["number", "string"]}          # "nan"/"inf" where not finite
    text = {"type": ["string", "null"]}
    quantity = {"type": "object", "required": ["max_abs", "max_rel", "tolerance", "ok"],
                "properties": {"max_abs": number, "max_rel": number,
                               "tolerance": {"type": "number"}, "ok": {"type": "boolean"}}}
    row = {"type": "object",
           "required": ["engine", "cell", "formulation", "dtype", "variant", "status",
                        "quantities"],
           "properties": {"engine": {"type": "string"}, "cell": {"type": "string"},
                          "formulation": {"type": "string"}, "dtype": {"type": "string"},
                          "variant": {"type": "string"}, "status": {"enum": list(STATUSES)},
                          "error": text, "device_actual": text,
                          "c_kernels": {"type": ["boolean", "null"]},
                          "quantities": {"type": "object", "additionalProperties": quantity}}}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": f"{SCHEMA}: an rnnperf parity document",
            "description": "Generated from rnnperf/bench/parity_doc.py (its docstring says every "
                           "field) by scripts/results_schema.py.",
            "type": "object", "required": ["schema", "shape", "rows"],
            "properties": {"schema": {"const": SCHEMA},
                           "shape": {"type": "object",
                                     "additionalProperties": {"type": "integer"}},
                           "tolerances": {"type": "object",
                                          "additionalProperties": {"type": "number"}},
                           "cells": {"type": "object"},
                           "rows": {"type": "array", "items": row},
                           "skipped": {"type": "array", "items": SKIPPED_ITEM}},
            "additionalProperties": True}
