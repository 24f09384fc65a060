"""Helpers of the evaluation tests: sample records as `results.json` holds them."""

from __future__ import annotations


def record(task_id, index, base, plus=None, failures=()):
    passed = base == "pass" and plus in ("pass", None)
    return {
        "task_id": task_id,
        "sample_index": index,
        "base_status": base,
        "plus_status": plus,
        "status": "pass" if passed else "fail",
        "failures": list(failures),
        "solution": "pass\n",
    }
