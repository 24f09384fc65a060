"""Focused-DPO's continuation test (`focalpo analyze continue`, focalpo.continuation) on a real focused run.

The run (scripted sampler, one problem `add` with reference tests) yields one pair around the return line:

    chosen    ```python / def add(a, b): / return a + b / ```
    rejected  ```python / def add(a, b): / return a - b / ```

so the partial answers are the fence, the def line and the chosen (rejected) return line. The scripted
continuation of each partial is chosen by hand: the chosen one closes the fence (the program passes), the
rejected one closes it too (fails), and in `repairing` the rejected one is continued with a second, correct
return that never runs, which still fails; in `overriding` the continuation redefines `add` correctly
after the bad one, which passes: the test executes what the model continued, not the partial answer.

Run: .venv/bin/python -m pytest tests/test_continuation.py -q
"""

from __future__ import annotations

import json

import pytest

from focalpo.cli import main
from focalpo.continuation import ContinueConfig, continuation_prompt, partial_answers, run_continuation
from focalpo.generate import get_backend
from focalpo.pairs import PreferencePair, read_pairs, write_pairs
from focalpo.pipelines.focused import FocusedConfig, run_focused
from focalpo.problems.jsonl import dump_jsonl
from focalpo.problems.types import Problem
from focalpo.prompts import PROGRAM_TEMPLATE, TEST_TEMPLATE, render
from focalpo.runs import problem_seed
from focalpo.sandbox.types import CallTest

PROMPT = "Write add(a, b) returning the sum of a and b."
GOOD, BAD = "def add(a, b):\n    return a + b", "def add(a, b):\n    return a - b"
CHOSEN_PARTIAL = "```python\ndef add(a, b):\n    return a + b\n"
REJECTED_PARTIAL = "```python\ndef add(a, b):\n    return a - b\n"
REFERENCE_TESTS = [CallTest("t0", "add", (1, 2), 3), CallTest("t1", "add", (5, 5), 10)]


def fenced(code: str) -> str:
    return f"```python\n{code}\n```"


def add_problem(tests=REFERENCE_TESTS) -> Problem:
    return Problem(task_id="toy/add", prompt=PROMPT, entry_point="add", canonical_solution=GOOD + "\n",
                   tests={"base": list(tests)} if tests else {})


def focused_run(tmp_path, problem: Problem, *, test_answers=None):
    """A focused run on `problem` (its own file) with two sampled programs (GOOD, BAD) and the given tests."""
    problems = tmp_path / "problems.jsonl"
    dump_jsonl([problem], problems)
    entry = "the function `add`"
    test_answers = test_answers or [fenced("assert add(1, 2) == 3"), fenced("assert add(2, 2) == 4")]
    completions = {render(PROGRAM_TEMPLATE, prompt=PROMPT, entry_point=entry): [fenced(GOOD), fenced(BAD)],
                   render(TEST_TEMPLATE, prompt=PROMPT, entry_point=entry): test_answers}
    cfg = FocusedConfig(out=str(tmp_path / "run"), benchmark="jsonl", problems=str(problems), backend="scripted",
                        k=2, k_tests=len(test_answers), workers=1, timeout=2.0, progress=False, pair_format="chat",
                        backend_options={"completions": completions})
    summary = run_focused(cfg)
    assert summary["pairs"] == 1
    return tmp_path / "run"


def continuer(chosen: str, rejected: str):
    """A scripted backend that continues the two partial answers (keyed by the open assistant message)."""
    return get_backend("scripted", completions={CHOSEN_PARTIAL: [chosen], REJECTED_PARTIAL: [rejected]})


def test_partial_answers_are_the_prefix_and_each_middle(tmp_path):
    run = focused_run(tmp_path, add_problem())
    pair = read_pairs(run / "pairs.jsonl")[0]
    assert partial_answers(pair) == (CHOSEN_PARTIAL, REJECTED_PARTIAL)
    prompt = continuation_prompt(pair, CHOSEN_PARTIAL)
    assert prompt[:-1] == pair.prompt and prompt[-1] == {"role": "assistant", "content": CHOSEN_PARTIAL}
    # a pair with no stored boundaries (LCS-only records) gets Focused-DPO's own, line unit
    bare = PreferencePair(pair.prompt, pair.chosen, pair.rejected)
    assert partial_answers(bare) == (CHOSEN_PARTIAL, REJECTED_PARTIAL)
    plain = PreferencePair("Q:\n", pair.chosen_text, pair.rejected_text)
    assert continuation_prompt(plain, REJECTED_PARTIAL) == "Q:\n" + REJECTED_PARTIAL


@pytest.mark.parametrize("rejected_continuation, rejected_passes", [
    ("```", False),  # the rejected middle stays: fails
    ("    return a + b\n```", False),  # dead code after the bad return: still fails
    ("\ndef add(a, b):\n    return a + b\n```", True),  # the continuation redefines add: passes
])
def test_the_continued_programs_are_executed_on_the_reference_tests(tmp_path, rejected_continuation, rejected_passes):
    run = focused_run(tmp_path, add_problem())
    backend = continuer("```", rejected_continuation)
    summary = run_continuation(ContinueConfig(run=str(run), workers=1, progress=False), backend=backend)
    assert summary == {"chosen_mid": 1.0, "rejected_mid": float(rejected_passes), "pairs": 1, "n": 1,
                       "tests": "reference", "chosen_better": int(not rejected_passes), "rejected_better": 0}
    # greedy, per pair and arm its own seed; the open assistant message is what the backend continued
    (call,) = backend.calls
    assert call["temperature"] == 0.0 and call["n"] == 1
    assert call["seed"] == [problem_seed(0, "toy/add", f"continue/0/{arm}") for arm in ("chosen_mid", "rejected_mid")]
    assert [p[-1]["content"] for p in call["prompts"]] == [CHOSEN_PARTIAL, REJECTED_PARTIAL]
    out = run / "continuation"
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [s["arm"] for s in samples] == ["chosen_mid", "rejected_mid"]
    assert samples[1]["raw"] == REJECTED_PARTIAL + rejected_continuation
    written = json.loads((out / "continuation.json").read_text())
    assert written["per_pair"] == [{"task_id": "toy/add", "pair": 0, "chosen_mid": 1.0,
                                    "rejected_mid": float(rejected_passes)}]
    assert json.loads((out / "eval.json").read_text())["summary"]["base"]["pass@1"] == (1 + rejected_passes) / 2


def test_n_continuations_give_the_share_that_passes(tmp_path):
    run = focused_run(tmp_path, add_problem())
    backend = get_backend("scripted", completions={CHOSEN_PARTIAL: ["```", "```", "    bad syntax (\n```", "```"],
                                                   REJECTED_PARTIAL: ["```", "\ndef add(a, b):\n    return b + a\n```"]})
    summary = run_continuation(ContinueConfig(run=str(run), n=4, temperature=0.8, workers=1, progress=False),
                               backend=backend)
    assert (summary["chosen_mid"], summary["rejected_mid"]) == (0.75, 0.5)
    assert backend.calls[0]["temperature"] == 0.8


def test_run_tests_are_the_ones_pagerank_trusted(tmp_path):
    # the problem has no tests of its own: auto takes the run's ground truth; the wrong sampled test
    # `add(2, 2) == 5` fails every program, so PageRank leaves it out and a correct program passes
    run = focused_run(tmp_path, add_problem(tests=None),
                      test_answers=[fenced("assert add(1, 2) == 3"), fenced("assert add(2, 2) == 5")])
    record = json.loads((run / "records.jsonl").read_text().splitlines()[0])
    assert [record["tests"][i] for i in record["ground_truth_tests"]] == ["assert add(1, 2) == 3"]
    summary = run_continuation(ContinueConfig(run=str(run), workers=1, progress=False), backend=continuer("```", "```"))
    assert (summary["tests"], summary["chosen_mid"], summary["rejected_mid"]) == ("run", 1.0, 0.0)
    backend = continuer("```", "```")
    with pytest.raises(ValueError, match=r"\['toy/add'\] have no tests of their own"):  # no silent pass on no tests
        run_continuation(ContinueConfig(run=str(run), tests="reference", overwrite=True), backend=backend)
    assert backend.calls == []


def test_run_tests_need_a_focused_runs_ground_truth(tmp_path):
    run = focused_run(tmp_path, add_problem())
    records = run / "records.jsonl"
    record = json.loads(records.read_text().splitlines()[0])
    del record["ground_truth_tests"]  # as a codeflow run's records: no PageRank ground truth
    records.write_text(json.dumps(record) + "\n")
    backend = continuer("```", "```")
    with pytest.raises(ValueError, match=r"no ground-truth tests for task\(s\) \['toy/add'\]"):
        run_continuation(ContinueConfig(run=str(run), tests="run"), backend=backend)
    assert backend.calls == []


def test_bad_requests_are_refused_before_any_generation(tmp_path):
    run = focused_run(tmp_path, add_problem())
    backend = continuer("```", "```")
    with pytest.raises(ValueError, match="greedy continuations would all be the same"):
        run_continuation(ContinueConfig(run=str(run), n=3), backend=backend)
    with pytest.raises(FileNotFoundError, match="config.json"):
        run_continuation(ContinueConfig(run=str(tmp_path)), backend=backend)
    pairs = read_pairs(run / "pairs.jsonl")
    pairs[0].meta["task_id"] = "toy/elsewhere"
    write_pairs(run / "pairs.jsonl", pairs, overwrite=True)
    with pytest.raises(ValueError, match=r"toy/elsewhere.*not among the run's problems"):
        run_continuation(ContinueConfig(run=str(run)), backend=backend)
    assert backend.calls == []


def test_an_earlier_result_is_kept_unless_overwrite(tmp_path):
    run = focused_run(tmp_path, add_problem())
    run_continuation(ContinueConfig(run=str(run), workers=1, progress=False), backend=continuer("```", "```"))
    before = (run / "continuation" / "continuation.json").read_text()
    with pytest.raises(FileExistsError, match="--overwrite"):
        run_continuation(ContinueConfig(run=str(run), workers=1, progress=False), backend=continuer("```", "```"))
    assert (run / "continuation" / "continuation.json").read_text() == before


def test_cli(tmp_path, capsys):
    run = focused_run(tmp_path, add_problem())
    options = json.dumps({"completions": {CHOSEN_PARTIAL: ["```"], REJECTED_PARTIAL: ["```"]}})
    code = main(["analyze", "continue", str(run), "--backend", "scripted", "--out", str(tmp_path / "c"),
                 "--workers", "1", "--no-progress", f"backend_options={options}"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "prefix + chosen middle:   pass@1 100.00 %" in printed and "prefix + rejected middle: pass@1   0.00 %" in printed
    assert json.loads((tmp_path / "c" / "continuation.json").read_text())["config"]["backend"] == "scripted"
    assert main(["analyze", "continue", str(run), "--n", "2", "--backend", "scripted"]) == 2
    assert "greedy continuations" in capsys.readouterr().err
