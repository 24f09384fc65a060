"""Fixtures of the pipeline tests: a tiny local Llama (no downloads), shared with tests/generate.

Run: .venv/bin/python -m pytest tests/pipelines -q
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "generate"))
from generate_helpers import save_tiny_llama  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A seeded 2-layer Llama and its locally trained tokenizer (no chat template)."""
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_chat_model_dir(tmp_path_factory):
    """The tiny Llama with a chat template: multi-turn dialogues (CodeFlow) need one."""
    from generate_helpers import CHAT_TEMPLATE

    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama-chat"), chat_template=CHAT_TEMPLATE)
