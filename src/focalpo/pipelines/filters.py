"""Target-DPO's rule filters for localised pairs, and the optional LLM-judge filter.

    verdicts = rule_filters(pair, tokenizer=tok, max_rejected_lines=20, max_tokens=2048)
    # {"rejected_only_comments": False, "rejected_too_long": False, "too_many_tokens": False,
    #  "identical_ast": False}  -- True means the filter removes the pair, None that it could not run
    keep = not any(verdicts.values())
    not_run(verdicts)   # ["too_many_tokens"] when no tokenizer was given

Rules (Target-DPO, arXiv 2503.02783, §3.2), each a pure function of a pair record whose
`rejected_spans` are D- (`focalpo.localize.lcs_regions`):
- `rejected_only_comments`: every D- line is blank or a comment (the "error" is cosmetic);
- `rejected_too_long`: D- spans more than `max_rejected_lines` lines (20): not a localised error;
- `too_many_tokens`: the chosen or the rejected completion has more than `max_tokens` tokens (2048)
  under `tokenizer`, which should be the tokenizer of the model that will be trained; without one
  the rule cannot run and its verdict is None ("not run"), which removes nothing and which the
  CodeFlow summary, report and dataset card count and name (`not_run`);
- `identical_ast`: chosen and rejected code parse to the same syntax tree (they differ only in
  layout or comments).
The judge (`judge_filter`) asks a model whether there is a significant logical difference between
the two programs; its prompt is an editable template with `{instruction}`, `{chosen}` and
`{rejected}` fields, and an answer that does not start with yes/no counts as "yes" (keep).
"""

from __future__ import annotations

import ast
from typing import Any, Sequence

from focalpo.extract import extract_code
from focalpo.pairs import PreferencePair
from focalpo.prompts import JUDGE_TEMPLATE, render

MAX_REJECTED_LINES = 20  # Target-DPO
MAX_TOKENS = 2048  # Target-DPO

def _lines_of(text: str, spans: Sequence[tuple[int, int]]) -> list[str]:
    return [text[s:e] for s, e in spans]


def _is_comment_or_blank(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def rejected_only_comments(pair: PreferencePair) -> bool:
    """True when every D- line is blank or a comment (a `#` comment line; docstrings count as code)."""
    spans = pair.rejected_spans or ()
    return all(_is_comment_or_blank(line) for line in _lines_of(pair.rejected_text, spans))


def rejected_line_count(pair: PreferencePair) -> int:
    """Number of lines D- covers (a span may hold several lines after refinement or merging)."""
    return sum(max(1, chunk.count("\n") + (not chunk.endswith("\n")))
               for chunk in _lines_of(pair.rejected_text, pair.rejected_spans or ()))


def rejected_too_long(pair: PreferencePair, max_lines: int = MAX_REJECTED_LINES) -> bool:
    return rejected_line_count(pair) > max_lines


def token_count(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def too_many_tokens(pair: PreferencePair, tokenizer: Any = None, max_tokens: int = MAX_TOKENS) -> bool | None:
    """True when either completion has more than `max_tokens` tokens; None (not run) without a tokenizer."""
    if tokenizer is None:
        return None
    return max(token_count(tokenizer, pair.chosen_text), token_count(tokenizer, pair.rejected_text)) > max_tokens


def _code_tree(text: str) -> str | None:
    try:
        return ast.dump(ast.parse(extract_code(text)))
    except (SyntaxError, ValueError):
        return None


def identical_ast(pair: PreferencePair) -> bool:
    """True when both completions' code parses to the same tree (comments and layout do not count)."""
    chosen = _code_tree(pair.chosen_text)
    return chosen is not None and chosen == _code_tree(pair.rejected_text)


# why a rule's verdict is None, as the summary, report and dataset card say it
NOT_RUN_REASONS = {"too_many_tokens": "no tokenizer was given, so pairs over the token limit were kept; pass "
                                      "--tokenizer with the id or path of the model that will be trained"}


def not_run(verdicts: dict[str, bool | None]) -> list[str]:
    """The rules that could not run on a pair (verdict None)."""
    return [name for name, removed in verdicts.items() if removed is None]


def rule_filters(pair: PreferencePair, *, tokenizer: Any = None, max_rejected_lines: int = MAX_REJECTED_LINES,
                 max_tokens: int = MAX_TOKENS) -> dict[str, bool | None]:
    """Each rule's verdict for `pair`; True = the rule removes it, None = it could not run (module doc)."""
    return {
        "rejected_only_comments": rejected_only_comments(pair),
        "rejected_too_long": rejected_too_long(pair, max_rejected_lines),
        "too_many_tokens": too_many_tokens(pair, tokenizer, max_tokens),
        "identical_ast": identical_ast(pair),
    }


def judge_prompt(template: str, instruction: str, chosen: str, rejected: str) -> str:
    """The judge template (`focalpo.prompts.JUDGE_TEMPLATE`) with its fields filled in."""
    return render(template, instruction=instruction, chosen=chosen, rejected=rejected)


def judge_says_no(answer: str) -> bool:
    """True when the judge's answer starts with "no" (no significant difference: remove the pair)."""
    words = answer.strip().lstrip("*_#>`'\"").split(None, 1)
    return bool(words) and words[0].lower().rstrip(".,!:;*") == "no"


def judge_filter(backend: Any, items: Sequence[tuple[str, str, str]], *, template: str = JUDGE_TEMPLATE,
                 max_new_tokens: int = 16, seeds: Sequence[int] | None = None) -> list[tuple[bool, str]]:
    """(removed, answer) per (instruction, chosen code, rejected code), greedy, one call for all."""
    if not items:
        return []
    prompts = [judge_prompt(template, *item) for item in items]
    answers = backend.generate(prompts, n=1, temperature=0.0, max_new_tokens=max_new_tokens,
                               seed=list(seeds) if seeds is not None else None)
    return [(judge_says_no(a[0]), a[0]) for a in answers]

