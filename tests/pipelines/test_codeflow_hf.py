"""`focalpo codeflow` with a tiny local chat Llama through the hf backend: the wiring, end to end.

A random 2-layer model does not write the teacher format, so every first answer is rejected; this
proves the path (CLI -> config -> hf chat sampling with per-problem seeds -> parsing -> records ->
report), not the data. The scripted-teacher tests check the debugging loop itself.

Run: .venv/bin/python -m pytest tests/pipelines/test_codeflow_hf.py -q
"""

from __future__ import annotations

import json

from focalpo.cli import main


def test_hf_teacher_end_to_end(tmp_path, tiny_chat_model_dir, capsys):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("".join(json.dumps({"task_id": f"t/{i}", "instruction": f"Write f{i}(x)."}) + "\n" for i in range(3)))
    args = ["codeflow", "--instructions", str(tasks), "--backend", "hf", "--model", str(tiny_chat_model_dir),
            "--backend-option", "device=cpu", "--max-new-tokens", "12", "--max-iterations", "2", "--workers", "1",
            "--out", str(tmp_path / "run"), "--no-progress"]
    assert main(args) == 0
    records = [json.loads(line) for line in open(tmp_path / "run" / "records.jsonl")]
    assert sorted(r["task_id"] for r in records) == ["t/0", "t/1", "t/2"]
    for r in records:
        assert r["status"] in {"rejected", "no_tests", "passed_first", "fixed", "never_fixed"}
        assert r["iterations"] >= 1
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["problems"] == 3 and summary["config"]["backend"] == "hf"
    assert "CodeFlow report: 3 problems" in capsys.readouterr().out
    assert main(args + ["--resume"]) == 0  # nothing left to do: no sampling, same outputs
    assert len(open(tmp_path / "run" / "records.jsonl").readlines()) == 3


def test_a_teacher_without_chat_template_is_a_clear_error(tmp_path, tiny_model_dir, capsys):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps({"task_id": "t/0", "instruction": "Write f(x)."}) + "\n")
    args = ["codeflow", "--instructions", str(tasks), "--backend", "hf", "--model", str(tiny_model_dir),
            "--backend-option", "device=cpu", "--out", str(tmp_path / "run"), "--no-progress"]
    assert main(args) == 2
    assert "needs a chat model" in capsys.readouterr().err
