"""Tests of focalpo.pairs: the PreferencePair record, its validation errors, and JSONL I/O.

Run: .venv/bin/python -m pytest tests/test_pairs.py -q
"""

from __future__ import annotations

import gzip
import json

import pytest

from focalpo.io import iter_json_rows
from focalpo.pairs import PairWriter, PreferencePair, check_record, read_pairs, write_pairs

CHOSEN = "def f(x):\n    return x + 1\n"  # 27 chars; line 2 = [10, 27)
REJECTED = "def f(x):\n    return x - 1\n"


def _pair(**kw) -> PreferencePair:
    base = dict(
        prompt="Write f.\n",
        chosen=CHOSEN,
        rejected=REJECTED,
        chosen_spans=((14, 27),),
        rejected_spans=((14, 27),),
        prefix_len=10,
        chosen_suffix_start=27,
        rejected_suffix_start=27,
        meta={"source": "x"},
    )
    return PreferencePair(**{**base, **kw})


def _conv_pair() -> PreferencePair:
    return PreferencePair(
        prompt=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "Write f."}],
        chosen=[{"role": "assistant", "content": CHOSEN}],
        rejected=[{"role": "assistant", "content": REJECTED}],
        rejected_spans=((14, 27),),
    )


def test_json_round_trip_keeps_every_field():
    p = _pair()
    record = p.to_json()
    assert record["chosen_spans"] == [[14, 27]]  # JSON lists, not tuples
    q = PreferencePair.from_json(json.loads(json.dumps(record)))
    assert q == p and q.meta == {"source": "x"}
    assert q.chosen_spans == ((14, 27),)


def test_unlocalised_fields_are_left_out_of_json():
    record = PreferencePair("p", "a", "b").to_json()
    assert record == {"prompt": "p", "chosen": "a", "rejected": "b"}


def test_conversational_pair_spans_index_the_assistant_content():
    p = _conv_pair()
    assert p.is_conversational and p.chosen_text == CHOSEN and p.rejected_text[14:26] == "return x - 1"
    assert PreferencePair.from_json(p.to_json()) == p


# --------------------------------------------------------------------------------------------------
# validation: each error names the place and the field


@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"chosen": None}, "chosen", "must be a string or a list"),
        ({"rejected": 3}, "rejected", "got int"),
        ({"rejected_spans": [[20, 14]]}, "rejected_spans", "start > end"),
        ({"rejected_spans": [[0, 28]]}, "rejected_spans", "out of range for a completion of 27"),
        ({"rejected_spans": [[-1, 3]]}, "rejected_spans", "out of range"),
        ({"chosen_spans": [[0, 5], [4, 8]]}, "chosen_spans", "overlaps or precedes"),
        ({"chosen_spans": [[10, 12], [0, 5]]}, "chosen_spans", "overlaps or precedes"),
        ({"chosen_spans": [[0, 1.5]]}, "chosen_spans", "pair of integers"),
        ({"chosen_spans": "0-5"}, "chosen_spans", "must be a list"),
        ({"prefix_len": 24}, "prefix_len", "differ within their first 24"),
        ({"chosen_suffix_start": 28}, "chosen_suffix_start", "beyond the end"),
        ({"rejected_suffix_start": 26}, "chosen_suffix_start", "!= rejected[rejected_suffix_start:]"),
        ({"rejected_suffix_start": None}, "rejected_suffix_start", "go together"),
        ({"prefix_len": True}, "prefix_len", "must be an integer"),
        ({"meta": []}, "meta", "must be an object"),
        ({"rejected_span": [[0, 1]]}, "rejected_span", "unknown field"),
    ],
)
def test_invalid_records_name_place_and_field(change, field, message):
    record = {**_pair().to_json(), **change}
    record = {k: v for k, v in record.items() if v is not None or k in ("chosen",)}
    with pytest.raises(ValueError) as e:
        check_record(record, "data.jsonl:7")
    assert str(e.value).startswith(f"data.jsonl:7: field {field!r}: "), str(e.value)
    assert message in str(e.value)


def test_missing_required_field():
    with pytest.raises(ValueError, match=r"^f:2: field 'rejected': missing$"):
        check_record({"prompt": "p", "chosen": "c"}, "f:2")


@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"chosen": CHOSEN}, "chosen", "is a string but 'prompt' is a list"),
        ({"chosen": [{"role": "user", "content": "x"}]}, "chosen", "exactly one assistant message"),
        ({"rejected": [{"role": "assistant", "content": "a"}] * 2}, "rejected", "exactly one assistant"),
        ({"prompt": [{"role": "user"}]}, "prompt", "string 'role' and 'content'"),
        ({"prompt": []}, "prompt", "non-empty list"),
    ],
)
def test_invalid_conversational_records(change, field, message):
    record = {**_conv_pair().to_json(), **change}
    with pytest.raises(ValueError, match=rf"^r\[3\]: field '{field}': .*{message}"):
        check_record(record, "r[3]")


def test_plain_prompt_with_message_completions_is_rejected():
    record = {"prompt": "p", "chosen": [{"role": "assistant", "content": "a"}], "rejected": "b"}
    with pytest.raises(ValueError, match="field 'chosen': is a list of messages but 'prompt' is a string"):
        check_record(record, "x")


# --------------------------------------------------------------------------------------------------
# I/O


def test_write_then_read_round_trip(tmp_path):
    pairs = [_pair(), _conv_pair(), PreferencePair("p", "a", "b")]
    path = tmp_path / "sub" / "pairs.jsonl"
    assert write_pairs(path, pairs) == 3
    assert read_pairs(path) == pairs
    assert [p.meta for p in read_pairs(path)] == [{"source": "x"}, {}, {}]
    assert not [p for p in path.parent.iterdir() if p.name != "pairs.jsonl"]  # no temp file left


def test_write_refuses_to_overwrite_and_keeps_old_file(tmp_path):
    path = tmp_path / "pairs.jsonl"
    write_pairs(path, [_pair()])
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="pairs.jsonl exists"):
        write_pairs(path, [PreferencePair("p", "a", "b")])
    assert path.read_bytes() == before
    write_pairs(path, [PreferencePair("p", "a", "b")], overwrite=True)
    assert read_pairs(path) == [PreferencePair("p", "a", "b")]


def test_failed_write_leaves_no_file(tmp_path):
    def pairs():
        yield _pair()
        raise RuntimeError("generator broke")

    path = tmp_path / "pairs.jsonl"
    with pytest.raises(RuntimeError):
        write_pairs(path, pairs())
    assert list(tmp_path.iterdir()) == []


def test_read_errors_name_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = json.dumps(_pair().to_json())
    bad = json.dumps({**_pair().to_json(), "rejected_spans": [[3, 2]]})
    path.write_text(f"{good}\n\n{bad}\n")
    with pytest.raises(ValueError, match=rf"^{path}:3: field 'rejected_spans': span \[3, 2\) has start > end"):
        read_pairs(path)
    path.write_text(f"{good}\n{{oops\n")
    with pytest.raises(ValueError, match=rf"^{path}:2: invalid JSON"):
        read_pairs(path)
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_pairs(tmp_path / "missing.jsonl")


def test_json_list_and_gzip_inputs(tmp_path):
    rows = [{"prompt": "p", "chosen": "a", "rejected": "b"}, {"prompt": "q", "chosen": "c", "rejected": "d"}]
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    assert [w for w, _ in iter_json_rows(tmp_path / "rows.json")] == [f"{tmp_path}/rows.json[0]", f"{tmp_path}/rows.json[1]"]
    with gzip.open(tmp_path / "rows.jsonl.gz", "wt") as f:
        f.write("\n".join(json.dumps(r) for r in rows) + "\n")
    assert [r for _, r in iter_json_rows(tmp_path / "rows.jsonl.gz")] == rows
    (tmp_path / "obj.json").write_text("{}")
    with pytest.raises(ValueError, match="must hold a list of rows, got dict"):
        list(iter_json_rows(tmp_path / "obj.json"))


def test_pair_writer_appends_and_flushes_each_record(tmp_path):
    path = tmp_path / "pairs.jsonl"
    write_pairs(path, [_pair()])
    with PairWriter(path) as w:
        w.write(PreferencePair("p", "a", "b"))
        assert len(path.read_text().splitlines()) == 2  # visible before close
        w.write(_conv_pair())
    assert read_pairs(path) == [_pair(), PreferencePair("p", "a", "b"), _conv_pair()]


def test_pair_writer_cuts_a_torn_last_record_with_a_warning(tmp_path):
    path = tmp_path / "pairs.jsonl"
    write_pairs(path, [_pair()])
    with open(path, "a") as f:
        f.write('{"prompt": "half a rec')
    with pytest.warns(UserWarning, match=rf"{path}:2: dropping a torn last record \(22 bytes"):
        w = PairWriter(path)
    w.write(PreferencePair("p", "a", "b"))
    w.close()
    assert read_pairs(path) == [_pair(), PreferencePair("p", "a", "b")]


def test_as_conversational_wraps_texts_and_keeps_spans():
    p = PreferencePair("Write f.", "def f(): return 1\n", "def f(): return 2\n", chosen_spans=((16, 17),),
                       rejected_spans=((16, 17),), prefix_len=16, chosen_suffix_start=17, rejected_suffix_start=17)
    c = p.as_conversational()
    assert c.prompt == [{"role": "user", "content": "Write f."}]
    assert c.chosen == [{"role": "assistant", "content": "def f(): return 1\n"}]
    assert (c.chosen_spans, c.prefix_len, c.chosen_suffix_start) == (p.chosen_spans, 16, 17)
    assert c.chosen_text[16:17] == "1" and c.as_conversational() is c
    check_record(c.to_json(), "<test>")


# --------------------------------------------------------------------------------------------------
# parquet and other dataset sources


def test_parquet_round_trip_plain_and_conversational(tmp_path):
    import pyarrow.parquet as pq

    for name, pairs in (("plain", [_pair(), _pair(meta={"other": [1, 2]}, prefix_len=None, chosen_suffix_start=None,
                                                       rejected_suffix_start=None)]),
                        ("conv", [_conv_pair(), _conv_pair()])):
        path = tmp_path / f"{name}.parquet"
        assert write_pairs(path, pairs) == 2
        back = read_pairs(path)
        assert back == pairs and [p.meta for p in back] == [p.meta for p in pairs]
        columns = pq.read_schema(path).names
        assert columns[:3] == ["prompt", "chosen", "rejected"] and "rejected_spans" in columns and "meta" in columns


def test_dataset_rows_keep_unknown_columns_in_meta_and_name_bad_rows(tmp_path):
    from datasets import Dataset

    rows = [{"prompt": "p", "chosen": CHOSEN, "rejected": REJECTED, "score": 0.5},
            {"prompt": "p", "chosen": CHOSEN, "rejected": REJECTED, "score": 0.7}]
    path = tmp_path / "trl.parquet"
    Dataset.from_list(rows).to_parquet(str(path))
    assert [p.meta for p in read_pairs(path)] == [{"score": 0.5}, {"score": 0.7}]

    bad = tmp_path / "bad"
    Dataset.from_list([{**rows[0], "rejected_spans": [[0, 5]]}, {**rows[1], "rejected_spans": [[9, 4]]}]).save_to_disk(str(bad))
    with pytest.raises(ValueError, match=rf"{bad}\[1\]: field 'rejected_spans': span \[9, 4\) has start > end"):
        read_pairs(bad)
