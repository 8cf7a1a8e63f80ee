"""Every recorded figure is what ran: the FLOPs performed, the threads every pool used, how busy
the machine was, and documents that say under which conventions they were counted."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rnnperf import cli, flags
from rnnperf.bench import results as res
from rnnperf.bench.flops import CONVENTION, step_flops
from rnnperf.bench.plan import Job, parse_shape

RW = parse_shape("T=100,B=32,I=128,H=256")


def test_the_flop_convention_is_recorded_and_matches_the_counter():
    assert res.CONVENTIONS["flops"] == CONVENTION
    assert res.ResultsDoc().to_json()["conventions"] == res.CONVENTIONS


def test_a_job_records_the_flops_its_step_performs():
    job = Job(flags.load("engine=numpy", use_env=False), RW, "train")
    m = job.blank(times_s=[0.010] * 5, peak_gflops=200.0)
    assert m.flops_per_step == step_flops("train", 100, 32, 128, 256, 10) == 1_678_213_120
    assert m.peak_fraction == pytest.approx(1.678213120 / 0.010 / 200.0)


def old_document(tmp_path):
    """A /2 document as the previous release wrote it: train FLOPs counted as 3 x forward."""
    job = Job(flags.load("engine=numpy", use_env=False), RW, "train")
    m = job.blank(times_s=[0.010] * 5, peak_gflops=200.0).to_json()
    m["flops_per_step"] = 3 * step_flops("forward", 100, 32, 128, 256, 10)
    for name in ("threads_actual", "pools", "others_cpu", "steal", "loadavg"):
        del m[name]
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"schema": "rnnperf.results/2", "results": [m]}))
    return path


def test_an_older_document_keeps_its_counts_and_says_so(tmp_path, capsys):
    path = old_document(tmp_path)
    doc = res.load(path)
    assert doc.conventions == res.OLD_CONVENTIONS
    assert doc.results[0].flops_per_step == 1_887_928_320      # what it recorded, not re-derived
    new = tmp_path / "new.json"
    fresh = res.ResultsDoc()
    fresh.put(res.Measurement.from_json({**doc.results[0].to_json(),
                                         "flops_per_step": 1_678_213_120}))
    res.save(fresh, new)
    assert cli.main(["compare", str(path), str(new)]) == 0
    out = capsys.readouterr().out
    assert "conventions differ" in out and "3x-forward/0" in out and CONVENTION in out


def test_resuming_an_older_document_is_refused(tmp_path, capsys):
    path = old_document(tmp_path)
    code = cli.main(["bench", "--resume", "--engines", "numpy", "--out", str(path),
                     "--shape", "T=100,B=32,I=128,H=256", "--task", "train", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "older conventions" in err and len(err.strip().splitlines()) == 1


def test_a_busy_measurement_is_flagged_in_the_table():
    from rich.console import Console

    from rnnperf.bench.table import render_results
    job = Job(flags.load("engine=numpy", use_env=False), RW, "train")
    quiet = job.blank(times_s=[0.010] * 5, others_cpu=0.02, steal=0.0, loadavg=2.1)
    busy = Job(flags.load("engine=torch", use_env=False), RW, "train").blank(
        times_s=[0.015] * 5, others_cpu=0.45, steal=0.0, loadavg=3.4)
    assert not quiet.busy and busy.busy
    console = Console(width=120, record=True)
    render_results([quiet, busy], console=console)
    text = console.export_text()
    assert "15.000!" in text and "10.000!" not in text
    assert "the machine was busy" in text and "45%" in text


def test_the_load_window_sees_another_process_take_a_core():
    from rnnperf.bench.load import LoadWindow
    if not os.path.exists("/proc/stat"):
        pytest.skip("reads /proc/stat (Linux)")
    spinner = subprocess.Popen([sys.executable, "-c", "import time\nt=time.time()\n"
                                "while time.time()-t<1.5: pass"])
    try:
        window = LoadWindow()
        import time
        time.sleep(1.0)
        figures = window.figures()
    finally:
        spinner.wait()
    # one spinning process of this many CPUs; the sleeping test took none of it
    assert figures["others_cpu"] >= 0.5 / (os.cpu_count() or 1)
    assert 0 <= figures["steal"] <= 1 and figures["loadavg"] is not None


@pytest.mark.parametrize("threads", [1])
def test_every_pool_of_a_worker_runs_the_threads_asked(tmp_path, threads):
    """The bench worker pins its affinity and every pool, and reads them back: XLA's pool (the
    CPUs it may use), BLAS and OpenMP (threadpoolctl), torch's where loaded."""
    from rnnperf.bench.sweep import Settings, measure
    engines = ["numpy", "jax"] + (["torch"] if _has("torch") else [])
    for engine in engines:
        job = Job(flags.load(f"engine={engine},threads={threads}", use_env=False),
                  parse_shape("T=5,B=2,I=3,H=4"), "train")
        m = measure(job, Settings(min_time=0.001, rounds=5, timeout=300))
        assert m.status == "ok", m.error
        assert m.threads == threads and m.threads_actual == threads, (engine, m.pools)
        assert m.pools["cpus"] == threads and all(v == threads for v in m.pools.values()), \
            (engine, m.pools)


def test_the_in_process_api_limits_the_pools():
    from rnnperf import RNN
    net = RNN(3, 4, 2, flags="engine=numpy,threads=1", use_env=False)
    net.forward(__import__("numpy").ones((5, 3)))
    blas = {k: v for k, v in net.pools.items() if k != "cpus"}
    assert blas and all(v == 1 for v in blas.values()), blas


def test_an_engine_without_formulations_keeps_none_in_its_profile():
    config = flags.load("engine=numpy,formulation=fused", use_env=False)
    assert config["formulation"] == "seed" and "formulation" not in config.profile()
    assert "cannot build" in config.settings["formulation"].source


def test_warm_ranks_a_failure_above_an_unavailable_engine():
    from rnnperf.bench.warm import exit_code
    assert exit_code([{"status": "unavailable"}, {"status": "failed"}]) == 1
    assert exit_code([{"status": "unavailable"}, {"status": "ok"}]) == 3


def test_the_blas_facts_name_each_thread_setting_once(monkeypatch):
    pytest.importorskip("pytensor")
    import pytensor  # noqa: F401  (the facts read its config)

    from rnnperf.bench.peak import blas_info
    info = blas_info("pytensor-c")
    assert info.count("OMP_WAIT_POLICY") == 1 and info.count("OPENBLAS_THREAD_TIMEOUT") == 1


def _has(module: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(module) is not None


def test_pooled_workers_peak_is_their_median_not_their_best():
    from rnnperf.bench.sweep import pool
    job = Job(flags.load("engine=numpy", use_env=False), RW, "train")
    first = job.blank(times_s=[0.010] * 5, peak_gflops=100.0, processes=1)
    for n, peak in ((2, 200.0), (3, 150.0)):
        first = pool(first, job.blank(times_s=[0.011] * 5, peak_gflops=peak), n)
    assert first.peak_gflops == 150.0 and first.extra["peak_gflops_workers"] == [100, 200, 150]


def test_the_machine_share_compares_peaks_of_one_precision_only():
    from rnnperf.bench.table import machine_peaks
    f32 = Job(flags.load("engine=torch", use_env=False), RW, "train").blank(
        times_s=[0.010] * 5, peak_gflops=200.0, device_actual="cpu")
    tf32 = Job(flags.load("engine=torch,matmul_precision=tf32", use_env=False), RW, "train") \
        .blank(times_s=[0.010] * 5, peak_gflops=900.0, device_actual="cpu")
    peaks = machine_peaks([f32, tf32])
    assert peaks[("float32", "cpu", "float32")] == 200.0
    assert peaks[("float32", "cpu", "tf32")] == 900.0
