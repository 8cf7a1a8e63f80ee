"""Where a profile comes from: flag strings, rc files, the environment, merged in Theano's order.

Users of this field type ``THEANO_FLAGS=floatX=float32,device=cuda`` and keep a ``~/.theanorc`` by
habit, so rnnperf honours that syntax exactly (Theano 1.0.5's ``configparser.py``: its split is
:func:`split_flags`, its rc reading :func:`read_rc`):

* a profile string is ``key=value,key=value`` split as Theano splits it (shlex, ``,`` as the only
  separator): quotes group and are removed, so ``blas.ldflags='-Wl,-rpath,/opt/x'`` keeps its
  commas; outside single quotes a backslash escapes the next character, and ``#`` starts a
  comment up to the end of the line (quote it: ``cxx='g++ #1'``); dotted keys name an rc section
  (``blas.ldflags=-lopenblas``), ``__`` is accepted for the dot, later keys override earlier ones;
* rc files are INI: ``[global]`` holds top-level keys, ``[section]`` holds ``section.key``;
  ``%(USER)s``, ``%(LSCRATCH)s``, ``%(TMPDIR)s``, ``%(TEMP)s``, ``%(TMP)s`` and ``%(PID)s`` (the
  reading process's id) interpolate, and a value whose interpolation fails is kept as written;
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
import shlex
from pathlib import Path
from typing import Iterable, Mapping

from ..errors import ConfigError
from .config import Config, Setting
from .keys import KEYS

#: what shlex's ValueError means, in words a user acts on
_SHLEX_ERRORS = {"No closing quotation": "unbalanced quote",
                 "No escaped character": "a trailing backslash escapes nothing"}

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


def split_flags(text: str, source: str = "flags") -> list[tuple[str, str]]:
    """``key=value`` pairs, raw, exactly as Theano's ``parse_config_string`` makes them.

    ``shlex.shlex(text, posix=True)`` with ``,`` as its only whitespace: quotes group and are
    removed, a backslash escapes, ``#`` comments to the end of the line; each token is stripped,
    an empty one skipped, the rest split at its first ``=`` (key and value are not stripped).
    ``dict(split_flags(s))`` is Theano's dict for ``s``. Unlike Theano, which warns and drops a
    token without ``=`` and raises a bare ValueError on an unbalanced quote, both are one
    :class:`ConfigError` line naming ``source``.
    """
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace = ","
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError as exc:
        why = _SHLEX_ERRORS.get(str(exc), str(exc))
        raise ConfigError(f"{source}: {why} in {text!r} (a value with ',' or spaces is "
                          f"quoted: key='a,b')") from None
    out: list[tuple[str, str]] = []
    for token in tokens:
        token = token.strip()
        if not token:
            continue  # Theano tolerates `a=1,,b=2` and a trailing comma
        if "=" not in token:
            raise ConfigError(f"{source}: {token!r} has no '=' (expected key=value)")
        key, value = token.split("=", 1)
        out.append((key, value))
    return out


def parse_flags(text: str, source: str) -> list[tuple[str, Setting]]:
    """Parse ``key=value,key=value`` the way ``THEANO_FLAGS`` is parsed (:func:`split_flags`)."""
    if not isinstance(text, str):
        raise ConfigError(f"{source}: flags must be a string")
    out: list[tuple[str, Setting]] = []
    for raw_key, value in split_flags(text, source):
        key = canonical_key(raw_key, source)
        out.append((key, Setting(check_value(key, value, f"{source}: {key}"), source)))
    return out


def rc_variables(env: Mapping[str, str] | None = None, pid: int | None = None) -> dict[str, str]:
    """Theano's rc defaults: ``USER`` (else the home directory's name), ``LSCRATCH``,
    ``TMPDIR``, ``TEMP``, ``TMP`` (else empty) and ``PID``, the reading process's id."""
    env = os.environ if env is None else env
    home = env["HOME"] if "HOME" in env else os.path.expanduser("~")
    out = {"USER": env.get("USER", os.path.split(home)[-1])}
    out.update({var: env.get(var, "") for var in ("LSCRATCH", "TMPDIR", "TEMP", "TMP")})
    out["PID"] = str(os.getpid() if pid is None else pid)
    return out


def _read_error(exc: configparser.Error, label: str) -> ConfigError:
    lineno = getattr(exc, "lineno", None)
    if lineno is None and getattr(exc, "errors", None):
        lineno = exc.errors[0][0]
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    where = f"{label}:{lineno}" if lineno else label
    return ConfigError(f"{where}: malformed rc file: {first}")


def _line_of(lines: list[str], section: str, option: str) -> int:
    """The line that sets ``option`` in ``[section]`` (else in ``[DEFAULT]``), 0 if none."""
    for wanted in (section, "DEFAULT"):
        current = None
        for number, line in enumerate(lines, 1):
            stripped = line.strip()
            if stripped.startswith("[") and stripped.endswith("]"):
                current = stripped[1:-1].strip()
            elif current == wanted and re.match(rf"\s*{re.escape(option)}\s*[=:]", line, re.I):
                return number
    return 0


def read_rc(text: str, label: str,
            variables: Mapping[str, str] | None = None) -> list[tuple[str, str, str, int]]:
    """``(section, option, value, line)`` for every option of an rc text, as Theano reads it.

    Two parsers, as in Theano: a ``RawConfigParser`` names the options (lower-cased; a
    ``[DEFAULT]`` option is in every section) and a ``ConfigParser`` with :func:`rc_variables`
    as defaults gives each value, interpolated, or raw where interpolation fails. Unlike
    Theano, a ``%`` in an environment variable is taken literally (Theano's constructor raises).
    """
    variables = rc_variables() if variables is None else variables
    raw = configparser.RawConfigParser(strict=True)
    cooked = configparser.ConfigParser({k: v.replace("%", "%%") for k, v in variables.items()},
                                       strict=True)
    try:
        raw.read_string(text, source=label)
        cooked.read_string(text, source=label)
    except configparser.Error as exc:
        raise _read_error(exc, label) from None
    lines = text.splitlines()
    out: list[tuple[str, str, str, int]] = []
    for section in raw.sections():
        for option in raw.options(section):
            try:
                value = cooked.get(section, option)
            except configparser.InterpolationError:  # Theano's fetch_val_for_key does this
                value = raw.get(section, option)
            out.append((section, option, value, _line_of(lines, section, option)))
    return out


def parse_rc(path: str | os.PathLike, label: str | None = None,
             env: Mapping[str, str] | None = None) -> list[tuple[str, Setting]]:
    """Read one INI rc file as Theano does (:func:`read_rc`); every error names ``file:line``.

    ``env`` gives the interpolation variables (``%(USER)s``...; :func:`rc_variables`).
    """
    path = Path(path).expanduser()
    label = label or str(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(f"{label}: cannot read rc file: {reason}") from None
    out: list[tuple[str, Setting]] = []
    for section, option, value, line in read_rc(text, label, rc_variables(env)):
        where = f"{label}:{line}"
        dotted = option if section == "global" else f"{section}.{option}"
        if "." in option:  # Theano looks `a.b` up as option b of [a]: it never reads this line
            wanted_section, wanted_option = dotted.rsplit(".", 1)
            raise ConfigError(f"{where}: option {option!r} in [{section}] has a '.', which "
                              f"Theano never reads; write {wanted_option} under "
                              f"[{wanted_section}]")
        key = canonical_key(dotted, where)
        out.append((key, Setting(check_value(key, value, f"{where}: {key}"), where)))
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
                layers += parse_rc(path, env=env)
        for var in ("THEANO_FLAGS", "RNNPERF_FLAGS"):
            if env.get(var):
                layers += parse_flags(env[var], var)
    for path in _as_list(rc):
        layers += parse_rc(path, f"--rc {path}", env)
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
    """Render a profile as an INI rc file in ``theanorc.example``'s layout.

    A ``%`` is written ``%%``, so that interpolation reads each value back as it was.
    """
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
        lines += [f"{option} = {value.replace('%', '%%')}" for option, value in options.items()]
    return "\n".join(lines) + "\n"
