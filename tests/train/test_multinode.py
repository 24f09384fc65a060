"""Two nodes on one machine: configs/slurm/train_2x8.sbatch, run as Slurm would run it, trains as one process.

The sbatch script runs for real with stand-ins for `srun` (one task per "node", all on this machine,
each with its SLURM_NODEID) and `scontrol` (the nodes are 127.0.0.1), so its quoting, node ranks and
rendezvous are exercised: two `accelerate launch` (one per node, 1 process each, gloo on CPU) meet
through torchrun's static rendezvous on a free port, with --num_machines 2. The accelerate config is
the CPU one (cpu_2proc.yaml, same torchrun launcher as multinode_2x8.yaml's `standard` DeepSpeed
launcher; `--cpu` would pick accelerate's simple launcher, which has no multi-node rendezvous without
mpirun); DeepSpeed and NCCL are not exercised here. The other test checks what accelerate makes of
multinode_2x8.yaml on each node.

2 nodes x 2 pairs = 1 process x 4 pairs, as tests/train/test_distributed.py: same losses, gradient
norms and rewards. Both "nodes" share the output directory, as nodes share a filesystem on a cluster;
only global rank 0 writes metrics (3 lines, not 6) and prints the summary.

Run: .venv/bin/python -m pytest tests/train/test_multinode.py -q      (~35 s on 2 cores)
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from focalpo.train.output import read_metrics

ROOT = Path(__file__).resolve().parents[2]
ACCELERATE = Path(sys.executable).parent / "accelerate"
SBATCH = ROOT / "configs/slurm/train_2x8.sbatch"
MULTINODE = ROOT / "configs/accelerate/multinode_2x8.yaml"
TIMEOUT_S = 180

# srun stand-in: the command once per node, concurrently, with that node's SLURM_NODEID and a cache
# directory of its own ($NODE_CACHE<i>: node-local caches, as on a cluster without a shared $HOME); like
# --kill-on-bad-exit, a failing node stops the others (else node 0 would wait on the rendezvous).
SRUN = """#!/bin/bash
[ "$1" = --kill-on-bad-exit=1 ] && shift
pids=()
for ((i = 0; i < SLURM_NNODES; i++)); do
    SLURM_NODEID=$i SLURM_PROCID=$i FOCALPO_CACHE="$NODE_CACHE$i" "$@" > "$NODE_LOGS/node$i.out" 2> "$NODE_LOGS/node$i.err" &
    pids+=($!)
done
status=0
for _ in "${pids[@]}"; do
    if ! wait -n; then status=1; kill -TERM "${pids[@]}" 2> /dev/null; fi
done
exit $status
"""
SCONTROL = """#!/bin/bash
[ "$1 $2" = "show hostnames" ] || exit 2
for ((i = 0; i < SLURM_NNODES; i++)); do echo 127.0.0.1; done
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (torchrun starts its workers in their own sessions: killing the
    launcher's process group alone would leave them waiting on the rendezvous)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def run_all_killed_on_failure(cmd: list[str], env: dict, timeout: float) -> subprocess.CompletedProcess:
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    finally:
        if proc.poll() is None or descendants(proc.pid):
            for pid in [proc.pid, *descendants(proc.pid)]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc.wait()


def test_sbatch_script_is_valid_bash():
    subprocess.run(["bash", "-n", str(SBATCH)], check=True)


def test_multinode_config_gives_each_node_its_rank_and_the_first_nodes_rendezvous():
    """What `accelerate launch` makes of multinode_2x8.yaml plus the per-node flags of the sbatch script:
    torchrun on each node with 8 processes, 2 nodes, its node rank and the first node's address."""
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_deepspeed_cmd_env

    cfg = load_config_from_file(str(MULTINODE))
    assert (cfg.num_machines, cfg.num_processes, cfg.distributed_type.value) == (2, 16, "DEEPSPEED")
    assert cfg.deepspeed_config["zero_stage"] == 3 and cfg.deepspeed_config["deepspeed_multinode_launcher"] == "standard"
    assert cfg.main_process_ip is None  # no default that would send node 1 to itself
    for rank in (0, 1):
        argv = ["--config_file", str(MULTINODE), "--machine_rank", str(rank), "--main_process_ip", "10.0.0.1",
                "--main_process_port", "29555", "-m", "focalpo.cli", "train"]
        args, defaults, _ = _validate_launch_command(launch_command_parser().parse_args(argv))
        assert args.use_deepspeed
        args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)  # as launch_command
        cmd, env = prepare_deepspeed_cmd_env(args)
        assert cmd is None  # `standard`: torchrun on this node, not a pdsh/ssh fan-out from node 0
        assert (args.nproc_per_node, args.nnodes, args.node_rank) == ("8", "2", rank)
        # accelerate 1.16 ignores the file's same_network (a CLI flag's False wins) and passes --rdzv_endpoint
        endpoint = getattr(args, "rdzv_endpoint", None) or f"{args.master_addr}:{args.master_port}"
        assert endpoint == "10.0.0.1:29555" and args.rdzv_backend == "static"
        assert (env["ACCELERATE_DEEPSPEED_ZERO_STAGE"], env["ACCELERATE_MIXED_PRECISION"]) == ("3", "bf16")


def test_two_nodes_equal_one_process_on_the_same_global_batch(model_dir, ref_model_dir, examples_file, tmp_path):
    if not torch.distributed.is_gloo_available():
        pytest.skip("torch.distributed has no gloo backend")
    bin_dir, logs = tmp_path / "bin", tmp_path / "logs"
    bin_dir.mkdir()
    logs.mkdir()
    for name, text in (("srun", SRUN), ("scontrol", SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    # the recipe, but: no global batch (so a node training alone would take 2 pairs a step and differ),
    # fp32 (1e-5 agreement), no tensorboard
    common = ["--ref-model", str(ref_model_dir), "--max-steps", "3", "--learning-rate", "1e-3", "--no-progress",
              "global_batch_size=null", "bf16=false", "dtype=float32", "report_to=[]"]  # float32: exactness
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    slurm = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}", "NODE_LOGS": str(logs),
        "SLURM_JOB_ID": "4242", "SLURM_JOB_NODELIST": "node[0-1]", "SLURM_NNODES": "2",
        "MODEL": str(model_dir), "DATA": str(examples_file), "OUTPUT": str(tmp_path / "two"),
        "ACCELERATE": str(ACCELERATE), "ACCELERATE_CONFIG": str(ROOT / "configs/accelerate/cpu_2proc.yaml"),
        "GPUS_PER_NODE": "1", "MAIN_PORT": str(free_port()),
    }
    start = time.monotonic()
    # one process first: it fills node 0's reference cache, so that node 0 finds the reference log-probs
    # cached and node 1 (an empty cache of its own) does not; both must follow the main process
    one = run_all_killed_on_failure(
        [sys.executable, "-m", "focalpo.cli", "train", "--config", "configs/target_dpo.yaml", "--model", str(model_dir),
         "--data", str(examples_file), "--output", str(tmp_path / "one"), *common, "--per-device-batch-size", "4"],
        {**env, "FOCALPO_CACHE": str(tmp_path / "cache0")}, TIMEOUT_S,
    )
    assert one.returncode == 0, one.stderr[-3000:]
    (cached,) = (tmp_path / "cache0" / "ref_logps").glob("*.pt")
    two = run_all_killed_on_failure(
        ["bash", str(SBATCH), *common, "--per-device-batch-size", "2", "save_steps=2"],
        {**env, **slurm, "NODE_CACHE": str(tmp_path / "cache")}, max(TIMEOUT_S - (time.monotonic() - start), 60),
    )
    node_out, node_err = ([(logs / f"node{i}.{kind}").read_text() if (logs / f"node{i}.{kind}").is_file() else ""
                           for i in (0, 1)] for kind in ("out", "err"))
    assert two.returncode == 0, two.stdout[-2000:] + two.stderr[-2000:] + node_err[0][-3000:] + node_err[1][-3000:]
    assert "rendezvous: 127.0.0.1:" in two.stdout
    # global rank 0 only (a node that trained alone would be its own rank 0 and print it too)
    assert "trained 3 steps" in node_out[0] and "trained 3 steps" not in node_out[1]
    ckpt = tmp_path / "two" / "checkpoint-2"  # one checkpoint in the shared directory, each rank's RNG state in it
    assert sorted(p.name for p in ckpt.glob("rng_state*")) == ["rng_state_0.pth", "rng_state_1.pth"]
    assert not list((tmp_path / "cache1").rglob("*.pt"))  # node 1 took node 0's cached values, computed nothing

    a, b = read_metrics(tmp_path / "two" / "metrics.jsonl"), read_metrics(tmp_path / "one" / "metrics.jsonl")
    assert [r["step"] for r in a] == [r["step"] for r in b] == [1, 2, 3]  # node 1 wrote no second copy
    for x, y in zip(a, b):
        for key in ("loss", "grad_norm", "rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen"):
            assert x[key] == pytest.approx(y[key], abs=1e-5, rel=1e-5), (x["step"], key)
    assert a[0]["loss"] != pytest.approx(0.6931, abs=1e-3)  # the reference is not the policy
