"""`HFBackend`: sample completions from a local transformers causal LM (CPU or GPU), batched.

    from focalpo.generate.hf import HFBackend
    backend = HFBackend("Qwen/Qwen2.5-Coder-1.5B-Instruct", dtype="bfloat16", batch_size=8)
    texts = backend.generate(prompts, n=10, temperature=1.5, max_new_tokens=512, stop=["\n```\n"], seed=[11, 12])

Prompts are left-padded and generated `batch_size` at a time (sorted by length, so that a batch
pads little; answers come back in prompt order), each prompt's `n` samples as `n` rows of the batch
that share the prompt's key/value cache (computed once per prompt, not once per sample). When the
tokenizer has a chat template (and `chat_template` is not False) every prompt goes through it, plain
strings as one user message; without one, message lists are an error. `stop` strings end generation
early (transformers' `stop_strings`) and the decoded text is cut before the first one. temperature
0 is greedy decoding (the one answer repeated n times).

Seeds: every sampled sequence (prompt i, sample j) draws from a random stream of its own, a
`torch.Generator` seeded from (seed of prompt i, j), and nothing else: `RowSampler`, a logits
processor run last in transformers' greedy loop, applies the temperature and top-p to the row's
logits and picks the token by inverse transform sampling with one uniform draw from the row's
stream (an exact sample of the tempered, top-p-truncated distribution; the other tokens get -inf,
so the greedy step takes the sampled one). A prompt's completions therefore depend only on the
prompt, its seed and the sampling arguments, not on which prompts share the batch, their order,
the batch size or the shard, while prompts are still batched (left padding is masked out; kernels
of other batch shapes can differ in the last bits of a logit, which moves a draw only when its
uniform falls within that rounding of a cumulative-probability boundary). Seeds: a list gives one
per prompt; one int gives prompt i the seed `seed + i` of the call; None draws the base seed from
torch's global RNG. The caller's global RNG is never advanced by sampling itself.

For sampling at scale on GPUs prefer `--backend vllm` or a vLLM / SGLang server (`--backend openai`).
Tests: .venv/bin/python -m pytest tests/generate/test_hf.py -q
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from transformers import LogitsProcessor, LogitsProcessorList

from focalpo.generate.base import (
    GenerationError,
    Prompt,
    Seed,
    chat_template_in_use,
    check_sampling,
    prompt_seeds,
    render_prompt,
    truncate_at_stop,
)
from focalpo.io import check_model_path
from focalpo.runs import stable_hash

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
            try:
                check_model_path(model)
            except FileNotFoundError as e:
                raise GenerationError(str(e)) from None
            kwargs: dict[str, Any] = {"dtype": _DTYPES[dtype], "trust_remote_code": trust_remote_code}
            if device_map is not None:
                kwargs["device_map"] = device_map
            try:
                self.model = AutoModelForCausalLM.from_pretrained(model, **kwargs)
            except (OSError, ValueError) as e:  # ValueError: a directory without a model ("Unrecognized model")
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

        self.use_chat_template = chat_template_in_use(self.tokenizer, chat_template)

    def render(self, prompt: Prompt, where: str = "prompt") -> str:
        """The exact text fed to the model for one prompt (chat template applied when in use)."""
        return render_prompt(self.tokenizer, self.use_chat_template, prompt, where)

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
        if seeds is None:
            base = int(torch.randint(0, 2**31 - 1, ())) if seed is None else seed
            seeds = [base + i for i in range(len(prompts))]
        lengths = [len(self.tokenizer(t, add_special_tokens=add_special)["input_ids"]) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: lengths[i])
        out: list[list[str]] = [[] for _ in texts]
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            answers = self._generate_batch([texts[i] for i in idx], n, temperature, top_p, max_new_tokens,
                                           stop, [seeds[i] for i in idx], add_special)
            for i, a in zip(idx, answers):
                out[i] = a
        return out

    def _generate_batch(self, texts: list[str], n: int, temperature: float, top_p: float, max_new_tokens: int,
                        stop: Sequence[str] | None, seeds: list[int], add_special: bool) -> list[list[str]]:
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=add_special)
        enc = {k: v.to(self.model.device) for k, v in enc.items()}
        greedy = temperature == 0
        per = 1 if greedy else n  # rows per prompt: prompt i's samples are rows i*per .. i*per + per - 1
        name, cache = self._prefill(enc) if per > 1 and enc["input_ids"].shape[1] > 1 else (None, None)
        if cache is not None:
            cache.batch_repeat_interleave(per)  # the n samples of a prompt share its prompt's keys and values
        enc = {k: v.repeat_interleave(per, dim=0) for k, v in enc.items()}
        kwargs: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "do_sample": False,  # sampling, when asked for, is RowSampler's: the greedy step takes its pick
            "num_return_sequences": 1,
            "pad_token_id": self.tokenizer.pad_token_id,
            # neutralise sampling knobs a checkpoint's generation_config may set
            "temperature": None, "top_p": None, "top_k": None,
        }
        if not greedy:
            rows = [row_seed(s, j) for s in seeds for j in range(n)]
            kwargs["logits_processor"] = LogitsProcessorList([RowSampler(rows, temperature, top_p, self.model.device)])
        stop = [s for s in (stop or []) if s]
        if stop:
            kwargs.update(stop_strings=list(stop), tokenizer=self.tokenizer)
        if cache is not None:
            kwargs[name] = cache
        seqs = self.model.generate(**enc, **kwargs)  # (B·per, T_in + T_new)
        new_tokens = seqs[:, enc["input_ids"].shape[1] :]  # left padding: every prompt ends at T_in
        decoded = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        decoded = [truncate_at_stop(t, stop) for t in decoded]
        return [decoded[i * per : (i + 1) * per] * (n if greedy else 1) for i in range(len(texts))]

    def _prefill(self, enc: dict) -> tuple[str, Any]:
        """The key/value cache of every prompt but its last token, computed once per prompt (not once per
        sample): `generate` then starts from it and feeds the last token itself. Positions follow the
        attention mask, as `generate` counts them, so left padding is skipped. Returns the cache and the
        name `generate` takes it by (`cache` in recent transformers, `past_key_values` before)."""
        mask = enc["attention_mask"][:, :-1]
        positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
        out = self.model(input_ids=enc["input_ids"][:, :-1], attention_mask=mask, position_ids=positions,
                         use_cache=True)
        name = "cache" if "cache" in out else "past_key_values"
        return name, out[name]


def row_seed(prompt_seed: int, sample: int) -> int:
    """The seed of sample `sample` of a prompt whose seed is `prompt_seed`: distinct for distinct pairs
    (a 64-bit hash of both), the same in every process."""
    return stable_hash(f"{prompt_seed}\x00{sample}") >> 1  # torch seeds are < 2**63


class RowSampler(LogitsProcessor):
    """Samples the next token of every row from that row's own random stream (module docstring).

    Temperature, then top-p (the smallest set of most likely tokens whose probability reaches
    `top_p`, ties kept in token order), then one uniform draw u from the row's generator: the token
    is the first whose cumulative probability (in token-id order) exceeds u. The returned scores are
    0 for that token and -inf elsewhere.
    """

    def __init__(self, seeds: Sequence[int], temperature: float, top_p: float, device: Any) -> None:
        self.temperature, self.top_p = temperature, top_p
        self.generators = [torch.Generator(device=device).manual_seed(s) for s in seeds]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if scores.shape[0] != len(self.generators):
            raise GenerationError(f"RowSampler has {len(self.generators)} streams for {scores.shape[0]} rows")
        probs = torch.softmax(scores.float() / self.temperature, dim=-1)
        if self.top_p < 1.0:
            sorted_probs, order = probs.sort(dim=-1, descending=True, stable=True)
            before = sorted_probs.cumsum(dim=-1) - sorted_probs  # mass of the more likely tokens
            drop = before >= self.top_p  # the most likely token always stays
            probs = probs.scatter(-1, order, sorted_probs.masked_fill(drop, 0.0))
        cdf = probs.cumsum(dim=-1)
        u = torch.stack([torch.rand((), generator=g, device=g.device) for g in self.generators]).to(cdf.device)
        token = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(-1).contiguous(), right=True)
        token = token.clamp(max=cdf.shape[-1] - 1)
        out = torch.full_like(scores, float("-inf"))
        return out.scatter_(-1, token, 0.0)
