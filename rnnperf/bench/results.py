"""The results document, schema ``rnnperf.results/2``, and its atomic I/O.

One JSON object::

    {
      "schema":   "rnnperf.results/2",
      "created":  "2025-01-01T12:00:00+00:00",      # ISO 8601, UTC; "updated" on every write
      "updated":  "...",
      "machine":  {"hostname", "platform", "cpu", "cores_logical", "cores_physical",
                   "memory_gb", "gpus": ["name, memory, driver", ...]},
      "versions": {"python", "rnnperf", "numpy", "scipy", "pytensor", "numba", "jax", "jaxlib",
                   "torch" (null when not installed),
                   "blas": {engine: "what the worker reports it links"}},
      "settings": {"min_time_s", "rounds", "timeout_s", "warmup"},
      "results":  [Measurement, ...]                 # one per profile x shape x task
    }

A :class:`Measurement` (fields declared once, below) carries:

* identity: ``key`` (``profile|T=..,B=..,I=..,H=..,O=..|task``, what ``compare`` and ``--resume``
  match on), ``profile`` (canonical flags string), ``engine``, ``flags`` (every effective key),
  ``device_requested``, ``device_actual`` (read from the engine's arrays), ``dtype``, ``task``,
  ``shape`` ``{T, B, I, H, O}``, ``threads`` (pinned), ``host``;
* timing: ``import_s`` (importing the engine's libraries, after the profile's settings that must
  precede it), ``compile_s`` (graph build + compile + first call, import excluded),
  ``function_cache`` (where the compiled function came from: ``hit``, ``miss`` (compiled and
  stored), ``off`` (``function_cache=False``), ``unavailable``, or null for an engine without one;
  :mod:`rnnperf.engines.function_cache`), all three in the first worker; ``loops`` (calls per
  round, first worker), ``processes`` (how many fresh workers' rounds are pooled; ``bench
  --processes``), ``times_s`` (per-step seconds of each round), ``median_s``, ``iqr_s``,
  ``min_s``;
* derived: ``seq_per_s`` (B / median), ``timesteps_per_s`` (T·B / median), ``flops_per_step``
  (:mod:`rnnperf.bench.flops`), ``gflops`` (model FLOPs / median), ``peak_gflops`` (a square
  matmul in the engine's own library and dtype, :mod:`rnnperf.bench.peak`), ``peak_n``, ``peak_fraction``
  (gflops / peak_gflops), ``rss_mb`` (the worker's peak resident set);
* outcome: ``status`` (``ok``, ``failed``, ``timeout``, ``unavailable``), ``error`` (one line or
  null), ``wall_s`` (the worker's whole life), ``started``, ``blas`` (what the products run on,
  and for the C backends the build and thread facts that change speed: ``blas__ldflags``,
  ``gcc__cxxflags``, ``allow_gc``, ``OMP_WAIT_POLICY``, ``OPENBLAS_THREAD_TIMEOUT``), ``versions``
  (the engine's);
* ``extra``: figures a command adds beyond the benchmark itself, keyed by that command
  (``rnnperf tune`` stores each point's parity outcome under ``extra["parity"]``); JSON only.

The statistics and everything under *derived* except the peak and RSS are computed from
``times_s`` whenever they are read (:data:`DERIVED`): written into the file for other readers,
recomputed on load. Figures a measurement could not produce are null. Unknown fields in a file are kept on a round
trip only if declared here; a file whose ``schema`` is not in :data:`READABLE` is *foreign* and
never touched.

Versions: ``/2`` added ``import_s`` and ``function_cache``, and took the import out of
``compile_s``. A ``/1`` document still loads (those fields null; its ``compile_s`` includes the
import) and is written back as ``/2``, a superset.

Writes are atomic: the document goes to a temporary file in the same directory, is flushed and
fsynced, and replaces the target with :func:`os.replace`, so a reader (or a parent killed by
SIGKILL mid-write) sees the old document or the new one, never half of one.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
from pathlib import Path

from ..errors import ConfigError
from .timing import iqr, median

SCHEMA = "rnnperf.results/2"
READABLE = ("rnnperf.results/1", SCHEMA)   # older versions this module still loads
SHAPE_KEYS = ("T", "B", "I", "H", "O")
STATUSES = ("ok", "failed", "timeout", "unavailable")


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def shape_label(shape: dict) -> str:
    return ",".join(f"{k}={shape[k]}" for k in SHAPE_KEYS if k in shape)


def make_key(profile: str, shape: dict, task: str) -> str:
    return f"{profile}|{shape_label(shape)}|{task}"


#: figures derived from ``times_s`` (and the shape, task and peak): never stored as state, written
#: into every document for readers, recomputed on load
DERIVED = ("median_s", "iqr_s", "min_s", "seq_per_s", "timesteps_per_s", "flops_per_step",
           "gflops", "peak_fraction")


@dataclasses.dataclass
class Measurement:
    """One profile x shape x task: what was asked, what was measured, how it ended.

    Like pytest-benchmark's ``Stats``, it keeps the raw per-step times (``times_s``) and derives
    every statistic from them on read (:data:`DERIVED`), so pooling more rounds or loading an old
    document can never leave a stale median behind.
    """

    key: str
    profile: str
    engine: str
    task: str
    shape: dict
    flags: dict = dataclasses.field(default_factory=dict)
    device_requested: str = "cpu"
    device_actual: str | None = None
    dtype: str = "float32"
    threads: int | None = None
    host: str | None = None
    status: str = "ok"
    error: str | None = None
    import_s: float | None = None
    compile_s: float | None = None
    function_cache: str | None = None
    loops: int | None = None
    processes: int | None = None
    times_s: list = dataclasses.field(default_factory=list)
    peak_gflops: float | None = None
    peak_n: int | None = None
    rss_mb: float | None = None
    wall_s: float | None = None
    started: str | None = None
    blas: str | None = None
    versions: dict = dataclasses.field(default_factory=dict)
    extra: dict = dataclasses.field(default_factory=dict)

    # --- statistics, derived from the rounds ---------------------------------------------------
    @property
    def median_s(self) -> float | None:
        return median(self.times_s) if self.times_s else None

    @property
    def iqr_s(self) -> float | None:
        return iqr(self.times_s) if self.times_s else None

    @property
    def min_s(self) -> float | None:
        return min(self.times_s) if self.times_s else None

    @property
    def flops_per_step(self) -> int | None:
        from .flops import step_flops
        if not self.times_s:
            return None
        s = self.shape
        return step_flops(self.task, s["T"], s["B"], s["I"], s["H"], s["O"])

    def _per_second(self, amount) -> float | None:
        seconds = self.median_s
        return amount / seconds if seconds and amount is not None else None

    @property
    def seq_per_s(self) -> float | None:
        return self._per_second(self.shape["B"])

    @property
    def timesteps_per_s(self) -> float | None:
        return self._per_second(self.shape["T"] * self.shape["B"])

    @property
    def gflops(self) -> float | None:
        rate = self._per_second(self.flops_per_step)
        return rate / 1e9 if rate is not None else None

    @property
    def peak_fraction(self) -> float | None:
        gflops = self.gflops
        return gflops / self.peak_gflops if gflops is not None and self.peak_gflops else None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict:
        out = dataclasses.asdict(self)
        out.update({name: getattr(self, name) for name in DERIVED})
        return out

    @classmethod
    def from_json(cls, data: dict, where: str = "results") -> "Measurement":
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: a measurement must be an object")
        names = {f.name for f in dataclasses.fields(cls)}
        missing = [n for n in ("key", "profile", "engine", "task", "shape") if n not in data]
        if missing:
            raise ConfigError(f"{where}: measurement lacks {', '.join(missing)}")
        if data.get("status", "ok") not in STATUSES:
            raise ConfigError(f"{where}: bad status {data.get('status')!r}")
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclasses.dataclass
class ResultsDoc:
    """The whole document; :attr:`results` keeps insertion order and one entry per key."""

    machine: dict = dataclasses.field(default_factory=dict)
    versions: dict = dataclasses.field(default_factory=dict)
    settings: dict = dataclasses.field(default_factory=dict)
    results: list = dataclasses.field(default_factory=list)
    created: str = dataclasses.field(default_factory=now)
    updated: str | None = None

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
                "machine": self.machine, "versions": self.versions, "settings": self.settings,
                "results": [m.to_json() for m in self.results]}

    @classmethod
    def from_json(cls, data, where: str = "results") -> "ResultsDoc":
        if not isinstance(data, dict) or "schema" not in data:
            raise ConfigError(f"{where}: not an rnnperf results document (no 'schema')")
        if data["schema"] not in READABLE:
            raise ConfigError(f"{where}: schema {data['schema']!r} is not one of "
                              f"{', '.join(map(repr, READABLE))}")
        if not isinstance(data.get("results"), list):
            raise ConfigError(f"{where}: 'results' must be a list")
        results = [Measurement.from_json(m, f"{where}: results[{i}]")
                   for i, m in enumerate(data["results"])]
        return cls(machine=data.get("machine") or {}, versions=data.get("versions") or {},
                   settings=data.get("settings") or {}, results=results,
                   created=data.get("created") or now(), updated=data.get("updated"))


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
