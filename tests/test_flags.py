"""Theano-style flags: syntax, precedence of every source, and one-line errors."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnperf import flags
from rnnperf.cli import main
from rnnperf.errors import ConfigError


def test_defaults():
    cfg = flags.load(use_env=False)
    assert (cfg.engine, cfg.device, cfg.floatX, cfg["mode"], cfg["formulation"]) == (
        "pytensor-jax", "cpu", "float32", "JAX", "hoisted")
    assert cfg.settings["engine"].source == "default"


@pytest.mark.parametrize("engine,formulation", [("pytensor-c", "fused"), ("pytensor", "hoisted"),
                                                ("pytensor-jax", "hoisted"),
                                                ("theano", "hoisted")])
def test_default_formulation_is_the_engines_own(engine, formulation):
    cfg = flags.load(f"engine={engine}", use_env=False)
    assert cfg["formulation"] == formulation
    assert "formulation" not in cfg.profile()  # a default, not something the user typed
    assert flags.load(f"engine={engine},formulation=seed", use_env=False)["formulation"] == "seed"


def test_theano_syntax_dots_underscores_and_override():
    cfg = flags.load("floatX=float64,blas__ldflags=-lopenblas,floatX=float32,device=cuda1",
                     use_env=False)
    assert cfg.floatX == "float32"  # later keys override earlier ones
    assert cfg["blas.ldflags"] == "-lopenblas"
    assert cfg.device == "cuda1" and cfg.device_index == 1 and cfg.wants_gpu
    assert cfg.passthrough() == {"blas.ldflags": "-lopenblas"}


def test_empty_tokens_are_tolerated_like_theano():
    assert flags.load(",floatX=float64,,", use_env=False).floatX == "float64"


@pytest.mark.parametrize("spelling", ["engine=pytensor,mode=CVM", "engine=pytensor-c",
                                      "engine=pytensor-c,mode=CVM", "engine=pytensor,mode=cvm"])
def test_pytensor_c_spellings_are_one_profile(spelling):
    cfg = flags.load(spelling, use_env=False)
    assert cfg.engine == "pytensor-c" and cfg["mode"] == "CVM"


@pytest.mark.parametrize("mode,engine", [("NUMBA", "pytensor-numba"), ("FAST_RUN",
                         "pytensor-numba"), ("JAX", "pytensor-jax"), ("PYTORCH",
                                                                      "pytensor-pytorch")])
def test_engine_pytensor_follows_mode(mode, engine):
    assert flags.load(f"engine=pytensor,mode={mode}", use_env=False).engine == engine


@pytest.mark.parametrize("text,needle", [
    ("flaotX=float32", "did you mean 'floatX'"),
    ("devise=cuda", "did you mean 'device'"),
    ("floatX=float8", "floatX='float8'"),
    ("device=tpu", "device='tpu'"),
    ("device=gpu", "gpu"),
    ("engine=nosuch", "engine='nosuch'"),
    ("engine=pytensor-c,mode=JAX", "contradicts"),
    ("floatX", "has no '='"),
    ("=3", "empty key"),
    ("threads=0", "positive"),
    ("formulation=fast", "formulation='fast'"),
    ("engine=pytensor-jax,formulation=fused", "pytensor-c only"),
    ("engine=theano,formulation=fused", "pytensor-c only"),
])
def test_bad_flags_name_the_source_and_token(text, needle):
    with pytest.raises(ConfigError) as err:
        flags.load(text, use_env=False)
    assert needle in str(err.value)
    assert str(err.value).startswith("--flags")
    assert "\n" not in str(err.value)


def write(path, text):
    path.write_text(text)
    return str(path)


def test_rc_sections_and_case(tmp_path):
    rc = write(tmp_path / "rc", "[global]\nfloatx = float64\nengine=numpy\n\n[blas]\nldflags = "
                                "-lopenblas\n")
    cfg = flags.load(rc=rc, use_env=False)
    assert cfg.floatX == "float64" and cfg.engine == "numpy"
    assert cfg["blas.ldflags"] == "-lopenblas"
    assert cfg.settings["floatX"].source.endswith(":2")  # file:line


def test_precedence_of_every_source(tmp_path, monkeypatch, clean_flag_env):
    home = clean_flag_env
    write(home / ".theanorc", "[global]\nfloatX=float64\nthreads=1\ndevice=cuda\n")
    write(home / ".rnnperfrc", "[global]\nthreads=2\n")
    cfg = flags.load()
    assert cfg.floatX == "float64" and cfg.threads == 2  # ~/.rnnperfrc after ~/.theanorc
    monkeypatch.setenv("THEANO_FLAGS", "floatX=float32,engine=numpy")
    monkeypatch.setenv("RNNPERF_FLAGS", "engine=pytensor-c")
    cfg = flags.load()
    assert cfg.floatX == "float32" and cfg.engine == "pytensor-c"
    assert cfg.settings["engine"].source == "RNNPERF_FLAGS"
    cli_rc = write(tmp_path / "cli.rc", "[global]\ndevice=cpu\nengine=jax\n")
    cfg = flags.load(flags="engine=numpy", rc=cli_rc)
    assert cfg.device == "cpu" and cfg.engine == "numpy"  # --rc < --flags, both > env
    assert cfg.settings["device"].source.startswith("--rc")


def test_theanorc_list_replaces_home_files(tmp_path, monkeypatch, clean_flag_env):
    write(clean_flag_env / ".theanorc", "[global]\nfloatX=float64\n")
    a = write(tmp_path / "a", "[global]\nthreads=3\n")
    b = write(tmp_path / "b", "[global]\nthreads=4\n")
    monkeypatch.setenv("THEANORC", f"{a}:{b}")
    cfg = flags.load()
    assert cfg.threads == 4 and cfg.floatX == "float32"
    monkeypatch.setenv("THEANORC", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="cannot read rc file"):
        flags.load()


@pytest.mark.parametrize("text,needle", [
    ("floatX=float32\n", "malformed rc file"),          # no section header
    ("[global]\nfloatX = float8\n", "rc:2"),
    ("[global]\nflotX = float32\n", "did you mean 'floatX'"),
    ("[global]\nfloatX = 1\nfloatX = 2\n", "malformed rc file"),
    ("[global\n", "malformed rc file"),
])
def test_bad_rc_names_file_and_line(tmp_path, text, needle):
    rc = write(tmp_path / "rc", text)
    with pytest.raises(ConfigError) as err:
        flags.load(rc=rc, use_env=False)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_write_rc_reads_back(tmp_path):
    cfg = flags.load("engine=pytensor-jax,floatX=float64,blas.ldflags=-lopenblas,threads=2",
                     use_env=False)
    path = write(tmp_path / "out.rc", flags.write_rc(cfg, header="chosen by a test"))
    again = flags.load(rc=path, use_env=False)
    assert again.values() == cfg.values()


def test_theanorc_example_documents_every_key():
    text = open("theanorc.example").read()
    for key in flags.KEYS:
        assert key in text, key
    assert flags.load(rc="theanorc.example", use_env=False).engine == "pytensor-jax"


def test_cli_flags_json(capsys):
    assert main(["flags", "--flags", "engine=numpy,blas__ldflags=-lopenblas", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["engine"] == {"value": "numpy", "source": "--flags"}
    assert doc["blas.ldflags"]["value"] == "-lopenblas"
    assert doc["device"]["source"] == "default"


def test_cli_bad_flag_env_is_one_line_exit_2(capsys, monkeypatch):
    monkeypatch.setenv("THEANO_FLAGS", "floatX=float16")
    assert main(["flags"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "THEANO_FLAGS" in err and "float16" in err


# --- fuzz: any flag string or rc text parses or fails with exit 2 and one line --------------

TOKENS = st.sampled_from(["engine", "device", "floatX", "mode", "threads", "formulation",
                          "blas.ldflags", "blas__ldflags", "floatx", "x", "", "a.b.c", " ",
                          "=", ",", "[", "]", "cuda", "float32", "pytensor", "-lopenblas"])
flag_text = st.one_of(st.text(max_size=40), st.lists(TOKENS, max_size=12).map("".join),
                      st.lists(st.tuples(TOKENS, TOKENS), max_size=5).map(
                          lambda kv: ",".join(f"{k}={v}" for k, v in kv)))


def _one_line_or_ok(capsys, code):
    err = capsys.readouterr().err
    assert code in (0, 2), code
    if code == 2:
        assert err.count("\n") == 1 and "Traceback" not in err


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=flag_text)
def test_fuzz_flag_strings(capsys, text):
    _one_line_or_ok(capsys, main(["flags", f"--flags={text}", "--json"]))


rc_text = st.one_of(
    st.text(max_size=80),
    st.lists(st.one_of(st.sampled_from(["[global]", "[blas]", "[", "floatX = float64",
                                        "engine=numpy", "device: cuda", "flotX=1", "ldflags=",
                                        "= x", "  indented", "# c", "; c", "%(x)s"]),
                       st.text(max_size=10)), max_size=8).map("\n".join))


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=rc_text)
def test_fuzz_rc_files(capsys, tmp_path, text):
    path = tmp_path / "fuzz.rc"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    _one_line_or_ok(capsys, main(["flags", "--rc", str(path), "--json"]))
