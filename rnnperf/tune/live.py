"""The live table of a halving tune (stderr, rich): the current rung's points as they finish.

One row per point of the rung in progress: its profile, the rung, its time per step and speed
there (or why it has none), and whether it would survive if the rung ended now (the best ``size``
of the next rung so far); the title says which rung, what is being measured and the time
spent. Stderr like every progress display, so ``rnnperf tune ... > table.txt`` keeps a clean
table; ``--no-progress`` turns it off (:class:`NullView`).
"""

from __future__ import annotations

import contextlib
import time

#: rows shown at most; the rest are counted in the caption (a terminal is only so tall)
MAX_ROWS = 24


class NullView:
    """What the tune tells the live table, ignored (``--no-progress``)."""

    def start_rung(self, rung, jobs) -> None: ...

    def describe(self, text: str) -> None: ...

    def done(self, job, m) -> None: ...

    def cut(self, job) -> None: ...


class LiveView(NullView):
    def __init__(self, live, rungs: list):
        self.live, self.rungs = live, rungs
        self.rung = None
        self.rows: dict[str, list] = {}      # key -> [profile, seq/s, status, ms/step]
        self.now = ""
        self.start = time.monotonic()

    def start_rung(self, rung, jobs) -> None:
        self.rung, self.now = rung, ""
        self.rows = {j.key: [j.profile, None, "queued", None] for j in jobs}
        self.refresh()

    def describe(self, text: str) -> None:
        self.now = text
        self.refresh()

    def done(self, job, m) -> None:
        speed = m.seq_per_s if m is not None and m.status == "ok" else None
        parity = ((m.extra or {}).get("parity") or {}).get("status") if m is not None else None
        status = (m.status if m is not None else "?") if parity in (None, "ok") else \
            f"parity {parity}"
        self.rows[job.key] = [job.profile, speed, status, m.median_s if speed else None]
        self.refresh()

    def cut(self, job) -> None:
        if job.key in self.rows:
            self.rows[job.key][2] = "cut by --budget"
        self.refresh()

    def survivors(self) -> set[str]:
        """The rows that would go on if the rung ended now."""
        r = self.rung.index
        size = self.rungs[r + 1].size if r + 1 < len(self.rungs) else 1
        ok = sorted(((row[1], k) for k, row in self.rows.items()
                     if row[1] and row[2] == "ok"), reverse=True)
        return {k for _, k in ok[:size]}

    def render(self):
        from rich import box
        from rich.table import Table
        from rich.text import Text
        last = len(self.rungs) - 1
        title = (f"rung {self.rung.index} of {last} ({len(self.rows)} points, min-time "
                 f"{self.rung.settings.min_time:.3g} s, {self.rung.settings.rounds} rounds); "
                 f"{time.monotonic() - self.start:.0f} s" if self.rung else "tune")
        out = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left",
                    caption=f"measuring: {self.now}" if self.now else None,
                    caption_justify="left")
        for name, right in (("profile", False), ("rung", True), ("ms/step", True),
                            ("seq/s", True), ("status", False), ("survives", False)):
            out.add_column(name, justify="right" if right else "left", overflow="fold")
        keep = self.survivors() if self.rung else set()
        rows = sorted(self.rows.items(), key=lambda kv: -(kv[1][1] or 0.0))
        final = self.rung is not None and self.rung.index == last
        for key, (profile, speed, status, step) in rows[:MAX_ROWS]:
            mark = ("winner" if final else "yes") if key in keep else (
                "" if status == "queued" else "no")
            out.add_row(Text(profile), Text(str(self.rung.index) if self.rung else "-"),
                        Text(f"{step * 1e3:.3f}" if step else "-"),
                        Text(f"{speed:.1f}" if speed else "-"), Text(status), Text(mark),
                        style="green" if key in keep else None)
        if len(rows) > MAX_ROWS:
            out.add_row(Text(f"... {len(rows) - MAX_ROWS} more"), *[Text("")] * 5)
        return out

    def refresh(self) -> None:
        self.live.update(self.render(), refresh=True)


@contextlib.contextmanager
def live_view(enabled: bool, rungs: list):
    """A :class:`LiveView` on stderr while inside, or a :class:`NullView`."""
    if not enabled:
        yield NullView()
        return
    from rich.console import Console
    from rich.live import Live
    with Live(console=Console(stderr=True), auto_refresh=False,
              vertical_overflow="visible") as live:
        view = LiveView(live, rungs)
        try:
            yield view
        finally:
            view.describe("")              # the last table stays, without a stale "measuring"
