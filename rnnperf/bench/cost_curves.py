"""``rnnperf plot --x T``: cost curves, how each engine's cost grows with its work.

A grid run (``bench --grid``) measures each engine at several values of T, B or H. Here each
panel holds the other shape keys and the task fixed, draws time per step (or the step's peak
memory, ``--y memory``) against the chosen key on log-log axes, one line per profile, and puts the
fitted slope of log(y) against log(x) in the legend: 1.00 is linear growth, below 1 a fixed cost
still dominates, and where two lines cross one engine overtakes another. ``--at B=32,H=256``
keeps only the panels at those values. Agg backend: no display needed.
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

from ..errors import ConfigError
from .measurement import SHAPE_KEYS

#: what a curve can draw: its axis label and how to read it from a measurement
Y_KINDS = {"time": ("median time per step (s)", lambda m: m.median_s),
           "memory": ("step peak memory (MiB)", lambda m: m.step_peak_mb)}
X_KEYS = ("T", "B", "I", "H")
#: beyond this many panels the figure is unreadable: the user picks with --at
MAX_PANELS = 24


@dataclasses.dataclass
class Line:
    """One profile's points in one panel, sorted by x, and the fitted log-log slope."""

    profile: str
    label: str
    points: list

    @property
    def slope(self) -> float | None:
        return fit_slope(self.points)


@dataclasses.dataclass
class Panel:
    task: str
    fixed: dict                  # the other shape keys' values
    lines: list

    def title(self, shown) -> str:
        return " ".join([self.task] + [f"{k}={self.fixed[k]}" for k in shown])


def fit_slope(points) -> float | None:
    """Least-squares slope of log(y) on log(x); None under two distinct positive x."""
    pts = [(math.log(x), math.log(y)) for x, y in points if x > 0 and y and y > 0]
    if len({p[0] for p in pts}) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx


def parse_at(text: str | None, x: str) -> dict:
    """``B=32,H=256`` -> ``{"B": 32, "H": 256}``; one ConfigError line naming the bad token."""
    at: dict = {}
    for token in (text or "").replace(" ", ",").split(","):
        if not token:
            continue
        raw, sep, value = token.partition("=")
        key = raw.strip().upper()
        if not sep or key not in SHAPE_KEYS or key == x:
            raise ConfigError(f"--at {text}: bad token {token!r} (expected KEY=N with KEY one of "
                              f"{', '.join(k for k in SHAPE_KEYS if k != x)})")
        if not re.fullmatch(r"[0-9]+", value.strip()) or int(value) < 1:
            raise ConfigError(f"--at {text}: {key}={value!r} must be a positive integer")
        at[key] = int(value)
    return at


def panels(measurements, x: str, y: str = "time", at: dict | None = None):
    """The panels to draw, and a line per measurement left out (failed, no figure, one point)."""
    from .table import short_profile
    if x not in X_KEYS:
        raise ConfigError(f"--x {x}: must be one of {', '.join(X_KEYS)}")
    if y not in Y_KINDS:
        raise ConfigError(f"--y {y}: must be one of {', '.join(Y_KINDS)}")
    read, at = Y_KINDS[y][1], at or {}
    chosen = [m for m in measurements if all(m.shape.get(k) == v for k, v in at.items())]
    if not chosen:
        raise ConfigError(f"--at {','.join(f'{k}={v}' for k, v in at.items())}: no measurement "
                          "at those values")
    skipped = [f"{m.key}: {m.status}" for m in chosen if not m.ok]
    others = [k for k in SHAPE_KEYS if k != x]
    groups: dict = {}
    for m in (m for m in chosen if m.ok):
        value = read(m)
        if value is None or value <= 0:
            skipped.append(f"{m.key}: no {y} figure")
            continue
        fixed = (m.task, tuple(m.shape[k] for k in others))
        line = groups.setdefault(fixed, {}).setdefault(
            m.profile, Line(m.profile, short_profile(m), []))
        line.points.append((m.shape[x], value))
    out = []
    for (task, values), lines in groups.items():
        for line in lines.values():
            line.points.sort()
        if any(len({p[0] for p in line.points}) >= 2 for line in lines.values()):
            out.append(Panel(task, dict(zip(others, values)), list(lines.values())))
        else:
            skipped += [f"{task} {line.profile} at {dict(zip(others, values))}: one {x} only"
                        for line in lines.values()]
    if not out:
        raise ConfigError(f"nothing to plot against {x}: no profile was measured at two {x} "
                          "values with the other keys fixed (bench --grid)")
    if len(out) > MAX_PANELS:
        raise ConfigError(f"{len(out)} panels against {x}: too many to read; fix the other keys "
                          "with --at, e.g. --at " + ",".join(f"{k}={out[0].fixed[k]}"
                                                             for k in others[:2]))
    return out, skipped


def slope_rows(drawn: list[Panel]) -> list[str]:
    """``forward B=32 H=256  pytensor-c  slope 0.98 (3 points)``: what the legends say."""
    shown = varying(drawn)
    return [f"{p.title(shown)}  {line.label}  slope "
            + (f"{line.slope:.2f}" if line.slope is not None else "-")
            + f" ({len(line.points)} points)" for p in drawn for line in p.lines]


def varying(drawn: list[Panel]) -> list[str]:
    """The fixed keys whose value differs between panels (the rest go in the figure's title)."""
    keys = list(drawn[0].fixed)
    return [k for k in keys if len({p.fixed[k] for p in drawn}) > 1]


def plot_curves(doc, out, x: str, y: str = "time", at: dict | None = None,
                title: str | None = None) -> tuple[str, list[str]]:
    """Draw the cost curves of ``doc`` into the PNG ``out``; its path and the slope lines."""
    out = Path(out)
    if out.suffix == "":
        out = out.with_suffix(".png")
    if out.is_dir():
        raise ConfigError(f"{out}: is a directory; -o names the PNG to write")
    drawn, skipped = panels(doc.results, x, y, at)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = varying(drawn)
    cols = min(3, len(drawn))
    rows = math.ceil(len(drawn) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.2 * rows), squeeze=False,
                             constrained_layout=True)
    profiles = list(dict.fromkeys(line.profile for p in drawn for line in p.lines))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, panel in zip(axes.flat, drawn):
        ticks = sorted({pt[0] for line in panel.lines for pt in line.points})
        for line in panel.lines:
            slope = "-" if line.slope is None else f"{line.slope:.2f}"
            ax.plot([p[0] for p in line.points], [p[1] for p in line.points], marker="o",
                    color=colors[profiles.index(line.profile) % len(colors)],
                    label=f"{line.label}  slope {slope}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel(x)
        ax.set_ylabel(Y_KINDS[y][0])
        ax.set_title(panel.title(shown), fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="best")
    for ax in list(axes.flat)[len(drawn):]:
        ax.set_visible(False)
    same = " ".join(f"{k}={drawn[0].fixed[k]}" for k in drawn[0].fixed if k not in shown)
    fig.suptitle(title or f"rnnperf cost curves: {y} against {x} ({same})\n"
                 f"{doc.machine.get('cpu', '?')}", fontsize=10)   # two lines: it fits one panel
    if skipped:
        fig.supxlabel("not drawn: " + "; ".join(skipped)[:300], fontsize=7)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return str(out), slope_rows(drawn)
