"""Theano-style flags: parse, validate and merge a *profile* from every source.

Users of this field type ``THEANO_FLAGS=floatX=float32,device=cuda`` and keep a ``~/.theanorc`` by
habit, so rnnperf honours that syntax exactly (Theano's ``configparser.py``):

* a profile string is ``key=value,key=value``; dotted keys name an rc section
  (``blas.ldflags=-lopenblas``), ``__`` is accepted for the dot, later keys override earlier ones;
* rc files are INI: ``[global]`` holds top-level keys, ``[section]`` holds ``section.key``;
* sources, lowest to highest: built-in defaults < rc files (``THEANORC``, colon-separated, and
  ``RNNPERF_RC``; when neither is set ``~/.theanorc`` then ``~/.rnnperfrc``) < ``THEANO_FLAGS`` <
  ``RNNPERF_FLAGS`` < ``--rc`` < ``--flags`` on the command line.

Unlike Theano, which warns and carries on, every malformed token is a :class:`ConfigError` whose
one line names the source (env var, ``file:line``, ``--flags``) and the bad token, with the nearest
valid key for a misspelling. Dotted keys are not ours: they pass through to the engine's own
configuration (PyTensor config names), set before the engine is imported.
"""

from __future__ import annotations

import configparser
import dataclasses
import difflib
import os
import re
from pathlib import Path
from typing import Callable, Iterable, Mapping

from .errors import ConfigError

# --- the keys rnnperf owns -----------------------------------------------------------------------

ENGINE_NAMES = (
    "numpy", "pytensor", "pytensor-c", "pytensor-numba", "pytensor-jax", "pytensor-pytorch",
    "theano", "torch", "jax",
)
# engine=pytensor picks its backend from mode=, exactly as PyTensor's own `mode` flag does.
PYTENSOR_MODES = {
    "CVM": "pytensor-c", "C": "pytensor-c", "C_VM": "pytensor-c",
    "NUMBA": "pytensor-numba", "FAST_RUN": "pytensor-numba",
    "JAX": "pytensor-jax",
    "PYTORCH": "pytensor-pytorch",
}
ENGINE_MODE = {"pytensor-c": "CVM", "pytensor-numba": "NUMBA", "pytensor-jax": "JAX",
               "pytensor-pytorch": "PYTORCH"}
FORMULATIONS = ("seed", "hoisted", "fused")
# formulation=fused is the hoisted graph with its two loops as C kernels
# (rnnperf.fused_recurrence): the C backend's alone, and its default (docs/performance.md).
FUSED_ENGINES = ("pytensor-c",)
# The default on CPU compiles in 2 s cold and 0.5 s from its caches and is second fastest at the
# reference workload (docs/performance.md: pytensor-jax + hoisted, ~16 ms per RW train step). The
# fastest, pytensor-c with formulation=fused (~10 ms, 1.9x torch.nn.RNN), compiles 24 s cold.
# The seed's literal graph stays one flag away (formulation=seed).
DEFAULT_ENGINE = "pytensor-jax"
DEFAULT_FORMULATION = "hoisted"


def formulations_for(engine: str) -> tuple[str, ...]:
    """The formulations a Theano-family engine can build."""
    return FORMULATIONS if engine in FUSED_ENGINES else ("seed", "hoisted")


def default_formulation(engine: str) -> str:
    return "fused" if engine in FUSED_ENGINES else DEFAULT_FORMULATION


def _choice(*allowed: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in allowed:
            near = difflib.get_close_matches(value, allowed, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ValueError(f"must be one of {', '.join(allowed)}{hint}")
        return value
    return check


def _device(value: str) -> str:
    if value == "cpu" or re.fullmatch(r"cuda\d*", value):
        return value
    if value.startswith("gpu"):
        raise ValueError("the old `gpu` backend is gone since Theano 1.0: use cuda or cudaN")
    raise ValueError("must be cpu, cuda or cudaN")


def _mode(value: str) -> str:
    upper = value.upper()
    if upper not in PYTENSOR_MODES:
        return _choice(*PYTENSOR_MODES)(value)
    return upper


def _threads(value: str) -> str:
    if not value.isdigit() or int(value) < 1:
        raise ValueError("must be a positive integer")
    return str(int(value))


def _bool(value: str) -> str:
    low = value.lower()
    if low in ("true", "1", "yes", "on"):
        return "True"
    if low in ("false", "0", "no", "off"):
        return "False"
    raise ValueError("must be True or False")


def _anything(value: str) -> str:
    return value


@dataclasses.dataclass(frozen=True)
class Key:
    default: str | None
    check: Callable[[str], str]
    doc: str
    owned: bool = True  # False: a PyTensor/Theano top-level flag that we only pass through


KEYS: dict[str, Key] = {
    "engine": Key(DEFAULT_ENGINE, _choice(*ENGINE_NAMES), "which engine compiles the model"),
    "device": Key("cpu", _device, "cpu, cuda or cudaN; never falls back to the CPU"),
    "floatX": Key("float32", _choice("float32", "float64"), "dtype of parameters and data"),
    "mode": Key(None, _mode, "PyTensor mode: CVM (C), NUMBA, JAX, PYTORCH; FAST_RUN means NUMBA"),
    "formulation": Key(DEFAULT_FORMULATION, _choice(*FORMULATIONS),
                       "seed: the tutorial's literal graph; hoisted: input GEMM outside scan; "
                       "fused: hoisted with C kernels for its loops (pytensor-c)"),
    "threads": Key(None, _threads, "CPU threads for BLAS and the engine (default: all cores)"),
    "function_cache": Key("True", _bool, "pytensor-jax: load compiled functions exported by an "
                          "earlier process (~/.cache/rnnperf/functions) instead of compiling"),
    # Top-level Theano/PyTensor flags a Theano user types by habit; passed through untouched.
    "optimizer": Key(None, _anything, "PyTensor graph optimizer (fast_run, fast_compile, None)",
                     owned=False),
    "linker": Key(None, _anything, "PyTensor linker (cvm, c|py, vm, ...)", owned=False),
    "cxx": Key(None, _anything, "C++ compiler used by the C backend", owned=False),
    "allow_gc": Key(None, _bool, "free intermediate buffers between calls", owned=False),
    "openmp": Key(None, _bool, "let the C backend use OpenMP", owned=False),
    "base_compiledir": Key(None, _anything, "where compiled modules are cached", owned=False),
    "compiledir": Key(None, _anything, "exact compile cache directory", owned=False),
    "warn_float64": Key(None, _anything, "ignore, warn, raise or pdb on float64 graphs",
                        owned=False),
    "exception_verbosity": Key(None, _anything, "low or high", owned=False),
}

# --- data model ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Setting:
    value: str
    source: str


class Config:
    """The effective profile: every key with its value and the source that set it."""

    def __init__(self, settings: Mapping[str, Setting]):
        self.settings = dict(settings)
        self._resolve_engine()
        self._resolve_formulation()

    def _resolve_engine(self) -> None:
        """Make ``engine=pytensor,mode=CVM`` and ``engine=pytensor-c`` the same profile."""
        engine = self.settings["engine"]
        mode = self.settings.get("mode")
        if engine.value == "pytensor":
            chosen = PYTENSOR_MODES[mode.value] if mode else "pytensor-numba"
            self.settings["engine"] = Setting(chosen, engine.source)
            if not mode:
                self.settings["mode"] = Setting("FAST_RUN", "default (PyTensor's)")
        elif engine.value in ENGINE_MODE:
            implied = ENGINE_MODE[engine.value]
            if mode and PYTENSOR_MODES[mode.value] != engine.value:
                raise ConfigError(
                    f"{mode.source}: mode={mode.value} contradicts engine={engine.value} "
                    f"(set by {engine.source}), which means mode={implied}")
            if not mode:
                self.settings["mode"] = Setting(implied, f"implied by engine={engine.value}")
        elif mode and engine.value not in ("theano",):
            raise ConfigError(f"{mode.source}: mode={mode.value} has no meaning for "
                              f"engine={engine.value}")

    def _resolve_formulation(self) -> None:
        """The engine's own default formulation; ``fused`` only where its kernels exist."""
        from . import engines  # the registry (names only: no engine is imported)
        setting, engine = self.settings.get("formulation"), self.engine
        if setting is None:
            return
        if setting.source == "default":
            self.settings["formulation"] = Setting(default_formulation(engine),
                                                   f"default for engine={engine}")
        elif setting.value == "fused" and engine not in FUSED_ENGINES and \
                engines.get(engine).has_formulations:
            raise ConfigError(f"{setting.source}: formulation=fused runs on "
                              f"{', '.join(FUSED_ENGINES)} only (its C kernels); "
                              f"engine={engine} builds seed or hoisted")

    def __getitem__(self, key: str) -> str | None:
        setting = self.settings.get(key)
        return setting.value if setting else None

    def get(self, key: str, default=None):
        value = self[key]
        return default if value is None else value

    @property
    def engine(self) -> str:
        return self["engine"]

    @property
    def device(self) -> str:
        return self["device"]

    @property
    def floatX(self) -> str:
        return self["floatX"]

    @property
    def threads(self) -> int | None:
        return int(self["threads"]) if self["threads"] else None

    @property
    def wants_gpu(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def device_index(self) -> int:
        return int(self.device[4:] or 0) if self.wants_gpu else 0

    def passthrough(self) -> dict[str, str]:
        """Keys that belong to the engine's own configuration (dotted, or not owned by us)."""
        return {k: s.value for k, s in self.settings.items()
                if "." in k or (k in KEYS and not KEYS[k].owned)}

    def profile(self) -> str:
        """Canonical flags string: feeding it back gives the same configuration."""
        return ",".join(f"{k}={s.value}" for k, s in sorted(self.settings.items())
                        if not s.source.startswith(("default", "implied")))

    def as_json(self) -> dict[str, dict[str, str]]:
        return {k: {"value": s.value, "source": s.source} for k, s in sorted(self.settings.items())}

    def values(self) -> dict[str, str]:
        return {k: s.value for k, s in self.settings.items()}


# --- parsing -------------------------------------------------------------------------------------


def canonical_key(raw: str, where: str) -> str:
    """Turn ``blas__ldflags``/``floatx`` into ``blas.ldflags``/``floatX`` or raise."""
    key = raw.strip().replace("__", ".")
    if not key:
        raise ConfigError(f"{where}: empty key")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", key):
        raise ConfigError(f"{where}: bad key {raw.strip()!r}")
    if "." in key:
        section, rest = key.split(".", 1)
        if section == "rnnperf":  # rnnperf.formulation=hoisted is our own section
            return canonical_key(rest, where)
        if section == "global":
            return canonical_key(rest, where)
        return key
    if key in KEYS:
        return key
    folded = {k.lower(): k for k in KEYS}
    if key.lower() in folded:  # INI readers fold case; Theano's did too
        return folded[key.lower()]
    near = difflib.get_close_matches(key, list(KEYS), n=1, cutoff=0.5)
    hint = f"; did you mean {near[0]!r}?" if near else f"; valid keys: {', '.join(KEYS)}"
    raise ConfigError(f"{where}: unknown key {raw.strip()!r}{hint}")


def check_value(key: str, value: str, where: str) -> str:
    value = value.strip()
    if key in KEYS:
        try:
            return KEYS[key].check(value)
        except ValueError as exc:
            raise ConfigError(f"{where}: bad value {key}={value!r}: {exc}") from None
    return value


def parse_flags(text: str, source: str) -> list[tuple[str, Setting]]:
    """Parse ``key=value,key=value`` the way ``THEANO_FLAGS`` is parsed."""
    if not isinstance(text, str):
        raise ConfigError(f"{source}: flags must be a string")
    out: list[tuple[str, Setting]] = []
    for token in text.split(","):
        if not token.strip():
            continue  # Theano tolerates `a=1,,b=2` and a trailing comma
        if "=" not in token:
            raise ConfigError(f"{source}: {token.strip()!r} has no '=' (expected key=value)")
        raw_key, value = token.split("=", 1)
        key = canonical_key(raw_key, source)
        out.append((key, Setting(check_value(key, value, f"{source}: {key}"), source)))
    return out


def _line_of(lines: list[str], section: str, option: str) -> int:
    current = None
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            current = stripped[1:-1].strip()
        elif current == section and re.match(rf"\s*{re.escape(option)}\s*[=:]", line, re.I):
            return number
    return 0


def parse_rc(path: str | os.PathLike, label: str | None = None) -> list[tuple[str, Setting]]:
    """Read one INI rc file; every error names ``file:line``."""
    path = Path(path).expanduser()
    label = label or str(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(f"{label}: cannot read rc file: {reason}") from None
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # keep floatX's case; we fold it ourselves
    try:
        parser.read_string(text, source=label)
    except configparser.Error as exc:
        lineno = getattr(exc, "lineno", None)
        if lineno is None and getattr(exc, "errors", None):
            lineno = exc.errors[0][0]
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        where = f"{label}:{lineno}" if lineno else label
        raise ConfigError(f"{where}: malformed rc file: {first}") from None
    lines = text.splitlines()
    out: list[tuple[str, Setting]] = []
    for section in parser.sections():
        for option, value in parser.items(section, raw=True):
            where = f"{label}:{_line_of(lines, section, option)}"
            dotted = option if section == "global" else f"{section}.{option}"
            key = canonical_key(dotted, where)
            out.append((key, Setting(check_value(key, value or "", f"{where}: {key}"), where)))
    return out


def rc_paths(env: Mapping[str, str]) -> list[tuple[str, bool]]:
    """rc files to read, lowest priority first, each with ``must_exist``."""
    named: list[tuple[str, bool]] = []
    for var in ("THEANORC", "RNNPERF_RC"):
        if env.get(var):
            named += [(p, True) for p in env[var].split(os.pathsep) if p]
    if named:
        return named
    return [("~/.theanorc", False), ("~/.rnnperfrc", False)]


def load(flags: str | Iterable[str] | None = None, rc: str | Iterable[str] | None = None,
         env: Mapping[str, str] | None = None, use_env: bool = True) -> Config:
    """Build the effective :class:`Config` from every source, in Theano's order."""
    env = os.environ if env is None else env
    layers: list[tuple[str, Setting]] = [
        (k, Setting(key.default, "default")) for k, key in KEYS.items() if key.default is not None
    ]
    if use_env:
        for path, must_exist in rc_paths(env):
            if must_exist or Path(path).expanduser().is_file():
                layers += parse_rc(path)
        for var in ("THEANO_FLAGS", "RNNPERF_FLAGS"):
            if env.get(var):
                layers += parse_flags(env[var], var)
    for path in _as_list(rc):
        layers += parse_rc(path, f"--rc {path}")
    for text in _as_list(flags):
        layers += parse_flags(text, "--flags")
    merged: dict[str, Setting] = {}
    for key, setting in layers:
        merged[key] = setting
    return Config(merged)


def _as_list(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def write_rc(config: Config | Mapping[str, str], header: str = "") -> str:
    """Render a profile as an INI rc file in ``theanorc.example``'s layout."""
    values = config.values() if isinstance(config, Config) else dict(config)
    sections: dict[str, dict[str, str]] = {"global": {}}
    for key, value in sorted(values.items()):
        if "." in key:
            section, option = key.split(".", 1)
            sections.setdefault(section, {})[option] = value
        else:
            sections["global"][key] = value
    lines = [f"# {line}".rstrip() for line in header.splitlines()] if header else []
    for section, options in sections.items():
        if not options:
            continue
        if lines:
            lines.append("")
        lines.append(f"[{section}]")
        lines += [f"{option} = {value}" for option, value in options.items()]
    return "\n".join(lines) + "\n"
