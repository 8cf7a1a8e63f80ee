"""One measurement of the results document: its fields, declared once, and the statistics it
derives from its rounds (the document itself is :mod:`.results`, its JSON Schema :mod:`.schema`).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt

from ..errors import ConfigError
from . import flops
from .timing import iqr, median

SCHEMA = "rnnperf.results/3"
READABLE = ("rnnperf.results/1", "rnnperf.results/2", SCHEMA)   # older ones still load
SHAPE_KEYS = ("T", "B", "I", "H", "O")
STATUSES = ("ok", "failed", "timeout", "unavailable")
#: the fields each version added to the one before (absent from the older versions' schemas)
ADDED = {"rnnperf.results/2": ("import_s", "function_cache"),
         "rnnperf.results/3": ("threads_actual", "pools", "others_cpu", "steal", "loadavg",
                               "step_peak_mb", "cell")}
#   step_peak_mb and cell: optional, added within /3


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def shape_label(shape: dict) -> str:
    return ",".join(f"{k}={shape[k]}" for k in SHAPE_KEYS if k in shape)


def make_key(profile: str, shape: dict, task: str) -> str:
    return f"{profile}|{shape_label(shape)}|{task}"


#: figures derived from ``times_s`` (and the shape, the FLOPs and the peak): never stored as state,
#: written into every document for readers, recomputed on load
DERIVED = ("median_s", "iqr_s", "min_s", "seq_per_s", "timesteps_per_s", "gflops",
           "peak_fraction")
#: how the figures of a document were counted; documents before /3 carry none and used the old
CONVENTIONS = {"flops": flops.CONVENTION,
               "peak": "engine-median/1"}       # a product compiled by the engine, median of rounds
OLD_CONVENTIONS = {"flops": flops.OLD_CONVENTION, "peak": "library-best-of-5/0"}
#: above this share of the machine taken by other processes (or stolen by the hypervisor) during
#: the timed rounds, a measurement is flagged as taken on a busy machine
BUSY_SHARE = 0.10


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
    threads_actual: int | None = None
    pools: dict = dataclasses.field(default_factory=dict)
    host: str | None = None
    status: str = "ok"
    error: str | None = None
    import_s: float | None = None
    compile_s: float | None = None
    function_cache: str | None = None
    loops: int | None = None
    processes: int | None = None
    times_s: list = dataclasses.field(default_factory=list)
    flops_per_step: int | None = None
    #: the cell that ran: its ``cell=`` name and, for a user's, its source file and sha256
    cell: dict = dataclasses.field(default_factory=dict)
    peak_gflops: float | None = None
    peak_n: int | None = None
    rss_mb: float | None = None        # the worker's lifetime peak: imports, compile, probe
    step_peak_mb: float | None = None  # the timed rounds' peak over the RSS before the first call
    others_cpu: float | None = None
    steal: float | None = None
    loadavg: float | None = None
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

    @property
    def busy(self) -> bool:
        """Other processes (or the hypervisor) took a share of the machine while it was timed."""
        return max(self.others_cpu or 0.0, self.steal or 0.0) > BUSY_SHARE

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
