"""Numbers of a report over seeds: Student-t 95 % confidence intervals, the method x metric table, and
paired comparisons of methods evaluated on the same tasks.

    >>> round(mean_ci([0.2, 0.4, 0.6])["ci95"], 4)   # t_{0.975,2} * 0.2 / sqrt(3)
    0.4968
    table = aggregate(demo["seeds"])          # method -> metric -> mean_ci cell
    paired = paired_table(demo["seeds"], baselines=("sft", "dpo"))   # method -> baseline -> paired_difference

Pure Python (statistics, math).
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Mapping, Sequence

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


def sign_test_p(positive: int, negative: int) -> float:
    """Exact two-sided sign test: P(a split at least this uneven) over the `positive + negative` discordant
    units under H0 (each direction ½). For pass/fail outcomes this is McNemar's exact test."""
    m = positive + negative
    if m == 0:
        return 1.0
    tail = sum(math.comb(m, k) for k in range(min(positive, negative) + 1))
    return min(1.0, 2 * tail / 2 ** m)


def paired_difference(a: list[float], b: list[float], *, resamples: int = 10_000, seed: int = 0) -> dict:
    """Method a vs method b on the same units (task x seed): mean of a − b; a 95 % paired-bootstrap percentile
    interval (units resampled with replacement, `resamples` times, seeded); the exact sign test's p-value
    (`sign_test_p`) over the units where they differ; and `mdd80`, the smallest mean difference these units
    would detect with 80 % power at α = 0.05 ((1.96 + 0.84) · sd / √n, normal approximation; None below 2 units
    or when the two never differ, where the approximation says nothing)."""
    d = [x - y for x, y in zip(a, b, strict=True)]
    n = len(d)
    if n == 0:
        raise ValueError("paired_difference: no units in common")
    rng = random.Random(seed)
    boots = sorted(statistics.fmean(rng.choices(d, k=n)) for _ in range(resamples))
    lo, hi = boots[int(0.025 * resamples)], boots[math.ceil(0.975 * resamples) - 1]
    pos, neg = sum(x > 0 for x in d), sum(x < 0 for x in d)
    return {"mean_diff": statistics.fmean(d), "ci95": [lo, hi], "p_value": sign_test_p(pos, neg), "units": n,
            "better": pos, "worse": neg, "mdd80": mdd if (mdd := _mdd80(d)) else None}


def _mdd80(d: list[float]) -> float:
    """(1.96 + 0.84) · sd / √n; 0 when there is no spread (then no estimate: the caller reports None)."""
    return 2.8 * statistics.stdev(d) / math.sqrt(len(d)) if len(d) > 1 else 0.0


def paired_table(seeds: list[dict], baselines: Sequence[str] | Mapping[str, Mapping[str, str]] = ("sft", "dpo"),
                 **options) -> dict:
    """method -> label -> `paired_difference` of the method's and the baseline's per-task outcomes (each seed:
    {"per_task": method -> task_id -> value}), over the (seed, task) units both have. `baselines`: names every
    method is compared with (label = name), or method -> {label: baseline name} (each method its own baselines:
    the DPO run on the same pairs, labelled "dpo"). Methods or baselines without outcomes are left out."""
    outcomes: dict[str, dict[tuple, float]] = {}
    for r in seeds:
        for method, tasks in (r.get("per_task") or {}).items():
            for task, v in tasks.items():
                outcomes.setdefault(method, {})[(r["seed"], task)] = v
    table: dict = {}
    for method in outcomes:
        bases = baselines.get(method, {}) if isinstance(baselines, Mapping) else {b: b for b in baselines}
        for label, base in bases.items():
            if base == method or base not in outcomes:
                continue
            units = sorted(outcomes[method].keys() & outcomes[base].keys())
            if units:
                table.setdefault(method, {})[label] = paired_difference(
                    [outcomes[method][u] for u in units], [outcomes[base][u] for u in units], **options)
    return table
