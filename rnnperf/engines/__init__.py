"""The engine registry: names to lazily imported engine classes.

Like PyTensor's ``jax_funcify`` dispatch (one function, one small module per op family registering
into it), each engine lives in its own module and is registered here by *name and module path*,
never imported: the parent process of a benchmark must not import an engine, because
Theano-family flags are read at import time. :func:`availability` answers "can it run here?" from
package metadata alone.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import importlib.util
from typing import Callable

from ..errors import ConfigError, Unavailable


@dataclasses.dataclass(frozen=True)
class EngineSpec:
    name: str
    module: str                      # rnnperf.engines.<module>
    cls: str
    requires: tuple[str, ...]        # import names that must be importable
    devices: tuple[str, ...]         # what device= it can honour
    description: str
    extra: str = ""                  # pip extra that installs it
    check: Callable[[], str | None] | None = None  # extra availability probe -> reason or None
    family: str = ""                 # "theano" for engines built from the shared seed graph

    @property
    def has_formulations(self) -> bool:
        """Builds the shared seed graph, so ``formulation=seed|hoisted`` means something."""
        return self.family == "theano"

    @property
    def formulations(self) -> tuple[str, ...]:
        """What ``formulation=`` may be for this engine (one, ``seed``, outside the family)."""
        from ..flags import formulations_for
        return formulations_for(self.name) if self.has_formulations else ("seed",)


REGISTRY: dict[str, EngineSpec] = {}


def register(spec: EngineSpec) -> EngineSpec:
    if spec.name in REGISTRY:
        raise ValueError(f"engine {spec.name!r} registered twice")
    REGISTRY[spec.name] = spec
    return spec


def get(name: str) -> EngineSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        import difflib
        near = difflib.get_close_matches(name, list(REGISTRY), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ConfigError(f"unknown engine {name!r}{hint} (known: {', '.join(REGISTRY)})") \
            from None


def names() -> list[str]:
    return list(REGISTRY)


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
            how = f" (pip install 'rnnperf[{spec.extra}]')" if spec.extra else ""
            return False, f"{module} is not installed{how}", versions
        versions[module] = _dist_version(module) or "?"
    if spec.check is not None:
        reason = spec.check()
        if reason:
            return False, reason, versions
    return True, "", versions


def load(name: str):
    """Import and return the engine class (only inside a worker or the in-process API)."""
    spec = get(name)
    ok, reason, _ = availability(name)
    if not ok:
        raise Unavailable(f"engine {name} is not available: {reason}")
    module = importlib.import_module(f"{__name__}.{spec.module}")
    return getattr(module, spec.cls)


def _legacy_check() -> str | None:
    from ..legacy import legacy_python
    return None if legacy_python() else "legacy Theano venv not built (run: rnnperf legacy setup)"


_PYTENSOR = ("pytensor",)
register(EngineSpec("numpy", "numpy_engine", "NumpyEngine", ("numpy",), ("cpu",),
                    "hand-written forward + BPTT; the float64 oracle"))
register(EngineSpec("pytensor-c", "pytensor_engine", "PyTensorEngine", _PYTENSOR, ("cpu",),
                    "seed graph, C backend (mode=CVM); its loops as fused C kernels "
                    "(formulation=fused), or pytensor.scan (seed, hoisted)", family="theano"))
register(EngineSpec("pytensor-numba", "pytensor_engine", "PyTensorEngine",
                    _PYTENSOR + ("numba",), ("cpu",),
                    "seed graph, pytensor.scan, Numba backend (mode=NUMBA)", family="theano"))
register(EngineSpec("pytensor-jax", "pytensor_jax_engine", "PyTensorJaxEngine",
                    _PYTENSOR + ("jax",), ("cpu", "cuda"),
                    "seed graph, pytensor.scan, JAX backend (mode=JAX), function cache",
                    extra="jax", family="theano"))
register(EngineSpec("pytensor-pytorch", "pytensor_engine", "PyTensorEngine",
                    _PYTENSOR + ("torch",), ("cpu", "cuda"),
                    "seed graph, PyTorch backend with rnnperf's Scan conversion (mode=PYTORCH)",
                    extra="torch", family="theano"))
register(EngineSpec("theano", "theano_engine", "TheanoEngine", (), ("cpu",),
                    "seed graph on legacy Theano 1.0.5 in its own venv", check=_legacy_check,
                    family="theano"))
register(EngineSpec("torch", "torch_engine", "TorchEngine", ("torch",), ("cpu", "cuda"),
                    "peer: torch.nn.RNN(tanh) with the seed's weights", extra="torch"))
register(EngineSpec("jax", "jax_engine", "JaxEngine", ("jax",), ("cpu", "cuda"),
                    "peer: hand-written jax.lax.scan + jax.grad, jitted", extra="jax"))
