"""`TrainConfig`, the typed options of `focalpo train` (loaded by `focalpo.config.load_config`).

    cfg = load_config(TrainConfig, "configs/target_dpo.yaml", ["beta=0.2", "scheme_options.w_focused=3"],
                      flags={"model": "path/to/model", "data": "pairs.jsonl", "output": "runs/a"})
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrainConfig:
    """Options of one `focalpo train` run (see README / `focalpo train --help`)."""

    model: str = ""  # policy: a local HF model directory (or hub id when online)
    data: str = ""  # pairs (focalpo.pairs) or pre-weighted examples: JSONL, parquet, save_to_disk dir or Hub id
    split: str | None = None  # dataset split of `data` (a Hub id or a saved DatasetDict)
    columns: dict = field(default_factory=dict)  # focalpo field -> column of `data`/`eval_data` (prompt: question)
    output: str = ""  # run directory: checkpoints, metrics.jsonl, final model, train_config.yaml
    ref_model: str | None = None  # reference policy; default: the initial policy itself
    tokenizer: str | None = None  # default: the policy's directory
    scheme: str = "dpo"  # weight scheme of focalpo.weights (dpo, rpo, focused, target, target-rpo, ...)
    scheme_options: dict = field(default_factory=dict)  # extra keyword options of the scheme
    loss_type: str = "sigmoid"  # key of focalpo.train.losses.PREFERENCE_LOSSES
    beta: float = 0.1
    alpha: float = 1.0  # weight of the NLL term, used when the scheme asks for it (rpo, target-rpo)
    reference: str = "precompute"  # "precompute": Σ w log π_ref once, cached; "live": forward a frozen model
    ref_cache_dir: str | None = None  # default: $FOCALPO_CACHE/ref_logps or ~/.cache/focalpo/ref_logps
    precompute_batch_size: int | None = None  # default: per_device_batch_size
    max_length: int | None = None  # prompt+completion tokens; longer sequences are cut at the end
    max_prompt_length: int | None = None  # passed to the weight scheme
    dtype: str = "float32"  # dtype the models are loaded in (float32, bfloat16, float16)
    bf16: bool = False  # autocast to bfloat16 (mixed precision)
    gradient_checkpointing: bool = False
    chunked_logps: bool = True  # LM head applied a chunk of tokens at a time: no (batch, T, V) logits
    logps_chunk_tokens: int = 0  # tokens per chunk (0: as many as make 2^26 logits, 256 MiB in float32)
    prefix_sharing: bool = True  # one sequence per pair: prompt and common token prefix computed once
    padding_free: bool = True  # several pairs per row (block-diagonal mask), rows padded to the longest only
    max_row_tokens: int | None = None  # padding_free row budget (default: the longest pair of the batch)
    lora: bool = False  # train a LoRA adapter; the reference is then the adapter-disabled model
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_target_modules: list[str] | None = None  # default: all linear layers but the LM head
    learning_rate: float = 1e-6
    lr_scheduler_type: str = "cosine"
    warmup_ratio: float = 0.0  # share of the optimisation steps spent warming up
    weight_decay: float = 0.0
    num_train_epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides num_train_epochs
    per_device_batch_size: int = 1  # pairs per device per micro-batch
    gradient_accumulation_steps: int = 1
    global_batch_size: int | None = None  # pairs per optimiser step; sets gradient_accumulation_steps
    eval_data: str | None = None  # validation pairs (or weighted examples); else `eval_fraction` of `data`
    eval_split: str | None = None  # dataset split of `eval_data` (e.g. test, with eval_data = data's Hub id)
    eval_fraction: float = 0.0  # share of `data` held out for validation, chosen by a hash of each pair's tokens
    eval_steps: int | None = None  # evaluate every N optimiser steps (default: save_steps) and at the end
    best_metric: str | None = None  # e.g. eval_rewards/accuracies, eval_loss: the final model is the best checkpoint's
    logging_steps: int = 1
    save_steps: int = 500
    save_total_limit: int | None = None
    report_to: list[str] = field(default_factory=lambda: ["none"])  # e.g. [tensorboard], [wandb]
    seed: int = 0
    disable_dropout: bool = True  # as TRL: the policy and reference forwards must be deterministic
    progress: bool = True  # tqdm progress bar
    overwrite: bool = False  # allow a non-empty output directory (drops its checkpoints and metrics)
    resume: bool = False  # continue from the last checkpoint in `output`
    training_args: dict = field(default_factory=dict)  # extra transformers.TrainingArguments fields
