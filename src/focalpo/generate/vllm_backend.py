"""`VLLMBackend`: sample completions from an in-process vLLM engine (`vllm.LLM`, offline, GPU).

    pip install 'focalpo[vllm]'
    from focalpo.generate.vllm_backend import VLLMBackend
    backend = VLLMBackend("Qwen/Qwen2.5-Coder-7B-Instruct", dtype="bfloat16", tensor_parallel_size=2)
    texts = backend.generate(prompts, n=10, temperature=1.5, max_new_tokens=1024, stop=["\n```"], seed=0)
    # CLI: focalpo focused ... --backend vllm --model ... --backend-option tensor_parallel_size=2

All prompts of a call go to ONE `llm.generate` call with one `SamplingParams` per prompt; vLLM
schedules them (continuous batching), and prefix caching (on by default) lets the `n` samples and
the prompts sharing a template reuse their prompt's KV cache. Named `vllm_backend` (not `vllm.py`)
so that the module can never shadow the `vllm` package; `vllm` itself is imported inside
`__init__`, so importing this module needs neither vLLM nor a GPU.

Prompts: when the tokenizer has a chat template (and `chat_template` is not False) every prompt goes
through it (plain strings as one user message), like the `hf` backend; the rendered text is
tokenized here without special tokens (the template holds BOS etc.; vLLM would add a second BOS to a
text prompt) and fed as token ids. Without a template, plain strings are fed as text and message
lists are an error. Each text is cut before its first `stop` string; exactly `n` per prompt.
temperature 0 is greedy: one sequence per prompt, repeated n times.

Seeds: with per-prompt seeds, request i carries `SamplingParams(seed=seeds[i])`: vLLM draws its
tokens from a generator of its own, so its random draws do not depend on the other prompts or their
order. One int `seed` becomes the per-prompt seeds seed + i (so a prompt's samples depend on its
position, not on the other prompts' text); None leaves requests unseeded (the engine's generator,
seeded by the constructor's `seed`, so they depend on the call's history). Caveat: vLLM's kernels
are not batch-invariant by default, so the logits of a request can differ at rounding level with
the batch it is scheduled in, and a near-tie may then sample another token; for bitwise
independence set VLLM_BATCH_INVARIANT=1 (recent vLLM, see its "Batch Invariance" docs).
Tests: .venv/bin/python -m pytest tests/generate/test_vllm_backend.py -q   (GPU ones: -m gpu)
"""

from __future__ import annotations

from typing import Any, Sequence

from focalpo.generate.base import (
    GenerationError,
    Prompt,
    Seed,
    chat_template_in_use,
    check_sampling,
    prompt_seeds,
    render_prompt,
    truncate_at_stop,
)

INSTALL_HINT = "pip install 'focalpo[vllm]'"


class VLLMNotInstalled(GenerationError, ImportError):
    """vLLM is missing: an ImportError for import-time callers, a GenerationError for the CLI's clean exit."""


class VLLMBackend:
    """A `vllm.LLM` engine behind the `Backend` protocol.

    model: local directory or hub id. tokenizer: directory / id (default: the model's).
    dtype: "auto", "bfloat16", "float16", "float32" (vLLM's "auto" runs a float32 checkpoint in 16 bits).
    tensor_parallel_size: GPUs to shard the model over. gpu_memory_utilization: fraction of each GPU's
    memory vLLM may take (weights + KV cache). max_model_len: prompt + completion tokens (default: the
    model's). quantization: e.g. "awq", "gptq", "fp8". max_num_seqs: sequences per scheduler step.
    enforce_eager: no CUDA graphs (faster start, slower decoding). enable_prefix_caching: reuse the KV
    cache of shared prompt prefixes (the n samples of a prompt). seed: the engine's global seed.
    chat_template: None = the tokenizer's template when it has one; False = never; True = required.
    use_tqdm: vLLM's progress bar per call. llm_kwargs: any other `vllm.LLM` / EngineArgs keyword
    (e.g. {"download_dir": "/scratch", "swap_space": 8}).
    """

    def __init__(self, model: str, tokenizer: str | None = None, dtype: str = "auto", tensor_parallel_size: int = 1,
                 gpu_memory_utilization: float = 0.9, max_model_len: int | None = None,
                 quantization: str | None = None, max_num_seqs: int | None = None,
                 chat_template: bool | None = None, trust_remote_code: bool = False, enforce_eager: bool = False,
                 enable_prefix_caching: bool = True, seed: int = 0, use_tqdm: bool = False,
                 llm_kwargs: dict | None = None) -> None:
        if not isinstance(tensor_parallel_size, int) or tensor_parallel_size < 1:
            raise ValueError(f"tensor_parallel_size must be a positive integer, got {tensor_parallel_size!r}")
        if not 0 < gpu_memory_utilization <= 1:
            raise ValueError(f"gpu_memory_utilization must be in (0, 1], got {gpu_memory_utilization}")
        if max_model_len is not None and max_model_len < 1:
            raise ValueError(f"max_model_len must be a positive integer, got {max_model_len!r}")
        kwargs: dict[str, Any] = {
            "model": model, "tokenizer": tokenizer, "dtype": dtype, "tensor_parallel_size": tensor_parallel_size,
            "gpu_memory_utilization": gpu_memory_utilization, "max_model_len": max_model_len,
            "quantization": quantization, "max_num_seqs": max_num_seqs, "trust_remote_code": trust_remote_code,
            "enforce_eager": enforce_eager, "enable_prefix_caching": enable_prefix_caching, "seed": seed,
        }
        clash = sorted(set(llm_kwargs or {}) & set(kwargs))
        if clash:
            raise ValueError(f"llm_kwargs repeats option(s) {clash}; set them as VLLMBackend options instead")
        kwargs = {k: v for k, v in kwargs.items() if v is not None}  # None: vLLM's own default
        kwargs.update(llm_kwargs or {})
        self.use_tqdm = use_tqdm
        try:
            import vllm
        except ImportError as e:
            raise VLLMNotInstalled(f"--backend vllm needs vLLM, which is not installed ({e}); "
                                   f"install it with: {INSTALL_HINT} (a CUDA GPU is required)") from e
        self._sampling_params = vllm.SamplingParams
        self.llm = vllm.LLM(**kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self.use_chat_template = chat_template_in_use(self.tokenizer, chat_template)

    def render(self, prompt: Prompt, where: str = "prompt") -> str:
        """The exact text fed to the model for one prompt (chat template applied when in use)."""
        return render_prompt(self.tokenizer, self.use_chat_template, prompt, where)

    def engine_input(self, prompt: Prompt, where: str = "prompt") -> str | dict:
        """What `llm.generate` receives for one prompt: the text, or a templated prompt's token ids."""
        text = self.render(prompt, where)
        if not self.use_chat_template:
            return text  # vLLM tokenizes it with special tokens, as the hf backend does
        # the template already holds BOS and friends: vLLM would prepend a second BOS to the text
        return {"prompt_token_ids": self.tokenizer.encode(text, add_special_tokens=False)}

    def generate(self, prompts: Sequence[Prompt], n: int = 1, temperature: float = 1.0, top_p: float = 1.0,
                 max_new_tokens: int = 512, stop: Sequence[str] | None = None,
                 seed: Seed = None) -> list[list[str]]:
        """`n` completions per prompt, in prompt order; see the module docstring for `seed`."""
        check_sampling(prompts, n, temperature, top_p, max_new_tokens, stop, seed)
        inputs = [self.engine_input(p, where=f"prompt {i}") for i, p in enumerate(prompts)]
        if not inputs:
            return []
        seeds = prompt_seeds(seed, len(prompts))
        if seeds is None and seed is not None:
            seeds = [seed + i for i in range(len(prompts))]
        stop = [s for s in (stop or []) if s]
        greedy = temperature == 0
        params = [self._params(n, temperature, top_p, max_new_tokens, stop, None if greedy or seeds is None
                               else seeds[i]) for i in range(len(inputs))]
        outputs = self.llm.generate(inputs, params, use_tqdm=self.use_tqdm)
        if len(outputs) != len(inputs):
            raise GenerationError(f"vLLM returned {len(outputs)} outputs for {len(inputs)} prompts")
        return [self._texts(out, n, greedy, stop, where=f"prompt {i}") for i, out in enumerate(outputs)]

    def _params(self, n: int, temperature: float, top_p: float, max_new_tokens: int, stop: list[str],
                seed: int | None) -> Any:
        greedy = temperature == 0  # vLLM resets top_p for greedy anyway; n > 1 would decode n identical copies
        return self._sampling_params(n=1 if greedy else n, temperature=float(temperature),
                                     top_p=1.0 if greedy else top_p, max_tokens=max_new_tokens, stop=stop or None,
                                     include_stop_str_in_output=False, seed=seed)

    @staticmethod
    def _texts(request_output: Any, n: int, greedy: bool, stop: list[str], where: str) -> list[str]:
        completions = sorted(request_output.outputs, key=lambda c: c.index)
        texts = [truncate_at_stop(c.text, stop) for c in completions]
        if len(texts) != (1 if greedy else n):
            raise GenerationError(f"{where}: vLLM returned {len(texts)} completions, expected {1 if greedy else n}")
        return texts * n if greedy else texts
