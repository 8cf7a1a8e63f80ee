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
    share_compile_caches(home)
    yield home


#: compile caches under HOME that every test shares with the real HOME (and so with the other
#: tests, the other xdist workers and later runs): they are keyed by what was compiled, never
#: read as flags, and a test that compiled cold in a private HOME repaid 5-60 s per C or Numba
#: module. rnnperf's own function cache stays private: tests of it count hits and misses.
SHARED_CACHES = (".pytensor", os.path.join(".cache", "rnnperf", "jax"))


def share_compile_caches(home) -> None:
    for rel in SHARED_CACHES:
        real = os.path.join(REAL_HOME, rel)
        os.makedirs(real, exist_ok=True)
        link = os.path.join(home, rel)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        if not os.path.lexists(link):
            os.symlink(real, link)


@pytest.fixture
def shared_compile_caches(monkeypatch):
    """JAX's persistent cache and PyTensor's compiledir live under HOME: the modules that compile
    share them across runs with ``pytest.mark.usefixtures("shared_compile_caches")``."""
    monkeypatch.setenv("HOME", REAL_HOME)


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: twice the cores on a small box. A test here spends much of its time waiting
    (for a worker process to start, for the compile lock another test holds, for a hang to time
    out), and a second test per core fills those waits; on a large box the cores alone do."""
    cores = os.cpu_count() or 1
    return 2 * cores if cores <= 4 else cores

