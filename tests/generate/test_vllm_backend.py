"""VLLMBackend: on CPU against a fake `vllm` module (what reaches `LLM` and `SamplingParams`, how the
answer is put together), and on a CUDA GPU against real vLLM and a tiny local Llama (marked `gpu`,
skipped unless vLLM imports and CUDA is available).

The fake engine's completion k of a request is f"{input}|seed={seed}|k={k}" (input: the text, or the
token ids of a templated prompt), so every assertion can see which prompt, seed and sample a text
came from; it returns each request's completions in reverse index order, as vLLM may.

Run: .venv/bin/python -m pytest tests/generate/test_vllm_backend.py -q
     .venv/bin/python -m pytest -m gpu tests/generate/test_vllm_backend.py -q   (on a GPU with vLLM)
"""

from __future__ import annotations

import importlib.util
import sys
import types
from dataclasses import dataclass, field

import pytest
from generate_helpers import CHAT_TEMPLATE, make_tokenizer

from focalpo.generate import Backend, GenerationError, get_backend
from focalpo.generate.vllm_backend import VLLMBackend


@dataclass
class FakeCompletion:  # vllm.outputs.CompletionOutput, the fields the backend reads
    index: int
    text: str


@dataclass
class FakeRequestOutput:  # vllm.outputs.RequestOutput
    outputs: list = field(default_factory=list)


class FakeSamplingParams:
    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)
        self.kwargs = kwargs


class FakeLLM:
    instances: list = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.calls = []  # (inputs, params, use_tqdm) of every generate call
        self.tokenizer = make_tokenizer(CHAT_TEMPLATE if kwargs["model"] == "chat-model" else None)
        self.suffix = ""  # appended to every completion (to test stop truncation)
        FakeLLM.instances.append(self)

    def get_tokenizer(self):
        return self.tokenizer

    def generate(self, inputs, params, use_tqdm=True):
        self.calls.append((list(inputs), list(params), use_tqdm))
        assert len(inputs) == len(params)
        return [FakeRequestOutput([FakeCompletion(k, f"{x}|seed={p.seed}|k={k}{self.suffix}")
                                   for k in reversed(range(p.n))]) for x, p in zip(inputs, params)]


@pytest.fixture
def fake_vllm(monkeypatch):
    FakeLLM.instances = []
    module = types.ModuleType("vllm")
    module.LLM, module.SamplingParams = FakeLLM, FakeSamplingParams
    monkeypatch.setitem(sys.modules, "vllm", module)
    return module


@pytest.fixture
def backend(fake_vllm):
    return VLLMBackend("plain-model")


def test_engine_options_reach_llm(fake_vllm):
    b = get_backend("vllm", model="m", tensor_parallel_size=2, dtype="bfloat16", max_model_len=4096,
                    llm_kwargs={"swap_space": 8})
    assert isinstance(b, Backend) and isinstance(b, VLLMBackend)
    assert b.llm.kwargs == {"model": "m", "dtype": "bfloat16", "tensor_parallel_size": 2,
                            "gpu_memory_utilization": 0.9, "max_model_len": 4096, "trust_remote_code": False,
                            "enforce_eager": False, "enable_prefix_caching": True, "seed": 0, "swap_space": 8}
    with pytest.raises(ValueError, match=r"llm_kwargs repeats option\(s\) \['max_model_len'\]"):
        VLLMBackend("m", llm_kwargs={"max_model_len": 2048})
    with pytest.raises(ValueError, match="tensor_parallel_size must be a positive integer"):
        VLLMBackend("m", tensor_parallel_size=0)
    with pytest.raises(TypeError, match="has no option"):
        get_backend("vllm", model="m", batch_size=8)  # an hf option


def test_one_generate_call_with_one_sampling_params_per_prompt(backend):
    out = backend.generate(["a", "bb", "ccc"], n=3, temperature=0.8, top_p=0.95, max_new_tokens=64,
                           stop=["\n```", ""], seed=[7, 8, 9])
    (inputs, params, use_tqdm), = backend.llm.calls  # exactly one call for all prompts
    assert inputs == ["a", "bb", "ccc"] and use_tqdm is False
    assert [p.kwargs for p in params] == [
        {"n": 3, "temperature": 0.8, "top_p": 0.95, "max_tokens": 64, "stop": ["\n```"],
         "include_stop_str_in_output": False, "seed": s} for s in (7, 8, 9)]
    assert out == [[f"{x}|seed={s}|k={k}" for k in range(3)] for x, s in zip(["a", "bb", "ccc"], [7, 8, 9])]


def test_one_int_seed_gives_prompt_i_seed_plus_i_and_none_leaves_requests_unseeded(backend):
    backend.generate(["a", "b", "c"], n=2, seed=100)
    backend.generate(["a", "b"], n=2)
    assert [p.seed for p in backend.llm.calls[0][1]] == [100, 101, 102]
    assert [p.seed for p in backend.llm.calls[1][1]] == [None, None]
    assert backend.generate(["a"], n=2, seed=5) == backend.generate(["a"], n=2, seed=[5])


def test_order_kept_and_samples_sorted_by_index(backend):
    """The fake returns completions in reverse index order; prompts must come back in input order."""
    prompts = ["x", "def f():", "y"]
    out = backend.generate(prompts, n=4, seed=[1, 2, 3])
    assert [[t.split("|")[0] for t in texts] for texts in out] == [[p] * 4 for p in prompts]
    assert all([t.rsplit("k=", 1)[1] for t in texts] == ["0", "1", "2", "3"] for texts in out)
    assert backend.generate([], n=3) == [] and len(backend.llm.calls) == 1  # no engine call for nothing


def test_greedy_asks_one_sequence_and_repeats_it(backend):
    out = backend.generate(["a", "b"], n=3, temperature=0, top_p=0.5, seed=[4, 5])
    params = backend.llm.calls[0][1]
    assert [(p.n, p.temperature, p.top_p, p.seed) for p in params] == [(1, 0, 1.0, None)] * 2
    assert out == [["a|seed=None|k=0"] * 3, ["b|seed=None|k=0"] * 3]


def test_texts_cut_before_the_first_stop_string(backend):
    backend.llm.suffix = "\nEND tail ``` more"
    out = backend.generate(["a"], n=2, stop=["```", "END"], seed=[0])
    assert out == [["a|seed=0|k=0\n", "a|seed=0|k=1\n"]]


def test_wrong_number_of_completions_is_an_error(backend, monkeypatch):
    monkeypatch.setattr(backend.llm, "generate", lambda inputs, params, use_tqdm: [
        FakeRequestOutput([FakeCompletion(0, "only one")]) for _ in inputs])
    with pytest.raises(GenerationError, match="prompt 0: vLLM returned 1 completions, expected 3"):
        backend.generate(["a"], n=3)


def test_chat_template_rendered_and_fed_as_token_ids(fake_vllm):
    b = VLLMBackend("chat-model")
    assert b.use_chat_template
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "def add"}]
    b.generate(["def sub", messages], n=1, seed=[0, 1])
    inputs = b.llm.calls[0][0]
    expected = ["<|user|>def sub\n<|assistant|>", "<|system|>be brief\n<|user|>def add\n<|assistant|>"]
    assert [b.render(p) for p in ["def sub", messages]] == expected
    assert inputs == [{"prompt_token_ids": b.tokenizer.encode(t, add_special_tokens=False)} for t in expected]
    assert b.tokenizer.decode(inputs[1]["prompt_token_ids"]) == expected[1]


def test_message_list_without_template_names_the_prompt(backend, fake_vllm):
    with pytest.raises(GenerationError, match="prompt 1 is a message list but the tokenizer has no chat template"):
        backend.generate(["ok", [{"role": "user", "content": "hi"}]], n=1)
    assert backend.llm.calls == []
    with pytest.raises(GenerationError, match="chat_template=True but the tokenizer has no chat template"):
        VLLMBackend("plain-model", chat_template=True)
    plain = VLLMBackend("chat-model", chat_template=False)
    plain.generate(["raw text"], n=1)
    assert plain.llm.calls[0][0] == ["raw text"]


def test_sampling_arguments_checked_before_the_engine(backend):
    with pytest.raises(ValueError, match="seed is a list of 1 seeds but there are 2 prompts"):
        backend.generate(["a", "b"], seed=[1])
    with pytest.raises(ValueError, match="top_p must be in"):
        backend.generate(["a"], top_p=0)
    assert backend.llm.calls == []


def test_missing_vllm_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'focalpo\[vllm\]'") as info:
        get_backend("vllm", model="m")
    assert isinstance(info.value, GenerationError)  # the CLI prints it without a traceback


# --- real vLLM on a GPU ---------------------------------------------------------------------------

def _gpu_and_vllm() -> bool:
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


# the marker selects (-m gpu); the skipif makes the default run, which collects them too, skip cleanly
needs_gpu = pytest.mark.skipif(not _gpu_and_vllm(), reason="needs a CUDA GPU and vLLM (pip install 'focalpo[vllm]')")
PROMPTS = ["def add(a, b):\n", "for i in range(10):\n    print(i)\nif x > 0:\n", "x", "def is_even(n):\n    return"]


def save_gpu_llama(directory):
    """The tiny Llama of generate_helpers with head_dim 64 (2 heads of width 128), a size vLLM's
    attention kernels support (save_tiny_llama's head_dim 16 is below some of them)."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    tokenizer = make_tokenizer()
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256,
                      pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None,
                      tie_word_embeddings=False)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    with torch.no_grad():  # sharp logits: greedy answers vary with the prompt, and near-ties are rare
        for p in model.parameters():
            p.mul_(4.0)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def gpu_model_dir(tmp_path_factory):
    return save_gpu_llama(tmp_path_factory.mktemp("tiny-llama-gpu"))


@pytest.fixture(scope="module")
def real_backend(gpu_model_dir):
    # float32 and eager: the closest vLLM gets to the hf backend's numerics, and a fast start
    return get_backend("vllm", model=str(gpu_model_dir), dtype="float32", enforce_eager=True,
                       gpu_memory_utilization=0.3, max_model_len=256)


@pytest.mark.gpu
@needs_gpu
def test_gpu_per_prompt_seeds_do_not_depend_on_company_or_order(real_backend):
    """Same prompt + seed -> same n samples alone, beside other prompts, and in reversed order.
    (vLLM seeds each request's generator; its kernels are not batch-invariant, so a flip needs a
    near-tie within float32 rounding, which this sharp tiny model does not have.)"""
    kw = dict(n=4, temperature=1.0, top_p=0.95, max_new_tokens=12)
    alone = [real_backend.generate([p], seed=[100 + i], **kw)[0] for i, p in enumerate(PROMPTS)]
    together = real_backend.generate(PROMPTS, seed=[100 + i for i in range(len(PROMPTS))], **kw)
    reversed_ = real_backend.generate(PROMPTS[::-1], seed=[100 + i for i in range(len(PROMPTS))][::-1], **kw)
    assert together == alone and reversed_ == alone[::-1]
    assert all(len(texts) == 4 for texts in together)
    assert len(set(together[0])) > 1  # the n samples of one prompt differ
    assert real_backend.generate(PROMPTS[:1], seed=[999], **kw)[0] != alone[0]  # another seed, other samples


@pytest.mark.gpu
@needs_gpu
def test_gpu_greedy_equals_hf_greedy(real_backend, gpu_model_dir):
    """Greedy vLLM = greedy transformers on the same float32 model (different attention kernels agree
    on every argmax unless two logits tie within rounding: not with these sharp weights)."""
    hf = get_backend("hf", model=str(gpu_model_dir), dtype="float32", device="cuda", batch_size=4)
    ours = real_backend.generate(PROMPTS, n=2, temperature=0, max_new_tokens=10)
    theirs = hf.generate(PROMPTS, n=2, temperature=0, max_new_tokens=10)
    assert ours == theirs
    assert all(t[0] == t[1] for t in ours) and len({t[0] for t in ours}) == len(PROMPTS)
    assert real_backend.generate(PROMPTS, n=2, temperature=0, max_new_tokens=10) == ours  # deterministic
