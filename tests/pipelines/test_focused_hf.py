"""`focalpo focused` through the hf backend with a tiny local Llama: the wiring, end to end.

A random 2-layer model writes no working programs, so this proves the path (CLI -> config ->
hf sampling with per-problem seeds -> extraction -> sandbox -> records -> outputs), not the data.

Run: .venv/bin/python -m pytest tests/pipelines/test_focused_hf.py -q
"""

from __future__ import annotations

import json

from focalpo.cli import main

PROBLEMS = [
    {"task_id": f"toy/{name}", "prompt": f"Write {name}(x).", "entry_point": name, "tests": []}
    for name in ("inc", "dec", "double")
]


def run_cli(tmp_path, out: str, model_dir, batch: int) -> dict:
    args = ["focused", "--benchmark", "jsonl", "--problems", str(tmp_path / "problems.jsonl"), "--backend", "hf",
            "--model", str(model_dir), "--k", "3", "--k-tests", "2", "--max-new-tokens", "12",
            "--batch-problems", str(batch), "--workers", "1", "--out", str(tmp_path / out), "--no-progress",
            "test_max_new_tokens=8", "backend_options.device=cpu"]
    assert main(args) == 0
    return {r["task_id"]: r for r in map(json.loads, open(tmp_path / out / "records.jsonl"))}


def test_hf_backend_end_to_end_is_deterministic_per_problem(tmp_path, tiny_model_dir, capsys):
    (tmp_path / "problems.jsonl").write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS))
    a = run_cli(tmp_path, "a", tiny_model_dir, batch=3)
    b = run_cli(tmp_path, "b", tiny_model_dir, batch=1)  # other batches: the same samples (per-problem seeds)
    assert set(a) == {p["task_id"] for p in PROBLEMS}
    assert a == b
    for record in a.values():
        assert record["status"] in {"ok", "no_programs", "no_tests", "no_correct", "no_incorrect", "no_pairs"}
        dropped = sum(v for k, v in record["dropped"].items() if k.startswith("programs_"))
        assert len(record["programs"]) + dropped == 3  # every sample is kept or counted as dropped
        if "pass_matrix" in record:
            assert [len(row) for row in record["pass_matrix"]] == [len(record["tests"])] * len(record["programs"])
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["problems"] == 3 and summary["config"]["backend"] == "hf"
    assert (tmp_path / "a" / "pairs.jsonl").exists()
    assert '"problems": 3' in capsys.readouterr().out
