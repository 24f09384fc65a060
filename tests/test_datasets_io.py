"""Every input kind of `focalpo.datasets_io`: JSONL, JSON lists, parquet, save_to_disk directories (Dataset
and DatasetDict), Hub ids (recognised, not fetched), column mapping, bad rows named by source and row.

Run: .venv/bin/python -m pytest tests/test_datasets_io.py -q
"""

from __future__ import annotations

import datetime
import json

import pytest

from focalpo.datasets_io import (
    Source,
    data_source,
    iter_source_rows,
    parse_columns,
    saved_dataset_splits,
    source_kind,
    write_parquet,
)

ROWS = [{"question": "q0", "accepted": "a0", "n": 0}, {"question": "q1", "accepted": "a1", "n": 1}]
MAP = (("prompt", "question"), ("chosen", "accepted"))


@pytest.fixture
def sources(tmp_path):
    from datasets import Dataset, DatasetDict

    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    js = tmp_path / "rows.json"
    js.write_text(json.dumps(ROWS))
    parquet = tmp_path / "rows.parquet"
    write_parquet(parquet, ROWS)
    disk = tmp_path / "disk"
    Dataset.from_list(ROWS).save_to_disk(str(disk))
    dd = tmp_path / "dd"
    DatasetDict({"train": Dataset.from_list(ROWS[:1]), "test": Dataset.from_list(ROWS[1:])}).save_to_disk(str(dd))
    return {"jsonl": jsonl, "json": js, "parquet": parquet, "disk": disk, "dd": dd}


@pytest.mark.parametrize("kind", ["jsonl", "json", "parquet", "disk"])
def test_every_kind_reads_the_same_rows_with_the_mapping(sources, kind):
    path = sources[kind]
    assert source_kind(path) == ("disk" if kind == "disk" else kind)
    assert [row for _, row in iter_source_rows(path)] == ROWS
    mapped = [row for _, row in iter_source_rows(Source(str(path), columns=MAP))]
    assert mapped == [{"prompt": "q0", "chosen": "a0", "n": 0}, {"prompt": "q1", "chosen": "a1", "n": 1}]


def test_rows_are_named_by_line_or_index(sources):
    assert [w for w, _ in iter_source_rows(sources["jsonl"])] == [f"{sources['jsonl']}:1", f"{sources['jsonl']}:2"]
    assert [w for w, _ in iter_source_rows(sources["parquet"])] == [f"{sources['parquet']}[0]", f"{sources['parquet']}[1]"]
    assert [w for w, _ in iter_source_rows(sources["disk"])] == [f"{sources['disk']}[0]", f"{sources['disk']}[1]"]


def test_dataset_dict_directory_needs_a_split(sources):
    dd = str(sources["dd"])
    assert [(w, r["n"]) for w, r in iter_source_rows(Source(dd, split="test"))] == [(f"{dd}:test[0]", 1)]
    with pytest.raises(ValueError, match=r"give --split, one of train, test"):
        list(iter_source_rows(dd))
    with pytest.raises(ValueError, match=r"one of train, test \(not 'dev'\)"):
        list(iter_source_rows(Source(dd, split="dev")))
    with pytest.raises(ValueError, match="a saved Dataset has no splits"):
        list(iter_source_rows(Source(str(sources["disk"]), split="train")))


def test_a_mapped_column_the_dataset_lacks_is_named(sources):
    with pytest.raises(ValueError, match=r"rows.parquet: column 'query' \(mapped to 'prompt'\) not found; its columns: "
                                         r"question, accepted, n"):
        list(iter_source_rows(Source(str(sources["parquet"]), columns=(("prompt", "query"),))))


def test_hub_ids_and_missing_paths():
    assert source_kind("org/dataset") == source_kind("dataset") == "hub"
    for ref in ("missing.jsonl", "./org/name", "/tmp/nope/x", "a/b/c", "data.parquet"):
        with pytest.raises(FileNotFoundError, match="no such file or directory"):
            source_kind(ref)


def test_bad_jsonl_line_and_non_object_rows(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: expected a JSON object, got list"):
        list(iter_source_rows(bad))
    assert [r for _, r in iter_source_rows(bad, objects=False)] == [{"a": 1}, [1, 2]]


def test_timestamps_come_back_as_iso_strings(tmp_path):
    from datasets import Dataset

    d = tmp_path / "ts"
    Dataset.from_list([{"contest_date": datetime.datetime(2024, 8, 3, 12, 0)}]).save_to_disk(str(d))
    assert [r for _, r in iter_source_rows(d)] == [{"contest_date": "2024-08-03T12:00:00"}]


def test_parse_columns_and_data_source():
    assert parse_columns("prompt=question, chosen=accepted,") == {"prompt": "question", "chosen": "accepted"}
    with pytest.raises(ValueError, match="expected FIELD=COLUMN"):
        parse_columns("prompt")
    assert data_source("x.jsonl") == "x.jsonl" and data_source(None, "train") is None
    assert data_source("org/d", "test", {"prompt": "q"}) == Source("org/d", "test", (("prompt", "q"),))


def test_write_parquet_is_atomic_and_refuses_mixed_schemas(tmp_path):
    out = tmp_path / "x.parquet"
    write_parquet(out, ROWS)
    before = out.read_bytes()
    with pytest.raises(ValueError, match="x.parquet: the rows do not share one column schema"):
        write_parquet(out, [{"a": 1}, {"a": "text"}])
    assert out.read_bytes() == before  # the old file is untouched
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_write_parquet_keeps_a_key_the_first_row_lacks(tmp_path):
    out = tmp_path / "mixed.parquet"
    write_parquet(out, [{"task_id": "t/0", "completion": "a"}, {"task_id": "t/1", "solution": "b"}])
    assert [row for _, row in iter_source_rows(out)] == [
        {"task_id": "t/0", "completion": "a", "solution": None},
        {"task_id": "t/1", "completion": None, "solution": "b"},
    ]


def test_saved_dataset_splits_tells_save_to_disk_directories_from_others(tmp_path):
    from datasets import Dataset, DatasetDict

    one = Dataset.from_list([{"a": 1}])
    one.save_to_disk(str(tmp_path / "ds"))
    DatasetDict(train=one, test=one).save_to_disk(str(tmp_path / "dd"))
    (tmp_path / "plain" / "task_0").mkdir(parents=True)
    assert saved_dataset_splits(tmp_path / "ds") == ()
    assert saved_dataset_splits(tmp_path / "dd") == ("train", "test")
    assert saved_dataset_splits(tmp_path / "plain") is None
    (tmp_path / "plain" / "dataset_dict.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"plain/dataset_dict\.json: not a DatasetDict's split list"):
        saved_dataset_splits(tmp_path / "plain")
