"""The demo's oracle arm: pairs whose labels the reference tests confirm, and its tables.

Run: .venv/bin/python -m pytest tests/toyworld/test_oracle.py -q
"""

from __future__ import annotations

from focalpo.pairs import PreferencePair, read_pairs, write_pairs
from focalpo.report.render import markdown, report_blocks
from focalpo.toyworld.demo import ARMS, TRUE_LABELS, baselines, oracle_pairs, oracle_summary


def test_oracle_pairs_keeps_the_confirmed_labels_only(tmp_path):
    verdicts = [TRUE_LABELS, "reference tests: chosen FAILS, rejected fails", None, TRUE_LABELS]
    pairs = [PreferencePair("p", f"c{i}", f"r{i}", meta={"task_id": f"t{i}", **({"audit": v} if v else {})})
             for i, v in enumerate(verdicts)]
    write_pairs(tmp_path / "pairs.jsonl", pairs)
    assert oracle_pairs(tmp_path / "pairs.jsonl", tmp_path / "oracle.jsonl") == 2
    assert [p.meta["task_id"] for p in read_pairs(tmp_path / "oracle.jsonl")] == ["t0", "t3"]


def test_oracle_summary_and_its_report_section():
    per_task = {"sft": {"a": 0, "b": 0, "c": 1}}
    seeds = [{"seed": 0, "results": {"sft": {"pass@1": 1 / 3}}, "per_task": per_task, "pairs": {"total": 3, "oracle": 2},
              "results_oracle": {"dpo@focused": {"pass@1": 2 / 3}, "focused": {"pass@1": 1.0}},
              "per_task_oracle": {"dpo@focused": {"a": 1, "b": 0, "c": 1}, "focused": {"a": 1, "b": 1, "c": 1}},
              "stage_seconds": {}},
             {"seed": 1, "results": {"sft": {"pass@1": 0.0}}, "per_task": {"sft": {"a": 0}}, "pairs": {"total": 1},
              "results_oracle": {}, "stage_seconds": {}}]  # seed 1: no confirmed pair, no oracle arm
    table, paired = oracle_summary(seeds)
    assert table["focused"]["pass@1"]["values"] == [1.0]
    assert set(paired["focused"]) == {"sft", "dpo"}  # dpo: the DPO arm on the same (oracle-filtered) pairs
    assert paired["focused"]["sft"]["mean_diff"] == 2 / 3 and paired["focused"]["sft"]["units"] == 3
    assert paired["focused"]["dpo"]["mean_diff"] == 1 / 3 and set(paired["dpo@focused"]) == {"sft"}
    md = markdown(report_blocks({"seeds": seeds, "paired_oracle": paired}, viewer=None))
    assert "## Trained on oracle-filtered pairs" in md and "2, 0 pairs per seed" in md
    assert "| focused | dpo | +33.3 |" in md


def test_each_arm_is_compared_with_dpo_on_its_own_pipelines_pairs():
    table = baselines(ARMS)
    assert table["focused"] == {"sft": "sft", "dpo": "dpo@focused"}
    assert table["target"] == table["target-rpo"] == table["rpo@codeflow"] == {"sft": "sft", "dpo": "dpo@codeflow"}
    assert table["dpo@focused"] == table["dpo@codeflow"] == {"sft": "sft"}
    # without a DPO arm on a pipeline there is no dpo baseline for its arms
    assert baselines([("target", "target", "codeflow")]) == {"target": {"sft": "sft"}}
