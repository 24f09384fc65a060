"""Generation backends: sample `n` completions per prompt from a local model or a server.

    from focalpo.generate import get_backend
    hf = get_backend("hf", model="Qwen/Qwen2.5-Coder-7B-Instruct", dtype="bfloat16", batch_size=16)
    api = get_backend("openai", model="Qwen/Qwen2.5-Coder-7B-Instruct", base_url="http://localhost:8000/v1")
    texts = api.generate(prompts, n=10, temperature=1.5, max_new_tokens=1024, seed=0)  # list[list[str]]

Backends (one file each, imported only when asked for): `hf` (transformers, CPU/GPU, batched),
`openai` (any OpenAI-compatible server: vLLM, SGLang, hosted APIs), `vllm` (an in-process vLLM
engine on GPUs: pip install 'focalpo[vllm]'), `scripted` (a test double).
Tests: .venv/bin/python -m pytest tests/generate -q
"""

from focalpo.generate.base import (
    BACKENDS,
    Backend,
    GenerationError,
    Prompt,
    as_messages,
    backend_from_config,
    get_backend,
    truncate_at_stop,
)

__all__ = ["BACKENDS", "Backend", "GenerationError", "Prompt", "as_messages", "backend_from_config", "get_backend", "truncate_at_stop"]
