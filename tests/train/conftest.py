"""Fixtures of the training tests: the tiny tokenizer, a saved tiny model directory, example files.

Run: .venv/bin/python -m pytest tests/train -q
"""

from __future__ import annotations

import pytest
from train_helpers import make_model, make_tokenizer, perturb, simple_examples, write_jsonl


@pytest.fixture(scope="session")
def tokenizer():
    return make_tokenizer()


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, tokenizer):
    """A tiny Llama (seed 0) and its tokenizer saved as a local HF model directory."""
    d = tmp_path_factory.mktemp("tiny-llama")
    make_model(tokenizer, seed=0).save_pretrained(d)
    tokenizer.save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def ref_model_dir(tmp_path_factory, tokenizer):
    """A different tiny Llama (seed 0 + noise), to serve as an explicit reference."""
    d = tmp_path_factory.mktemp("tiny-llama-ref")
    perturb(make_model(tokenizer, seed=0), seed=7).save_pretrained(d)
    tokenizer.save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def examples_file(tmp_path_factory, tokenizer):
    """Eight DPO-weighted examples (w = 1 everywhere) as JSONL."""
    return write_jsonl(tmp_path_factory.mktemp("data") / "examples.jsonl", simple_examples(tokenizer))


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Weight and reference-log-prob caches go to a temporary directory, never ~/.cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FOCALPO_CACHE", str(tmp_path_factory.mktemp("focalpo-cache")))
        yield
