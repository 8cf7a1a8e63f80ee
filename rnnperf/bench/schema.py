"""The results document as a JSON Schema, generated from :class:`~.measurement.Measurement`, and
the check every document passes on load (:func:`check_document`): the schema, then what a schema
cannot say (every number of an ``ok`` measurement is finite). ``scripts/results_schema.py``
writes the published files, ``docs/results.schema.json`` and one per older version.
"""

from __future__ import annotations

import dataclasses
import functools
import math

from ..errors import ConfigError
from ..model.spec import TASKS
from .measurement import (ADDED, CONVENTIONS, DERIVED, READABLE, SCHEMA, SHAPE_KEYS, STATUSES,
                          Measurement)


_JSON_TYPES = {"str": "string", "int": "integer", "float": "number", "dict": "object",
               "list": "array", "None": "null"}     # annotation -> JSON Schema type
_SAY_TYPE = {"string": "a string", "integer": "an integer", "number": "a number",
             "object": "an object", "array": "a list", "null": "null"}


def _field_schema(name: str, annotation: str) -> dict:
    """A field's schema from its annotation (``float | None`` -> number or null)."""
    special = {"shape": {"type": "object", "required": list(SHAPE_KEYS), "properties": {
                   k: {"type": "integer", "minimum": 1} for k in SHAPE_KEYS}},
               "times_s": {"type": "array", "items": {"type": "number"}},
               "status": {"enum": list(STATUSES)}, "task": {"enum": list(TASKS)}}
    if name in special:
        return special[name]
    types = [_JSON_TYPES[part.strip()] for part in annotation.split("|")]
    return {"type": types[0] if len(types) == 1 else types}


def measurement_schema(version: str = SCHEMA) -> dict:
    """:class:`Measurement`'s fields in ``version``, then the :data:`DERIVED` figures."""
    later = {name for v, names in ADDED.items() if READABLE.index(v) > READABLE.index(version)
             for name in names}
    fields = [f for f in dataclasses.fields(Measurement) if f.name not in later]
    required = [f.name for f in fields if f.default is f.default_factory is dataclasses.MISSING]
    properties = {f.name: _field_schema(f.name, f.type) for f in fields}
    for f in (f for f in fields if f.name not in required):
        properties[f.name]["default"] = f.default if f.default_factory is dataclasses.MISSING \
            else f.default_factory()
    for name in DERIVED:
        returns = getattr(Measurement, name).fget.__annotations__["return"]
        properties[name] = {**_field_schema(name, returns), "readOnly": True,
                            "description": "derived from times_s; recomputed on load"}
    return {"type": "object", "required": required, "properties": properties,
            "additionalProperties": True,
            "if": {"properties": {"status": {"const": "ok"}}},
            "then": {"required": ["times_s"], "properties": {"times_s": {"minItems": 1}}}}


def json_schema(version: str = SCHEMA) -> dict:
    """The JSON Schema (draft 2020-12) of a ``version`` document: ``docs/results*.schema.json``."""
    maybe_text = {"type": ["string", "null"]}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": f"{version}: an rnnperf results document",
            "description": "Generated from rnnperf/bench/results.py (its docstring says every "
                           "field) by scripts/results_schema.py. Figures in a measurement whose "
                           "status is 'ok' must also be finite (no NaN nor Infinity).",
            "type": "object", "required": ["schema", "results"],
            "properties": {"schema": {"const": version}, "created": maybe_text,
                           "updated": maybe_text, **_conventions(version),
                           "machine": {"type": "object"},
                           "versions": {"type": "object"}, "settings": {"type": "object"},
                           "results": {"type": "array", "items": measurement_schema(version)},
                           **_skipped(version)},
            "additionalProperties": True}


def _skipped(version: str) -> dict:
    """``--engines all``'s engines that could not run, with the reason (added within /3)."""
    if version != SCHEMA:
        return {}
    return {"skipped": {"type": "array", "items": SKIPPED_ITEM}}


#: one engine ``--engines all`` left out (results and parity documents alike)
SKIPPED_ITEM = {"type": "object", "required": ["engine", "reason"],
                "properties": {"engine": {"type": "string"}, "reason": {"type": "string"}},
                "additionalProperties": False}


def _conventions(version: str) -> dict:
    """How the figures were counted (from /3 on; older documents used OLD_CONVENTIONS)."""
    if READABLE.index(version) < READABLE.index("rnnperf.results/3"):
        return {}
    return {"conventions": {"type": "object", "required": list(CONVENTIONS),
                            "properties": {k: {"type": "string"} for k in CONVENTIONS}}}


@functools.lru_cache(maxsize=None)
def _validator(version: str):
    from jsonschema import Draft202012Validator
    return Draft202012Validator(json_schema(version))


def check_document(data: dict, where: str) -> None:
    """Validate against the schema of ``data["schema"]``, then the finiteness rule; raise the
    first violation in document order as one line ``where: results[i] (key): field: what``."""
    found = [(list(e.absolute_path), len(e.schema_path), _say(e))
             for e in _validator(data["schema"]).iter_errors(data)]
    for i, m in enumerate(data["results"] if isinstance(data.get("results"), list) else []):
        if isinstance(m, dict) and m.get("status", "ok") == "ok":
            found += [(path, 0, f"must be finite in an ok measurement, not {value!r}")
                      for path, value in _numbers(m, ["results", i])
                      if not math.isfinite(value)]
    if found:
        path, _, what = min(found, key=lambda p: (_order(data, p[0]), p[1]))
        raise ConfigError(": ".join(filter(None, (where, _name(data, path), what))))


def _numbers(node, path):
    if isinstance(node, float):
        yield path, node
    elif isinstance(node, (dict, list)):
        for step, value in (node.items() if isinstance(node, dict) else enumerate(node)):
            yield from _numbers(value, path + [step])


def _order(data, path) -> tuple:
    """A path's position in the document, as the file lists it."""
    out = []
    for step in path:
        out.append(step if isinstance(step, int) else list(data).index(step))
        data = data[step]
    return tuple(out)


def _name(data, path) -> str:
    """``results[3] (key): times_s[0]``, ``shape.T``, ``machine``; empty for the document."""
    head = ""
    if len(path) >= 2 and path[0] == "results":
        key = data["results"][path[1]]
        key = key.get("key") if isinstance(key, dict) else None
        head = f"results[{path[1]}]" + (f" ({key})" if isinstance(key, str) else "")
        path = path[2:]
    field = "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in path).lstrip(".")
    text = ": ".join(filter(None, (head, field)))
    return text if text.isprintable() else repr(text)[1:-1]        # a key's newline: one line


def _say(error) -> str:
    """What is wrong, in one line, from a jsonschema error."""
    kind, value, instance = error.validator, error.validator_value, error.instance
    shown = repr(instance) if len(repr(instance)) <= 40 else repr(instance)[:37] + "..."
    when = " in an ok measurement" if "then" in error.schema_path else ""
    if kind == "type":
        wanted = " or ".join(_SAY_TYPE[t] for t in ([value] if isinstance(value, str) else value))
        return f"must be {wanted}, not {shown}"
    if kind == "required":
        return f"lacks {', '.join(n for n in value if n not in instance)}{when}"
    if kind == "enum":
        return f"{shown} is not one of {', '.join(map(repr, value))}"
    if kind == "minimum":
        return f"must be >= {value}, not {shown}"
    if kind == "minItems":
        return f"is empty{when}"
    return " ".join(error.message.split())[:200]
