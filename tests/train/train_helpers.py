"""Tiny, download-free fixtures of the training tests: a locally trained BPE tokenizer, a 2-layer
Llama of width 64 built from config, and a handful of code preference pairs.

Run the tests that use them: .venv/bin/python -m pytest tests/train -q
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
import torch

CODE = [
    "def add(a, b):\n    return a + b\n",
    "def sub(a, b):\n    return a - b\n",
    "def mul(a, b):\n    return a * b\n",
    "for i in range(10):\n    print(i)\n",
    "if x > 0:\n    y = x\nelse:\n    y = -x\n",
    "def is_even(n):\n    return n % 2 == 0\n",
    "total = 0\nfor v in values:\n    total += v\nreturn total\n",
    "while n > 1:\n    n //= 2\n",
]

# (prompt, chosen, rejected): a correct and a subtly wrong completion
PAIRS = [
    ("def add(a, b):\n", "    return a + b\n", "    return a - b\n"),
    ("def is_even(n):\n", "    return n % 2 == 0\n", "    return n % 2 == 1\n"),
    ("def mul(a, b):\n", "    return a * b\n", "    return a + b\n"),
    ("for i in range(10):\n", "    print(i)\n", "    print(i + 1)\n    print(i)\n"),
    ("if x > 0:\n", "    y = x\nelse:\n    y = -x\n", "    y = -x\nelse:\n    y = x\n"),
    ("total = 0\n", "for v in values:\n    total += v\nreturn total\n", "for v in values:\n    total = v\nreturn total\n"),
    ("def sub(a, b):\n", "    return a - b\n", "    return b - a\n"),
    ("while n > 1:\n", "    n //= 2\n", "    n /= 2\n"),
]


def make_tokenizer():
    """Byte-level BPE trained on CODE, wrapped as a PreTrainedTokenizerFast with <pad> and </s>."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320, special_tokens=["<pad>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CODE * 4, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>", pad_token="<pad>", unk_token="<unk>")


def make_model(tokenizer, seed: int = 0, dtype=torch.float32):
    """A seeded 2-layer Llama, hidden size 64."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None,
        tie_word_embeddings=False,
    )
    return AutoModelForCausalLM.from_config(cfg, dtype=dtype)


def perturb(model, seed: int = 1, scale: float = 0.05):
    """Add seeded noise to every parameter, so that a policy differs from its reference."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g, dtype=torch.float32).to(p.dtype) * scale)
    return model


def simple_examples(tokenizer, pairs=PAIRS, weigh=None) -> list[dict]:
    """Weighted examples as focalpo.weights makes them (prompt tokens, completion tokens + EOS).

    `weigh(side, ids) -> list[float]` gives the weights; default 1.0 everywhere (DPO).
    """
    out = []
    for i, (prompt, chosen, rejected) in enumerate(pairs):
        ex = {"id": i, "prompt_input_ids": tokenizer(prompt)["input_ids"], "nll": False}
        for side, text in (("chosen", chosen), ("rejected", rejected)):
            ids = tokenizer(text)["input_ids"] + [tokenizer.eos_token_id]
            ex[f"{side}_input_ids"] = ids
            ex[f"{side}_weights"] = weigh(side, ids) if weigh else [1.0] * len(ids)
        out.append(ex)
    return out


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def qwen2(tokenizer, seed=0):
    from transformers import AutoModelForCausalLM, Qwen2Config

    torch.manual_seed(seed)
    cfg = Qwen2Config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True)
    return AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)


def lora(model):
    from peft import LoraConfig, get_peft_model

    wrapped = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"))
    with torch.no_grad():  # non-zero B so that the adapter changes the outputs
        for name, p in wrapped.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    return wrapped


def training_model(tokenizer, arch: str = "llama", adapter: bool = False, checkpointing: bool = False):
    """A perturbed tiny Llama or Qwen2 in train mode, optionally with a LoRA adapter and gradient checkpointing."""
    model = perturb(make_model(tokenizer) if arch == "llama" else qwen2(tokenizer), seed=2)
    if adapter:
        model = lora(model)
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if adapter:
            model.enable_input_require_grads()
    return model.train()


@contextlib.contextmanager
def one_rank_group(store: Path):
    """A gloo process group of one rank (as a launched command finds it), taken down afterwards if the
    code under test left it up; skips where torch.distributed has no gloo."""
    if not torch.distributed.is_gloo_available():
        pytest.skip("torch.distributed has no gloo backend")
    torch.distributed.init_process_group("gloo", init_method=f"file://{store}", rank=0, world_size=1)
    try:
        yield
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
