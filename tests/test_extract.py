"""Tests of focalpo.extract: fenced code extraction, evalplus samples, assert splitting.

Run: .venv/bin/python -m pytest tests/test_extract.py -q
"""

from __future__ import annotations

import gzip
import json

import pytest

from focalpo.extract import (
    FencedBlock,
    extract_code,
    fenced_blocks,
    program_from_sample,
    read_samples,
    split_asserts,
)

F = "```"  # keeps the fences in these tests readable

# --------------------------------------------------------------------------------------------------
# extract_code


def test_no_fence_returns_text_unchanged():
    text = "def f(x):\n    return x + 1\n"
    assert extract_code(text) == text
    assert extract_code("def f():\r\n    return 1\r\n") == "def f():\n    return 1\n"


def test_single_python_block_among_prose():
    text = f"Sure! Here it is:\n\n{F}python\ndef f(x):\n    return x\n{F}\n\nThis returns x."
    assert extract_code(text) == "def f(x):\n    return x\n"


def test_python_tag_preferred_over_longer_untagged_block():
    text = f"{F}\nx = 1\ny = 2\nz = 3\nprint(x + y + z)\n{F}\n\n{F}py\ndef f():\n    pass\n{F}\n"
    assert extract_code(text) == "def f():\n    pass\n"


def test_longest_parsing_block_wins_among_python_blocks():
    usage = f"{F}python\nprint(f(3))\n{F}"
    solution = f"{F}python\ndef f(x):\n    return 2 * x\n{F}"
    broken = f"{F}python\ndef f(x):\n    return 2 * x +\n    # oops, the longest but not python\n{F}"
    text = f"{usage}\n{solution}\n{broken}\n"
    assert extract_code(text) == "def f(x):\n    return 2 * x\n"


def test_non_parsing_blocks_still_beat_raw_text():
    text = f"Answer:\n{F}python\ndef f(:\n{F}\n"
    assert extract_code(text) == "def f(:\n"


def test_equal_blocks_tie_goes_to_the_first():
    assert extract_code(f"{F}python\na = 1\n{F}\n{F}python\nb = 2\n{F}\n") == "a = 1\n"


def test_tag_case_info_string_and_tilde_fences():
    assert extract_code(f"{F}Python title=sol.py\nx = 1\n{F}") == "x = 1\n"
    assert extract_code(f"{F}{{.python}}\nx = 2\n{F}") == "x = 2\n"
    assert extract_code("~~~python3\nx = 3\n~~~\n") == "x = 3\n"
    # a backtick line does not close a tilde fence
    assert extract_code(f"~~~\ns = '''\n{F}\n'''\n~~~") == f"s = '''\n{F}\n'''\n"


def test_other_languages_are_ignored():
    text = f"Run:\n{F}bash\npip install numpy\n{F}\nthen\n{F}python\nimport numpy\n{F}\n"
    assert extract_code(text) == "import numpy\n"
    only_bash = f"{F}bash\nls\n{F}\n"
    assert extract_code(only_bash) == only_bash
    assert extract_code(f"{F}cpp\nint main() {{}}\n{F}\n{F}python\nx = 1\n{F}", language="cpp") == "int main() {}\n"


def test_empty_blocks_are_ignored():
    assert extract_code(f"{F}python\n{F}\n{F}\nx = 1\n{F}") == "x = 1\n"


def test_crlf_fences():
    text = f"Here:\r\n{F}python\r\ndef f():\r\n    return 1\r\n{F}\r\nDone.\r\n"
    assert extract_code(text) == "def f():\n    return 1\n"


def test_unterminated_final_fence_runs_to_end():
    text = f"Here:\n{F}python\ndef f(x):\n    return x * 2\n"
    assert extract_code(text) == "def f(x):\n    return x * 2\n"
    blocks = fenced_blocks(text)
    assert blocks == [FencedBlock(tag="python", code="def f(x):\n    return x * 2\n", closed=False)]


def test_unterminated_fence_cut_mid_closing_fence():
    assert extract_code(f"{F}python\nx = 1\n``") == "x = 1\n"
    assert extract_code(f"{F}python\nx = 1\n`\n") == "x = 1\n"


def test_backticks_inside_code_lines_do_not_close_the_fence():
    code = 'fence = "```"\nmd = f"{fence}python\\n{body}\\n{fence}"\nx = `1` if False else 2\n'
    # the last line is not Python 3, but its backticks must not end the block early
    text = f"{F}python\n{code}{F}\n"
    assert extract_code(text) == code


def test_fence_inside_a_docstring_extends_the_block():
    code = f'def render():\n    """Render as:\n\n    {F}python\n    x = 1\n    {F}\n    """\n    return 1\n'
    # the indented fences inside the docstring are not at column 0 here, so make them so:
    code = code.replace(f"    {F}", F)
    text = f"Solution:\n{F}python\n{code}{F}\nThat is all."
    assert extract_code(text) == code


def test_indented_fence_in_a_list_item_is_dedented():
    text = f"1. Write the function:\n\n   {F}python\n   def f():\n       return 1\n   {F}\n"
    assert extract_code(text) == "def f():\n    return 1\n"


def test_inline_triple_backticks_are_not_fences():
    text = f"Use {F}x{F} here.\n{F}python\ny = 2\n{F}"
    assert extract_code(text) == "y = 2\n"
    assert fenced_blocks(f"{F}python{F}\nx = 1\n") == []


def test_longer_opening_fence_needs_as_long_a_closing_fence():
    text = f"````python\ns = '''\n{F}\n'''\n````\n"
    assert fenced_blocks(text) == [FencedBlock(tag="python", code=f"s = '''\n{F}\n'''\n", closed=True)]


# --------------------------------------------------------------------------------------------------
# program_from_sample


def test_program_from_solution_and_completion():
    prompt = "def f(x):\n"
    assert program_from_sample({"task_id": "t/0", "completion": "    return x\n"}, prompt) == "def f(x):\n    return x\n"
    solution = f"{F}python\ndef f(x):\n    return 1\n{F}"
    assert program_from_sample({"task_id": "t/0", "solution": solution}, prompt) == "def f(x):\n    return 1\n"
    # solution wins over completion (evalplus); a null field is absent
    both = {"task_id": "t/0", "solution": "A = 1\n", "completion": "B = 2\n"}
    assert program_from_sample(both, prompt) == "A = 1\n"
    assert program_from_sample({"task_id": "t/0", "solution": None, "completion": "  pass\n"}, prompt) == "def f(x):\n  pass\n"


def test_program_from_sample_errors_name_file_line_and_field():
    with pytest.raises(ValueError, match=r"^s\.jsonl:7: sample for task 't/0' has neither a 'solution' nor a 'completion'"):
        program_from_sample({"task_id": "t/0"}, "", file="s.jsonl", line=7)
    with pytest.raises(ValueError, match=r"^s\.jsonl:3: field 'solution' must be a string, got int"):
        program_from_sample({"task_id": "t/0", "solution": 5}, "", file="s.jsonl", line=3)
    # location defaults to the sample's own _file/_line (set by read_samples)
    with pytest.raises(ValueError, match=r"^a\.jsonl:2: field 'completion' must be a string, got list"):
        program_from_sample({"task_id": "t/0", "completion": [], "_file": "a.jsonl", "_line": 2}, "")
    with pytest.raises(ValueError, match=r"^<sample>: "):
        program_from_sample({}, "")


# --------------------------------------------------------------------------------------------------
# read_samples


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_read_jsonl_skips_blank_lines_and_records_location(tmp_path):
    path = tmp_path / "samples.jsonl"
    write_lines(path, [json.dumps({"task_id": "t/0", "completion": "a"}), "", "  ", json.dumps({"task_id": "t/1", "solution": "b"})])
    samples = list(read_samples(path))
    assert samples == [
        {"task_id": "t/0", "completion": "a", "_file": str(path), "_line": 1},
        {"task_id": "t/1", "solution": "b", "_file": str(path), "_line": 4},
    ]


def test_read_jsonl_gz_and_crlf(tmp_path):
    path = tmp_path / "samples.jsonl.gz"
    with gzip.open(path, "wb") as f:
        f.write(b'{"task_id": "t/0", "solution": "x = 1\\r\\n"}\r\n{"task_id": "t/1", "solution": "y"}\r\n')
    samples = list(read_samples(path))
    assert [(s["task_id"], s["solution"], s["_line"]) for s in samples] == [("t/0", "x = 1\r\n", 1), ("t/1", "y", 2)]


@pytest.mark.parametrize(
    "bad_line,match",
    [
        ('{"task_id": "t/1", ', r":2: invalid JSON: Expecting property name"),
        ("[1, 2]", r":2: expected a JSON object, got list"),
        ('{"solution": "x"}', r":2: field 'task_id' is missing or not a string"),
        ('{"task_id": 7}', r":2: field 'task_id' is missing or not a string"),
    ],
)
def test_read_jsonl_errors_name_file_and_line(tmp_path, bad_line, match):
    path = tmp_path / "s.jsonl"
    write_lines(path, ['{"task_id": "t/0", "solution": "x"}', bad_line])
    samples = read_samples(path)
    assert next(samples)["task_id"] == "t/0"  # lazy: the good first line comes through
    with pytest.raises(ValueError, match="s\\.jsonl" + match):
        next(samples)


def test_read_jsonl_not_utf8(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_bytes(b'{"task_id": "t/0"}\n{"task_id": "\xff"}\n')
    with pytest.raises(ValueError, match=r"s\.jsonl:2: not valid UTF-8"):
        list(read_samples(path))


def test_read_corrupt_gz(tmp_path):
    path = tmp_path / "s.jsonl.gz"
    path.write_bytes(b"this is not gzip\n")
    with pytest.raises(ValueError, match=r"s\.jsonl\.gz:1: cannot read"):
        list(read_samples(path))


def test_read_samples_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        read_samples(tmp_path / "nope.jsonl")


def test_read_sample_directory_evalplus_layout(tmp_path):
    for task_dir, files in {"HumanEval_0": ["10", "2", "0"], "HumanEval_1": ["0"], "abc_1_a": ["0"]}.items():
        (tmp_path / task_dir).mkdir()
        for name in files:
            (tmp_path / task_dir / f"{name}.py").write_text(f"# {task_dir} {name}\n", encoding="utf-8")
    (tmp_path / "HumanEval_0" / "notes.txt").write_text("ignored")
    (tmp_path / "README.md").write_text("ignored")

    samples = list(read_samples(tmp_path, task_ids=["abc_1/a"]))
    assert [(s["task_id"], s["solution"]) for s in samples] == [
        ("HumanEval/0", "# HumanEval_0 0\n"),  # numeric file order: 0, 2, 10
        ("HumanEval/0", "# HumanEval_0 2\n"),
        ("HumanEval/0", "# HumanEval_0 10\n"),
        ("HumanEval/1", "# HumanEval_1 0\n"),
        ("abc_1/a", "# abc_1_a 0\n"),  # settled by task_ids; evalplus would say "abc/1/a"
    ]
    assert samples[0]["_file"] == str(tmp_path / "HumanEval_0" / "0.py") and samples[0]["_line"] is None
    assert [s["task_id"] for s in read_samples(tmp_path)][-1] == "abc/1/a"


def test_read_parquet_and_save_to_disk_samples_name_rows_by_index(tmp_path):
    from datasets import Dataset, DatasetDict

    from focalpo.datasets_io import write_parquet

    rows = [{"task_id": "t/0", "completion": "a"}, {"task_id": "t/1", "solution": "b"}]
    path = tmp_path / "s.parquet"
    write_parquet(path, rows)
    samples = list(read_samples(path))
    assert [(s["task_id"], s["_file"], s["_line"]) for s in samples] == [("t/0", f"{path}[0]", None),
                                                                          ("t/1", f"{path}[1]", None)]
    # a null column counts as absent: row 0 runs its completion, row 1 its solution
    assert [program_from_sample(s, "P:") for s in samples] == ["P:a", "b"]
    one = Dataset.from_list(rows)
    one.save_to_disk(str(tmp_path / "ds"))
    assert [s["task_id"] for s in read_samples(tmp_path / "ds")] == ["t/0", "t/1"]
    DatasetDict(test=one).save_to_disk(str(tmp_path / "dd"))  # one split: read as it is
    assert [s["_file"] for s in read_samples(tmp_path / "dd")] == [f"{tmp_path / 'dd'}:test[0]", f"{tmp_path / 'dd'}:test[1]"]
    DatasetDict(train=one, test=one).save_to_disk(str(tmp_path / "two"))
    with pytest.raises(ValueError, match=r"two: a DatasetDict of 2 splits \(train, test\)"):
        read_samples(tmp_path / "two")


def test_a_bad_parquet_sample_row_is_named_with_its_field(tmp_path):
    from focalpo.datasets_io import write_parquet

    path = tmp_path / "s.parquet"
    write_parquet(path, [{"task_id": "t/0", "solution": "x"}, {"task_id": None, "solution": "y"}])
    samples = read_samples(path)
    assert next(samples)["task_id"] == "t/0"
    with pytest.raises(ValueError, match=r"s\.parquet\[1\]: field 'task_id' is missing or not a string"):
        next(samples)
    write_parquet(path, [{"task_id": "t/0", "solution": "x"}, {"task_id": "t/1", "solution": None}])
    _, bad = read_samples(path)
    with pytest.raises(ValueError, match=r"s\.parquet\[1\]: sample for task 't/1' has neither"):
        program_from_sample(bad, "")


def test_samples_from_directory_feed_program_from_sample(tmp_path):
    (tmp_path / "Mbpp_2").mkdir()
    (tmp_path / "Mbpp_2" / "0.py").write_text(f"Here:\n{F}python\ndef f():\n    return 2\n{F}\n", encoding="utf-8")
    (sample,) = read_samples(tmp_path)
    assert sample["task_id"] == "Mbpp/2"
    assert program_from_sample(sample, "unused prompt") == "def f():\n    return 2\n"


# --------------------------------------------------------------------------------------------------
# split_asserts


def test_split_asserts_keeps_top_level_asserts_in_order():
    code = (
        "from sol import f\n"
        "assert f(1) == 2\n"
        "x = f(3)\n"
        "assert x == 6, 'six'\n"
        "def test_inner():\n"
        "    assert f(0) == 0\n"
        "assert f(2) == 4; assert f(5) == 10\n"
    )
    assert split_asserts(code) == ["assert f(1) == 2", "assert x == 6, 'six'", "assert f(2) == 4", "assert f(5) == 10"]


def test_split_asserts_multiline_source_kept_verbatim():
    code = "assert f(\n    [1, 2],\n    3,\n) == [\n    4,\n]\n"
    assert split_asserts(code) == [code.rstrip("\n")]


def test_split_asserts_deduplicates_on_syntax_tree():
    code = "assert f(1)==2\nassert f(1) == 2\nassert (f(1) == 2)\nassert f(1) == 3\nassert f(1)==2  # again\n"
    assert split_asserts(code) == ["assert f(1)==2", "assert f(1) == 3"]


def test_split_asserts_drops_unparsable_statements():
    code = (
        "assert f(1) == 2\n"
        "assert f(2) == = 4\n"  # broken
        "assert f(\n"
        "    3) == 6\n"
        "this is prose, not code\n"
        "assert f('''a\n"  # unterminated string: dropped, the next line stands alone
        "assert f(4) == 8\n"
    )
    assert split_asserts(code) == ["assert f(1) == 2", "assert f(\n    3) == 6", "assert f(4) == 8"]


def test_split_asserts_crlf_indentation_and_empty():
    assert split_asserts("    assert a == 1\r\n    assert b == 2\r\n") == ["assert a == 1", "assert b == 2"]
    assert split_asserts("") == []
    assert split_asserts("print('no asserts')\n") == []


def test_split_asserts_with_backticks_in_strings():
    code = 'assert render("x") == "```python\\nx\\n```"\nassert g("`") == 1\n'
    assert split_asserts(code) == ['assert render("x") == "```python\\nx\\n```"', 'assert g("`") == 1']
