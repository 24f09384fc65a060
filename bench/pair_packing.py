"""Prefix-shared, padding-free pair batches vs the padded (2B, T) batch and TRL 1.16's DPOTrainer.

    .venv/bin/python bench/pair_packing.py                        # HumanEval+ pairs, width 256, 4 layers
    .venv/bin/python bench/pair_packing.py --hidden 512 --layers 4 --pairs 8 --repeats 10
    .venv/bin/python bench/pair_packing.py --sets "" --pair-files runs/fd/pairs.jsonl --pair-tokenizer MODEL
                                                                  # only the token share of real pair files

Two pair sets from HumanEval+ (../shared/data), tokenised by a BPE tokenizer trained here on the
benchmark's code (4,096 tokens):
- `high`: the HumanEval prompt; chosen = the canonical solution, rejected = the same with one line edited
  at 60 % of its depth (an operator flipped, or `+ 1` appended): Focused-DPO-like, most tokens shared;
- `low`: only the `def` line as prompt; chosen and rejected = the canonical solutions of two different
  tasks: little in common but that line.
Three runners on the same tiny Llama (from config), the same live frozen reference, the same tokens
(TRL's own tokenisation), w = 1: `trl` (DPOTrainer), `padded` (focalpo, prefix_sharing and padding_free
off: the path before them) and `packed` (focalpo's default, both on). One step = `training_step` +
AdamW step; steps interleaved (the order rotates every repeat), medians; peak memory from the torch
profiler's allocation records. A first check asserts the three losses agree.

`--pair-files` also prints the share of the padded layout's tokens that two sequences of a pair have in
common (prefix sharing computes them once: half of it is saved) on real pair files (focalpo pairs JSONL), tokenised with the same tokenizer.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from samples import DEFAULT_DATA_DIR, load_rows  # noqa: E402
from train_step_vs_trl import peak_bytes, step  # noqa: E402

EDITS = [(" + ", " - "), (" - ", " + "), (" < ", " <= "), (" > ", " >= "), ("==", "!="), (" and ", " or "),
         (" or ", " and "), ("True", "False"), ("False", "True")]


def edit_line(line: str) -> str:
    for a, b in EDITS:
        if a in line:
            return line.replace(a, b, 1)
    return line.rstrip("\n") + " + 1\n" if line.strip().startswith("return") else line + "    pass\n"


def pair_sets(data_dir: Path, n: int) -> dict[str, list[dict]]:
    rows = load_rows("humaneval+", data_dir)[:n + 1]
    high, low = [], []
    for i, row in enumerate(rows[:n]):
        lines = row["canonical_solution"].splitlines(keepends=True)
        k = max(0, min(len(lines) - 1, int(0.6 * len(lines))))
        high.append({"prompt": row["prompt"], "chosen": row["canonical_solution"],
                     "rejected": "".join(lines[:k] + [edit_line(lines[k])] + lines[k + 1:])})
        sig = next(x for x in row["prompt"].splitlines(keepends=True) if x.startswith("def "))
        low.append({"prompt": sig, "chosen": row["canonical_solution"], "rejected": rows[i + 1]["canonical_solution"]})
    return {"high": high, "low": low}


def train_tokenizer(data_dir: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    texts = [r["prompt"] + r["canonical_solution"] for r in load_rows("humaneval+", data_dir)]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=4096, special_tokens=["<pad>", "</s>", "<unk>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>", pad_token="<pad>", unk_token="<unk>")


def build(args, tok, rows, out_dir: Path):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, LlamaConfig, TrainingArguments
    from trl import DPOConfig, DPOTrainer

    from focalpo.train.collate import PreferenceCollator
    from focalpo.train.packing import PackedPairCollator
    from focalpo.train.trainer import LossSettings, WeightedPreferenceTrainer

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=args.hidden, intermediate_size=4 * args.hidden,
                      num_hidden_layers=args.layers, num_attention_heads=args.hidden // 64, num_key_value_heads=2,
                      max_position_embeddings=4096, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                      bos_token_id=None, tie_word_embeddings=False)
    ref = AutoModelForCausalLM.from_config(cfg)
    policy = copy.deepcopy(ref)
    with torch.no_grad():
        g = torch.Generator().manual_seed(3)
        for p in policy.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.02)
    trl_args = DPOConfig(output_dir=str(out_dir / "trl"), bf16=False, report_to="none", beta=0.1, max_length=None,
                         per_device_train_batch_size=len(rows), use_cpu=True, disable_tqdm=True)
    trl = DPOTrainer(model=copy.deepcopy(policy), ref_model=copy.deepcopy(ref), args=trl_args,
                     train_dataset=Dataset.from_list(rows), processing_class=tok)
    tokenized = [trl.train_dataset[i] for i in range(len(rows))]
    examples = [{"prompt_input_ids": r["prompt_ids"], "chosen_input_ids": r["chosen_ids"],
                 "rejected_input_ids": r["rejected_ids"], "chosen_weights": [1.0] * len(r["chosen_ids"]),
                 "rejected_weights": [1.0] * len(r["rejected_ids"])} for r in tokenized]

    def focalpo(collate):
        t = WeightedPreferenceTrainer(
            model=copy.deepcopy(policy), ref_model=copy.deepcopy(ref), data_collator=collate,
            args=TrainingArguments(output_dir=str(out_dir / "ours"), report_to="none", use_cpu=True,
                                   remove_unused_columns=False, disable_tqdm=True),
            train_dataset=examples, loss=LossSettings(beta=0.1),
        )
        return t, collate(examples)

    runs = {"trl": (trl, trl.data_collator(tokenized)),
            "padded": focalpo(PreferenceCollator(pad_token_id=tok.pad_token_id)),
            "packed": focalpo(PackedPairCollator(pad_token_id=tok.pad_token_id))}
    for t, _ in runs.values():
        t.current_gradient_accumulation_steps = 1  # set by Trainer.train(); training_step is called directly
        t.model.train()
    return runs, examples


def measure(args, tok, name: str, rows: list[dict], tmp: Path) -> dict:
    from focalpo.train.packing import shared_token_fraction

    runs, examples = build(args, tok, rows, tmp / name)
    with torch.no_grad():
        losses = {k: t.compute_loss(t.model, b).item() for k, (t, b) in runs.items()}
    assert max(losses.values()) - min(losses.values()) <= 1e-4 * max(1.0, abs(losses["trl"])), losses
    opt = {k: torch.optim.AdamW(t.model.parameters(), lr=1e-6) for k, (t, _) in runs.items()}
    for _ in range(args.warmup):
        for k, (t, b) in runs.items():
            step(t, opt[k], b)
    times = {k: [] for k in runs}
    names = list(runs)
    for r in range(args.repeats):
        for k in names[r % 3:] + names[: r % 3]:
            t, b = runs[k]
            t0 = time.perf_counter()
            step(t, opt[k], b)
            times[k].append(time.perf_counter() - t0)
    peaks = {k: peak_bytes(lambda t=t, b=b, k=k: step(t, opt[k], b)) for k, (t, b) in runs.items()}
    med = {k: statistics.median(v) for k, v in times.items()}
    padded = runs["padded"][1]["input_ids"]
    packed = runs["packed"][1]["input_ids"]
    out = {
        "pairs": len(rows), "shared_fraction": shared_token_fraction(examples), "loss_check": losses,
        "padded_batch": list(padded.shape), "packed_batch": list(packed.shape),
        "median_s": med, "peak_bytes": peaks,
        "speedup_vs_padded": med["padded"] / med["packed"], "speedup_vs_trl": med["trl"] / med["packed"],
        "memory_vs_padded": peaks["packed"] / max(peaks["padded"], 1), "memory_vs_trl": peaks["packed"] / max(peaks["trl"], 1),
    }
    print(f"[{name}] {len(rows)} pairs, {out['shared_fraction']:.0%} of the padded tokens shared (computed once: "
          f"{out['shared_fraction'] / 2:.0%} saved); padded batch "
          f"{tuple(padded.shape)} -> packed {tuple(packed.shape)}; loss check {losses}")
    for k in runs:
        q = statistics.quantiles(times[k], n=4)
        print(f"  {k:7s} step median {med[k] * 1e3:8.1f} ms (IQR {q[0] * 1e3:.1f}-{q[2] * 1e3:.1f})  "
              f"peak {peaks[k] / 2**20:8.1f} MiB")
    print(f"  packed vs padded: {out['speedup_vs_padded']:.2f}x faster, memory {out['memory_vs_padded']:.2f}x; "
          f"packed vs trl: {out['speedup_vs_trl']:.2f}x faster, memory {out['memory_vs_trl']:.2f}x")
    return out


def file_shares(paths: list[str], tok) -> dict[str, float]:
    """Shared-token share of pair files, tokenised with `tok` (conversational pairs need its chat template)."""
    from focalpo.pairs import read_pairs
    from focalpo.train.packing import shared_token_fraction
    from focalpo.weights import build_weighted_examples

    shares = {}
    for path in paths:
        examples = build_weighted_examples(read_pairs(path), tok, "dpo")
        shares[path] = shared_token_fraction(examples)
        print(f"{path} ({len(examples)} pairs): {shares[path]:.1%} of the padded tokens shared, "
              f"{shares[path] / 2:.1%} saved by prefix sharing")
    return shares


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=8, help="pairs per step")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--sets", default="high,low")
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    ap.add_argument("--pair-files", nargs="*", default=[])
    ap.add_argument("--pair-tokenizer", help="tokenizer for --pair-files (default: the one trained here); "
                    "conversational pairs need one with a chat template, e.g. the model that will be trained")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    import tempfile

    tok = train_tokenizer(args.data_dir)
    sets = pair_sets(args.data_dir, args.pairs)
    print(f"model: Llama width {args.hidden}, {args.layers} layers, vocab {len(tok)}; torch threads "
          f"{torch.get_num_threads()}; {args.repeats} repeats")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in filter(None, args.sets.split(",")):
            results[name] = measure(args, tok, name, sets[name], Path(tmp))
    if args.pair_files:
        from transformers import AutoTokenizer

        pair_tok = AutoTokenizer.from_pretrained(args.pair_tokenizer) if args.pair_tokenizer else tok
        results["file_shares"] = file_shares(args.pair_files, pair_tok)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, **results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
