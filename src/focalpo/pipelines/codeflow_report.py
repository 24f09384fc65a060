"""The CodeFlow quality report, computed from a run's records (`focalpo codeflow`, `focalpo merge`).

    summary = summarize(records)          # plain dict, also written as summary.json
    print(format_report(summary))         # also written as report.txt

- `pass_rate_by_iteration[i]`: share of the problems that reached the sandbox (their first answer
  parsed and had tests) whose solution passed within i+1 answers (Target-DPO, Fig. 6);
- `iterations_to_pass`: histogram of the answers needed by the problems that passed;
- `filters`: how many candidate pairs each rule (and the judge) removes; a pair can be removed by
  several rules, so `pairs_kept` is the number that no rule removes;
- `rejected_error_types`: error types (`focalpo.eval.errors.error_type`) of the rejected versions of
  the kept pairs;
- `coverage`: line coverage of the final passing solutions by their own test files (mean, and a
  histogram in 10-point buckets).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Sequence

from focalpo.card import CARD_FILE, write_card
from focalpo.io import write_json
from focalpo.pipelines.filters import NOT_RUN_REASONS, not_run
from focalpo.pipelines.runner import PAIRS_PARQUET, write_pair_files

PAIRS_FILE, SUMMARY_FILE, REPORT_FILE = "pairs.jsonl", "summary.json", "report.txt"
DERIVED = (PAIRS_FILE, PAIRS_PARQUET, SUMMARY_FILE, REPORT_FILE, CARD_FILE)


def write_outputs(out: str | Path, records: Sequence[dict], config: dict) -> dict:
    """Rewrite pairs.jsonl (kept pairs; + pairs.parquet with `parquet`), summary.json, report.txt and the
    dataset card README.md in `out`; returns the summary."""
    out = Path(out)
    data_file = write_pair_files(out, [r["pair"] for r in records if r["kept"]], config)
    summary = summarize(records, max_iterations=config.get("max_iterations", 5))
    summary["config"] = {k: config.get(k) for k in ("instructions", "benchmark", "backend", "model", "max_iterations",
                                                     "temperature", "rejected", "judge", "tokenizer", "seed")}
    write_json(out / SUMMARY_FILE, summary)
    (out / REPORT_FILE).write_text(format_report(summary))  # small; a torn report is rewritten next run
    write_card(out, pipeline="codeflow", config=config, summary=summary, data_file=data_file)
    return summary


def _passing_iteration(record: dict) -> int | None:
    """0-based index of the answer that passed (format errors count as answers), else None."""
    if record["status"] not in ("passed_first", "fixed"):
        return None
    return record["iterations"] - 1


def summarize(records: Sequence[dict], max_iterations: int = 5) -> dict:
    status = Counter(r["status"] for r in records)
    reached = [r for r in records if r["status"] in ("passed_first", "fixed", "never_fixed")]
    passed_at = Counter(i for i in map(_passing_iteration, reached) if i is not None)
    cumulative, rates = 0, []
    for i in range(max_iterations):
        cumulative += passed_at.get(i, 0)
        rates.append(cumulative / len(reached) if reached else 0.0)
    candidates = [r for r in records if r["pair"] is not None]
    filters = Counter(name for r in candidates for name, removed in (r["filters"] or {}).items() if removed)
    filters["judge"] = sum(1 for r in candidates if (r.get("judge") or {}).get("removed"))
    unchecked = Counter(name for r in candidates for name in not_run(r["filters"] or {}))
    kept = [r for r in records if r["kept"]]
    coverage = [v["coverage"]["percent"] for r in records for v in r["versions"][-1:]
                if v.get("passed") and isinstance(v.get("coverage"), dict) and "percent" in v["coverage"]]
    return {
        "problems": len(records),
        "status": dict(sorted(status.items())),
        "rejected_reasons": dict(sorted(Counter(r["reason"] for r in records if r["status"] == "rejected").items())),
        "reached_sandbox": len(reached),
        "pass_rate_by_iteration": rates,
        "iterations_to_pass": {str(i + 1): passed_at[i] for i in sorted(passed_at)},
        "candidate_pairs": len(candidates),
        "filters": dict(sorted(filters.items())),
        # rules that could not run, with the number of candidate pairs they did not check and why
        "filters_not_run": {name: {"pairs": n, "reason": NOT_RUN_REASONS.get(name, "")}
                            for name, n in sorted(unchecked.items())},
        "pairs_kept": len(kept),
        "rejected_error_types": dict(Counter(r["pair"]["meta"]["rejected_error_type"] for r in kept).most_common()),
        "coverage": {
            "solutions": len(coverage),
            "mean_percent": sum(coverage) / len(coverage) if coverage else None,
            "histogram": dict(sorted(Counter(f"{min(int(c // 10) * 10, 90)}-{min(int(c // 10) * 10, 90) + 10}"
                                             for c in coverage).items(), key=lambda kv: int(kv[0].split("-")[0]))),
        },
    }


def format_report(s: dict) -> str:
    """The summary as a plain-text report."""
    lines = [f"CodeFlow report: {s['problems']} problems, {s['reached_sandbox']} reached the sandbox, "
             f"{s['candidate_pairs']} candidate pairs, {s['pairs_kept']} kept", ""]
    for name, why in (s.get("filters_not_run") or {}).items():
        lines += [f"WARNING: filter {name} did not run on {why['pairs']} candidate pairs: {why['reason']}", ""]
    lines += ["status:"] + [f"  {k:<14} {v}" for k, v in s["status"].items()]
    if s["rejected_reasons"]:
        lines += ["rejected first answers:"] + [f"  {k:<24} {v}" for k, v in s["rejected_reasons"].items()]
    lines += ["pass rate after iteration (cumulative):"]
    lines += [f"  {i + 1}: {rate:6.1%}" for i, rate in enumerate(s["pass_rate_by_iteration"])]
    lines += ["answers needed to pass:"] + [f"  {k}: {v}" for k, v in s["iterations_to_pass"].items()]
    lines += ["filters (pairs removed; a pair may fail several):"] + [f"  {k:<24} {v}" for k, v in s["filters"].items()]
    lines += ["error types of rejected versions (kept pairs):"]
    lines += [f"  {v:4d}  {k}" for k, v in s["rejected_error_types"].items()]
    cov = s["coverage"]
    mean = f"{cov['mean_percent']:.1f} %" if cov["mean_percent"] is not None else "n/a"
    lines += [f"test-file line coverage of final solutions: mean {mean} over {cov['solutions']}"]
    lines += [f"  {k:>7} %: {v}" for k, v in cov["histogram"].items()]
    return "\n".join(lines) + "\n"
