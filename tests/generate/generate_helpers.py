"""Download-free fixtures of the generation tests: a locally trained BPE tokenizer (with or without a
chat template) and a seeded 2-layer Llama of width 64, saved as local HF model directories.

Run the tests that use them: .venv/bin/python -m pytest tests/generate -q
"""

from __future__ import annotations

from pathlib import Path

CODE = [
    "def add(a, b):\n    return a + b\n",
    "def sub(a, b):\n    return a - b\n",
    "for i in range(10):\n    print(i)\n",
    "if x > 0:\n    y = x\nelse:\n    y = -x\n",
    "def is_even(n):\n    return n % 2 == 0\n",
    "<|user|>write code<|assistant|>```python\n```\n",
]

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def make_tokenizer(chat_template: str | None = None):
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
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>", pad_token="<pad>", unk_token="<unk>")
    if chat_template:
        fast.chat_template = chat_template
    return fast


def save_tiny_llama(directory: Path, chat_template: str | None = None, seed: int = 0) -> Path:
    """A seeded 2-layer Llama (hidden 64) and its tokenizer saved to `directory`; returns it."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    tokenizer = make_tokenizer(chat_template)
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None,
        tie_word_embeddings=False,
    )
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    with torch.no_grad():  # sharper logits than the 0.02-std init, so greedy outputs vary with the prompt
        for p in model.parameters():
            p.mul_(4.0)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
