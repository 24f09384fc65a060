"""Report plots as PNG bytes: greedy pass@1 per method with 95 % CI error bars, training curves per scheme.

    png, why_not = plot_pass_at_1(aggregate(seeds))            # (None, reason) when there is nothing to draw
    png, why_not = plot_training_curves({"dpo": Path("models/dpo/metrics.jsonl"), ...}, seed=0)

matplotlib's Figure with the Agg canvas it picks for PNG (no pyplot, no global backend), imported inside
the functions, so importing this module costs nothing.
"""

from __future__ import annotations

import io
from pathlib import Path


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def plot_pass_at_1(table: dict) -> tuple[bytes | None, str]:
    """(PNG, "") of greedy pass@1 per method with 95 % CI error bars, or (None, why not)."""
    methods = [m for m in table if "pass@1" in table[m]]
    if not methods:
        return None, "no pass@1 result"
    from matplotlib.figure import Figure

    cells = [table[m]["pass@1"] for m in methods]
    several = any(c.get("ci95") is not None for c in cells)
    fig = Figure(figsize=(1.5 + 0.9 * len(methods), 3.2), layout="constrained")
    ax = fig.add_subplot()
    ax.bar(methods, [100 * c["mean"] for c in cells], color="#4c72b0",
           yerr=[100 * (c.get("ci95") or 0.0) for c in cells] if several else None, capsize=4)
    ax.set_ylabel("greedy pass@1 (%)")
    ax.set_ylim(bottom=0)
    ax.set_title("held-out pass@1" + (" (mean ± 95 % CI over seeds)" if several else ""), fontsize=10)
    return _png(fig), ""


def plot_training_curves(metrics: dict[str, Path], seed: int = 0) -> tuple[bytes | None, str]:
    """(PNG, "") of loss and rewards/margins per step of each run (name -> its metrics.jsonl), or (None, why
    not). Missing files and rows without both keys (the final summary row) are skipped."""
    from focalpo.train.output import read_metrics

    runs = {}
    for name, path in metrics.items():
        rows = [r for r in read_metrics(path) if "loss" in r and "rewards/margins" in r] if path.is_file() else []
        if rows:
            runs[name] = rows
    if not runs:
        where = ", ".join(sorted({str(p.parent.parent) for p in metrics.values()})) or "no run"
        return None, f"no training metrics in {where}/<scheme>/metrics.jsonl (training skipped?)"
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.4), layout="constrained")
    axes = fig.subplots(1, 2)
    for scheme, rows in runs.items():
        steps = [r.get("step", i + 1) for i, r in enumerate(rows)]
        for ax, key in zip(axes, ("loss", "rewards/margins")):
            ax.plot(steps, [r[key] for r in rows], label=scheme)
    for ax, key in zip(axes, ("loss", "rewards/margins")):
        ax.set_xlabel("step")
        ax.set_title(f"{key} (seed {seed})", fontsize=10)
    axes[0].legend(fontsize=8)
    return _png(fig), ""
