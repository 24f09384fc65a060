"""Sample `n` answers per benchmark problem and write them as evalplus-format samples (`codegen`).

    focalpo sample --benchmark humaneval+ --backend hf --model runs/t --n 1 --temperature 0 --out greedy.jsonl
    focalpo sample --benchmark jsonl --problems heldout.jsonl --backend openai --model M \\
        --base-url http://localhost:8000/v1 --n 10 --temperature 0.8 --out s.jsonl
    focalpo eval --benchmark jsonl --data heldout.jsonl --samples s.jsonl      # pass@1, pass@10

    from focalpo.eval.sample import SampleConfig, run_sample
    run_sample(SampleConfig(benchmark="mbpp+", backend="hf", model="runs/t", out="greedy.jsonl"))

Prompts are exactly the program prompts of `focalpo focused` (`focalpo.prompts.program_prompt`:
`program_template` for `prompt_style="instruct"`, the problem's code prefix for "complete"), and
each problem samples from its own seed `problem_seed(seed, task_id)` (the seed focused gives its
programs), so its samples do not depend on batching, `limit` or restarts.

Output `out` (JSONL, one line per sample, the problem's samples consecutive, in `index` order):
    {"task_id": ..., "solution": <extracted code>, "raw": <model text>, "index": i}     # instruct
    {"task_id": ..., "completion": <raw continuation>, "raw": ..., "index": i}         # complete
`focalpo eval` (and evalplus) run `solution` as a whole program and `completion` after the
problem's code prefix; eval numbers samples by their position within the task, not by `index`.
Eval extracts the fenced code of `solution` again, so an answer whose code holds a fence itself
(markdown in a string) is stored whole as its `solution`.
The resolved config is written beside it as `<stem>.sample_config.json`. With `parquet=True`
(`--parquet`) a parquet copy of the finished file is written beside it as `<stem>.parquet` (same rows
and columns; `datasets.load_dataset("parquet", ...)`, the Hub and `focalpo eval --samples` read it);
the JSONL stays the file that is appended to and resumed, and any run or merge that changes it
rewrites the copy (or removes it, when run without `--parquet`).

Sharded: `shard="i/N"` (`--shard i/N`) samples only the problems whose task-id hash falls in shard i
(`focalpo.runs.Shard`), each problem from its own seed as always, so the shards' files, joined by
`focalpo merge A.jsonl B.jsonl --out all.jsonl` (`merge_samples`), equal the unsharded run's file.

Resumable: lines are appended (`focalpo.io.AppendLog`, fsynced) as each batch of problems is
sampled. `resume=True` keeps the problems whose `n` samples are all there, rewrites the file
atomically without the partial ones (a kill mid-problem), and samples the rest; a config that
differs from the stored one (but for `FREE_KEYS`) is refused. Without `resume` or `overwrite` an
existing `out` is refused.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from focalpo.datasets_io import data_source
from focalpo.extract import extract_code
from focalpo.generate.base import backend_from_config
from focalpo.io import AppendLog, atomic_path, cut_torn_tail, iter_json_lines, progress_bar, write_json
from focalpo.problems.registry import load_benchmark
from focalpo.problems.types import Problem
from focalpo.prompts import COMPLETE_STOP, PROGRAM_TEMPLATE, program_prompt
from focalpo.runs import Shard, check_unique_ids, config_diff, missing_shards, problem_seed

# options that may change between a run and its --resume: they change no sample
FREE_KEYS = ("progress", "batch_problems", "limit", "base_url", "out", "resume", "overwrite", "parquet")


@dataclass
class SampleConfig:
    """Options of one `focalpo sample` run (module doc; `focalpo sample --help`)."""

    out: str = ""  # samples JSONL
    parquet: bool = False  # also write <stem>.parquet, a copy of `out`'s rows, when sampling completes
    benchmark: str = "jsonl"  # a focalpo.problems loader: humaneval+, mbpp+, jsonl, ...
    problems: str | None = None  # the loader's file (default: the benchmark's bundled copy)
    split: str | None = None  # dataset split of `problems` (Hub id, DatasetDict directory)
    columns: dict = field(default_factory=dict)  # loader field -> column of `problems`
    task_ids: str | None = None  # file of task ids (one per line): only these problems
    since: str | None = None  # YYYY-MM-DD: only problems whose contest_date is on or after (LiveCodeBench)
    until: str | None = None  # YYYY-MM-DD: ... on or before
    limit: int | None = None  # only the first N problems
    backend: str = "hf"  # focalpo.generate backend: hf, openai, scripted
    model: str = ""
    base_url: str | None = None  # openai backend: server URL up to /v1
    backend_options: dict = field(default_factory=dict)  # extra keyword options of the backend
    n: int = 1  # samples per problem
    temperature: float = 0.0  # 0 = greedy (pass@1); sample at e.g. 0.8 for pass@k
    top_p: float = 1.0
    max_new_tokens: int = 512
    prompt_style: str = "instruct"  # instruct: program_template; complete: continue the code prefix
    program_template: str = PROGRAM_TEMPLATE  # fields {prompt}, {entry_point}
    seed: int = 0
    batch_problems: int = 16  # problems per generation call
    shard: str = ""  # "i/N": sample the problems of the i-th of N shards (`focalpo merge` joins the files)
    overwrite: bool = False
    resume: bool = False
    progress: bool = True

    def check(self) -> None:
        """Raise ValueError naming the first invalid option."""
        rules = [
            (bool(self.out), "out: give an output file"),
            (not self.out.endswith(".gz"), f"out {self.out!r}: samples are appended, give a plain .jsonl"),
            (not self.out.endswith(".parquet"), f"out {self.out!r}: samples are appended to a JSONL file; give "
             "s.jsonl and --parquet for a parquet copy beside it"),
            (self.n >= 1, f"n must be >= 1, got {self.n}"),
            (self.temperature >= 0, f"temperature must be >= 0, got {self.temperature}"),
            (self.max_new_tokens >= 1, f"max_new_tokens must be >= 1, got {self.max_new_tokens}"),
            (self.prompt_style in ("instruct", "complete"), f"prompt_style {self.prompt_style!r}: instruct | complete"),
            (self.batch_problems >= 1, "batch_problems must be >= 1"),
            ("{prompt}" in self.program_template, "program_template must contain {prompt}"),
            (not (self.resume and self.overwrite), "pass either --resume or --overwrite, not both"),
        ]
        for ok, message in rules:
            if not ok:
                raise ValueError(f"sample config: {message}")
        Shard.parse(self.shard)


def config_path(out: str | Path) -> Path:
    """Where the resolved config of the samples file `out` is written: `<stem>.sample_config.json`."""
    p = Path(out)
    return p.with_name(p.name.removesuffix(".jsonl") + ".sample_config.json")


def parquet_path(out: str | Path) -> Path:
    """Where the parquet copy of the samples file `out` is written (`parquet`): `<stem>.parquet`."""
    p = Path(out)
    return p.with_name(p.name.removesuffix(".jsonl") + ".parquet")


def write_parquet_copy(out: str | Path) -> Path | None:
    """The rows of the samples file `out` as parquet at `parquet_path(out)` (atomic): the columns of its
    lines, loadable by `datasets.load_dataset("parquet", ...)` and `focalpo eval --samples`. None for a
    file without samples (a shard owning no problem): Arrow cannot load a parquet file without rows."""
    from focalpo.datasets_io import write_parquet

    rows = [row for _, row in iter_json_lines(out)] if Path(out).exists() else []
    if not rows:
        return None
    target = parquet_path(out)
    write_parquet(target, rows)
    return target


def _claim_parquet(out: str | Path, want: bool, overwrite: bool) -> None:
    """Before `out` changes: remove the parquet copy an earlier run of `out` wrote (it would disagree
    with the new samples); refuse to replace a parquet file there that no run wrote, unless `overwrite`."""
    target, stored = parquet_path(out), config_path(out)
    if not target.exists():
        return
    if stored.is_file() and json.loads(stored.read_text(encoding="utf-8")).get("parquet"):
        target.unlink()
    elif want and not overwrite:
        raise FileExistsError(f"{target} exists and is no parquet copy of {out}; move it, or pass --overwrite")


def sample_records(problem: Problem, answers: Sequence[str], prompt_style: str) -> list[dict]:
    """The sample lines of one problem's answers (module doc)."""
    if prompt_style == "complete":
        return [{"task_id": problem.task_id, "completion": answer, "raw": answer, "index": i}
                for i, answer in enumerate(answers)]
    return [{"task_id": problem.task_id, "solution": _solution(answer), "raw": answer, "index": i}
            for i, answer in enumerate(answers)]


def _solution(answer: str) -> str:
    """The answer's code, as `focalpo eval` will read it back.

    Eval extracts the fenced code of `solution` again; code that itself holds a fence (a markdown
    string) would lose all but that inner block, so such answers are stored whole: their
    extraction is then the code.
    """
    code = extract_code(answer)
    return code if extract_code(code) == code else answer


def complete_tasks(path: Path, n: int) -> set[str]:
    """Task ids with all `n` samples in `path`; the file is rewritten without the other tasks' lines."""
    lines: list[tuple[str, int, str]] = []  # (task_id, index, line)
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: invalid JSON: {e.msg} (column {e.colno})") from None
            if not isinstance(row, dict) or not isinstance(row.get("task_id"), str) or not isinstance(row.get("index"), int):
                raise ValueError(f"{path}:{lineno}: field 'task_id'/'index': not a sample line of focalpo sample")
            lines.append((row["task_id"], row["index"], line))
    indices: dict[str, list[int]] = {}
    for task_id, index, _ in lines:
        indices.setdefault(task_id, []).append(index)
    done = {t for t, ix in indices.items() if ix == list(range(n))}
    if len(done) < len(indices):  # a kill mid-problem: drop its partial samples, they are re-sampled
        with atomic_path(path) as tmp:
            tmp.write_text("".join(line for t, _, line in lines if t in done), encoding="utf-8")
    return done


def _prepare_out(cfg: SampleConfig, config: dict) -> set[str]:
    """Apply overwrite/resume to `cfg.out` (and to its parquet copy); returns the task ids already complete.
    Everything that can refuse is checked before anything is changed."""
    out, stored = Path(cfg.out), config_path(cfg.out)
    if out.exists() and not (cfg.resume or cfg.overwrite):
        raise FileExistsError(f"{out} exists; pass --resume to continue it or --overwrite to start afresh")
    if out.exists() and cfg.resume and stored.exists():
        old = json.loads(stored.read_text(encoding="utf-8"))
        diff = config_diff(old, config, FREE_KEYS)
        if diff:
            raise ValueError(f"{stored}: --resume with a different config ({'; '.join(diff)}); "
                             "use the same options, or a new --out")
    _claim_parquet(out, cfg.parquet, cfg.overwrite)
    done: set[str] = set()
    if out.exists() and cfg.overwrite:
        out.unlink()
    elif out.exists():
        cut_torn_tail(out)
        done = complete_tasks(out, cfg.n)
    write_json(stored, config)
    return done


def run_sample(cfg: SampleConfig, *, backend: Any = None, problems: Sequence[Problem] | None = None) -> dict:
    """Sample every problem not yet complete in `cfg.out`; returns counts and the out path.

    `backend` / `problems` replace the config's (tests, or callers holding a loaded model).
    """
    cfg.check()
    problems = list(problems) if problems is not None else load_benchmark(
        cfg.benchmark, data_source(cfg.problems, cfg.split, cfg.columns), limit=cfg.limit, task_ids=cfg.task_ids,
        since=cfg.since, until=cfg.until)
    check_unique_ids(p.task_id for p in problems)
    shard = Shard.parse(cfg.shard)
    problems = [p for p in problems if shard.owns(p.task_id)]
    config = json.loads(json.dumps(dataclasses.asdict(cfg)))
    done = _prepare_out(cfg, config)
    Path(cfg.out).touch()  # a shard that owns no problem still leaves its (empty) file for `focalpo merge`
    todo = [p for p in problems if p.task_id not in done]
    stop = COMPLETE_STOP if cfg.prompt_style == "complete" else None
    if todo:
        backend = backend if backend is not None else backend_from_config(cfg)
        bar = progress_bar(cfg.progress, len(problems), len(problems) - len(todo), desc="sample")
        with AppendLog(cfg.out, fsync=True) as log:
            for start in range(0, len(todo), cfg.batch_problems):
                batch = todo[start : start + cfg.batch_problems]
                answers = backend.generate([program_prompt(p, cfg.program_template, cfg.prompt_style) for p in batch], n=cfg.n,
                                           temperature=cfg.temperature, top_p=cfg.top_p,
                                           max_new_tokens=cfg.max_new_tokens, stop=stop,
                                           seed=[problem_seed(cfg.seed, p.task_id) for p in batch])
                for problem, texts in zip(batch, answers):
                    for record in sample_records(problem, texts, cfg.prompt_style):
                        log.append(record)
                    if bar is not None:
                        bar.update(1)
        if bar is not None:
            bar.close()
    if cfg.parquet:
        write_parquet_copy(cfg.out)
    return {"out": cfg.out, "problems": len(problems), "sampled": len(todo), "skipped": len(problems) - len(todo),
            "samples_per_problem": cfg.n, "shard": cfg.shard}


def merge_samples(paths: Sequence[str | Path], out: str | Path, *, overwrite: bool = False) -> dict:
    """`focalpo merge` of the shards of one `focalpo sample` run: one samples file equal to the
    unsharded run's (problems in the problem file's order, each problem's samples in index order).

    The shards' configs (`<stem>.sample_config.json`) must agree but for the shard and the keys free
    on resume; a problem sampled by two shards, or with fewer than n samples, is an error naming the
    file; missing shards are reported (a partial merge is useful while shards still run). When a shard
    was sampled with `parquet`, the merged file gets its parquet copy too (`write_parquet_copy`). Returns
    {"samples", "problems", "missing_shards", "parquet" (the copy's path, or None)}.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("merge: give at least one samples file")
    out = Path(out)
    seen: set[Path] = set()
    for path in paths:
        if path.resolve() in seen:
            raise ValueError(f"merge: {path} is given twice")
        seen.add(path.resolve())
    if any(out.resolve() == p.resolve() for p in paths):
        raise ValueError(f"merge: the output {out} is one of the inputs")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    config: dict | None = None
    rows: dict[str, list[tuple[int, str]]] = {}
    owner: dict[str, Path] = {}
    shards: list[str] = []
    parquet = False  # a parquet copy of the merged file, when any shard wrote one of its own
    for path in paths:
        stored = config_path(path)
        if not stored.is_file():
            raise FileNotFoundError(f"{path}: not a `focalpo sample` output (no {stored.name} beside it)")
        this = json.loads(stored.read_text(encoding="utf-8"))
        shards.append(this.get("shard") or "0/1")
        parquet = parquet or bool(this.get("parquet"))
        if config is None:
            config = this
        else:
            diff = config_diff(config, this, (*FREE_KEYS, "shard"))
            if diff:
                raise ValueError(f"merge: {path} was sampled with a different config than {paths[0]}: {'; '.join(diff)}")
        for lineno, row in iter_json_lines(path):
            task_id, index = row.get("task_id"), row.get("index")
            if not isinstance(task_id, str) or not isinstance(index, int):
                raise ValueError(f"{path}:{lineno}: field 'task_id'/'index': not a sample line of focalpo sample")
            if owner.setdefault(task_id, path) != path:
                raise ValueError(f"{path}:{lineno}: field 'task_id': {task_id!r} also in {owner[task_id]}")
            rows.setdefault(task_id, []).append((index, json.dumps(row, ensure_ascii=False) + "\n"))
    assert config is not None
    for task_id, got in rows.items():
        if sorted(i for i, _ in got) != list(range(config["n"])):
            raise ValueError(f"{owner[task_id]}: task {task_id!r} has {len(got)} of {config['n']} samples; "
                             "finish that shard (--resume) before merging")
    try:  # the unsharded run's order: the problem file's (whole: `limit` counts after --task-ids/--since/--until)
        problems = load_benchmark(config["benchmark"], data_source(config["problems"], config.get("split"),
                                                                   config.get("columns")))
    except (FileNotFoundError, ValueError):  # problems given in Python, not by file: task-id order
        problems = []
    order = {p.task_id: i for i, p in enumerate(problems)}
    tasks = sorted(rows, key=lambda t: (order.get(t, len(order)), t))
    _claim_parquet(out, parquet, overwrite)
    with atomic_path(out) as tmp:
        tmp.write_text("".join(line for t in tasks for _, line in sorted(rows[t])), encoding="utf-8")
    write_json(config_path(out), {**config, "out": str(out), "shard": "", "parquet": parquet,
                                  "merged_from": [str(p) for p in paths]})
    copy = write_parquet_copy(out) if parquet else None
    return {"samples": sum(len(r) for r in rows.values()), "problems": len(rows), "missing_shards": missing_shards(shards),
            "parquet": None if copy is None else str(copy)}
