"""CodeFlow data (Target-DPO): iterative debugging with execution feedback -> LCS-localised pairs.

    focalpo codeflow --instructions tasks.jsonl --backend openai --model gpt-4o-mini \\
        --base-url https://api.openai.com/v1 --out runs/cf          # key from $OPENAI_API_KEY
    focalpo codeflow --benchmark mbpp+ --backend openai --model Qwen/Qwen2.5-Coder-32B-Instruct \\
        --base-url http://localhost:8000/v1 --out runs/cf            # a local vLLM server
    focalpo train --model PATH --data runs/cf/pairs.jsonl --scheme target-rpo --output runs/t

    from focalpo.pipelines.codeflow import CodeflowConfig, run_codeflow
    summary = run_codeflow(CodeflowConfig(instructions="tasks.jsonl", model="...", out="runs/cf"))

Subsets as on `eval`, `sample`, `focused` (`focalpo.problems.select`): `--task-ids FILE` keeps those
instructions or problems (an id the source lacks is an error naming the line); `--since`/`--until`
keep the benchmark problems whose contest_date lies in the window (`--benchmark` only).

Per problem (Target-DPO, arXiv 2503.02783, §3.1-3.2):
1. the teacher answers the instruction with a solution file and a test file in the paper's format
   (`<file>name.py</file>` + fenced python each, a `<json>` block; `codeflow_format`); answers
   that cannot be used are recorded with their reason (no code, unparsable, missing test file, ...);
2. the test file becomes one sandbox test per check (asserts, pytest-style functions, unittest
   methods) and runs against the solution module (importable under its file name);
3. on failure the error report (failing tests, exception, traceback tail) is sent back as the next
   user turn and the teacher answers with a fixed solution file (the tests stay fixed: chosen and
   rejected must be judged by the same tests); at most `max_iterations` (5) answers in all; every
   version is recorded with its verdicts; problems never fixed yield no pair;
4. pair: the final passing version (chosen) vs an earlier failing one (rejected: `random` (default,
   seeded per problem), `first` or `last`), D+/D- from `focalpo.localize.lcs_regions`;
5. rule filters (`filters.rule_filters`: D- only comments/blank, D- > 20 lines, > 2048 tokens,
   identical ASTs) and optionally the LLM judge, each counted in the summary; the passing
   solution's line coverage by its test file is measured with coverage.py in the sandbox.

Output (`out`, resumable and shardable like `focalpo focused`, `focalpo.runs`):
`records.jsonl` (one record per problem: every version, verdicts, feedback, filters, the pair),
and, rewritten from the records after every run, `pairs.jsonl` (pairs that pass every filter),
`summary.json` and `report.txt` (pass rate after each iteration, iteration histogram, filter
counts, error types of the rejected versions, coverage).
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from typing import Any, Sequence

from focalpo.datasets_io import data_source, iter_source_rows
from focalpo.generate.base import backend_from_config
from focalpo.io import progress_bar
from focalpo.pipelines import codeflow_format as fmt
from focalpo.pipelines.codeflow_report import DERIVED, write_outputs
from focalpo.pipelines.codeflow_tests import format_feedback, test_file_to_tests
from focalpo.pipelines.filters import MAX_REJECTED_LINES, MAX_TOKENS, judge_filter, rule_filters
from focalpo.pipelines.runner import FREE_KEYS, chat_pairs
from focalpo.problems.select import wanted_task_ids
from focalpo.prompts import FIX_TEMPLATE, JUDGE_TEMPLATE, TEACHER_TEMPLATE, render
from focalpo.runs import RunDir, Shard, check_unique_ids, problem_seed
from focalpo.sandbox.jobfiles import check_job_layout

REJECTED_CHOICES = ("random", "first", "last")


@dataclass
class CodeflowConfig:
    """Options of one `focalpo codeflow` run (module doc; `focalpo codeflow --help`)."""

    out: str = ""
    instructions: str | None = None  # JSONL: {"task_id": ..., "instruction": ...} per line
    benchmark: str = "jsonl"  # else: problems of a focalpo.problems loader (their instruction prompts)
    problems: str | None = None
    split: str | None = None  # dataset split of `instructions` / `problems` (Hub id, DatasetDict directory)
    columns: dict = field(default_factory=dict)  # field -> column of `instructions` / `problems` (instruction: query)
    task_ids: str | None = None  # file of task ids (one per line): only these instructions / problems
    since: str | None = None  # YYYY-MM-DD: only benchmark problems whose contest_date is on or after (LiveCodeBench)
    until: str | None = None  # YYYY-MM-DD: ... on or before
    limit: int | None = None  # only the first N (after task_ids / since / until)
    backend: str = "openai"  # the teacher: openai (hosted or vLLM), hf, scripted
    model: str = ""
    base_url: str | None = None
    backend_options: dict = field(default_factory=dict)
    max_iterations: int = 5  # Target-DPO: at most 5 rounds
    temperature: float = 0.7  # assumption: the paper does not state the teacher's sampling
    top_p: float = 1.0
    max_new_tokens: int = 2048
    teacher_template: str = TEACHER_TEMPLATE
    fix_template: str = FIX_TEMPLATE
    rejected: str = "random"  # random | first | last
    completion_format: str = "fenced"  # fenced | code
    pair_format: str = "auto"  # auto | chat | plain
    max_rejected_lines: int = MAX_REJECTED_LINES
    max_tokens: int = MAX_TOKENS
    tokenizer: str | None = None  # token rule: the trained model's tokenizer (id/path); None = the hf teacher's, else not run (reported)
    judge: bool = False  # the LLM-judge filter
    judge_model: str | None = None  # default: the teacher (same backend and options)
    judge_template: str = JUDGE_TEMPLATE
    coverage: bool = True
    timeout: float = 4.0  # seconds per test
    workers: int | None = None
    seed: int = 0
    shard: str = ""
    batch_problems: int = 16
    parquet: bool = False  # also write pairs.parquet (TRL's DPOTrainer and the Hub read it)
    progress: bool = True

    def check(self) -> None:
        rules = [
            (bool(self.out), "out: give an output directory"),
            (self.max_iterations >= 1, "max_iterations must be >= 1"),
            (self.rejected in REJECTED_CHOICES, f"rejected {self.rejected!r}: one of {REJECTED_CHOICES}"),
            (self.completion_format in ("fenced", "code"), f"completion_format {self.completion_format!r}: fenced | code"),
            (self.pair_format in ("auto", "chat", "plain"), f"pair_format {self.pair_format!r}: auto | chat | plain"),
            ("{instruction}" in self.teacher_template, "teacher_template must contain {instruction}"),
            ("{feedback}" in self.fix_template, "fix_template must contain {feedback}"),
            (self.timeout > 0 and self.batch_problems >= 1, "timeout must be > 0 and batch_problems >= 1"),
            (not (self.instructions and (self.since or self.until)), "since/until select benchmark problems by "
             "their contest_date (--benchmark); instruction rows have none"),
        ]
        for ok, message in rules:
            if not ok:
                raise ValueError(f"codeflow config: {message}")
        Shard.parse(self.shard)


@dataclass
class Instruction:
    task_id: str
    text: str


def load_instructions(cfg: CodeflowConfig) -> list[Instruction]:
    """`instructions` rows, or the problems of `benchmark` (instruct prompt, else prompt); those of the
    `task_ids` file (and, for a benchmark, in the `since`/`until` window: `focalpo.problems.select`), in
    their file's order; then the first `limit`."""
    if cfg.instructions:
        out = []
        source = data_source(cfg.instructions, cfg.split, cfg.columns)
        for n, (where, row) in enumerate(iter_source_rows(source, objects=False)):
            if not isinstance(row, dict):
                raise ValueError(f"{where}: expected a JSON object, got {type(row).__name__}")
            text = row.get("instruction", row.get("prompt"))
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"{where}: field 'instruction': a non-empty string is required")
            task_id = row.get("task_id", f"instruction/{n}")
            if not isinstance(task_id, str):
                raise ValueError(f"{where}: field 'task_id': must be a string")
            out.append(Instruction(task_id, text))
        if cfg.task_ids:
            keep = wanted_task_ids(cfg.task_ids, (i.task_id for i in out), f"a task_id of {cfg.instructions}")
            out = [i for i in out if i.task_id in keep]
    else:
        from focalpo.problems import load_benchmark

        out = [Instruction(p.task_id, p.instruct_prompt or p.prompt) for p in load_benchmark(
            cfg.benchmark, data_source(cfg.problems, cfg.split, cfg.columns), task_ids=cfg.task_ids,
            since=cfg.since, until=cfg.until)]
    return out[: cfg.limit] if cfg.limit is not None else out


# --------------------------------------------------------------------------------------------------
# one problem's debugging flow


@dataclass
class _Flow:
    """A problem on its way through the rounds."""

    item: Instruction
    messages: list[dict]
    answer: Any = None  # fmt.TeacherAnswer once the first answer parsed
    tests: list = field(default_factory=list)
    skipped_tests: list = field(default_factory=list)  # test names the conversion could not run
    versions: list[dict] = field(default_factory=list)
    status: str = ""  # "" while running; then passed_first | fixed | never_fixed | rejected | no_tests
    reason: str = ""
    solution: str = ""  # the current solution code

    @property
    def module(self) -> str:
        return self.answer.solution_name.removesuffix(".py")


def _teacher_turn(flow: _Flow, text: str, iteration: int) -> bool:
    """Take the teacher's answer of this round; True when there is a solution to run."""
    flow.messages.append({"role": "assistant", "content": text})
    try:
        if iteration == 0:
            flow.answer = fmt.parse_teacher_answer(text)
            try:  # the solution is imported under its file name: it may not shadow the harness
                check_job_layout(flow.module, {flow.answer.test_name: flow.answer.test_code})
            except ValueError as e:
                raise fmt.FormatError("bad_file_name", str(e)) from None
            flow.tests, flow.skipped_tests = test_file_to_tests(flow.answer.test_code, flow.module)
            if not flow.tests:
                flow.status, flow.reason = "no_tests", "the test file has no test to run"
                return False
            flow.solution = flow.answer.solution_code
        else:
            flow.solution = fmt.parse_fix_answer(text, flow.answer.solution_name)
    except fmt.FormatError as e:
        if iteration == 0:
            flow.status, flow.reason = "rejected", e.reason
            return False
        flow.versions.append({"iteration": iteration, "format_error": e.reason, "message": str(e)})
        flow.messages.append({"role": "user", "content": fmt.format_error_feedback(e)})
        return False
    return True


def _verdicts(result) -> list[dict]:
    return [{"name": v.name, "status": v.status, "message": v.message[:300]} for v in result.verdicts]


def _executed(flow: _Flow, result, iteration: int, cfg: CodeflowConfig) -> None:
    """Record the version the sandbox just judged; on failure queue the feedback turn."""
    from focalpo.eval.errors import error_type

    version: dict[str, Any] = {"iteration": iteration, "solution": flow.solution, "passed": result.passed,
                               "load_error": result.load_error, "verdicts": _verdicts(result)}
    if result.passed:
        version["coverage"] = result.coverage
        flow.status = "passed_first" if iteration == 0 else "fixed"
    else:
        first = result.first_failure()
        version["error_type"] = error_type(result.load_error or (first.message if first else ""),
                                           first.status if first and not result.load_error else "exception")
        version["feedback"] = format_feedback(result, flow.tests)
        flow.messages.append({"role": "user", "content": render(cfg.fix_template, feedback=version["feedback"])})
    flow.versions.append(version)


def run_rounds(backend: Any, pool: Any, flows: list[_Flow], cfg: CodeflowConfig) -> None:
    """Up to `max_iterations` rounds of teacher answers and sandbox runs for a batch of problems."""
    from focalpo.sandbox import Job

    active = list(flows)
    for iteration in range(cfg.max_iterations):
        if not active:
            break
        seeds = [problem_seed(cfg.seed, f.item.task_id, f"round{iteration}") for f in active]
        answers = backend.generate([list(f.messages) for f in active], n=1, temperature=cfg.temperature,
                                   top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens, seed=seeds)
        runnable = [f for f, (text, *_) in zip(active, answers) if _teacher_turn(f, text, iteration)]
        # the test file sits beside the solution module in the job's directory, as the teacher wrote them
        jobs = [Job(f.solution, f.tests, module=f.module, files={f.answer.test_name: f.answer.test_code},
                    coverage=cfg.coverage) for f in runnable]
        for flow, result in zip(runnable, pool.map(jobs)):
            _executed(flow, result, iteration, cfg)
        active = [f for f in active if not f.status]
    for f in active:
        f.status = "never_fixed"


# --------------------------------------------------------------------------------------------------
# pairs and records


def completion(code: str, cfg: CodeflowConfig) -> str:
    code = code.strip("\n")
    return f"```python\n{code}\n```" if cfg.completion_format == "fenced" else code + "\n"


def rejected_version(flow: _Flow, cfg: CodeflowConfig) -> dict | None:
    """The earlier failing version paired with the final one (`rejected` strategy), or None."""
    failed = [v for v in flow.versions if "solution" in v and not v["passed"]]
    if not failed:
        return None
    if cfg.rejected == "first":
        return failed[0]
    if cfg.rejected == "last":
        return failed[-1]
    return random.Random(problem_seed(cfg.seed, flow.item.task_id, "rejected")).choice(failed)


def candidate_pair(flow: _Flow, cfg: CodeflowConfig, chat: bool):
    """The localised pair of a fixed problem (None when it passed at once or was never fixed)."""
    from focalpo.localize import localize_pair

    if flow.status != "fixed":
        return None
    rejected = rejected_version(flow, cfg)
    if rejected is None:
        return None
    final = flow.versions[-1]
    meta = {"task_id": flow.item.task_id, "source": "codeflow", "chosen_iteration": final["iteration"],
            "rejected_iteration": rejected["iteration"], "rejected_error_type": rejected["error_type"],
            "rejected_strategy": cfg.rejected}
    pair = localize_pair(flow.item.text, completion(final["solution"], cfg), completion(rejected["solution"], cfg),
                         method="lcs", meta=meta)
    return pair.as_conversational() if chat else pair


def build_record(flow: _Flow, pair, filters: dict | None, judge: dict | None) -> dict:
    record: dict[str, Any] = {
        "task_id": flow.item.task_id, "instruction": flow.item.text, "status": flow.status, "reason": flow.reason,
        "iterations": len([m for m in flow.messages if m["role"] == "assistant"]), "versions": flow.versions,
        "pair": pair.to_json() if pair is not None else None, "filters": filters, "judge": judge,
    }  # fmt: skip
    if flow.status == "rejected":  # the answer itself, to see why it could not be used
        record["answer"] = next(m["content"] for m in flow.messages if m["role"] == "assistant")
    if flow.answer is not None:
        record.update(solution_file=flow.answer.solution_name, test_file=flow.answer.test_name,
                      test_code=flow.answer.test_code, packages=list(flow.answer.packages),
                      n_tests=len(flow.tests), skipped_tests=flow.skipped_tests)
    record["kept"] = pair is not None and not any((filters or {}).values()) and not (judge or {}).get("removed")
    return record


def token_filter_tokenizer(cfg: CodeflowConfig, backend: Any):
    """The tokenizer of the token-length rule: `tokenizer` (a path or hub id), else the hf teacher's."""
    if cfg.tokenizer:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(cfg.tokenizer)
    return getattr(backend, "tokenizer", None)


def _judge(judge_backend: Any, flows: Sequence[_Flow], pairs: Sequence, cfg: CodeflowConfig) -> list[dict | None]:
    out: list[dict | None] = [None] * len(flows)
    todo = [i for i, p in enumerate(pairs) if p is not None]
    items = [(flows[i].item.text, pairs[i].chosen_text, pairs[i].rejected_text) for i in todo]
    seeds = [problem_seed(cfg.seed, flows[i].item.task_id, "judge") for i in todo]
    for i, (removed, answer) in zip(todo, judge_filter(judge_backend, items, template=cfg.judge_template, seeds=seeds)):
        out[i] = {"removed": removed, "answer": answer[:200]}
    return out


# --------------------------------------------------------------------------------------------------
# the run


def run_codeflow(cfg: CodeflowConfig, *, resume: bool = False, overwrite: bool = False, backend: Any = None,
                 judge_backend: Any = None, tokenizer: Any = None,
                 instructions: Sequence[Instruction] | None = None) -> dict:
    """Run (or resume) the pipeline; returns the summary of every record in `cfg.out` (module doc).

    `backend`, `judge_backend`, `tokenizer` (of the token rule) and `instructions` replace the
    config's (tests, or callers holding loaded models).
    """
    from focalpo.sandbox import DEFAULT_PRELOAD, ExecPool, Limits

    cfg.check()
    shard = Shard.parse(cfg.shard)
    items = list(instructions) if instructions is not None else load_instructions(cfg)
    check_unique_ids(i.task_id for i in items)
    config = {"pipeline": "codeflow", **dataclasses.asdict(cfg)}
    with RunDir(cfg.out, config, resume=resume, overwrite=overwrite, free_keys=FREE_KEYS, derived=DERIVED) as run:
        owned = [i for i in items if shard.owns(i.task_id)]
        todo = [i for i in owned if i.task_id not in run.done]
        if todo:
            backend = backend if backend is not None else backend_from_config(cfg)
            if cfg.judge and judge_backend is None:
                judge_backend = (backend if not cfg.judge_model else
                                 backend_from_config(dataclasses.replace(cfg, model=cfg.judge_model)))
            if getattr(backend, "use_chat_template", True) is False:
                raise ValueError("codeflow needs a chat model (the teacher is told its errors in follow-up "
                                 "turns), but the hf model's tokenizer has no chat template")
            chat = chat_pairs(backend, cfg.pair_format)
            tokenizer = tokenizer if tokenizer is not None else token_filter_tokenizer(cfg, backend)
            bar = progress_bar(cfg.progress, len(owned), len(owned) - len(todo), desc="codeflow")
            # coverage.py is imported once per zygote, not once per job (~0.1 s each)
            preload = (*DEFAULT_PRELOAD, "coverage") if cfg.coverage else DEFAULT_PRELOAD
            with ExecPool(workers=cfg.workers, limits=Limits(test_time=cfg.timeout), preload=preload) as pool:
                for start in range(0, len(todo), cfg.batch_problems):
                    flows = [_Flow(i, [{"role": "user", "content": render(cfg.teacher_template, instruction=i.text)}])
                             for i in todo[start : start + cfg.batch_problems]]
                    run_rounds(backend, pool, flows, cfg)
                    pairs = [candidate_pair(f, cfg, chat) for f in flows]
                    judged = _judge(judge_backend, flows, pairs, cfg) if cfg.judge else [None] * len(flows)
                    for flow, pair, judge in zip(flows, pairs, judged):
                        filters = None if pair is None else rule_filters(
                            pair, tokenizer=tokenizer, max_rejected_lines=cfg.max_rejected_lines,
                            max_tokens=cfg.max_tokens)  # fmt: skip
                        run.append(build_record(flow, pair, filters, judge))
                        if bar is not None:
                            bar.update(1)
            if bar is not None:
                bar.close()
        return write_outputs(cfg.out, run.records(), config)
