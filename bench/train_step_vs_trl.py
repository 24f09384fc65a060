"""Train-step time and peak memory: focalpo's WeightedPreferenceTrainer vs TRL 1.16's DPOTrainer.

    .venv/bin/python bench/train_step_vs_trl.py                       # tiny Llama (width 64, 2 layers)
    .venv/bin/python bench/train_step_vs_trl.py --hidden 256 --layers 4 --lines 6 --repeats 20
    .venv/bin/python bench/train_step_vs_trl.py --vocab 128000        # a real-size vocabulary (ids < 320 used)
    .venv/bin/python bench/train_step_vs_trl.py --vocab 151936 --pairs 2 --completion-tokens 1024 --repeats 5
                                                                      # Qwen2.5's vocabulary, 1k-token completions

Three runners: `trl`, `focalpo` (the default chunked LM-head log-probs, focalpo.train.logps) and
`focalpo-full` (chunked_logps off: the (2B, T, V) logits materialised, the path before it).

Both trainers get the same policy, the same live frozen reference, the same pairs (TRL's own
tokenisation) and the same AdamW; one step = `Trainer.training_step` (forward of policy and
reference on the (2B, T) batch, loss, metrics, backward) + `optimizer.step()` + `zero_grad()`.
Ours runs scheme `dpo` with weights included: the collated batch carries per-token weights (here
Target-style, the rejected scored on its second half only; a first check with w ≡ 1 asserts the
two losses agree). Steps are interleaved (the order alternates every repeat) after a warm-up, and
the median is reported. Peak memory is the high-water mark of tensor allocations during one step,
from the torch profiler's allocation records (CPU), measured in a separate pass so that profiling
does not slow the timing.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "train"))
from train_helpers import PAIRS, make_tokenizer, perturb  # noqa: E402


def build(args, tok, out_dir: Path):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, LlamaConfig, TrainingArguments
    from trl import DPOConfig, DPOTrainer

    from focalpo.train.collate import PreferenceCollator
    from focalpo.train.trainer import LossSettings, WeightedPreferenceTrainer

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=args.vocab or len(tok), hidden_size=args.hidden, intermediate_size=2 * args.hidden,
                      num_hidden_layers=args.layers, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=4096, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                      bos_token_id=None, tie_word_embeddings=False)
    ref = AutoModelForCausalLM.from_config(cfg)  # default size = tests/train's tiny Llama
    policy = perturb(copy.deepcopy(ref), seed=3)
    pairs = [PAIRS[i % len(PAIRS)] for i in range(args.pairs)]

    def copies(text: str) -> int:  # repeats of a completion: --lines, or enough for --completion-tokens
        if not args.completion_tokens:
            return args.lines
        k = -(-args.completion_tokens // len(tok(text)["input_ids"]))
        while len(tok(text * k)["input_ids"]) < args.completion_tokens:  # BPE merges across the copies
            k += 1
        return k

    rows = [{"prompt": p, "chosen": c * copies(c), "rejected": r * copies(r)} for p, c, r in pairs]
    trl_args = DPOConfig(output_dir=str(out_dir / "trl"), bf16=False, gradient_checkpointing=False,
                         report_to="none", per_device_train_batch_size=args.pairs, beta=0.1, max_length=None,
                         use_cpu=True, disable_tqdm=True)
    trl = DPOTrainer(model=copy.deepcopy(policy), ref_model=copy.deepcopy(ref), args=trl_args,
                     train_dataset=Dataset.from_list(rows), processing_class=tok)
    tokenized = [trl.train_dataset[i] for i in range(len(rows))]
    trl_batch = trl.data_collator(tokenized)

    def examples(weigh_rejected):
        return [{"prompt_input_ids": r["prompt_ids"], "chosen_input_ids": r["chosen_ids"],
                 "rejected_input_ids": r["rejected_ids"], "chosen_weights": [1.0] * len(r["chosen_ids"]),
                 "rejected_weights": weigh_rejected(len(r["rejected_ids"]))} for r in tokenized]

    collate = PreferenceCollator(pad_token_id=tok.pad_token_id)

    def focalpo(chunked: bool):
        return WeightedPreferenceTrainer(
            model=copy.deepcopy(policy), ref_model=copy.deepcopy(ref), data_collator=collate,
            args=TrainingArguments(output_dir=str(out_dir / f"ours-{chunked}"), report_to="none", use_cpu=True,
                                   remove_unused_columns=False, disable_tqdm=True),
            train_dataset=examples(lambda n: [1.0] * n), loss=LossSettings(beta=0.1, chunked_logps=chunked),
        )

    ours, full = focalpo(True), focalpo(False)
    unit_batch = collate(examples(lambda n: [1.0] * n))
    target_batch = collate(examples(lambda n: [0.0] * (n // 2) + [1.0] * (n - n // 2)))
    for t in (trl, ours, full):
        t.current_gradient_accumulation_steps = 1  # set by Trainer.train(); we call training_step directly
        t.model.train()
    return trl, trl_batch, ours, full, unit_batch, target_batch


def step(trainer, optimizer, batch) -> float:
    loss = trainer.training_step(trainer.model, batch)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.item()


def peak_bytes(fn) -> int:
    """High-water mark of CPU tensor memory allocated while fn() runs, above what was allocated before.

    From the profiler's per-allocation "[memory]" records (bytes > 0 allocate, < 0 free), in time
    order; frees of tensors allocated before the window can take the running total below 0.
    """
    import os
    import tempfile

    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        prof.export_chrome_trace(path)
        events = json.loads(Path(path).read_text())["traceEvents"]
    finally:
        os.unlink(path)
    records = sorted((e["ts"], e["args"]["Bytes"]) for e in events
                     if e.get("name") == "[memory]" and e["args"].get("Device Type") == 0)
    current = peak = 0
    for _, nbytes in records:
        current += nbytes
        peak = max(peak, current)
    return peak


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=8, help="pairs per step (batch of 2x rows)")
    ap.add_argument("--lines", type=int, default=4, help="repeat each completion this many times (longer rows)")
    ap.add_argument("--completion-tokens", type=int, default=None,
                    help="instead of --lines: repeat each completion to at least this many tokens")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=None, help="model vocabulary (default: the tokenizer's 320)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import tempfile

    tok = make_tokenizer()
    with tempfile.TemporaryDirectory() as tmp:
        trl, trl_batch, ours, full, unit_batch, target_batch = build(args, tok, Path(tmp))
        # Sanity: with w ≡ 1 the losses agree before any step
        with torch.no_grad():
            a, b = trl.compute_loss(trl.model, trl_batch).item(), ours.compute_loss(ours.model, unit_batch).item()
            c = full.compute_loss(full.model, unit_batch).item()
        # float32 sums over ~1k tokens in another order: agreement relative to the loss
        assert abs(a - b) <= 1e-4 * max(1.0, abs(a)) and abs(b - c) <= 1e-5 * max(1.0, abs(b)), (a, b, c)
        opt = {id(t): torch.optim.AdamW(t.model.parameters(), lr=1e-6) for t in (trl, ours, full)}
        runs = {"trl": (trl, trl_batch), "focalpo": (ours, target_batch), "focalpo-full": (full, target_batch)}
        for _ in range(args.warmup):
            for t, batch in runs.values():
                step(t, opt[id(t)], batch)
        times = {name: [] for name in runs}
        for r in range(args.repeats):
            order = list(runs)[r % len(runs):] + list(runs)[: r % len(runs)]  # rotate who goes first
            for name in order:
                t, batch = runs[name]
                t0 = time.perf_counter()
                step(t, opt[id(t)], batch)
                times[name].append(time.perf_counter() - t0)
        peaks = {name: peak_bytes(lambda t=t, b=batch: step(t, opt[id(t)], b)) for name, (t, batch) in runs.items()}

    med = {k: statistics.median(v) for k, v in times.items()}
    rows, length = trl_batch["input_ids"].shape
    print(f"batch: {args.pairs} pairs -> ({rows}, {length}) tokens; model: Llama width {args.hidden}, "
          f"{args.layers} layers, vocab {args.vocab or len(tok)}; torch threads {torch.get_num_threads()}; {args.repeats} repeats")
    print(f"w = 1 loss check: trl {a:.6f}  focalpo {b:.6f}  focalpo-full {c:.6f}")
    for name in runs:
        q = statistics.quantiles(times[name], n=4)
        print(f"{name:8s} step median {med[name] * 1e3:7.2f} ms  (IQR {q[0] * 1e3:.2f}-{q[2] * 1e3:.2f})  "
              f"peak tensor memory {peaks[name] / 2**20:7.2f} MiB")
    speed = med["trl"] / med["focalpo"]
    mem = peaks["trl"] / max(peaks["focalpo"], 1)
    chunk_mem = peaks["focalpo"] / max(peaks["focalpo-full"], 1)
    chunk_time = med["focalpo"] / med["focalpo-full"]
    print(f"speed-up focalpo vs trl: {speed:.2f}x (time_trl / time_focalpo); memory ratio trl/focalpo: {mem:.2f}x")
    print(f"chunked vs materialised logits: peak memory {chunk_mem:.2f}x, step time {chunk_time:.2f}x "
          "(focalpo / focalpo-full)")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "median_s": med, "peak_bytes": peaks,
                                               "speedup": speed, "memory_ratio": mem, "chunked_memory_ratio": chunk_mem,
                                               "chunked_time_ratio": chunk_time}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
