"""`focalpo train` and TRL read the same parquet pairs file: the dataset side of train/data.py.

A parquet file written by `focalpo.pairs.write_pairs` trains with `focalpo train` exactly as its JSONL
twin does, and TRL 1.16's `DPOTrainer` takes it as it is (`datasets.load_dataset("parquet", ...)`).

Run: .venv/bin/python -m pytest tests/train/test_data.py -q
"""

from __future__ import annotations

import pytest
from train_helpers import PAIRS, make_model

from focalpo.cli import main
from focalpo.localize import localize_pair
from focalpo.pairs import write_pairs
from focalpo.train.output import read_metrics


def localised_pairs():
    return [localize_pair(p, c, r, meta={"task_id": f"t/{i}"}) for i, (p, c, r) in enumerate(PAIRS)]


def run_train(model_dir, data, out, *extra) -> int:
    return main(["train", "--model", str(model_dir), "--data", str(data), "--output", str(out), "--no-progress",
                 "--per-device-batch-size", "4", "--learning-rate", "1e-3", "--max-steps", "2", "--scheme", "target",
                 "save_steps=1000", *extra])


def test_parquet_pairs_train_as_their_jsonl_twin(model_dir, tmp_path):
    pairs = localised_pairs()
    write_pairs(tmp_path / "pairs.jsonl", pairs)
    write_pairs(tmp_path / "pairs.parquet", pairs)
    assert run_train(model_dir, tmp_path / "pairs.jsonl", tmp_path / "a") == 0
    assert run_train(model_dir, tmp_path / "pairs.parquet", tmp_path / "b") == 0
    a, b = read_metrics(tmp_path / "a" / "metrics.jsonl"), read_metrics(tmp_path / "b" / "metrics.jsonl")
    assert len(a) == len(b) == 2
    for x, y in zip(a, b):
        assert x["loss"] == pytest.approx(y["loss"], abs=1e-6)
        assert x["tokens/weighted_fraction"] == y["tokens/weighted_fraction"] < 1.0  # the target scheme's spans arrived


def test_save_to_disk_pairs_train_and_a_missing_source_is_named(model_dir, tmp_path, capsys):
    from datasets import load_dataset

    write_pairs(tmp_path / "pairs.parquet", localised_pairs())
    load_dataset("parquet", data_files=str(tmp_path / "pairs.parquet"), split="train").save_to_disk(str(tmp_path / "d"))
    assert run_train(model_dir, tmp_path / "d", tmp_path / "c") == 0
    assert len(read_metrics(tmp_path / "c" / "metrics.jsonl")) == 2
    assert run_train(model_dir, tmp_path / "nope.parquet", tmp_path / "e") == 2
    assert "nope.parquet: data file not found" in capsys.readouterr().err
    assert not (tmp_path / "e").exists()


def test_trl_dpo_trainer_trains_on_the_parquet_file(tokenizer, tmp_path):
    pytest.importorskip("trl")
    from datasets import load_dataset
    from trl import DPOConfig, DPOTrainer

    write_pairs(tmp_path / "pairs.parquet", localised_pairs())
    ds = load_dataset("parquet", data_files=str(tmp_path / "pairs.parquet"), split="train")
    assert ds.column_names[:3] == ["prompt", "chosen", "rejected"] and "rejected_spans" in ds.column_names
    args = DPOConfig(output_dir=str(tmp_path / "trl"), report_to="none", use_cpu=True, max_steps=2,
                     per_device_train_batch_size=4, learning_rate=1e-3, save_strategy="no", logging_steps=1,
                     bf16=False, gradient_checkpointing=False, max_length=None)
    trainer = DPOTrainer(model=make_model(tokenizer, seed=0), ref_model=make_model(tokenizer, seed=0), args=args,
                         train_dataset=ds, processing_class=tokenizer)
    result = trainer.train()
    assert result.global_step == 2
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 2 and losses[0] == pytest.approx(0.6931, abs=1e-3)  # policy == reference at step 1: log 2


def test_a_dataset_dict_with_other_column_names_trains_with_split_and_columns(model_dir, tmp_path, capsys):
    """A TRL-style dataset as users keep it: train/test splits, its own column names."""
    from datasets import DatasetDict, load_dataset

    write_pairs(tmp_path / "pairs.parquet", localised_pairs())
    ds = load_dataset("parquet", data_files=str(tmp_path / "pairs.parquet"), split="train")
    ds = ds.rename_columns({"prompt": "question", "chosen": "accepted"})
    DatasetDict(train=ds, test=ds.select(range(4))).save_to_disk(str(tmp_path / "dd"))
    assert run_train(model_dir, tmp_path / "pairs.parquet", tmp_path / "plain") == 0
    renamed = ["--split", "train", "--columns", "prompt=question,chosen=accepted"]
    assert run_train(model_dir, tmp_path / "dd", tmp_path / "mapped", *renamed,
                     "--eval-data", str(tmp_path / "dd"), "--eval-split", "test", "eval_steps=1") == 0
    plain, mapped = read_metrics(tmp_path / "plain" / "metrics.jsonl"), read_metrics(tmp_path / "mapped" / "metrics.jsonl")
    assert [r["loss"] for r in mapped if "loss" in r] == pytest.approx([r["loss"] for r in plain], abs=1e-6)
    assert any("eval_loss" in r for r in mapped)  # the test split served as validation
    # without the split a two-split directory is refused, naming its splits, before anything is written
    assert run_train(model_dir, tmp_path / "dd", tmp_path / "nosplit", "--columns", "prompt=question") == 2
    assert "give --split, one of train, test" in capsys.readouterr().err
    assert not (tmp_path / "nosplit").exists()
