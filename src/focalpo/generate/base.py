"""The generation protocol every backend implements, the backend registry, and shared helpers.

    from focalpo.generate import get_backend
    backend = get_backend("hf", model="path/or/hub-id", batch_size=8)
    texts = backend.generate(["def add(a, b):\n"], n=10, temperature=1.5, top_p=1.0,
                             max_new_tokens=512, stop=["\n```"], seed=0)   # texts[i]: n strings

A prompt is a plain string or an OpenAI-style message list (`[{"role": "user", "content": ...}]`); a list
that ends with an assistant message asks for the continuation of that message (`continues_reply`).
The answer keeps prompt order and holds exactly `n` completions per prompt, each without the
prompt and cut before the first `stop` string.

`seed` is None (unseeded), one int for the whole call (each backend derives its batch or request
seeds from it, so a prompt's samples may depend on the other prompts of the call), or a list of
ints, one per prompt: then every prompt is sampled from its own seed alone, and its completions do
not depend on which other prompts share the call, nor on their order. A pipeline that batches or
shards its problems gives each problem a fixed seed this way (`prompt_seeds` validates the list).

Backends are imported lazily by `get_backend`, so `import focalpo.generate` pulls in neither torch
nor transformers.
"""

from __future__ import annotations

import importlib
import inspect
import json
from typing import Any, Protocol, Sequence, Union, runtime_checkable

Message = dict  # {"role": "system" | "user" | "assistant", "content": str}
Prompt = Union[str, list]  # a plain prompt, or a list of Message dicts
Seed = Union[int, Sequence[int], None]  # one int for the call, or a list/tuple of one int per prompt

# name -> "module:Class", imported on first use
BACKENDS: dict[str, str] = {
    "hf": "focalpo.generate.hf:HFBackend",
    "openai": "focalpo.generate.openai_api:OpenAIBackend",
    "scripted": "focalpo.generate.scripted:ScriptedBackend",
    "vllm": "focalpo.generate.vllm_backend:VLLMBackend",
}


class GenerationError(RuntimeError):
    """A backend could not produce completions (bad prompt, server error, exhausted retries)."""


@runtime_checkable
class Backend(Protocol):
    """Anything that turns prompts into `n` sampled completions each.

    `seed`: None, one int for the call, or a list of one int per prompt; with a list, the completions
    of prompt i depend only on prompt i, seed[i] and the sampling arguments, not on the other prompts
    of the call or their order (see the module docstring).
    """

    def generate(
        self,
        prompts: Sequence[Prompt],
        n: int = 1,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 512,
        stop: Sequence[str] | None = None,
        seed: Seed = None,
    ) -> list[list[str]]:
        """`n` completions per prompt, in prompt order; temperature 0 means greedy."""
        ...


def get_backend(name: str, **options: Any) -> Backend:
    """Instantiate the backend `name` ("hf", "openai", "scripted", "vllm") with its keyword options."""
    if name not in BACKENDS:
        raise ValueError(f"unknown generation backend {name!r}; choose one of {sorted(BACKENDS)}")
    module_name, cls_name = BACKENDS[name].split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    accepted = set(inspect.signature(cls).parameters)
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise TypeError(f"backend {name!r} has no option(s) {unknown}; its options are {sorted(accepted)}")
    return cls(**options)


def backend_from_config(cfg: Any) -> Backend:
    """The backend of a run config (`backend`, `model`, `base_url`, `backend_options`), imported
    lazily: torch only for `hf`."""
    options = dict(cfg.backend_options)
    if cfg.model:
        options.setdefault("model", cfg.model)
    if cfg.base_url:
        options.setdefault("base_url", cfg.base_url)
    return get_backend(cfg.backend, **options)


def truncate_at_stop(text: str, stop: Sequence[str] | None) -> str:
    """`text` cut before the earliest occurrence of any stop string (the stop string itself excluded)."""
    if not stop:
        return text
    hits = [i for i in (text.find(s) for s in stop if s) if i != -1]
    return text[: min(hits)] if hits else text


def check_sampling(prompts: Sequence[Prompt], n: int, temperature: float, top_p: float, max_new_tokens: int,
                   stop: Sequence[str] | None, seed: Seed = None) -> None:
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
    prompt_seeds(seed, len(prompts))  # raises on a malformed seed
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            check_messages(p, where=f"prompt {i}")


def prompt_seeds(seed: Seed, n_prompts: int) -> list[int] | None:
    """The seed of each prompt when `seed` is a per-prompt list/tuple, else None (no seed, or one int).

    Raises ValueError unless `seed` is None, an int, or a list/tuple of exactly `n_prompts` ints
    (bools are refused: `seed=True` is a bug, not seed 1).
    """
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, list, tuple)):
        raise ValueError(f"seed must be None, an int, or a list of ints (one per prompt), got {seed!r}")
    if isinstance(seed, int):
        return None
    if len(seed) != n_prompts:
        raise ValueError(f"seed is a list of {len(seed)} seeds but there are {n_prompts} prompts; "
                         "give exactly one seed per prompt (or one int for the whole call)")
    for i, s in enumerate(seed):
        if isinstance(s, bool) or not isinstance(s, int):
            raise ValueError(f"seed[{i}] (the seed of prompt {i}) must be an int, got {s!r}")
    return list(seed)


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


def parse_backend_option(item: str) -> tuple[str, Any]:
    """"batch-size=16" -> ("batch_size", 16); a value that is not JSON stays a string ("dtype=bfloat16")."""
    key, sep, value = item.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key:
        raise ValueError(f"--backend-option expects key=value, got {item!r}")
    if value.lower() in ("true", "false"):  # Python spelling too
        return key, value.lower() == "true"
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def chat_template_in_use(tokenizer: Any, chat_template: bool | None) -> bool:
    """Whether a local backend renders prompts through the tokenizer's chat template: `chat_template` None
    = when the tokenizer has one; True = required (GenerationError without one); False = never."""
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if chat_template and not has_template:
        raise GenerationError("chat_template=True but the tokenizer has no chat template")
    return has_template if chat_template is None else bool(chat_template)


def continues_reply(prompt: Prompt) -> bool:
    """A message list that ends with an assistant message: the model continues that message (its text is
    the start of the answer, as in a continuation test) instead of starting a new one."""
    return not isinstance(prompt, str) and bool(prompt) and prompt[-1].get("role") == "assistant"


def render_prompt(tokenizer: Any, use_chat_template: bool, prompt: Prompt, where: str = "prompt") -> str:
    """The exact text a local backend feeds the model for one prompt: through the chat template when in
    use (a plain string as one user message; a list ending with an assistant message rendered open, so that
    the model continues it), else the plain string; a message list then is an error."""
    if use_chat_template and continues_reply(prompt):
        return tokenizer.apply_chat_template(prompt, tokenize=False, continue_final_message=True)
    if use_chat_template:
        return tokenizer.apply_chat_template(as_messages(prompt), tokenize=False, add_generation_prompt=True)
    if not isinstance(prompt, str):
        raise GenerationError(f"{where} is a message list but the tokenizer has no chat template "
                              "(or chat_template=False); pass plain string prompts")
    return prompt
