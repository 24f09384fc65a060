"""Our loss and gradients against TRL 1.16's DPOTrainer on the same tiny Llama and the same batch.

With w ≡ 1: scheme dpo = TRL `loss_type="sigmoid"`; rpo = `loss_type=["sigmoid", "sft"]`,
`loss_weights=[1, α]`; also `ipo` and `hinge`. Ids come from TRL's own tokenisation of the pairs.

Run: .venv/bin/python -m pytest tests/train/test_vs_trl.py -q
"""

from __future__ import annotations

import copy

import pytest
import torch
from train_helpers import PAIRS, make_model, perturb

from focalpo.train.collate import PreferenceCollator
from focalpo.train.trainer import LossSettings, WeightedPreferenceTrainer

pytest.importorskip("trl")

BETA = 0.1
ALPHA = 0.7


@pytest.fixture(scope="module")
def models(tokenizer):
    ref = make_model(tokenizer, seed=0)
    policy = perturb(copy.deepcopy(ref), seed=3)  # so that the rewards are not all zero
    return policy, ref


def trl_loss_and_grads(policy, ref, tokenizer, tmp_path, loss_type, loss_weights=None):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    ds = Dataset.from_list([{"prompt": p, "chosen": c, "rejected": r} for p, c, r in PAIRS[:4]])
    args = DPOConfig(
        output_dir=str(tmp_path / "trl"), bf16=False, gradient_checkpointing=False, report_to="none",
        per_device_train_batch_size=4, beta=BETA, max_length=None, loss_type=loss_type, loss_weights=loss_weights,
        use_cpu=True,
    )
    trainer = DPOTrainer(model=copy.deepcopy(policy), ref_model=copy.deepcopy(ref), args=args,
                         train_dataset=ds, processing_class=tokenizer)
    rows = [trainer.train_dataset[i] for i in range(len(ds))]
    batch = trainer.data_collator(rows)
    loss = trainer.compute_loss(trainer.model, batch)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters()}
    return loss.detach(), grads, batch, rows


def unit_weight_examples(rows):
    """TRL's tokenised rows as our examples, w = 1 on every completion token."""
    return [
        {"prompt_input_ids": r["prompt_ids"], "chosen_input_ids": r["chosen_ids"],
         "rejected_input_ids": r["rejected_ids"], "chosen_weights": [1.0] * len(r["chosen_ids"]),
         "rejected_weights": [1.0] * len(r["rejected_ids"])}
        for r in rows
    ]


def our_loss_and_grads(policy, ref, tokenizer, tmp_path, examples, loss_type, nll, packed=False):
    from transformers import TrainingArguments

    from focalpo.train.packing import PackedPairCollator

    collate = (PackedPairCollator if packed else PreferenceCollator)(pad_token_id=tokenizer.pad_token_id)
    args = TrainingArguments(output_dir=str(tmp_path / "ours"), report_to="none", use_cpu=True,
                             remove_unused_columns=False)
    trainer = WeightedPreferenceTrainer(
        model=copy.deepcopy(policy), args=args, data_collator=collate, train_dataset=examples,
        ref_model=copy.deepcopy(ref), loss=LossSettings(beta=BETA, loss_type=loss_type, nll=nll, alpha=ALPHA),
    )
    batch = collate(examples)
    loss = trainer.compute_loss(trainer.model, batch)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters()}
    return loss.detach(), grads, batch


CASES = {
    "dpo": (["sigmoid"], None, "sigmoid", False),
    "rpo": (["sigmoid", "sft"], [1.0, ALPHA], "sigmoid", True),
    "ipo": (["ipo"], None, "ipo", False),
    "hinge": (["hinge"], None, "hinge", False),
}


@pytest.mark.parametrize("packed", [False, True], ids=["padded", "prefix-shared"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_loss_and_gradients_equal_trl(case, packed, models, tokenizer, tmp_path):
    """Our padded batch is TRL's; the prefix-shared, padding-free one (the default of `focalpo train`) gives
    the same loss and gradients."""
    trl_types, trl_weights, our_type, nll = CASES[case]
    policy, ref = models
    trl_loss, trl_grads, trl_batch, rows = trl_loss_and_grads(policy, ref, tokenizer, tmp_path, trl_types, trl_weights)
    loss, grads, batch = our_loss_and_grads(policy, ref, tokenizer, tmp_path, unit_weight_examples(rows), our_type, nll,
                                            packed)
    if not packed:
        assert torch.equal(batch["input_ids"], trl_batch["input_ids"])  # same layout as TRL's collator
        assert torch.equal(batch["completion_mask"], trl_batch["completion_mask"])
    else:
        assert batch["input_ids"].numel() < trl_batch["input_ids"].numel()  # fewer tokens computed
    assert abs(loss.item() - trl_loss.item()) < 1e-5, (loss.item(), trl_loss.item())
    assert loss.item() != pytest.approx(0.6931, abs=1e-3) or case != "dpo"  # policy ≠ reference
    assert grads.keys() == trl_grads.keys()
    worst = max((grads[n] - trl_grads[n]).abs().max().item() for n in grads)
    scale = max(g.abs().max().item() for g in trl_grads.values())
    assert worst < 1e-5, (worst, scale)
    assert scale > 1e-3  # the comparison is not between two zero gradients


def test_pairs_through_focalpo_weights_give_trls_batch_and_loss(models, tokenizer, tmp_path):
    """The whole spine with scheme dpo: pair records -> focalpo.weights -> our collator and loss = TRL."""
    weights = pytest.importorskip("focalpo.weights")
    from focalpo.pairs import PreferencePair

    policy, ref = models
    trl_loss, _, trl_batch, rows = trl_loss_and_grads(policy, ref, tokenizer, tmp_path, ["sigmoid"])
    pairs = [PreferencePair(p, c, r) for p, c, r in PAIRS[:4]]
    examples = weights.build_weighted_examples(pairs, tokenizer, "dpo", use_cache=False)
    assert [e["chosen_input_ids"] for e in examples] == [r["chosen_ids"] for r in rows]
    batch = PreferenceCollator(pad_token_id=tokenizer.pad_token_id)(examples)
    assert torch.equal(batch["input_ids"], trl_batch["input_ids"])
    assert torch.equal(batch["completion_mask"], trl_batch["completion_mask"])
    assert torch.equal(batch["loss_weights"], batch["completion_mask"].float())  # dpo: w = 1 on the completion
    loss, _, _ = our_loss_and_grads(policy, ref, tokenizer, tmp_path, examples, "sigmoid", False)
    assert abs(loss.item() - trl_loss.item()) < 1e-5
