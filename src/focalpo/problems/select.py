"""Subsets of a benchmark as the papers report them: a list of task ids, a contest-date window.

    ids = read_task_ids("bcb_hard.txt")                      # one task id per line, '#' comments
    keep = wanted_task_ids("ids.txt", known_ids)              # the same, checked against other items' ids
    problems = select_problems(problems, task_ids=ids, since="2024-08-01", until="2025-02-01")

- `task_ids`: keep these problems, in the benchmark's order (BigCodeBench-Hard is a list of 148
  BigCodeBench task ids). An id that is not a problem of the benchmark is an error naming the
  file and line: a typo must not silently shrink the subset.
- `since` / `until` (YYYY-MM-DD, both inclusive): keep the problems whose `meta["contest_date"]`
  (LiveCodeBench's release date, to keep problems older than a model's training cut-off out) falls
  in the window. A problem without a contest date is an error: the window would otherwise
  silently apply to nothing.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Iterable, Sequence

from focalpo.problems.types import Problem


def read_task_ids(path: str | os.PathLike) -> list[tuple[str, int]]:
    """(task id, line) for each non-blank line of `path` that is not a `#` comment, duplicates dropped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--task-ids {path}: no such file")
    out, seen = [], set()
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        task_id = line.strip()
        if task_id and not task_id.startswith("#") and task_id not in seen:
            seen.add(task_id)
            out.append((task_id, lineno))
    if not out:
        raise ValueError(f"--task-ids {path}: no task ids (one per line)")
    return out


def wanted_task_ids(path: str | os.PathLike, known: Iterable[str], what: str = "a problem of this benchmark") -> set[str]:
    """The task ids of the file `path` (`read_task_ids`); one that is not in `known` is an error naming the
    file and line ("... is not {what}")."""
    known = set(known)
    wanted = read_task_ids(path)
    for task_id, line in wanted:
        if task_id not in known:
            raise ValueError(f"{path}:{line}: task id {task_id!r} is not {what}")
    return {t for t, _ in wanted}


def parse_day(text: str, flag: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(text).strip()[:10])
    except ValueError:
        raise ValueError(f"{flag} {text!r}: expected a date YYYY-MM-DD") from None


def contest_day(problem: Problem) -> dt.date | None:
    """The problem's `meta["contest_date"]` as a date (LiveCodeBench: "2024-08-03T00:00:00"), or None."""
    value = problem.meta.get("contest_date")
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return parse_day(value, f"{problem.task_id}: contest_date")


def select_problems(problems: Sequence[Problem], *, task_ids: str | os.PathLike | None = None,
                    since: str | None = None, until: str | None = None) -> list[Problem]:
    """The problems in the `task_ids` file (if given) whose contest date lies in [since, until] (module doc)."""
    out = list(problems)
    if task_ids:
        keep = wanted_task_ids(task_ids, (p.task_id for p in out))
        out = [p for p in out if p.task_id in keep]
    if since or until:
        lo = parse_day(since, "--since") if since else dt.date.min
        hi = parse_day(until, "--until") if until else dt.date.max
        if lo > hi:
            raise ValueError(f"--since {since} is after --until {until}")
        dated = []
        for p in out:
            day = contest_day(p)
            if day is None:
                raise ValueError(f"problem {p.task_id!r} has no contest_date: --since/--until select LiveCodeBench "
                                 "problems by their release date")
            if lo <= day <= hi:
                dated.append(p)
        out = dated
    return out
