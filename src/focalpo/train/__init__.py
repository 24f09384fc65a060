"""Preference training: the token-weighted DPO loss and the `focalpo train` trainer.

    focalpo train --model PATH --data pairs.jsonl --scheme target-rpo --output runs/a [key=value ...]

- `losses`: pure functions (token log-probs, weighted sequence log-probs, the loss types of
  `PREFERENCE_LOSSES`, the chosen NLL), unreduced, shapes in the docstrings.
- `collate`: weighted examples -> the (2B, T) chosen-then-rejected batch with per-token weights.
- `reference`: sequence log-probs of a batch; reference log-probs precomputed once and cached.
- `trainer`: `WeightedPreferenceTrainer` (transformers.Trainer, overrides `compute_loss`) and
  `MetricsCallback` (metrics.jsonl).
- `config`: `TrainConfig` and the YAML + key=value loader; `run`: `train(cfg)`, the CLI's engine.

Importing this package imports nothing heavy; the modules import torch and transformers.
"""
