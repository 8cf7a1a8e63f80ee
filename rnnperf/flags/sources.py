"""Where a profile comes from: flag strings, rc files, the environment, merged in Theano's order.

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
import difflib
import os
import re
from pathlib import Path
from typing import Iterable, Mapping

from ..errors import ConfigError
from .config import Config, Setting
from .keys import KEYS

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
