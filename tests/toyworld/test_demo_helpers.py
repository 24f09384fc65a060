"""The demo's helpers, without running the demo: the oracle arm (pairs whose labels the reference tests confirm)
and its tables, each arm's baselines, the tasks of seeds that share one policy and teacher.

Run: .venv/bin/python -m pytest tests/toyworld/test_demo_helpers.py -q
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


def test_seeds_sharing_the_sft_models_share_its_tasks_and_nothing_else():
    from dataclasses import replace

    from focalpo.toyworld.demo import PRESETS, seed_tasks

    cfg = replace(PRESETS["mini"], seeds=3, share_sft=True)
    ids = [{name: {p.task_id for p in part} for name, part in seed_tasks(cfg, s)[0].items()} for s in range(3)]
    keys = [{name: {p.meta.get("key", p.prompt) for p in part} for name, part in seed_tasks(cfg, s)[0].items()}
            for s in range(3)]
    assert ids[0]["sft_part"] == ids[1]["sft_part"] == ids[2]["sft_part"]
    downstream = [k["focused_part"] | k["codeflow_part"] for k in keys]
    assert all(len(ids[s]["focused_part"]) == cfg.focused_tasks and len(ids[s]["codeflow_part"]) == cfg.codeflow_tasks
               for s in range(3))
    assert not (downstream[0] & downstream[1]) and not (downstream[1] & downstream[2]) and not (downstream[0] & downstream[2])
    assert not any(d & keys[0]["sft_part"] for d in downstream)
    heldout = [{p.prompt for p in seed_tasks(cfg, s)[1]} for s in range(3)]
    assert heldout[0] != heldout[1] and not any(h & (downstream[0] | keys[0]["sft_part"]) for h in heldout)
    # without sharing, each seed draws all of its tasks from its own seed
    own = replace(cfg, share_sft=False)
    assert {p.prompt for p in seed_tasks(own, 1)[0]["sft_part"]} != {p.prompt for p in seed_tasks(own, 0)[0]["sft_part"]}
