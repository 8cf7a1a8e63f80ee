"""The space a tune measures: flag values (and shape keys) to combine, as harness jobs."""

from __future__ import annotations

import itertools
import os

from .. import flags
from ..bench import results as res
from ..errors import ConfigError


def default_space() -> dict[str, list[str]]:
    """Speed knobs only: every engine installed here that can win on this device, threads and
    formulations. ``floatX`` is a precision the user chooses, not a speed knob: the profile's
    value (float32 unless set) holds; a space file can still add it."""
    cores = os.cpu_count() or 1
    return {"engine": [n for n, _ in default_engines()[0]],
            "threads": list(dict.fromkeys(["1", str(cores)])),
            "formulation": list(flags.FORMULATIONS)}


def default_engines(device_kind: str = "cpu"):
    """``(kept, left_out)``: the engines the default space holds on ``device_kind``, and those
    it leaves out, each ``(name, reason)``; engines not installed are in neither."""
    from .. import engines
    kept, left = [], []
    for name in engines.names():
        if not engines.availability(name)[0]:
            continue
        spec = engines.get(name)
        reason = dict(spec.not_tuned_on).get(device_kind)
        if device_kind not in spec.devices:
            continue
        (left.append((name, reason)) if reason else kept.append((name, "")))
    return kept, left


#: spaces built in, by name (``--space gpu``): what can win on the device, float32 throughout
#: (``floatX`` is the user's choice of precision, not a speed knob). On cuda: the engines whose
#: arrays live there, products in float32 or TF32 (a tf32 point is judged against TF32's own
#: tolerance, rnnperf.bench.parity.tolerance), formulations seed and hoisted (fused is C, CPU).
BUILTIN_SPACES = {
    "gpu": {"device": ["cuda"], "engine": ["torch", "jax", "pytensor-jax", "pytensor-pytorch"],
            "floatX": ["float32"], "matmul_precision": ["float32", "tf32"],
            "formulation": ["seed", "hoisted"]},
}


def builtin_space(name: str) -> dict[str, list[str]]:
    """A built-in space; ``gpu`` exits 3 in one line where no NVIDIA GPU is seen, before any
    worker starts, and keeps the engines installed here."""
    from .. import engines
    from ..bench.machine import gpus
    from ..errors import Unavailable
    space = {k: list(v) for k, v in BUILTIN_SPACES[name].items()}
    if "cuda" in space.get("device", ()) and not gpus():
        raise Unavailable(f"--space {name}: no CUDA device here (nvidia-smi lists no GPU); run it "
                          "on a GPU machine set up by scripts/bootstrap.sh gpu")
    space["engine"] = [n for n in space["engine"] if engines.availability(n)[0]]
    return space


def read_space(path) -> dict[str, list[str]]:
    """The ``[space]`` table of a TOML file, every key and value validated; errors name both."""
    import tomllib
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read space file: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: unparsable TOML: {exc}") from None
    stray = [k for k in data if k != "space"]
    if stray:
        raise ConfigError(f"{path}: unknown table or key {stray[0]!r} (expected only [space])")
    table = data.get("space")
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: no [space] table")
    if not table:
        raise ConfigError(f"{path}: [space] is empty: no point to measure")
    space: dict[str, list[str]] = {}
    for raw, values in table.items():
        where = f"{path}: [space] {raw}"
        values = values if isinstance(values, list) else [values]
        if not values:
            raise ConfigError(f"{where}: empty list: the space has no point")
        if raw.strip().upper() in res.SHAPE_KEYS:
            key = raw.strip().upper()
            if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
                raise ConfigError(f"{where}: shape values must be positive integers")
            space[key] = [str(v) for v in values]
            continue
        key = flags.canonical_key(raw, where)
        checked = []
        for value in values:
            if isinstance(value, (dict, list)):
                raise ConfigError(f"{where}: bad value {value!r}: must be a string or number")
            text = str(value)
            if "," in text:
                raise ConfigError(f"{where}: bad value {text!r}: a value cannot hold a comma")
            checked.append(flags.check_value(key, text, where))
        space[key] = list(dict.fromkeys(checked))
    return space


def left_out(space_file, engines_arg) -> list[tuple[str, str]]:
    """The engines the default space left out of this tune, with the reason: only where the
    engine key is the default's (no ``--engines``, no ``engine`` in the space file)."""
    if engines_arg or space_file in BUILTIN_SPACES:
        return []
    if space_file and "engine" in read_space(space_file):
        return []
    return default_engines()[1]


def build_space(space_file, engines_arg) -> dict[str, list[str]]:
    from .. import engines
    if space_file in BUILTIN_SPACES:
        space = builtin_space(space_file)
    else:
        space = default_space()
        if space_file:
            space.update(read_space(space_file))
    if engines_arg:
        names = [n.strip() for n in engines_arg.split(",") if n.strip()]
        for name in names:
            if name != "pytensor":
                engines.get(name)                       # unknown: one line, exit 2
        space["engine"] = names
    if not space.get("engine"):
        raise ConfigError("the space has no engine (none is available here; see rnnperf "
                          "engines)")
    return space


def expand(space: dict, shape: dict, task: str, base_flags, rc) -> list:
    """Every point of the space as a harness Job, one per distinct profile x shape."""
    from .. import cells, engines
    from ..bench.plan import Job
    keys = list(space)
    jobs, seen = [], set()
    base_cell = flags.load(flags=list(base_flags or []), rc=rc).cell
    for combo in itertools.product(*(space[k] for k in keys)):
        point = dict(zip(keys, combo))
        engine = point.get("engine")
        spec = engines.REGISTRY.get(engine)
        family = engine == engines.registry.PYTENSOR_ALIAS or (spec and spec.has_formulations)
        if not family:
            point.pop("formulation", None)            # one formulation outside the family
        elif spec and point.get("formulation", "seed") not in spec.formulations:
            continue                                  # fused: pytensor-c's alone
        if spec and cells.refusal(cells.get(point.get("cell", base_cell)), engine,
                                  point.get("formulation", "seed") if family else None):
            continue                                  # a user's cell: its step alone (seed)
        text = flags.format_flags((k, v) for k, v in point.items() if k not in res.SHAPE_KEYS)
        try:
            config = flags.load(flags=list(base_flags or []) + [text], rc=rc)
        except ConfigError as exc:
            raise ConfigError(f"space point {text}: {exc}") from None
        job = Job(config, {**shape, **{k: int(v) for k, v in point.items()
                                       if k in res.SHAPE_KEYS}}, task)
        if job.key not in seen:
            seen.add(job.key)
            jobs.append(job)
    return jobs
