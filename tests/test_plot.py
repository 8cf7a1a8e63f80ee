"""`rnnperf plot` draws a PNG from a results document."""

from __future__ import annotations

from rnnperf import cli
from rnnperf.bench import results as res

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def sample_doc() -> res.ResultsDoc:
    doc = res.ResultsDoc(machine={"cpu": "synthetic CPU", "cores_logical": 2})
    for engine, scale in (("numpy", 1.0), ("pytensor-c", 0.8), ("jax", 0.5)):
        for shape in ({"T": 100, "B": 1, "I": 16, "H": 32, "O": 10},
                      {"T": 100, "B": 32, "I": 128, "H": 256, "O": 10}):
            for task in ("forward", "train"):
                profile = f"engine={engine}"
                base = 0.001 * shape["B"] * (3 if task == "train" else 1) * scale
                m = res.Measurement(key=res.make_key(profile, shape, task), profile=profile,
                                    engine=engine, task=task, shape=shape, peak_gflops=50.0,
                                    compile_s=5 * scale, times_s=[base * f for f in
                                                                  (1, 1.02, 0.99, 1.01, 1.0)])
                doc.put(m)
    doc.put(res.Measurement(key="engine=torch|x|train", profile="engine=torch", engine="torch",
                            task="train", shape={"T": 1, "B": 1, "I": 1, "H": 1, "O": 1},
                            status="unavailable", error="torch is not installed"))
    return doc


def test_plot_writes_a_png(tmp_path, capsys):
    src = tmp_path / "r.json"
    res.save(sample_doc(), src)
    out = tmp_path / "out.png"
    assert cli.main(["plot", str(src), "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert out.stat().st_size > 10_000


def test_nothing_to_plot_exits_2(tmp_path, capsys):
    src = tmp_path / "r.json"
    res.save(res.ResultsDoc(), src)
    assert cli.main(["plot", str(src), "-o", str(tmp_path / "o.png")]) == 2
    assert "nothing to plot" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()
