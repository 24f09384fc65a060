"""Focused-DPO data construction: sample k programs and k tests per problem, run every program on
every test, rank by PageRank, and pair correct with incorrect programs around their differing middle.

    focalpo focused --benchmark mbpp+ --backend hf --model Qwen/Qwen2.5-Coder-7B-Instruct --out runs/fd
    focalpo focused --benchmark jsonl --problems synth.jsonl --backend openai \\
        --model Qwen/Qwen2.5-Coder-7B-Instruct --base-url http://localhost:8000/v1 --out runs/fd
    focalpo merge runs/fd-0 runs/fd-1 --out runs/fd        # after --shard 0/2 and --shard 1/2

    from focalpo.pipelines.focused import FocusedConfig, run_focused
    summary = run_focused(FocusedConfig(benchmark="mbpp+", model="...", out="runs/fd"))

Per problem (Focused-DPO, arXiv 2502.11475, §3; ranking from CodeDPO, arXiv 2410.05605):
1. sample `k` answers to the program prompt and `k_tests` answers to the test prompt (editable
   templates, fields `{prompt}` and `{entry_point}`), temperature 1.5, with the problem's own seed;
2. extract the code of each answer (`focalpo.extract.extract_code`; with `prompt_style="complete"`
   the answer continues the problem's code prefix) and the first `tests_per_sample` top-level
   asserts of each test answer; drop answers without code, unparsable programs, and duplicates
   (same syntax tree: comments and spacing do not make a program different);
3. run every program on every test in the sandbox -> pass matrix, with a reason per failed cell;
4. `focalpo.rank.focused_pairs`: PageRank, ground-truth tests, correct/incorrect, pairs maximising
   Diff = rank difference + lam·common length, at most `max_pairs` per problem.

The stored completion of a program is its code, fenced (```python ... ```) by default: the answer
format of an instruct model without the prose around it, so the common prefix/suffix are matched
on code. Pairs are conversational (TRL's form) when the backend used a chat template or the chat
API, plain strings otherwise (`pair_format` forces either).

Output (`out`, see `focalpo.runs`): `records.jsonl` (one record per problem: programs,
tests, pass matrix, reasons, scores, ranks, correctness, dropped counts, its pairs; readable by
`focalpo analyze`), and, rewritten from the records at the end of every run, `pairs.jsonl` (pair
records for `focalpo train --scheme focused`) and `summary.json`. Generation of the next batch of
problems overlaps the sandbox run of the previous one.
"""

from __future__ import annotations

import ast
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Sequence

from focalpo.datasets_io import data_source
from focalpo.extract import extract_code, split_asserts
from focalpo.generate.base import backend_from_config
from focalpo.card import CARD_FILE, write_card
from focalpo.io import progress_bar, write_json
from focalpo.pipelines.runner import FREE_KEYS, PAIRS_PARQUET, chat_pairs, write_pair_files
from focalpo.problems.registry import load_benchmark
from focalpo.problems.types import Problem
from focalpo.prompts import COMPLETE_STOP, PROGRAM_TEMPLATE, TEST_TEMPLATE, program_prompt, test_prompt
from focalpo.rank import DAMPING, ITERATIONS, LAM, focused_selection, ranks
from focalpo.runs import RunDir, Shard, check_unique_ids, problem_seed

PAIRS_FILE, SUMMARY_FILE = "pairs.jsonl", "summary.json"
DERIVED = (PAIRS_FILE, PAIRS_PARQUET, SUMMARY_FILE, CARD_FILE)


@dataclass
class FocusedConfig:
    """Options of one `focalpo focused` run (module doc; `focalpo focused --help`)."""

    out: str = ""  # run directory
    benchmark: str = "jsonl"  # a focalpo.problems loader: humaneval+, mbpp+, jsonl, ...
    problems: str | None = None  # the loader's file (default: the benchmark's bundled copy)
    split: str | None = None  # dataset split of `problems` (Hub id, DatasetDict directory)
    columns: dict = field(default_factory=dict)  # loader field -> column of `problems`
    task_ids: str | None = None  # file of task ids (one per line): only these problems
    since: str | None = None  # YYYY-MM-DD: only problems whose contest_date is on or after (LiveCodeBench)
    until: str | None = None  # YYYY-MM-DD: ... on or before
    limit: int | None = None  # only the first N problems of the file
    backend: str = "hf"  # focalpo.generate backend: hf, openai, scripted
    model: str = ""
    base_url: str | None = None  # openai backend: server URL up to /v1
    backend_options: dict = field(default_factory=dict)  # extra keyword options of the backend
    k: int = 10  # programs sampled per problem (Focused-DPO: 10)
    k_tests: int = 10  # test answers sampled per problem (Focused-DPO: 10)
    tests_per_sample: int = 1  # asserts kept per test answer (0 = all)
    temperature: float = 1.5  # Focused-DPO
    top_p: float = 1.0
    max_new_tokens: int = 1024
    test_max_new_tokens: int = 256
    prompt_style: str = "instruct"  # instruct: PROGRAM_TEMPLATE; complete: continue the problem's code
    program_template: str = PROGRAM_TEMPLATE
    test_template: str = TEST_TEMPLATE
    completion_format: str = "fenced"  # fenced | code (instruct style); complete style stores the raw continuation
    pair_format: str = "auto"  # auto | chat | plain
    timeout: float = 2.0  # seconds per test in the sandbox
    workers: int | None = None  # sandbox workers (default: all cores)
    d: float = DAMPING
    iterations: int = ITERATIONS
    lam: float = LAM  # λ of Diff (assumption: the paper does not publish it)
    max_pairs: int = 1  # pairs per problem
    unit: str = "line"  # common prefix/suffix granularity: line | char
    seed: int = 0
    shard: str = ""  # "i/N"
    batch_problems: int = 16  # problems per generation call
    parquet: bool = False  # also write pairs.parquet (TRL's DPOTrainer and the Hub read it)
    progress: bool = True

    def check(self) -> None:
        """Raise ValueError naming the first invalid option."""
        rules = [
            (bool(self.out), "out: give an output directory"),
            (self.k >= 1 and self.k_tests >= 1, "k and k_tests must be >= 1"),
            (self.tests_per_sample >= 0, "tests_per_sample must be >= 0 (0 = all)"),
            (self.prompt_style in ("instruct", "complete"), f"prompt_style {self.prompt_style!r}: instruct | complete"),
            (self.completion_format in ("fenced", "code"), f"completion_format {self.completion_format!r}: fenced | code"),
            (self.pair_format in ("auto", "chat", "plain"), f"pair_format {self.pair_format!r}: auto | chat | plain"),
            (self.unit in ("line", "char"), f"unit {self.unit!r}: line | char"),
            (self.timeout > 0, "timeout must be > 0"),
            (self.batch_problems >= 1, "batch_problems must be >= 1"),
            (self.max_pairs >= 0, "max_pairs must be >= 0"),
            ("{prompt}" in self.program_template, "program_template must contain {prompt}"),
            ("{prompt}" in self.test_template, "test_template must contain {prompt}"),
        ]
        for ok, message in rules:
            if not ok:
                raise ValueError(f"focused config: {message}")
        Shard.parse(self.shard)


# --------------------------------------------------------------------------------------------------
# one problem: prompts, extraction, record


@dataclass
class _Task:
    """A problem on its way through the pipeline."""

    problem: Problem
    seed: int
    program_prompt: str
    test_prompt: str
    programs: list[str] = field(default_factory=list)  # stored completions
    executables: list[str] = field(default_factory=list)  # what the sandbox runs
    tests: list[str] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)


def _task(problem: Problem, cfg: FocusedConfig) -> _Task:
    return _Task(problem, problem_seed(cfg.seed, problem.task_id),
                 program_prompt(problem, cfg.program_template, cfg.prompt_style), test_prompt(problem, cfg.test_template))


def _tree(code: str) -> str | None:
    try:
        return ast.dump(ast.parse(code))
    except (SyntaxError, ValueError):  # ValueError: null bytes
        return None


def add_programs(task: _Task, answers: Sequence[str], cfg: FocusedConfig) -> None:
    """Keep the distinct parsable programs of `answers` (first of each syntax tree)."""
    seen: set[str] = set()
    for answer in answers:
        if cfg.prompt_style == "complete":
            completion, program = answer, task.problem.complete(answer)
        else:
            code = extract_code(answer).strip("\n")
            completion = f"```python\n{code}\n```" if cfg.completion_format == "fenced" else code + "\n"
            program = task.problem.program_for(code + "\n")
        tree = _tree(program)
        reason = ("no_code" if not program.strip() or not answer.strip() else
                  "unparsable" if tree is None else "duplicate" if tree in seen else None)
        if reason:
            task.dropped[f"programs_{reason}"] = task.dropped.get(f"programs_{reason}", 0) + 1
            continue
        seen.add(tree)
        task.programs.append(completion)
        task.executables.append(program)


def add_tests(task: _Task, answers: Sequence[str], cfg: FocusedConfig) -> None:
    """Keep the first `tests_per_sample` asserts of each answer, without duplicates across answers."""
    seen: set[str] = set()
    for answer in answers:
        asserts = split_asserts(extract_code(answer))
        if not asserts:
            task.dropped["tests_no_assert"] = task.dropped.get("tests_no_assert", 0) + 1
        for a in asserts[: cfg.tests_per_sample or None]:
            key = ast.dump(ast.parse(a))
            if key in seen:
                task.dropped["tests_duplicate"] = task.dropped.get("tests_duplicate", 0) + 1
                continue
            seen.add(key)
            task.tests.append(a)


def _reason(verdict) -> str:
    if verdict.passed:
        return ""
    message = " ".join(verdict.message.split())
    return f"{verdict.status}: {message[:200]}" if message else verdict.status


def build_record(task: _Task, results: Sequence, cfg: FocusedConfig, chat: bool) -> dict:
    """The problem's record (module doc) from its sandbox results, pairs included."""
    record: dict[str, Any] = {"task_id": task.problem.task_id, "seed": task.seed, "prompt": task.program_prompt,
                              "programs": task.programs, "tests": task.tests, "dropped": task.dropped}
    if not task.programs or not task.tests:
        record["status"] = "no_programs" if not task.programs else "no_tests"
        record["pairs"] = []
        return record
    matrix = [[v.passed for v in r.verdicts] for r in results]
    sel = focused_selection(task.program_prompt, task.programs, matrix, task_id=task.problem.task_id, d=cfg.d,
                            iterations=cfg.iterations, lam=cfg.lam, max_pairs=cfg.max_pairs, unit=cfg.unit)
    pairs = [p.as_conversational() for p in sel.pairs] if chat else sel.pairs
    good = set(sel.correct)
    status = ("ok" if pairs else "no_correct" if not sel.ground_truth else
              "no_incorrect" if not sel.incorrect else "no_pairs")
    record.update(
        pass_matrix=matrix, reasons=[[_reason(v) for v in r.verdicts] for r in results],
        load_errors=[r.load_error for r in results], code_scores=sel.code_scores, test_scores=sel.test_scores,
        ranks=ranks(sel.code_scores), ground_truth_tests=sel.ground_truth,
        correct=[i in good for i in range(len(task.programs))], status=status, pairs=[p.to_json() for p in pairs],
    )  # fmt: skip
    return record


# --------------------------------------------------------------------------------------------------
# the run


def uses_chat(backend: Any, cfg: FocusedConfig) -> bool:
    """Whether pairs are conversational (`pair_format`; a base model continuing code: plain)."""
    return cfg.prompt_style != "complete" and chat_pairs(backend, cfg.pair_format)


def sample(backend: Any, tasks: list[_Task], cfg: FocusedConfig) -> None:
    """Sample and extract programs and tests for a batch of tasks (one call per kind)."""
    stop = COMPLETE_STOP if cfg.prompt_style == "complete" else None
    programs = backend.generate([t.program_prompt for t in tasks], n=cfg.k, temperature=cfg.temperature,
                                top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens, stop=stop,
                                seed=[t.seed for t in tasks])
    tests = backend.generate([t.test_prompt for t in tasks], n=cfg.k_tests, temperature=cfg.temperature,
                             top_p=cfg.top_p, max_new_tokens=cfg.test_max_new_tokens,
                             seed=[problem_seed(cfg.seed, t.problem.task_id, "tests") for t in tasks])
    for task, p, t in zip(tasks, programs, tests):
        add_programs(task, p, cfg)
        add_tests(task, t, cfg)


def execute(pool: Any, tasks: list[_Task], cfg: FocusedConfig) -> list[list]:
    """Sandbox results of every program of every task on all of its tests: [task][program]."""
    from focalpo.sandbox import AssertTest, Job

    jobs, owner = [], []
    for n, task in enumerate(tasks):
        if not task.programs or not task.tests:
            continue
        tests = [AssertTest(f"t{j}", code=a, time_limit=cfg.timeout) for j, a in enumerate(task.tests)]
        for program in task.executables:
            jobs.append(Job(program, tests))
            owner.append(n)
    results: list[list] = [[] for _ in tasks]
    for n, r in zip(owner, pool.map(jobs)):
        results[n].append(r)
    return results


def run_focused(cfg: FocusedConfig, *, resume: bool = False, overwrite: bool = False, backend: Any = None,
                problems: Sequence[Problem] | None = None) -> dict:
    """Run (or resume) the pipeline; returns the summary of every record in `cfg.out` (module doc).

    `backend` / `problems` replace the config's (tests, or callers holding a loaded model).
    """
    import dataclasses

    from focalpo.sandbox import ExecPool, Limits

    cfg.check()
    shard = Shard.parse(cfg.shard)
    problems = list(problems) if problems is not None else load_benchmark(
        cfg.benchmark, data_source(cfg.problems, cfg.split, cfg.columns), limit=cfg.limit, task_ids=cfg.task_ids,
        since=cfg.since, until=cfg.until)
    check_unique_ids(p.task_id for p in problems)
    config = {"pipeline": "focused", **dataclasses.asdict(cfg)}
    with RunDir(cfg.out, config, resume=resume, overwrite=overwrite, free_keys=FREE_KEYS,
                derived=DERIVED) as run:
        owned = [p for p in problems if shard.owns(p.task_id)]
        todo = [p for p in owned if p.task_id not in run.done]
        if todo:
            backend = backend if backend is not None else backend_from_config(cfg)
            chat = uses_chat(backend, cfg)
            limits = Limits(test_time=cfg.timeout)
            bar = progress_bar(cfg.progress, len(owned), len(owned) - len(todo), desc="focused")
            with ExecPool(workers=cfg.workers, limits=limits) as pool, ThreadPoolExecutor(1) as runner:
                pending = None  # (tasks, future): the sandbox runs batch b while batch b+1 is sampled
                try:
                    for start in range(0, len(todo), cfg.batch_problems):
                        tasks = [_task(p, cfg) for p in todo[start : start + cfg.batch_problems]]
                        sample(backend, tasks, cfg)
                        if pending:
                            done, pending = pending, None
                            _finish(run, *done, cfg, chat, bar)
                        pending = (tasks, runner.submit(execute, pool, tasks, cfg))
                finally:  # a failed sampling call still records the batch already executed
                    if pending:
                        _finish(run, *pending, cfg, chat, bar)
            if bar is not None:
                bar.close()
        return write_outputs(cfg.out, run.records(), config)


def _finish(run: RunDir, tasks: list[_Task], future, cfg: FocusedConfig, chat: bool, bar) -> None:
    for task, results in zip(tasks, future.result()):
        record = build_record(task, results, cfg, chat)
        run.append(record)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(pairs=len(record["pairs"]), refresh=False)


# --------------------------------------------------------------------------------------------------
# outputs


def write_outputs(out: str, records: Sequence[dict], config: dict) -> dict:
    """Rewrite `pairs.jsonl` (+ `pairs.parquet` with `parquet`), `summary.json` and the dataset card
    `README.md` in `out` from the records; returns the summary."""
    from pathlib import Path

    data_file = write_pair_files(out, [p for r in records for p in r["pairs"]], config)
    result = summarize(records)
    result["config"] = {k: config.get(k) for k in ("benchmark", "problems", "backend", "model", "k", "k_tests",
                                                     "temperature", "lam", "max_pairs", "unit", "seed")}
    write_json(Path(out) / SUMMARY_FILE, result)
    write_card(out, pipeline="focused", config=config, summary=result, data_file=data_file)
    return result


def summarize(records: Sequence[dict]) -> dict:
    """The run summary: counts, matrix density, share of problems with a correct program, mid lengths."""
    ran = [r for r in records if "pass_matrix" in r]
    cells = [x for r in ran for row in r["pass_matrix"] for x in row]
    pairs = [p for r in records for p in r["pairs"]]
    statuses: dict[str, int] = {}
    for r in records:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    dropped: dict[str, int] = {}
    for r in records:
        for k, v in r["dropped"].items():
            dropped[k] = dropped.get(k, 0) + v
    return {
        "problems": len(records),
        "programs": sum(len(r["programs"]) for r in records),
        "tests": sum(len(r["tests"]) for r in records),
        "matrix_density": sum(cells) / len(cells) if cells else 0.0,
        # the top-ranked program passes >= 1 test: the ground truth, hence "correct", is not vacuous
        "with_correct": sum(1 for r in ran if r["ground_truth_tests"]),
        "with_correct_share": sum(1 for r in ran if r["ground_truth_tests"]) / len(records) if records else 0.0,
        "with_pair": sum(1 for r in records if r["pairs"]),
        "pairs": len(pairs),
        "status": dict(sorted(statuses.items())),
        "dropped": dict(sorted(dropped.items())),
        **_mid_lengths(pairs),
    }


def _mid_lengths(pairs: Sequence[dict]) -> dict:
    """Mean chosen / rejected middle and whole lengths in characters, and the middle's share."""
    from focalpo.pairs import completion_text

    out: dict[str, float] = {}
    for side, end_key in (("chosen", "chosen_suffix_start"), ("rejected", "rejected_suffix_start")):
        mids = [p[end_key] - p["prefix_len"] for p in pairs]
        wholes = [len(completion_text(p[side])) for p in pairs]
        out[f"mean_{side}_mid_chars"] = sum(mids) / len(mids) if mids else 0.0
        out[f"mean_{side}_chars"] = sum(wholes) / len(wholes) if wholes else 0.0
        out[f"{side}_mid_share"] = sum(mids) / sum(wholes) if sum(wholes) else 0.0
    return out
