"""Run under `torchrun --nproc_per_node 2` on CPU (gloo): the tiny Llama sharded with FSDP2 (`fully_shard` on
every decoder layer and the root), then focalpo's log-probs and reference precompute through it. Writes
OUT_DIR/rank{r}.json for tests/train/test_fsdp.py.

    torchrun --nproc_per_node 2 tests/train/fsdp2_worker.py MODEL_DIR EXAMPLES_JSONL OUT_DIR
"""

import json
import sys

import torch
import torch.distributed as dist
from torch.distributed.fsdp import fully_shard

from focalpo.train.collate import PreferenceCollator
from focalpo.train.logps import batch_token_logps
from focalpo.train.reference import precompute_reference_logps

dist.init_process_group("gloo")
from accelerate import PartialState  # noqa: E402  (after the process group: it adopts it)
from transformers import AutoModelForCausalLM  # noqa: E402

PartialState(cpu=True)
model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32)
for layer in model.model.layers:
    fully_shard(layer)
fully_shard(model)
sharded = type(model.lm_head.weight).__name__  # before any forward: the root unshards it for the forwards
examples = [json.loads(line) for line in open(sys.argv[2])][:7]
collate = PreferenceCollator(pad_token_id=model.config.pad_token_id)

batch = collate(examples[:4])
grads = {}
for chunked in (True, False):
    logps, _ = batch_token_logps(model, batch, chunked=chunked, chunk_tokens=5)
    (logps * batch["loss_weights"][:, -logps.shape[1]:]).sum().backward()
    grads[chunked] = {n: p.grad.full_tensor() for n, p in model.named_parameters()}
    grads[chunked]["logps"] = logps.detach()
    model.zero_grad(set_to_none=True)
diff = max(((grads[True][n] - grads[False][n]).abs().max() / grads[False][n].abs().max().clamp(min=1e-6)).item()
           for n in grads[True])

# 7 examples, batches of 3: shares of 4 and 3 make 2 and 1 forwards; the short share must run a filler
values = precompute_reference_logps(model, examples, collate, batch_size=3)
with open(f"{sys.argv[3]}/rank{dist.get_rank()}.json", "w") as f:
    json.dump({"rank": dist.get_rank(), "sharded": sharded, "max_rel_diff": diff,
               "values": values}, f)
dist.destroy_process_group()
