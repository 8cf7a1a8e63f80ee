"""The results table: one row per measurement, speed-ups relative to a baseline engine.

Printed by ``bench`` and ``table`` (rich, to stdout) and as Markdown for docs.
"""

from __future__ import annotations

import dataclasses

from ..ui import Column, print_lines, stdout_console, table
from .results import shape_label

#: every column; without ``--wide`` the essential ones (a failed row is red, and its status and
#: error are listed under the table). ``RSS MB`` is the worker's lifetime peak (imports, compile,
#: peak probe); ``step MB`` what the timed step itself needs above the RSS before its first call
TABLE_COLUMNS = [
    Column("profile"), Column("shape"), Column("task"), Column("status", essential=False),
    Column("median ms", right=True), Column("IQR ms", right=True),
    Column("seq/s", right=True, essential=False), Column("GFLOP/s", right=True, essential=False),
    Column("peak GFLOP/s", right=True, essential=False), Column("peak %", right=True),
    Column("machine %", right=True, essential=False),
    Column("x baseline", right=True), Column("import s", right=True, essential=False),
    Column("compile s", right=True, essential=False),
    Column("RSS MB", right=True, essential=False), Column("step MB", right=True, essential=False),
    Column("threads", right=True, essential=False), Column("device"),
]
COLUMNS = tuple(c.name for c in TABLE_COLUMNS)
#: after the median of a measurement timed on a busy machine (Measurement.busy)
BUSY_MARK = "!"


def cell_of(m) -> str:
    """The cell a measurement ran (documents from before cells ran the Elman cell)."""
    return (m.flags or {}).get("cell") or "elman"


def baseline_medians(measurements, baseline: str) -> dict:
    """Best median of the baseline engine per shape x task x cell, from the same document (same
    run): an LSTM is compared with torch's LSTM, not with its RNN."""
    best: dict = {}
    for m in measurements:
        if m.engine == baseline and m.ok and m.median_s:
            key = (results_shape(m), m.task, cell_of(m))
            best[key] = min(best.get(key, m.median_s), m.median_s)
    return best


def result_rows(measurements, baseline: str = "torch") -> list[list[str]]:
    """One row of formatted cells per measurement; ``x baseline`` = speed-up over the baseline."""
    base = baseline_medians(measurements, baseline)
    machine = machine_peaks(measurements)

    def f(v, fmt, scale=1.0):
        return "-" if v is None else format(v * scale, fmt)
    rows = []
    for m in measurements:
        ref = base.get((results_shape(m), m.task, cell_of(m)))
        ratio = ref / m.median_s if ref and m.ok and m.median_s else None
        busy = BUSY_MARK if m.busy else ""
        rows.append([m.profile or m.engine, results_shape(m), m.task, m.status,
                     f(m.median_s, ".3f", 1e3) + busy, f(m.iqr_s, ".3f", 1e3),
                     f(m.seq_per_s, ".1f"),
                     f(m.gflops, ".2f"), f(m.peak_gflops, ".1f"), f(m.peak_fraction, ".1%"),
                     f(_share(m, machine), ".1%"), f(ratio, ".2f"), f(m.import_s, ".2f"),
                     compile_cell(m), f(m.rss_mb, ".0f"), f(m.step_peak_mb, ".1f"),
                     str(m.threads or "-"), m.device_actual or "-"])
    return rows


def machine_peaks(measurements) -> dict:
    """The fastest product any engine's probe reached, per dtype and device, in these
    measurements: what the machine showed it can do (an engine's own BLAS may be slower, and an
    engine's own kernels may outrun it: then its ``peak %`` exceeds 100 % and ``machine %``, the
    physical share, does not)."""
    best: dict = {}
    for m in measurements:
        if m.ok and m.peak_gflops:
            key = _peak_key(m)
            best[key] = max(best.get(key, 0.0), m.peak_gflops)
    return best


def _peak_key(m) -> tuple:
    """Products compare within one dtype, device and matmul precision (a TF32 peak is no
    float32 one)."""
    return m.dtype, m.device_actual, (m.flags or {}).get("matmul_precision", "float32")


def _share(m, machine: dict) -> float | None:
    peak = machine.get(_peak_key(m))
    return m.gflops / peak if m.gflops is not None and peak else None


def compile_cell(m) -> str:
    """``compile_s``, and ``hit``/``miss`` where it came from the function cache's side."""
    if m.compile_s is None:
        return "-"
    if m.function_cache in ("hit", "miss"):
        return f"{m.compile_s:.2f} {m.function_cache}"
    return f"{m.compile_s:.2f}"


def short_profile(m) -> str:
    """``pytensor-c hoisted threads=1``: the engine, its formulation, then its other keys,
    space-separated so that a narrow terminal wraps between them."""
    from ..flags import format_flags, split_flags
    pairs = [(k, v) for k, v in split_flags(m.profile or "", "profile") if k != "engine"]
    shown = [v if k == "formulation" else format_flags([(k, v)]) for k, v in pairs]
    return " ".join([m.engine] + shown)


def short_shape(shape: dict) -> str:
    """``100x32x128x256`` (T x B x I x H), and ``/O`` when the classes are not the default 10."""
    text = "x".join(str(shape[k]) for k in ("T", "B", "I", "H"))
    return text if shape.get("O", 10) == 10 else f"{text}/{shape['O']}"


def render_results(measurements, console=None, baseline: str = "torch",
                   wide: bool = False) -> None:
    console = console or stdout_console()
    rows = result_rows(measurements, baseline)
    columns = TABLE_COLUMNS
    if not wide:                      # shorter cells and headers where the space is short
        short = {"shape": "TxBxIxH", "median ms": "ms/step", "IQR ms": "IQR", "peak %": "peak",
                 "x baseline": f"x {baseline}"}
        columns = [dataclasses.replace(c, name=short.get(c.name, c.name)) for c in TABLE_COLUMNS]
        for m, row in zip(measurements, rows):
            row[0], row[1] = short_profile(m), short_shape(m.shape)
    console.print(table(columns, rows, wide=wide,
                        styles=[None if m.ok else "red" for m in measurements],
                        title=f"x {baseline}: speed-up over the best {baseline} measurement of "
                              "the same shape, task and cell in this document; IQR in ms"))
    print_lines(console, [f"{m.key}: {m.status}: {m.error}" for m in measurements if m.error])
    print_lines(console, busy_lines(measurements))


def busy_lines(measurements) -> list[str]:
    """A warning per measurement timed while other processes (or the hypervisor) took a share of
    the machine: its numbers are not to be trusted, nor ratios against it."""
    return [f"{BUSY_MARK} {m.key}: the machine was busy while it was timed (other processes "
            f"{(m.others_cpu or 0):.0%} of the CPUs, steal {(m.steal or 0):.0%}, load "
            f"{m.loadavg}): distrust it" for m in measurements if m.busy]


def markdown_table(measurements, baseline: str = "torch", columns=None) -> str:
    """The table in Markdown, for docs; ``columns`` picks and orders columns by name (default
    every one). The speed-up column is headed by its baseline, ``x torch``, as in the terminal."""
    picked = [COLUMNS.index(c) for c in columns] if columns else range(len(COLUMNS))
    right = [TABLE_COLUMNS[i].right for i in picked]
    names = [f"x {baseline}" if COLUMNS[i] == "x baseline" else COLUMNS[i] for i in picked]
    lines = ["| " + " | ".join(names) + " |",
             "|" + "".join(" ---: |" if r else " --- |" for r in right)]
    lines += ["| " + " | ".join(row[i] for i in picked) + " |"
              for row in result_rows(measurements, baseline)]
    return "\n".join(lines + [""] + busy_lines(measurements)).rstrip()


def pick_columns(text: str | None) -> list[str] | None:
    """``--columns a,b``: names from :data:`COLUMNS`; an unknown one is one line, exit 2."""
    from ..errors import ConfigError
    if not text:
        return None
    names = [c.strip() for c in text.split(",") if c.strip()]
    for name in names:
        if name not in COLUMNS:
            raise ConfigError(f"--columns: unknown column {name!r} (one of: {', '.join(COLUMNS)})")
    return names


def results_shape(m) -> str:
    return shape_label(m.shape)
