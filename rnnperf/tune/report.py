"""What a tune shows and writes: the ranked table, the bar plot, the winner's rc file."""

from __future__ import annotations

from .. import flags
from ..bench import results as res
from .rank import parity_error, verdict


def render(ranked, best, console=None, wide: bool = False) -> None:
    """The ranked points; without ``wide`` the columns that fit 80 columns."""
    from ..ui import Column, print_lines, stdout_console, table
    console = console or stdout_console()
    shapes = len({res.shape_label(m.shape) for m in ranked}) > 1
    rungs = any((m.extra or {}).get("halving") for m in ranked)
    cols = [Column("#", right=True), Column("profile")] + (
        [Column("shape")] if shapes else []) + ([Column("rung", right=True)] if rungs else []) + [
        Column("seq/s", right=True), Column("vs best", right=True),
        Column("parity err", right=True), Column("compile s", right=True, essential=False),
        Column("host", essential=False), Column("status")]
    rows, styles = [], []
    for i, m in enumerate(ranked, 1):
        v = verdict(m)
        ratio = f"{m.seq_per_s / best.seq_per_s:.2f}x" if best and m.seq_per_s else "-"
        rows.append([str(i) if v == "ok" else "-", m.profile] + (
            [res.shape_label(m.shape)] if shapes else []) + ([rung_label(m)] if rungs else []) + [
            f"{m.seq_per_s:.1f}" if m.seq_per_s else "-", ratio, parity_error(m),
            f"{m.compile_s:.2f}" if m.compile_s is not None else "-", m.host or "-", v])
        styles.append("bold green" if m is best else (None if v == "ok" else "red"))
    console.print(table(cols, rows, wide=wide, styles=styles,
                        title=f"rnnperf tune: {ranked[0].task if ranked else ''}, ranked by "
                              "sequences/s; parity = worst error relative to the oracle's scale"))
    print_lines(console, [f"{m.profile}: {m.status}: {m.error}" for m in ranked if m.error])


def rung_label(m) -> str:
    """``reached/last`` for a halving tune's point (``2/3``), ``-`` otherwise."""
    halving = (m.extra or {}).get("halving")
    return f"{halving['rung']}/{halving['of'] - 1}" if halving else "-"


def rc_text(best, runner_up, doc: res.ResultsDoc, n_points: int, n_rejected: int,
            cut: dict | None = None) -> str:
    """The winner's explicit keys as an rc file, headed by the figures it was chosen on (and,
    when ``--budget`` cut the tune short, where)."""
    from ..bench.machine import cpu_label
    values = {k: s.value for k, s in flags.parse_flags(best.profile, "profile")}
    machine = doc.machine or {}
    parity = best.extra.get("parity", {})
    lead = (f"{best.seq_per_s / runner_up.seq_per_s:.2f}x the runner-up ({runner_up.profile}, "
            f"{runner_up.seq_per_s:.1f} seq/s)" if runner_up else "no runner-up passed parity")
    header = "\n".join([
        f"Chosen by rnnperf tune on {res.now()}",
        f"machine: {best.host or machine.get('hostname', '?')}, {cpu_label(machine)}, "
        f"{machine.get('cores_logical', '?')} logical cores",
        f"shape {res.shape_label(best.shape)}, task {best.task}; {n_points} points measured, "
        f"{n_rejected} rejected",
        f"throughput {best.seq_per_s:.1f} seq/s (median {best.median_s * 1e3:.3f} ms per step, "
        f"threads {best.threads}), {lead}",
        f"parity vs the float64 NumPy oracle: worst relative error {parity_error(best)} "
        f"({parity.get('quantity', '?')}, tolerance {parity.get('tolerance', '?')})",
        f"compile + first call {best.compile_s:.2f} s" if best.compile_s is not None else
        "compile time not measured",
    ] + strategy_lines(best, doc, cut))
    return flags.write_rc(values, header)


def strategy_lines(best, doc: res.ResultsDoc, cut: dict | None) -> list[str]:
    """How the winner was found: successive halving's rungs, and whether the budget cut it."""
    halving = (doc.settings or {}).get("halving")
    if not halving:
        return []
    sizes = "/".join(str(r["size"]) for r in halving.get("rungs", []))
    lines = [f"successive halving (eta {halving.get('eta')}, rungs of {sizes} points); the "
             f"winner reached rung {rung_label(best)}"]
    if cut:
        lines.append(f"CUT SHORT: --budget {cut.get('budget')} ran out during rung "
                     f"{cut['rung']} of {cut['of'] - 1}; the best point measured so far won")
    return lines


def plot_ranked(ranked, best, out, title: str) -> str:
    """Horizontal bars of sequences/s per point; rejected points hatched red, never hidden."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = list(reversed(ranked))                        # fastest at the top
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.35 * len(rows)), constrained_layout=True)
    for y, m in enumerate(rows):
        v = verdict(m)
        dropped = v.startswith("dropped")          # halving: lost before parity was checked
        color = "tab:green" if m is best else ("tab:blue" if v == "ok" else
                                               "tab:gray" if dropped else "tab:red")
        ax.barh(y, m.seq_per_s or 0, color=color, hatch=None if v == "ok" or dropped else "//",
                alpha=1.0 if v == "ok" else 0.5)
        note = (f"{m.seq_per_s / best.seq_per_s:.2f}x" if best and m.seq_per_s else "") + \
            ("" if v == "ok" else f"  {v}")
        ax.text(m.seq_per_s or 0, y, f" {note}", va="center", fontsize=7)
    ax.set_yticks(range(len(rows)), [f"{m.profile} {res.shape_label(m.shape)}"
                                     if len({res.shape_label(r.shape) for r in rows}) > 1
                                     else m.profile for m in rows], fontsize=7)
    speeds = [m.seq_per_s for m in rows if m.seq_per_s]
    if speeds and max(speeds) / min(speeds) > 20:
        ax.set_xscale("log")
    ax.set_xlabel("sequences/s (green: chosen, red hatched: rejected or failed, grey: dropped "
                  "by halving at a short rung)")
    ax.set_title(title, fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return str(out)
