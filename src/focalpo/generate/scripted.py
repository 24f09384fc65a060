"""`ScriptedBackend`: a deterministic test double that returns fixed completions per prompt.

    from focalpo.generate import get_backend
    backend = get_backend("scripted", completions={"def add(a, b):\n": ["    return a + b\n", "    return a - b\n"]})
    backend.generate(["def add(a, b):\n"], n=2)   # [["    return a + b\n", "    return a - b\n"]]

A prompt's key is the prompt itself, or the content of the last message of a message list. Its
`n` completions are the first n scripted ones, cycled when the script holds fewer; `stop` strings
cut them as a real backend would; `default` serves unscripted prompts (else a GenerationError).
Multi-turn dialogues (a teacher that is told its errors) are scripted with `conversations`: keyed
by the content of the *first* message, the answer of turn t (t = assistant messages so far) is
the t-th text, whatever the later user turns say.
Every call is recorded in `calls` so pipeline tests can assert what was asked for (`seed` as given:
None, an int, or a list of per-prompt seeds); the seed does not change the completions.
Tests: .venv/bin/python -m pytest tests/generate/test_scripted.py -q
"""

from __future__ import annotations

from typing import Mapping, Sequence

from focalpo.generate.base import GenerationError, Prompt, Seed, check_sampling, truncate_at_stop


class ScriptedBackend:
    """Fixed completions per prompt behind the `Backend` protocol."""

    def __init__(self, completions: Mapping[str, Sequence[str]] | None = None,
                 default: Sequence[str] | None = None,
                 conversations: Mapping[str, Sequence[str]] | None = None) -> None:
        self.completions = {k: list(v) for k, v in (completions or {}).items()}
        self.default = list(default) if default is not None else None
        self.conversations = {k: list(v) for k, v in (conversations or {}).items()}
        for key, texts in [*self.completions.items(), *self.conversations.items(), ("default", self.default)]:
            if texts is not None and not texts:
                raise ValueError(f"scripted completions for {key!r} are empty")
        self.calls: list[dict] = []

    def _texts(self, prompt: Prompt, i: int) -> list[str]:
        if not isinstance(prompt, str) and prompt[0]["content"] in self.conversations:
            turns = self.conversations[prompt[0]["content"]]
            turn = sum(1 for m in prompt if m["role"] == "assistant")
            if turn >= len(turns):
                raise GenerationError(f"prompt {i}: the scripted conversation has {len(turns)} turns, "
                                      f"asked for turn {turn + 1}")
            return [turns[turn]]
        key = prompt if isinstance(prompt, str) else prompt[-1]["content"]
        texts = self.completions.get(key, self.default)
        if texts is None:
            raise GenerationError(f"prompt {i} has no scripted completions: {key[:80]!r}")
        return texts

    def generate(self, prompts: Sequence[Prompt], n: int = 1, temperature: float = 1.0, top_p: float = 1.0,
                 max_new_tokens: int = 512, stop: Sequence[str] | None = None,
                 seed: Seed = None) -> list[list[str]]:
        """The first `n` scripted completions of each prompt (cycled), cut at `stop`."""
        check_sampling(prompts, n, temperature, top_p, max_new_tokens, stop, seed)
        recorded_seed = list(seed) if isinstance(seed, (list, tuple)) else seed  # a copy: callers may reuse theirs
        self.calls.append({"prompts": list(prompts), "n": n, "temperature": temperature, "top_p": top_p,
                           "max_new_tokens": max_new_tokens, "stop": list(stop or []), "seed": recorded_seed})
        out = []
        for i, p in enumerate(prompts):
            texts = self._texts(p, i)
            out.append([truncate_at_stop(texts[j % len(texts)], stop) for j in range(n)])
        return out
