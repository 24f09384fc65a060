"""Run directories, shards, seeds and merge (focalpo.runs).

Run: .venv/bin/python -m pytest tests/test_runs.py -q
"""

from __future__ import annotations

import json

import pytest

from focalpo.runs import (
    RunDir,
    Shard,
    config_diff,
    merge_records,
    missing_shards,
    problem_seed,
    read_records,
    stable_hash,
)


def test_stable_hash_is_fixed_across_processes():
    import hashlib
    import subprocess
    import sys

    code = "from focalpo.runs import stable_hash; print(stable_hash('task/7'))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "123", "PATH": ""})
    assert int(other.stdout) == stable_hash("task/7")
    assert stable_hash("task/7") == int.from_bytes(hashlib.sha256(b"task/7").digest()[:8], "big")


def test_problem_seed_depends_on_seed_task_and_stream_only():
    a = problem_seed(0, "HumanEval/1")
    assert a == problem_seed(0, "HumanEval/1")
    assert 0 <= a < 2**31
    assert len({a, problem_seed(1, "HumanEval/1"), problem_seed(0, "HumanEval/2"),
                problem_seed(0, "HumanEval/1", "tests")}) == 4


def test_shards_partition_task_ids():
    ids = [f"t/{i}" for i in range(500)]
    shards = [Shard(i, 4) for i in range(4)]
    owners = [[s for s in shards if s.owns(t)] for t in ids]
    assert all(len(o) == 1 for o in owners)  # every id in exactly one shard
    sizes = [sum(1 for o in owners if o[0] is s) for s in shards]
    assert min(sizes) > 80  # roughly balanced (expected 125 each)
    assert all(Shard().owns(t) for t in ids)


@pytest.mark.parametrize("text, expected", [("0/4", Shard(0, 4)), (" 3 / 4 ", Shard(3, 4)), ("", Shard()), (None, Shard())])
def test_shard_parse(text, expected):
    assert Shard.parse(text) == expected


@pytest.mark.parametrize("text", ["4/4", "1", "a/b", "-1/2", "0/0"])
def test_shard_parse_rejects(text):
    with pytest.raises(ValueError, match="shard"):
        Shard.parse(text)


def test_rundir_refuses_a_started_run_without_resume_or_overwrite(tmp_path):
    with RunDir(tmp_path / "r", {"k": 1}) as run:
        run.append({"task_id": "a"})
    with pytest.raises(FileExistsError, match="--resume"):
        RunDir(tmp_path / "r", {"k": 1})
    with pytest.raises(ValueError, match="not both"):
        RunDir(tmp_path / "r", {"k": 1}, resume=True, overwrite=True)


def test_rundir_resume_keeps_records_and_refuses_a_changed_config(tmp_path):
    with RunDir(tmp_path, {"k": 1, "workers": 2}, free_keys=["workers"]) as run:
        run.append({"task_id": "a", "x": 1})
    with RunDir(tmp_path, {"k": 1, "workers": 8}, resume=True, free_keys=["workers"]) as run:
        assert set(run.done) == {"a"}
        with pytest.raises(ValueError, match="already recorded"):
            run.append({"task_id": "a"})
        run.append({"task_id": "b"})
    assert [r["task_id"] for r in RunDir(tmp_path, {"k": 1, "workers": 8}, resume=True).records()] == ["a", "b"]
    with pytest.raises(ValueError, match=r"k: 1 -> 2"):
        RunDir(tmp_path, {"k": 2}, resume=True)


def test_rundir_overwrite_discards_records_and_derived_files(tmp_path):
    with RunDir(tmp_path, {"k": 1}) as run:
        run.append({"task_id": "a"})
    (tmp_path / "pairs.jsonl").write_text("old\n")
    (tmp_path / "keep.txt").write_text("not ours\n")
    with RunDir(tmp_path, {"k": 2}, overwrite=True, derived=["pairs.jsonl"]) as run:
        assert run.done == {}
    assert not (tmp_path / "pairs.jsonl").exists()
    assert (tmp_path / "keep.txt").exists()
    assert json.loads((tmp_path / "config.json").read_text()) == {"k": 2}


def test_rundir_cuts_a_torn_tail_and_reports_corrupt_lines(tmp_path):
    with RunDir(tmp_path, {}) as run:
        run.append({"task_id": "a"})
    with open(tmp_path / "records.jsonl", "a") as f:
        f.write('{"task_id": "b", "par')  # kill -9 mid-write
    with pytest.warns(UserWarning, match=r"records.jsonl:2: dropping a torn last record"):
        run = RunDir(tmp_path, {}, resume=True)
    assert set(run.done) == {"a"}
    run.append({"task_id": "b"})
    run.close()
    assert [r["task_id"] for _, r in read_records(tmp_path / "records.jsonl")] == ["a", "b"]

    with open(tmp_path / "records.jsonl", "a") as f:
        f.write('{"no_id": 1}\n')
    with pytest.raises(ValueError, match=r"records.jsonl:3: field 'task_id'"):
        RunDir(tmp_path, {}, resume=True)


def test_merge_records_concatenates_and_rejects_overlaps(tmp_path):
    for i, ids in enumerate([["a", "c"], ["b"]]):
        with RunDir(tmp_path / f"s{i}", {"k": 1, "shard": f"{i}/2"}) as run:
            for t in ids:
                run.append({"task_id": t})
    config, records = merge_records([tmp_path / "s0", tmp_path / "s1"])
    assert [r["task_id"] for r in records] == ["a", "c", "b"]
    assert config["k"] == 1
    with pytest.raises(ValueError, match="also in"):
        merge_records([tmp_path / "s0", tmp_path / "s0"])
    with RunDir(tmp_path / "other", {"k": 3, "shard": "0/2"}):
        pass
    with pytest.raises(ValueError, match=r"different config.*k: 1 -> 3"):
        merge_records([tmp_path / "s0", tmp_path / "other"])
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        merge_records([tmp_path / "nothing"])


def test_missing_shards():
    assert missing_shards(["0/3", "2/3"]) == ["1/3"]
    assert missing_shards(["0/2", "1/2"]) == []
    assert missing_shards(["0/1"]) == []


def test_config_diff_ignores_options_added_later_at_their_empty_default():
    old = {"k": 10, "seed": 0}
    assert config_diff(old, {**old, "task_ids": None, "columns": {}, "parquet": False, "by": []}, ()) == []
    assert config_diff(old, {**old, "task_ids": "hard.txt"}, ()) == ["task_ids: None -> 'hard.txt'"]
    assert config_diff(old, {"k": 10}, ()) == ["seed: 0 -> None"]  # 0 is a value, not an empty default
    assert config_diff(old, {**old, "k": 5}, ("k",)) == []
