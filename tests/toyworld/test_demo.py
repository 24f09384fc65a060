"""End-to-end test of `focalpo demo --preset mini`: every stage runs through focalpo.cli.main, the focused
run yields pairs, every arm whose pipeline gave pairs trains on them, the report files, pair viewer and
demo.json carry a result per arm and a time per stage, the policy's and the teacher's SFT data are as
configured, the held-out tasks are disjoint from the train tasks, and a second run into the same directory
is refused."""

from __future__ import annotations

import json

import pytest

from focalpo.cli import main
from focalpo.toyworld.demo import ARMS, ORACLE, PIPELINES, TRUE_LABELS


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
    report = (demo_dir / "report.md").read_text()
    (seed,) = demo["seeds"]
    results = seed["results"]
    arms = [tuple(a) for a in demo["config"]["arms"]]
    assert set(ARMS) <= set(arms)
    # the mini preset is sized so that the focused run yields pairs, so localisation, the continuation test and
    # the focused arms' trainings run in CI too; an arm whose pipeline gave no pair is skipped, saying so
    assert seed["training_skipped"] is None and seed["pairs"]["focused"] > 0
    trained = [name for name, _, pipeline in arms if seed["pairs"]["train"][pipeline]]
    assert {"dpo@focused", "focused", "target@focused"} <= set(trained)
    assert set(results) == {"sft", *trained}
    assert seed["skipped_arms"] == {name: f"no {pipeline} pairs" for name, _, pipeline in arms if name not in trained}
    assert all(0.0 <= r["pass@1"] <= 1.0 for r in results.values())
    oracle = seed["results_oracle"]  # the arms again on the pairs the reference tests confirm, when any
    assert set(oracle) <= set(trained) and bool(oracle) == bool(seed["pairs"]["oracle"])
    evals = [f"{step}:{m}-greedy" for m in results for step in ("sample", "eval")]
    evals += [f"{step}:{m}{ORACLE}-greedy" for m in oracle for step in ("sample", "eval")]
    audits = [f"audit:{run}" for run in PIPELINES if seed["pairs"][run]]
    assert set(seed["stage_seconds"]) == {"tasks", "sft-data", "model", "sft", "teacher", "focused", "continue",
                                          "codeflow", *audits, "localize", "view", *(f"train:{a}" for a in trained),
                                          *(f"train:{m}{ORACLE}" for m in oracle), *evals}
    for run in PIPELINES:  # every pair's two programs judged on the reference tests
        audit = seed["audit"][run]
        assert audit["pairs"] == seed["pairs"][run]
        assert 0 <= audit["chosen_correct"] <= audit["pairs"] and 0 <= audit["rejected_incorrect"] <= audit["pairs"]
    audited = json.loads((demo_dir / "results" / "audit-focused.json").read_text())["samples"]
    assert len(audited) == 2 * seed["pairs"]["focused"]
    chosen = [r for r in audited if r["sample_index"] % 2 == 0]  # chosen, rejected, chosen, ... per task
    assert sum(r["status"] == "pass" for r in chosen) == seed["audit"]["focused"]["chosen_correct"]
    assert all(t >= 0 for t in seed["stage_seconds"].values())
    assert seed["pairs"]["total"] == seed["pairs"]["focused"] + seed["pairs"]["codeflow"]
    for run in PIPELINES:  # training and validation pairs partition each pipeline's pairs
        assert seed["pairs"]["train"][run] + seed["pairs"]["validation"][run] == seed["pairs"][run]
    assert seed["summaries"]["focused"]["problems"] == demo["config"]["focused_tasks"]
    for arm in trained:  # every arm trained from the SFT checkpoint on its pipeline's pairs
        metrics = demo_dir / "models" / arm / "metrics.jsonl"
        assert sum("loss" in json.loads(line) for line in metrics.read_text().splitlines()) == demo["config"]["train_steps"]
    # Focused-DPO's continuation test ran on the focused pairs and is in the report
    cont = seed["continuation"]
    assert cont["pairs"] == seed["pairs"]["focused"] and cont["tests"] == "reference" and cont["n"] == 1
    assert 0.0 <= cont["chosen_mid"] <= 1.0 and 0.0 <= cont["rejected_mid"] <= 1.0
    assert "## Continuation test (Focused-DPO)" in report
    # no scheme silently collapsed to DPO: Target-DPO scores the rejected only at its error lines (fewer tokens
    # weighted), Focused-DPO up-weights the error-prone middle (mean weight above DPO's 1)
    training = seed["training"]
    for arm in trained:
        scheme = next(s for name, s, _ in arms if name == arm)
        fraction, mean = training[arm]["tokens/weighted_fraction"], training[arm]["tokens/mean_weight"]
        if scheme in ("dpo", "rpo"):
            assert fraction == mean == 1.0, arm
        elif scheme in ("target", "target-rpo"):
            assert fraction < 1.0, arm
        else:
            assert mean > 1.0, arm
    # paired comparisons over the same held-out tasks: every arm against sft and DPO on the same pairs
    paired = demo["paired"]
    assert set(paired) == set(trained)
    for arm in trained:
        scheme, pipeline = next((s, p) for name, s, p in arms if name == arm)
        assert set(paired[arm]) == ({"sft"} if scheme == "dpo" else {"sft", "dpo"}), arm
        for base, c in paired[arm].items():
            base_name = "sft" if base == "sft" else f"dpo@{pipeline}"
            assert c["units"] == demo["config"]["heldout_tasks"]
            assert c["mean_diff"] == pytest.approx(results[arm]["pass@1"] - results[base_name]["pass@1"])
            assert 0.0 < c["p_value"] <= 1.0 and c["ci95"][0] <= c["mean_diff"] <= c["ci95"][1]
    assert "## Paired differences" in report
    # validation pairs: every 5th of a pipeline's pairs, when it has 5; their localised margin in the report
    for run in PIPELINES:
        val = demo_dir / "data" / f"val_{run}.jsonl"
        assert val.is_file() == (seed["pairs"][run] >= 5) == bool(seed["pairs"]["validation"][run])
        for arm in (a for a, _, p in arms if p == run and a in trained):
            assert ("validation" in training[arm]) == val.is_file()
            if val.is_file():
                assert {"eval_loss", "eval_localized/margins"} <= set(training[arm]["validation"])
    if any(seed["pairs"]["validation"].values()):
        assert "## Validation pairs: localised-token margin" in report
    # the audit's verdict is in every pair record the viewer shows
    from focalpo.pairs import read_pairs

    pairs = read_pairs(demo_dir / "data" / "pairs.jsonl")
    verdicts = [p.meta["audit"] for p in pairs]
    assert len(verdicts) == seed["pairs"]["total"]
    assert sum("chosen passes" in v for v in verdicts) == sum(a["chosen_correct"] for a in seed["audit"].values())
    assert "reference tests: chosen" in (demo_dir / "pairs.html").read_text()
    trained_pairs = [p for run in PIPELINES if (demo_dir / "data" / f"pairs_{run}.jsonl").is_file()
                     for p in read_pairs(demo_dir / "data" / f"pairs_{run}.jsonl")]
    assert seed["pairs"]["oracle"] == sum(p.meta["audit"] == TRUE_LABELS for p in trained_pairs)
    if oracle:
        assert set(demo["table_oracle"]) == set(oracle) and "## Trained on oracle-filtered pairs" in report
    assert demo["table"]["sft"]["pass@1"]["values"] == [results["sft"]["pass@1"]]
    pairs_page = (demo_dir / "pairs.html").read_text()
    # `focalpo view` on data/pairs.jsonl: every pair, token weights of every scheme, a focused record
    assert 'data-w="' in pairs_page and "Pass matrix" in pairs_page and "not ground truth" in pairs_page
    payload = pairs_page.split('id="payload">', 1)[1].split("</script>", 1)[0]
    assert len(json.loads(payload.replace("<\\/", "</"))) == seed["pairs"]["total"]
    assert "sft" in report


def test_the_policy_learns_solve_and_test_the_teacher_its_codeflow_skills(demo_dir):
    demo = json.loads((demo_dir / "demo.json").read_text())
    n_sft, n_teacher = demo["config"]["sft_tasks"], demo["config"]["teacher_tasks"]
    order = [json.loads(line)["task_id"] for line in (demo_dir / "data" / "sft_part.jsonl").read_text().splitlines()]

    def skills(name):
        out: dict = {}
        for line in (demo_dir / "data" / name).read_text().splitlines():
            row = json.loads(line)
            out.setdefault(row["skill"], set()).add(row["task_id"])
        return out

    policy, teacher = skills("sft.jsonl"), skills("sft_teacher.jsonl")
    assert len(order) == n_sft and policy == {"solve": set(order), "test": set(order)}
    assert set(teacher) == {"teacher", "repair"} and teacher["teacher"] == set(order[:n_teacher])
    assert teacher["repair"] <= set(order[:n_teacher])
    # the teacher starts from the policy; codeflow asks the teacher, focused the policy
    assert json.loads((demo_dir / "runs" / "codeflow" / "config.json").read_text())["model"] == str(demo_dir / "models" / "teacher")
    assert json.loads((demo_dir / "runs" / "focused" / "config.json").read_text())["model"] == str(demo_dir / "models" / "sft")
    import yaml

    assert yaml.safe_load((demo_dir / "models" / "teacher" / "sft_config.yaml").read_text())["model"] == \
        str(demo_dir / "models" / "sft")


def test_heldout_samples_are_disjoint_from_train(demo_dir):
    train = _task_ids(demo_dir / "data" / "train.jsonl")
    parts = [_task_ids(demo_dir / "data" / f"{p}.jsonl") for p in ("sft_part", "focused_part", "codeflow_part")]
    assert set.union(*parts) == train and sum(map(len, parts)) == len(train)  # a partition of the train tasks
    sampled = _task_ids(demo_dir / "samples" / "sft-greedy.jsonl")
    assert sampled == _task_ids(demo_dir / "data" / "heldout.jsonl") and not sampled & train


def test_second_run_is_refused_without_overwrite(demo_dir, capsys):
    assert main(["demo", "--preset", "mini", "--output", str(demo_dir), "--no-progress"]) == 2
    assert "--overwrite" in capsys.readouterr().err
