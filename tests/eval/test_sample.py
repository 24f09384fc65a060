"""`focalpo sample`: exact sample files from a scripted backend, and their pass@k through `focalpo eval`.

Run: .venv/bin/python -m pytest tests/eval/test_sample.py -q
"""

from __future__ import annotations

import json

import pytest

from focalpo.cli import main
from focalpo.eval.sample import SampleConfig, config_path, parquet_path, run_sample
from focalpo.generate import get_backend
from focalpo.problems.jsonl import dump_jsonl
from focalpo.problems.types import Problem
from focalpo.prompts import PROGRAM_TEMPLATE, render
from focalpo.runs import problem_seed
from focalpo.sandbox.types import CallTest


def fenced(code: str) -> str:
    return f"Here it is:\n```python\n{code}\n```\nDone."


def call(name: str, fn: str, args: tuple, expected) -> CallTest:
    return CallTest(name=name, entry_point=fn, args=args, expected=expected)


ADD = Problem(task_id="toy/add", prompt="Write add(a, b) returning a + b.", entry_point="add", canonical_solution="",
              tests={"base": [call("b0", "add", (1, 2), 3), call("b1", "add", (0, 5), 5)]})
NEG = Problem(task_id="toy/neg", prompt="Write neg(x) returning -x.", entry_point="neg", canonical_solution="",
              tests={"base": [call("b0", "neg", (2,), -2)]})
SQ = Problem(task_id="toy/sq", prompt="def sq(x):\n    \"\"\"x squared\"\"\"\n", entry_point="sq", canonical_solution="",
             tests={"base": [call("b0", "sq", (3,), 9)]}, code_prefix="def sq(x):\n    \"\"\"x squared\"\"\"\n")

ADD_ANSWERS = [fenced("def add(a, b):\n    return a + b"), fenced("def add(a, b):\n    return a - b"),
               "def add(a, b):\n    return a * b\n"]  # right, wrong, wrong (no fence: the text is the code)
NEG_ANSWERS = [fenced("def neg(x):\n    return -x"), fenced("def neg(x):\n    return 0 - x")]  # cycled to n=3


def prompt_of(p: Problem) -> str:
    return render(PROGRAM_TEMPLATE, prompt=p.prompt, entry_point=f"the function `{p.entry_point}`")


def scripted():
    return get_backend("scripted", completions={prompt_of(ADD): ADD_ANSWERS, prompt_of(NEG): NEG_ANSWERS})


@pytest.fixture()
def data(tmp_path):
    path = tmp_path / "toy.jsonl"
    dump_jsonl([ADD, NEG, SQ], path)
    return path


def config(tmp_path, data, **kw) -> SampleConfig:
    base = dict(out=str(tmp_path / "s.jsonl"), benchmark="jsonl", problems=str(data), limit=2, backend="scripted",
                n=3, temperature=0.8, seed=7, batch_problems=1, progress=False)
    return SampleConfig(**{**base, **kw})


def lines(path) -> list[dict]:
    return [json.loads(line) for line in open(path, encoding="utf-8")]


EXPECTED = [
    {"task_id": "toy/add", "solution": "def add(a, b):\n    return a + b\n", "raw": ADD_ANSWERS[0], "index": 0},
    {"task_id": "toy/add", "solution": "def add(a, b):\n    return a - b\n", "raw": ADD_ANSWERS[1], "index": 1},
    {"task_id": "toy/add", "solution": "def add(a, b):\n    return a * b\n", "raw": ADD_ANSWERS[2], "index": 2},
    {"task_id": "toy/neg", "solution": "def neg(x):\n    return -x\n", "raw": NEG_ANSWERS[0], "index": 0},
    {"task_id": "toy/neg", "solution": "def neg(x):\n    return 0 - x\n", "raw": NEG_ANSWERS[1], "index": 1},
    {"task_id": "toy/neg", "solution": "def neg(x):\n    return -x\n", "raw": NEG_ANSWERS[0], "index": 2},
]


def test_instruct_samples_are_the_extracted_answers_with_each_problems_seed(tmp_path, data):
    backend = scripted()
    result = run_sample(config(tmp_path, data), backend=backend)
    assert result == {"out": str(tmp_path / "s.jsonl"), "problems": 2, "sampled": 2, "skipped": 0, "shard": "",
                      "samples_per_problem": 3}
    assert lines(tmp_path / "s.jsonl") == EXPECTED
    # batch_problems=1: one call per problem, focused's program prompt, the problem's own seed
    assert [(c["prompts"], c["seed"], c["n"], c["temperature"], c["stop"]) for c in backend.calls] == [
        ([prompt_of(ADD)], [problem_seed(7, "toy/add")], 3, 0.8, []),
        ([prompt_of(NEG)], [problem_seed(7, "toy/neg")], 3, 0.8, []),
    ]
    stored = json.loads(config_path(tmp_path / "s.jsonl").read_text())
    assert (stored["n"], stored["seed"], stored["prompt_style"]) == (3, 7, "instruct")


def test_code_holding_a_fence_is_stored_so_eval_extracts_the_same_code():
    from focalpo.eval.sample import sample_records
    from focalpo.extract import extract_code, program_from_sample

    code = 'def f():\n    s = """\n```python\nx = 1\n```\n"""\n    return s\n'
    answer = f"```python\n{code}```"
    assert extract_code(extract_code(answer)) == "x = 1\n"  # extraction is not idempotent here ...
    (record,) = sample_records(ADD, [answer], "instruct")
    assert record["solution"] == answer and program_from_sample(record, "") == code  # ... so the whole answer


def test_batching_does_not_change_the_seeds_or_the_file(tmp_path, data):
    one, two = scripted(), scripted()
    run_sample(config(tmp_path, data), backend=one)
    run_sample(config(tmp_path, data, out=str(tmp_path / "b.jsonl"), batch_problems=16), backend=two)
    assert (tmp_path / "b.jsonl").read_text() == (tmp_path / "s.jsonl").read_text()
    assert [s for c in two.calls for s in c["seed"]] == [s for c in one.calls for s in c["seed"]]


def test_eval_reports_the_hand_computed_pass_at_k(tmp_path, data, capsys):
    run_sample(config(tmp_path, data), backend=scripted())
    out = tmp_path / "results.json"
    assert main(["eval", "--benchmark", "jsonl", "--data", str(data), "--samples", str(tmp_path / "s.jsonl"),
                 "--out", str(out), "--workers", "2", "--no-progress"]) == 0
    res = json.loads(out.read_text())
    assert [(r["task_id"], r["sample_index"], r["status"]) for r in res["samples"]] == [
        ("toy/add", 0, "pass"), ("toy/add", 1, "fail"), ("toy/add", 2, "fail"),
        ("toy/neg", 0, "pass"), ("toy/neg", 1, "pass"), ("toy/neg", 2, "pass"),
    ]
    # add: c=1 of n=3 -> pass@1 = 1/3, pass@3 = 1; neg: 3 of 3 -> 1, 1
    assert res["summary"]["base"]["pass@1"] == pytest.approx((1 / 3 + 1) / 2)
    assert "66.7%" in capsys.readouterr().out


def test_resume_resamples_only_the_partial_problem(tmp_path, data):
    cfg = config(tmp_path, data)
    run_sample(cfg, backend=scripted())
    path = tmp_path / "s.jsonl"
    full = path.read_text()
    kept = full.splitlines(keepends=True)[:4]  # all of toy/add, 1 of 3 toy/neg samples ...
    path.write_text("".join(kept) + '{"task_id": "toy/neg", "sol')  # ... and a line torn by a kill
    backend = scripted()
    with pytest.warns(UserWarning, match="torn"):
        result = run_sample(config(tmp_path, data, resume=True, batch_problems=4), backend=backend)
    assert (result["sampled"], result["skipped"]) == (1, 1)
    assert [c["prompts"] for c in backend.calls] == [[prompt_of(NEG)]]
    assert path.read_text() == full  # exactly n lines per problem, none duplicated
    # a finished file resumes to a no-op
    again = scripted()
    assert run_sample(config(tmp_path, data, resume=True), backend=again)["sampled"] == 0
    assert again.calls == [] and path.read_text() == full


def test_existing_out_is_refused_without_resume_or_overwrite(tmp_path, data):
    run_sample(config(tmp_path, data), backend=scripted())
    with pytest.raises(FileExistsError, match="--resume.*--overwrite"):
        run_sample(config(tmp_path, data), backend=scripted())
    with pytest.raises(ValueError, match="temperature: 0.8 -> 0.0"):
        run_sample(config(tmp_path, data, resume=True, temperature=0.0), backend=scripted())
    with pytest.raises(ValueError, match="not both"):
        run_sample(config(tmp_path, data, resume=True, overwrite=True), backend=scripted())
    backend = get_backend("scripted", default=[fenced("def add(a, b):\n    return a + b")])
    run_sample(config(tmp_path, data, overwrite=True, n=1, limit=1), backend=backend)
    assert [r["index"] for r in lines(tmp_path / "s.jsonl")] == [0]


def test_complete_style_writes_the_raw_continuation(tmp_path, data):
    answers = ["    return x * x\nprint(sq(3))\n", "    return x + x\n"]  # the first is cut at "\nprint("
    backend = get_backend("scripted", completions={SQ.code_prefix: answers})
    cfg = config(tmp_path, data, prompt_style="complete", n=2)
    run_sample(cfg, backend=backend, problems=[SQ])
    assert lines(tmp_path / "s.jsonl") == [
        {"task_id": "toy/sq", "completion": "    return x * x", "raw": "    return x * x", "index": 0},
        {"task_id": "toy/sq", "completion": "    return x + x\n", "raw": "    return x + x\n", "index": 1},
    ]
    assert backend.calls[0]["prompts"] == [SQ.code_prefix] and "\nprint(" in backend.calls[0]["stop"]
    out = tmp_path / "results.json"
    assert main(["eval", "--benchmark", "jsonl", "--data", str(data), "--samples", str(tmp_path / "s.jsonl"),
                 "--out", str(out), "--workers", "2", "--no-progress"]) == 0
    res = json.loads(out.read_text())
    assert [r["status"] for r in res["samples"]] == ["pass", "fail"]
    assert res["summary"]["base"]["pass@1"] == pytest.approx(1 / 2)


def test_cli_samples_with_the_scripted_backend(tmp_path, data, capsys):
    out = tmp_path / "cli.jsonl"
    default = json.dumps([fenced("def f():\n    return 1")])
    argv = ["sample", "--benchmark", "jsonl", "--problems", str(data), "--backend", "scripted",
            "--backend-option", f"default={default}", "--n", "2", "--out", str(out), "--no-progress", "seed=3"]
    assert main(argv) == 0
    rows = lines(out)
    assert [(r["task_id"], r["index"]) for r in rows] == [(t, i) for t in ("toy/add", "toy/neg", "toy/sq") for i in (0, 1)]
    assert {r["solution"] for r in rows} == {"def f():\n    return 1\n"}
    assert f"--samples {out}" in capsys.readouterr().out
    stored = json.loads(config_path(out).read_text())
    assert (stored["n"], stored["seed"], stored["temperature"], stored["backend_options"]) == (
        2, 3, 0.0, {"default": [fenced("def f():\n    return 1")]})
    assert main(argv) == 2  # an existing --out is refused with a one-line error
    assert "--resume" in capsys.readouterr().err
    assert main([*argv, "--resume"]) == 0 and lines(out) == rows


def test_cli_task_ids_sample_only_those_problems_from_a_parquet_file(tmp_path, data, capsys):
    from datasets import load_dataset

    parquet = tmp_path / "toy.parquet"
    load_dataset("json", data_files=str(data), split="train").to_parquet(str(parquet))
    ids = tmp_path / "ids.txt"
    ids.write_text("toy/sq\ntoy/add\n")
    out = tmp_path / "sub.jsonl"
    default = json.dumps([fenced("def f():\n    return 1")])
    assert main(["sample", "--benchmark", "jsonl", "--problems", str(parquet), "--task-ids", str(ids), "--backend",
                 "scripted", "--backend-option", f"default={default}", "--out", str(out), "--no-progress"]) == 0
    assert [r["task_id"] for r in lines(out)] == ["toy/add", "toy/sq"]  # the file's order
    assert json.loads(config_path(out).read_text())["task_ids"] == str(ids)


# --------------------------------------------------------------------------------------------------
# the parquet copy: `focalpo sample --parquet`


def parquet_rows(path) -> list[dict]:
    from datasets import load_dataset

    return load_dataset("parquet", data_files=str(path), split="train").to_list()


def test_parquet_copy_equals_the_jsonl_rows_and_evaluates_the_same(tmp_path, data):
    run_sample(config(tmp_path, data, parquet=True), backend=scripted())
    copy = tmp_path / "s.parquet"
    assert parquet_path(tmp_path / "s.jsonl") == copy
    assert parquet_rows(copy) == lines(tmp_path / "s.jsonl") == EXPECTED
    results = []
    for samples in ("s.jsonl", "s.parquet"):
        out = tmp_path / f"{samples}.results.json"
        assert main(["eval", "--benchmark", "jsonl", "--data", str(data), "--samples", str(tmp_path / samples),
                     "--out", str(out), "--workers", "2", "--no-progress"]) == 0
        result = json.loads(out.read_text())
        results.append((result["samples"], result["summary"]))
    assert results[0] == results[1]
    assert results[0][1]["base"]["pass@1"] == pytest.approx((1 / 3 + 1) / 2)  # add 1 of 3, neg 3 of 3


def test_parquet_copy_follows_the_jsonl_and_a_foreign_file_is_kept(tmp_path, data):
    path, copy = tmp_path / "s.jsonl", tmp_path / "s.parquet"
    run_sample(config(tmp_path, data, parquet=True), backend=scripted())
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:4]))  # killed in toy/neg
    run_sample(config(tmp_path, data, parquet=True, resume=True), backend=scripted())
    assert parquet_rows(copy) == lines(path) == EXPECTED  # rewritten from the finished file
    run_sample(config(tmp_path, data, resume=True), backend=scripted())  # without --parquet ...
    assert not copy.exists()  # ... the copy that would go stale is removed

    other, foreign = tmp_path / "t.jsonl", tmp_path / "t.parquet"
    foreign.write_bytes(b"someone else's parquet")
    with pytest.raises(FileExistsError, match="t.parquet exists and is no parquet copy of .*t.jsonl"):
        run_sample(config(tmp_path, data, out=str(other), parquet=True), backend=scripted())
    assert foreign.read_bytes() == b"someone else's parquet" and not other.exists()
    run_sample(config(tmp_path, data, out=str(other)), backend=scripted())  # not asked for: left alone
    assert foreign.read_bytes() == b"someone else's parquet"
    run_sample(config(tmp_path, data, out=str(other), parquet=True, overwrite=True), backend=scripted())
    assert parquet_rows(foreign) == EXPECTED
    with pytest.raises(ValueError, match="--parquet for a parquet copy"):
        run_sample(config(tmp_path, data, out=str(tmp_path / "s2.parquet")), backend=scripted())


def test_merged_shards_of_a_subset_keep_the_unsharded_order_and_get_a_parquet_copy(tmp_path, capsys):
    import dataclasses

    problems = tmp_path / "four.jsonl"
    dump_jsonl([ADD, NEG, SQ, dataclasses.replace(SQ, task_id="toy/abs")], problems)
    ids = tmp_path / "ids.txt"
    ids.write_text("toy/abs\ntoy/sq\n")
    default = json.dumps([fenced("def sq(x):\n    return x * x"), fenced("def sq(x):\n    return x")])

    def sample(out, *extra):
        return main(["sample", "--benchmark", "jsonl", "--problems", str(problems), "--task-ids", str(ids),
                     "--limit", "2", "--n", "2", "--backend", "scripted", "--backend-option", f"default={default}",
                     "--out", str(out), "--no-progress", *extra])

    whole, shards, merged = tmp_path / "all.jsonl", [tmp_path / f"s{i}.jsonl" for i in range(2)], tmp_path / "m.jsonl"
    assert sample(whole) == 0
    assert [r["task_id"] for r in lines(whole)] == ["toy/sq", "toy/sq", "toy/abs", "toy/abs"]  # the file's order
    for i, shard in enumerate(shards):
        assert sample(shard, "--shard", f"{i}/2", "--parquet") == 0
    # shard 1 owns neither problem: an empty samples file (merge needs it) and no parquet copy (Arrow
    # cannot load one without rows)
    assert [len(lines(s)) for s in shards] == [4, 0] and not (tmp_path / "s1.parquet").exists()
    assert f"into {shards[0]} (and {tmp_path / 's0.parquet'})" in capsys.readouterr().out
    assert main(["merge", *map(str, shards), "--out", str(merged)]) == 0
    assert merged.read_bytes() == whole.read_bytes()  # not re-sorted by task id past --limit's first problems
    assert parquet_rows(tmp_path / "m.parquet") == lines(merged)
    assert f"into {merged} (and {tmp_path / 'm.parquet'})" in capsys.readouterr().out
    assert json.loads(config_path(merged).read_text())["parquet"] is True


# --------------------------------------------------------------------------------------------------
# shards: `focalpo sample --shard i/N`, then `focalpo merge`


@pytest.fixture(scope="module")
def tiny_hf(tmp_path_factory):
    """A tiny Llama (random weights) behind the hf backend, and a file of 7 toy problems."""
    from generate_helpers import save_tiny_llama

    from focalpo.toyworld.tasks import generate_tasks, write_tasks

    root = tmp_path_factory.mktemp("shards")
    problems = root / "tasks.jsonl"
    write_tasks(problems, generate_tasks(7, seed=3))
    model = save_tiny_llama(root / "model")
    return get_backend("hf", model=str(model), batch_size=4, device="cpu", dtype="float32"), problems


def test_shards_merge_to_the_unsharded_file(tiny_hf, tmp_path, capsys):
    backend, problems = tiny_hf
    kw = dict(benchmark="jsonl", problems=str(problems), backend="hf", n=2, temperature=1.0, max_new_tokens=6,
              seed=5, batch_problems=3, progress=False)
    whole = tmp_path / "all.jsonl"
    run_sample(SampleConfig(out=str(whole), **kw), backend=backend)
    shards = [tmp_path / f"s{i}.jsonl" for i in range(3)]
    sizes = [run_sample(SampleConfig(out=str(s), shard=f"{i}/3", **kw), backend=backend)["problems"]
             for i, s in enumerate(shards)]
    assert sum(sizes) == 7 and all(sizes)  # every problem in exactly one shard
    merged = tmp_path / "merged.jsonl"
    assert main(["merge", *map(str, shards), "--out", str(merged)]) == 0
    assert merged.read_bytes() == whole.read_bytes()  # same samples, same order, byte for byte
    assert json.loads(config_path(merged).read_text())["merged_from"] == [str(s) for s in shards]
    assert "merged 14 samples of 7 problems from 3 files" in capsys.readouterr().out

    assert main(["merge", str(shards[0]), str(shards[2]), "--out", str(tmp_path / "part.jsonl")]) == 0
    assert "shards 1/3 are missing" in capsys.readouterr().err
    assert main(["merge", str(shards[0]), str(shards[0]), "--out", str(tmp_path / "dup.jsonl")]) == 2
    assert "s0.jsonl is given twice" in capsys.readouterr().err
    copy = tmp_path / "copy.jsonl"  # another file holding shard 0's problems
    copy.write_bytes(shards[0].read_bytes())
    config_path(copy).write_bytes(config_path(shards[0]).read_bytes())
    assert main(["merge", str(shards[0]), str(copy), "--out", str(tmp_path / "dup.jsonl")]) == 2
    assert "copy.jsonl:1: field 'task_id'" in capsys.readouterr().err
    other = tmp_path / "other.jsonl"
    run_sample(SampleConfig(out=str(other), shard="1/3", **{**kw, "temperature": 0.5}), backend=backend)
    assert main(["merge", str(shards[0]), str(other), "--out", str(tmp_path / "mix.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "different config" in err and "temperature: 1.0 -> 0.5" in err
