"""`WeightedPreferenceTrainer`: transformers.Trainer with the token-weighted preference loss.

    trainer = WeightedPreferenceTrainer(model=policy, args=training_args, data_collator=PreferenceCollator(...),
                                        train_dataset=examples, loss=LossSettings(beta=0.1), ref_model=None,
                                        callbacks=[MetricsCallback("run/metrics.jsonl")])
    trainer.train()

Only `compute_loss` and `prediction_step` (the loss), `log` and `evaluate` (the pair metrics) and
`_prepare_for_training` (the reference sums, once the model is wrapped) are overridden, so
DeepSpeed/FSDP, gradient checkpointing, mixed precision, checkpoints, resumption and `report_to`
are the ecosystem's. The reference log-probs come from, in this order: the batch
(`ref_chosen_logps`, precomputed — `reference_sums` are computed with the wrapped policy once the
trainer has wrapped it, before the first batch), a frozen `ref_model`, or the policy with its LoRA
adapter disabled. Token log-probs come from the chunked LM head of `focalpo.train.logps` (no
(2B, T, V) logits) unless `LossSettings.chunked_logps` is off; a batch may be padded (`PreferenceCollator`)
or prefix-shared and packed (`focalpo.train.packing`). Loss = mean_b L_b (+ α · chosen NLL token mean when
`nll`), as TRL 1.16's DPOTrainer with `loss_type=["sigmoid", "sft"]`, `loss_weights=[1, α]`.

Validation (`eval_dataset`): `prediction_step` computes the same loss without gradients; the
evaluation's log row has `eval_loss` and the same pair metrics prefixed `eval_`, and for localised
validation pairs `eval_localized/margins` and `eval_localized/accuracies`: β·((Σ_loc log π − log π_ref)
on the chosen − the same on the rejected) over the localised tokens only.

Logged per step (averaged over the accumulated micro-batches, gathered over processes):
`rewards/chosen`, `rewards/rejected`, `rewards/accuracies`, `rewards/margins`, `logps/chosen`,
`logps/rejected` (weighted sums), `nll` (chosen token mean, logged even when not trained on), and
`tokens/weighted_fraction` (share of completion tokens with w ≠ 0) and `tokens/mean_weight` (Σ w over
the completion tokens of both sides / their number: 1 for DPO, above 1 where Focused-DPO up-weights).
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from transformers import Trainer, TrainerCallback

from focalpo.io import AppendLog, atomic_path, cut_torn_tail, iter_json_lines
from focalpo.train.logps import PairLogps, pair_logps
from focalpo.train.losses import preference_loss
from focalpo.train.reference import ReferenceSums, fill_reference, is_peft_model, reference_pair_logps


@dataclass(frozen=True)
class LossSettings:
    """What `compute_loss` computes: the loss type of PREFERENCE_LOSSES, β, and the α·NLL term."""

    beta: float = 0.1
    loss_type: str = "sigmoid"
    nll: bool = False
    alpha: float = 1.0
    chunked_logps: bool = True  # score tokens through the chunked LM head (focalpo.train.logps)
    logps_chunk_tokens: int = 0  # tokens per chunk; 0: as many as make 2^26 logits

    @property
    def logps_options(self) -> dict:
        return {"chunked": self.chunked_logps, "chunk_tokens": self.logps_chunk_tokens}


class WeightedPreferenceTrainer(Trainer):
    """Trainer whose loss is the weighted preference loss of focalpo.train.losses."""

    loss_is_scaled_for_ga = False  # compute_loss returns a micro-batch mean; Trainer divides by GA steps

    def __init__(self, *args, loss: LossSettings = LossSettings(), ref_model=None,
                 reference_sums: Sequence[ReferenceSums] = (), reference_options: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_settings = loss
        self.reference_sums = list(reference_sums)
        self.reference_options = reference_options or {}
        self.ref_model = None
        if ref_model is not None:
            if self.is_deepspeed_enabled or self.is_fsdp_enabled:
                raise ValueError(
                    "a separate live reference model is not supported under DeepSpeed/FSDP; use "
                    "reference=precompute (default) or lora=true (reference = adapter disabled)"
                )
            ref_model.eval().requires_grad_(False)
            self.ref_model = self.accelerator.prepare_model(ref_model, evaluation_mode=True)
        self._pair_metrics: dict[str, list[float]] = defaultdict(list)
        self._eval_metrics: dict[str, list[float]] = defaultdict(list)

    def _prepare_for_training(self, max_steps, train_dataloader, resume_from_checkpoint):
        """transformers' wrapping (DDP, FSDP, DeepSpeed; the checkpoint loaded when resuming), then the
        reference sums, computed with the wrapped policy (its adapter disabled under LoRA): a model that
        ZeRO-3 partitioned at load, or FSDP loaded on the meta device, can only run once wrapped. They fill
        the datasets in place before the first batch is drawn. A resumed full fine-tune holds trained
        weights by now, so its sums must come from the cache the first run wrote."""
        prepared = super()._prepare_for_training(max_steps, train_dataloader, resume_from_checkpoint)
        if self.reference_sums:
            from accelerate.utils import extract_model_from_parallel

            lora = is_peft_model(extract_model_from_parallel(self.model))
            refuse = None
            if resume_from_checkpoint is not None and not lora:
                refuse = (f"resume from {resume_from_checkpoint}: the reference log-probs are not in the cache "
                          f"({', '.join(str(j.cache_file) for j in self.reference_sums)}) and the policy already holds "
                          "the checkpoint's weights; restore the cache (ref_cache_dir) or start the run again")
            fill_reference(self.model_wrapped, self.reference_sums, self.data_collator, use_base=lora, refuse=refuse,
                           **self.reference_options)
            self.reference_sums = []
        return prepared

    def _reference(self, inputs) -> tuple[torch.Tensor, torch.Tensor]:
        if "ref_chosen_logps" in inputs:
            return inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
        if self.ref_model is not None:
            return reference_pair_logps(self.ref_model, inputs, **self.loss_settings.logps_options)
        if is_peft_model(self.model):
            return reference_pair_logps(self.model, inputs, use_base=True, **self.loss_settings.logps_options)
        raise ValueError("no reference: the batch has no precomputed log-probs, there is no ref_model and no LoRA adapter")

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        return self._loss(model, inputs, return_outputs, self._pair_metrics)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """Validation: the same loss without gradients; its pair metrics (and, for localised pairs, the
        margin over the localised tokens) go to the `eval_` metrics of the evaluation."""
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self._loss(model, inputs, False, self._eval_metrics)
        return loss.detach(), None, None

    def _loss(self, model, inputs, return_outputs, metrics):
        s = self.loss_settings
        out = pair_logps(model, inputs, **s.logps_options)  # padded or packed batch
        ref_chosen, ref_rejected = self._reference(inputs)
        losses, r_c, r_r = preference_loss(
            out.chosen, out.rejected, ref_chosen.to(out.chosen.dtype), ref_rejected.to(out.chosen.dtype), s.beta,
            s.loss_type, *out.mass,
        )
        loss = losses.mean() + (s.alpha * out.nll if s.nll else 0.0)
        self._record(metrics, r_c, r_r, out)
        if out.focus is not None:  # localised validation pairs: the implicit reward margin at the error
            f_c, f_r = out.focus
            margin = s.beta * ((f_c - inputs["ref_chosen_focus_logps"].to(f_c.dtype))
                               - (f_r - inputs["ref_rejected_focus_logps"].to(f_r.dtype)))
            margin = self.accelerator.gather(margin)
            metrics["localized/margins"].append(margin.mean().item())
            metrics["localized/accuracies"].append((margin > 0).float().mean().item())
        return (loss, {"losses": losses}) if return_outputs else loss

    def _record(self, m, r_c, r_r, out: PairLogps) -> None:
        gather = self.accelerator.gather
        r_c, r_r = gather(r_c), gather(r_r)
        weight_sum = out.mass[0].detach().sum() + out.mass[1].detach().sum()
        counts = gather(torch.stack([out.weighted_tokens.double(), out.completion_tokens.double(),
                                     weight_sum.double()]).unsqueeze(0)).sum(0)
        m["rewards/chosen"].append(r_c.mean().item())
        m["rewards/rejected"].append(r_r.mean().item())
        m["rewards/accuracies"].append((r_c > r_r).float().mean().item())
        m["rewards/margins"].append((r_c - r_r).mean().item())
        m["logps/chosen"].append(gather(out.chosen.detach()).mean().item())
        m["logps/rejected"].append(gather(out.rejected.detach()).mean().item())
        m["nll"].append(gather(out.nll.detach().reshape(1)).mean().item())
        m["tokens/weighted_fraction"].append((counts[0] / counts[1].clamp(min=1)).item())
        m["tokens/mean_weight"].append((counts[2] / counts[1].clamp(min=1)).item())

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._pair_metrics:  # a training step: add the pair metrics since the last log
            logs.update({k: sum(v) / len(v) for k, v in self._pair_metrics.items()})
            self._pair_metrics.clear()
        if "eval_loss" in logs and self._eval_metrics:  # an evaluation: its pair metrics, over every eval batch
            logs.update({f"eval_{k}": sum(v) / len(v) for k, v in self._eval_metrics.items()})
            self._eval_metrics.clear()
        super().log(logs, start_time)

    def evaluate(self, *args, **kwargs):
        """transformers' evaluation (its metrics, ours included, are what `metric_for_best_model` reads), started
        with no metrics left from an interrupted one."""
        self._eval_metrics.clear()
        return super().evaluate(*args, **kwargs)


class MetricsCallback(TrainerCallback):
    """Appends one JSON object per logged training step to `path` (main process only), one fsynced
    O_APPEND write per line (`focalpo.io.AppendLog`), so a kill can only tear the last line.

    On resume the torn last line (if any) is cut off with a warning, and the records past the
    checkpoint's step are dropped by an atomic rewrite, so that the file of an interrupted-then-resumed
    run equals that of an uninterrupted one; a bad line is an error naming file:line.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero and self.path.is_file():
            cut_torn_tail(self.path)
            keep = [row for _, row in iter_json_lines(self.path) if row.get("step", 0) <= state.global_step]
            with atomic_path(self.path) as tmp:
                tmp.write_text("".join(json.dumps(row) + "\n" for row in keep))

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs and ("loss" in logs or "eval_loss" in logs):
            with AppendLog(self.path, fsync=True) as log:
                log.write_line(json.dumps({"step": state.global_step, "epoch": state.epoch, **logs}) + "\n")


class ConfigSnapshotCallback(TrainerCallback):
    """Copies the resolved run config (a file) into every checkpoint directory, beside the weights."""

    def __init__(self, config_file: str | Path):
        self.config_file = Path(config_file)

    def on_save(self, args, state, control, **kwargs):
        ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if state.is_world_process_zero and ckpt.is_dir():
            shutil.copy(self.config_file, ckpt / self.config_file.name)
