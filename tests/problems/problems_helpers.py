"""Shared by the problem-layer tests (tests/problems/test_*.py): where the benchmark files are, the
`needs_data` skip mark, and writers of small synthetic benchmark files.

Run the tests that use them: .venv/bin/python -m pytest tests/problems -q
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from focalpo.problems import Problem

# the shipped data beside the checkout, or wherever $FOCALPO_DATA_DIR says (a clone elsewhere)
DATA = Path(os.environ.get("FOCALPO_DATA_DIR") or Path(__file__).parents[2] / ".." / "shared" / "data")
HE, HEP = DATA / "HumanEval.jsonl.gz", DATA / "HumanEvalPlus-v0.1.10.jsonl.gz"
MBPP, BCB = DATA / "MbppPlus-v0.2.0.jsonl.gz", DATA / "BigCodeBench-v0.1.0.jsonl.gz"
needs_data = pytest.mark.skipif(not HEP.is_file(), reason=f"benchmark data not found in {DATA}")


def by_id(problems: list[Problem]) -> dict[str, Problem]:
    return {p.task_id: p for p in problems}


def write_jsonl(path: Path, rows: list, gz: bool = False) -> Path:
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    return path


def he_row(**over) -> dict:
    row = {
        "task_id": "T/0", "prompt": "def f(x):\n", "entry_point": "f", "canonical_solution": "    return x\n",
        "test": "def check(candidate):\n    assert candidate(1) == 1\n",
        "contract": "", "base_input": [[1]], "plus_input": [[2], [3]], "atol": 0,
    }
    row.update(over)
    return row


def bcb_row(test: str) -> dict:
    return {
        "task_id": "B/0", "complete_prompt": "def task_func():\n", "instruct_prompt": "do", "code_prompt": "def task_func():\n",
        "canonical_solution": "    return 1\n", "test": test, "entry_point": "task_func", "libs": "['os']",
    }
