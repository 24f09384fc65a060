"""The Focused-DPO pipeline end to end with a scripted generator (focalpo.pipelines.focused).

The scripted answers of problem toy/add are chosen so that everything is known by hand:

    programs (k=5)                     kept as   t0 add(1,2)==3  t1 add(0,5)==5  t2 add(2,2)==4  t3 add(1,1)==3
    a0  return a + b                   p0        pass            pass            pass            fail
    a1  return a - b                   p1        fail            fail            fail            fail
    a2  return a + b  # sum            (same syntax tree as a0: dropped as a duplicate)
    a3  "no code here ("               (unparsable: dropped)
    a4  b if a == 0 else a * b         p2        fail            pass            pass            fail

PageRank ranks p0 first (it passes the most, and the tests it passes are vouched for by p2),
p2 second and p1 last (it passes nothing): ranks [1, 3, 2]. Ground truth = tests p0 passes =
[t0, t1, t2]; correct = [p0]; incorrect = [p1, p2]. Both candidate pairs share the fence line,
the `def` line and the closing fence (common length 3 lines); Diff(p0, p1) = (3 - 1) + 3 = 5 and
Diff(p0, p2) = (2 - 1) + 3 = 4, so the single pair is (p0, p1) and its middles are the return lines.

Run: .venv/bin/python -m pytest tests/pipelines/test_focused.py -q
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from focalpo.generate import get_backend
from focalpo.pairs import read_pairs
from focalpo.pipelines.focused import FocusedConfig, run_focused
from focalpo.pipelines.runner import merge_runs
from focalpo.problems import Problem
from focalpo.prompts import PROGRAM_TEMPLATE, TEST_TEMPLATE, render
from focalpo.rank import pagerank_scores
from focalpo.runs import problem_seed


def fenced(code: str) -> str:
    return f"Here you go:\n```python\n{code}\n```\nDone."


ADD_ANSWERS = [
    fenced("def add(a, b):\n    return a + b"),
    fenced("def add(a, b):\n    return a - b"),
    fenced("def add(a, b):\n    return a + b  # sum"),
    "no code here (",
    fenced("def add(a, b):\n    if a == 0:\n        return b\n    return a * b"),
]
ADD_TESTS = [
    fenced("assert add(1, 2) == 3"),
    fenced("assert add(0, 5) == 5"),
    fenced("assert add(2, 2) == 4\nassert add(9, 9) == 18"),  # only the first assert is kept
    fenced("assert add(1, 1) == 3"),  # a wrong test: no program passes it
    "I cannot write a test.",
    fenced("assert add(1,2)==3"),  # same syntax tree as the first test
]
EXPECTED_MATRIX = [
    [True, True, True, False],
    [False, False, False, False],
    [False, True, True, False],
]


def problem(task_id: str, prompt: str, entry_point: str = "add") -> Problem:
    return Problem(task_id=task_id, prompt=prompt, entry_point=entry_point, canonical_solution="", tests={})


ADD = problem("toy/add", "Write add(a, b) returning the sum of a and b.")
NEG = problem("toy/neg", "Write neg(x) returning -x.", "neg")  # every program is right: no pair
NOTEST = problem("toy/notest", "Write one() returning 1.", "one")  # the tests have no asserts


def prompts_of(p: Problem) -> tuple[str, str]:
    entry = f"the function `{p.entry_point}`"
    return render(PROGRAM_TEMPLATE, prompt=p.prompt, entry_point=entry), render(TEST_TEMPLATE, prompt=p.prompt, entry_point=entry)


def scripted_completions() -> dict:
    out = {}
    for p, programs, tests in [
        (ADD, ADD_ANSWERS, ADD_TESTS),
        (NEG, [fenced("def neg(x):\n    return -x"), fenced("def neg(x):\n    return 0 - x")], [fenced("assert neg(2) == -2")]),
        (NOTEST, [fenced("def one():\n    return 1")], ["no asserts"]),
    ]:
        prog_prompt, test_prompt = prompts_of(p)
        out[prog_prompt], out[test_prompt] = programs, tests
    return out


def config(tmp_path, **kw) -> FocusedConfig:
    base = dict(out=str(tmp_path / "run"), backend="scripted", k=5, k_tests=6, workers=2, timeout=2.0,
                progress=False, batch_problems=2, backend_options={"completions": scripted_completions()})
    return FocusedConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("focused")
    cfg = config(tmp)
    backend = get_backend("scripted", completions=scripted_completions())
    summary = run_focused(cfg, backend=backend, problems=[ADD, NEG, NOTEST])
    records = [json.loads(line) for line in open(tmp / "run" / "records.jsonl")]
    return cfg, backend, summary, {r["task_id"]: r for r in records}


def test_matrix_ranks_and_pair_are_the_hand_computed_ones(first_run):
    _, _, _, records = first_run
    r = records["toy/add"]
    assert r["programs"] == [
        "```python\ndef add(a, b):\n    return a + b\n```",
        "```python\ndef add(a, b):\n    return a - b\n```",
        "```python\ndef add(a, b):\n    if a == 0:\n        return b\n    return a * b\n```",
    ]
    assert r["tests"] == ["assert add(1, 2) == 3", "assert add(0, 5) == 5", "assert add(2, 2) == 4", "assert add(1, 1) == 3"]
    assert r["dropped"] == {"programs_duplicate": 1, "programs_unparsable": 1, "tests_no_assert": 1, "tests_duplicate": 1}
    assert r["pass_matrix"] == EXPECTED_MATRIX
    assert r["code_scores"] == pagerank_scores(EXPECTED_MATRIX)[0]
    assert r["ranks"] == [1, 3, 2]
    assert r["ground_truth_tests"] == [0, 1, 2]
    assert r["correct"] == [True, False, False]
    assert r["status"] == "ok"
    assert r["reasons"][0][:3] == ["", "", ""] and r["reasons"][0][3].startswith("wrong_answer")
    assert r["reasons"][1][0].startswith("wrong_answer")

    [pair] = r["pairs"]
    chosen, rejected = r["programs"][0], r["programs"][1]
    assert (pair["chosen"], pair["rejected"]) == (chosen, rejected)  # scripted backend: plain pairs
    assert pair["prompt"] == prompts_of(ADD)[0]
    assert pair["meta"]["diff"] == 5 and pair["meta"]["common_length"] == 3
    assert chosen[pair["prefix_len"] : pair["chosen_suffix_start"]] == "    return a + b\n"
    assert rejected[pair["prefix_len"] : pair["rejected_suffix_start"]] == "    return a - b\n"


def test_problems_without_pairs_are_recorded_with_their_reason(first_run):
    _, _, _, records = first_run
    assert records["toy/neg"]["status"] == "no_incorrect"
    assert records["toy/neg"]["pass_matrix"] == [[True], [True]]
    assert records["toy/notest"]["status"] == "no_tests"
    assert records["toy/notest"]["pairs"] == [] and "pass_matrix" not in records["toy/notest"]


def test_summary_and_pairs_file(first_run, tmp_path):
    cfg, _, summary, records = first_run
    assert summary["problems"] == 3 and summary["pairs"] == 1 and summary["with_pair"] == 1
    assert summary["programs"] == 3 + 2 + 1 and summary["tests"] == 4 + 1 + 0
    assert summary["matrix_density"] == pytest.approx((5 + 2) / (12 + 2))
    assert summary["with_correct"] == 2  # toy/add and toy/neg have a non-vacuous ground truth
    assert summary["status"] == {"no_incorrect": 1, "no_tests": 1, "ok": 1}
    chosen = records["toy/add"]["programs"][0]
    assert summary["mean_chosen_mid_chars"] == len("    return a + b\n")
    assert summary["chosen_mid_share"] == pytest.approx(len("    return a + b\n") / len(chosen))
    assert json.loads(open(os.path.join(cfg.out, "summary.json")).read())["pairs"] == 1
    [pair] = read_pairs(os.path.join(cfg.out, "pairs.jsonl"))
    assert pair.meta["task_id"] == "toy/add"


def test_each_problem_samples_with_its_own_seed_and_the_papers_settings(first_run):
    cfg, backend, _, _ = first_run
    program_calls = [c for c in backend.calls if c["n"] == 5]
    assert [c["temperature"] for c in backend.calls] == [1.5] * 4
    first_batch = program_calls[0]
    assert first_batch["seed"] == [problem_seed(0, "toy/add"), problem_seed(0, "toy/neg")]
    test_calls = [c for c in backend.calls if c["n"] == 6]
    assert test_calls[0]["seed"] == [problem_seed(0, "toy/add", "tests"), problem_seed(0, "toy/neg", "tests")]


def test_chat_backends_give_conversational_pairs(tmp_path):
    cfg = config(tmp_path, pair_format="chat")
    run_focused(cfg, problems=[ADD])
    [pair] = read_pairs(tmp_path / "run" / "pairs.jsonl")
    assert pair.prompt == [{"role": "user", "content": prompts_of(ADD)[0]}]
    assert pair.chosen[0]["role"] == "assistant" and pair.chosen_text.endswith("```")
    assert pair.chosen_text[pair.prefix_len : pair.chosen_suffix_start] == "    return a + b\n"


def test_code_completion_format_and_lambda(tmp_path):
    # with lam = 0 only the rank difference counts: (p0, p1) still wins 2 > 1
    cfg = config(tmp_path, completion_format="code", lam=0.0)
    run_focused(cfg, problems=[ADD])
    [pair] = read_pairs(tmp_path / "run" / "pairs.jsonl")
    assert pair.chosen == "def add(a, b):\n    return a + b\n"
    assert pair.meta["diff"] == 2


def test_resume_skips_finished_problems_and_refuses_other_settings(tmp_path):
    problems = [ADD, NEG, NOTEST]
    run_focused(config(tmp_path), problems=problems[:1])
    backend = get_backend("scripted", completions=scripted_completions())
    with pytest.raises(FileExistsError, match="--resume"):
        run_focused(config(tmp_path), backend=backend, problems=problems)
    with pytest.raises(ValueError, match="lam: 1.0 -> 2.0"):
        run_focused(config(tmp_path, lam=2.0), backend=backend, problems=problems, resume=True)
    summary = run_focused(config(tmp_path, workers=1), backend=backend, problems=problems, resume=True)
    assert summary["problems"] == 3
    asked = [p for c in backend.calls for p in c["prompts"]]
    assert prompts_of(ADD)[0] not in asked  # toy/add was done: never sampled again
    ids = [json.loads(line)["task_id"] for line in open(tmp_path / "run" / "records.jsonl")]
    assert sorted(ids) == ["toy/add", "toy/neg", "toy/notest"]


class FailingBackend:
    """Scripted answers, then a GenerationError from the `fail_at`-th call on."""

    def __init__(self, fail_at: int):
        self.inner = get_backend("scripted", completions=scripted_completions())
        self.fail_at, self.n = fail_at, 0

    def generate(self, prompts, **kw):
        self.n += 1
        if self.n >= self.fail_at:
            raise RuntimeError("server went away")
        return self.inner.generate(prompts, **kw)


def test_a_failed_generation_keeps_the_batches_already_executed(tmp_path):
    cfg = config(tmp_path, batch_problems=1)
    with pytest.raises(RuntimeError, match="server went away"):
        run_focused(cfg, backend=FailingBackend(fail_at=3), problems=[ADD, NEG, NOTEST])  # batch 2 fails
    ids = [json.loads(line)["task_id"] for line in open(tmp_path / "run" / "records.jsonl")]
    assert ids == ["toy/add"]
    summary = run_focused(cfg, problems=[ADD, NEG, NOTEST], resume=True)
    assert summary["problems"] == 3 and summary["pairs"] == 1


def test_shards_merge_to_the_unsharded_run(tmp_path, first_run):
    _, _, full, full_records = first_run
    dirs = []
    for i in range(2):
        cfg = config(tmp_path, out=str(tmp_path / f"s{i}"), shard=f"{i}/2")
        run_focused(cfg, problems=[ADD, NEG, NOTEST])
        dirs.append(tmp_path / f"s{i}")
    result = merge_runs(dirs, tmp_path / "merged")
    assert result["missing_shards"] == [] and result["records"] == 3
    merged = {json.loads(line)["task_id"]: json.loads(line) for line in open(tmp_path / "merged" / "records.jsonl")}
    assert merged == full_records
    assert {k: v for k, v in result["summary"].items() if k != "config"} == {k: v for k, v in full.items() if k != "config"}
    with pytest.raises(FileExistsError, match="--overwrite"):
        merge_runs(dirs, tmp_path / "merged")
    partial = merge_runs(dirs[:1], tmp_path / "partial")
    assert partial["missing_shards"] == ["1/2"]


def test_bad_config_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="prompt_style 'chat'"):
        run_focused(config(tmp_path, prompt_style="chat"), problems=[ADD])
    with pytest.raises(ValueError, match="program_template must contain"):
        run_focused(config(tmp_path, program_template="no field"), problems=[ADD])
    with pytest.raises(ValueError, match="appears twice"):
        run_focused(config(tmp_path), problems=[ADD, ADD])
    with pytest.raises(ValueError, match="no code prefix"):
        run_focused(config(tmp_path, prompt_style="complete"), problems=[ADD])


def test_complete_style_continues_the_code_prefix(tmp_path):
    p = Problem(task_id="toy/sq", prompt="def sq(x):\n    \"\"\"x squared\"\"\"\n", entry_point="sq",
                canonical_solution="", tests={}, code_prefix="def sq(x):\n    \"\"\"x squared\"\"\"\n")
    test_prompt = render(TEST_TEMPLATE, prompt=p.prompt, entry_point="the function `sq`")
    completions = {p.code_prefix: ["    return x * x\n\nprint(sq(3))", "    return x + x\n"],
                   test_prompt: [fenced("assert sq(3) == 9")]}
    cfg = config(tmp_path, prompt_style="complete", k=2, k_tests=1, backend_options={"completions": completions})
    run_focused(cfg, problems=[p])
    [pair] = read_pairs(tmp_path / "run" / "pairs.jsonl")
    assert (pair.prompt, pair.chosen, pair.rejected) == (p.code_prefix, "    return x * x\n", "    return x + x\n")


def test_kill_9_then_resume_loses_and_duplicates_nothing(tmp_path):
    """A real `focalpo focused` process killed with SIGKILL mid-run, then resumed."""
    problems = [{"task_id": f"slow/{i}", "prompt": f"Write f (variant {i}).", "entry_point": "f", "tests": []}
                for i in range(8)]
    (tmp_path / "problems.jsonl").write_text("".join(json.dumps(p) + "\n" for p in problems))
    # the scripted default cycles one list for every prompt: answer 0 is the slow correct program (and,
    # for the test prompt, whose k_tests = 1, its top-level assert is the test); answer 1 is wrong
    default_answers = [fenced("import time\ntime.sleep(0.4)\ndef f(x):\n    return x\nassert f(2) == 2"),
                       fenced("def f(x):\n    return -x")]
    cfg = {"benchmark": "jsonl", "problems": str(tmp_path / "problems.jsonl"), "backend": "scripted", "k": 2,
           "k_tests": 1, "batch_problems": 1, "workers": 1, "progress": False,
           "backend_options": {"default": default_answers}}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "focalpo.cli", "focused", "--config", str(tmp_path / "cfg.yaml")]
    out = tmp_path / "run"
    proc = subprocess.Popen(cmd + ["--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    records = out / "records.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not records.exists() or records.read_text().count("\n") < 2):
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()  # still running
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = records.read_text().count("\n")
    assert 2 <= done_before < 8
    resumed = subprocess.run(cmd + ["--out", str(out), "--resume"], capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    ids = [json.loads(line)["task_id"] for line in records.read_text().splitlines()]
    assert sorted(ids) == sorted(p["task_id"] for p in problems)  # each exactly once
    clean = subprocess.run(cmd + ["--out", str(tmp_path / "clean")], capture_output=True, text=True, timeout=120)
    assert clean.returncode == 0, clean.stderr
    pairs = sorted(json.dumps(p.to_json(), sort_keys=True) for p in read_pairs(out / "pairs.jsonl"))
    clean_pairs = sorted(json.dumps(p.to_json(), sort_keys=True) for p in read_pairs(tmp_path / "clean" / "pairs.jsonl"))
    assert pairs == clean_pairs and len(pairs) == 8


@pytest.mark.parametrize("pair_format", ["plain", "chat"])
def test_pipeline_pairs_weigh_with_the_focused_scheme(tmp_path, pair_format):
    """The pipeline's pairs train as they are: the focused scheme doubles exactly the middle's tokens."""
    from generate_helpers import CHAT_TEMPLATE, make_tokenizer

    from focalpo.weights import compute_weighted_examples

    run_focused(config(tmp_path, pair_format=pair_format), problems=[ADD])
    pairs = read_pairs(tmp_path / "run" / "pairs.jsonl")
    tokenizer = make_tokenizer(CHAT_TEMPLATE if pair_format == "chat" else None)
    [ex] = compute_weighted_examples(pairs, tokenizer, "focused")
    w = ex["chosen_weights"]
    assert set(w) == {1.0, 2.0}  # prefix and suffix 1, middle w_focused = 2
    doubled = [t for t, x in zip(ex["chosen_input_ids"], w) if x == 2.0]
    assert "return a + b" in tokenizer.decode(doubled)
    assert "def add" not in tokenizer.decode(doubled)


def test_a_module_the_jobs_cannot_see_stops_the_pipeline(tmp_path, monkeypatch):
    """A program importing a module that this process imports but sandbox jobs cannot see (a
    mode-700 directory on sys.path): an environment fault stops the run, instead of a pass matrix
    of failures; the problems already executed keep their records."""
    import tempfile
    import uuid
    from pathlib import Path

    from focalpo.sandbox import EnvironmentFault, ExecPool

    with ExecPool(workers=1) as pool:
        if not pool.isolation["job_uid"]:
            pytest.skip("jobs run as this user here: they see what it sees")
    hidden = Path(tempfile.mkdtemp(prefix="focalpo-hidden-"))
    name = f"parentonly_{uuid.uuid4().hex[:8]}"
    (hidden / f"{name}.py").write_text("def neg(x):\n    return -x\n")
    monkeypatch.setattr(sys, "path", [*sys.path, str(hidden)])
    completions = scripted_completions()
    neg_program, _ = prompts_of(NEG)
    completions[neg_program] = [fenced(f"from {name} import neg")] * 2
    cfg = config(tmp_path, batch_problems=1, backend_options={"completions": completions})
    try:
        with pytest.raises(EnvironmentFault, match=name):
            run_focused(cfg, problems=[ADD, NEG])
    finally:
        subprocess.run(["rm", "-rf", str(hidden)], check=False)
    assert [json.loads(line)["task_id"] for line in open(tmp_path / "run" / "records.jsonl")] == ["toy/add"]


def test_task_ids_run_a_subset_of_a_problem_file(tmp_path):
    from focalpo.problems import dump_jsonl

    problems = tmp_path / "problems.jsonl"
    dump_jsonl([ADD, NEG, NOTEST], problems)
    ids = tmp_path / "ids.txt"
    ids.write_text("toy/neg\n")
    summary = run_focused(config(tmp_path, benchmark="jsonl", problems=str(problems), task_ids=str(ids)))
    records = [json.loads(line) for line in open(tmp_path / "run" / "records.jsonl")]
    assert [r["task_id"] for r in records] == ["toy/neg"] and summary["problems"] == 1


def test_parquet_pairs_and_dataset_card(tmp_path):
    run_focused(config(tmp_path, parquet=True), problems=[ADD])
    run = tmp_path / "run"
    assert read_pairs(run / "pairs.parquet") == read_pairs(run / "pairs.jsonl") != []
    card = (run / "README.md").read_text()
    assert "path: pairs.parquet" in card and "Focused-DPO" in card and "| pairs | 1 |" in card
