"""The results document, schema ``rnnperf.results/3``, and its atomic I/O.

One JSON object::

    {
      "schema":   "rnnperf.results/3",
      "created":  "2025-01-01T12:00:00+00:00",      # ISO 8601, UTC; "updated" on every write
      "updated":  "...",
      "conventions": {"flops": "minimal-products/1", "peak": "engine-median/1"},
      "machine":  {"hostname", "platform", "cpu", "cores_logical", "cores_physical",
                   "memory_gb", "gpus": ["name, memory, driver", ...],
                   "cpu_id": {"vendor", "family", "model", "stepping", "isa": [...]}},
      "versions": {"python", "rnnperf", "numpy", "scipy", "pytensor", "numba", "jax", "jaxlib",
                   "torch" (null when not installed),
                   "blas": {engine: "what the worker reports it links"}},
      "settings": {"min_time_s", "rounds", "timeout_s", "warmup"},
      "results":  [Measurement, ...],                # one per profile x shape x task
      "skipped":  [{"engine", "reason"}, ...]        # --engines all: left out (optional)
    }

A :class:`Measurement` (fields declared once, below) carries:

* identity: ``key`` (``profile|T=..,B=..,I=..,H=..,O=..|task``, what ``compare`` and ``--resume``
  match on), ``profile`` (canonical flags string), ``engine``, ``flags`` (every effective key),
  ``device_requested``, ``device_actual`` (read from the engine's arrays), ``dtype``, ``task``,
  ``shape`` ``{T, B, I, H, O}``, ``threads`` (asked), ``host``, ``cell`` (the cell that ran:
  ``{name}``, and for a user's cell its ``source`` file and that file's ``sha256``);
* threads that ran: ``pools`` (each BLAS/OpenMP pool, torch's, Numba's, and ``cpus``, the CPUs
  the worker may use, which XLA's pool follows; read back after the rounds,
  :mod:`rnnperf.engines.threads`) and ``threads_actual``, the largest of them;
* timing: ``import_s`` (importing the engine's libraries, after the profile's settings that must
  precede it), ``compile_s`` (graph build + compile + first call, import excluded),
  ``function_cache`` (where the compiled function came from: ``hit``, ``miss`` (compiled and
  stored), ``off`` (``function_cache=False``), ``unavailable``, or null for an engine without one;
  :mod:`rnnperf.engines.function_cache`), all three in the first worker; ``loops`` (calls per
  round, first worker), ``processes`` (how many fresh workers' rounds are pooled; ``bench
  --processes``), ``times_s`` (per-step seconds of each round), ``median_s``, ``iqr_s``,
  ``min_s``;
* work and rates: ``flops_per_step`` (the matrix-product FLOPs the step performs, counted under
  the document's ``conventions["flops"]``, :mod:`rnnperf.bench.flops`), ``peak_gflops`` (a square
  matmul through the engine itself, median of rounds, :mod:`rnnperf.bench.peak`), ``peak_n``,
  ``rss_mb`` (the worker's peak resident set over its life, compile included), ``step_peak_mb``
  (the memory the timed step itself needs: the peak during the timed rounds over the resident
  set before the first call); derived: ``seq_per_s`` (B / median),
  ``timesteps_per_s`` (T·B / median), ``gflops`` (FLOPs / median), ``peak_fraction`` (gflops /
  peak_gflops);
* the machine while it was timed (:mod:`rnnperf.bench.load`): ``others_cpu`` (the share of the
  machine's CPU other processes took), ``steal`` (the hypervisor's share), ``loadavg`` (1 minute);
  above :data:`~rnnperf.bench.measurement.BUSY_SHARE` the measurement is ``busy`` and the table
  says to distrust it;
* outcome: ``status`` (``ok``, ``failed``, ``timeout``, ``unavailable``), ``error`` (one line or
  null), ``wall_s`` (the worker's whole life), ``started``, ``blas`` (what the products run on,
  and for the C backends the build and thread facts that change speed: ``blas__ldflags``,
  ``gcc__cxxflags``, ``allow_gc``, ``OMP_WAIT_POLICY``, ``OPENBLAS_THREAD_TIMEOUT``), ``versions``
  (the engine's);
* ``extra``: figures a command adds beyond the benchmark itself, keyed by that command
  (``rnnperf tune`` stores each point's parity outcome under ``extra["parity"]``); JSON only.

The statistics and the *derived* rates are computed from ``times_s`` whenever they are read
(:data:`DERIVED`): written into the file for other readers, recomputed on load. Figures a
measurement could not produce are null. Unknown fields in a file are kept on a round trip only if
declared here; a file whose ``schema`` is not in :data:`READABLE` is *foreign* and never touched.

Versions: ``/2`` added ``import_s`` and ``function_cache``, and took the import out of
``compile_s``. ``/3`` added ``conventions`` (before it, train FLOPs were counted as 3 x forward
and the peak was the best of 5 products in the engine's array library: :data:`OLD_CONVENTIONS`),
the threads read back and the load. Older documents still load, keep the FLOPs they recorded and
say so (``compare`` prints both documents' conventions); ``bench --resume`` refuses to add new
measurements to one.

Each version is published as a JSON Schema generated from this module (:func:`json_schema`;
``docs/results.schema.json``, ``docs/results-1.schema.json`` and ``-2`` for the older ones; ``python
scripts/results_schema.py --write``). Every load validates the document with ``jsonschema``, then
checks that an ``ok`` measurement has rounds and only finite numbers (NaN is not JSON: no schema can
say it); the first violation is one ConfigError line naming the file, measurement and field.

Writes are atomic: the document goes to a temporary file in the same directory, is flushed and
fsynced, and replaces the target with :func:`os.replace`, so a reader (or a parent killed by
SIGKILL mid-write) sees the old document or the new one, never half of one.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from ..errors import ConfigError
from .measurement import (ADDED, CONVENTIONS, DERIVED, OLD_CONVENTIONS,  # noqa: F401
                          READABLE, SCHEMA, SHAPE_KEYS, STATUSES, Measurement, make_key, now,
                          shape_label)
from .schema import check_document, json_schema  # noqa: F401


@dataclasses.dataclass
class ResultsDoc:
    """The whole document; :attr:`results` keeps insertion order and one entry per key."""

    machine: dict = dataclasses.field(default_factory=dict)
    versions: dict = dataclasses.field(default_factory=dict)
    settings: dict = dataclasses.field(default_factory=dict)
    results: list = dataclasses.field(default_factory=list)
    created: str = dataclasses.field(default_factory=now)
    updated: str | None = None
    conventions: dict = dataclasses.field(default_factory=lambda: dict(CONVENTIONS))
    #: ``--engines all``: the engines it left out, ``[{"engine", "reason"}]``
    skipped: list = dataclasses.field(default_factory=list)

    def said_conventions(self) -> str:
        """``flops X, peak Y``: how this document's figures were counted, in a line."""
        return ", ".join(f"{k} {v}" for k, v in sorted(self.conventions.items()))

    def by_key(self) -> dict[str, Measurement]:
        return {m.key: m for m in self.results}

    def put(self, measurement: Measurement) -> None:
        """Add or replace the measurement with the same key."""
        for i, old in enumerate(self.results):
            if old.key == measurement.key:
                self.results[i] = measurement
                break
        else:
            self.results.append(measurement)
        if measurement.blas:
            self.versions.setdefault("blas", {})[measurement.engine] = measurement.blas

    def to_json(self) -> dict:
        return {"schema": SCHEMA, "created": self.created, "updated": self.updated,
                "conventions": self.conventions, "machine": self.machine,
                "versions": self.versions, "settings": self.settings,
                "results": [m.to_json() for m in self.results],
                **({"skipped": self.skipped} if self.skipped else {})}

    @classmethod
    def from_json(cls, data, where: str = "results") -> "ResultsDoc":
        if not isinstance(data, dict) or "schema" not in data:
            raise ConfigError(f"{where}: not an rnnperf results document (no 'schema')")
        if data["schema"] not in READABLE:
            raise ConfigError(f"{where}: schema {data['schema']!r} is not one of "
                              f"{', '.join(map(repr, READABLE))}")
        check_document(data, where)
        results = [Measurement.from_json(m, f"{where}: results[{i}]")
                   for i, m in enumerate(data["results"])]
        return cls(machine=data.get("machine") or {}, versions=data.get("versions") or {},
                   settings=data.get("settings") or {}, results=results,
                   created=data.get("created") or now(), updated=data.get("updated"),
                   conventions=data.get("conventions") or dict(OLD_CONVENTIONS),
                   skipped=data.get("skipped") or [])


# --- the JSON Schema of each version, and the checks on load ----------------------------------


def load(path: str | os.PathLike) -> ResultsDoc:
    """Read a results document; a missing, corrupt or foreign file is one ConfigError line."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such results file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") \
            from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: corrupt results file: {exc.msg}") from None
    return ResultsDoc.from_json(data, str(path))


def save(doc: ResultsDoc, path: str | os.PathLike) -> None:
    """Write atomically (:func:`rnnperf.atomic.write_json_atomic`): never a partial file."""
    from ..atomic import write_json_atomic
    doc.updated = now()
    write_json_atomic(path, doc.to_json())
