"""A user's cell: ``cell=PATH.py:Name``, ``cell=package.module:Name``, or a name an installed
package registers under the entry-point group ``rnnperf.cells``.

``Name`` is a class implementing :mod:`.contract`'s required parts; rnnperf instantiates it with
no arguments. Loading checks what can be checked without an engine library (the file, its import,
the class, the required parts, the parameters' names and shapes), each problem one
:class:`~rnnperf.errors.ConfigError` line naming the file; what needs a graph (the step's states,
shapes and dtypes) is checked in a worker (:mod:`rnnperf.model.cell_check`) before any
measurement. The file's sha256 is recorded with every result and keys every cache, so an edited
file never reuses a stale function.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import sys

from ..errors import ConfigError
from .contract import HEAD, OPTIONAL, REQUIRED, Cell

#: the entry-point group under which installed packages ship cells
ENTRY_POINT_GROUP = "rnnperf.cells"


def is_reference(spec: str) -> bool:
    """Whether ``spec`` names a class (``PATH.py:Name``, ``module:Name``) rather than a name."""
    return ":" in spec


def entry_point(name: str):
    """The entry point ``name`` of :data:`ENTRY_POINT_GROUP`, or None."""
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return ep
    return None


def file_sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def split_reference(spec: str) -> tuple[str, str]:
    where, _, name = spec.rpartition(":")
    if not where or not name.isidentifier():
        raise ConfigError(f"cell={spec}: expected PATH.py:ClassName or package.module:ClassName")
    return where, name


def load(spec: str, via: str | None = None) -> Cell:
    """The cell ``spec`` names (a reference), checked; ``via`` names an entry point it came
    from, for the messages."""
    where, name = split_reference(spec)
    label = f"cell={via or spec}"
    if where.endswith(".py") or os.sep in where:
        path = os.path.abspath(os.path.expanduser(where))
        if not os.path.isfile(path):
            raise ConfigError(f"{label}: no such file {where}")
        module = _import_file(path, label)
    else:
        try:
            module = importlib.import_module(where)
        except Exception as exc:
            raise ConfigError(f"{label}: cannot import {where}: {type(exc).__name__}: "
                              f"{exc}") from None
        path = inspect.getsourcefile(module) or getattr(module, "__file__", None)
        if not path:
            raise ConfigError(f"{label}: module {where} has no source file to record")
    cls = getattr(module, name, None)
    if cls is None or not isinstance(cls, type):
        raise ConfigError(f"{label}: {path} has no class {name}")
    try:
        impl = cls()
    except Exception as exc:
        raise ConfigError(f"{label}: {path}: {name}() failed: {type(exc).__name__}: "
                          f"{exc}") from None
    cell = adopt(impl)
    cell.name, cell.source, cell.sha256 = via or spec, path, file_sha256(path)
    check_static(cell, f"{label}: {path}: {name}")
    return cell


def _import_file(path: str, label: str):
    digest = file_sha256(path)[:16]
    module_name = f"rnnperf_user_cell_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module   # what dataclasses and pickling look up
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        del sys.modules[module_name]
        raise ConfigError(f"{label}: {path}:{exc.lineno}: syntax error: {exc.msg}") from None
    except Exception as exc:
        del sys.modules[module_name]
        raise ConfigError(f"{label}: {path}: import failed: {type(exc).__name__}: "
                          f"{exc}") from None
    return module


class Adopted(Cell):
    """A user's object that does not subclass :class:`Cell`, seen through the contract: its
    required parts and whichever optional parts it has."""

    def __init__(self, impl):
        self.impl = impl
        for part in REQUIRED + OPTIONAL:
            if hasattr(impl, part):
                setattr(self, part, getattr(impl, part))


def adopt(impl) -> Cell:
    return impl if isinstance(impl, Cell) else Adopted(impl)


def _has_required(cell: Cell, part: str) -> bool:
    """Whether the user's object has ``part`` of its own (a :class:`Cell` subclass inherits
    ``states``' default, not the base's unimplemented methods)."""
    obj = cell.impl if isinstance(cell, Adopted) else cell
    if not hasattr(obj, part):
        return False
    if part == "states":
        return True
    if isinstance(obj, Cell) and getattr(type(obj), part) is getattr(Cell, part):
        return False
    return callable(getattr(obj, part))


def check_static(cell: Cell, where: str) -> None:
    """The checks that need no engine library: required parts, states, parameter names."""
    for part in REQUIRED:
        if not _has_required(cell, part):
            raise ConfigError(f"{where} lacks the required part {part!r}")
    states = cell.states
    if (isinstance(states, str) or not isinstance(states, (tuple, list)) or not states
            or not all(isinstance(s, str) and s for s in states)):
        raise ConfigError(f"{where}: states must be a non-empty tuple of names, got {states!r}")
    cell.states = tuple(states)
    try:
        shapes = cell.param_shapes(2, 3)
    except Exception as exc:
        raise ConfigError(f"{where}: param_shapes(2, 3) failed: {type(exc).__name__}: "
                          f"{exc}") from None
    if not isinstance(shapes, dict) or not shapes:
        raise ConfigError(f"{where}: param_shapes must return a non-empty dict name -> shape")
    for pname, shape in shapes.items():
        if not isinstance(pname, str) or not pname.isidentifier():
            raise ConfigError(f"{where}: parameter name {pname!r} is not an identifier")
        if pname in HEAD:
            raise ConfigError(f"{where}: parameter {pname!r} clashes with the model's softmax "
                              f"head ({', '.join(HEAD)})")
        if (not isinstance(shape, (tuple, list)) or not shape
                or not all(isinstance(d, int) and d > 0 for d in shape)):
            raise ConfigError(f"{where}: param_shapes()[{pname!r}] must be a tuple of positive "
                              f"ints, got {shape!r}")
    order = getattr(cell, "param_order", None)
    if order is not None and set(order) != set(shapes) | set(HEAD):
        raise ConfigError(f"{where}: param_order {tuple(order)} must name each parameter once "
                          f"({', '.join(sorted(set(shapes) | set(HEAD)))})")
