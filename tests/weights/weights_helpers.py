"""Pairs and TRL reference helpers shared by the weights tests (tests/weights/test_*.py).

Run the tests that use them: .venv/bin/python -m pytest tests/weights -q
"""

from __future__ import annotations

import types

from focalpo.localize import localize_pair
from focalpo.pairs import PreferencePair

REJECTED = """\
def average_positive(xs):
    total = 0
    count = 0
    for x in xs:
        if x > 0:
            total += x
            count += 1
    return total / len(xs)
"""
CHOSEN = REJECTED.replace("        if x > 0:\n", "        if x >= 0:\n").replace("total / len(xs)", "total / count")


def make_pairs() -> list[PreferencePair]:
    rows = [
        ("Write average_positive.\n", CHOSEN, REJECTED),
        ("def add(a, b):\n    ", "return a + b\n", "return a - b\n"),  # prompt ends mid-line: tokens merge
        ("", "x = 1\n", "x = 1\ny = 2\n"),
        ("p", "same\n", "same\n"),
        ("Fix it.\n", "ok</s>", "bad\n</s>"),  # completions already ending with EOS
    ]
    return [localize_pair(p, c, r) for p, c, r in rows]


def make_conv_pairs() -> list[PreferencePair]:
    user = [{"role": "system", "content": "Answer with code."}, {"role": "user", "content": "Write average_positive."}]
    return [
        localize_pair(user, [{"role": "assistant", "content": c}], [{"role": "assistant", "content": r}])
        for c, r in [(CHOSEN, REJECTED), ("x = 1", "x = 2")]
    ]


def trl_rows(pairs):
    return [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in pairs]


def trl_tokenize(rows, tokenizer, max_length=None):
    """TRL 1.16's own dataset preparation (DPOTrainer._prepare_dataset) on `rows`."""
    import datasets
    from trl.trainer.dpo_trainer import DPOTrainer

    datasets.disable_progress_bars()
    stub = types.SimpleNamespace(_tokenizer=tokenizer)
    args = types.SimpleNamespace(dataset_num_proc=None, max_length=max_length, truncation_mode="keep_start")
    return list(DPOTrainer._prepare_dataset(stub, datasets.Dataset.from_list(rows), tokenizer, args, "train"))


def decode_weighted(tokenizer, ids, weights, value=1.0) -> str:
    return "".join(tokenizer.decode([i]) for i, w in zip(ids, weights) if w == value)
