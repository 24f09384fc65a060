"""Target-DPO's rule filters and the judge filter (focalpo.pipelines.filters).

Run: .venv/bin/python -m pytest tests/pipelines/test_filters.py -q
"""

from __future__ import annotations

import pytest

from focalpo.generate import get_backend
from focalpo.localize import localize_pair
from focalpo.pipelines.filters import (
    judge_filter,
    judge_prompt,
    judge_says_no,
    not_run,
    rejected_line_count,
    rule_filters,
)
from focalpo.prompts import JUDGE_TEMPLATE

CHOSEN = "```python\ndef f(x):\n    # double it\n    return 2 * x\n```"


def pair(rejected: str):
    return localize_pair("Write f.", CHOSEN, rejected, method="lcs")


def test_a_real_fix_passes_every_rule():
    p = pair("```python\ndef f(x):\n    # double it\n    return x + 2\n```")
    assert rejected_line_count(p) == 1
    assert rule_filters(p) == {"rejected_only_comments": False, "rejected_too_long": False,
                               "too_many_tokens": None, "identical_ast": False}  # None: no tokenizer, not run


def test_comment_only_difference_is_removed_twice():
    p = pair("```python\ndef f(x):\n    # triple it?\n\n    return 2 * x\n```")
    verdicts = rule_filters(p)
    assert verdicts["rejected_only_comments"] and verdicts["identical_ast"]


def test_docstring_change_is_code_not_comment():
    p = pair('```python\ndef f(x):\n    """Old doc."""\n    # double it\n    return 2 * x\n```')
    verdicts = rule_filters(p)
    assert not verdicts["rejected_only_comments"] and not verdicts["identical_ast"]


def test_long_rejected_region():
    body = "".join(f"    y{i} = x\n" for i in range(21))
    p = pair(f"```python\ndef f(x):\n{body}    return 2 * x\n```")
    assert rejected_line_count(p) == 21  # the lines only the rejected side has (the comment is D+)
    assert rule_filters(p)["rejected_too_long"]
    assert not rule_filters(p, max_rejected_lines=21)["rejected_too_long"]


class CharTokenizer:
    """One token per character: the token filter's threshold is exact."""

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": list(range(len(text)))}


def test_token_limit_uses_the_tokenizer():
    rejected = "```python\ndef f(x):\n    # double it\n    return x + 2 + 0\n```"
    p = pair(rejected)
    assert rule_filters(p, tokenizer=CharTokenizer(), max_tokens=len(rejected))["too_many_tokens"] is False
    assert rule_filters(p, tokenizer=CharTokenizer(), max_tokens=len(rejected) - 1)["too_many_tokens"] is True
    verdicts = rule_filters(p, tokenizer=None, max_tokens=1)
    assert verdicts["too_many_tokens"] is None and not_run(verdicts) == ["too_many_tokens"]  # no tokenizer: not run


@pytest.mark.parametrize("answer, removed", [("No", True), ("no.", True), ("**No**, they are the same", True),
                                             ("Yes", False), ("yes, B is off by one", False), ("", False),
                                             ("Not sure", False)])
def test_judge_answer(answer, removed):
    assert judge_says_no(answer) is removed


def test_judge_filter_asks_greedily_with_the_template():
    item = ("Write f.", "return 2 * x", "return x + 2")
    prompt = judge_prompt(JUDGE_TEMPLATE, *item)
    assert "{" not in prompt.replace("{instruction}", "") and "return x + 2" in prompt
    backend = get_backend("scripted", completions={prompt: ["no"]}, default=["yes"])
    other = ("Write g.", "a", "b")
    assert judge_filter(backend, [item, other], seeds=[1, 2]) == [(True, "no"), (False, "yes")]
    assert backend.calls[0]["temperature"] == 0.0 and backend.calls[0]["seed"] == [1, 2]
    assert judge_filter(backend, []) == []
