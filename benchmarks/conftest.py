"""pytest-benchmark suites for the seed RNN: ``pytest benchmarks/ --benchmark-only``.

Not collected by the ordinary test run (``setup.cfg`` keeps ``testpaths = tests``). These run the
engines *in this process*, which is fine for a quick look with default flags and for
pytest-benchmark's comparison tooling (``--benchmark-autosave``, ``--benchmark-compare``); the
measurements that honour a Theano-style profile, one fresh process per measurement, come from
``rnnperf bench``. An engine that is not installed here is skipped with the reason.
"""

from __future__ import annotations

import pytest

from rnnperf.bench.plan import REFERENCE_SHAPE

SMALL_SHAPE = {"T": 100, "B": 1, "I": 16, "H": 32, "O": 10}
SHAPES = {"small": SMALL_SHAPE, "reference": REFERENCE_SHAPE}
#: engines that cannot run in this interpreter whatever is installed
IN_PROCESS_SKIP = {"theano": "runs in the legacy venv's interpreter; use `rnnperf bench`"}

_engines: dict = {}


def engine_names() -> list[str]:
    from rnnperf.engines import names
    return names()


def build(name: str, shape: dict, cell: str = "elman"):
    """One engine per (name, cell, shape) for the whole session: compile is paid once."""
    key = (name, cell, tuple(shape.values()))
    if key in _engines:
        return _engines[key]
    from rnnperf import flags
    from rnnperf.engines import availability, load
    from rnnperf.errors import ConfigError, Unavailable
    from rnnperf.model.spec import init_params
    if name in IN_PROCESS_SKIP:
        pytest.skip(f"{name}: {IN_PROCESS_SKIP[name]}")
    ok, reason, _ = availability(name)
    if not ok:
        pytest.skip(f"{name}: {reason}")
    try:
        config = flags.load(flags=f"engine={name},cell={cell}")
        cls = load(name, config)
        engine = cls(config, shape["I"], shape["H"], shape["O"],
                     init_params(shape["I"], shape["H"], shape["O"], dtype=config.floatX,
                                 cell=config.cell))
    except (ImportError, Unavailable, ConfigError) as exc:  # ConfigError: a cell it lacks
        pytest.skip(f"{name}: {exc}")
    _engines[key] = engine
    return engine


def pytest_generate_tests(metafunc):
    if "engine_name" in metafunc.fixturenames:
        metafunc.parametrize("engine_name", engine_names())
    if "shape_name" in metafunc.fixturenames:
        metafunc.parametrize("shape_name", list(SHAPES))
    if "cell" in metafunc.fixturenames:
        from rnnperf.cells import names
        metafunc.parametrize("cell", list(names()))


@pytest.fixture
def shape(shape_name):
    return SHAPES[shape_name]


@pytest.fixture
def engine(engine_name, shape, cell):
    return build(engine_name, shape, cell)
