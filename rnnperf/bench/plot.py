"""``rnnperf plot``: one PNG summarising a results document.

Three panels, one bar per profile within each shape x task group: throughput (sequences per second,
log scale, error bars from the IQR), fraction of the machine's peak matmul rate in the engine's own
library, and compile time (graph build + compile + first call; the import is ``import_s``). Only
``ok`` measurements are drawn; the others are listed under the figure so that a missing bar is
never silent. Agg backend: no display needed. ``plot --x T`` draws cost curves instead
(:mod:`.cost_curves`).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from .results import ResultsDoc, shape_label


def plot(doc: ResultsDoc, out, title: str | None = None) -> str:
    """Draw ``doc`` into the PNG ``out`` (``.png`` added when it has no suffix); its path."""
    out = Path(out)
    if out.suffix == "":
        out = out.with_suffix(".png")          # what matplotlib would write, said aloud
    if out.is_dir():
        raise ConfigError(f"{out}: is a directory; -o names the PNG to write")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [m for m in doc.results if m.ok and m.median_s]
    if not ok:
        raise ConfigError(f"{out}: nothing to plot (no measurement with status ok)")
    groups = list(dict.fromkeys(f"{shape_label(m.shape)}\n{m.task}" for m in ok))
    profiles = list(dict.fromkeys(m.profile for m in ok))
    cell = {(f"{shape_label(m.shape)}\n{m.task}", m.profile): m for m in ok}
    width = 0.8 / len(profiles)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]

    fig, axes = plt.subplots(3, 1, figsize=(max(7.0, 1.6 * len(groups) * max(1, len(profiles))
                                                / 2 + 3), 11), constrained_layout=True)
    panels = (
        ("throughput (sequences/s, log)", lambda m: m.seq_per_s,
         lambda m: (m.shape["B"] / m.median_s ** 2) * (m.iqr_s or 0) / 2),
        ("fraction of peak matmul GFLOP/s", lambda m: m.peak_fraction, None),
        ("compile + first call (s)", lambda m: m.compile_s, None),
    )
    for ax, (label, value, err) in zip(axes, panels):
        for p, profile in enumerate(profiles):
            xs, ys, es = [], [], []
            for g, group in enumerate(groups):
                m = cell.get((group, profile))
                if m is None or value(m) is None:
                    continue
                xs.append(g - 0.4 + width * (p + 0.5))
                ys.append(value(m))
                es.append(err(m) if err else 0)
            bars = ax.bar(xs, ys, width * 0.9, yerr=es if err else None, capsize=2,
                          label=profile, color=colors[p % len(colors)])
            if label.startswith("fraction"):
                ax.bar_label(bars, labels=[f"{y:.0%}" for y in ys], fontsize=7)
            elif label.startswith("compile"):
                ax.bar_label(bars, labels=[f"{y:.2g}" for y in ys], fontsize=7)
        ax.set_ylabel(label)
        ax.set_xticks(range(len(groups)), groups, fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_yscale("log")
    axes[0].legend(fontsize=8, loc="best")
    from .machine import cpu_label
    cpu = cpu_label(doc.machine or {})
    fig.suptitle(title or f"rnnperf: {cpu}, {doc.machine.get('cores_logical', '?')} logical cores",
                 fontsize=10)
    skipped = [f"{m.engine} {shape_label(m.shape)} {m.task}: {m.status}" for m in doc.results
               if not (m.ok and m.median_s)]
    if skipped:
        fig.supxlabel("not drawn: " + "; ".join(skipped)[:300], fontsize=7)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return str(out)
