"""Shared fixtures: every test runs with a clean flag environment and a private HOME."""

import pytest


@pytest.fixture(autouse=True)
def clean_flag_env(monkeypatch, tmp_path_factory):
    for var in ("THEANO_FLAGS", "RNNPERF_FLAGS", "THEANORC", "RNNPERF_RC", "PYTENSOR_FLAGS"):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    # keep compile caches shared across tests (and across runs): they are not flags
    yield home
