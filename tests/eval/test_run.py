"""`focalpo eval` end to end on a small generic-JSONL benchmark, plus its pure helpers."""

from __future__ import annotations

import json
import tempfile

import pytest

from focalpo.cli import main

PROBLEMS = [
    {
        "task_id": "toy/add",
        "prompt": "def add(a, b):\n",
        "code_prefix": "def add(a, b):\n",
        "entry_point": "add",
        "canonical_solution": "    return a + b\n",
        "tests": {
            "base": [{"kind": "call", "name": f"b{i}", "entry_point": "add", "args": [i, 1], "expected": i + 1} for i in range(3)],
            "plus": [{"kind": "call", "name": f"p{i}", "entry_point": "add", "args": [-i, 10], "expected": 10 - i} for i in range(4)],
        },
    },
    {
        "task_id": "toy/div",
        "prompt": "def div(a, b):\n",
        "code_prefix": "def div(a, b):\n",
        "entry_point": "div",
        "canonical_solution": "    return a / b\n",
        "tests": {
            "base": [{"kind": "call", "name": "b0", "entry_point": "div", "args": [1, 3], "expected": 1 / 3}],
            "plus": [{"kind": "call", "name": "p0", "entry_point": "div", "args": [1, 0], "expected": None}],
        },
    },
]


@pytest.fixture()
def bench(tmp_path):
    data = tmp_path / "toy.jsonl"
    data.write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS))
    samples = tmp_path / "samples.jsonl"
    rows = [
        {"task_id": "toy/add", "completion": "    return a + b\n"},  # all pass
        {"task_id": "toy/add", "solution": "```python\ndef add(a, b):\n    return a - b\n```"},  # fails both
        {"task_id": "toy/add", "solution": "def add(a, b):\n    return a + b if a >= 0 else 0\n"},  # plus fails
        {"task_id": "toy/div", "completion": "    return a / b\n"},  # plus: ZeroDivisionError
    ]
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return data, samples, tmp_path / "results.json"


def _run(data, samples, out, *extra):
    return main(["eval", "--benchmark", "jsonl", "--data", str(data), "--samples", str(samples),
                 "--out", str(out), "--workers", "2", "--no-progress", *extra])  # fmt: skip


def test_eval_writes_statuses_failures_and_pass_at_k(bench, capsys):
    data, samples, out = bench
    assert _run(data, samples, out) == 0
    res = json.loads(out.read_text())
    recs = res["samples"]
    assert [(r["task_id"], r["sample_index"]) for r in recs] == [("toy/add", 0), ("toy/add", 1), ("toy/add", 2), ("toy/div", 0)]
    assert [(r["base_status"], r["plus_status"], r["status"]) for r in recs] == [
        ("pass", "pass", "pass"),
        ("fail", "fail", "fail"),
        ("pass", "fail", "fail"),
        ("pass", "fail", "fail"),
    ]
    assert recs[1]["solution"] == "def add(a, b):\n    return a - b\n"  # fenced markdown extracted
    assert recs[1]["failures"][0] == {"test": "b0", "status": "wrong_answer", "message": "expected 1, got -1"}
    assert recs[3]["failures"] == [{"test": "p0", "status": "exception", "message": "ZeroDivisionError: division by zero"}]
    # fail-fast by default: sample 1 stops at its first failing base test and first failing plus test
    assert [f["test"] for f in recs[1]["failures"]] == ["b0", "p0"]
    s = res["summary"]
    # base: add 2/3 correct, div 1/1 -> pass@1 = (2/3 + 1) / 2; plus: add 1/3, div 0/1
    assert s["base"]["pass@1"] == pytest.approx((2 / 3 + 1) / 2)
    assert s["plus"]["pass@1"] == pytest.approx((1 / 3 + 0) / 2)
    assert "pass@10" not in s["base"]
    assert {e["type"] for e in s["errors"]} == {"WrongAnswer", "ZeroDivisionError: division by zero"}
    printed = capsys.readouterr().out
    assert "pass@1" in printed and "ZeroDivisionError" in printed


def test_canonical_evaluates_the_reference_solutions_and_leaves_no_temp_file(bench, tmp_path, monkeypatch):
    data, _, out = bench
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    assert main(["eval", "--benchmark", "jsonl", "--data", str(data), "--canonical", "--out", str(out),
                 "--workers", "2", "--no-progress"]) == 0  # fmt: skip
    recs = json.loads(out.read_text())["samples"]
    assert [(r["task_id"], r["status"]) for r in recs] == [("toy/add", "pass"), ("toy/div", "fail")]  # div's plus test divides by 0
    assert recs[0]["solution"] == "def add(a, b):\n    return a + b\n"
    assert list(scratch.iterdir()) == []


def test_eval_options_from_a_config_file_with_flag_and_override(bench, tmp_path, capsys):
    data, samples, out = bench
    config = tmp_path / "eval.yaml"
    config.write_text(f"benchmark: jsonl\ndata: {data}\nsamples: {samples}\nout: {out}\nworkers: 2\n"
                      "progress: false\nbase_only: true\n")
    assert main(["eval", "--config", str(config), "--details", "details=false"]) == 0  # the override wins
    recs = json.loads(out.read_text())["samples"]
    assert [r["plus_status"] for r in recs] == [None] * 4  # base_only from the YAML
    assert [f["test"] for f in recs[1]["failures"]] == ["b0"]  # fail-fast: details=false applied last
    capsys.readouterr()
    assert main(["eval", "--config", str(config), "canonical=true", "--overwrite"]) == 2
    assert "give either samples (--samples) or canonical (--canonical), not both" in capsys.readouterr().err
    assert main(["eval", "--config", str(config), "sample_time_cap=abc"]) == 2
    assert "override 'sample_time_cap=abc': field 'sample_time_cap': expected float" in capsys.readouterr().err


def test_details_runs_every_test(bench):
    data, samples, out = bench
    assert _run(data, samples, out, "--details") == 0
    rec = json.loads(out.read_text())["samples"][1]
    assert [f["test"] for f in rec["failures"]] == ["b0", "b1", "b2", "p0", "p1", "p2", "p3"]


def test_base_only_has_no_plus_status(bench):
    data, samples, out = bench
    assert _run(data, samples, out, "--base-only") == 0
    res = json.loads(out.read_text())
    assert {r["plus_status"] for r in res["samples"]} == {None}
    assert res["summary"]["plus"] is None


def test_existing_results_are_not_overwritten(bench, capsys):
    data, samples, out = bench
    out.write_text("precious")
    assert _run(data, samples, out) == 2
    assert out.read_text() == "precious"
    assert "--overwrite" in capsys.readouterr().err
    assert _run(data, samples, out, "--overwrite") == 0
    assert json.loads(out.read_text())["summary"]["n_samples"] == 4


def test_unknown_task_id_names_file_and_line(bench, capsys):
    data, samples, out = bench
    with samples.open("a") as f:
        f.write(json.dumps({"task_id": "toy/nope", "completion": "x"}) + "\n")
    assert _run(data, samples, out) == 2
    err = capsys.readouterr().err
    assert f"{samples}:5" in err and "task_id" in err and "toy/nope" in err
    assert not out.exists()


def test_heavy_lists_split_into_chunks_sized_to_the_run(bench, monkeypatch):
    """With reference times of 0.2 s a test (0.2 x 23 = 4.6 s in all) on one worker, chunks hold
    up to 4.6 / CHUNKS_PER_WORKER = 0.575 s: two tests, where the least size would hold one."""
    import dataclasses

    import focalpo.problems.groundtruth
    from focalpo.sandbox import ExecPool

    data, samples, out = bench

    class FakeTruth:  # the jsonl tests carry their expected outputs; only the times are made up
        def __init__(self, problems):
            self.tests = {p.task_id: sum(map(len, p.tests.values())) for p in problems}

        def reference_seconds(self, task_id):
            return 0.2 * self.tests[task_id]

        def apply(self, p):
            return dataclasses.replace(p, meta={**p.meta, "ref_seconds": {t.name: 0.2 for ts in p.tests.values() for t in ts}})

    jobs = []
    real_map = ExecPool.map

    def spy(self, js, desc=None):
        def recorded():
            for j in js:
                jobs.append(j)
                yield j

        return real_map(self, recorded(), desc)

    monkeypatch.setattr(focalpo.problems.groundtruth, "prepare_expected", lambda problems, *a, **k: FakeTruth(problems))
    monkeypatch.setattr(ExecPool, "map", spy)
    assert main(["eval", "--benchmark", "jsonl", "--data", str(data), "--samples", str(samples),
                 "--out", str(out), "--workers", "1", "--no-progress", "--details"]) == 0  # fmt: skip
    add = [[t.name for t in j.tests] for j in jobs if j.tests[0].entry_point == "add"]
    assert add == [["b0", "b1"], ["b2"], ["p0", "p1"], ["p2", "p3"]] * 3
    div = [[t.name for t in j.tests] for j in jobs if j.tests[0].entry_point == "div"]
    assert div == [["b0", "p0"]]  # 0.4 s in all: base and plus share one job
    recs = json.loads(out.read_text())["samples"]  # the chunks' verdicts are put back together
    assert [f["test"] for f in recs[1]["failures"]] == ["b0", "b1", "b2", "p0", "p1", "p2", "p3"]
    assert [(r["base_status"], r["plus_status"]) for r in recs] == [("pass", "pass"), ("fail", "fail"), ("pass", "fail"), ("pass", "fail")]


def test_the_costliest_task_runs_while_the_next_one_is_filled(bench, monkeypatch):
    """Jobs stream into the pool task by task, costliest task first: the first task's samples
    run while the next task's tests are being filled, and the records are as in sample order."""
    import threading

    from focalpo.problems.groundtruth import GroundTruth
    from focalpo.sandbox import ExecPool

    data, samples, out = bench
    started, order = threading.Event(), []
    run, apply = ExecPool._run_with_retry, GroundTruth.apply

    def spy(self, slot, job):
        order.append(("start", job.tests[0].entry_point))
        started.set()
        return run(self, slot, job)

    def apply_after_a_start(self, problem):
        if order:  # not the first task: a job of the first must be running already
            assert started.wait(30), "no job started before the next task was filled"
        order.append(("fill", problem.entry_point))
        return apply(self, problem)

    monkeypatch.setattr(ExecPool, "_run_with_retry", spy)
    monkeypatch.setattr(GroundTruth, "apply", apply_after_a_start)
    monkeypatch.setattr(GroundTruth, "reference_seconds", lambda self, task_id: 2.0 if task_id == "toy/div" else 1.0)
    assert _run(data, samples, out) == 0
    assert order[:3] == [("fill", "div"), ("start", "div"), ("fill", "add")]  # div: its sample file comes last
    recs = json.loads(out.read_text())["samples"]
    assert [(r["task_id"], r["sample_index"], r["status"]) for r in recs] == [
        ("toy/add", 0, "pass"), ("toy/add", 1, "fail"), ("toy/add", 2, "fail"), ("toy/div", 0, "fail"),
    ]  # fmt: skip


def test_samples_failing_on_modules_not_installed_are_counted_and_named(bench, capsys):
    data, samples, out = bench
    samples.write_text("".join(json.dumps(r) + "\n" for r in [
        {"task_id": "toy/add", "solution": "import pandas_nope_1\ndef add(a, b):\n    return a + b\n"},
        {"task_id": "toy/add", "solution": "def add(a, b):\n    import sklearn_nope_2, pandas_nope_1\n    return a + b\n"},
        {"task_id": "toy/add", "solution": "import pandas_nope_1\ndef add(a, b):\n    return a + b\n"},
        {"task_id": "toy/div", "completion": "    return a / b\n"},
    ]))  # fmt: skip
    assert _run(data, samples, out) == 0
    res = json.loads(out.read_text())
    # the first import that fails names the module (sample 1 stops at sklearn_nope_2)
    assert [r["missing_modules"] for r in res["samples"]] == [["pandas_nope_1"], ["sklearn_nope_2"], ["pandas_nope_1"], []]
    assert res["summary"]["missing_modules"] == {"samples": 3, "modules": {"pandas_nope_1": 2, "sklearn_nope_2": 1}}
    assert "3 samples failed on modules not installed here: pandas_nope_1 (2), sklearn_nope_2 (1)" in capsys.readouterr().out


def test_a_module_the_jobs_cannot_see_stops_the_evaluation(bench, capsys, monkeypatch):
    """Not a list of failed samples: an error naming the module and the directory, no results file."""
    import subprocess
    import sys
    import uuid
    from pathlib import Path

    from focalpo.sandbox import ExecPool

    with ExecPool(workers=1) as pool:
        if not pool.isolation["job_uid"]:
            pytest.skip("jobs run as this user here: they see what it sees")
    hidden = Path(tempfile.mkdtemp(prefix="focalpo-hidden-"))  # mode 700: not the jobs' user's
    name = f"parentonly_{uuid.uuid4().hex[:8]}"
    (hidden / f"{name}.py").write_text("def add(a, b):\n    return a + b\n")
    monkeypatch.setattr(sys, "path", [*sys.path, str(hidden)])
    data, samples, out = bench
    samples.write_text(json.dumps({"task_id": "toy/add", "solution": f"from {name} import add\n"}) + "\n")
    try:
        assert _run(data, samples, out) == 2
    finally:
        subprocess.run(["rm", "-rf", str(hidden)], check=False)
    err = capsys.readouterr().err
    assert "environment fault" in err and repr(name) in err and str(hidden) in err
    assert not out.exists()


def test_a_sample_slower_than_its_budget_times_out(bench):
    """Each call sleeps 0.8 s, within the 4 s per-test limit; with the cap at 0.1 s a test list
    may take min(0.1, 12) + 2 = 2.1 s: base (3 calls, 2.4 s) and plus (4 calls) both time out."""
    data, samples, out = bench
    samples.write_text(json.dumps({"task_id": "toy/add", "solution": "import time\ndef add(a, b):\n    time.sleep(0.8)\n    return a + b\n"}) + "\n")
    assert _run(data, samples, out, "--sample-time-cap", "0.1") == 0
    res = json.loads(out.read_text())
    rec = res["samples"][0]
    assert (rec["base_status"], rec["plus_status"]) == ("fail", "fail")
    assert [(f["status"], f["message"]) for f in rec["failures"]] == [("timeout", "the sample's time budget of 2.1s ran out")] * 2
    assert res["config"]["sample_time_cap"] == 0.1
    assert res["sample_time_limit"] == "min(0.1 s, sum of the per-test limits) + 2 s per test list (evalplus 0.3.1)"


# --------------------------------------------------------------------------------------------------
# subsets (--task-ids), LiveCodeBench windows (--since/--until) and breakdowns (--by)


def test_task_ids_evaluate_a_subset_and_skip_the_other_samples(bench, capsys):
    data, samples, out = bench
    ids = out.with_name("hard.txt")
    ids.write_text("# a BigCodeBench-Hard-like list\ntoy/div\n\ntoy/div\n")
    assert _run(data, samples, out, "--task-ids", str(ids)) == 0
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert [s["task_id"] for s in result["samples"]] == ["toy/div"]
    assert result["summary"]["n_tasks"] == 1 and result["summary"]["base"]["pass@1"] == 1.0
    assert result["summary"]["selection"] == {"task_ids": str(ids), "since": None, "until": None,
                                              "selected_tasks": 1, "skipped_samples": 3}
    assert "subset: 1 tasks" in printed and "3 samples of other tasks skipped" in printed
    ids.write_text("toy/div\ntoy/nope\n")
    assert _run(data, samples, out, "--task-ids", str(ids), "--overwrite") == 2
    assert f"{ids}:2: task id 'toy/nope' is not a problem of this benchmark" in capsys.readouterr().err


def _same_scores(result: dict) -> dict:
    """What an evaluation found, without where its files were."""
    return {"samples": result["samples"], "summary": result["summary"], "dataset": result["dataset"]}


def test_parquet_and_save_to_disk_samples_give_the_jsonl_results(bench):
    from datasets import Dataset

    from focalpo.datasets_io import write_parquet

    data, samples, out = bench
    rows = [json.loads(line) for line in samples.read_text().splitlines()]  # completion and solution rows
    parquet, saved = samples.with_suffix(".parquet"), samples.with_name("saved")
    write_parquet(parquet, rows)
    Dataset.from_parquet(str(parquet)).save_to_disk(str(saved))
    assert _run(data, samples, out) == 0
    expected = _same_scores(json.loads(out.read_text()))
    assert expected["summary"]["n_samples"] == 4
    for source in (parquet, saved):
        other = out.with_name(f"{source.name}.results.json")
        assert _run(data, source, other) == 0
        assert _same_scores(json.loads(other.read_text())) == expected


def test_a_bad_parquet_sample_row_is_named_and_nothing_is_written(bench, capsys):
    from focalpo.datasets_io import write_parquet

    data, samples, out = bench
    parquet = samples.with_suffix(".parquet")
    write_parquet(parquet, [{"task_id": "toy/add", "completion": "    return a + b\n"},
                            {"task_id": "toy/nope", "completion": "x"}])
    assert _run(data, parquet, out) == 2
    err = capsys.readouterr().err
    assert f"focalpo eval: error: {parquet}[1]: field 'task_id': 'toy/nope' is not a task of jsonl" in err
    assert "Traceback" not in err
    write_parquet(parquet, [{"task_id": "toy/add", "completion": 7}])  # a column of the wrong type
    assert _run(data, parquet, out) == 2
    assert f"{parquet}[0]: field 'completion' must be a string, got int" in capsys.readouterr().err
    assert not out.exists()


def test_default_results_path_drops_the_samples_suffix():
    from focalpo.eval.run import default_out_path

    assert default_out_path("runs/s.parquet").as_posix() == "runs/s.eval_results.json"
    assert default_out_path("runs/s.jsonl.gz").as_posix() == "runs/s.eval_results.json"


LCB_CASE = {"input": "2 3\n", "output": "5\n", "testtype": "stdin"}
LCB = [  # (question_id, difficulty, contest_date)
    ("a1", "easy", "2024-07-30T00:00:00"),
    ("a2", "easy", "2024-08-01T00:00:00"),
    ("a3", "medium", "2024-08-15T00:00:00"),
    ("a4", "hard", "2024-09-30T00:00:00"),
    ("a5", "hard", "2024-10-01T00:00:00"),
]


@pytest.fixture()
def lcb(tmp_path):
    """A small LiveCodeBench-format file (code_generation_lite rows) and samples: a2, a3 right; a4 wrong."""
    data = tmp_path / "lcb.jsonl"
    data.write_text("".join(json.dumps({
        "question_id": q, "question_title": q, "question_content": "Print the sum of two integers.",
        "platform": "atcoder", "difficulty": d, "contest_date": date, "contest_id": "abc", "starter_code": "",
        "public_test_cases": json.dumps([LCB_CASE]), "private_test_cases": json.dumps([LCB_CASE]), "metadata": "{}",
    }) + "\n" for q, d, date in LCB))
    right = "a, b = map(int, input().split())\nprint(a + b)\n"
    wrong = "a, b = map(int, input().split())\nprint(a - b)\n"
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps({"task_id": q, "solution": right if q in ("a1", "a2", "a3") else wrong}) + "\n"
                               for q, _, _ in LCB))
    return data, samples, tmp_path / "results.json"


def test_livecodebench_window_and_difficulty_breakdown(lcb, capsys):
    data, samples, out = lcb
    assert main(["eval", "--benchmark", "livecodebench", "--data", str(data), "--samples", str(samples),
                 "--out", str(out), "--workers", "2", "--no-progress", "--since", "2024-08-01",
                 "--until", "2024-09-30", "--by", "difficulty"]) == 0
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert sorted(s["task_id"] for s in result["samples"]) == ["a2", "a3", "a4"]  # both ends inclusive
    summary = result["summary"]
    assert summary["base"]["pass@1"] == pytest.approx(2 / 3)
    by = summary["by"]["difficulty"]
    assert list(by) == ["easy", "medium", "hard"]  # the papers' order, not the alphabet's
    assert [by[d]["base"]["pass@1"] for d in by] == [1.0, 1.0, 0.0]
    assert [by[d]["n_tasks"] for d in by] == [1, 1, 1]
    table = printed[printed.index("by difficulty:"):].splitlines()
    assert table[1].split()[0] == "difficulty"
    assert [line.split()[0] for line in table[2:6]] == ["easy", "medium", "hard", "all"]
    assert "66.7%" in table[5]
    assert summary["selection"]["skipped_samples"] == 2


def test_livecodebench_window_from_parquet_with_a_renamed_column(lcb, tmp_path, capsys):
    from datasets import load_dataset

    data, samples, out = lcb
    rows = load_dataset("json", data_files=str(data), split="train").rename_column("difficulty", "level")
    rows.to_parquet(str(tmp_path / "lcb.parquet"))
    assert main(["eval", "--benchmark", "livecodebench", "--data", str(tmp_path / "lcb.parquet"),
                 "--columns", "difficulty=level", "--samples", str(samples), "--out", str(out), "--workers", "2",
                 "--no-progress", "--since", "2024-10-01", "--by", "difficulty"]) == 0
    result = json.loads(out.read_text())
    assert [s["task_id"] for s in result["samples"]] == ["a5"]
    assert list(result["summary"]["by"]["difficulty"]) == ["hard"]


def test_by_a_field_no_problem_has_and_a_window_on_undated_problems_fail_before_running(bench, capsys):
    data, samples, out = bench
    assert _run(data, samples, out, "--by", "difficulty") == 2
    assert "--by difficulty: no problem has a metadata field 'difficulty'" in capsys.readouterr().err
    assert _run(data, samples, out, "--since", "2024-01-01") == 2
    assert "problem 'toy/add' has no contest_date" in capsys.readouterr().err
    assert not out.exists()


def test_passed_in_order_matches_each_sample_line_to_its_result():
    from focalpo.eval.run import passed_in_order

    result = {"samples": [{"task_id": "b", "sample_index": 0, "status": "fail"},
                          {"task_id": "a", "sample_index": 1, "status": "fail"},
                          {"task_id": "a", "sample_index": 0, "status": "pass"}]}
    assert passed_in_order(result, ["a", "b", "a"]) == [True, False, False]
    with pytest.raises(KeyError, match="sample 1 of 'b'"):
        passed_in_order(result, ["b", "b"])
