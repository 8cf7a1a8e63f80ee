"""Sub-commands ``bench``, ``compare`` and ``plot`` (registered into :mod:`rnnperf.cli`).

Progress goes to stderr (rich), tables to stdout. Exit codes: ``bench`` 1 if a measurement failed
(NaN included) or timed out, else 3 if an engine was unavailable, else 0; with ``--compare`` a
regression is also 1. ``compare`` 1 on a regression. Bad usage or a corrupt/foreign results file 2.
"""

from __future__ import annotations

import argparse

from .ui import stdout_console


def register(sub) -> None:
    from . import harness
    from .compare import DEFAULT_THRESHOLD

    p = sub.add_parser("bench", help="benchmark profiles x shapes x tasks, one worker each",
                       description="Benchmark each profile x shape x task in its own worker "
                                   "process and write an rnnperf.results/2 document.")
    harness.add_plan_args(p)
    p.add_argument("--out", default="results.json", help="results document (default %(default)s)")
    harness.add_sweep_args(p)
    p.add_argument("--processes", type=int, default=1, metavar="N",
                   help="fresh workers per measurement, in N interleaved passes over the "
                        "sweep; their rounds are pooled (default %(default)s)")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls after the first "
                   "(default 1)")
    p.add_argument("--compare", metavar="BASE.json", help="then compare with BASE.json")
    p.add_argument("--threshold", default=f"{DEFAULT_THRESHOLD:.0%}",
                   help="regression threshold for --compare (default %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_bench)

    c = sub.add_parser("compare", help="compare two results documents (regression gate)")
    c.add_argument("base", metavar="BASE.json")
    c.add_argument("new", metavar="NEW.json")
    c.add_argument("--threshold", default=f"{DEFAULT_THRESHOLD:.0%}",
                   help="slowdown allowed beyond the IQRs (default %(default)s)")
    c.set_defaults(func=cmd_compare)

    t = sub.add_parser("table", help="print a results document as a table (or Markdown)")
    t.add_argument("results", metavar="RESULTS.json")
    t.add_argument("--markdown", action="store_true", help="a Markdown table, for docs")
    t.add_argument("--baseline", default="torch", help="engine the speed-ups are relative to "
                   "(default %(default)s)")
    t.set_defaults(func=cmd_table)

    pl = sub.add_parser("plot", help="plot a results document to a PNG")
    pl.add_argument("results", metavar="RESULTS.json")
    pl.add_argument("-o", "--output", default="rnnperf.png", help="PNG (default %(default)s)")
    pl.add_argument("--title")
    pl.set_defaults(func=cmd_plot)


def cmd_bench(args: argparse.Namespace) -> int:
    from . import harness, results
    from .compare import parse_threshold
    from .errors import ConfigError
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads {args.threads}: must be a positive integer")
    threshold = parse_threshold(args.threshold)
    base = results.load(args.compare) if args.compare else None   # fail before the sweep
    jobs = harness.plan_from_args(args)
    settings = harness.Settings(min_time=args.min_time, rounds=args.rounds, warmup=args.warmup,
                                timeout=args.timeout, processes=args.processes)
    doc = harness.run_sweep(jobs, settings, args.out, resume=args.resume, force=args.force,
                            progress=not args.no_progress)
    keys = {j.key for j in jobs}
    mine = [m for m in doc.results if m.key in keys]
    render_results(mine)
    code = harness.exit_code(mine)
    if base is not None:
        from .compare import compare_docs, exit_code, render
        rows = compare_docs(base, doc, threshold)
        render(rows, threshold, stdout_console())
        if exit_code(rows):
            return 1
    return code


def cmd_compare(args: argparse.Namespace) -> int:
    from . import results
    from .compare import compare_docs, exit_code, parse_threshold, render
    threshold = parse_threshold(args.threshold)
    rows = compare_docs(results.load(args.base), results.load(args.new), threshold)
    render(rows, threshold, stdout_console())
    return exit_code(rows)


def cmd_plot(args: argparse.Namespace) -> int:
    from . import results
    from .plot import plot
    path = plot(results.load(args.results), args.output, args.title)
    print(path)
    return 0


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


def cmd_table(args: argparse.Namespace) -> int:
    from . import results
    doc = results.load(args.results)
    if args.markdown:
        print(markdown_table(doc.results, args.baseline))
    else:
        render_results(doc.results, baseline=args.baseline)
    return 0


def results_shape(m) -> str:
    from .results import shape_label
    return shape_label(m.shape)
