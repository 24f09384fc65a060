"""focalpo eval vs evalplus 0.3.1: speed on canonical solutions, and verdict agreement on mutants.

Baseline: evalplus 0.3.1 (`evalplus.evaluate`, default fast check, `--parallel 2`) in its own venv
`bench/.venv-evalplus` (created once), ground truth cached before timing. Contender: `focalpo eval
--workers 2`, timed after one untimed warm-up run per benchmark (so its ground-truth cache is warm).

    python bench/evalplus_compare.py [--cases p1,p2,p3,verdicts,mutants] [--repeat 3]
        [--evalplus-repeat 1] [--verdict-runs 5] [--recheck 3] [--workers 2] [--evalplus-only]
        [--python PY] [--interleave] [--baseline-checkout DIR]

Cases:
  p1        164 HumanEval+ canonical solutions, base + plus tests          target >= 2.5x
  p2        1,640 samples (10 x each HumanEval+ canonical), base only      target >= 10x
  p3        378 MBPP+ canonical solutions, base + plus tests               target >= 2.5x
  verdicts  focalpo on p1 and p3, `--verdict-runs` times: must pass 164/164 and 378/378 every run;
            evalplus's verdicts on the same files are reported (it fails HumanEval/32 by design and
            can time out on heavy MBPP+ inputs)
  mutants   ~1,250 seeded AST mutants (bench/mutants.py), both tools, default fast mode; per-sample
            agreement on pass/fail (evalplus: pass iff base_status == plus_status == "pass"), target
            >= 99 %; each disagreement is re-judged `--recheck` times by both tools and categorised

`--baseline-checkout DIR` also times `focalpo eval` of another checkout (its own `DIR/.venv`, e.g. a
`git worktree` of the commit before a change) in the same cases, interleaved with this one (B F B F
...), and prints this checkout's speed-up over it: a "no slower than before" check in one run.

Times are wall-clock seconds of each command, median over repetitions: focalpo's at exit,
evalplus's both when its results file is written and at exit (see bench/runners.py: its exit waits
up to 20 s more on an idle watchdog thread). Speed-ups and verdicts are printed against both: the
results file (strict) and the exit (the command's wall time, what a user waits for, and what the
issue's "evalplus needs ~22 s for P1 and ~62 s for P2" measured: evalplus's p2 results never
take 62 s here; its exit lands on the watchdog's 20 s steps, at about 43 or 63 s). Outputs:
bench/out/evalplus_compare.json (all figures), bench/out/disagreements.jsonl (one line per mutant
disagreement), bench/out/mutants.jsonl.
Sample files and tool outputs live in a temporary folder (kept with --keep-work).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import mutants as bench_mutants
import samples as bench_samples
from agreement import compare_verdicts, summarise_disagreements
from runners import BENCH, Evalplus, Focalpo, Run, interpreter_tag

OUT = Path(__file__).resolve().parent / "out"
TARGETS = {"p1": 2.5, "p2": 10.0, "p3": 2.5}
ALL_CASES = ("p1", "p2", "p3", "verdicts", "mutants")
WARMUP_CASE = {"humaneval+": "p1", "mbpp+": "p3"}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix="focalpo-evalplus-bench-", dir=args.work_dir))
        if args.python:  # both tools on another interpreter, each from a venv of its own
            tag = interpreter_tag(args.python)
            self.evalplus = Evalplus(BENCH / f".venv-evalplus-{tag}", args.data_dir, base_python=args.python)
            self.focalpo = Focalpo(data=args.focalpo_data, venv=BENCH / f".venv-focalpo-{tag}", base_python=args.python)
        else:
            self.evalplus = Evalplus(data_dir=args.data_dir)
            self.focalpo = Focalpo(data=args.focalpo_data)
        self.focalpo_ok = False
        self.before = Focalpo(repo=args.baseline_checkout, data=args.focalpo_data) if args.baseline_checkout else None
        self.before_warmed: set[str] = set()
        self.focalpo_why = "skipped (--evalplus-only)"
        self.warmed: set[str] = set()
        self.focalpo_broken: dict[str, str] = {}  # benchmark -> error of the run that failed
        self.counter = 0
        self.evalplus_runs: dict[str, list[Run]] = {}
        self.baseline_rows: dict[str, dict] = {}  # case -> this checkout vs --baseline-checkout  # case -> runs (reused for verdicts)
        self.report: dict = {"cases": {}, "machine": machine_info(), "args": {k: str(v) for k, v in vars(args).items()}}

    # ---------------------------------------------------------------- plumbing
    def fresh(self, name: str) -> Path:
        self.counter += 1
        return self.work / f"{self.counter:03d}-{name}"

    def case_file(self, name: str) -> Path:
        path = self.work / "samples" / f"{name}.jsonl"
        if not path.exists():
            bench_samples.write_jsonl(path, bench_samples.case_samples(bench_samples.CASES[name], self.args.data_dir))
        return path

    def run_evalplus(self, case: str, samples: Path, benchmark: str, base_only: bool) -> Run:
        self.evalplus.warm(benchmark, log)
        run = self.evalplus.run(samples, benchmark, base_only, self.args.workers, self.fresh(f"evalplus-{case}"))
        log(f"  evalplus {case}: results {run.results_s:.1f}s, exit {run.wall_s:.1f}s, "
            f"{run.n_pass}/{len(run.verdicts)} pass{busy(run)}")
        return run

    def run_focalpo(self, case: str, samples: Path, benchmark: str, base_only: bool) -> Run:
        if benchmark not in self.warmed:
            warm = WARMUP_CASE[benchmark]
            log(f"  focalpo warm-up ({benchmark}, {warm}, untimed)")
            self.focalpo.run(self.case_file(warm), benchmark, False, self.args.workers, self.fresh("focalpo-warmup"))
            self.warmed.add(benchmark)
        run = self.focalpo.run(samples, benchmark, base_only, self.args.workers, self.fresh(f"focalpo-{case}"))
        gt = (run.summary.get("timings") or {}).get("ground_truth", 0.0)
        note = f"  [ground truth took {gt:.0f}s: cache was cold (focalpo source changed?)]" if gt > 10 else ""
        log(f"  focalpo  {case}: {run.wall_s:.2f}s, {run.n_pass}/{len(run.verdicts)} pass{busy(run)}{note}")
        return run

    def run_before(self, case: str, samples: Path, benchmark: str, base_only: bool) -> Run:
        """One timed run of the --baseline-checkout's focalpo (warmed up once per benchmark, untimed)."""
        if benchmark not in self.before_warmed:
            log(f"  baseline checkout warm-up ({benchmark}, untimed)")
            self.before.run(self.case_file(WARMUP_CASE[benchmark]), benchmark, False, self.args.workers,
                            self.fresh("before-warmup"))
            self.before_warmed.add(benchmark)
        run = self.before.run(samples, benchmark, base_only, self.args.workers, self.fresh(f"before-{case}"))
        log(f"  baseline {case}: {run.wall_s:.2f}s, {run.n_pass}/{len(run.verdicts)} pass{busy(run)}")
        return run

    def focalpo_runs(self, case: str, samples: Path, benchmark: str, base_only: bool, n: int) -> list[Run] | str:
        """n focalpo runs, or the error text if focalpo fails on this benchmark (then not retried)."""
        if not self.focalpo_ok:
            return self.focalpo_why
        if benchmark in self.focalpo_broken:
            return self.focalpo_broken[benchmark]
        try:
            return [self.run_focalpo(case, samples, benchmark, base_only) for _ in range(n)]
        except (RuntimeError, subprocess.TimeoutExpired, KeyError, ValueError) as e:
            self.focalpo_broken[benchmark] = f"{type(e).__name__}: {e}"[:4000]
            log(f"  focalpo FAILED on {benchmark}; skipping its focalpo side from now on:\n{str(e)[-1500:]}")
            return self.focalpo_broken[benchmark]

    def timed_runs(self, name: str, samples: Path, case) -> tuple[list[Run], list[Run] | str]:
        """evalplus's timed runs, then focalpo's; with --interleave they alternate (E F E F ...), so
        that a machine whose load drifts during the case weighs on both tools alike."""
        n_ep, n_fp = self.args.evalplus_repeat, self.args.repeat
        if not self.args.interleave:
            ep = [self.run_evalplus(name, samples, case.benchmark, case.base_only) for _ in range(n_ep)]
            return ep, self.focalpo_runs(name, samples, case.benchmark, case.base_only, n_fp)
        ep: list[Run] = []
        fp: list[Run] | str = []
        for i in range(max(n_ep, n_fp)):
            if i < n_ep:
                ep.append(self.run_evalplus(name, samples, case.benchmark, case.base_only))
            if i < n_fp and not isinstance(fp, str):
                got = self.focalpo_runs(name, samples, case.benchmark, case.base_only, 1)
                fp = got if isinstance(got, str) else fp + got
        return ep, fp

    # ---------------------------------------------------------------- cases
    def timing_case(self, name: str) -> dict:
        case = bench_samples.CASES[name]
        samples = self.case_file(name)
        n = sum(1 for _ in open(samples))
        log(f"{name}: {n} samples, {case.benchmark}, {'base only' if case.base_only else 'base + plus'}")
        if self.before is not None and self.focalpo_ok:  # this checkout and the baseline one, alternating
            before, now = [], []
            for _ in range(self.args.repeat):
                before.append(self.run_before(name, samples, case.benchmark, case.base_only))
                now += self.focalpo_runs(name, samples, case.benchmark, case.base_only, 1)
            self.baseline_rows[name] = {
                "baseline_checkout": str(self.args.baseline_checkout),
                "baseline_runs_s": [r.wall_s for r in before], "focalpo_runs_s": [r.wall_s for r in now],
                "baseline_s": statistics.median(r.wall_s for r in before),
                "focalpo_s": statistics.median(r.wall_s for r in now),
                "baseline_pass": [r.n_pass for r in before], "focalpo_pass": [r.n_pass for r in now],
            }
            row = self.baseline_rows[name]
            row["speedup_vs_baseline"] = row["baseline_s"] / row["focalpo_s"]
            log(f"  {name}: this checkout {row['focalpo_s']:.2f}s, baseline {row['baseline_s']:.2f}s "
                f"(x{row['speedup_vs_baseline']:.2f})")
        ep, fp = self.timed_runs(name, samples, case)
        self.evalplus_runs[name] = ep
        row = {
            "samples": n,
            "benchmark": case.benchmark,
            "base_only": case.base_only,
            "evalplus_results_s": [r.results_s for r in ep],
            "evalplus_exit_s": [r.wall_s for r in ep],
            "evalplus_pass": [r.n_pass for r in ep],
            "evalplus_failing": [r.failing() for r in ep],
            "evalplus_other_cpu_s": [r.other_cpu_s for r in ep],
            "evalplus_s": statistics.median(r.results_s for r in ep),
            "target": TARGETS[name],
        }
        # Pure-execution floor: the reference solutions' own run time (evalplus's cached per-test
        # timings) spread over the workers. Neither tool can beat it; evalplus_s / floor_s bounds the
        # speed-up a zero-overhead evaluator could show on this case.
        ref = self.evalplus.reference_times(case.benchmark)
        per_sample = [sum(ref[t]) if not case.base_only else ref[t][0]
                      for t in (json.loads(l)["task_id"] for l in open(samples))]
        row["floor_s"] = sum(per_sample) / self.args.workers
        row["max_speedup_at_floor"] = row["evalplus_s"] / row["floor_s"] if row["floor_s"] else None
        # Measured the same way, on this machine, now: the same tests run in-process on the same
        # number of forked workers (compute_floor.py), so two busy cores slowing each other count.
        if self.focalpo_ok:
            ideal = self.focalpo.zero_overhead(name, self.args.workers, self.args.data_dir)
            row["zero_overhead"] = ideal
            row["max_speedup_zero_overhead"] = row["evalplus_s"] / ideal["ideal_wall_s"] if ideal["ideal_wall_s"] else None
            log(f"  zero-overhead {name}: one core {ideal['single_cpu_s']:.1f} CPU-s, {self.args.workers} workers "
                f"{ideal['ideal_wall_s']:.2f}s (contention x{ideal['contention']:.2f})")
        if isinstance(fp, str):
            row["focalpo_error"] = fp
        else:
            row.update({
                "focalpo_runs_s": [r.wall_s for r in fp],
                "focalpo_pass": [r.n_pass for r in fp],
                "focalpo_failing": [r.failing() for r in fp],
                "focalpo_other_cpu_s": [r.other_cpu_s for r in fp],
                "focalpo_internal_timings": [r.summary.get("timings") for r in fp],
                "focalpo_s": statistics.median(r.wall_s for r in fp),
            })
            row["speedup"] = row["evalplus_s"] / row["focalpo_s"]
            row["speedup_vs_evalplus_exit"] = statistics.median(row["evalplus_exit_s"]) / row["focalpo_s"]
            row["meets_target"] = row["speedup"] >= row["target"]
            row["meets_target_vs_exit"] = row["speedup_vs_evalplus_exit"] >= row["target"]
        return row

    def verdicts_case(self) -> dict:
        out = {}
        for name in ("p1", "p3"):
            case = bench_samples.CASES[name]
            samples = self.case_file(name)
            if name not in self.evalplus_runs:
                log(f"verdicts: evalplus on {name} ({self.args.evalplus_verdict_runs} run(s))")
                self.evalplus_runs[name] = [self.run_evalplus(name, samples, case.benchmark, False)
                                            for _ in range(self.args.evalplus_verdict_runs)]
            ep = self.evalplus_runs[name]
            row = {"samples": len(ep[0].verdicts),
                   "evalplus_pass": [r.n_pass for r in ep],
                   "evalplus_failing": [failing_detail(r) for r in ep]}
            if self.focalpo_ok:
                log(f"verdicts: focalpo on {name} x{self.args.verdict_runs}")
            fp = self.focalpo_runs(f"verdict-{name}", samples, case.benchmark, False, self.args.verdict_runs)
            if isinstance(fp, str):
                row["focalpo_error"] = fp
            else:
                row["focalpo_pass"] = [r.n_pass for r in fp]
                row["focalpo_failing"] = [failing_detail(r) for r in fp]
                row["focalpo_all_pass_every_run"] = all(r.n_pass == len(r.verdicts) for r in fp)
            out[name] = row
        return out

    def mutants_case(self) -> dict:
        per_task = bench_mutants.parse_per_task(self.args.mutants_per_task)
        all_rows, figures = [], {"per_task": per_task, "benchmarks": {}}
        for benchmark, n in per_task.items():
            if n == 0:
                continue
            muts = bench_mutants.benchmark_mutants(benchmark, n, self.args.seed, self.args.data_dir, progress=log)
            meta = [{"benchmark": benchmark, **asdict(m)} for m in muts]
            all_rows += meta
            samples = bench_samples.write_jsonl(self.work / "samples" / f"mutants-{benchmark}.jsonl",
                                                [{"task_id": m.task_id, "solution": m.solution} for m in muts])
            log(f"mutants {benchmark}: {len(muts)} samples")
            ep = self.run_evalplus(f"mutants-{benchmark}", samples, benchmark, False)
            fig = {"samples": len(muts), "evalplus_results_s": ep.results_s, "evalplus_exit_s": ep.wall_s,
                   "evalplus_pass": ep.n_pass}
            fp = self.focalpo_runs(f"mutants-{benchmark}", samples, benchmark, False, 1)
            if isinstance(fp, str):
                fig["focalpo_error"] = fp
            else:
                fp = fp[0]
                fig.update({"focalpo_s": fp.wall_s, "focalpo_pass": fp.n_pass,
                            "speedup": ep.results_s / fp.wall_s,
                            "focalpo_internal_timings": fp.summary.get("timings"),
                            "focalpo_failure_kinds": failure_kinds(fp)})
                cmp = compare_verdicts(meta, ep.verdicts, fp.verdicts)
                if cmp["disagreements"] and self.args.recheck:
                    try:
                        self.recheck(benchmark, samples, cmp["disagreements"])
                    except (RuntimeError, subprocess.TimeoutExpired) as e:
                        fig["recheck_error"] = f"{type(e).__name__}: {e}"[:4000]
                        log(f"  recheck failed: {str(e)[-800:]}")
                fig.update({k: v for k, v in cmp.items() if k != "disagreements"})
                fig["disagreements"] = cmp["disagreements"]
            figures["benchmarks"][benchmark] = fig
        bench_samples.write_jsonl(OUT / "mutants.jsonl", all_rows)
        compared = {b: f for b, f in figures["benchmarks"].items() if "agreement_pct" in f}
        if compared:
            figures.update(summarise_disagreements(compared))
            bench_samples.write_jsonl(OUT / "disagreements.jsonl", figures["all_disagreements"])
            del figures["all_disagreements"]
        return figures

    def recheck(self, benchmark: str, samples: Path, disagreements: list[dict]) -> None:
        """Re-judge each disagreeing sample `--recheck` times with both tools (flaky vs deterministic)."""
        rows = [json.loads(l) for l in open(samples)]
        subset = bench_samples.write_jsonl(self.fresh(f"recheck-{benchmark}") / "samples.jsonl",
                                           [rows[d["sample_index"]] for d in disagreements])
        n = self.args.recheck
        log(f"  recheck {len(disagreements)} disagreement(s) x{n} with both tools")
        ep = self.evalplus.recheck(subset, benchmark, n, False, self.args.workers)
        fp_runs = [self.focalpo.run(subset, benchmark, False, self.args.workers, self.fresh("focalpo-recheck"))
                   for _ in range(n)]
        for i, d in enumerate(disagreements):
            d["evalplus_recheck"] = [f"{r['base_status']}/{r['plus_status']}" for r in ep[i]["runs"]]
            d["evalplus_recheck_fail_inputs"] = sorted({r["base_fail_input"] or r["plus_fail_input"] or ""
                                                        for r in ep[i]["runs"]} - {""})
            d["focalpo_recheck"] = ["pass" if r.verdicts[i].passed else "fail" for r in fp_runs]

    # ---------------------------------------------------------------- driver
    def main(self) -> dict:
        cases = self.args.cases
        self.evalplus.ensure_venv(log)
        self.report["machine"]["evalplus_python"] = interpreter_tag(str(self.evalplus.python))
        if not self.args.evalplus_only:
            self.focalpo.ensure_venv(log)
            self.focalpo_ok, why = self.focalpo.available()
            if self.focalpo.python.exists():
                self.report["machine"]["focalpo_python"] = interpreter_tag(str(self.focalpo.python))
            if not self.focalpo_ok:
                self.focalpo_why = f"not available: {why}"
                log(f"focalpo side skipped: {why}")
        self.report["focalpo_available"] = self.focalpo_ok
        if self.before is not None:
            ok, why = self.before.available()
            if not ok:
                raise SystemExit(f"--baseline-checkout {self.args.baseline_checkout}: {why}")
            self.report["baseline_checkout"] = self.baseline_rows
        log(f"work folder {self.work}")
        steps = {"p1": lambda: self.timing_case("p1"), "p2": lambda: self.timing_case("p2"),
                 "p3": lambda: self.timing_case("p3"), "verdicts": self.verdicts_case, "mutants": self.mutants_case}
        for name in ALL_CASES:
            if name in cases:
                self.report["cases"][name] = steps[name]()
                self.save()  # a later failure keeps the figures gathered so far
        return self.report

    def save(self) -> None:
        self.args.out.parent.mkdir(parents=True, exist_ok=True)
        self.args.out.write_text(json.dumps(self.report, indent=1, default=str))


def busy(run: Run) -> str:
    """A warning when unrelated processes used noticeable CPU during a timed run."""
    if run.other_cpu_s > max(1.0, 0.05 * run.wall_s):
        return f"  [machine shared: {run.other_cpu_s:.1f} CPU-s used by other processes]"
    return ""


def failure_kinds(run: Run) -> dict[str, int]:
    """How focalpo's failing samples failed: sample counts per set of failure statuses."""
    kinds = Counter(",".join(v.detail.get("failure_statuses") or ["none recorded"]) for v in run.verdicts if not v.passed)
    return dict(kinds.most_common())


def failing_detail(run: Run) -> list[dict]:
    return [{"task_id": v.task_id, "base_status": v.base_status, "plus_status": v.plus_status, **v.detail}
            for v in run.verdicts if not v.passed]


def machine_info() -> dict:
    def git(*cmd: str) -> str:
        got = subprocess.run(["git", "-C", str(bench_samples.REPO), *cmd], capture_output=True, text=True)
        return got.stdout.strip() if got.returncode == 0 else "?"

    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S"), "focalpo_commit": git("rev-parse", "--short", "HEAD"),
            "focalpo_src_dirty": bool(git("status", "--porcelain", "src"))}


def print_tables(report: dict) -> None:
    cases = report["cases"]
    timed = [c for c in ("p1", "p2", "p3") if c in cases]
    if timed:
        print("\ncase | samples | evalplus s (results / exit) | focalpo s (median) | speed-up (results / exit) "
              "| target | verdict (results / exit) | floor s (max speed-up) | zero-overhead s (max speed-up)")
        print("-----|---------|-----------------------------|--------------------|---------------------------"
              "|--------|--------------------------|------------------------|-------------------------------")
        for c in timed:
            r = cases[c]
            ep = f"{r['evalplus_s']:.1f} / {statistics.median(r['evalplus_exit_s']):.1f}"
            floor = f" | {r['floor_s']:.1f} ({r['max_speedup_at_floor']:.1f}x)" if r.get("max_speedup_at_floor") else " | -"
            if r.get("max_speedup_zero_overhead"):
                floor += f" | {r['zero_overhead']['ideal_wall_s']:.2f} ({r['max_speedup_zero_overhead']:.1f}x)"
            if "focalpo_s" in r:
                speedup = f"{r['speedup']:.1f}x / {r['speedup_vs_evalplus_exit']:.1f}x"
                verdict = " / ".join("PASS" if r[k] else "FAIL" for k in ("meets_target", "meets_target_vs_exit"))
                print(f"{c:4} | {r['samples']:7} | {ep:27} | {r['focalpo_s']:18.2f} | {speedup:25} "
                      f"| {'>=' + format(r['target'], 'g') + 'x':6} | {verdict:24}{floor}")
            else:
                why = "focalpo failed" if "focalpo_error" in r else "n/a"
                print(f"{c:4} | {r['samples']:7} | {ep:27} | {'-':>18} | {'-':>25} | {'>=' + format(r['target'], 'g') + 'x':6} | {why:24}{floor}")
    if report.get("baseline_checkout"):
        print("\ncase | this checkout s (median) | baseline checkout s (median) | speed-up over the baseline")
        for c, r in report["baseline_checkout"].items():
            print(f"{c:4} | {r['focalpo_s']:24.2f} | {r['baseline_s']:28.2f} | {r['speedup_vs_baseline']:.2f}x  "
                  f"(runs {r['focalpo_runs_s']} vs {r['baseline_runs_s']})")
    if "verdicts" in cases:
        print("\ncanonical verdicts (pass count per run)")
        for name, r in cases["verdicts"].items():
            ep_fail = sorted({f["task_id"] for run in r["evalplus_failing"] for f in run})
            line = f"  {name}: evalplus {r['evalplus_pass']}/{r['samples']} (failing: {ep_fail or 'none'})"
            if "focalpo_pass" in r:
                fp_fail = sorted({f["task_id"] for run in r["focalpo_failing"] for f in run})
                line += f"; focalpo {r['focalpo_pass']}/{r['samples']} (failing: {fp_fail or 'none'})"
            elif "focalpo_error" in r:
                line += f"; focalpo: {r['focalpo_error'][:200]}"
            print(line)
    if "mutants" in cases:
        m = cases["mutants"]
        print("\nmutants")
        for b, f in m["benchmarks"].items():
            line = f"  {b}: {f['samples']} samples; evalplus {f['evalplus_pass']} pass in {f['evalplus_results_s']:.1f}s"
            if "focalpo_s" in f:
                line += (f"; focalpo {f['focalpo_pass']} pass in {f['focalpo_s']:.1f}s; "
                         f"agreement {f['agreement_pct']:.2f}% ({f['n_disagree']} disagree)")
            elif "focalpo_error" in f:
                line += f"; focalpo: {f['focalpo_error'][:200]}"
            print(line)
        if "agreement_pct" in m:
            print(f"  overall agreement {m['agreement_pct']:.2f}% over {m['samples']} samples (target >= 99%): "
                  f"{'PASS' if m['agreement_pct'] >= 99 else 'FAIL'}")
            for cat, n in m["categories"].items():
                print(f"    {n:4}  {cat}")


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default=",".join(ALL_CASES), help=f"comma list of {', '.join(ALL_CASES)}")
    ap.add_argument("--repeat", type=int, default=3, help="focalpo timed runs per case (median)")
    ap.add_argument("--evalplus-repeat", type=int, default=1, help="evalplus timed runs per case (median)")
    ap.add_argument("--verdict-runs", type=int, default=5, help="focalpo runs of p1/p3 for the verdict check")
    ap.add_argument("--evalplus-verdict-runs", type=int, default=1,
                    help="evalplus runs of p1/p3 for verdicts when the timing cases did not run them")
    ap.add_argument("--recheck", type=int, default=3, help="re-judge each mutant disagreement N times per tool")
    ap.add_argument("--mutants-per-task", default="", help="e.g. humaneval+=3,mbpp+=2 (the default)")
    ap.add_argument("--seed", type=int, default=0, help="mutant selection seed")
    ap.add_argument("--workers", type=int, default=2, help="evalplus --parallel and focalpo --workers")
    ap.add_argument("--data-dir", type=Path, default=bench_samples.DEFAULT_DATA_DIR)
    ap.add_argument("--focalpo-data", type=Path, default=None, help="passed to focalpo eval --data (default: none)")
    ap.add_argument("--evalplus-only", action="store_true", help="skip focalpo even if it exists")
    ap.add_argument("--interleave", action="store_true",
                    help="alternate the two tools' timed runs (E F E F ...) instead of all of evalplus's first")
    ap.add_argument("--python", default=None,
                    help="run both tools on this interpreter (venvs bench/.venv-{evalplus,focalpo}-<version>-<hash>); "
                         "default: evalplus from the bench's interpreter, focalpo from <repo>/.venv")
    ap.add_argument("--baseline-checkout", type=Path, default=None,
                    help="also time this checkout's focalpo (DIR/.venv) side by side, e.g. a git worktree of an "
                         "earlier commit")
    ap.add_argument("--work-dir", type=Path, default=None,
                    help="parent of the temporary folder (default: the system temp dir; never inside the repo)")
    ap.add_argument("--keep-work", action="store_true", help="keep the temporary folder of samples and results")
    ap.add_argument("--out", type=Path, default=OUT / "evalplus_compare.json")
    args = ap.parse_args(argv)
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = set(args.cases) - set(ALL_CASES)
    if unknown:
        ap.error(f"unknown case(s) {sorted(unknown)}; choose from {', '.join(ALL_CASES)}")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    bench = Bench(args)
    try:
        report = bench.main()
    finally:
        if args.keep_work:
            log(f"kept {bench.work}")
        else:
            shutil.rmtree(bench.work, ignore_errors=True)
    bench.save()
    print_tables(report)
    print(f"\nfigures -> {args.out}")


if __name__ == "__main__":
    main()
