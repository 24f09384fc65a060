"""Tests of the toy-world model: byte-level BPE tokenizer and chat template, seeded presets, HF save/reload,
the `hf` generation backend on the saved directory, and trainability.

Run: .venv/bin/python -m pytest tests/toyworld/test_model.py -q
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from focalpo.toyworld.model import (CHAT_TEMPLATE, ROLE_TOKENS, SIZES, build_model, create_toy_model, param_count,
                                    save_model, train_tokenizer)

_FUNCS = [
    ("add", "a, b", "return a + b", "Add two numbers.", "assert add(1, 2) == 3"),
    ("sub", "a, b", "return a - b", "Subtract b from a.", "assert sub(5, 2) == 3"),
    ("double", "x", "return 2 * x", "Double a number.", "assert double(4) == 8"),
    ("is_even", "n", "return n % 2 == 0", "Tell if n is even.", "assert is_even(4)"),
    ("first", "xs", "return xs[0]", "Return the first item of a list.", "assert first([3, 1]) == 3"),
    ("last", "xs", "return xs[-1]", "Return the last item of a list.", "assert last([3, 1]) == 1"),
    ("size", "xs", "return len(xs)", "Return the length of a list.", "assert size([1, 2]) == 2"),
    ("upper", "s", "return s.upper()", "Make a string upper case.", "assert upper('ab') == 'AB'"),
    ("rev", "s", "return s[::-1]", "Reverse a string.", "assert rev('ab') == 'ba'"),
    ("square", "x", "return x * x", "Square a number.", "assert square(3) == 9"),
    ("neg", "x", "return -x", "Negate a number.", "assert neg(2) == -2"),
    ("total", "xs", "return sum(xs)", "Sum a list of numbers.", "assert total([1, 2]) == 3"),
]
_LOOPS = [
    "def count_pos(xs):\n    count = 0\n    for x in xs:\n        if x > 0:\n            count += 1\n    return count\n",
    "def evens(xs):\n    result = []\n    for x in xs:\n        if x % 2 == 0:\n            result.append(x)\n    return result\n",
    "def biggest(xs):\n    best = xs[0]\n    for x in xs:\n        if x > best:\n            best = x\n    return best\n",
    "def clip(x, lo, hi):\n    if x < lo:\n        return lo\n    if x > hi:\n        return hi\n    return x\n",
]
# 12 * 4 + 4 = 52 short texts: instructions, solutions (plain and fenced) and tests
CORPUS = ([f"Write a function {n}({a}). {doc}" for n, a, _, doc, _ in _FUNCS]
          + [f"def {n}({a}):\n    {body}\n" for n, a, body, _, _ in _FUNCS]
          + [f"```python\ndef {n}({a}):\n    {body}\n```\n" for n, a, body, _, _ in _FUNCS]
          + [f"def check():\n    {t}\n" for *_, t in _FUNCS] + _LOOPS)


class _StubTokenizer:
    """Just what `build_model` reads: a 2048-token vocabulary, as the presets' documented counts assume."""

    pad_token_id, eos_token_id = 0, 1

    def __len__(self) -> int:
        return 2048


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(CORPUS * 2, vocab_size=512)


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory):
    return create_toy_model(tmp_path_factory.mktemp("toy") / "nano", CORPUS * 2, size="nano", seed=0,
                            vocab_size=512)


def _chat_batch(tokenizer, n=4):
    """Rendered user/assistant chats, right-padded, labels = inputs with pads masked."""
    chats = [[{"role": "user", "content": f"Write a function {f[0]}({f[1]}). {f[3]}"},
              {"role": "assistant", "content": f"def {f[0]}({f[1]}):\n    {f[2]}\n"}] for f in _FUNCS[:n]]
    texts = [tokenizer.apply_chat_template(c, tokenize=False) for c in chats]
    enc = tokenizer(texts, return_tensors="pt", padding=True)
    labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
    return enc, labels


def test_import_does_not_import_torch():
    code = "import sys, focalpo.toyworld.model; print(sorted(m for m in ('torch', 'transformers', 'tokenizers') " \
           "if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_tokenizer_round_trips_code_exactly(tokenizer):
    text = ("Write rev(s).\n```python\ndef rev(s):\n\tif not s:\n        return ''  \n    return s[::-1]\n```\n"
            "  trailing  spaces, unicode é→λ, CRLF\r\n, and special text </s><|user|>\n")
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.decode(ids) == text
    assert tokenizer.decode(tokenizer("")["input_ids"]) == ""


def test_indentation_is_compact(tokenizer):
    # the split keeps the indent after a newline in one piece: training on code learns each level as a token
    tokens = tokenizer.convert_ids_to_tokens(tokenizer("x:\n    return x\n        if x:\n")["input_ids"])
    assert tokens == ["x", ":Ċ", "ĠĠĠ", "Ġreturn", "Ġx", "Ċ", "ĠĠĠĠĠĠĠ", "Ġif", "Ġx", ":Ċ"]
    for code in _LOOPS:
        n_tokens = len(tokenizer(code)["input_ids"])
        assert n_tokens < len(code) / 3, (code, n_tokens)


def test_special_tokens_are_single_ids(tokenizer):
    assert (tokenizer.pad_token, tokenizer.eos_token) == ("<pad>", "</s>")
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id) == (0, 1)
    for tok in ROLE_TOKENS:
        assert len(tokenizer(tok)["input_ids"]) == 1
    # role markers and eos are special: dropped when decoding a generation
    ids = tokenizer("<|assistant|>\ndef f(): pass</s>")["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "\ndef f(): pass"


def test_chat_template_renders_turns_exactly(tokenizer):
    assert tokenizer.chat_template == CHAT_TEMPLATE
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Write f."},
            {"role": "assistant", "content": "def f():\n    pass"}, {"role": "user", "content": "Again."}]
    assert tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True) == (
        "<|system|>\nBe brief.\n<|user|>\nWrite f.\n<|assistant|>\ndef f():\n    pass</s>"
        "<|user|>\nAgain.\n<|assistant|>\n")
    assert tokenizer.apply_chat_template(msgs[1:2], tokenize=False) == "<|user|>\nWrite f.\n"


@pytest.mark.parametrize("arch, size, expected", [
    # V*h + L*(2h^2 + 2*h*kv*hd + 3*h*I + 2h) + h, with V = 2048, tied embeddings:
    # nano: 262144 + 4*(32768 + 16384 + 147456 + 256) + 128 = 1049728
    ("llama", "nano", 1_049_728),
    # tiny: 524288 + 4*(131072 + 65536 + 589824 + 512) + 256 = 3672320
    ("llama", "tiny", 3_672_320),
    # qwen2 adds q/k/v biases: nano 4*(128 + 2*64) = 1024 more
    ("qwen2", "nano", 1_050_752),
])
def test_param_counts_match_the_documented_presets(arch, size, expected):
    model = build_model(_StubTokenizer(), size=size, arch=arch)
    assert param_count(model) == expected
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert model.dtype == torch.float32 and model.config.max_position_embeddings == SIZES[size].max_positions


def test_build_model_is_deterministic_per_seed(tokenizer):
    torch.manual_seed(123)
    expected_draw = torch.rand(3)
    torch.manual_seed(123)
    a = build_model(tokenizer, size="nano", seed=0).state_dict()
    assert torch.equal(torch.rand(3), expected_draw)  # the caller's RNG is untouched
    b = build_model(tokenizer, size="nano", seed=0).state_dict()
    c = build_model(tokenizer, size="nano", seed=1).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["model.embed_tokens.weight"], c["model.embed_tokens.weight"])


def test_unknown_size_or_arch_is_an_error(tokenizer, tmp_path):
    with pytest.raises(ValueError, match="unknown model size 'huge'"):
        build_model(tokenizer, size="huge")
    with pytest.raises(ValueError, match="unknown arch 'gpt2'"):
        build_model(tokenizer, size="nano", arch="gpt2")
    with pytest.raises(ValueError, match="size='huge'"):
        create_toy_model(tmp_path / "m", CORPUS, size="huge")


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_saved_model_reloads_with_identical_logits(tokenizer, tmp_path, arch):
    """AutoTokenizer rebuilds a Qwen2Tokenizer for a qwen2 config: it must tokenize as the trained one."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = build_model(tokenizer, size="nano", seed=3, arch=arch).eval()
    save_model(model, tokenizer, tmp_path / "m")
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in (tmp_path / "m").iterdir()}
    model2 = AutoModelForCausalLM.from_pretrained(tmp_path / "m").eval()
    tokenizer2 = AutoTokenizer.from_pretrained(tmp_path / "m")
    enc, _ = _chat_batch(tokenizer)
    texts = tokenizer.batch_decode(enc["input_ids"], skip_special_tokens=False) + _LOOPS + ["x = 1234\r\n\t'é'"]
    assert tokenizer2(texts)["input_ids"] == tokenizer(texts)["input_ids"]
    assert len(tokenizer2) == len(tokenizer) == model2.config.vocab_size
    assert tokenizer2.chat_template == CHAT_TEMPLATE and tokenizer2.eos_token_id == tokenizer.eos_token_id
    with torch.no_grad():
        assert torch.equal(model(**enc).logits, model2(**enc).logits)  # (B, T, V)


def test_create_toy_model_writes_metadata(toy_dir):
    meta = json.loads((toy_dir / "toyworld.json").read_text())
    assert meta["size"] == "nano" and meta["arch"] == "llama" and meta["seed"] == 0
    assert meta["preset"]["hidden_size"] == SIZES["nano"].hidden_size
    config = json.loads((toy_dir / "config.json").read_text())
    assert config["vocab_size"] == meta["vocab_size"] and config["tie_word_embeddings"] is True
    from transformers import AutoModelForCausalLM

    assert param_count(AutoModelForCausalLM.from_pretrained(toy_dir)) == meta["param_count"]


def test_hf_backend_generates_from_saved_model(toy_dir):
    from focalpo.generate import get_backend

    backend = get_backend("hf", model=str(toy_dir), device="cpu")
    prompts = [[{"role": "user", "content": "Write f."}]]
    assert backend.render(prompts[0]) == "<|user|>\nWrite f.\n<|assistant|>\n"
    out = backend.generate(prompts, n=2, temperature=1.0, max_new_tokens=8, seed=[0])
    assert len(out) == 1 and len(out[0]) == 2 and all(isinstance(t, str) for t in out[0])
    assert backend.generate(prompts, n=2, temperature=1.0, max_new_tokens=8, seed=[0]) == out


def test_create_refuses_a_non_empty_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match=f"{tmp_path}.*overwrite=True"):
        create_toy_model(tmp_path, CORPUS, size="nano")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]  # nothing written before refusing
    create_toy_model(tmp_path, CORPUS, size="nano", overwrite=True)
    assert (tmp_path / "notes.txt").read_text() == "keep me" and (tmp_path / "toyworld.json").exists()


def test_a_few_adamw_steps_lower_the_nll(tokenizer):
    model = build_model(tokenizer, size="nano", seed=0).train()
    enc, labels = _chat_batch(tokenizer)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(6):
        loss = model(**enc, labels=labels).loss  # mean NLL of the next token
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        final = model(**enc, labels=labels).loss.item()
    assert losses[0] == pytest.approx(float(torch.log(torch.tensor(len(tokenizer)))), abs=0.5)  # ~uniform at init
    assert final < 0.8 * losses[0], losses
