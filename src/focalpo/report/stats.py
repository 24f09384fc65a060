"""Numbers of a report over seeds: Student-t 95 % confidence intervals and the method x metric table.

    >>> round(mean_ci([0.2, 0.4, 0.6])["ci95"], 4)   # t_{0.975,2} * 0.2 / sqrt(3)
    0.4968
    table = aggregate(demo["seeds"])          # method -> metric -> mean_ci cell

Pure Python (statistics, math).
"""

from __future__ import annotations

import math
import statistics

# two-sided 95 %: t_{0.975, df} for df = 1..30; beyond, the normal 1.96 (2.040 at df 31: at most 4 % narrow)
T_975 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281, 2.2010, 2.1788, 2.1604,
         2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555,
         2.0518, 2.0484, 2.0452, 2.0423)


def t_critical(df: int) -> float:
    """t_{0.975, df}, the two-sided 95 % critical value of Student's t with `df` degrees of freedom."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    return T_975[df - 1] if df <= len(T_975) else 1.96


def mean_ci(values: list[float]) -> dict:
    """mean, sample std, ci95 (half-width t_{0.975,n-1}·s/√n; None for one value) and the values."""
    n = len(values)
    std = statistics.stdev(values) if n > 1 else 0.0
    return {"mean": statistics.fmean(values), "std": std,
            "ci95": t_critical(n - 1) * std / math.sqrt(n) if n > 1 else None, "values": list(values)}


def aggregate(seeds: list[dict]) -> dict:
    """method -> metric -> mean_ci over the seeds that have it (each seed: {"results": method -> metric -> v})."""
    table: dict = {}
    for r in seeds:
        for method, scores in r["results"].items():
            for metric, v in scores.items():
                table.setdefault(method, {}).setdefault(metric, []).append(v)
    return {m: {k: mean_ci(v) for k, v in metrics.items()} for m, metrics in table.items()}
