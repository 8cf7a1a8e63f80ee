"""Shared fixtures: every test runs with a clean flag environment and a private HOME."""

import os

import pytest

REAL_HOME = os.path.expanduser("~")  # read at collection, before clean_flag_env's private HOME


@pytest.fixture(autouse=True)
def clean_flag_env(monkeypatch, tmp_path_factory):
    for var in ("THEANO_FLAGS", "RNNPERF_FLAGS", "THEANORC", "RNNPERF_RC", "PYTENSOR_FLAGS"):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    # keep compile caches shared across tests (and across runs): they are not flags
    yield home


@pytest.fixture
def shared_compile_caches(monkeypatch):
    """JAX's persistent cache and PyTensor's compiledir live under HOME: the modules that compile
    share them across runs with ``pytest.mark.usefixtures("shared_compile_caches")``."""
    monkeypatch.setenv("HOME", REAL_HOME)
