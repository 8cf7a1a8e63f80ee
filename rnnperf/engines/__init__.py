"""Engines: the registry (names and facts, :mod:`.registry`) and one module per engine.

Importing this package imports the registry only; an engine module is imported by
:func:`load`, inside a worker process or the in-process API, never in a benchmark's parent.
"""

from .registry import (FORMULATIONS, REGISTRY, EngineSpec, Selection,  # noqa: F401
                       availability, get, load, names, register, select)
