"""The recurrent cells: one contract (:mod:`.contract`), one module per built-in cell, and a
user's cell from a file of theirs (:mod:`.user`).

``cell=`` names one: a built-in (:data:`BUILTIN`), ``PATH.py:Name``, ``package.module:Name``, or a
name an installed package registers under the entry-point group ``rnnperf.cells``. Everything in
rnnperf asks :func:`get` for the cell object and looks its parts up there. Adding a built-in cell
is one module and one line in :data:`BUILTIN`.

What each engine and formulation needs of a cell is said once, here (:func:`refusal`): the
Theano-family engines run any cell's step (the seed formulation); the others need an optional
part (the registry's ``EngineSpec.cell_parts``).
"""

from __future__ import annotations

from ..errors import ConfigError
from .contract import HEAD, OPTIONAL, PARTS, REQUIRED, Cell, StepParams, default_init, gate
from .elman import Elman
from .gru import GRU
from .lstm import LSTM
from .user import ENTRY_POINT_GROUP, entry_point, file_sha256, is_reference

__all__ = ["Cell", "StepParams", "gate", "default_init", "get", "names", "refusal",
           "HEAD", "PARTS", "REQUIRED", "OPTIONAL", "BUILTIN", "ENTRY_POINT_GROUP"]

#: the built-in cells, by ``cell=`` name
BUILTIN: dict[str, type[Cell]] = {"elman": Elman, "gru": GRU, "lstm": LSTM}
#: what a formulation needs of a cell beyond its step
FORMULATION_PARTS = {"seed": (), "hoisted": ("hoisted_last_state",),
                     "fused": ("hoisted_last_state", "fused_ops")}

_LOADED: dict[str, Cell] = {}


def names() -> tuple[str, ...]:
    """The built-in cells' names (what ``--cells all`` means)."""
    return tuple(BUILTIN)


def get(spec: str | Cell | None) -> Cell:
    """The cell ``spec`` names, loaded once per process (a user's file again when it changed)."""
    if isinstance(spec, Cell):
        return spec
    spec = spec or "elman"
    if spec in BUILTIN:
        if spec not in _LOADED:
            _LOADED[spec] = BUILTIN[spec]()
        return _LOADED[spec]
    cached = _LOADED.get(spec)
    if cached is not None and cached.source and file_sha256(cached.source) == cached.sha256:
        return cached
    from .user import load
    if is_reference(spec):
        cell = load(spec)
    else:
        ep = entry_point(spec)
        if ep is None:
            raise ConfigError(f"cell={spec}: not a built-in cell ({', '.join(BUILTIN)}), not "
                              f"PATH.py:Name or module:Name, and no installed package registers "
                              f"it under {ENTRY_POINT_GROUP}")
        cell = load(ep.value, via=spec)
    _LOADED[spec] = cell
    return cell


def missing_parts(cell: Cell, parts) -> list[str]:
    return [p for p in parts if not cell.has(p)]


def refusal(cell: Cell, engine: str, formulation: str | None = None) -> str | None:
    """Why ``engine`` cannot run ``cell`` under ``formulation``, in one line naming what is
    missing; None if it can. ``engine=""`` asks about the formulation alone."""
    from ..engines import registry
    spec = registry.get(engine) if engine else None
    family = spec is None or spec.has_formulations
    needs = FORMULATION_PARTS.get(formulation or "seed", ()) if family else spec.cell_parts
    missing = missing_parts(cell, needs)
    if not missing:
        return None
    what = f"formulation={formulation}" if family else f"engine={engine}"
    return (f"cell={cell.name}: {what} needs the cell's {', '.join(missing)}, which it does not "
            "have" + (" (formulation=seed runs any cell's step)" if family else ""))
