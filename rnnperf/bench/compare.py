"""Compare two results documents: a side-by-side table and a regression gate.

Measurements are matched on their ``key`` (profile x shape x task), never on the machine or a
storage path (pytest-benchmark#276), so a CI job compares the same configuration across builds.

A match is a **regression** when NEW is slower than BASE by more than the threshold *and* by more
than the measured spread::

    new.median - base.median > threshold * base.median
    new.median - base.median > base.iqr + new.iqr
    new.min    - base.min    > threshold * base.min

The second condition keeps a re-run of the same build from failing on noise: two runs differ by
about their spread, and the IQR is the spread a median is robust to. The third asks the fastest
round to have slowed down too: noise on a shared machine only ever adds time, so a build that got
slower is slower at its best, while a burst of load that hit most rounds of one run usually leaves
one round at the quiet speed. None of this can hide a machine that was busy for a whole run: BASE
and NEW belong on the same runner, one after the other (docs/ci.md). A measurement that was ``ok``
in BASE and is not ``ok`` in NEW (a NaN, a crash, a timeout) fails the gate as well; one present
on only one side is reported and does not. Exit 1 on any failure, 0 otherwise.
"""

from __future__ import annotations

import dataclasses

from ..errors import ConfigError
from .results import Measurement, ResultsDoc, shape_label

DEFAULT_THRESHOLD = 0.05


def parse_threshold(text: str) -> float:
    """``5%`` or ``0.05`` -> 0.05."""
    raw = str(text).strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise ConfigError(f"--threshold {text!r}: expected a percentage like 5% or a fraction "
                          "like 0.05") from None
    if not raw.endswith("%") and value >= 1:
        raise ConfigError(f"--threshold {text!r}: a bare number is a fraction; write {raw}% "
                          "for a percentage")
    if value < 0:
        raise ConfigError(f"--threshold {text!r}: must not be negative")
    return value


@dataclasses.dataclass
class Row:
    key: str
    base: Measurement | None
    new: Measurement | None
    verdict: str              # same | faster | slower (noise) | REGRESSION | FAILED | base only ...
    ratio: float | None = None  # new median / base median

    @property
    def fails(self) -> bool:
        return self.verdict in ("REGRESSION", "FAILED")


def regressed(base: Measurement, new: Measurement, threshold: float) -> bool:
    delta = new.median_s - base.median_s
    slower_at_best = (base.min_s is None or new.min_s is None
                      or new.min_s - base.min_s > threshold * base.min_s)
    return (delta > threshold * base.median_s and delta > (base.iqr_s or 0) + (new.iqr_s or 0)
            and slower_at_best)


def judge(base: Measurement | None, new: Measurement | None, threshold: float) -> Row:
    key = (base or new).key
    if new is None:
        return Row(key, base, None, "base only")
    if base is None:
        return Row(key, None, new, "new only")
    if not base.ok:
        return Row(key, base, new, f"base {base.status}")
    if not new.ok:
        return Row(key, base, new, "FAILED")
    ratio = new.median_s / base.median_s if base.median_s else None
    if regressed(base, new, threshold):
        verdict = "REGRESSION"
    elif regressed(new, base, threshold):
        verdict = "faster"
    elif ratio is not None and ratio > 1 + threshold:
        verdict = "slower (noise)"
    else:
        verdict = "same"
    return Row(key, base, new, verdict, ratio)


def compare_docs(base: ResultsDoc, new: ResultsDoc, threshold: float = DEFAULT_THRESHOLD):
    """One row per key in either document, BASE's order first."""
    b, n = base.by_key(), new.by_key()
    keys = list(b) + [k for k in n if k not in b]
    return [judge(b.get(k), n.get(k), threshold) for k in keys]


def conventions_line(base: ResultsDoc, new: ResultsDoc) -> str:
    """How each document counted its FLOPs and peaks: medians always compare, GFLOP/s and peak
    shares only under the same conventions."""
    if base.conventions == new.conventions:
        return f"conventions (both documents): {base.said_conventions()}"
    return (f"conventions differ: base {base.said_conventions()}; new "
            f"{new.said_conventions()}: the times compare, "
            "GFLOP/s and peak shares do not")


def exit_code(rows) -> int:
    return 1 if any(r.fails for r in rows) else 0


def render(rows, threshold: float, console=None) -> None:
    from ..ui import Column, stdout_console, table
    console = console or stdout_console()
    cols = [Column("engine"), Column("profile"), Column("shape"), Column("task"),
            Column("base ms", right=True), Column("±IQR", right=True),
            Column("new ms", right=True),
            Column("±IQR", right=True), Column("new/base", right=True), Column("verdict")]
    cells, styles = [], []
    for row in rows:
        m = row.new or row.base
        cells.append([m.engine, m.profile, shape_label(m.shape), m.task, *_ms(row.base),
                      *_ms(row.new), f"{row.ratio:.3f}" if row.ratio is not None else "-",
                      row.verdict])
        styles.append({"REGRESSION": "bold red", "FAILED": "bold red", "faster": "green"}.get(
            row.verdict))
    console.print(table(cols, cells, wide=True, styles=styles,
                        title=f"rnnperf compare (threshold {threshold:.1%} and beyond the IQRs)"))


def _ms(m: Measurement | None) -> tuple[str, str]:
    if m is None:
        return "-", "-"
    if not m.ok or m.median_s is None:
        return m.status, "-"
    return f"{m.median_s * 1e3:.3f}", f"{(m.iqr_s or 0) * 1e3:.3f}"
