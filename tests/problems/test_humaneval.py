"""Tests of focalpo.problems.humaneval: `check(candidate)` split into AssertTests, run in-process and in the sandbox.

The benchmark files are read from ../shared/data beside the checkout, or from $FOCALPO_DATA_DIR
(never copied into the repository); tests that need them are skipped when that folder is absent.
Run: .venv/bin/python -m pytest tests/problems/test_humaneval.py -q
"""

from __future__ import annotations

from problems_helpers import needs_data

from focalpo.sandbox.types import AssertTest


# ----------------------------------------------------------------------------------------------
# HumanEval: check(candidate) -> AssertTests


@needs_data
def test_humaneval_asserts_split_with_setup(humaneval):
    p = humaneval["HumanEval/0"]
    tests = p.tests["base"]
    assert [t.name for t in tests] == [f"base/{i}" for i in range(7)]
    assert all(isinstance(t, AssertTest) for t in tests)
    assert tests[0].code == "assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3) == True"
    assert tests[0].setup.startswith("METADATA = {")
    assert tests[0].setup.endswith("candidate = has_close_elements\n")
    assert p.reference_program() == p.prompt + p.canonical_solution


@needs_data
def test_humaneval_whole_check_only_when_body_is_not_asserts(humaneval):
    whole = sorted(tid for tid, p in humaneval.items() if p.tests["base"][0].name == "base/check")
    assert whole == ["HumanEval/151", "HumanEval/32", "HumanEval/38", "HumanEval/44", "HumanEval/50", "HumanEval/53"]
    t = humaneval["HumanEval/32"].tests["base"][0]
    assert t.code == "check(find_zero)" and "def check(candidate):" in t.setup
    # HumanEval/129's check has a stray bare `print`: still split, one test per assert.
    assert len(humaneval["HumanEval/129"].tests["base"]) == 11
    assert sum(len(p.tests["base"]) for p in humaneval.values()) == 1164


@needs_data
def test_humaneval_reference_passes_and_a_wrong_program_fails(humaneval):
    """In-process run of the trusted canonical code: every assert holds; `return None` breaks some."""
    for p in list(humaneval.values())[:40]:
        for t in p.tests["base"]:
            ns: dict = {}
            exec(p.reference_program(), ns)
            exec(t.setup, ns)
            exec(t.code, ns)
        wrong = p.prompt + "    return None\n"
        failures = 0
        for t in p.tests["base"]:
            ns = {}
            exec(wrong, ns)
            exec(t.setup, ns)
            try:
                exec(t.code, ns)
            except Exception:  # noqa: BLE001 - AssertionError, TypeError ...
                failures += 1
        assert failures >= 1, p.task_id


@needs_data
def test_humaneval_assert_tests_in_the_sandbox(humaneval):
    """The real executor: every reference passes all its tests; `return None` fails in every task."""
    from focalpo.sandbox import ExecPool, Job

    problems = list(humaneval.values())
    with ExecPool() as pool:
        ref = pool.map([Job(p.reference_program(), p.all_tests()) for p in problems])
        wrong = pool.map([Job(p.prompt + "    return None\n", p.all_tests()) for p in problems])
    assert [(p.task_id, v.name, v.message) for p, r in zip(problems, ref) for v in r.verdicts if not v.passed] == []
    assert sum(len(r.verdicts) for r in ref) == 1164
    assert all(not r.passed for r in wrong)
