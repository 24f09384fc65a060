"""Focused-DPO's continuation test: does a pair's middle decide whether the program is correct?

    focalpo analyze continue runs/fd                                  # the run's own model, greedy
    focalpo analyze continue runs/fd --backend openai --model M --base-url URL --n 5 --temperature 0.8

    from focalpo.continuation import ContinueConfig, run_continuation
    summary = run_continuation(ContinueConfig(run="runs/fd"))   # {"chosen_mid": .., "rejected_mid": .., ...}

Focused-DPO (arXiv 2502.11475, §5) checks its premise that the differing middle of a (correct, incorrect)
pair is where correctness is decided: the model continues its answer from the common prefix + the chosen
middle, and again from the common prefix + the rejected middle, and the continuations are executed (pass@1
90.02 % vs 3.17 % in the paper). Here, for every pair of a pipeline run (`pairs.jsonl` beside the
`config.json` of `focalpo focused`, or of `focalpo codeflow`):

- the two partial answers are the chosen text up to its suffix (`chosen_suffix_start`: prefix + chosen
  middle) and the rejected text up to its suffix; a pair without these boundaries (LCS-only records) gets
  Focused-DPO's own (`common_prefix_suffix`, line unit);
- a conversational pair's partial answer is an open assistant message that the backend continues
  (`focalpo.generate.base.continues_reply`), a plain pair's is appended to its prompt; `n` continuations
  each, with the run's backend and model unless others are given, seeded per pair and arm;
- each program (partial answer + continuation, its code extracted as `focalpo sample` does) is executed on
  `tests`: `reference` = the problems' own tests through `focalpo eval` (the benchmark's harness: plus
  tests, time limits), `run` = the tests the run itself found reliable (a focused record's
  `ground_truth_tests`, PageRank's), `auto` = reference when every problem has tests, else run;
- `chosen_mid` / `rejected_mid` = the mean over pairs of the share of passing continuations (pass@1 for
  n = 1, its unbiased estimate for n > 1).

Output (`out`, default `<run>/continuation`): `samples.jsonl` (every continuation: task_id, solution,
raw answer, pair, arm), `eval.json` (the `focalpo eval` results, reference tests) and `continuation.json`
(the summary, the config and one row per pair).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

ARMS = ("chosen_mid", "rejected_mid")
TESTS = ("auto", "reference", "run")
SUMMARY_FILE, SAMPLES_FILE, EVAL_FILE = "continuation.json", "samples.jsonl", "eval.json"


@dataclass
class ContinueConfig:
    """Options of `focalpo analyze continue` (module doc)."""

    run: str = ""  # a pipeline run directory: pairs.jsonl and config.json
    out: str | None = None  # output directory (default: <run>/continuation)
    backend: str | None = None  # default: the run's
    model: str | None = None  # default: the run's
    base_url: str | None = None
    backend_options: dict = field(default_factory=dict)
    n: int = 1  # continuations per partial answer
    temperature: float = 0.0  # greedy; n > 1 needs a temperature > 0
    top_p: float = 1.0
    max_new_tokens: int = 512
    tests: str = "auto"  # auto | reference | run
    limit: int | None = None  # only the first N pairs
    seed: int = 0
    workers: int | None = None
    overwrite: bool = False
    progress: bool = True

    def check(self) -> None:
        rules = [
            (bool(self.run), "run: give a pipeline run directory"),
            (self.n >= 1, f"n must be >= 1, got {self.n}"),
            (self.n == 1 or self.temperature > 0, f"n = {self.n} greedy continuations would all be the same; "
             "give a temperature > 0 (e.g. --temperature 0.8) or n = 1"),
            (self.tests in TESTS, f"tests {self.tests!r}: one of {', '.join(TESTS)}"),
            (self.max_new_tokens >= 1, "max_new_tokens must be >= 1"),
        ]
        for ok, message in rules:
            if not ok:
                raise ValueError(f"analyze continue config: {message}")


def output_dir(cfg: ContinueConfig) -> Path:
    """`out`, else <run>/continuation."""
    return Path(cfg.out) if cfg.out else Path(cfg.run) / "continuation"


def partial_answers(pair) -> tuple[str, str]:
    """(common prefix + chosen middle, common prefix + rejected middle) of a pair (module doc)."""
    from focalpo.localize import common_prefix_suffix

    chosen, rejected = pair.chosen_text, pair.rejected_text
    if pair.chosen_suffix_start is None or pair.rejected_suffix_start is None:
        bounds = common_prefix_suffix(chosen, rejected, "line")
        return chosen[:bounds.chosen_suffix_start], rejected[:bounds.rejected_suffix_start]
    return chosen[:pair.chosen_suffix_start], rejected[:pair.rejected_suffix_start]


def continuation_prompt(pair, partial: str):
    """The prompt that makes a backend continue `partial` as the answer to the pair's prompt."""
    if pair.is_conversational:
        return [*pair.prompt, {"role": "assistant", "content": partial}]
    return pair.prompt + partial


def _run_config(run: Path) -> dict:
    path = run / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; give the directory of a `focalpo focused` (or codeflow) run")
    return json.loads(path.read_text(encoding="utf-8"))


def _problems(config: dict, run: Path) -> dict:
    """task_id -> Problem of the run's benchmark (its `problems` file, split and columns)."""
    from focalpo.datasets_io import data_source
    from focalpo.problems.registry import load_benchmark

    if config.get("instructions"):
        raise ValueError(f"{run / 'config.json'}: the run read instructions without tests ({config['instructions']}); "
                         "the continuation test needs problems to execute the programs on")
    source = data_source(config.get("problems"), config.get("split"), config.get("columns") or {})
    return {p.task_id: p for p in load_benchmark(config.get("benchmark", "jsonl"), source)}


def _run_tests(run: Path) -> dict[str, list[str]]:
    """task_id -> the asserts a focused run found reliable (`ground_truth_tests` of its records)."""
    from focalpo.runs import read_records

    path = run / "records.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; tests=run needs the run's records")
    out = {}
    for where, r in read_records(path):
        if "ground_truth_tests" in r:
            out[r["task_id"]] = [r["tests"][i] for i in r["ground_truth_tests"]]
    return out


def _backend(cfg: ContinueConfig, config: dict):
    """The run's own backend (its model, server and options) with the given ones on top; another backend
    starts from the given options only."""
    from focalpo.generate.base import get_backend

    name = cfg.backend or config.get("backend")
    if not name:
        raise ValueError("analyze continue config: backend: the run names none; give --backend")
    same = name == config.get("backend")
    options = {**((config.get("backend_options") or {}) if same else {}), **cfg.backend_options}
    for key in ("model", "base_url"):
        value = getattr(cfg, key) or (config.get(key) if same else None)
        if value:
            options[key] = value
    return get_backend(name, **options)


def _execute_run_tests(samples: list[dict], problems: dict, tests: dict[str, list[str]], cfg: ContinueConfig,
                       timeout: float) -> list[bool]:
    from focalpo.extract import program_from_sample
    from focalpo.sandbox import AssertTest, ExecPool, Job

    jobs = []
    for s in samples:  # each program as `focalpo eval` builds it from the sample line
        problem = problems[s["task_id"]]
        program = problem.program_for(program_from_sample(s, problem.code_prefix))
        jobs.append(Job(program, [AssertTest(f"t{j}", code=a, time_limit=timeout)
                                  for j, a in enumerate(tests[s["task_id"]])]))
    with ExecPool(workers=cfg.workers) as pool:
        return [r.passed for r in pool.map(jobs)]


def _execute_reference(samples: list[dict], out: Path, config: dict, cfg: ContinueConfig) -> list[bool]:
    """`focalpo eval` of the samples file on the run's problems; one verdict per sample, in file order."""
    from focalpo.eval.run import EvalConfig, evaluate_benchmark, passed_in_order

    result = evaluate_benchmark(EvalConfig(
        benchmark=config.get("benchmark", "jsonl"), samples=str(out / SAMPLES_FILE), data=config.get("problems"),
        split=config.get("split"), columns=config.get("columns") or {}, out=str(out / EVAL_FILE), workers=cfg.workers,
        overwrite=True, progress=cfg.progress))
    return passed_in_order(result, [s["task_id"] for s in samples])


def summarize(rows: Sequence[dict], n: int, tests: str) -> dict:
    """The pass rates of both arms over `rows` (one per pair: the share of passing continuations per arm)."""
    mean = (lambda arm: sum(r[arm] for r in rows) / len(rows)) if rows else (lambda arm: None)
    return {**{arm: mean(arm) for arm in ARMS}, "pairs": len(rows), "n": n, "tests": tests,
            "chosen_better": sum(r["chosen_mid"] > r["rejected_mid"] for r in rows),
            "rejected_better": sum(r["chosen_mid"] < r["rejected_mid"] for r in rows)}


def run_continuation(cfg: ContinueConfig, *, backend: Any = None) -> dict:
    """`focalpo analyze continue` (module doc): writes the output directory, returns the summary."""
    from focalpo.eval.sample import sample_records
    from focalpo.io import write_json, write_jsonl
    from focalpo.pairs import read_pairs
    from focalpo.prompts import COMPLETE_STOP
    from focalpo.runs import problem_seed

    cfg.check()
    run = Path(cfg.run)
    config = _run_config(run)
    out = output_dir(cfg)
    if (out / SUMMARY_FILE).exists() and not cfg.overwrite:
        raise FileExistsError(f"{out / SUMMARY_FILE} exists; pass --overwrite to replace it, or --out another directory")
    pairs_path = run / "pairs.jsonl"
    if not pairs_path.is_file():
        raise FileNotFoundError(f"{pairs_path}: no such file; the run has written no pairs yet")
    pairs = read_pairs(pairs_path)[: cfg.limit]
    problems = _problems(config, run)
    missing = sorted({p.meta.get("task_id") for p in pairs} - set(problems), key=str)
    if missing:
        raise ValueError(f"{pairs_path}: pairs of task(s) {missing[:5]} are not among the run's problems "
                         f"({config.get('problems')}); every pair's meta needs the task_id of its problem")
    bare = sorted({p.meta["task_id"] for p in pairs if not problems[p.meta["task_id"]].all_tests()})
    tests = cfg.tests if cfg.tests != "auto" else "run" if bare else "reference"
    run_tests: dict[str, list[str]] = {}
    if tests == "reference" and bare:
        raise ValueError(f"{config.get('problems')}: task(s) {bare[:5]} have no tests of their own; use tests=run "
                         "(the tests the focused run trusted) or tests=auto")
    if tests == "run":
        run_tests = _run_tests(run)
        untested = sorted({p.meta["task_id"] for p in pairs if not run_tests.get(p.meta["task_id"])})
        if untested:
            raise ValueError(f"{run / 'records.jsonl'}: no ground-truth tests for task(s) {untested[:5]}: tests=run "
                             "needs a focused run's records; give problems with tests (tests=reference)")
    complete = config.get("prompt_style") == "complete"

    prompts, seeds, owners = [], [], []  # owners: (pair index, arm, partial answer)
    for i, pair in enumerate(pairs):
        for arm, partial in zip(ARMS, partial_answers(pair)):
            prompts.append(continuation_prompt(pair, partial))
            seeds.append(problem_seed(cfg.seed, pair.meta["task_id"], f"continue/{i}/{arm}"))
            owners.append((i, arm, partial))
    answers: list[list[str]] = []
    if pairs:
        gen = backend if backend is not None else _backend(cfg, config)
        answers = gen.generate(prompts, n=cfg.n, temperature=cfg.temperature, top_p=cfg.top_p,
                               max_new_tokens=cfg.max_new_tokens, stop=COMPLETE_STOP if complete else None, seed=seeds)
    samples = []
    for (i, arm, partial), continuations in zip(owners, answers):
        problem = problems[pairs[i].meta["task_id"]]
        records = sample_records(problem, [partial + c for c in continuations], "complete" if complete else "instruct")
        samples += [{**r, "pair": i, "arm": arm} for r in records]
    out.mkdir(parents=True, exist_ok=True)
    (out / SUMMARY_FILE).unlink(missing_ok=True)  # written last: its presence means a finished run
    write_jsonl(out / SAMPLES_FILE, samples)
    if not samples:
        verdicts = []
    elif tests == "reference":
        verdicts = _execute_reference(samples, out, config, cfg)
    else:
        verdicts = _execute_run_tests(samples, problems, run_tests, cfg, float(config.get("timeout", 4.0)))
    passes: dict[tuple[int, str], int] = {}
    for s, ok in zip(samples, verdicts):
        passes[(s["pair"], s["arm"])] = passes.get((s["pair"], s["arm"]), 0) + ok
    rows = [{"task_id": pair.meta["task_id"], "pair": i,
             **{arm: passes.get((i, arm), 0) / cfg.n for arm in ARMS}} for i, pair in enumerate(pairs)]
    summary = summarize(rows, cfg.n, tests)
    write_json(out / SUMMARY_FILE, {**summary, "config": asdict(cfg), "run_config": config, "per_pair": rows})
    return summary


def format_summary(summary: dict, out: str | os.PathLike | None = None) -> str:
    """The two pass rates in a few lines, as `focalpo analyze continue` prints them."""
    if not summary["pairs"]:
        return "no pairs: nothing to continue"
    lines = [f"continuation test on {summary['pairs']} pairs, {summary['n']} continuation(s) each, "
             f"{summary['tests']} tests:",
             f"  from prefix + chosen middle:   pass@1 {100 * summary['chosen_mid']:6.2f} %",
             f"  from prefix + rejected middle: pass@1 {100 * summary['rejected_mid']:6.2f} %",
             f"  pairs where the chosen middle does better: {summary['chosen_better']}, worse: {summary['rejected_better']}"]
    if out:
        lines.append(f"  written to {out}")
    return "\n".join(lines)
