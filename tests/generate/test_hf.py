"""HFBackend on a tiny local Llama: counts and order, seeded determinism, per-prompt seeds (a prompt's
samples do not depend on its company), stop truncation, left padding (a mixed-length batch gives each
prompt its solo greedy answer), chat templates, errors.

Run: .venv/bin/python -m pytest tests/generate/test_hf.py -q
"""

from __future__ import annotations

import pytest
import torch

from focalpo.generate import Backend, GenerationError, get_backend

PROMPTS = ["def add(a, b):\n", "for i in range(10):\n    print(i)\nif x > 0:\n", "x", "def is_even(n):\n    return"]


@pytest.fixture(scope="module")
def backend(model_dir):
    return get_backend("hf", model=str(model_dir), batch_size=3, device="cpu")


def test_counts_and_protocol(backend):
    assert isinstance(backend, Backend)
    out = backend.generate(PROMPTS, n=3, temperature=1.0, max_new_tokens=6, seed=0)
    assert len(out) == len(PROMPTS) and all(len(texts) == 3 and all(isinstance(t, str) for t in texts) for texts in out)
    assert backend.generate([], n=2) == []


def test_left_padding_batch_equals_each_prompt_alone(backend):
    """Greedy answers do not depend on the batch: pads on the left are masked out exactly."""
    lengths = {len(backend.tokenizer(p)["input_ids"]) for p in PROMPTS}
    assert len(lengths) == len(PROMPTS)  # the batch really is padded
    batched = backend.generate(PROMPTS, n=2, temperature=0, max_new_tokens=12)
    alone = [backend.generate([p], n=1, temperature=0, max_new_tokens=12)[0][0] for p in PROMPTS]
    assert [b[0] for b in batched] == alone
    assert all(b[0] == b[1] for b in batched)  # greedy: n copies of the one answer
    assert len(set(alone)) == len(alone)  # the answers do depend on the prompt
    assert all(len(a) > 0 for a in alone)


def test_prompt_order_kept_despite_length_sorting(backend):
    fwd = backend.generate(PROMPTS, temperature=0, max_new_tokens=8)
    rev = backend.generate(PROMPTS[::-1], temperature=0, max_new_tokens=8)
    assert rev == fwd[::-1]


def test_seeded_sampling_is_reproducible_and_leaves_global_rng(backend):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = backend.generate(PROMPTS, n=4, temperature=1.0, max_new_tokens=10, seed=7)
    assert torch.equal(torch.get_rng_state(), before)
    b = backend.generate(PROMPTS, n=4, temperature=1.0, max_new_tokens=10, seed=7)
    c = backend.generate(PROMPTS, n=4, temperature=1.0, max_new_tokens=10, seed=8)
    assert a == b
    assert a != c
    assert len(set(a[0])) > 1  # the n samples of one prompt differ


def test_per_prompt_seeds_do_not_depend_on_company_or_order(backend):
    """With one seed per prompt, prompt A's samples are the same alone, beside B, and after B."""
    a, b = PROMPTS[0], PROMPTS[1]  # different lengths: batched together they would be padded
    kw = dict(n=3, temperature=1.5, max_new_tokens=12)
    alone = backend.generate([a], seed=[11], **kw)[0]
    with_b = backend.generate([a, b], seed=[11, 22], **kw)
    reversed_ = backend.generate([b, a], seed=[22, 11], **kw)
    assert with_b[0] == alone and reversed_[1] == alone
    assert reversed_[0] == with_b[1] == backend.generate([b], seed=[22], **kw)[0]
    assert backend.generate([a], seed=11, **kw)[0] == alone  # one prompt: the int seed draws the same
    assert len(set(alone)) == 3  # the n samples of one prompt differ from each other
    assert backend.generate([a, b], seed=(12, 22), **kw)[0] != alone  # another seed, other samples


MANY = [("def f%d(x):\n" % i) + "    y = x\n" * (i % 5) + "    return" for i in range(17)]  # 5 lengths


def test_batched_samples_do_not_depend_on_batch_size_order_or_shard(model_dir):
    """Per-prompt seeds, batched: batch size 1 = 16 = 5, in another order, and a subset (a shard) of the
    prompts, all give each prompt the same samples (left padding included: the prompts differ in length)."""
    kw = dict(n=3, temperature=1.0, top_p=0.9, max_new_tokens=10)
    seeds = [1000 + 7 * i for i in range(len(MANY))]
    runs = {}
    for batch_size in (1, 16, 5):
        b = get_backend("hf", model=str(model_dir), batch_size=batch_size, device="cpu", dtype="float32")
        runs[batch_size] = b.generate(MANY, seed=seeds, **kw)
    assert runs[1] == runs[16] == runs[5]
    order = [(5 * i + 3) % len(MANY) for i in range(len(MANY))]  # a permutation (5 and 17 are coprime)
    shuffled = b.generate([MANY[i] for i in order], seed=[seeds[i] for i in order], **kw)
    assert [shuffled[order.index(i)] for i in range(len(MANY))] == runs[1]
    shard = list(range(0, len(MANY), 3))
    assert b.generate([MANY[i] for i in shard], seed=[seeds[i] for i in shard], **kw) == [runs[1][i] for i in shard]
    assert len({t for texts in runs[1] for t in texts}) > len(MANY)  # samples differ within and across prompts


def test_prompts_are_batched_with_per_prompt_seeds(model_dir, monkeypatch):
    b = get_backend("hf", model=str(model_dir), batch_size=16, device="cpu")
    calls = []
    real = b.model.generate
    monkeypatch.setattr(b.model, "generate", lambda **kw: calls.append(kw["input_ids"].shape) or real(**kw))
    b.generate(MANY, n=2, temperature=1.0, max_new_tokens=4, seed=list(range(len(MANY))))
    assert [shape[0] for shape in calls] == [32, 2]  # 16 prompts x 2 samples, then the 17th


def test_row_sampler_draws_exactly_from_the_tempered_top_p_distribution():
    from focalpo.generate.hf import RowSampler

    logits = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, -3.0])
    rows = 40_000
    picks = RowSampler(range(rows), temperature=0.7, top_p=0.9, device="cpu")(None, logits.repeat(rows, 1))
    assert torch.isinf(picks).sum(dim=1).eq(len(logits) - 1).all()  # one token per row, the rest -inf
    counts = torch.bincount(picks.argmax(dim=1), minlength=len(logits)).double() / rows
    p = torch.softmax(logits.double() / 0.7, dim=0)
    keep = (p.cumsum(0) - p) < 0.9  # the smallest most-likely set reaching 0.9
    expected = torch.where(keep, p, torch.zeros_like(p))
    expected /= expected.sum()
    assert counts[~keep].sum() == 0  # the tail beyond top-p is never drawn
    assert (counts - expected).abs().max() < 0.01  # 40k draws: a standard error below 0.0025
    again = RowSampler(range(rows), temperature=0.7, top_p=0.9, device="cpu")(None, logits.repeat(rows, 1))
    assert torch.equal(again, picks)  # the streams are the seeds'


def test_per_prompt_seeds_leave_global_rng_and_greedy_unchanged(backend):
    torch.manual_seed(5)
    before = torch.get_rng_state()
    backend.generate(PROMPTS, n=2, temperature=1.0, max_new_tokens=4, seed=[1, 2, 3, 4])
    assert torch.equal(torch.get_rng_state(), before)
    greedy = backend.generate(PROMPTS, n=2, temperature=0, max_new_tokens=8)
    assert backend.generate(PROMPTS, n=2, temperature=0, max_new_tokens=8, seed=[9, 9, 9, 9]) == greedy


def test_stop_string_truncates(backend):
    full = backend.generate(PROMPTS, temperature=0, max_new_tokens=16)
    text = full[0][0]
    stop = text[5:8]  # a string the greedy answer contains
    first = text.find(stop)
    cut = backend.generate(PROMPTS, temperature=0, max_new_tokens=16, stop=[stop, "never-produced"])
    assert cut[0][0] == text[:first]
    for f, c in zip(full, cut):  # every answer is its full text cut before its first stop occurrence
        i = f[0].find(stop)
        assert c[0] == (f[0] if i == -1 else f[0][:i])


def test_max_new_tokens_bounds_length(backend):
    """Greedy answers of 3 tokens are the start of the 16-token ones (a split UTF-8 byte may show as U+FFFD)."""
    short = backend.generate(PROMPTS, temperature=0, max_new_tokens=3)
    long = backend.generate(PROMPTS, temperature=0, max_new_tokens=16)
    for (s,), (t,) in zip(short, long):
        assert len(s) < len(t)
        assert t.startswith(s.rstrip("\ufffd"))


def test_chat_template_used_for_messages_and_plain_prompts(chat_model_dir):
    backend = get_backend("hf", model=str(chat_model_dir), device="cpu")
    assert backend.use_chat_template
    assert backend.render("hi") == "<|user|>hi\n<|assistant|>"
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert backend.render(messages) == "<|system|>be brief\n<|user|>hi\n<|assistant|>"
    out = backend.generate([messages, "hi"], n=1, temperature=0, max_new_tokens=8)
    # a plain prompt is one user message: same rendered text -> same greedy answer as the explicit message
    assert out[1] == backend.generate([[{"role": "user", "content": "hi"}]], temperature=0, max_new_tokens=8)[0]
    raw = get_backend("hf", model=str(chat_model_dir), device="cpu", chat_template=False)
    assert raw.render("hi") == "hi"


def test_messages_without_template_is_a_clear_error(backend):
    with pytest.raises(GenerationError, match="prompt 1 is a message list but the tokenizer has no chat template"):
        backend.generate(["a", [{"role": "user", "content": "b"}]], max_new_tokens=2)


def test_bad_arguments(backend, model_dir):
    with pytest.raises(ValueError, match="n must be a positive integer"):
        backend.generate(["a"], n=0)
    with pytest.raises(ValueError, match="top_p"):
        backend.generate(["a"], top_p=0)
    with pytest.raises(ValueError, match="not a single prompt"):
        backend.generate("a")
    with pytest.raises(ValueError, match="prompt 0, message 0"):
        backend.generate([[{"role": "user"}]])
    with pytest.raises(ValueError, match="list of 1 seeds but there are 2 prompts"):
        backend.generate(["a", "b"], seed=[1])
    with pytest.raises(TypeError, match="has no option"):
        get_backend("hf", model=str(model_dir), batchsize=2)
    with pytest.raises(ValueError, match="unknown generation backend 'vllm-typo'"):
        get_backend("vllm-typo")
    with pytest.raises(GenerationError, match=r"model .*missing: no such directory"):  # not "Repo id must be ..."
        get_backend("hf", model=str(model_dir / "missing"))
    with pytest.raises(GenerationError, match="cannot load model"):
        get_backend("hf", model=str(model_dir.parent))  # a directory, but no model in it


def test_a_trailing_assistant_message_is_continued(chat_model_dir):
    """The continuation test's prompts: the chat rendered open after the partial answer, and the greedy
    continuation is what the model writes after exactly that text."""
    backend = get_backend("hf", model=str(chat_model_dir), device="cpu")
    partial = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "def f("}]
    text = backend.render(partial)
    assert text == backend.render("hi") + "def f("  # no end of turn after the partial answer
    raw = get_backend("hf", model=str(chat_model_dir), device="cpu", chat_template=False)
    assert backend.generate([partial], temperature=0, max_new_tokens=8) == raw.generate([text], temperature=0,
                                                                                            max_new_tokens=8)
