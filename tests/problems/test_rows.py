"""Tests of focalpo.problems.rows: bad rows name file:line: field, gzip/plain JSONL, the rows cache, dataset_hash.

Run: .venv/bin/python -m pytest tests/problems/test_rows.py -q
"""

from __future__ import annotations

import hashlib
import json

import pytest
from problems_helpers import bcb_row, he_row, write_jsonl

from focalpo.problems import (
    ProblemFormatError,
    dataset_hash,
    load_bigcodebench,
    load_humaneval,
    load_humaneval_plus,
    load_mbpp_plus,
)


# ----------------------------------------------------------------------------------------------
# Bad rows: file:line: field


@pytest.mark.parametrize(
    "loader, rows, line, message",
    [
        (load_humaneval_plus, [he_row(), "{not json"], 2, r"bad\.jsonl:2: invalid JSON"),
        (load_humaneval_plus, [he_row(), he_row(entry_point=None)], 2, r"bad\.jsonl:2: field 'entry_point': is null"),
        (load_humaneval_plus, [{k: v for k, v in he_row().items() if k != "prompt"}], 1, r":1: field 'prompt': missing"),
        (load_humaneval_plus, [he_row(atol="0")], 1, r":1: field 'atol': expected integer or number, got str"),
        (load_humaneval_plus, [he_row(plus_input=[[1], 5])], 1, r":1: field 'plus_input': input 1: expected an argument list"),
        (load_humaneval_plus, [he_row(base_input="[[1]")], 1, r":1: field 'base_input': invalid JSON string"),
        (load_mbpp_plus, [he_row(task_id="Mbpp/124", base_input=[["x", "1j"]])], 1, r"field 'base_input': input 0: cannot deserialise"),
        (load_humaneval, [he_row(test="def helper(c):\n    pass\n")], 1, r"field 'test': expected one top-level `def check"),
        (load_humaneval, [he_row(test="def check(:\n")], 1, r"field 'test': does not parse"),
        (load_humaneval, ["[1, 2]"], 1, r":1: expected a JSON object, got list"),
        (load_bigcodebench, [bcb_row("import unittest\nclass T:\n    pass\n")], 1, r"field 'test': no unittest test method"),
        (load_bigcodebench, [{**bcb_row("class T(TestCase):\n    def test_x(self): pass\n"), "libs": "[os"}], 1, r"field 'libs'"),
    ],
)
def test_bad_rows_name_file_line_and_field(tmp_path, loader, rows, line, message):
    f = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(ProblemFormatError, match=message) as info:
        loader(f)
    assert info.value.line == line and info.value.path == str(f)


def test_gzip_and_plain_files_load_the_same(tmp_path):
    rows = [he_row(), "", he_row(task_id="T/1")]  # a blank line is skipped, line numbers kept
    plain = load_humaneval_plus(write_jsonl(tmp_path / "x.jsonl", rows))
    gz = load_humaneval_plus(write_jsonl(tmp_path / "x.jsonl.gz", rows, gz=True))
    assert plain == gz and [p.task_id for p in plain] == ["T/0", "T/1"]
    assert [t.args for t in plain[0].all_tests()] == [(1,), (2,), (3,)]
    as_strings = he_row(base_input=json.dumps([[1]]), plus_input=json.dumps([[2], [3]]))
    assert load_humaneval_plus(write_jsonl(tmp_path / "s.jsonl", [as_strings])) == plain[:1]
    with pytest.raises(ProblemFormatError, match=r"x\.jsonl\.gz:2: field 'atol'"):
        load_humaneval_plus(write_jsonl(tmp_path / "x.jsonl.gz", [he_row(), he_row(atol=[])], gz=True))


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_humaneval(tmp_path / "nope.jsonl")


# ----------------------------------------------------------------------------------------------
# The rows cache (a split left out)


def test_a_split_left_out_is_parsed_once_then_read_from_the_rows_cache(tmp_path, monkeypatch):
    """A base-only load parses the whole file once and caches the rows without `plus_input`
    (keyed by the file's hash); later base-only loads read the cache, not the file. Errors still
    name the original file and line; a corrupt or unwritable cache only costs the parse."""
    import focalpo.problems.rows as rows_mod

    monkeypatch.setenv("FOCALPO_CACHE", str(tmp_path / "cache"))
    row = {"task_id": "T/0", "prompt": "def f(x):\n", "entry_point": "f", "canonical_solution": "    return x\n",
           "test": "", "contract": "", "atol": 0, "base_input": [[1], [2]], "plus_input": [[3]] * 1000}  # fmt: skip
    bad = {**row, "task_id": "T/1", "entry_point": 7}
    data = tmp_path / "he.jsonl"
    data.write_text(json.dumps(row) + "\n\n" + json.dumps(bad) + "\n")
    with pytest.raises(ProblemFormatError, match=r"he\.jsonl:3: field 'entry_point'"):
        load_humaneval_plus(data, splits=["base"])
    (cache,) = (tmp_path / "cache" / "rows").iterdir()
    assert "plus_input" not in cache.read_text() and "base_input" in cache.read_text()
    calls = []
    real = rows_mod.iter_jsonl
    monkeypatch.setattr(rows_mod, "iter_jsonl", lambda p: calls.append(p) or real(p))
    with pytest.raises(ProblemFormatError, match=r"he\.jsonl:3: field 'entry_point'"):  # from the cache
        load_humaneval_plus(data, splits=["base"])
    assert calls == []
    data.write_text(json.dumps(row) + "\n")  # another file (hash): parsed again
    (p,) = load_humaneval_plus(data, splits=["base"])
    assert [t.args for t in p.tests["base"]] == [(1,), (2,)] and list(p.tests) == ["base"] and len(calls) == 1
    for cache in (tmp_path / "cache" / "rows").iterdir():
        cache.write_text("[not json")
    assert load_humaneval_plus(data, splits=["base"]) == [p] and len(calls) == 2  # rebuilt
    assert load_humaneval_plus(data, splits=["base"]) == [p] and len(calls) == 2
    assert len(load_humaneval_plus(data)[0].tests["plus"]) == 1000  # both splits: the file itself
    monkeypatch.setenv("FOCALPO_CACHE", str(data))  # a file, not a folder: nothing can be cached
    assert load_humaneval_plus(data, splits=["base"]) == [p]


# ----------------------------------------------------------------------------------------------
# dataset_hash


def test_dataset_hash(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_bytes(b"abc")
    assert dataset_hash(f) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert dataset_hash(f) == hashlib.sha256(b"abc").hexdigest()
