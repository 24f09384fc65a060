"""End-to-end test of `focalpo demo --preset mini`: every stage runs through focalpo.cli.main, the report
and demo.json carry a result per method (or the reason training was skipped) and a time per stage, the
held-out tasks are disjoint from the train tasks, and a second run into the same directory is refused."""

from __future__ import annotations

import json

import pytest

from focalpo.cli import main
from focalpo.toyworld.demo import SCHEMES, aggregate, format_table


def _task_ids(path):
    return {json.loads(line)["task_id"] for line in path.read_text().splitlines() if line.strip()}


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    assert main(["demo", "--preset", "mini", "--output", str(out), "--no-progress"]) == 0
    return out


def test_mini_demo_end_to_end(demo_dir):
    assert (demo_dir / "report.md").is_file()
    demo = json.loads((demo_dir / "demo.json").read_text())
    (seed,) = demo["seeds"]
    results = seed["results"]
    assert 0.0 <= results["sft"]["pass@1"] <= 1.0
    if seed["training_skipped"]:
        assert seed["pairs"]["total"] == 0 and set(results) == {"sft"}
    else:
        assert seed["pairs"]["total"] > 0 and set(results) == {"sft", *SCHEMES}
    trained = [f"train:{s}" for s in SCHEMES] if not seed["training_skipped"] else []
    localize = ["localize"] if not seed["training_skipped"] else []
    evals = [f"{step}:{m}-greedy" for m in results for step in ("sample", "eval")]
    assert set(seed["stage_seconds"]) == {"tasks", "sft-data", "model", "sft", "focused", "codeflow",
                                          *localize, *trained, *evals}
    assert all(t >= 0 for t in seed["stage_seconds"].values())
    assert seed["pairs"]["total"] == seed["pairs"]["focused"] + seed["pairs"]["codeflow"]
    assert seed["summaries"]["focused"]["problems"] == demo["config"]["focused_tasks"]


def test_heldout_samples_are_disjoint_from_train(demo_dir):
    train = _task_ids(demo_dir / "data" / "train.jsonl")
    parts = [_task_ids(demo_dir / "data" / f"{p}.jsonl") for p in ("sft_part", "focused_part", "codeflow_part")]
    assert set.union(*parts) == train and sum(map(len, parts)) == len(train)  # a partition of the train tasks
    sampled = _task_ids(demo_dir / "samples" / "sft-greedy.jsonl")
    assert sampled == _task_ids(demo_dir / "data" / "heldout.jsonl") and not sampled & train


def test_second_run_is_refused_without_overwrite(demo_dir, capsys):
    assert main(["demo", "--preset", "mini", "--output", str(demo_dir), "--no-progress"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_table_mean_and_std_over_seeds():
    seeds = [{"results": {"sft": {"pass@1": 0.2}, "dpo": {"pass@1": 0.4}}},
             {"results": {"sft": {"pass@1": 0.4}, "dpo": {"pass@1": 0.4}}}]
    table = aggregate(seeds)
    assert table["sft"]["pass@1"]["mean"] == pytest.approx(0.3)
    assert table["sft"]["pass@1"]["std"] == pytest.approx(0.1414213, abs=1e-6)  # sample std of [0.2, 0.4]
    assert table["dpo"]["pass@1"]["std"] == 0.0
    assert "| sft | 30.0 ± 14.1 |" in format_table(table)
