"""Prefix-shared, padding-free batches (focalpo.train.packing) score every completion token as the padded
(2B, T) batch does: per-token log-probs within 1e-5 in float32, and the same per-pair sums, losses and
gradients; on Llama and Qwen2, with LoRA, with gradient checkpointing, eager and SDPA attention.

Run: .venv/bin/python -m pytest tests/train/test_packing.py -q
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from train_helpers import PAIRS, make_model, perturb, simple_examples, training_model

from focalpo.train.collate import PreferenceCollator
from focalpo.train.logps import batch_token_logps, packed_token_logps, pair_logps
from focalpo.train.packing import PackedPairCollator, shared_token_fraction
from focalpo.train.trainer import LossSettings, WeightedPreferenceTrainer

# pairs chosen for their boundaries: no common prefix, all in common but the end, one completion a
# prefix of the other but for EOS, BPE splitting the two texts differently before they diverge, identical
EDGE_PAIRS = [
    ("x = ", "1\n", "y\n"),
    ("def f(a, b):\n", "    total = a + b\n    return total\n", "    total = a + b\n    return total + 1\n"),
    ("def g(n):\n", "    return n\n", "    return n\n    print(n)\n"),
    ("s = ", "'abc'\nt = s + s\n", "'abcd'\nt = s + s\n"),
    ("while n > 1:\n", "    n //= 2\n", "    n //= 2\n"),
]


def examples_of(tokenizer, pairs, target_weights=True):
    exs = simple_examples(tokenizer, pairs)
    if target_weights:  # Target-style weights: rejected scored on its second half only, chosen fully
        for ex in exs:
            n = len(ex["rejected_weights"])
            ex["rejected_weights"] = [0.0] * (n // 2) + [1.0] * (n - n // 2)
    return exs


def padded_per_token(model, examples, tokenizer):
    """{(pair, side, j): log π} from the padded batch."""
    batch = PreferenceCollator(pad_token_id=tokenizer.pad_token_id)(examples)
    logps, s = batch_token_logps(model, batch)
    out, B = {}, len(examples)
    for row in range(2 * B):
        b, side = row % B, "chosen" if row < B else "rejected"
        P = len(examples[b]["prompt_input_ids"])
        for j in range(len(examples[b][f"{side}_input_ids"])):
            if P + j >= s:
                out[(b, side, j)] = logps[row, P + j - s]
    return out


def packed_per_token(model, batch):
    logps = packed_token_logps(model, batch)
    out = {}
    for n in range(len(logps)):
        b, j = int(batch["score_pair"][n]), int(batch["score_pos"][n])
        for side in ("chosen", "rejected"):
            if batch[f"{side}_mask"][n]:
                out[(b, side, j)] = logps[n]
    return out


def test_the_packed_layout(tokenizer):
    """One pair by hand: positions restart for the rejected rest, which does not see the chosen rest."""
    ex = {"prompt_input_ids": [10, 11], "chosen_input_ids": [20, 21, 30], "rejected_input_ids": [20, 21, 40, 41],
          "chosen_weights": [1.0, 1.0, 1.0], "rejected_weights": [0.0, 0.0, 1.0, 1.0]}
    b = PackedPairCollator(pad_token_id=0)([ex])
    assert b["input_ids"].tolist() == [[10, 11, 20, 21, 30, 40, 41]]
    assert b["position_ids"].tolist() == [[0, 1, 2, 3, 4, 4, 5]]
    mask = b["attention_mask"][0, 0]
    assert mask[5].tolist() == [True, True, True, True, False, True, False]  # 40 sees prompt + prefix, not 30
    assert mask[4].tolist() == [True, True, True, True, True, False, False]
    # scored: prefix 20, 21 (both sides), 30 (chosen), 40 from the last shared position (index 3), 41
    assert b["score_src"].tolist() == [1, 2, 3, 3, 5]
    assert b["score_tgt"].tolist() == [20, 21, 30, 40, 41]
    assert b["chosen_weights"].tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert b["rejected_weights"].tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]
    assert b["chosen_mask"].tolist() == [1, 1, 1, 0, 0] and b["rejected_mask"].tolist() == [1, 1, 0, 1, 1]
    assert shared_token_fraction([ex]) == pytest.approx(8 / 11)  # prompt + prefix, twice, of 5 + 6 padded tokens


def test_padding_free_rows_hold_several_pairs_and_no_padding(tokenizer):
    exs = examples_of(tokenizer, PAIRS + EDGE_PAIRS)  # long and short pairs
    one_each = PackedPairCollator(pad_token_id=-1, pack=False)(exs)["input_ids"]  # -1 marks padding here
    lengths = (one_each != -1).sum(1)
    assert (one_each == -1).any()  # one pair per row pads the short ones
    budget = PackedPairCollator(pad_token_id=-1, max_row_tokens=10_000)(exs)["input_ids"]
    assert budget.shape == (1, int(lengths.sum())) and not (budget == -1).any()  # all in one row, no padding
    default = PackedPairCollator(pad_token_id=-1)(exs)["input_ids"]  # short pairs share rows up to the longest
    assert default.shape[1] == int(lengths.max()) and default.shape[0] < len(exs)
    assert int((default == -1).sum()) < int((one_each == -1).sum())


@pytest.mark.parametrize("share, pack", [(True, True), (True, False), (False, True)],
                         ids=["shared+packed", "shared", "packed"])
@pytest.mark.parametrize("pairs", [PAIRS, EDGE_PAIRS], ids=["pairs", "edges"])
def test_per_token_logps_equal_the_padded_batch(tokenizer, share, pack, pairs):
    model = perturb(make_model(tokenizer), seed=2).eval()
    exs = examples_of(tokenizer, pairs)
    ref = padded_per_token(model, exs, tokenizer)
    got = packed_per_token(model, PackedPairCollator(pad_token_id=tokenizer.pad_token_id, share_prefix=share, pack=pack,
                                                     max_row_tokens=64)(exs))
    assert got.keys() == ref.keys()
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], atol=1e-5, rtol=0, msg=str(k))


def test_chat_template_prompts(tokenizer):
    tok = copy.deepcopy(tokenizer)
    tok.chat_template = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</s>{% endfor %}<assistant>"
    exs = examples_of(tokenizer, PAIRS[:4])
    for ex, (prompt, _, _) in zip(exs, PAIRS):
        ex["prompt_input_ids"] = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=True,
                                                         add_generation_prompt=True, return_dict=False)
    model = perturb(make_model(tokenizer), seed=4).eval()
    ref = padded_per_token(model, exs, tokenizer)
    got = packed_per_token(model, PackedPairCollator(pad_token_id=tokenizer.pad_token_id)(exs))
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], atol=1e-5, rtol=0, msg=str(k))


def sums_and_grads(model, batch, logps_options=None):
    out = pair_logps(model, batch, **(logps_options or {}))
    loss = -torch.nn.functional.logsigmoid(0.1 * (out.chosen - out.rejected)).sum() + 0.1 * out.nll
    model.zero_grad(set_to_none=True)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    return out, grads


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("adapter", [False, True], ids=["full", "lora"])
@pytest.mark.parametrize("checkpointing", [False, True], ids=["plain", "grad-ckpt"])
def test_sums_and_gradients_equal_the_padded_batch(tokenizer, arch, adapter, checkpointing):
    model = training_model(tokenizer, arch, adapter, checkpointing)
    exs = examples_of(tokenizer, PAIRS + EDGE_PAIRS)
    a, ga = sums_and_grads(model, PreferenceCollator(pad_token_id=tokenizer.pad_token_id)(exs))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the chunked head ran, no fallback
        b, gb = sums_and_grads(model, PackedPairCollator(pad_token_id=tokenizer.pad_token_id, max_row_tokens=80)(exs))
    for x, y in ((a.chosen, b.chosen), (a.rejected, b.rejected), (a.nll, b.nll), (a.mass[0], b.mass[0]),
                 (a.mass[1], b.mass[1])):
        torch.testing.assert_close(y, x, atol=2e-5, rtol=1e-6)
    assert int(a.weighted_tokens) == int(b.weighted_tokens) and int(a.completion_tokens) == int(b.completion_tokens)
    assert ga.keys() == gb.keys() and ga
    for n in ga:
        torch.testing.assert_close(gb[n], ga[n], atol=1e-5, rtol=1e-4, msg=n)


def test_eager_attention_takes_the_additive_mask(tokenizer):
    model = perturb(make_model(tokenizer), seed=5).eval()
    model.config._attn_implementation = "eager"
    exs = examples_of(tokenizer, PAIRS)
    ref = padded_per_token(model, exs, tokenizer)
    got = packed_per_token(model, PackedPairCollator(pad_token_id=tokenizer.pad_token_id)(exs))
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], atol=1e-5, rtol=0, msg=str(k))


@pytest.mark.parametrize("loss_type, nll", [("sigmoid", False), ("sigmoid", True), ("ipo", False), ("hinge", False)])
def test_trainer_loss_and_gradients_are_unchanged(tokenizer, tmp_path, loss_type, nll):
    """compute_loss of WeightedPreferenceTrainer on both collations, every loss type, localised validation sums."""
    from transformers import TrainingArguments

    policy, ref = perturb(make_model(tokenizer), seed=3), make_model(tokenizer)
    exs = examples_of(tokenizer, PAIRS + EDGE_PAIRS)
    for ex in exs:
        ex["chosen_focus"] = [1.0] * len(ex["chosen_input_ids"])
        ex["rejected_focus"] = [0.0] + [1.0] * (len(ex["rejected_input_ids"]) - 1)
        ex["ref_chosen_focus_logps"], ex["ref_rejected_focus_logps"] = -10.0, -12.0
    results = []
    for collate in (PreferenceCollator(pad_token_id=tokenizer.pad_token_id),
                    PackedPairCollator(pad_token_id=tokenizer.pad_token_id)):
        trainer = WeightedPreferenceTrainer(
            model=copy.deepcopy(policy), ref_model=copy.deepcopy(ref), data_collator=collate, train_dataset=exs,
            args=TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True, remove_unused_columns=False),
            loss=LossSettings(beta=0.1, loss_type=loss_type, nll=nll),
        )
        loss = trainer.compute_loss(trainer.model, collate(exs))
        loss.backward()
        metrics = {k: v[-1] for k, v in trainer._pair_metrics.items()}
        results.append((loss.detach(), {n: p.grad for n, p in trainer.model.named_parameters()}, metrics))
    (la, ga, ma), (lb, gb, mb) = results
    torch.testing.assert_close(lb, la, atol=1e-5, rtol=1e-6)
    for n in ga:
        torch.testing.assert_close(gb[n], ga[n], atol=1e-5, rtol=1e-4, msg=n)
    assert mb.keys() == ma.keys() and "localized/margins" in ma
    for k in ma:
        assert mb[k] == pytest.approx(ma[k], abs=1e-5), k


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype, atol", [(torch.float32, 1e-4), (torch.bfloat16, 0.1)])
def test_on_gpu_the_sdpa_kernel_with_the_mask_gives_the_padded_logps(tokenizer, dtype, atol):
    """On CUDA the packed batch runs through SDPA's masked kernel: the padded batch's log-probs (TF32 and
    bf16 matmuls: looser tolerances than on CPU)."""
    model = perturb(make_model(tokenizer), seed=2).to("cuda", dtype).eval()
    exs = examples_of(tokenizer, PAIRS + EDGE_PAIRS)
    padded = PreferenceCollator(pad_token_id=tokenizer.pad_token_id)(exs)
    packed = PackedPairCollator(pad_token_id=tokenizer.pad_token_id)(exs)
    with torch.no_grad():
        a = pair_logps(model, {k: v.cuda() for k, v in padded.items()})
        b = pair_logps(model, {k: v.cuda() for k, v in packed.items()})
    torch.testing.assert_close(b.chosen, a.chosen, atol=atol * 10, rtol=1e-3)
    torch.testing.assert_close(b.rejected, a.rejected, atol=atol * 10, rtol=1e-3)
