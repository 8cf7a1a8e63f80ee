"""Terminal output shared by the commands: tables that fit 80 columns, and progress bars.

Tables go to stdout, progress to stderr, so ``rnnperf ... > table.txt`` keeps a clean table.
Every cell is literal text (:class:`rich.text.Text`): a flag value such as ``cxx=[red]x`` or a
hint such as ``pip install 'rnnperf[torch]'`` must reach the terminal as typed, never be read as
rich markup. A table shows its essential columns unless ``--wide`` asks for all of them.
"""

from __future__ import annotations

import dataclasses
import sys


def stdout_console(width: int = 200):
    """A rich console on stdout, wide enough for our tables when stdout is a file or a pipe."""
    from rich.console import Console
    return Console(width=None if sys.stdout.isatty() else width)


@dataclasses.dataclass(frozen=True)
class Column:
    name: str
    right: bool = False        # numbers are right-aligned
    essential: bool = True     # shown without --wide


def table(columns: list[Column], rows, *, title: str | None = None, wide: bool = False,
          styles=None):
    """A rich table of literal cells; without ``wide`` only the essential columns, compact."""
    from rich import box
    from rich.table import Table
    from rich.text import Text
    keep = [i for i, c in enumerate(columns) if wide or c.essential]
    out = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False,
                collapse_padding=True, title_justify="left")
    for i in keep:
        out.add_column(columns[i].name, justify="right" if columns[i].right else "left",
                       overflow="fold")
    for n, row in enumerate(rows):
        style = styles[n] if styles else None
        out.add_row(*(Text("-" if row[i] is None else str(row[i])) for i in keep), style=style)
    return out


def print_lines(console, lines) -> None:
    """Lines of text, printed as they are (no markup, no highlighting)."""
    for line in lines:
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def _progress(enabled: bool, transient: bool = True):
    """Description, spinner, bar, done/total and time elapsed; no ETA: a sweep's items are
    not alike (a cold compile, then cached ones), so a rate-based estimate would be a guess."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn,
                               TextColumn, TimeElapsedColumn)
    return Progress(TextColumn("{task.description}"), SpinnerColumn(), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), console=Console(stderr=True),
                    disable=not enabled, transient=transient)


def progress_bar(total: int, label: str, enabled: bool = True):
    """A started, transient progress bar on stderr with one task, or None when disabled."""
    if not enabled:
        return None
    bar = _progress(True)
    bar.add_task(label, total=total)
    bar.start()
    return bar


def sweep_progress(enabled: bool = True):
    """A progress bar on stderr for a sweep (``bench``, ``tune``), used as a context manager;
    tasks are added by the caller."""
    return _progress(enabled, transient=False)
