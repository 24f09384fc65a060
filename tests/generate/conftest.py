"""Fixtures of the generation tests: tiny local model directories (no downloads).

Run: .venv/bin/python -m pytest tests/generate -q
"""

from __future__ import annotations

import pytest
from generate_helpers import CHAT_TEMPLATE, save_tiny_llama


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """A tiny Llama whose tokenizer has no chat template: prompts are fed as plain text."""
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def chat_model_dir(tmp_path_factory):
    """The same tiny Llama with a chat template on its tokenizer."""
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama-chat"), chat_template=CHAT_TEMPLATE)
