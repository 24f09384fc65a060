"""The generation protocol every backend implements, the backend registry, and shared helpers.

    from focalpo.generate import get_backend
    backend = get_backend("hf", model="path/or/hub-id", batch_size=8)
    texts = backend.generate(["def add(a, b):\n"], n=10, temperature=1.5, top_p=1.0,
                             max_new_tokens=512, stop=["\n```"], seed=0)   # texts[i]: n strings

A prompt is a plain string or an OpenAI-style message list (`[{"role": "user", "content": ...}]`).
The answer keeps prompt order and holds exactly `n` completions per prompt, each without the
prompt and cut before the first `stop` string. Backends are imported lazily by `get_backend`, so
`import focalpo.generate` pulls in neither torch nor transformers.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Protocol, Sequence, Union, runtime_checkable

Message = dict  # {"role": "system" | "user" | "assistant", "content": str}
Prompt = Union[str, list]  # a plain prompt, or a list of Message dicts

# name -> "module:Class", imported on first use
BACKENDS: dict[str, str] = {
    "hf": "focalpo.generate.hf:HFBackend",
    "openai": "focalpo.generate.openai_api:OpenAIBackend",
    "scripted": "focalpo.generate.scripted:ScriptedBackend",
}


class GenerationError(RuntimeError):
    """A backend could not produce completions (bad prompt, server error, exhausted retries)."""


@runtime_checkable
class Backend(Protocol):
    """Anything that turns prompts into `n` sampled completions each."""

    def generate(
        self,
        prompts: Sequence[Prompt],
        n: int = 1,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 512,
        stop: Sequence[str] | None = None,
        seed: int | None = None,
    ) -> list[list[str]]:
        """`n` completions per prompt, in prompt order; temperature 0 means greedy."""
        ...


def get_backend(name: str, **options: Any) -> Backend:
    """Instantiate the backend `name` ("hf", "openai", "scripted") with its keyword options."""
    if name not in BACKENDS:
        raise ValueError(f"unknown generation backend {name!r}; choose one of {sorted(BACKENDS)}")
    module_name, cls_name = BACKENDS[name].split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    accepted = set(inspect.signature(cls).parameters)
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise TypeError(f"backend {name!r} has no option(s) {unknown}; its options are {sorted(accepted)}")
    return cls(**options)


def truncate_at_stop(text: str, stop: Sequence[str] | None) -> str:
    """`text` cut before the earliest occurrence of any stop string (the stop string itself excluded)."""
    if not stop:
        return text
    hits = [i for i in (text.find(s) for s in stop if s) if i != -1]
    return text[: min(hits)] if hits else text


def check_sampling(prompts: Sequence[Prompt], n: int, temperature: float, top_p: float, max_new_tokens: int,
                   stop: Sequence[str] | None) -> None:
    """Raise ValueError naming the first invalid argument of `Backend.generate`."""
    if isinstance(prompts, (str, dict)):
        raise ValueError("prompts must be a list of prompts (strings or message lists), not a single prompt")
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
    if isinstance(stop, str):
        raise ValueError("stop must be a list of strings, not a single string")
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            check_messages(p, where=f"prompt {i}")


def check_messages(messages: Any, where: str) -> None:
    """Raise ValueError unless `messages` is a non-empty list of {"role": str, "content": str} dicts."""
    if not isinstance(messages, list) or not messages:
        raise ValueError(f"{where}: expected a string or a non-empty list of message dicts, got {type(messages).__name__}")
    for j, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise ValueError(f"{where}, message {j}: expected {{'role': str, 'content': str}}, got {m!r}")


def as_messages(prompt: Prompt) -> list[Message]:
    """A plain prompt becomes one user message; a message list is returned as is."""
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
