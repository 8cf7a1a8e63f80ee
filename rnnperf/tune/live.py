"""The live table of a halving tune (stderr, rich): the current rung's points as they finish.

One row per point of the rung in progress: its profile, the rung, its time per step and speed
there (or why it has none), and whether it would survive if the rung ended now (the best ``size``
of the next rung so far); the title says which rung, how many of its points are left, the time
spent and an estimate of the time to go (:func:`eta_s`, from what this rung's points took). Stderr like every progress display, so ``rnnperf tune ... > table.txt`` keeps a clean
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


def eta_s(rungs: list, index: int, left: int, per_point_s: float) -> float:
    """Seconds still to go: ``left`` points of rung ``index`` at ``per_point_s`` each (what the
    rung's points took so far), then every later rung's points at the same cost plus the longer
    timing they ask for (``rounds x min_time`` more per pass, ``processes`` passes)."""
    now = rungs[index].settings
    fixed = max(0.0, per_point_s - now.rounds * now.min_time)   # load, warm-up, calibration
    total = left * per_point_s
    for rung in rungs[index + 1:]:
        s = rung.settings
        total += rung.size * s.processes * (fixed + s.rounds * s.min_time)
    return total


class LiveView(NullView):
    def __init__(self, live, rungs: list):
        self.live, self.rungs = live, rungs
        self.rung = None
        self.rows: dict[str, list] = {}      # key -> [profile, seq/s, status, ms/step]
        self.now = ""
        self.start = time.monotonic()
        self.rung_start, self.finished = self.start, 0

    def start_rung(self, rung, jobs) -> None:
        self.rung, self.now = rung, ""
        self.rows = {j.key: [j.profile, None, "queued", None] for j in jobs}
        self.rung_start, self.finished = time.monotonic(), 0
        self.refresh()

    def eta(self) -> str:
        """``, about N s to go`` once a point of this rung has finished, else nothing."""
        if not self.finished or self.rung is None:
            return ""
        left = sum(1 for row in self.rows.values() if row[2] == "queued")
        per_point = (time.monotonic() - self.rung_start) / self.finished
        return f", about {eta_s(self.rungs, self.rung.index, left, per_point):.0f} s to go"

    def describe(self, text: str) -> None:
        self.now = text
        self.refresh()

    def done(self, job, m) -> None:
        speed = m.seq_per_s if m is not None and m.status == "ok" else None
        parity = ((m.extra or {}).get("parity") or {}).get("status") if m is not None else None
        status = (m.status if m is not None else "?") if parity in (None, "ok") else \
            f"parity {parity}"
        if self.rows.get(job.key, [None, None, "queued"])[2] == "queued":
            self.finished += 1
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
        left = sum(1 for row in self.rows.values() if row[2] == "queued")
        title = (f"rung {self.rung.index} of {last} ({len(self.rows)} points, {left} left, "
                 f"min-time {self.rung.settings.min_time:.3g} s, {self.rung.settings.rounds} "
                 f"rounds); {time.monotonic() - self.start:.0f} s{self.eta()}"
                 if self.rung else "tune")
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
