"""Terminal output shared by the commands: one console for tables, one progress bar.

Tables go to stdout, progress to stderr, so ``rnnperf ... > table.txt`` keeps a clean table.
"""

from __future__ import annotations

import sys


def stdout_console(width: int = 200):
    """A rich console on stdout, wide enough for our tables when stdout is a file or a pipe."""
    from rich.console import Console
    return Console(width=None if sys.stdout.isatty() else width)


def progress_bar(total: int, label: str, enabled: bool = True):
    """A started, transient progress bar on stderr with one task, or None when disabled."""
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import Progress
    bar = Progress(console=Console(file=sys.stderr), transient=True)
    bar.add_task(label, total=total)
    bar.start()
    return bar


def sweep_progress(enabled: bool = True):
    """A progress bar on stderr for a sweep (``bench``, ``tune``): description, bar, done/total,
    elapsed. Used as a context manager; tasks are added by the caller."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn)
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=Console(stderr=True), disable=not enabled)
