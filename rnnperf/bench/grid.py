"""``bench --grid``: the shapes of a Cartesian grid, so one run shows how cost grows with work.

A grid is per-key value lists, either one argument (``T=10,100,1000 B=1,32 H=64,256``: keys
separated by spaces, values by commas) or a TOML file with a ``[grid]`` table read as tune reads
its space (``T = [10, 100]``). A key left out keeps the base shape's value (``--shape`` when
exactly one is given, else the reference workload), so ``--grid T=10,100`` varies T alone.
Errors are one ConfigError line naming the grid and the bad token.
"""

from __future__ import annotations

import itertools
import re

from ..errors import ConfigError
from .measurement import SHAPE_KEYS


def parse_grid(text: str) -> dict[str, list[int]]:
    """``T=10,100 B=1,32`` -> ``{"T": [10, 100], "B": [1, 32]}``; a text without ``=`` is a file
    (TOML, :func:`read_grid_file`)."""
    if "=" not in text:
        return read_grid_file(text)
    where = f"--grid {text!r}"
    grid: dict[str, list[int]] = {}
    for token in text.split():
        raw, sep, values = token.partition("=")
        key = raw.strip().upper()
        if not sep or key not in SHAPE_KEYS:
            raise ConfigError(f"{where}: bad token {token!r} (expected KEY=v,v,... with KEY one "
                              f"of {', '.join(SHAPE_KEYS)})")
        if key in grid:
            raise ConfigError(f"{where}: {key} is given twice")
        items = [v for v in values.split(",") if v.strip()]
        if not items:
            raise ConfigError(f"{where}: {key} has no value")
        for value in items:
            if not re.fullmatch(r"[0-9]+", value.strip()) or int(value) < 1:
                raise ConfigError(f"{where}: {key}={value!r} must be a positive integer")
        grid[key] = list(dict.fromkeys(int(v) for v in items))
    if not grid:
        raise ConfigError(f"{where}: no key")
    return grid


def read_grid_file(path) -> dict[str, list[int]]:
    """The ``[grid]`` table of a TOML file: each key a shape key, each value a positive integer
    or a non-empty list of them."""
    import tomllib
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"--grid {path}: cannot read grid file: {exc.strerror or exc}") \
            from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--grid {path}: unparsable TOML: {exc}") from None
    stray = [k for k in data if k != "grid"]
    if stray:
        raise ConfigError(f"--grid {path}: unknown table or key {stray[0]!r} (expected only "
                          "[grid])")
    table = data.get("grid")
    if not isinstance(table, dict) or not table:
        raise ConfigError(f"--grid {path}: no [grid] table, or an empty one")
    grid: dict[str, list[int]] = {}
    for raw, values in table.items():
        key, where = raw.strip().upper(), f"--grid {path}: [grid] {raw}"
        if key not in SHAPE_KEYS:
            raise ConfigError(f"{where}: unknown key (expected one of {', '.join(SHAPE_KEYS)})")
        if key in grid:
            raise ConfigError(f"{where}: {key} is given twice")
        values = values if isinstance(values, list) else [values]
        if not values:
            raise ConfigError(f"{where}: empty list: the grid has no point")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
            raise ConfigError(f"{where}: values must be positive integers")
        grid[key] = list(dict.fromkeys(values))
    return grid


def grid_shapes(grid: dict[str, list[int]], base: dict) -> list[dict]:
    """Every shape of the grid's Cartesian product over ``base``, T varying slowest."""
    keys = [k for k in SHAPE_KEYS if k in grid]
    return [{**base, **dict(zip(keys, combo))}
            for combo in itertools.product(*(grid[k] for k in keys))]
