"""What every results document says about the machine: which CPU, told apart by family, model
and vector extensions (two VMs both called "AMD EPYC" were a Zen 5 with AVX-512 and a Zen 3
without, 3-4x apart per step)."""

from __future__ import annotations

from rnnperf.bench import machine

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC
stepping\t: 1
flags\t\t: fpu sse4_2 avx fma avx2 bmi2

processor\t: 1
model name\t: something else
"""


def test_cpu_id_reads_family_model_and_the_vector_extensions(tmp_path, monkeypatch):
    info = tmp_path / "cpuinfo"
    info.write_text(CPUINFO)
    real_open = open
    monkeypatch.setattr("builtins.open", lambda path, *a, **k: real_open(
        info if path == "/proc/cpuinfo" else path, *a, **k))
    assert machine.cpu_model() == "AMD EPYC"
    ident = machine.cpu_id()
    assert ident == {"vendor": "AuthenticAMD", "family": 25, "model": 1, "stepping": 1,
                     "isa": ["sse4_2", "avx", "fma", "avx2"]}
    label = machine.cpu_label({"cpu": "AMD EPYC", "cpu_id": ident})
    assert label == "AMD EPYC (family 25 model 1, AVX2, no AVX-512)"


def test_the_label_of_an_avx512_machine_and_of_an_old_document():
    zen5 = {"cpu": "AMD EPYC", "cpu_id": {"family": 26, "model": 2,
                                          "isa": ["avx2", "avx512f", "avx512bw"]}}
    assert machine.cpu_label(zen5) == "AMD EPYC (family 26 model 2, AVX-512)"
    assert machine.cpu_label({"cpu": "AMD EPYC"}) == "AMD EPYC"   # before cpu_id: the name
    assert "cpu_id" in machine.machine_facts()
