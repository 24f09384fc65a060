"""Chunked log-probs (focalpo.train.logps) equal the materialised path: values and gradients.

Run: .venv/bin/python -m pytest tests/train/test_logps.py -q
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from train_helpers import make_model, simple_examples, training_model

from focalpo.train.collate import PreferenceCollator
from focalpo.train.logps import batch_token_logps, linear_token_logps, weighted_pair_logps
from focalpo.train.losses import selective_log_softmax


def materialised(hidden, weight, bias, targets):
    logits = torch.nn.functional.linear(hidden, weight, bias)
    return selective_log_softmax(logits, targets)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("chunk", [1, 5, 0])  # 0: the default, larger than the batch
@pytest.mark.parametrize("with_bias", [False, True])
def test_linear_token_logps_equals_the_materialised_head(dtype, chunk, with_bias):
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(3, 7, 16, generator=g, dtype=dtype, requires_grad=True)
    weight = torch.randn(50, 16, generator=g, dtype=dtype, requires_grad=True)
    bias = torch.randn(50, generator=g, dtype=dtype, requires_grad=True) if with_bias else None
    targets = torch.randint(0, 50, (3, 7), generator=g)
    upstream = torch.randn(3, 7, generator=g, dtype=dtype)
    inputs = [hidden, weight] + ([bias] if with_bias else [])

    ours = linear_token_logps(hidden, weight, bias, targets, chunk)
    ref = materialised(hidden, weight, bias, targets)
    assert ours.dtype == dtype and ours.shape == (3, 7)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)
    grads = torch.autograd.grad((ours * upstream).sum(), inputs)
    ref_grads = torch.autograd.grad((ref * upstream).sum(), inputs)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_a_frozen_head_gets_no_gradient_and_the_hidden_states_the_right_one():
    g = torch.Generator().manual_seed(3)
    hidden = torch.randn(4, 8, generator=g, requires_grad=True)
    weight = torch.randn(30, 8, generator=g)  # frozen, as a LoRA policy's head
    targets = torch.randint(0, 30, (4,), generator=g)
    linear_token_logps(hidden, weight, None, targets, 3).sum().backward()
    ours, hidden.grad = hidden.grad, None
    materialised(hidden, weight, None, targets).sum().backward()
    torch.testing.assert_close(ours, hidden.grad, atol=1e-5, rtol=1e-5)
    assert weight.grad is None


def test_bfloat16_autocast_matches_the_autocast_linear():
    """Under autocast the head's matmul runs in bfloat16 as nn.Linear's would; log-sum-exp stays float32."""
    g = torch.Generator().manual_seed(1)
    hidden = torch.randn(2, 6, 32, generator=g, requires_grad=True)
    weight = torch.randn(100, 32, generator=g, requires_grad=True)
    targets = torch.randint(0, 100, (2, 6), generator=g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours = linear_token_logps(hidden, weight, None, targets, 4)
        ref = materialised(hidden, weight, None, targets)
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)  # same bf16 logits, same float32 reduction
    gw, gh = torch.autograd.grad(ours.sum(), [weight, hidden])
    rw, rh = torch.autograd.grad(ref.sum(), [weight, hidden])
    assert gw.dtype == torch.float32 and gh.dtype == torch.float32
    torch.testing.assert_close(gh, rh, atol=2e-2, rtol=2e-2)  # bf16 matmuls, summed in another order
    torch.testing.assert_close(gw, rw, atol=2e-2, rtol=2e-2)


# --------------------------------------------------------------------------------------------------
# Whole models: Llama and Qwen2, LoRA, gradient checkpointing


def batch_of(tokenizer):
    examples = simple_examples(tokenizer)
    for ex in examples[::2]:  # Target-style weights on half of them
        ex["rejected_weights"] = [0.0] * (len(ex["rejected_weights"]) // 2) + [1.0] * (len(ex["rejected_weights"]) - len(ex["rejected_weights"]) // 2)
    return PreferenceCollator(pad_token_id=tokenizer.pad_token_id)(examples)


def scored(model, batch, chunked):
    logps, s = batch_token_logps(model, batch, chunked=chunked, chunk_tokens=7)
    chosen, rejected = weighted_pair_logps(logps, batch, s)
    loss = -torch.nn.functional.logsigmoid(0.1 * (chosen - rejected)).sum() + 0.01 * logps.sum()
    model.zero_grad(set_to_none=True)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    return logps.detach(), grads


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("adapter", [False, True], ids=["full", "lora"])
@pytest.mark.parametrize("checkpointing", [False, True], ids=["plain", "grad-ckpt"])
def test_chunked_model_logps_and_gradients_equal_the_full_logits(tokenizer, arch, adapter, checkpointing):
    model = training_model(tokenizer, arch, adapter, checkpointing)
    batch = batch_of(tokenizer)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback: the chunked path really ran
        ours, grads = scored(model, batch, chunked=True)
    ref, ref_grads = scored(model, batch, chunked=False)
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)
    assert grads.keys() == ref_grads.keys() and grads
    for name in grads:
        torch.testing.assert_close(grads[name], ref_grads[name], atol=1e-5, rtol=1e-5, msg=name)


def test_head_is_restored_after_the_call(tokenizer):
    model = make_model(tokenizer)
    batch_token_logps(model, batch_of(tokenizer))
    assert "forward" not in vars(model.lm_head)
    ids = torch.tensor([[3, 4, 5]])
    assert model(input_ids=ids).logits.shape == (1, 3, len(tokenizer))


def test_models_that_transform_the_logits_fall_back_with_a_warning(tokenizer):
    """Gemma-2 soft-caps its logits after the head: chunked scores would be wrong, so the full logits serve."""
    from transformers import AutoModelForCausalLM, Gemma2Config

    torch.manual_seed(0)
    cfg = Gemma2Config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
                       pad_token_id=tokenizer.pad_token_id, final_logit_softcapping=2.0)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    batch = batch_of(tokenizer)
    with pytest.warns(UserWarning, match="transforms the LM head's output"):
        ours, _ = batch_token_logps(model, batch)
    ref, _ = batch_token_logps(model, batch, chunked=False)
    torch.testing.assert_close(ours, ref, atol=0, rtol=0)
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once, and the chunked attempt is not repeated
        again, _ = batch_token_logps(model, batch)
    assert calls == [1]  # one forward, not an attempt and then the full logits
    torch.testing.assert_close(again, ref, atol=0, rtol=0)


def test_a_lora_adapted_head_falls_back_with_a_warning(tokenizer):
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(make_model(tokenizer), LoraConfig(r=2, target_modules=["lm_head", "q_proj"]))
    batch = batch_of(tokenizer)
    with pytest.warns(UserWarning, match="not a plain nn.Linear"):
        ours, _ = batch_token_logps(model, batch)
    torch.testing.assert_close(ours, batch_token_logps(model, batch, chunked=False)[0], atol=0, rtol=0)


def test_a_ddp_wrapped_model_is_scored_through_its_wrapper(tokenizer):
    """The head is found through the wrapper (accelerate's unwrapping) and the wrapper's forward runs."""
    calls = []

    class Wrapper(torch.nn.Module):  # stands in for DDP: a `.module` and a forward of its own
        def __init__(self, module):
            super().__init__()
            self.module = module

        def forward(self, **kw):
            calls.append(1)
            return self.module(**kw)

    model = make_model(tokenizer)
    batch = batch_of(tokenizer)
    ref, _ = batch_token_logps(copy.deepcopy(model), batch, chunked=False)
    from torch.nn.parallel import DistributedDataParallel

    wrapped = Wrapper(model)
    wrapped.__class__ = type("DDPLike", (Wrapper, DistributedDataParallel), {})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours, _ = batch_token_logps(wrapped, batch)
    assert calls == [1]
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)
