"""Train a policy with the token-weighted preference loss: the engine behind `focalpo train`.

    focalpo train --model PATH --data pairs.jsonl --scheme target-rpo --beta 0.1 --output runs/a
    accelerate launch --config_file configs/accelerate/zero3.yaml -m focalpo.cli train --config configs/target_dpo.yaml ...

or from Python: `train(load_config(TrainConfig, "configs/target_dpo.yaml", ["model=...", ...]))`.

Steps: read pairs (`focalpo.pairs.read_pairs`) and turn them into weighted token examples with the
scheme (`focalpo.weights.build_weighted_examples`) — or read a JSONL of such examples directly —;
build the training arguments, then load the policy in `dtype` (in this order, so that DeepSpeed ZeRO-3
partitions the weights as they load) and optionally wrap it in a LoRA adapter; get the reference
log-probs (precomputed once and cached — with the wrapped policy, inside the trainer, or with an explicit
`ref_model` before it —, or a live frozen model, or the adapter-disabled policy); train with
`WeightedPreferenceTrainer`; save the final model (LoRA: the adapter) and tokenizer in `output`.
`output/train_config.yaml` is the resolved config (also copied into every checkpoint),
`output/metrics.jsonl` has one record per logged step. The run directory's rules (resume, crash
safety) are `focalpo.train.output`; reading the examples and the validation split, `focalpo.train.data`.
"""

from __future__ import annotations

import copy
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from focalpo.config import ConfigError
from focalpo.io import check_model_path
from focalpo.train.config import TrainConfig
from focalpo.train.data import eval_examples, load_examples, wants_nll
from focalpo.train.output import CONFIG_NAME, METRICS_NAME, finished_checkpoint, prepare_output, start_output

DTYPES = ("float32", "bfloat16", "float16")


@dataclass(frozen=True)
class TrainResult:
    output: Path
    metrics: Path
    global_step: int
    train_loss: float
    is_main_process: bool = True
    best_checkpoint: str | None = None  # with best_metric: the checkpoint whose model is the final one


# --------------------------------------------------------------------------------------------------
# Models


def load_model(path: str, dtype: str):
    import torch
    from transformers import AutoModelForCausalLM

    if dtype not in DTYPES:
        raise ConfigError(f"field 'dtype': expected one of {', '.join(DTYPES)}, got {dtype!r}")
    try:
        return AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
    except OSError as e:  # a hub id that does not resolve, a directory without weights: an input error
        raise ValueError(f"model {path}: cannot load it: {e}") from None


def _disable_dropout(model) -> None:
    import torch

    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0


def _wrap_lora(model, cfg: TrainConfig):
    from peft import LoraConfig, get_peft_model

    target = cfg.lora_target_modules or "all-linear"
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=target, task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def make_collator(cfg: TrainConfig, pad_token_id: int):
    """The batches of this run: packed (prefix-shared and/or padding-free, `focalpo.train.packing`) or padded."""
    if cfg.prefix_sharing or cfg.padding_free:
        from focalpo.train.packing import PackedPairCollator

        return PackedPairCollator(pad_token_id=pad_token_id, max_length=cfg.max_length, share_prefix=cfg.prefix_sharing,
                                  pack=cfg.padding_free, max_row_tokens=cfg.max_row_tokens)
    from focalpo.train.collate import PreferenceCollator

    return PreferenceCollator(pad_token_id=pad_token_id, max_length=cfg.max_length)


def reference_jobs(cfg: TrainConfig, examples: list[dict], held: list[dict]) -> list:
    """The reference sums a `reference=precompute` run needs, each with its cache file: the training
    set, the validation set and, for localised validation pairs (`attach_focus`), the validation set
    summed over the localised tokens. The cache key hashes the reference's weight files, so it is
    known before (and however) the model is loaded."""
    from focalpo.train.collate import FOCUS_KEYS, REF_FOCUS_KEYS
    from focalpo.train.reference import ReferenceSums, default_cache_dir, reference_cache_key, weights_fingerprint

    fingerprint = weights_fingerprint(cfg.ref_model or cfg.model)
    settings = {"max_length": cfg.max_length, "bf16": cfg.bf16, "dtype": cfg.dtype}
    folder = Path(cfg.ref_cache_dir or default_cache_dir())

    def job(exs: list[dict], **kw) -> ReferenceSums:
        j = ReferenceSums(exs, None, **kw)
        j.cache_file = folder / f"{reference_cache_key(fingerprint, j.scored(), settings)}.pt"
        return j

    jobs = [job(examples)]
    if held:
        jobs.append(job(held))
        if all(FOCUS_KEYS[0] in ex for ex in held):
            jobs.append(job(held, keys=REF_FOCUS_KEYS, weight_keys=FOCUS_KEYS))
    return jobs


def reference_options(cfg: TrainConfig) -> dict:
    """How reference sums are computed (`focalpo.train.reference.fill_reference`'s options)."""
    import torch

    return dict(batch_size=cfg.precompute_batch_size or cfg.per_device_batch_size,
                autocast_dtype=torch.bfloat16 if cfg.bf16 else None, progress=cfg.progress,
                logps_options={"chunked": cfg.chunked_logps, "chunk_tokens": cfg.logps_chunk_tokens})


def _separate_reference(cfg: TrainConfig, jobs: list, collator) -> None:
    """Fill the jobs with an explicit `ref_model`, loaded whole for the purpose, then freed."""
    from transformers.integrations import is_deepspeed_zero3_enabled

    from focalpo.train.reference import fill_reference

    if is_deepspeed_zero3_enabled():
        raise ConfigError("field 'ref_model': under DeepSpeed ZeRO-3 the reference is the initial policy (or, with "
                          "lora=true, the base model); precompute a separate reference in a run without ZeRO-3 "
                          "(same data, ref_cache_dir), whose cache this run then reads")
    ref = load_model(cfg.ref_model, cfg.dtype)
    if any(p.is_meta for p in ref.parameters()):
        raise ConfigError("field 'ref_model': this process loaded it on the meta device (FSDP "
                          "cpu_ram_efficient_loading); set fsdp_cpu_ram_efficient_loading: false to precompute it")
    if cfg.disable_dropout:
        _disable_dropout(ref)
    fill_reference(ref, jobs, collator, **reference_options(cfg))
    ref.to("cpu")


def _gradient_accumulation(cfg: TrainConfig) -> int:
    if cfg.global_batch_size is None:
        return cfg.gradient_accumulation_steps
    from accelerate import PartialState

    per_step = cfg.per_device_batch_size * PartialState().num_processes
    if cfg.global_batch_size % per_step:
        raise ConfigError(
            f"field 'global_batch_size': {cfg.global_batch_size} is not a multiple of per_device_batch_size x "
            f"processes = {per_step}"
        )
    return cfg.global_batch_size // per_step


def training_arguments(cfg: TrainConfig):
    from transformers import TrainingArguments

    if not 0 <= cfg.warmup_ratio < 1:
        raise ConfigError(f"field 'warmup_ratio': expected 0 <= value < 1, got {cfg.warmup_ratio}")
    kwargs = dict(
        output_dir=cfg.output, per_device_train_batch_size=cfg.per_device_batch_size,
        gradient_accumulation_steps=_gradient_accumulation(cfg), learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler_type, warmup_steps=cfg.warmup_ratio, weight_decay=cfg.weight_decay,
        num_train_epochs=cfg.num_train_epochs, max_steps=cfg.max_steps, logging_steps=cfg.logging_steps,
        save_steps=cfg.save_steps, save_total_limit=cfg.save_total_limit, bf16=cfg.bf16,
        seed=cfg.seed, report_to=cfg.report_to,
        remove_unused_columns=False, disable_tqdm=not cfg.progress, use_cpu=wants_cpu(cfg),
        dataloader_pin_memory=_has_accelerator(),
    )
    if deepspeed_on_cpu():
        kwargs["ddp_backend"] = "gloo"
    # `focalpo sft` builds its arguments here too, from an SFTConfig without validation fields
    validation = getattr(cfg, "eval_data", None) or getattr(cfg, "eval_fraction", 0.0)
    if validation:
        kwargs.update(eval_strategy="steps", eval_steps=cfg.eval_steps or cfg.save_steps,
                      per_device_eval_batch_size=cfg.per_device_batch_size)
    if getattr(cfg, "best_metric", None):
        if not validation:
            raise ConfigError("field 'best_metric': needs validation data (eval_data or eval_fraction)")
        metric = cfg.best_metric if cfg.best_metric.startswith("eval_") else f"eval_{cfg.best_metric}"
        if cfg.save_steps % (cfg.eval_steps or cfg.save_steps):
            raise ConfigError(f"field 'best_metric': save_steps ({cfg.save_steps}) must be a multiple of eval_steps "
                              f"({cfg.eval_steps}) so that every checkpoint has its evaluation")
        kwargs.update(metric_for_best_model=metric, greater_is_better=not metric.endswith("loss"),
                      load_best_model_at_end=True)
    if cfg.gradient_checkpointing:  # transformers 5 renamed it; the old name warns
        fields = TrainingArguments.__dataclass_fields__
        kwargs["activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"] = True
    try:
        return TrainingArguments(**{**kwargs, **cfg.training_args})
    except TypeError as e:
        raise ConfigError(f"field 'training_args': {e}") from None


def _check_sharding(trainer) -> None:
    """Refuse a launch that asked for FSDP or DeepSpeed which accelerate did not set up: without GPUs
    accelerate 1.16 makes an FSDP config a plain DDP run (and ignores DeepSpeed unless told the backend),
    which would train with a full copy of everything per process while the user believes it sharded."""
    from accelerate.utils import parse_flag_from_env

    for flag, name, enabled in (("ACCELERATE_USE_FSDP", "FSDP", trainer.is_fsdp_enabled),
                                ("ACCELERATE_USE_DEEPSPEED", "DeepSpeed", trainer.is_deepspeed_enabled)):
        if parse_flag_from_env(flag) and not enabled:
            raise ConfigError(
                f"the accelerate config asks for {name} but accelerate set up "
                f"{trainer.accelerator.distributed_type.value} (accelerate runs FSDP on GPUs only; DeepSpeed without "
                "GPUs needs DS_ACCELERATOR=cpu); refusing to train unsharded"
            )


def wants_cpu(cfg: TrainConfig) -> bool:
    """Train on CPU: asked for (`training_args.use_cpu`, ACCELERATE_USE_CPU) or no accelerator is visible.

    Saying so explicitly matters twice: several processes (torchrun / accelerate launch) then use gloo
    instead of staying independent, and bf16 autocast is allowed on CPU.
    """
    from accelerate.utils import parse_flag_from_env

    if parse_flag_from_env("ACCELERATE_USE_DEEPSPEED"):  # DeepSpeed brings its own device (DS_ACCELERATOR=cpu on CPU)
        return False
    return bool(cfg.training_args.get("use_cpu")) or parse_flag_from_env("ACCELERATE_USE_CPU") or not _has_accelerator()


def deepspeed_on_cpu() -> bool:
    """An `accelerate launch` with a DeepSpeed config on a machine without GPUs (DeepSpeed's CPU accelerator,
    `DS_ACCELERATOR=cpu`): accelerate must then be told the gloo backend, or it counts one process."""
    from accelerate.utils import parse_flag_from_env

    return parse_flag_from_env("ACCELERATE_USE_DEEPSPEED") and not _has_accelerator()


def process_state(cfg):
    """This run's accelerate state, made before anything else uses one (the first use fixes the process group)."""
    from accelerate import PartialState

    return PartialState(cpu=wants_cpu(cfg), **({"backend": "gloo"} if deepspeed_on_cpu() else {}))


def end_processes() -> None:
    """The end of a launched command: every rank waits for the others, then the process group is taken
    down. A process that exits with its group alive can abort in the group's destructor (gloo: "terminate
    called without an active exception", SIGABRT) after all its work is saved, failing the launch.
    A no-op without a process group. (`Trainer.end()` does the same, for a script's last line.)"""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _has_accelerator() -> bool:
    import torch

    xpu = hasattr(torch, "xpu") and torch.xpu.is_available()
    return torch.cuda.is_available() or xpu or torch.backends.mps.is_available()


# --------------------------------------------------------------------------------------------------
# Entry point


def train(cfg: TrainConfig, callbacks: Sequence = ()) -> TrainResult:
    """Run one training as configured; `callbacks` are extra TrainerCallbacks (tests use them to stop early)."""
    for name in ("model", "data", "output"):
        if not getattr(cfg, name):
            raise ConfigError(f"field {name!r} is required (flag --{name} or {name}: in the recipe)")
    if cfg.reference not in ("precompute", "live"):
        raise ConfigError(f"field 'reference': expected 'precompute' or 'live', got {cfg.reference!r}")
    from focalpo.train.losses import PREFERENCE_LOSSES

    if cfg.loss_type not in PREFERENCE_LOSSES:
        raise ConfigError(f"field 'loss_type': unknown {cfg.loss_type!r}; known: {', '.join(sorted(PREFERENCE_LOSSES))}")
    from transformers import AutoTokenizer, set_seed

    from focalpo.train.trainer import (
        ConfigSnapshotCallback, LossSettings, MetricsCallback, WeightedPreferenceTrainer,
    )

    state = process_state(cfg)
    resume_from = prepare_output(cfg, clear=False)  # every rank checks before anyone writes
    done = finished_checkpoint(resume_from, cfg.max_steps)
    if done is not None:  # killed after the last checkpoint, before the final save: only that save is left
        return finish_from_checkpoint(cfg, state, done)
    for name in ("model", "ref_model", "tokenizer"):
        if getattr(cfg, name):
            check_model_path(getattr(cfg, name), f"--{name.replace('_', '-')}")

    try:
        tokenizer = AutoTokenizer.from_pretrained(cfg.tokenizer or cfg.model)
    except OSError as e:
        raise ValueError(f"tokenizer {cfg.tokenizer or cfg.model}: cannot load it: {e}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    examples = load_examples(cfg, tokenizer)  # bad data fails here, before anything is written
    examples, held = eval_examples(cfg, tokenizer, examples)
    nll = wants_nll(examples, cfg.data)
    out = start_output(cfg, state, CONFIG_NAME)
    collator = make_collator(cfg, tokenizer.pad_token_id)

    # the training arguments before the model: they carry the DeepSpeed config, and ZeRO-3 partitions the
    # weights while they load (zero.Init) only when it is set up first
    args = training_arguments(cfg)
    set_seed(cfg.seed)  # before any adapter initialisation
    policy = load_model(cfg.model, cfg.dtype)
    policy.config.pad_token_id = tokenizer.pad_token_id
    if cfg.prefix_sharing or cfg.padding_free:
        import torch

        from focalpo.train.logps import attention_mask_for

        try:  # a packed batch needs an attention that takes a custom 4D mask
            attention_mask_for(policy, torch.ones(1, 1, 1, 1, dtype=torch.bool))
        except ValueError as e:
            raise ConfigError(str(e)) from None
    if cfg.disable_dropout:
        _disable_dropout(policy)
    ref_model, jobs = None, []
    if cfg.reference == "precompute":
        jobs = reference_jobs(cfg, examples, held)
        if cfg.ref_model:
            _separate_reference(cfg, jobs, collator)
            jobs = []
    elif cfg.ref_model:
        ref_model = load_model(cfg.ref_model, cfg.dtype)
    elif not cfg.lora:
        ref_model = copy.deepcopy(policy)  # the initial policy, frozen
    if ref_model is not None and cfg.disable_dropout:
        _disable_dropout(ref_model)
    if cfg.lora:
        policy = _wrap_lora(policy, cfg)
        if cfg.gradient_checkpointing:  # checkpointed blocks need an input that requires grad (frozen embeddings)
            policy.enable_input_require_grads()

    trainer = WeightedPreferenceTrainer(
        model=policy, args=args, data_collator=collator, train_dataset=examples,
        eval_dataset=held or None, processing_class=tokenizer, ref_model=ref_model,
        loss=LossSettings(beta=cfg.beta, loss_type=cfg.loss_type, nll=nll, alpha=cfg.alpha,
                          chunked_logps=cfg.chunked_logps, logps_chunk_tokens=cfg.logps_chunk_tokens),
        reference_sums=jobs, reference_options=reference_options(cfg),
        callbacks=[MetricsCallback(out / METRICS_NAME), ConfigSnapshotCallback(out / CONFIG_NAME), *callbacks],
    )
    _check_sharding(trainer)
    result = trainer.train(resume_from_checkpoint=resume_from)
    trainer.save_model(str(out))  # with best_metric: the best checkpoint's model, loaded at the end
    trainer.save_state()
    return TrainResult(out, out / METRICS_NAME, trainer.state.global_step, float(result.training_loss),
                       trainer.is_world_process_zero(), trainer.state.best_model_checkpoint)


def finish_from_checkpoint(cfg: TrainConfig, state, done: dict) -> TrainResult:
    """The final save of a run whose last checkpoint holds its last step: the checkpoint's model files
    (not its optimizer, scheduler or RNG states) and the tokenizer, written into `output`."""
    from transformers import AutoTokenizer

    out, ckpt = Path(cfg.output), Path(done["checkpoint"])
    if state.is_main_process:
        skip = {"optimizer.pt", "scheduler.pt", "scaler.pt", "trainer_state.json", CONFIG_NAME}
        for f in ckpt.iterdir():
            if f.is_file() and f.name not in skip and not f.name.startswith("rng_state"):
                shutil.copy2(f, out / f.name)
        AutoTokenizer.from_pretrained(cfg.tokenizer or cfg.model).save_pretrained(out)
        shutil.copy2(ckpt / "trainer_state.json", out / "trainer_state.json")
    state.wait_for_everyone()
    losses = [row["loss"] for row in done.get("log_history", []) if "loss" in row]
    return TrainResult(out, out / METRICS_NAME, int(done["global_step"]),
                       sum(losses) / len(losses) if losses else float("nan"), state.is_main_process)


