"""Theano 1.0.5's flag grammar, exactly (shlex-split flags, interpolated rc files), and profiles
that read back as the profile that ran. Plain tests pin the grammar; property tests check that
``Config.profile()`` reads back unchanged; differential tests feed generated strings and rc texts
to the real parsers (PyTensor's ``parse_config_string``, the same code as Theano's, here; Theano
1.0.5's own ``configparser.py`` where the legacy venv exists) and require the same maps."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shlex
import subprocess
import textwrap
import types
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from rnnperf import flags, host
from rnnperf.engines import registry
from rnnperf.errors import ConfigError

LEGACY_PY = host.legacy_python()  # read at collection, before conftest gives each test a HOME


def write(path, text):
    path.write_text(text)
    return str(path)


# --- flags strings: shlex, ',' the only separator -----------------------------------------------

@pytest.mark.parametrize("text,pairs", [
    ('blas.ldflags="-L/opt/x -lopenblas"', [("blas.ldflags", "-L/opt/x -lopenblas")]),
    ("blas.ldflags='-la,-lb'", [("blas.ldflags", "-la,-lb")]),        # a quoted comma is kept
    ('gcc.cxxflags="-O3 -DA=1",floatX=float64', [("gcc.cxxflags", "-O3 -DA=1"),
                                                  ("floatX", "float64")]),
    ("a.b=x\"y,z\"w'1 2'", [("a.b", "xy,zw1 2")]),                  # quoted parts concatenate
    ("a.b=x\\,y", [("a.b", "x,y")]),                                  # a backslash escapes
    ("a.b='it'\"'\"'s'", [("a.b", "it's")]),                           # shlex.quote's idiom
    ('a.b="q\\"w\\n"', [("a.b", 'q"w\\n')]),            # in "...", only \" and \\ escape
    ("a=1,,b=2,", [("a", "1"), ("b", "2")]),                           # empty tokens skipped
    (",,'',", []),
    (" a = 1 , b=' x ' ", [("a ", " 1"), ("b", " x")]),    # Theano strips the token, not k or v
    ("a.b=1#c,d.e=2\nf.g=3", [("a.b", "1"), ("f.g", "3")]),   # '#' comments to the line's end
    ("a.b='1#c',d.e=2", [("a.b", "1#c"), ("d.e", "2")]),
    ("=3", [("", "3")]),                                   # the key is checked later, not here
])
def test_split_flags_is_theanos_split(text, pairs):
    assert flags.split_flags(text) == pairs


def test_quoted_values_reach_the_profile_unquoted():
    cfg = flags.load('blas.ldflags="-L/opt/x -lopenblas",gcc.cxxflags=\'-Wl,-rpath,/opt/x\','
                     "floatX='float64'", use_env=False)
    assert (cfg["blas.ldflags"], cfg["gcc.cxxflags"], cfg.floatX) == (
        "-L/opt/x -lopenblas", "-Wl,-rpath,/opt/x", "float64")


@pytest.mark.parametrize("text,needle", [
    ("blas.ldflags='-la,-lb", "unbalanced quote"),
    ('floatX=float64,cxx="g++', "unbalanced quote"),
    ("floatX=float64\\", "trailing backslash"),
    ("floatX", "has no '='"),                        # Theano warns and drops it; we refuse
])
def test_malformed_strings_are_one_line(text, needle, monkeypatch):
    with pytest.raises(ConfigError) as err:
        flags.load(text, use_env=False)
    assert needle in str(err.value) and str(err.value).startswith("--flags: ")
    assert "\n" not in str(err.value)
    monkeypatch.setenv("THEANO_FLAGS", text)
    with pytest.raises(ConfigError) as err:
        flags.load()
    assert str(err.value).startswith("THEANO_FLAGS: ") and "\n" not in str(err.value)


@pytest.mark.parametrize("value", ["", "plain", "-Wl,-rpath,/opt/x", "a b", "it's", 'say "hi"',
                                   "x#y", "back\\slash", "%(USER)s", "tab\there", "two\nlines",
                                   "'", '"', ",", "=", "é,ü", "a=b,c=d"])
def test_quote_value_reads_back(value):
    assert flags.split_flags(f"k={flags.quote_value(value)}") == [("k", value)]
    assert flags.split_flags(flags.format_flags({"a.b": value, "c.d": value})) == [
        ("a.b", value), ("c.d", value)]


# --- rc files: Theano's ConfigParser, interpolated ----------------------------------------------

def test_rc_interpolates_theanos_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("USER", "ada")
    monkeypatch.setenv("TMPDIR", "/fast/tmp")
    monkeypatch.delenv("LSCRATCH", raising=False)
    rc = write(tmp_path / "rc", "[global]\nbase_compiledir = /scratch/%(USER)s/theano\n"
                                "compiledir = %(tmpdir)s/%(lscratch)s/%(PID)s\ncxx = g++ %%\n")
    cfg = flags.load(rc=rc, use_env=False)
    assert cfg["base_compiledir"] == "/scratch/ada/theano"
    assert cfg["compiledir"] == f"/fast/tmp//{os.getpid()}"  # PID: the process reading the rc
    assert cfg["cxx"] == "g++ %"


def test_rc_user_falls_back_to_home_and_percent_in_env_is_literal(tmp_path, monkeypatch):
    monkeypatch.delenv("USER", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "grace"))
    monkeypatch.setenv("TMPDIR", "/tmp/50%")              # Theano's constructor would raise
    rc = write(tmp_path / "rc", "[global]\nbase_compiledir = %(USER)s:%(TMPDIR)s\n")
    assert flags.load(rc=rc, use_env=False)["base_compiledir"] == "grace:/tmp/50%"
    env = {"USER": "bob", "HOME": "/h/x"}
    assert flags.load(rc=rc, env=env, use_env=False)["base_compiledir"] == "bob:"


@pytest.mark.parametrize("value", ["/x/%(nosuch)s/y", "50%", "%(", "%(a)s", "100%%d %(nope)s"])
def test_failing_interpolation_falls_back_to_the_raw_text(value):
    text = f"[global]\ncxx = {value}\n[blas]\nldflags = %(a)s\na = %(b)s\nb = %(a)s\n"
    entries = {(s, o): v for s, o, v, _ in flags.read_rc(text, "rc")}
    assert entries[("global", "cxx")] == value
    assert entries[("blas", "ldflags")] == "%(a)s"                   # recursion: raw, as Theano


def test_rc_options_are_lower_cased_and_dotted_options_refused(tmp_path):
    rc = write(tmp_path / "rc", "[global]\nFLOATX = float64\n[blas]\nLdFlags = -lx\n")
    cfg = flags.load(rc=rc, use_env=False)
    assert cfg.floatX == "float64" and cfg["blas.ldflags"] == "-lx"
    bad = write(tmp_path / "bad", "[global]\n\nblas.ldflags = -lx\n")
    with pytest.raises(ConfigError, match=r"bad:3: .*write ldflags under \[blas\]"):
        flags.load(rc=bad, use_env=False)


def test_write_rc_doubles_percent_so_it_reads_back(tmp_path):
    with pytest.raises(ConfigError, match="'-rpath' has no '='"):  # unquoted, commas split
        flags.load("blas.ldflags=-Wl,-rpath,/y", use_env=False)
    cfg = flags.load("base_compiledir='/x/%(USER)s 100%',blas.ldflags='-Wl,-rpath,/y'",
                     use_env=False)
    path = write(tmp_path / "out.rc", flags.write_rc(cfg))
    assert "%%(USER)s 100%%" in Path(path).read_text()
    assert flags.load(rc=path, use_env=False).values() == cfg.values()


# --- profiles read back as the profile that ran -------------------------------------------------

def test_rc_value_with_commas_round_trips_to_the_worker(tmp_path):
    """``[blas] ldflags = -Wl,-rpath,/opt/x`` once failed every bench with '-rpath' has no '='."""
    rc = write(tmp_path / "rc", "[global]\nengine = pytensor-c\n[blas]\n"
                                "ldflags = -Wl,-rpath,/opt/x -lopenblas\n")
    cfg = flags.load(rc=rc, use_env=False)
    profile = cfg.profile()
    assert "blas.ldflags='-Wl,-rpath,/opt/x -lopenblas'" in profile
    assert ("blas.ldflags", "-Wl,-rpath,/opt/x -lopenblas") in [
        (k, s.value) for k, s in flags.parse_flags(profile, "profile")]
    assert flags.load(flags=profile, use_env=False).values() == cfg.values()  # as the worker


@pytest.mark.parametrize("text,engine,mode", [
    ("engine=pytensor", "pytensor-numba", "FAST_RUN"),      # PyTensor's default mode
    ("engine=pytensor,mode=JAX", "pytensor-jax", "JAX"),
    ("engine=pytensor,mode=FAST_RUN", "pytensor-numba", "FAST_RUN"),
    ("engine=pytensor,mode=numba", "pytensor-numba", "NUMBA"),
    ("engine=pytensor,mode=CVM", "pytensor-c", "CVM"),
    ("engine=pytensor-numba", "pytensor-numba", "NUMBA"),
])
def test_engine_pytensor_reads_back_as_the_mode_that_ran(text, engine, mode):
    cfg = flags.load(text, use_env=False)
    assert (cfg.engine, cfg["mode"]) == (engine, mode)
    again = flags.load(cfg.profile(), use_env=False)
    assert (again.engine, again["mode"]) == (engine, mode)
    assert again.values() == cfg.values() and again.profile() == cfg.profile()


stripped = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=16).map(
    str.strip) | st.sampled_from(["-Wl,-rpath,/opt/x", "a b", "it's", '"q"', "50%", "%(USER)s",
                                  "x#y", "a\\b", "", "k=v,w=z", "'", ",,"])
dotted_keys = st.from_regex(r"\A[a-z][a-z0-9]{0,5}\.[a-z][a-z0-9]{0,5}(\.[a-z][a-z0-9]{0,3})?\Z"
                            ).filter(lambda k: k.split(".")[0] not in ("rnnperf", "global"))


@st.composite
def profiles(draw):
    """Owned keys with valid values, top-level passthrough keys and dotted keys, as settings."""
    chosen: dict[str, str] = {}
    engine = draw(st.none() | st.sampled_from(registry.engine_choices()))
    if engine:
        chosen["engine"] = engine
        spec = None if engine == registry.PYTENSOR_ALIAS else registry.get(engine)
        modes = list(registry.mode_table() if spec is None or spec.takes_mode else spec.modes)
        if modes and draw(st.booleans()):
            chosen["mode"] = draw(st.sampled_from(modes))
    booleans = st.sampled_from(["True", "False"])
    optional = {"device": st.sampled_from(["cpu", "cuda", "cuda0", "cuda3"]),
                "floatX": st.sampled_from(["float32", "float64"]), "function_cache": booleans,
                "formulation": st.sampled_from(flags.FORMULATIONS), "allow_gc": booleans,
                "threads": st.integers(1, 512).map(str), "cxx": stripped,
                "base_compiledir": stripped, "optimizer": stripped}
    for key, values in optional.items():
        if draw(st.booleans()):
            chosen[key] = draw(values)
    chosen.update(draw(st.dictionaries(dotted_keys, stripped, max_size=4)))
    return chosen


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chosen=profiles())
def test_profile_round_trips(chosen):
    settings_ = {k: flags.Setting(key.default, "default") for k, key in flags.KEYS.items()
                 if key.default is not None}
    settings_.update({k: flags.Setting(v, "generated") for k, v in chosen.items()})
    try:
        cfg = flags.Config(settings_)
    except ConfigError:  # e.g. formulation=fused on an engine without C kernels
        reject()
    again = flags.load(flags=cfg.profile(), use_env=False)
    assert again.values() == cfg.values() and again.profile() == cfg.profile()


# --- differential: the real parse_config_string on generated strings ----------------------------

GRAMMAR = "ab.=,'\" \\#\n\t%_-xX"
any_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=24)
flag_keys = st.sampled_from(["floatX", "blas.ldflags", "a.b", "", " x ", "device"]) | \
    st.text(GRAMMAR, max_size=5)
quoted = st.tuples(st.sampled_from(["", "'", '"']), st.text(GRAMMAR, max_size=8)).map(
    lambda qv: f"{qv[0]}{qv[1]}{qv[0]}")
flag_texts = st.one_of(
    st.text(GRAMMAR, max_size=30), any_text,
    st.lists(st.tuples(flag_keys, st.lists(quoted, max_size=3).map("".join)), max_size=5).map(
        lambda kvs: ",".join(f"{k}={v}" for k, v in kvs)),
    st.dictionaries(dotted_keys, stripped, max_size=4).map(flags.format_flags))


def compare_flags(text: str, theirs: dict) -> None:
    """The same map, or rnnperf's one-line error where the reference drops a token or raises."""
    try:
        ours = flags.split_flags(text, "fuzz")
    except ConfigError as exc:
        assert "\n" not in str(exc)
        if "has no '='" in str(exc):
            assert theirs.get("dropped"), (text, theirs)
        else:
            assert "error" in theirs, (text, theirs)
        return
    assert "error" not in theirs and not theirs["dropped"], (text, theirs)
    assert dict(ours) == theirs["map"], text


def pytensor_parse_config_string():
    """PyTensor's own function, compiled from its source without importing PyTensor."""
    spec = importlib.util.find_spec("pytensor")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "configparser.py"
    tree = ast.parse(path.read_text())
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef)
                and n.name == "parse_config_string")
    dropped: list[str] = []
    warning = types.SimpleNamespace(warn=lambda message, stacklevel=0: dropped.append(message))
    namespace = {"shlex": shlex.shlex, "PyTensorConfigWarning": warning}
    exec(compile(ast.Module([node], type_ignores=[]), str(path), "exec"), namespace)

    def parse(text):
        dropped.clear()
        try:
            return {"map": namespace["parse_config_string"](text), "dropped": len(dropped)}
        except ValueError as exc:
            return {"error": str(exc)}
    return parse


PYTENSOR_PARSE = pytensor_parse_config_string()


@pytest.mark.skipif(PYTENSOR_PARSE is None, reason="pytensor is not installed")
@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=flag_texts)
def test_split_matches_pytensor_parse_config_string(text):
    compare_flags(text, PYTENSOR_PARSE(text))


# --- differential: Theano 1.0.5's configparser.py in the legacy venv ----------------------------

THEANO_SERVER = textwrap.dedent('''
    """Theano 1.0.5's configparser.py answering one JSON request a line on stdin."""
    import importlib, importlib.util, json, os, sys, tempfile, types, warnings

    spec = importlib.util.find_spec("theano")
    package = types.ModuleType("theano")  # theano/__init__.py would import and compile it all
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["theano"] = package
    rc_path = os.path.join(tempfile.mkdtemp(), "theanorc")  # empty at import
    os.environ["THEANORC"], os.environ["THEANO_FLAGS"] = rc_path, ""
    tc = importlib.import_module("theano.configparser")
    print(json.dumps({"pid": os.getpid(), "defaults": tc.theano_cfg.defaults()}), flush=True)

    def parse_flags(text):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                return {"map": tc.parse_config_string(text), "dropped": len(caught)}
            except ValueError as exc:
                return {"error": str(exc)}

    def read_rc(text):
        with open(rc_path, "w", encoding="utf-8") as out:
            out.write(text)
        try:
            module = importlib.reload(tc)  # reads THEANORC exactly as at import
        except Exception as exc:
            return {"error": type(exc).__name__}
        def fetch(section, option):  # None: Theano never reads it
            try:
                return module.fetch_val_for_key(
                    option if section == "global" else section + "." + option)
            except KeyError:
                return None
        raw = module.theano_raw_cfg
        return {"entries": [[s, o, fetch(s, o)] for s in raw.sections() for o in raw.options(s)]}

    for line in sys.stdin:
        request = json.loads(line)
        answer = (parse_flags if request["kind"] == "flags" else read_rc)(request["text"])
        print(json.dumps(answer), flush=True)
''')
SERVER_ENV = {"USER": "tester", "TMPDIR": "/tmp/t", "TMP": "", "HOME": "/home/tester",
              "PATH": os.environ.get("PATH", ""), "PYTHONUTF8": "1"}
needs_venv = pytest.mark.skipif(LEGACY_PY is None, reason="legacy Theano venv not built (run: "
                                "rnnperf legacy setup); PyTensor's copy is checked above")


@pytest.fixture(scope="module")
def theano(tmp_path_factory):
    """``ask(kind, text)``, answered by Theano 1.0.5's configparser.py in the legacy venv."""
    script = tmp_path_factory.mktemp("theano") / "theano_server.py"
    script.write_text(THEANO_SERVER)
    proc = subprocess.Popen([LEGACY_PY, "-u", str(script)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=SERVER_ENV)

    def ask(kind: str, text: str) -> dict:
        proc.stdin.write(json.dumps({"kind": kind, "text": text}) + "\n")
        proc.stdin.flush()
        return json.loads(proc.stdout.readline())
    ask.hello = json.loads(proc.stdout.readline())  # type: ignore[attr-defined]
    yield ask
    proc.stdin.close()
    proc.wait(timeout=60)


@needs_venv
def test_rc_variables_are_theanos(theano):
    ours = flags.rc_variables(SERVER_ENV, pid=theano.hello["pid"])
    assert {k.lower(): v for k, v in ours.items()} == theano.hello["defaults"]


@needs_venv
@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=flag_texts)
def test_split_matches_theano(theano, text):
    compare_flags(text, theano("flags", text))


RC_HEADERS = ["[global]", "[blas]", "[a.b]", "[DEFAULT]"]
RC_GOOD = ["floatX = float64", "ldflags = -Wl,-rpath,/opt/x", "x = %(user)s/%(USER)s", "e =",
           "y = %(pid)s", "z = %(tmpdir)s|%(lscratch)s|%(temp)s|%(tmp)s", "w = 50%", "  more",
           "v = %(nosuch)s", "u = %%(x)s %%", "r = %(s)s", "s = %(r)s", "t = %(x)s", "a: b",
           "# comment", "; comment", "c.d = 1", "user = me", "k = v ; not a comment", ""]
RC_BAD = ["[global", "=x", "FLOATX = 1", "no delimiter"]
rc_sections = st.lists(st.tuples(st.sampled_from(RC_HEADERS),
                                 st.lists(st.sampled_from(RC_GOOD), max_size=6, unique=True)),
                       min_size=1, max_size=3, unique_by=lambda section: section[0])
rc_extra = st.lists(st.sampled_from(RC_BAD + RC_HEADERS) | st.text(GRAMMAR + "[]:%()s",
                                                                   max_size=12), max_size=1)


def rc_text(parts) -> str:
    """Sections of mostly valid lines, and now and then one bad or random line among them."""
    sections, extra, where = parts
    lines = [line for header, body in sections for line in [header, *body]]
    where %= len(lines) + 1
    return "\n".join(lines[:where] + extra + lines[where:])


rc_texts = st.tuples(rc_sections, rc_extra, st.integers(0, 20)).map(rc_text)


@needs_venv
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=rc_texts)
def test_read_rc_matches_theano(theano, text):
    theirs = theano("rc", text)
    try:
        ours = flags.read_rc(text, "fuzz", theano.hello["defaults"])
    except ConfigError as exc:
        assert "error" in theirs and "\n" not in str(exc), (text, theirs)
        return
    assert "error" not in theirs, (text, theirs)
    assert [(s, o) for s, o, _, _ in ours] == [(s, o) for s, o, _ in theirs["entries"]]
    for (section, option, value, _), (_, _, their_value) in zip(ours, theirs["entries"]):
        if "." not in option:  # rnnperf refuses `a.b = ...`, which Theano never reads
            assert value == their_value, (text, section, option)
