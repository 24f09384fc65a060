"""Reference log-probs of preference batches: computed once and cached.

    chosen, rejected = reference_pair_logps(ref, batch)      # (B,), (B,)  Σ_t w_t log π_ref(y_t), no graph
    refs = precompute_reference_logps(ref, examples, collator, batch_size=8, cache_file=path)
    fill_reference(model, [ReferenceSums(examples, path)], collator, batch_size=8)   # in place

`precompute_reference_logps` runs the frozen reference over the dataset once (sharded over the
processes of an `accelerate launch`, gathered on every rank), and stores Σ_t w_t log π_ref per example
in a cache file named by `reference_cache_key`: a hash of the reference's weight files
(`weights_fingerprint`), of every example's token ids and weights (so of the data, the scheme and the
tokenisation) and of the settings that change the numbers (max_length, load dtype, autocast). A second
run with the same inputs reads the file. The model may be wrapped for training (DDP, FSDP, DeepSpeed
ZeRO-3): `focalpo train` computes the sums with the wrapped policy (`WeightedPreferenceTrainer`), since
a model partitioned at load runs only inside its wrapper. With a LoRA policy the reference is the same
model with its adapter disabled (`adapter_disabled`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch

from focalpo.io import atomic_path, cache_root
from focalpo.train.collate import REF_KEYS
from focalpo.train.logps import pair_logps

CACHE_VERSION = "ref2"  # bump when the numbers written or the key change meaning


def is_peft_model(model) -> bool:
    return hasattr(model, "disable_adapter") and hasattr(model, "peft_config")


def adapter_disabled(model):
    """Context in which a PEFT model computes its base model (the LoRA reference); no-op otherwise."""
    return model.disable_adapter() if is_peft_model(model) else contextlib.nullcontext()


@torch.no_grad()
def reference_pair_logps(model, batch, *, use_base: bool = False, **logps_options) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference (chosen, rejected) weighted log-probs, (B,) each, without a graph. `model` may be wrapped
    (DDP, FSDP, DeepSpeed): the adapter is disabled on the model inside, the forward runs through the wrapper.
    `logps_options`: `chunked`, `chunk_tokens` of `batch_token_logps`."""
    from accelerate.utils import extract_model_from_parallel

    with adapter_disabled(extract_model_from_parallel(model)) if use_base else contextlib.nullcontext():
        out = pair_logps(model, batch, **logps_options)
    return out.chosen, out.rejected


# --------------------------------------------------------------------------------------------------
# Cache key

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def weights_fingerprint(model: str | Path) -> str:
    """blake2b of a model's weight files and `config.json` (names and bytes): what its log-probs depend
    on besides the load dtype. Read from disk, so it is the same however the model is then loaded (whole,
    sharded at load by ZeRO-3, on the meta device). A hub id is looked up in the local hub cache, where
    loading it has put it."""
    root = Path(model)
    if not root.is_dir():
        from huggingface_hub import snapshot_download

        root = Path(snapshot_download(str(model), local_files_only=True))
    files = sorted(f for f in root.iterdir()
                   if f.is_file() and (f.suffix in WEIGHT_SUFFIXES or f.name in ("config.json", "adapter_config.json")))
    if not any(f.suffix in WEIGHT_SUFFIXES for f in files):
        raise ValueError(f"model {model}: no weight files ({', '.join(WEIGHT_SUFFIXES)}) in {root}")
    h = hashlib.blake2b(digest_size=16)
    for f in files:
        h.update(f"{f.name}|{f.stat().st_size}|".encode())
        with f.open("rb") as fh:
            while block := fh.read(1 << 24):
                h.update(block)
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
    logps_options: dict | None = None,
    refuse: str | None = None,
) -> list[tuple[float, float]]:
    """(Σ w log π_ref(y⁺), Σ w log π_ref(y⁻)) per example, read from `cache_file` or computed and written.

    Under several processes each computes its share and all ranks receive the gathered result;
    the main process writes the file. Whether the cache is used is the main process's decision, sent
    to every rank with its values: ranks on other nodes may see another cache directory (or none),
    and ranks that decided apart would deadlock or train on different references. Every rank runs
    the same number of forwards (the short shares repeat an example and drop it): a model sharded
    by FSDP or ZeRO-3 gathers its weights in every forward, from all ranks at once.

    `model` is a plain model or one wrapped for training (DDP, FSDP, a DeepSpeed engine); a plain one
    is moved to the process's device. With `refuse` set, a missing cache is an error with that message
    instead of a computation (the model no longer holds the reference's weights).
    """
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list, extract_model_from_parallel, gather_object

    state = PartialState()
    path = Path(cache_file) if cache_file else None
    cached = _load_cache(path, len(examples)) if path and state.is_main_process else None
    if state.num_processes > 1:
        box = [cached]
        broadcast_object_list(box, from_process=0)
        cached = box[0]
    if cached is not None:
        return cached
    if refuse:
        raise ValueError(refuse)
    was_training = model.training
    model.eval()
    if extract_model_from_parallel(model) is model:
        model.to(state.device)
    autocast = (
        torch.autocast(state.device.type, dtype=autocast_dtype) if autocast_dtype else contextlib.nullcontext()
    )
    per_rank = -(-len(examples) // state.num_processes)
    n_batches = -(-per_rank // batch_size)  # the same on every rank
    mine: list[tuple[int, float, float]] = []
    with state.split_between_processes(list(range(len(examples)))) as indices:
        steps = range(n_batches)
        if progress and state.is_main_process:
            from tqdm.auto import tqdm

            steps = tqdm(steps, desc="reference log-probs", unit="batch")
        for b in steps:
            idx = indices[b * batch_size : (b + 1) * batch_size]
            rows = [examples[i] for i in idx] or [examples[0]]  # a filler forward on a short share
            batch = {k: v.to(state.device) for k, v in collator(rows).items()}
            with autocast:
                chosen, rejected = reference_pair_logps(model, batch, use_base=use_base, **(logps_options or {}))
            mine += zip(idx, chosen.double().tolist(), rejected.double().tolist())  # zip drops the filler
    model.train(was_training)
    everything = sorted(gather_object(mine)) if state.num_processes > 1 else mine
    values = [(c, r) for _, c, r in everything]
    if path is not None and state.is_main_process:
        _save_cache(path, values)
    state.wait_for_everyone()
    return values


@dataclass
class ReferenceSums:
    """One set of reference sums to compute: Σ_t w_t log π_ref over `examples` with the weights in
    `weight_keys`, written in place into each example under `keys`, cached in `cache_file`."""

    examples: list[dict]
    cache_file: Path | None
    keys: tuple[str, str] = REF_KEYS
    weight_keys: tuple[str, str] = ("chosen_weights", "rejected_weights")

    def scored(self) -> list[dict]:
        """The examples as the collator must see them: with `weight_keys` as their weights."""
        if self.weight_keys == ("chosen_weights", "rejected_weights"):
            return self.examples
        c, r = self.weight_keys
        return [{**ex, "chosen_weights": ex[c], "rejected_weights": ex[r]} for ex in self.examples]


def fill_reference(model, jobs: Sequence[ReferenceSums], collator, **options) -> None:
    """Compute (or read) every job's sums with `model` and write them into its examples, in place
    (the trainer's datasets are those lists). `options`: those of `precompute_reference_logps`."""
    for job in jobs:
        values = precompute_reference_logps(model, job.scored(), collator, cache_file=job.cache_file, **options)
        for ex, (c, r) in zip(job.examples, values, strict=True):
            ex[job.keys[0]], ex[job.keys[1]] = c, r
