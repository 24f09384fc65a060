"""Tests of focalpo.problems.registry: load_benchmark by name, default paths and $FOCALPO_DATA_DIR, counts of every benchmark.

The benchmark files are read from ../shared/data beside the checkout, or from $FOCALPO_DATA_DIR
(never copied into the repository); tests that need them are skipped when that folder is absent.
Run: .venv/bin/python -m pytest tests/problems/test_registry.py -q
"""

from __future__ import annotations

from collections import Counter

import pytest
from problems_helpers import HEP, he_row, write_jsonl, needs_data

from focalpo.problems import Problem, benchmark_path, load_benchmark, load_humaneval, registry


def _split_sizes(problems: list[Problem]) -> dict[str, int]:
    c: Counter = Counter()
    for p in problems:
        c.update(p.n_tests())
    return dict(c)


# ----------------------------------------------------------------------------------------------
# Counts per file


@needs_data
def test_counts_per_file(humaneval, humaneval_plus, mbpp_plus, bigcodebench):
    assert len(humaneval) == 164
    assert len(humaneval_plus) == 164
    assert _split_sizes(list(humaneval_plus.values())) == {"base": 1570, "plus": 123739}
    assert len(mbpp_plus) == 378
    assert _split_sizes(list(mbpp_plus.values())) == {"base": 1174, "plus": 39841}
    assert len(bigcodebench) == 1140
    # Test methods unittest would run (BigCodeBench/90, /392, /804 define some methods twice).
    assert _split_sizes(list(bigcodebench.values())) == {"base": 6423}


# ----------------------------------------------------------------------------------------------
# load_benchmark, default paths


@needs_data
def test_load_benchmark_default_paths_and_names():
    assert benchmark_path("humaneval+").resolve() == HEP.resolve()
    assert benchmark_path("bigcodebench").name == "BigCodeBench-v0.1.0.jsonl.gz"
    assert len(load_benchmark("humaneval")) == 164
    with pytest.raises(ValueError, match=r"unknown benchmark 'humaneval-x'; known: \["):
        load_benchmark("humaneval-x")
    with pytest.raises(ValueError, match="'livecodebench' has no default file"):
        load_benchmark("livecodebench")


def test_data_dir_env_and_not_found_message(tmp_path, monkeypatch):
    write_jsonl(tmp_path / "HumanEval.jsonl.gz", [he_row()], gz=True)
    monkeypatch.setenv("FOCALPO_DATA_DIR", str(tmp_path))
    assert benchmark_path("humaneval") == tmp_path / "HumanEval.jsonl.gz"
    assert [p.task_id for p in load_benchmark("humaneval")] == ["T/0"]
    monkeypatch.setitem(registry.BENCHMARKS, "humaneval", registry.Benchmark(load_humaneval, "Missing.jsonl"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as info:
        load_benchmark("humaneval")
    msg = str(info.value)
    assert str(tmp_path / "Missing.jsonl") in msg and str(tmp_path / "shared" / "data" / "Missing.jsonl") in msg
    assert "FOCALPO_DATA_DIR" in msg
    with pytest.raises(FileNotFoundError, match="no such file or directory"):
        load_benchmark("mbpp+", tmp_path / "nope.jsonl")
