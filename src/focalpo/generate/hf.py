"""`HFBackend`: sample completions from a local transformers causal LM (CPU or GPU), batched.

    from focalpo.generate.hf import HFBackend
    backend = HFBackend("Qwen/Qwen2.5-Coder-1.5B-Instruct", dtype="bfloat16", batch_size=8)
    texts = backend.generate(prompts, n=10, temperature=1.5, max_new_tokens=512, stop=["\n```\n"], seed=0)

Prompts are left-padded and generated `batch_size` at a time (sorted by length, so that a batch
pads little; answers come back in prompt order), `n` samples each via `num_return_sequences`.
When the tokenizer has a chat template (and `chat_template` is not False) every prompt goes through
it, plain strings as one user message; without one, message lists are an error. `stop` strings end
generation early (transformers' `stop_strings`) and the decoded text is cut before the first one.
temperature 0 is greedy decoding (the one answer repeated n times).

Seeds: sampling runs inside a forked RNG, so the caller's global RNG is untouched. With one int
`seed`, batch b draws from `torch.manual_seed(seed + b)`: the same call gives the same texts on CPU,
but a prompt's samples depend on the prompts batched with it. With a list of per-prompt seeds, each
prompt is generated alone (one `model.generate` call of n sequences, no padding) from
`torch.manual_seed(seeds[i])`: its samples are the same whatever other prompts are in the call and in
whatever order, at the price of no batching across prompts.

For large-scale sampling prefer a vLLM / SGLang server and the `openai` backend.
Tests: .venv/bin/python -m pytest tests/generate/test_hf.py -q
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from focalpo.generate.base import (GenerationError, Prompt, Seed, as_messages, check_sampling, prompt_seeds,
                                    truncate_at_stop)

_DTYPES = {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class HFBackend:
    """A transformers model behind the `Backend` protocol.

    model: local directory or hub id (or an already loaded `PreTrainedModel`, then pass `tokenizer`).
    tokenizer: directory / id / loaded tokenizer; default: the model's.
    device: "cpu", "cuda", "cuda:1", ...; default cuda when available. Ignored with `device_map`.
    device_map: passed to `from_pretrained` (e.g. "auto" to shard a large model over GPUs).
    dtype: "auto" (the checkpoint's), "float32", "bfloat16" or "float16".
    batch_size: prompts per `model.generate` call (each expands to n sequences).
    chat_template: None = use the tokenizer's template when it has one; False = never; True = required.
    """

    def __init__(self, model: Any, tokenizer: Any = None, device: str | None = None, device_map: Any = None,
                 dtype: str = "auto", batch_size: int = 8, chat_template: bool | None = None,
                 trust_remote_code: bool = False) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        if isinstance(model, str):
            kwargs: dict[str, Any] = {"dtype": _DTYPES[dtype], "trust_remote_code": trust_remote_code}
            if device_map is not None:
                kwargs["device_map"] = device_map
            try:
                self.model = AutoModelForCausalLM.from_pretrained(model, **kwargs)
            except OSError as e:
                raise GenerationError(f"cannot load model {model!r}: {e}") from e
        else:
            self.model = model
        if device_map is None:
            device = device or ("cuda" if torch.cuda.is_available() else "cpu")
            self.model.to(device)
        self.model.eval()

        tok_src = tokenizer if tokenizer is not None else getattr(self.model, "name_or_path", None)
        if isinstance(tok_src, str):
            tok_src = AutoTokenizer.from_pretrained(tok_src, trust_remote_code=trust_remote_code)
        if tok_src is None:
            raise ValueError("pass `tokenizer` when `model` is a loaded model without a name_or_path")
        self.tokenizer = tok_src
        self.tokenizer.padding_side = "left"  # generation appends on the right: pads must sit on the left
        if self.tokenizer.pad_token_id is None:
            if self.tokenizer.eos_token_id is None:
                raise GenerationError("the tokenizer has neither a pad nor an eos token; cannot pad a batch")
            self.tokenizer.pad_token = self.tokenizer.eos_token

        has_template = bool(getattr(self.tokenizer, "chat_template", None))
        if chat_template and not has_template:
            raise GenerationError("chat_template=True but the tokenizer has no chat template")
        self.use_chat_template = has_template if chat_template is None else bool(chat_template)

    def render(self, prompt: Prompt, where: str = "prompt") -> str:
        """The exact text fed to the model for one prompt (chat template applied when in use)."""
        if self.use_chat_template:
            return self.tokenizer.apply_chat_template(as_messages(prompt), tokenize=False, add_generation_prompt=True)
        if not isinstance(prompt, str):
            raise GenerationError(f"{where} is a message list but the tokenizer has no chat template "
                                  "(or chat_template=False); pass plain string prompts")
        return prompt

    @torch.no_grad()
    def generate(self, prompts: Sequence[Prompt], n: int = 1, temperature: float = 1.0, top_p: float = 1.0,
                 max_new_tokens: int = 512, stop: Sequence[str] | None = None,
                 seed: Seed = None) -> list[list[str]]:
        """`n` completions per prompt, in prompt order; see the module docstring for `seed`."""
        check_sampling(prompts, n, temperature, top_p, max_new_tokens, stop, seed)
        texts = [self.render(p, where=f"prompt {i}") for i, p in enumerate(prompts)]
        # a chat template already holds the special tokens (BOS, ...) the model expects
        add_special = not self.use_chat_template
        seeds = prompt_seeds(seed, len(prompts))
        if seeds is not None:  # alone, so that neither padding nor RNG draws depend on the other prompts
            return [self._generate_batch([t], n, temperature, top_p, max_new_tokens, stop, s, add_special)[0]
                    for t, s in zip(texts, seeds)]
        lengths = [len(self.tokenizer(t, add_special_tokens=add_special)["input_ids"]) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: lengths[i])
        out: list[list[str]] = [[] for _ in texts]
        for b, start in enumerate(range(0, len(order), self.batch_size)):
            idx = order[start : start + self.batch_size]
            batch_seed = None if seed is None else seed + b
            answers = self._generate_batch([texts[i] for i in idx], n, temperature, top_p, max_new_tokens,
                                           stop, batch_seed, add_special)
            for i, a in zip(idx, answers):
                out[i] = a
        return out

    def _generate_batch(self, texts: list[str], n: int, temperature: float, top_p: float, max_new_tokens: int,
                        stop: Sequence[str] | None, seed: int | None, add_special: bool) -> list[list[str]]:
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=add_special)
        enc = {k: v.to(self.model.device) for k, v in enc.items()}
        greedy = temperature == 0
        kwargs: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "do_sample": not greedy,
            "num_return_sequences": 1 if greedy else n,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if greedy:  # neutralise sampling knobs a checkpoint's generation_config may set
            kwargs.update(temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(temperature=temperature, top_p=top_p, top_k=None)
        stop = [s for s in (stop or []) if s]
        if stop:
            kwargs.update(stop_strings=list(stop), tokenizer=self.tokenizer)
        devices = [self.model.device] if self.model.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices, enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            seqs = self.model.generate(**enc, **kwargs)  # (B·n', T_in + T_new)
        new_tokens = seqs[:, enc["input_ids"].shape[1] :]  # left padding: every prompt ends at T_in
        decoded = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        decoded = [truncate_at_stop(t, stop) for t in decoded]
        per = 1 if greedy else n  # num_return_sequences groups the samples of one prompt together
        return [decoded[i * per : (i + 1) * per] * (n if greedy else 1) for i in range(len(texts))]
