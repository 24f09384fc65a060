"""ScriptedBackend and the shared helpers of focalpo.generate.base (stop truncation, registry).

Run: .venv/bin/python -m pytest tests/generate/test_scripted.py -q
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from focalpo.generate import Backend, GenerationError, get_backend, truncate_at_stop


def test_truncate_at_stop_cuts_at_earliest_stop():
    assert truncate_at_stop("abc```def```", ["```"]) == "abc"
    assert truncate_at_stop("x = 1\nprint(x)\n```", ["print", "x"]) == ""  # earliest among several
    assert truncate_at_stop("x = 1\nprint(x)", ["print", "\n"]) == "x = 1"
    assert truncate_at_stop("abc", ["z", ""]) == "abc"
    assert truncate_at_stop("abc", None) == "abc"


def test_scripted_cycles_cuts_and_records():
    b = get_backend("scripted", completions={"p": ["a\n```", "b"], "m": ["c"]}, default=["d"])
    assert isinstance(b, Backend)
    out = b.generate(["p", [{"role": "user", "content": "m"}], "other"], n=3, stop=["\n```"], seed=4)
    assert out == [["a", "b", "a"], ["c", "c", "c"], ["d", "d", "d"]]
    assert b.calls[0]["n"] == 3 and b.calls[0]["seed"] == 4 and b.calls[0]["stop"] == ["\n```"]
    seeds = [7, 8, 9]
    assert b.generate(["p", "m", "other"], n=1, seed=seeds) == [["a\n```"], ["c"], ["d"]]  # the seed changes nothing
    seeds[0] = 0  # the record is a copy, as given
    assert b.calls[1]["seed"] == [7, 8, 9]
    b.generate(["p"], seed=(5,))
    assert b.calls[2]["seed"] == [5]


def test_scripted_unknown_prompt_is_an_error():
    b = get_backend("scripted", completions={"p": ["a"]})
    with pytest.raises(GenerationError, match="prompt 1 has no scripted completions: 'q'"):
        b.generate(["p", "q"])
    with pytest.raises(ValueError, match="empty"):
        get_backend("scripted", completions={"p": []})


def test_import_is_light():
    """`import focalpo.generate` (and the scripted / openai backends) pull in neither torch nor transformers."""
    code = ("import sys, focalpo.generate, focalpo.generate.openai_api, focalpo.generate.scripted; "
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_scripted_conversations_answer_by_turn():
    from focalpo.generate import GenerationError, get_backend

    b = get_backend("scripted", conversations={"fix it": ["v1", "v2"]}, default=["other"])
    first = [{"role": "user", "content": "fix it"}]
    second = first + [{"role": "assistant", "content": "v1"}, {"role": "user", "content": "error: ..."}]
    assert b.generate([first, second, "plain"], n=1) == [["v1"], ["v2"], ["other"]]
    third = second + [{"role": "assistant", "content": "v2"}, {"role": "user", "content": "again"}]
    with pytest.raises(GenerationError, match="has 2 turns, asked for turn 3"):
        b.generate([third])
