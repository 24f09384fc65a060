"""Per-prompt seeds in the generation protocol: `prompt_seeds` and the seed checks of `check_sampling`,
through the scripted and openai backends (no model, no server: a bad seed fails before any work).

Run: .venv/bin/python -m pytest tests/generate/test_seeds.py -q
"""

from __future__ import annotations

import pytest

from focalpo.generate import get_backend
from focalpo.generate.base import check_sampling, prompt_seeds


def test_prompt_seeds_returns_one_seed_per_prompt_only_for_a_list():
    assert prompt_seeds(None, 3) is None
    assert prompt_seeds(7, 3) is None  # one int for the call: each backend spreads it its own way
    assert prompt_seeds(0, 0) is None
    assert prompt_seeds([5, -1, 5], 3) == [5, -1, 5]
    assert prompt_seeds((4, 2), 2) == [4, 2] and isinstance(prompt_seeds((4, 2), 2), list)
    assert prompt_seeds([], 0) == []


@pytest.mark.parametrize(
    ("seed", "message"),
    [
        ([1, 2], r"seed is a list of 2 seeds but there are 3 prompts; give exactly one seed per prompt"),
        ([1, 2, 3, 4], r"seed is a list of 4 seeds but there are 3 prompts"),
        ([], r"seed is a list of 0 seeds but there are 3 prompts"),
        ([1, 2.0, 3], r"seed\[1\] \(the seed of prompt 1\) must be an int, got 2.0"),
        ([1, 2, "3"], r"seed\[2\] \(the seed of prompt 2\) must be an int, got '3'"),
        ([True, 2, 3], r"seed\[0\] \(the seed of prompt 0\) must be an int, got True"),
        (True, r"seed must be None, an int, or a list of ints \(one per prompt\), got True"),
        (1.5, r"seed must be None, an int, or a list of ints .*got 1.5"),
        ("7", r"seed must be None, an int, or a list of ints .*got '7'"),
        ({0: 1}, r"seed must be None, an int, or a list of ints"),
    ],
)
def test_bad_seed_is_a_clear_error(seed, message):
    prompts = ["a", "b", "c"]
    with pytest.raises(ValueError, match=message):
        check_sampling(prompts, 1, 1.0, 1.0, 8, None, seed)
    scripted = get_backend("scripted", default=["x"])
    with pytest.raises(ValueError, match=message):
        scripted.generate(prompts, seed=seed)
    assert scripted.calls == []  # refused before it was recorded
    unreachable = get_backend("openai", model="m", base_url="http://127.0.0.1:9/v1", max_retries=0)
    with pytest.raises(ValueError, match=message):
        unreachable.generate(prompts, seed=seed)
    assert unreachable.stats.requests == 0


def test_good_seeds_pass_the_check():
    for seed in (None, 0, -3, 2**40, [0, 1, 2], (9, 9, 9)):
        check_sampling(["a", "b", "c"], 2, 0.0, 0.5, 8, ["\n"], seed)
