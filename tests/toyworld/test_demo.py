"""End-to-end test of `focalpo demo --preset mini`: every stage runs through focalpo.cli.main, the focused
run yields pairs, the five schemes train on them, the report files, pair viewer and demo.json carry a
result per method and a time per stage, the SFT mix is as configured, the held-out tasks are disjoint
from the train tasks, and a second run into the same directory is refused."""

from __future__ import annotations

import json

import pytest

from focalpo.cli import main
from focalpo.toyworld.demo import SCHEMES


def _task_ids(path):
    return {json.loads(line)["task_id"] for line in path.read_text().splitlines() if line.strip()}


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    assert main(["demo", "--preset", "mini", "--output", str(out), "--no-progress"]) == 0
    return out


def test_mini_demo_end_to_end(demo_dir):
    for name in ("report.md", "report.html", "pairs.html", "pass_at_1.png"):
        assert (demo_dir / name).is_file(), name
    demo = json.loads((demo_dir / "demo.json").read_text())
    (seed,) = demo["seeds"]
    results = seed["results"]
    # the mini preset is sized so that the focused run yields pairs (3 of 10 tasks on the dev machine), so
    # localisation and the five trainings run in CI too
    assert seed["training_skipped"] is None and seed["pairs"]["focused"] > 0
    assert set(results) == {"sft", *SCHEMES}
    assert all(0.0 <= r["pass@1"] <= 1.0 for r in results.values())
    oracle = seed["results_oracle"]  # the schemes again on the pairs the reference tests confirm, when any
    assert set(oracle) == ({f"{s}@oracle" for s in SCHEMES} if seed["pairs"]["oracle"] else set())
    evals = [f"{step}:{m}-greedy" for m in (*results, *oracle) for step in ("sample", "eval")]
    audits = [f"audit:{run}" for run in ("focused", "codeflow") if seed["pairs"][run]]
    assert set(seed["stage_seconds"]) == {"tasks", "sft-data", "model", "sft:solve-test", "sft:all-skills",
                                          "focused", "codeflow", *audits,
                                          "localize", "view", *(f"train:{s}" for s in SCHEMES),
                                          *(f"train:{m}" for m in oracle), *evals}
    for run in ("focused", "codeflow"):  # every pair's two programs judged on the reference tests
        audit = seed["audit"][run]
        assert audit["pairs"] == seed["pairs"][run]
        assert 0 <= audit["chosen_correct"] <= audit["pairs"] and 0 <= audit["rejected_incorrect"] <= audit["pairs"]
    if seed["pairs"]["focused"]:
        audited = json.loads((demo_dir / "results" / "audit-focused.json").read_text())["samples"]
        assert len(audited) == 2 * seed["pairs"]["focused"]
        chosen = [r for r in audited if r["sample_index"] % 2 == 0]  # chosen, rejected, chosen, ... per task
        assert sum(r["status"] == "pass" for r in chosen) == seed["audit"]["focused"]["chosen_correct"]
    assert all(t >= 0 for t in seed["stage_seconds"].values())
    assert seed["pairs"]["total"] == seed["pairs"]["focused"] + seed["pairs"]["codeflow"]
    assert seed["summaries"]["focused"]["problems"] == demo["config"]["focused_tasks"]
    for scheme in SCHEMES:  # every scheme trained from the SFT checkpoint on the localized pairs
        metrics = demo_dir / "models" / scheme / "metrics.jsonl"
        assert len(metrics.read_text().splitlines()) == demo["config"]["train_steps"]
    # no scheme silently collapsed to DPO: Target-DPO scores the rejected only at its error lines (fewer tokens
    # weighted), Focused-DPO up-weights the error-prone middle (mean weight above DPO's 1)
    training = seed["training"]
    assert training["dpo"]["tokens/weighted_fraction"] == training["dpo"]["tokens/mean_weight"] == 1.0
    for scheme in ("target", "target-rpo"):
        assert training[scheme]["tokens/weighted_fraction"] < 1.0, scheme
    assert training["focused"]["tokens/mean_weight"] > 1.0
    # paired comparisons over the same held-out tasks: every scheme against sft and dpo
    paired = demo["paired"]
    assert set(paired) == {"sft", *SCHEMES}
    for method in SCHEMES:
        assert set(paired[method]) == ({"sft"} if method == "dpo" else {"sft", "dpo"}), method
        for base, c in paired[method].items():
            assert c["units"] == demo["config"]["heldout_tasks"]
            assert c["mean_diff"] == pytest.approx(results[method]["pass@1"] - results[base]["pass@1"])
            assert 0.0 < c["p_value"] <= 1.0 and c["ci95"][0] <= c["mean_diff"] <= c["ci95"][1]
    assert "## Paired differences" in (demo_dir / "report.md").read_text()
    # the audit's verdict is in every pair record the viewer shows
    from focalpo.pairs import read_pairs

    pairs = read_pairs(demo_dir / "data" / "pairs.jsonl")
    verdicts = [p.meta["audit"] for p in pairs]
    assert len(verdicts) == seed["pairs"]["total"]
    assert sum("chosen passes" in v for v in verdicts) == sum(a["chosen_correct"] for a in seed["audit"].values())
    assert "reference tests: chosen" in (demo_dir / "pairs.html").read_text()
    confirmed = [p for p in pairs if p.meta["audit"] == "reference tests: chosen passes, rejected fails"]
    assert seed["pairs"]["oracle"] == len(confirmed)
    oracle_file = demo_dir / "data" / "pairs_oracle.jsonl"
    assert len(read_pairs(oracle_file)) == len(confirmed)
    if oracle:
        assert set(demo["table_oracle"]) == set(oracle) and "## Trained on oracle-filtered pairs" in \
            (demo_dir / "report.md").read_text()
        assert set(demo["paired_oracle"]["focused@oracle"]) == {"sft", "dpo@oracle"}
    assert demo["table"]["sft"]["pass@1"]["values"] == [results["sft"]["pass@1"]]
    pairs_page = (demo_dir / "pairs.html").read_text()
    # `focalpo view` on data/pairs.jsonl: every pair, token weights of every scheme, a focused record
    assert 'data-w="' in pairs_page and "Pass matrix" in pairs_page and "not ground truth" in pairs_page
    payload = pairs_page.split('id="payload">', 1)[1].split("</script>", 1)[0]
    assert len(json.loads(payload.replace("<\\/", "</"))) == seed["pairs"]["total"]
    assert "sft" in (demo_dir / "report.md").read_text()


def test_sft_mix_gives_the_codeflow_skills_to_the_first_tasks_only(demo_dir):
    demo = json.loads((demo_dir / "demo.json").read_text())
    n_sft, n_cf = demo["config"]["sft_tasks"], demo["config"]["sft_codeflow_tasks"]
    order = [json.loads(line)["task_id"] for line in (demo_dir / "data" / "sft_part.jsonl").read_text().splitlines()]
    skills: dict = {}
    for line in (demo_dir / "data" / "sft.jsonl").read_text().splitlines():
        row = json.loads(line)
        skills.setdefault(row["skill"], set()).add(row["task_id"])
    assert len(order) == n_sft and skills["solve"] == skills["test"] == set(order)
    assert skills["teacher"] == set(order[:n_cf]) and skills["repair"] <= set(order[:n_cf])


def test_heldout_samples_are_disjoint_from_train(demo_dir):
    train = _task_ids(demo_dir / "data" / "train.jsonl")
    parts = [_task_ids(demo_dir / "data" / f"{p}.jsonl") for p in ("sft_part", "focused_part", "codeflow_part")]
    assert set.union(*parts) == train and sum(map(len, parts)) == len(train)  # a partition of the train tasks
    sampled = _task_ids(demo_dir / "samples" / "sft-greedy.jsonl")
    assert sampled == _task_ids(demo_dir / "data" / "heldout.jsonl") and not sampled & train


def test_second_run_is_refused_without_overwrite(demo_dir, capsys):
    assert main(["demo", "--preset", "mini", "--output", str(demo_dir), "--no-progress"]) == 2
    assert "--overwrite" in capsys.readouterr().err
