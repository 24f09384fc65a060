"""Sampling throughput of `--backend vllm` against `--backend hf` on the same model, prompts and settings.

    python bench/vllm_throughput.py --model Qwen/Qwen2.5-Coder-1.5B-Instruct [--prompts 64] [--n 8]
                                    [--max-new-tokens 256] [--hf-batch-size 16] [--dtype bfloat16]
    python bench/vllm_throughput.py            # no --model: the tiny Llama of the tests (a smoke run)

Needs a CUDA GPU and vLLM (pip install 'focalpo[vllm]'); exits with a message saying which is
missing otherwise. Each backend gets one untimed warm-up call, then one timed `generate` over all
prompts (n samples each, per-prompt seeds, temperature 1). Prints samples/s and generated tokens/s
(completions re-tokenized with the model's tokenizer, the same count for both) and the vllm/hf ratio.
vLLM runs first and keeps `--gpu-memory-utilization` of the GPU; hf loads its copy in what is left.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEMS = ["def add(a, b):\n", "def is_palindrome(s: str) -> bool:\n", "for i in range(10):\n",
         "class Stack:\n    def __init__(self):\n", "def fibonacci(n):\n    \"\"\"Return the n-th number.\"\"\"\n"]


def require_gpu_and_vllm() -> None:
    missing = []
    if importlib.util.find_spec("vllm") is None:
        missing.append("vLLM is not installed (pip install 'focalpo[vllm]')")
    import torch

    if not torch.cuda.is_available():
        missing.append("no CUDA GPU is visible (torch.cuda.is_available() is False)")
    if missing:
        sys.exit("bench/vllm_throughput.py needs a CUDA GPU and vLLM: " + "; ".join(missing))


def timed(backend, prompts: list[str], args: argparse.Namespace) -> tuple[float, list[list[str]]]:
    kw = dict(n=args.n, temperature=1.0, top_p=1.0, max_new_tokens=args.max_new_tokens)
    backend.generate(prompts[:2], seed=[0, 1], **kw)  # warm-up: kernels, CUDA graphs, allocator
    start = time.perf_counter()
    texts = backend.generate(prompts, seed=list(range(len(prompts))), **kw)
    return time.perf_counter() - start, texts


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", help="local directory or hub id (default: a tiny test Llama)")
    p.add_argument("--prompts", type=int, default=64)
    p.add_argument("--n", type=int, default=8, help="samples per prompt")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--hf-batch-size", type=int, default=16)
    p.add_argument("--gpu-memory-utilization", type=float, default=0.5)
    args = p.parse_args()
    require_gpu_and_vllm()

    from focalpo.generate import get_backend

    tmp = None
    if args.model is None:  # a smoke run on the tests' tiny model
        sys.path.insert(0, str(ROOT / "tests" / "generate"))
        from test_vllm_backend import save_gpu_llama

        tmp = tempfile.TemporaryDirectory()
        args.model = str(save_gpu_llama(Path(tmp.name)))
    prompts = [STEMS[i % len(STEMS)] + f"    # variant {i}\n" for i in range(args.prompts)]

    vllm = get_backend("vllm", model=args.model, dtype=args.dtype,
                       gpu_memory_utilization=args.gpu_memory_utilization)
    vllm_s, vllm_texts = timed(vllm, prompts, args)
    hf = get_backend("hf", model=args.model, dtype=args.dtype, device="cuda", batch_size=args.hf_batch_size)
    hf_s, hf_texts = timed(hf, prompts, args)

    samples = args.prompts * args.n
    print(f"model {args.model}: {args.prompts} prompts x n={args.n}, max_new_tokens={args.max_new_tokens}, "
          f"dtype {args.dtype}")
    rates = {}
    for name, seconds, texts in (("vllm", vllm_s, vllm_texts), ("hf", hf_s, hf_texts)):
        tokens = sum(len(hf.tokenizer(t, add_special_tokens=False)["input_ids"]) for ts in texts for t in ts)
        rates[name] = samples / seconds
        print(f"{name:>5}: {seconds:8.2f} s  {samples / seconds:9.1f} samples/s  {tokens / seconds:10.0f} tokens/s")
    print(f"vllm / hf: {rates['vllm'] / rates['hf']:.1f}x samples/s")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
