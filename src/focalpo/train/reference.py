"""Sequence log-probs of a (2B, T) preference batch, and reference log-probs computed once and cached.

    logps, s = batch_token_logps(model, batch)               # (2B, T−s) from token s on, differentiable
    chosen, rejected = weighted_pair_logps(logps, batch, s)  # (B,), (B,)  Σ_t w_t log π(y_t)
    refs = precompute_reference_logps(ref, examples, collator, batch_size=8, cache_file=path)

`precompute_reference_logps` runs the frozen reference over the dataset once (sharded over the
processes of an `accelerate launch`, gathered on every rank), and stores Σ_t w_t log π_ref per example
in a cache file named by `reference_cache_key`: a hash of the reference weights, of every example's
token ids and weights (so of the data, the scheme and the tokenisation) and of the settings that
change the numbers (max_length, autocast dtype). A second run with the same inputs reads the file.
With a LoRA policy the reference is the same model with its adapter disabled (`adapter_disabled`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Iterable, Sequence

import torch

from focalpo.io import atomic_path, cache_root
from focalpo.train.collate import REF_KEYS
from focalpo.train.losses import token_logps, weighted_logps

CACHE_VERSION = "ref1"  # bump when the numbers written change meaning


def first_scored_token(batch: dict[str, torch.Tensor]) -> int:
    """Index of the first token any row needs a log-prob for: the earliest completion token (≥ 1).

    Tokens before it are prompt in every row, so the LM head never has to score them.
    """
    first = batch["completion_mask"].argmax(dim=-1)  # (2B,) first completion index of each row
    return max(int(first.min()), 1)


def batch_token_logps(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """(logps, s): log π(y_t) for tokens t = s..T−1 of every row, (2B, T−s), s = first_scored_token.

    `logits_to_keep` asks the model for logits from position s−1 on only, which spares the LM head
    (and the (2B, T, V) logits) the shared prompt. Slice weights and masks `[:, s:]` to line up.
    """
    s = first_scored_token(batch)
    ids = batch["input_ids"]
    out = model(input_ids=ids, attention_mask=batch["attention_mask"], use_cache=False,
                logits_to_keep=ids.shape[1] - s + 1)
    return token_logps(out.logits, ids[:, s - 1 :]), s  # logits (2B, T−s+1, V) at positions s−1..T−1


def weighted_pair_logps(logps: torch.Tensor, batch: dict[str, torch.Tensor], s: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(chosen, rejected) Σ_t w_t log π(y_t), each (B,), from (2B, T−s) token log-probs starting at token s."""
    weights = batch["loss_weights"][:, s:].to(logps.dtype)  # (2B, T−s), aligned with logps
    return weighted_logps(logps, weights).chunk(2)


def is_peft_model(model) -> bool:
    return hasattr(model, "disable_adapter") and hasattr(model, "peft_config")


def adapter_disabled(model):
    """Context in which a PEFT model computes its base model (the LoRA reference); no-op otherwise."""
    return model.disable_adapter() if is_peft_model(model) else contextlib.nullcontext()


@torch.no_grad()
def reference_pair_logps(model, batch, *, use_base: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference (chosen, rejected) weighted log-probs, (B,) each, without a graph."""
    with adapter_disabled(model) if use_base else contextlib.nullcontext():
        logps, s = batch_token_logps(model, batch)
    return weighted_pair_logps(logps, batch, s)


# --------------------------------------------------------------------------------------------------
# Cache key


def model_fingerprint(model, *, skip_adapters: bool = False) -> str:
    """blake2b of every tensor of the state dict (name, dtype, shape, bytes); LoRA tensors skipped if asked."""
    h = hashlib.blake2b(digest_size=16)
    for name, t in sorted(model.state_dict().items()):
        if skip_adapters and "lora_" in name:
            continue
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def examples_fingerprint(examples: Iterable[dict]) -> str:
    """blake2b of every example's token ids and weights, in order."""
    h = hashlib.blake2b(digest_size=16)
    for ex in examples:
        h.update(
            json.dumps(
                [ex["prompt_input_ids"], ex["chosen_input_ids"], ex["rejected_input_ids"],
                 ex["chosen_weights"], ex["rejected_weights"]],
                separators=(",", ":"),
            ).encode()
        )
    return h.hexdigest()


def reference_cache_key(model_hash: str, examples: Sequence[dict], settings: dict) -> str:
    """Name of the cache file: the reference, the weighted data and the settings that change the numbers."""
    blob = json.dumps([CACHE_VERSION, model_hash, examples_fingerprint(examples), settings], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def default_cache_dir() -> Path:
    return cache_root() / "ref_logps"


# --------------------------------------------------------------------------------------------------
# Precompute


def _load_cache(path: Path, n: int) -> list[tuple[float, float]] | None:
    if not path.is_file():
        return None
    data = torch.load(path, weights_only=True)
    if data.shape != (n, 2):  # a different dataset cannot share a key; a truncated file is recomputed
        return None
    return [(float(c), float(r)) for c, r in data.tolist()]


def _save_cache(path: Path, values: list[tuple[float, float]]) -> None:
    with atomic_path(path) as tmp:
        torch.save(torch.tensor(values, dtype=torch.float64), tmp)


def precompute_reference_logps(
    model,
    examples: Sequence[dict],
    collator,
    *,
    batch_size: int,
    cache_file: str | Path | None = None,
    use_base: bool = False,
    autocast_dtype: torch.dtype | None = None,
    progress: bool = False,
) -> list[tuple[float, float]]:
    """(Σ w log π_ref(y⁺), Σ w log π_ref(y⁻)) per example, read from `cache_file` or computed and written.

    Under several processes each computes its share and all ranks receive the gathered result;
    the main process writes the file. Whether the cache is used is the main process's decision, sent
    to every rank with its values: ranks on other nodes may see another cache directory (or none),
    and ranks that decided apart would deadlock or train on different references.
    """
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list, gather_object

    state = PartialState()
    path = Path(cache_file) if cache_file else None
    cached = _load_cache(path, len(examples)) if path and state.is_main_process else None
    if state.num_processes > 1:
        box = [cached]
        broadcast_object_list(box, from_process=0)
        cached = box[0]
    if cached is not None:
        return cached
    was_training = model.training
    model.eval()
    model.to(state.device)
    autocast = (
        torch.autocast(state.device.type, dtype=autocast_dtype) if autocast_dtype else contextlib.nullcontext()
    )
    mine: list[tuple[int, float, float]] = []
    with state.split_between_processes(list(range(len(examples)))) as indices:
        starts = range(0, len(indices), batch_size)
        if progress and state.is_main_process:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="reference log-probs", unit="batch")
        for s in starts:
            idx = indices[s : s + batch_size]
            batch = {k: v.to(state.device) for k, v in collator([examples[i] for i in idx]).items()}
            with autocast:
                chosen, rejected = reference_pair_logps(model, batch, use_base=use_base)
            mine += zip(idx, chosen.double().tolist(), rejected.double().tolist())
    model.train(was_training)
    everything = sorted(gather_object(mine)) if state.num_processes > 1 else mine
    values = [(c, r) for _, c, r in everything]
    if path is not None and state.is_main_process:
        _save_cache(path, values)
    state.wait_for_everyone()
    return values


def attach_reference(examples: Sequence[dict], values: Sequence[tuple[float, float]]) -> list[dict]:
    """Copies of the examples carrying `ref_chosen_logps` / `ref_rejected_logps`."""
    return [{**ex, REF_KEYS[0]: c, REF_KEYS[1]: r} for ex, (c, r) in zip(examples, values, strict=True)]
