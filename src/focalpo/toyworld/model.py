"""A tiny causal LM for the toy world: a locally trained byte-level BPE tokenizer with a chat template, and a
seeded Llama / Qwen2 of 1-10M parameters saved as a standard HF checkpoint that every focalpo command loads
like any real model (`AutoModelForCausalLM.from_pretrained`, `AutoTokenizer.from_pretrained`).

    from focalpo.toyworld.model import create_toy_model
    path = create_toy_model("runs/toy/base", texts, size="tiny", seed=0)  # texts: instructions, code, tests

torch / transformers / tokenizers are imported inside the functions, so importing this module stays light.
Tests: .venv/bin/python -m pytest tests/toyworld/test_model.py -q
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

PAD, EOS = "<pad>", "</s>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
SPECIAL_TOKENS = (PAD, EOS, *ROLE_TOKENS)

# One turn per message: "<|role|>\n{content}\n"; an assistant turn ends with EOS instead of the newline, so
# a model trained on rendered chats stops where its answer ends.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}"
    "{% if m['role'] == 'assistant' %}</s>{% else %}{{ '\\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


@dataclass(frozen=True)
class ModelSize:
    """Shape of a toy model; the head dim is hidden_size // num_heads."""

    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    # RoPE, so no parameters depend on it; the CodeFlow repair chats of the SFT mix run to ~800 tokens
    max_positions: int = 1024


# Llama parameter counts with a 2048-token vocabulary (tied embeddings): nano 1,049,728 (tests),
# tiny 3,672,320 (CPU demo), small 10,228,608; Qwen2 adds q/k/v biases: 1,050,752 / 3,674,368 / 10,232,448.
SIZES: dict[str, ModelSize] = {
    "nano": ModelSize(hidden_size=128, num_layers=4, num_heads=4, num_kv_heads=2, intermediate_size=384),
    "tiny": ModelSize(hidden_size=256, num_layers=4, num_heads=8, num_kv_heads=4, intermediate_size=768),
    "small": ModelSize(hidden_size=384, num_layers=6, num_heads=6, num_kv_heads=2, intermediate_size=1024),
}
ARCHS = ("llama", "qwen2")
# Qwen2's pre-tokenizer split (transformers' qwen2/tokenization_qwen2.py): newlines apart from the indent
# after them, an indent run apart from the word after it, digits one by one
_SPLIT_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def train_tokenizer(texts: Iterable[str], *, vocab_size: int = 2048, min_frequency: int = 2) -> Any:
    """A byte-level BPE trained on `texts`, as a `PreTrainedTokenizerFast` with <pad>, </s> (eos) and the
    chat-role tokens as special tokens and `CHAT_TEMPLATE` as chat template.

    Any NFC text (all ASCII code) round-trips exactly. The split turns "\\n    return" into "\\n" + "   " +
    " return", so training on code learns each indentation run as one token. The vocabulary may end below
    `vocab_size` on a small corpus (no pair left that occurs `min_frequency` times).
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    # Qwen2's pipeline exactly, because AutoTokenizer rebuilds it for any checkpoint whose config says qwen2
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(_SPLIT_REGEX), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD, unk_token=None,
                                   clean_up_tokenization_spaces=False, model_max_length=1024)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_model(tokenizer: Any, size: str = "tiny", seed: int = 0, arch: str = "llama") -> Any:
    """A float32 causal LM of preset `size` (a key of SIZES) for `tokenizer`, with tied embeddings, built
    under `torch.manual_seed(seed)` in a forked RNG: same seed, same weights; the global RNG is untouched."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    if size not in SIZES:
        raise ValueError(f"unknown model size {size!r}; choose one of {sorted(SIZES)}")
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; choose one of {list(ARCHS)}")
    s = SIZES[size]
    config_cls = LlamaConfig if arch == "llama" else Qwen2Config
    config = config_cls(
        vocab_size=len(tokenizer), hidden_size=s.hidden_size, intermediate_size=s.intermediate_size,
        num_hidden_layers=s.num_layers, num_attention_heads=s.num_heads, num_key_value_heads=s.num_kv_heads,
        max_position_embeddings=s.max_positions, tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id, bos_token_id=None,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    # generation stops at EOS and pads with PAD without callers having to pass them
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = None
    return model


def param_count(model: Any) -> int:
    """Number of distinct parameters (a tied embedding counts once)."""
    return sum(p.numel() for p in model.parameters())


def save_model(model: Any, tokenizer: Any, directory: str | Path) -> Path:
    """Save `model` (safetensors) and `tokenizer` (with its chat template) to `directory`; returns it."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def create_toy_model(directory: str | Path, texts: Iterable[str], *, size: str = "tiny", seed: int = 0,
                     arch: str = "llama", vocab_size: int = 2048, overwrite: bool = False) -> Path:
    """Train a tokenizer on `texts`, build a seeded model and save both to `directory`, with `toyworld.json`
    (preset, seed, arch, vocabulary and parameter count) beside them. A non-empty `directory` is refused
    unless `overwrite=True`, which replaces the files of the same names and leaves any others."""
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{path} exists and is not a directory")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise FileExistsError(f"{path} is not empty; pass overwrite=True to write the toy model there anyway")
    if size not in SIZES or arch not in ARCHS:  # fail before the tokenizer training, not after
        raise ValueError(f"size must be one of {sorted(SIZES)} and arch one of {list(ARCHS)}; "
                         f"got size={size!r}, arch={arch!r}")
    tokenizer = train_tokenizer(texts, vocab_size=vocab_size)
    model = build_model(tokenizer, size=size, seed=seed, arch=arch)
    save_model(model, tokenizer, path)
    meta = {"size": size, "preset": asdict(SIZES[size]), "arch": arch, "seed": seed,
            "vocab_size": len(tokenizer), "param_count": param_count(model)}
    (path / "toyworld.json").write_text(json.dumps(meta, indent=2) + "\n")
    return path
