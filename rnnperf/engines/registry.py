"""The engine registry: every fact about an engine, by name, without importing it.

Like PyTensor's ``jax_funcify`` dispatch (one function, one small module per op family registering
into it), each engine lives in its own module and is registered here by *name and module path*,
never imported: the parent process of a benchmark must not import an engine, because
Theano-family flags are read at import time. :func:`availability` answers "can it run here?" from
package metadata alone, and :class:`EngineSpec` is the one place that says what an engine is:
its PyTensor mode, the formulations it builds, the devices it can honour and the library its peak
matrix product is measured in. The flags, parity, tune and the machine facts all read it here.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.metadata
import importlib.util
from typing import Callable

from ..errors import ConfigError, Unavailable

#: every formulation of the seed model (rnnperf.model): what ``formulation=`` may say
FORMULATIONS = ("seed", "hoisted", "fused")
#: ``engine=pytensor`` is not an engine: it picks one from ``mode=``, as PyTensor's flag does
PYTENSOR_ALIAS = "pytensor"
#: the PyTensor mode ``engine=pytensor`` gets when the profile sets none (PyTensor's default)
PYTENSOR_DEFAULT_MODE = "FAST_RUN"
#: how a fresh clone gets what a pip extra brings; never a bare ``pip install torch``, which
#: pulls a CUDA build of several GB onto a CPU box (README)
INSTALL_HINT = {"torch": "scripts/bootstrap.sh all", "jax": "scripts/bootstrap.sh",
                "dask": "scripts/bootstrap.sh"}


@dataclasses.dataclass(frozen=True)
class EngineSpec:
    name: str
    module: str                      # rnnperf.engines.<module>
    cls: str
    requires: tuple[str, ...]        # import names that must be importable
    devices: tuple[str, ...]         # what device= it can honour
    description: str
    peak_library: str = "numpy"      # the array library its products run in (the peak probe's)
    extra: str = ""                  # pip extra that installs it
    check: Callable[[], str | None] | None = None  # extra availability probe -> reason or None
    family: str = ""                 # "theano" for engines built from the shared seed graph
    modes: tuple[str, ...] = ()      # PyTensor modes that select it; the first is the one implied
    takes_mode: bool = False         # mode= goes to the engine's own library (legacy Theano)
    formulations: tuple[str, ...] = ("seed",)  # what formulation= may be for it
    default_formulation: str = "hoisted"       # what an unset formulation= resolves to
    #: the optional parts of a cell it needs (rnnperf.cells.contract): the Theano family runs
    #: any cell's step; the oracle, the peers need their own statement of the cell
    cell_parts: tuple[str, ...] = ()
    #: why the default tune space leaves it out on a device kind (``{"cpu": reason}``): it cannot
    #: win there, by construction; a space file that names it still measures it
    not_tuned_on: tuple[tuple[str, str], ...] = ()
    #: its thread pools can be resized inside a running process (threadpoolctl, torch's and
    #: Numba's own), so one shared tune worker measures every ``threads=`` of one function; XLA
    #: sizes its pool once, at start
    threads_at_run_time: bool = False

    @property
    def has_formulations(self) -> bool:
        """Builds the shared seed graph, so ``formulation=`` chooses between graphs."""
        return self.family == "theano"

    @property
    def mode(self) -> str | None:
        """The PyTensor mode this engine means (``engine=pytensor-c`` is ``mode=CVM``)."""
        return self.modes[0] if self.modes else None


REGISTRY: dict[str, EngineSpec] = {}


def register(spec: EngineSpec) -> EngineSpec:
    if spec.name in REGISTRY:
        raise ValueError(f"engine {spec.name!r} registered twice")
    if spec.default_formulation not in spec.formulations and spec.has_formulations:
        raise ValueError(f"engine {spec.name!r}: default formulation not among its own")
    REGISTRY[spec.name] = spec
    return spec


def get(name: str) -> EngineSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        near = difflib.get_close_matches(name, list(REGISTRY), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ConfigError(f"unknown engine {name!r}{hint} (known: {', '.join(REGISTRY)})") \
            from None


def names() -> list[str]:
    return list(REGISTRY)


def engine_choices() -> tuple[str, ...]:
    """What ``engine=`` may say: every registered name, and ``pytensor`` before its backends."""
    out = list(REGISTRY)
    first = next(i for i, n in enumerate(out) if n.startswith(PYTENSOR_ALIAS + "-"))
    return tuple(out[:first] + [PYTENSOR_ALIAS] + out[first:])


def mode_table() -> dict[str, str]:
    """Every PyTensor mode name -> the engine it selects (``CVM`` -> ``pytensor-c``)."""
    return {mode: spec.name for spec in REGISTRY.values() for mode in spec.modes}


def _dist_version(import_name: str) -> str | None:
    dist = {"sklearn": "scikit-learn"}.get(import_name, import_name)
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def availability(name: str) -> tuple[bool, str, dict[str, str]]:
    """``(available, reason, versions)`` without importing the engine or its library."""
    spec = get(name)
    versions = {}
    for module in spec.requires:
        if importlib.util.find_spec(module) is None:
            how = f" (run {INSTALL_HINT[spec.extra]})" if spec.extra else ""
            return False, f"{module} is not installed{how}", versions
        versions[module] = _dist_version(module) or "?"
    if spec.check is not None:
        reason = spec.check()
        if reason:
            return False, reason, versions
    return True, "", versions


def load(name: str, config=None):
    """Import and return the engine class (only inside a worker or the in-process API).

    With ``config`` the class is the one for that profile: an engine module may offer variants
    (``pytensor-jax`` with and without its function cache) through ``Engine.variant_for``.
    """
    spec = get(name)
    ok, reason, _ = availability(name)
    if not ok:
        raise Unavailable(f"engine {name} is not available: {reason}")
    module = importlib.import_module(f"rnnperf.engines.{spec.module}")
    cls = getattr(module, spec.cls)
    return cls.variant_for(config) if config is not None else cls


def _legacy_check() -> str | None:
    from ..host import legacy_python
    return None if legacy_python() else "legacy Theano venv not built (run: rnnperf legacy setup)"


_PYTENSOR = ("pytensor",)
_SCAN_FORMULATIONS = ("seed", "hoisted")
register(EngineSpec("numpy", "numpy_engine", "NumpyEngine", ("numpy",), ("cpu",),
                    "hand-written forward + BPTT; the float64 oracle",
                    cell_parts=("oracle_step", "oracle_backward"), threads_at_run_time=True))
register(EngineSpec("pytensor-c", "pytensor_engine", "PyTensorEngine", _PYTENSOR, ("cpu",),
                    "seed graph, C backend (mode=CVM); its loops as fused C kernels "
                    "(formulation=fused), or pytensor.scan (seed, hoisted)", family="theano",
                    modes=("CVM", "C", "C_VM"), formulations=FORMULATIONS,
                    default_formulation="fused", threads_at_run_time=True))
register(EngineSpec("pytensor-numba", "pytensor_engine", "PyTensorEngine",
                    _PYTENSOR + ("numba",), ("cpu",),
                    "seed graph, pytensor.scan, Numba backend (mode=NUMBA)", family="theano",
                    modes=("NUMBA", "FAST_RUN"), formulations=_SCAN_FORMULATIONS,
                    threads_at_run_time=True))
register(EngineSpec("pytensor-jax", "cached_jax_engine", "CachedJaxEngine",
                    _PYTENSOR + ("jax",), ("cpu", "cuda"),
                    "seed graph, pytensor.scan, JAX backend (mode=JAX), function cache",
                    peak_library="jax", extra="jax", family="theano", modes=("JAX",),
                    formulations=_SCAN_FORMULATIONS))
register(EngineSpec("pytensor-pytorch", "pytensor_engine", "PyTensorEngine",
                    _PYTENSOR + ("torch",), ("cpu", "cuda"),
                    "seed graph, PyTorch backend with rnnperf's Scan conversion (mode=PYTORCH)",
                    peak_library="torch", extra="torch", family="theano", modes=("PYTORCH",),
                    formulations=_SCAN_FORMULATIONS, threads_at_run_time=True,
                    not_tuned_on=(("cpu", "its scan loop runs eagerly, one Python call of the "
                                          "step per time step (docs/tuning.md)"),)))
register(EngineSpec("theano", "theano_engine", "TheanoEngine", (), ("cpu",),
                    "seed graph on legacy Theano 1.0.5 in its own venv", check=_legacy_check,
                    family="theano", takes_mode=True, formulations=_SCAN_FORMULATIONS,
                    threads_at_run_time=True,
                    not_tuned_on=(("cpu", "legacy Theano 1.0.5: the seed and hoisted graphs "
                                          "pytensor-c also runs, on Theano's older C backend, "
                                          "without fused kernels"),)))
register(EngineSpec("torch", "torch_engine", "TorchEngine", ("torch",), ("cpu", "cuda"),
                    "peer: torch.nn.RNN(tanh), GRU or LSTM with the seed's weights",
                    peak_library="torch", extra="torch", cell_parts=("torch_module",),
                    threads_at_run_time=True))
register(EngineSpec("jax", "jax_engine", "JaxEngine", ("jax",), ("cpu", "cuda"),
                    "peer: hand-written jax.lax.scan + jax.grad, jitted", peak_library="jax",
                    extra="jax", cell_parts=("jax_step",)))


@dataclasses.dataclass(frozen=True)
class Selection:
    """What ``--engines`` asked for. ``all`` means every engine that can run here: the ones that
    cannot are kept in :attr:`skipped` with the reason, which every command prints and records
    instead of dropping them silently (``--require-all`` turns a skip into exit 3)."""

    names: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...] = ()
    everything: bool = False
    #: installed engines that ``all`` left out because they cannot honour the profile's device
    #: (numpy and pytensor-c under ``device=cuda``): listed like a skip, but by design, so
    #: ``--require-all`` does not fail on them
    off_device: tuple[tuple[str, str], ...] = ()

    @property
    def not_run(self) -> tuple[tuple[str, str], ...]:
        """Every engine ``all`` left out, with the reason: absent here, then off the device."""
        return self.skipped + self.off_device

    def require_all(self) -> None:
        """Exit 3 (:class:`Unavailable`) naming the first engine ``all`` could not run."""
        if self.skipped:
            name, reason = self.skipped[0]
            more = f" (and {len(self.skipped) - 1} more)" if len(self.skipped) > 1 else ""
            raise Unavailable(f"--require-all: engine {name} is not available: {reason}{more}")


def select(text: str | None, allow: tuple[str, ...] = (), device_kind: str = "cpu") -> Selection:
    """Parse an ``--engines`` value: comma-separated registry names (unknown ones are one line,
    exit 2), or ``all``: the engines installed here that can honour ``device_kind`` (``cpu`` or
    ``cuda``). ``allow`` admits extra names (tune's ``pytensor``, picked by ``mode=``)."""
    names = list(dict.fromkeys(t.strip() for t in (text or "").split(",") if t.strip()))
    if "all" in names:
        if len(names) > 1:
            raise ConfigError(f"--engines {text}: 'all' stands alone (every engine that can "
                              "run here)")
        ready, skipped, off_device = [], [], []
        for name in REGISTRY:
            ok, reason, _ = availability(name)
            if not ok:
                skipped.append((name, reason))
            elif device_kind not in REGISTRY[name].devices:
                off_device.append((name, f"runs on {', '.join(REGISTRY[name].devices)} only; "
                                         f"the profile asks device={device_kind}"))
            else:
                ready.append(name)
        return Selection(tuple(ready), tuple(skipped), everything=True,
                         off_device=tuple(off_device))
    for name in names:
        if name not in allow:
            get(name)
    return Selection(tuple(names))
