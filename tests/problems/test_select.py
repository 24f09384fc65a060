"""Subsets of a benchmark: task-id files (BigCodeBench-Hard) and LiveCodeBench contest-date windows.

Run: .venv/bin/python -m pytest tests/problems/test_select.py -q
"""

from __future__ import annotations

import datetime

import pytest

from focalpo.problems import Problem
from focalpo.problems.select import contest_day, read_task_ids, select_problems


def problem(task_id: str, date=None) -> Problem:
    return Problem(task_id, "p", None, "", {"base": []}, meta={} if date is None else {"contest_date": date})


PROBLEMS = [problem("a", "2024-07-31T23:59:59"), problem("b", "2024-08-01T00:00:00"), problem("c", "2024-09-30"),
            problem("d", datetime.datetime(2024, 10, 1, 8, 0))]


def ids(problems) -> list[str]:
    return [p.task_id for p in problems]


def test_window_is_inclusive_at_both_ends():
    assert ids(select_problems(PROBLEMS, since="2024-08-01", until="2024-09-30")) == ["b", "c"]
    assert ids(select_problems(PROBLEMS, since="2024-09-30")) == ["c", "d"]
    assert ids(select_problems(PROBLEMS, until="2024-07-31")) == ["a"]
    assert ids(select_problems(PROBLEMS)) == ["a", "b", "c", "d"]
    assert contest_day(PROBLEMS[3]) == datetime.date(2024, 10, 1)


def test_window_errors_are_loud():
    with pytest.raises(ValueError, match="--since '2024/08/01': expected a date YYYY-MM-DD"):
        select_problems(PROBLEMS, since="2024/08/01")
    with pytest.raises(ValueError, match="--since 2024-09-01 is after --until 2024-08-01"):
        select_problems(PROBLEMS, since="2024-09-01", until="2024-08-01")
    with pytest.raises(ValueError, match="problem 'x' has no contest_date"):
        select_problems([*PROBLEMS, problem("x")], since="2024-01-01")
    with pytest.raises(ValueError, match="y: contest_date 'soon': expected a date"):
        select_problems([problem("y", "soon")], until="2025-01-01")


def test_task_ids_keep_the_benchmarks_order_and_name_unknown_ids(tmp_path):
    f = tmp_path / "hard.txt"
    f.write_text("# BigCodeBench-Hard\nc\n\n  a  \nc\n")
    assert read_task_ids(f) == [("c", 2), ("a", 4)]
    assert ids(select_problems(PROBLEMS, task_ids=f)) == ["a", "c"]
    assert ids(select_problems(PROBLEMS, task_ids=f, since="2024-08-01")) == ["c"]
    f.write_text("a\nzz\n")
    with pytest.raises(ValueError, match=rf"{f}:2: task id 'zz' is not a problem of this benchmark"):
        select_problems(PROBLEMS, task_ids=f)
    f.write_text("# nothing\n")
    with pytest.raises(ValueError, match="no task ids"):
        read_task_ids(f)
    with pytest.raises(FileNotFoundError, match="--task-ids .*missing.txt: no such file"):
        read_task_ids(tmp_path / "missing.txt")
