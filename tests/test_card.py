"""The dataset card of a pipeline run (`focalpo.card`): Hub front matter, command, counts, filters, licence.

Run: .venv/bin/python -m pytest tests/test_card.py -q
"""

from __future__ import annotations

import yaml

from focalpo import card


def header_and_body(text: str) -> tuple[dict, str]:
    _, header, body = text.split("---\n", 2)
    return yaml.safe_load(header), body


def test_card_of_a_benchmark_run_names_command_counts_filters_and_licence(monkeypatch):
    monkeypatch.setattr(card, "_command", None)
    card.record_command(["focused", "--benchmark", "mbpp+", "--out", "runs/fd dir"])
    config = {"pipeline": "focused", "benchmark": "mbpp+", "problems": None, "k": 10}
    summary = {"problems": 3, "pairs": 2, "matrix_density": 0.123456, "status": {"ok": 2}}
    header, body = header_and_body(card.dataset_card(pipeline="focused", config=config, summary=summary,
                                                     data_file="pairs.jsonl"))
    assert header["license"] == "apache-2.0" and "focused" in header["tags"]
    assert header["configs"] == [{"config_name": "default", "data_files": [{"split": "train", "path": "pairs.jsonl"}]}]
    assert "focalpo focused --benchmark mbpp+ --out 'runs/fd dir'" in body
    assert "| pairs | 2 |" in body and "| matrix_density | 0.1235 |" in body
    assert "Focused-DPO" in body and "mbpp+ problems" in body and '"k": 10' in body


def test_unknown_sources_and_filters_that_did_not_run_are_said_loudly(monkeypatch):
    monkeypatch.setattr(card, "_command", None)
    config = {"pipeline": "codeflow", "instructions": "tasks.parquet", "benchmark": "jsonl"}
    summary = {"pairs_kept": 1, "filters": {"judge": 0},
               "filters_not_run": {"too_many_tokens": {"pairs": 4, "reason": "no tokenizer was given"}}}
    header, body = header_and_body(card.dataset_card(pipeline="codeflow", config=config, summary=summary,
                                                     data_file="pairs.parquet"))
    assert header["license"] == "other"
    assert "unknown: the problems come from `tasks.parquet`" in body
    assert "**Warning: filter `too_many_tokens` did not run on 4 candidate pairs:** no tokenizer was given" in body
    assert "(run from Python, not from the command line)" in body
