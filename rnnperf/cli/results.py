"""Sub-commands that read results documents: ``compare`` (the regression gate), ``table``,
``plot`` (the summary, or with ``--x`` the cost curves of a grid). Exit codes: ``compare`` 1 on
a regression; a corrupt or foreign file 2."""

from __future__ import annotations

import argparse

from ..bench.compare import DEFAULT_THRESHOLD
from ..model.spec import TASKS
from .args import Deprecated, add_wide_arg


#: what each command's exit status means, and what it writes (docs/cli.md)
EXIT_CODES = {
    "compare": {0: "no measurement is slower than the threshold beyond the IQRs",
                1: "a regression",
                2: "a missing, corrupt or foreign results document, or a bad --threshold"},
    "table": {0: "the table was printed",
              2: "a missing, corrupt or foreign results document, a bad --shape, --columns "
                 "without --markdown or naming an unknown column"},
    "plot": {0: "the PNG was written and its path printed (with --x, each panel's fitted slope)",
             2: "a missing, corrupt or foreign results document, --y or --at without --x, a bad "
                "--at, -o naming a directory, or nothing to plot"},
}
WRITES = {
    "compare": "nothing: the comparison on stdout",
    "table": "nothing: the table (or Markdown) on stdout",
    "plot": "-o/--out (default rnnperf.png; .png added to a name without a suffix)",
}


def register(sub) -> None:
    c = sub.add_parser("compare", help="compare two results documents (regression gate)")
    c.add_argument("base", metavar="BASE.json", help="the results document to compare against")
    c.add_argument("new", metavar="NEW.json", help="the results document under test")
    c.add_argument("--threshold", default=f"{DEFAULT_THRESHOLD:.0%}",
                   help="slowdown allowed beyond the IQRs (default %(default)s)")
    c.set_defaults(func=cmd_compare)

    t = sub.add_parser("table", help="print a results document as a table (or Markdown)")
    t.add_argument("results", metavar="RESULTS.json", help="a results document (bench --out)")
    t.add_argument("--markdown", action="store_true", help="a Markdown table, for docs")
    t.add_argument("--task", choices=TASKS, help="only this task's measurements")
    t.add_argument("--shape", metavar="T=..,B=..,I=..,H=..[,O=..]",
                   help="only this shape's measurements (O defaults to 10)")
    t.add_argument("--columns", metavar="A,B,...",
                   help="with --markdown: these columns, in this order (names as in the "
                        "header, e.g. 'profile,median ms,x baseline')")
    t.add_argument("--baseline", default="torch", help="engine the speed-ups are relative to "
                   "(default %(default)s)")
    add_wide_arg(t)
    t.set_defaults(func=cmd_table)

    pl = sub.add_parser("plot", help="plot a results document to a PNG")
    pl.add_argument("results", metavar="RESULTS.json", help="a results document (bench --out)")
    pl.add_argument("-o", "--out", default="rnnperf.png", metavar="FILE.png",
                    help="the PNG to write (default %(default)s)")
    pl.add_argument("--output", dest="out", action=Deprecated, instead="--out",
                    metavar="FILE.png")
    pl.add_argument("--title", help="the figure's title (default: the CPU and its cores)")
    pl.add_argument("--x", choices=("T", "B", "I", "H"), type=str.upper,
                    help="cost curves instead: time per step against this shape key on log-log "
                         "axes, one panel per value of the other keys, the fitted slope in "
                         "each legend (a bench --grid document)")
    pl.add_argument("--y", choices=("time", "memory"), help="with --x: median time per step "
                    "(default) or the step's peak memory (step_peak_mb)")
    pl.add_argument("--at", metavar="KEY=N,...", help="with --x: only the panels at these "
                    "values of the other keys, e.g. B=32,H=256")
    pl.set_defaults(func=cmd_plot)


def cmd_compare(args: argparse.Namespace) -> int:
    from ..bench import results
    from ..bench.compare import (compare_docs, conventions_line, exit_code, parse_threshold,
                                 render)
    from ..ui import stdout_console
    threshold = parse_threshold(args.threshold)
    base, new = results.load(args.base), results.load(args.new)
    rows = compare_docs(base, new, threshold)
    render(rows, threshold, stdout_console())
    print(conventions_line(base, new))
    return exit_code(rows)


def cmd_table(args: argparse.Namespace) -> int:
    from ..bench import results
    from ..errors import ConfigError
    from ..bench.table import markdown_table, render_results
    from ..bench.plan import parse_shape
    from ..bench.table import pick_columns
    doc = results.load(args.results)
    columns = pick_columns(args.columns)
    if columns and not args.markdown:
        raise ConfigError("--columns: only with --markdown")
    shape = parse_shape(args.shape) if args.shape else None
    chosen = [m for m in doc.results if (args.task is None or m.task == args.task)
              and (shape is None or m.shape == shape)]
    if args.markdown:
        print(markdown_table(chosen, args.baseline, columns))
    else:
        render_results(chosen, baseline=args.baseline, wide=args.wide)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from ..bench import results
    from ..bench.cost_curves import parse_at, plot_curves
    from ..bench.plot import plot
    from ..errors import ConfigError
    if args.x is None:
        if args.y or args.at:
            raise ConfigError(f"--{'y' if args.y else 'at'}: only with --x (cost curves)")
        print(plot(results.load(args.results), args.out, args.title))
        return 0
    at = parse_at(args.at, args.x)
    path, slopes = plot_curves(results.load(args.results), args.out, args.x,
                               args.y or "time", at, args.title)
    print(path)
    print("\n".join(slopes))
    return 0
