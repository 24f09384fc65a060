"""The CodeFlow pipeline end to end with a scripted teacher (focalpo.pipelines.codeflow).

Teacher dialogues, known by hand (max_iterations = 3):
- cf/add: the first solution subtracts and fails `add(1, 2) == 3` (it passes `add(0, 0) == 0`);
  told so, the teacher returns the fixed file -> pair (fixed, first), D- = the `return a - b` line;
- cf/mul: right at once -> no pair (nothing to contrast);
- cf/div: wrong three times -> never fixed, dropped;
- cf/bad: no code at all -> rejected ("no_code");
- cf/fmt: the first fix answer has no code block (a format error, counted as an answer), the
  second fixes the bug -> pair with the first version.

Run: .venv/bin/python -m pytest tests/pipelines/test_codeflow.py -q
"""

from __future__ import annotations

import json

import pytest

from focalpo.cli import main
from focalpo.generate import get_backend
from focalpo.pairs import read_pairs
from focalpo.pipelines.codeflow import CodeflowConfig, Instruction, run_codeflow
from focalpo.pipelines.filters import NOT_RUN_REASONS
from focalpo.pipelines.runner import merge_runs
from focalpo.prompts import TEACHER_TEMPLATE


def teacher_answer(name: str, solution: str, tests: str) -> str:
    return (f"Here is my answer.\n<file>{name}.py</file>\n```python\n{solution}```\n"
            f"<file>test_{name}.py</file>\n```python\n{tests}```\n"
            f'<json>{{"solution_file": "{name}.py", "test_file": "test_{name}.py", "packages": []}}</json>')


def fix_answer(name: str, solution: str) -> str:
    return f"Fixed.\n<file>{name}.py</file>\n```python\n{solution}```"


ADD_TESTS = "from add import add\n\nassert add(1, 2) == 3\nassert add(0, 0) == 0\n"
ADD_BAD = "def add(a, b):\n    # sum of a and b\n    return a - b\n"
ADD_GOOD = "def add(a, b):\n    # sum of a and b\n    return a + b\n"
DIALOGUES = {
    "cf/add": [teacher_answer("add", ADD_BAD, ADD_TESTS), fix_answer("add", ADD_GOOD)],
    "cf/mul": [teacher_answer("mul", "def mul(a, b):\n    return a * b\n", "from mul import mul\nassert mul(2, 3) == 6\n")],
    "cf/div": [teacher_answer("div", "def div(a, b):\n    return a * b\n", "from div import div\nassert div(6, 3) == 2\n")]
    + [fix_answer("div", f"def div(a, b):\n    return a * b + {i}\n") for i in (1, 2)],
    "cf/bad": ["I would rather not."],
    "cf/fmt": [teacher_answer("sub", "def sub(a, b):\n    return b - a\n", "from sub import sub\nassert sub(5, 3) == 2\n"),
               "Sorry, here it is without code.", fix_answer("sub", "def sub(a, b):\n    return a - b\n")],
}
ITEMS = [Instruction(task_id, f"Write the function of {task_id}.") for task_id in DIALOGUES]


def teacher() -> object:
    conversations = {TEACHER_TEMPLATE.replace("{instruction}", i.text): DIALOGUES[i.task_id] for i in ITEMS}
    return get_backend("scripted", conversations=conversations)


def config(tmp_path, **kw) -> CodeflowConfig:
    base = dict(out=str(tmp_path / "run"), backend="scripted", max_iterations=3, workers=2, progress=False,
                batch_problems=2, tokenizer=None)
    return CodeflowConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("codeflow")
    backend = teacher()
    summary = run_codeflow(config(tmp), backend=backend, instructions=ITEMS)
    records = {r["task_id"]: r for r in map(json.loads, open(tmp / "run" / "records.jsonl"))}
    return tmp, backend, summary, records


def test_a_fixed_problem_records_both_versions_and_the_right_d_minus(first_run):
    _, _, _, records = first_run
    r = records["cf/add"]
    assert r["status"] == "fixed" and r["iterations"] == 2 and r["kept"]
    assert (r["solution_file"], r["test_file"], r["n_tests"]) == ("add.py", "test_add.py", 2)
    first, final = r["versions"]
    assert first["solution"] == ADD_BAD and not first["passed"]
    assert [v["status"] for v in first["verdicts"]] == ["wrong_answer", "pass"]
    assert first["error_type"] == "WrongAnswer"
    assert "add(1, 2) == 3" in first["feedback"]
    assert final["solution"] == ADD_GOOD and final["passed"]
    assert final["coverage"]["percent"] == 100.0 and final["coverage"]["missing"] == []
    pair = r["pair"]
    assert pair["prompt"] == "Write the function of cf/add."
    assert pair["chosen"] == f"```python\n{ADD_GOOD}```" and pair["rejected"] == f"```python\n{ADD_BAD}```"
    assert [pair["rejected"][s:e] for s, e in pair["rejected_spans"]] == ["    return a - b\n"]  # the whole line is D-
    assert [pair["chosen"][s:e] for s, e in pair["chosen_spans"]] == ["    return a + b\n"]
    assert r["filters"] == {"rejected_only_comments": False, "rejected_too_long": False,
                            "too_many_tokens": None, "identical_ast": False}  # no tokenizer: not run


def test_view_shows_every_pair_of_the_run_with_its_history(first_run):
    tmp, _, _, _ = first_run
    assert main(["view", str(tmp / "run" / "pairs.jsonl")]) == 0  # records.jsonl beside it is found
    page = (tmp / "run" / "pairs.html").read_text()
    assert page.count('class="pair"') == 2 and "cf/add" in page and "cf/fmt" in page
    assert "debugging history" in page.lower() and "no_code" in page  # cf/fmt's malformed second answer
    assert "http://" not in page and "https://" not in page


def test_the_teacher_is_told_its_error(first_run):
    _, backend, _, _ = first_run
    second_round = [p for c in backend.calls for p in c["prompts"] if len(p) == 3 and "cf/add" in p[0]["content"]]
    [dialogue] = second_round
    assert [m["role"] for m in dialogue] == ["user", "assistant", "user"]
    assert "add(1, 2) == 3" in dialogue[2]["content"] and "wrong_answer" in dialogue[2]["content"]


def test_other_outcomes(first_run):
    _, _, _, records = first_run
    assert records["cf/mul"]["status"] == "passed_first" and records["cf/mul"]["pair"] is None
    div = records["cf/div"]
    assert div["status"] == "never_fixed" and div["iterations"] == 3 and div["pair"] is None
    assert [v["passed"] for v in div["versions"]] == [False, False, False]
    assert (records["cf/bad"]["status"], records["cf/bad"]["reason"]) == ("rejected", "no_code")
    assert records["cf/bad"]["answer"] == DIALOGUES["cf/bad"][0] and "answer" not in records["cf/add"]
    fmt = records["cf/fmt"]
    assert fmt["status"] == "fixed" and fmt["iterations"] == 3
    assert fmt["versions"][1]["format_error"] == "no_code"
    assert fmt["pair"]["meta"]["rejected_iteration"] == 0 and fmt["pair"]["meta"]["chosen_iteration"] == 2


def test_summary_report_and_pairs(first_run):
    tmp, _, summary, _ = first_run
    assert summary["status"] == {"fixed": 2, "never_fixed": 1, "passed_first": 1, "rejected": 1}
    assert summary["reached_sandbox"] == 4
    # passing within 1 answer: mul; within 2: + add; within 3: + fmt (div never)
    assert summary["pass_rate_by_iteration"] == [0.25, 0.5, 0.75]
    assert summary["iterations_to_pass"] == {"1": 1, "2": 1, "3": 1}
    assert summary["candidate_pairs"] == 2 and summary["pairs_kept"] == 2
    assert summary["rejected_error_types"] == {"WrongAnswer": 2}
    assert summary["coverage"]["solutions"] == 3 and summary["coverage"]["mean_percent"] == 100.0
    pairs = read_pairs(tmp / "run" / "pairs.jsonl")
    assert [p.meta["task_id"] for p in pairs] == ["cf/add", "cf/fmt"]
    report = (tmp / "run" / "report.txt").read_text()
    assert "pass rate after iteration" in report and "  3:  75.0%" in report
    # the scripted teacher has no tokenizer and none was given: the token rule did not run, loudly
    assert summary["filters_not_run"] == {"too_many_tokens": {"pairs": 2, "reason": NOT_RUN_REASONS["too_many_tokens"]}}
    assert "WARNING: filter too_many_tokens did not run on 2 candidate pairs: no tokenizer was given" in report
    assert "--tokenizer" in report


@pytest.mark.parametrize("strategy, iteration", [("first", 0), ("last", 1)])
def test_rejected_strategy(tmp_path, strategy, iteration):
    items = [Instruction("cf/x", "Write x.")]
    bad1, bad2 = "def x():\n    return 1\n", "def x():\n    return 2\n"
    dialogue = [teacher_answer("x", bad1, "from x import x\nassert x() == 3\n"), fix_answer("x", bad2),
                fix_answer("x", "def x():\n    return 3\n")]
    backend = get_backend("scripted", conversations={TEACHER_TEMPLATE.replace("{instruction}", "Write x."): dialogue})
    run_codeflow(config(tmp_path, rejected=strategy), backend=backend, instructions=items)
    [pair] = read_pairs(tmp_path / "run" / "pairs.jsonl")
    assert pair.meta["rejected_iteration"] == iteration
    assert pair.rejected_text == f"```python\n{[bad1, bad2][iteration]}```"


def test_judge_and_token_filters_remove_pairs(tmp_path):
    class CharTokenizer:
        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": list(range(len(text)))}

    judge = get_backend("scripted", default=["No."])
    summary = run_codeflow(config(tmp_path, judge=True, max_tokens=10), backend=teacher(), judge_backend=judge,
                           instructions=ITEMS, tokenizer=CharTokenizer())
    assert summary["candidate_pairs"] == 2 and summary["pairs_kept"] == 0
    assert summary["filters"] == {"judge": 2, "too_many_tokens": 2}
    assert summary["filters_not_run"] == {}
    assert "WARNING" not in (tmp_path / "run" / "report.txt").read_text()
    assert judge.calls[0]["temperature"] == 0.0
    assert read_pairs(tmp_path / "run" / "pairs.jsonl") == []


def test_resume_and_shards(tmp_path, first_run):
    _, _, full, full_records = first_run
    cfg = config(tmp_path)
    run_codeflow(cfg, backend=teacher(), instructions=ITEMS[:2])
    summary = run_codeflow(cfg, backend=teacher(), instructions=ITEMS, resume=True)
    assert summary["problems"] == 5
    ids = [json.loads(line)["task_id"] for line in open(tmp_path / "run" / "records.jsonl")]
    assert sorted(ids) == sorted(DIALOGUES)
    dirs = []
    for i in range(2):
        run_codeflow(config(tmp_path, out=str(tmp_path / f"s{i}"), shard=f"{i}/2"), backend=teacher(), instructions=ITEMS)
        dirs.append(tmp_path / f"s{i}")
    merged = merge_runs(dirs, tmp_path / "merged")
    assert merged["records"] == 5
    strip = lambda s: {k: v for k, v in s.items() if k != "config"}  # noqa: E731
    assert strip(merged["summary"]) == strip(full)
    assert (tmp_path / "merged" / "report.txt").exists()


def test_bad_instructions_file(tmp_path):
    path = tmp_path / "tasks.jsonl"
    path.write_text('{"task_id": "a", "instruction": "Write a."}\n{"task_id": "b"}\n')
    with pytest.raises(ValueError, match=r"tasks.jsonl:2: field 'instruction'"):
        run_codeflow(config(tmp_path, instructions=str(path)), backend=teacher())


def test_cli_task_ids_run_only_the_listed_instructions(tmp_path, capsys):
    instructions = tmp_path / "tasks.jsonl"
    instructions.write_text("".join(json.dumps({"task_id": i.task_id, "instruction": i.text}) + "\n" for i in ITEMS))
    ids = tmp_path / "ids.txt"
    ids.write_text("# two of five\ncf/div\ncf/add\n")
    conversations = {TEACHER_TEMPLATE.replace("{instruction}", i.text): DIALOGUES[i.task_id] for i in ITEMS}
    argv = ["codeflow", "--instructions", str(instructions), "--task-ids", str(ids), "--backend", "scripted",
            "--backend-option", f"conversations={json.dumps(conversations)}", "--workers", "2", "--no-progress",
            "max_iterations=3"]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 0
    records = [json.loads(line) for line in open(tmp_path / "run" / "records.jsonl")]
    assert [r["task_id"] for r in records] == ["cf/add", "cf/div"]  # the file's order, nothing else asked
    assert [r["status"] for r in records] == ["fixed", "never_fixed"]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["task_ids"] == str(ids)
    ids.write_text("cf/add\ncf/nope\n")
    capsys.readouterr()
    assert main([*argv, "--out", str(tmp_path / "bad")]) == 2
    assert f"{ids}:2: task id 'cf/nope' is not a task_id of {instructions}" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    assert main([*argv, "--out", str(tmp_path / "bad"), "--since", "2024-08-01"]) == 2
    assert "since/until select benchmark problems by their contest_date" in capsys.readouterr().err


def test_benchmark_problems_by_task_ids_and_contest_dates(tmp_path):
    from focalpo.pipelines.codeflow import load_instructions
    from focalpo.problems.jsonl import dump_jsonl
    from focalpo.problems.types import Problem

    dates = {"lc/a": "2024-07-31", "lc/b": "2024-08-01T00:00:00", "lc/c": "2024-09-30", "lc/d": "2024-10-01"}
    problems = tmp_path / "lcb.jsonl"
    dump_jsonl([Problem(task_id=t, prompt=f"Solve {t}.", entry_point="f", canonical_solution="", tests={},
                        meta={"contest_date": d}) for t, d in dates.items()], problems)
    ids = tmp_path / "ids.txt"
    ids.write_text("lc/d\nlc/c\nlc/a\n")

    def chosen(**kw) -> list[str]:
        cfg = config(tmp_path, instructions=None, benchmark="jsonl", problems=str(problems), **kw)
        return [i.task_id for i in load_instructions(cfg)]

    assert chosen(since="2024-08-01", until="2024-09-30") == ["lc/b", "lc/c"]  # both ends inclusive
    assert chosen(task_ids=str(ids)) == ["lc/a", "lc/c", "lc/d"]
    assert chosen(task_ids=str(ids), since="2024-08-01") == ["lc/c", "lc/d"]
    assert chosen(task_ids=str(ids), since="2024-08-01", limit=1) == ["lc/c"]  # the limit counts after them
    assert [i.text for i in load_instructions(config(tmp_path, benchmark="jsonl", problems=str(problems),
                                                     until="2024-07-31"))] == ["Solve lc/a."]


def test_a_solution_named_like_a_harness_module_is_rejected(tmp_path):
    answer = teacher_answer("os", "def f():\n    return 1\n", "from os import f\nassert f() == 1\n")
    backend = get_backend("scripted", conversations={TEACHER_TEMPLATE.replace("{instruction}", "Write f."): [answer]})
    summary = run_codeflow(config(tmp_path), backend=backend, instructions=[Instruction("cf/os", "Write f.")])
    assert summary["status"] == {"rejected": 1} and summary["rejected_reasons"] == {"bad_file_name": 1}


def test_pairs_train_with_the_target_scheme(first_run):
    """The records' pairs go to `focalpo train --scheme target` as they are: the rejected side is
    scored only on D- (the `return a - b` line), the chosen side everywhere."""
    from generate_helpers import make_tokenizer  # tests/generate is on sys.path (conftest.py)

    from focalpo.weights import compute_weighted_examples

    tmp, _, _, _ = first_run
    pairs = read_pairs(tmp / "run" / "pairs.jsonl")
    tokenizer = make_tokenizer()
    ex = compute_weighted_examples(pairs[:1], tokenizer, "target")[0]
    assert set(ex["chosen_weights"]) == {1.0}
    scored = [t for t, w in zip(ex["rejected_input_ids"], ex["rejected_weights"]) if w > 0]
    assert tokenizer.decode(scored).strip() == "return a - b"


def test_the_test_file_sits_beside_the_solution(tmp_path):
    tests = "import os\nfrom m import f\n\ndef test_file_is_here():\n    assert os.path.exists('test_m.py')\n    assert f() == 1\n"
    answer = teacher_answer("m", "def f():\n    return 1\n", tests)
    backend = get_backend("scripted", conversations={TEACHER_TEMPLATE.replace("{instruction}", "Write m."): [answer]})
    summary = run_codeflow(config(tmp_path), backend=backend, instructions=[Instruction("cf/m", "Write m.")])
    assert summary["status"] == {"passed_first": 1}


def test_parquet_pairs_and_the_dataset_card(tmp_path, first_run):
    import yaml

    summary = run_codeflow(config(tmp_path, parquet=True), backend=teacher(), instructions=ITEMS)
    run = tmp_path / "run"
    assert read_pairs(run / "pairs.parquet") == read_pairs(run / "pairs.jsonl") and summary["pairs_kept"] == 2
    card = (run / "README.md").read_text()
    header = yaml.safe_load(card.split("---")[1])
    assert header["configs"][0]["data_files"] == [{"split": "train", "path": "pairs.parquet"}]
    assert header["license"] == "other"  # instructions given in Python: their licence is unknown, and said so
    assert "Warning: filter `too_many_tokens` did not run on 2 candidate pairs" in card
    assert "| pairs_kept | 2 |" in card and '"max_iterations": 3' in card
    # a later run without --parquet removes the stale parquet file and points the card at the JSONL
    run_codeflow(config(tmp_path), backend=teacher(), instructions=ITEMS, overwrite=True)
    assert not (run / "pairs.parquet").exists() and "path: pairs.jsonl" in (run / "README.md").read_text()
