"""Run under `accelerate launch` with a ZeRO-3 config: builds focalpo's training arguments, then loads
the model as `focalpo train` does, and writes OUT_DIR/rank{r}.json: whether ZeRO-3 partitioned the
weights while they loaded. Used by tests/train/test_deepspeed.py.

    accelerate launch --config_file Z3.yaml tests/train/zero3_probe.py MODEL_DIR OUT_DIR
"""

import json
import sys
from pathlib import Path

from focalpo.train.config import TrainConfig
from focalpo.train.run import end_processes, load_model, process_state, training_arguments

cfg = TrainConfig(model=sys.argv[1], data="unused", output=sys.argv[2], progress=False)
state = process_state(cfg)
args = training_arguments(cfg)  # as in focalpo.train.run.train: before the model
model = load_model(cfg.model, cfg.dtype)
params = list(model.parameters())
Path(sys.argv[2]).mkdir(parents=True, exist_ok=True)
(Path(sys.argv[2]) / f"rank{state.process_index}.json").write_text(json.dumps({
    "rank": state.process_index, "processes": state.num_processes,
    "partitioned": all(hasattr(p, "ds_id") for p in params),
    "local_numel": sum(p.numel() for p in params),
    "full_numel": sum(getattr(p, "ds_numel", p.numel()) for p in params),
}))
end_processes()  # as `focalpo train`: no process exits with its group alive
