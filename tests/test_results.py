"""The results document: schema round trip, refusal of foreign files, atomic writes."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnperf.bench import results as res
from rnnperf.errors import ConfigError
from rnnperf.bench.flops import step_flops


def measurement(times=(0.010, 0.011, 0.012, 0.010, 0.013), task="train", engine="numpy",
                shape=None, **fields) -> res.Measurement:
    shape = shape or {"T": 5, "B": 2, "I": 3, "H": 4, "O": 10}
    profile = f"engine={engine}"
    return res.Measurement(key=res.make_key(profile, shape, task), profile=profile,
                           engine=engine, task=task, shape=shape, times_s=list(times),
                           peak_gflops=10.0, compile_s=0.5,
                           flops_per_step=step_flops(task, *(shape[k] for k in "TBIHO")),
                           **fields)


def test_every_figure_is_derived_from_the_rounds():
    m = measurement()
    assert m.median_s == pytest.approx(0.011)
    assert m.min_s == pytest.approx(0.010)
    assert m.iqr_s == pytest.approx(0.012 - 0.010)
    assert m.seq_per_s == pytest.approx(2 / 0.011)
    assert m.timesteps_per_s == pytest.approx(5 * 2 / 0.011)
    assert m.flops_per_step == step_flops("train", 5, 2, 3, 4, 10)
    assert m.gflops == pytest.approx(m.flops_per_step / 0.011 / 1e9)
    assert m.peak_fraction == pytest.approx(m.gflops / 10.0)


def test_statistics_follow_the_rounds_and_are_recomputed_on_load():
    m = measurement()
    stale = m.to_json()
    assert stale["median_s"] == pytest.approx(0.011)        # written for other readers
    stale["median_s"], stale["gflops"] = 99.0, 99.0
    loaded = res.Measurement.from_json(stale)
    assert loaded.median_s == pytest.approx(0.011) and loaded.gflops == pytest.approx(m.gflops)
    m.times_s += [0.020] * 6                                 # pooling more rounds
    assert m.median_s == pytest.approx(0.020) and m.seq_per_s == pytest.approx(2 / 0.020)
    assert res.Measurement(key="k", profile="p", engine="numpy", task="train",
                           shape=m.shape).median_s is None


def test_a_version_1_document_still_loads_and_compares(tmp_path):
    """/1 had no import_s nor function_cache (its compile_s included the import)."""
    old = measurement().to_json()
    del old["import_s"], old["function_cache"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"schema": "rnnperf.results/1", "results": [old]}))
    (m,) = res.load(path).results
    assert m.import_s is None and m.function_cache is None and m.compile_s == 0.5
    res.save(res.load(path), path)
    saved = json.loads(path.read_text())
    assert saved["schema"] == res.SCHEMA == "rnnperf.results/3"
    assert saved["conventions"] == res.OLD_CONVENTIONS    # its figures keep their old meaning


def test_flop_model_counts_the_products_a_minimal_implementation_performs():
    # forward: T * 2BH(I+H) + 2BHO
    assert step_flops("forward", 100, 32, 128, 256, 10) == \
        100 * 2 * 32 * 256 * 384 + 2 * 32 * 256 * 10
    # train: forward + dh through Whh + dWhh + dWxh (every step) + dWhy and dh_T; no dX
    T, B, I, H, O = 100, 32, 128, 256, 10
    assert step_flops("train", T, B, I, H, O) == step_flops("forward", T, B, I, H, O) + \
        T * 2 * B * H * H * 2 + T * 2 * B * H * I + 2 * 2 * B * H * O
    assert step_flops("train", T, B, I, H, O) == 1_678_213_120          # was 3 x 629.3 M
    with pytest.raises(ValueError):
        step_flops("predict", 1, 1, 1, 1, 1)


def test_round_trip(tmp_path):
    doc = res.ResultsDoc(machine={"cpu": "x"}, versions={"numpy": "2"})
    doc.put(measurement())
    doc.put(measurement(task="forward"))
    doc.put(res.Measurement(key="k|s|train", profile="engine=jax", engine="jax", task="train",
                            shape={"T": 1, "B": 1, "I": 1, "H": 1, "O": 1}, status="timeout",
                            error="worker passed the 1 s timeout and was killed"))
    path = tmp_path / "r.json"
    res.save(doc, path)
    data = json.loads(path.read_text())
    assert data["schema"] == res.SCHEMA
    for name in ("created", "machine", "versions", "results"):
        assert name in data
    back = res.load(path)
    assert back.to_json() == doc.to_json()
    assert [m.status for m in back.results] == ["ok", "ok", "timeout"]


@settings(max_examples=30, deadline=None)
@given(times=st.lists(st.floats(1e-6, 10.0), min_size=1, max_size=12),
       task=st.sampled_from(["forward", "train"]),
       dims=st.lists(st.integers(1, 512), min_size=5, max_size=5))
def test_round_trip_any_measurement(times, task, dims):
    shape = dict(zip(res.SHAPE_KEYS, dims))
    m = measurement(times=times, task=task, shape=shape)
    back = res.Measurement.from_json(json.loads(json.dumps(m.to_json())))
    assert back == m
    assert m.min_s <= m.median_s and m.iqr_s >= 0


def test_put_replaces_same_key():
    doc = res.ResultsDoc()
    doc.put(measurement(times=[1, 1, 1, 1, 1]))
    doc.put(measurement(times=[2, 2, 2, 2, 2]))
    assert len(doc.results) == 1 and doc.results[0].median_s == 2


@pytest.mark.parametrize("text, message", [
    ("{not json", "corrupt results file"),
    ('{"schema": "pytest-benchmark/4", "results": []}', "is not one of 'rnnperf.results/1'"),
    ("[1, 2]", "not an rnnperf results document"),
    ('{"schema": "rnnperf.results/1", "results": [{"key": "k"}]}', "lacks"),
    ('{"schema": "rnnperf.results/1", "results": {}}', "must be a list"),
])
def test_foreign_or_corrupt_file_is_one_line(tmp_path, text, message):
    path = tmp_path / "r.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        res.load(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such results file"):
        res.load(tmp_path / "nope.json")


def test_atomic_write_leaves_old_document_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    doc = res.ResultsDoc()
    doc.put(measurement())
    res.save(doc, path)
    before = path.read_text()

    def boom(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", boom)
    doc.put(measurement(task="forward"))
    with pytest.raises(OSError):
        res.save(doc, path)
    assert path.read_text() == before
    assert os.listdir(tmp_path) == ["r.json"]


def test_nan_is_never_written(tmp_path):
    doc = res.ResultsDoc()
    doc.put(measurement(times=[float("nan")] * 5))
    with pytest.raises(ValueError):
        res.save(doc, tmp_path / "r.json")
    assert os.listdir(tmp_path) == []
