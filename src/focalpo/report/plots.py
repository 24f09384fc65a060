"""Report plots as PNG bytes: greedy pass@1 per method (values, 95 % CI error bars, N), training curves per metric.

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


def plot_pass_at_1(table: dict, tasks: int | None = None) -> tuple[bytes | None, str]:
    """(PNG, "") of greedy pass@1 per method, each bar labelled with its value, with 95 % CI error bars over
    seeds and the number of seeds (and of held-out `tasks`, when given) in the title; or (None, why not)."""
    methods = [m for m in table if "pass@1" in table[m]]
    if not methods:
        return None, "no pass@1 result"
    from matplotlib.figure import Figure

    cells = [table[m]["pass@1"] for m in methods]
    several = any(c.get("ci95") is not None for c in cells)
    seeds = max(len(c["values"]) for c in cells)
    fig = Figure(figsize=(1.5 + 0.9 * len(methods), 3.4), layout="constrained")
    ax = fig.add_subplot()
    bars = ax.bar(methods, [100 * c["mean"] for c in cells], color="#4c72b0",
                  yerr=[100 * (c.get("ci95") or 0.0) for c in cells] if several else None, capsize=4)
    ax.bar_label(bars, labels=bar_labels(cells), padding=2, fontsize=8)
    ax.set_ylabel("greedy pass@1 (%)")
    ax.set_ylim(0, 115)
    n = f"{tasks} tasks × {seeds} seed(s)" if tasks else f"{seeds} seed(s)"
    ax.set_title(f"held-out pass@1, {n}" + (" (mean ± 95 % CI over seeds)" if several else ""), fontsize=10)
    return _png(fig), ""


def bar_labels(cells: list[dict]) -> list[str]:
    """The value printed on each pass@1 bar: the mean in percent, ± the 95 % CI half-width over seeds."""
    return [f"{100 * c['mean']:.1f}" + (f" ± {100 * c['ci95']:.1f}" if c.get("ci95") is not None else "") for c in cells]


CURVE_METRICS = ("loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins")
CURVE_NOTES = {"rewards/margins": "β·Σ w (log π − log π_ref): weighted schemes sum over other tokens, "
                                  "so their scale differs"}


def curve_series(runs: dict[str, list[dict]], metrics=CURVE_METRICS) -> dict[str, list[tuple[str, list, list]]]:
    """metric -> [(label, steps, values)], one per run that logged it; runs whose series coincide (equal steps,
    values within 1e-9) share one line labelled "a = b", so a line hidden under another is named."""
    out: dict[str, list[tuple[str, list, list]]] = {}
    for metric in metrics:
        lines: list[tuple[list[str], list, list]] = []
        for name, rows in runs.items():
            rows = [r for r in rows if metric in r]
            if not rows:
                continue
            steps, values = [r.get("step", i + 1) for i, r in enumerate(rows)], [r[metric] for r in rows]
            for names, s, v in lines:
                if s == steps and all(abs(x - y) <= 1e-9 for x, y in zip(v, values)):
                    names.append(name)
                    break
            else:
                lines.append(([name], steps, values))
        if lines:
            out[metric] = [(" = ".join(names), s, v) for names, s, v in lines]
    return out


def plot_training_curves(metrics: dict[str, Path], seed: int = 0) -> tuple[bytes | None, str]:
    """(PNG, "") of the training curves of each run (name -> its metrics.jsonl), one panel per metric of
    `CURVE_METRICS` (`curve_series`: coinciding runs named together), or (None, why not). Missing files and
    rows without a loss (the final summary row) are skipped."""
    from focalpo.train.output import read_metrics

    runs = {}
    for name, path in metrics.items():
        rows = [r for r in read_metrics(path) if "loss" in r] if path.is_file() else []
        if rows:
            runs[name] = rows
    if not runs:
        where = ", ".join(sorted({str(p.parent.parent) for p in metrics.values()})) or "no run"
        return None, f"no training metrics in {where}/<scheme>/metrics.jsonl (training skipped?)"
    from matplotlib.figure import Figure

    series = curve_series(runs)
    fig = Figure(figsize=(3.3 * len(series), 3.4), layout="constrained")
    axes = fig.subplots(1, len(series), squeeze=False)[0]
    for ax, (metric, lines) in zip(axes, series.items()):
        for label, steps, values in lines:
            ax.plot(steps, values, label=label, marker="o" if len(steps) < 3 else None)
        ax.set_xlabel("step")
        ax.set_title(f"{metric} (seed {seed})", fontsize=9)
        if metric in CURVE_NOTES:
            ax.text(0.02, 0.02, CURVE_NOTES[metric], transform=ax.transAxes, fontsize=6, wrap=True, va="bottom")
        ax.legend(fontsize=7)
    return _png(fig), ""
