"""The results table: one row per measurement, speed-ups relative to a baseline engine.

Printed by ``bench`` and ``table`` (rich, to stdout) and as Markdown for docs.
"""

from __future__ import annotations

from ..ui import stdout_console
from .results import shape_label


COLUMNS = ("profile", "shape", "task", "status", "median ms", "IQR ms", "seq/s", "GFLOP/s",
           "peak GFLOP/s", "peak %", "x baseline", "import s", "compile s", "RSS MB", "threads",
           "device")


def baseline_medians(measurements, baseline: str) -> dict:
    """Best median of the baseline engine per shape x task, from the same document (same run)."""
    best: dict = {}
    for m in measurements:
        if m.engine == baseline and m.ok and m.median_s:
            key = (results_shape(m), m.task)
            best[key] = min(best.get(key, m.median_s), m.median_s)
    return best


def result_rows(measurements, baseline: str = "torch") -> list[list[str]]:
    """One row of formatted cells per measurement; ``x baseline`` = speed-up over the baseline."""
    base = baseline_medians(measurements, baseline)

    def f(v, fmt, scale=1.0):
        return "-" if v is None else format(v * scale, fmt)
    rows = []
    for m in measurements:
        ref = base.get((results_shape(m), m.task))
        ratio = ref / m.median_s if ref and m.ok and m.median_s else None
        rows.append([m.profile or m.engine, results_shape(m), m.task, m.status,
                     f(m.median_s, ".3f", 1e3), f(m.iqr_s, ".3f", 1e3), f(m.seq_per_s, ".1f"),
                     f(m.gflops, ".2f"), f(m.peak_gflops, ".1f"), f(m.peak_fraction, ".1%"),
                     f(ratio, ".2f"), f(m.import_s, ".2f"), compile_cell(m), f(m.rss_mb, ".0f"),
                     str(m.threads or "-"), m.device_actual or "-"])
    return rows


def compile_cell(m) -> str:
    """``compile_s``, and ``hit``/``miss`` where it came from the function cache's side."""
    if m.compile_s is None:
        return "-"
    if m.function_cache in ("hit", "miss"):
        return f"{m.compile_s:.2f} {m.function_cache}"
    return f"{m.compile_s:.2f}"


def render_results(measurements, console=None, baseline: str = "torch") -> None:
    from rich.table import Table
    console = console or stdout_console()
    table = Table(title=f"rnnperf bench (x baseline: speed-up over the best {baseline} "
                        "measurement of the same shape and task in this document)")
    for col in COLUMNS:
        table.add_column(col, justify="left" if col in ("profile", "shape", "task", "status",
                                                        "device") else "right")
    errors = []
    for m, row in zip(measurements, result_rows(measurements, baseline)):
        table.add_row(*row, style=None if m.ok else "red")
        if m.error:
            errors.append(f"{m.key}: {m.status}: {m.error}")
    console.print(table)
    for line in errors:
        console.print(line, markup=False, highlight=False)


def markdown_table(measurements, baseline: str = "torch") -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in result_rows(measurements, baseline)]
    return "\n".join(lines)


def results_shape(m) -> str:
    return shape_label(m.shape)
