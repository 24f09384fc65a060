"""`focalpo sft`: labels mask exactly the prompt (earlier turns included), bad rows and template mismatches
name file:line and field, truncation and dropping are counted, the CLI run lowers the loss and writes a
reloadable model, SFT on one example makes greedy generation reproduce it, a busy output is refused.

The tiny Llama carries the toy world's chat template (assistant turns end with </s>).
Run: .venv/bin/python -m pytest tests/train/test_sft.py -q
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "generate"))
from generate_helpers import make_tokenizer, save_tiny_llama  # noqa: E402
from train_helpers import one_rank_group  # noqa: E402

from focalpo.cli import main  # noqa: E402
from focalpo.config import ConfigError, load_config  # noqa: E402
from focalpo.toyworld.model import CHAT_TEMPLATE  # noqa: E402
from focalpo.train.output import read_metrics  # noqa: E402
from focalpo.train.sft import (  # noqa: E402
    IGNORE_INDEX,
    SFTCollator,
    SFTConfig,
    ShuffledLengthBatches,
    read_sft_examples,
    sft,
    sft_example,
    tokenize_chat,
)

ANSWERS = ["def add(a, b):\n    return a + b\n", "def sub(a, b):\n    return a - b\n",
           "for i in range(10):\n    print(i)\n", "def is_even(n):\n    return n % 2 == 0\n"]


def chat(question: str, answer: str) -> dict:
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}


def write_rows(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def trained_text(tokenizer, example: dict) -> str:
    return tokenizer.decode([t for t in example["labels"] if t != IGNORE_INDEX])


@pytest.fixture(scope="module")
def chat_tokenizer():
    return make_tokenizer(CHAT_TEMPLATE)


@pytest.fixture(scope="module")
def chat_model_dir(tmp_path_factory):
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-chat-llama"), chat_template=CHAT_TEMPLATE)


def test_labels_mask_exactly_the_prompt(chat_tokenizer):
    row = chat("write add", ANSWERS[0])
    full, n_prefix = tokenize_chat(row["messages"], chat_tokenizer, "row")
    ex = sft_example(full, n_prefix, max_length=None)
    prompt = chat_tokenizer.apply_chat_template(row["messages"][:1], tokenize=False, add_generation_prompt=True)
    assert prompt == "<|user|>\nwrite add\n<|assistant|>\n"
    assert ex["input_ids"] == full
    assert ex["labels"][:n_prefix] == [IGNORE_INDEX] * n_prefix
    assert chat_tokenizer.decode(full[:n_prefix]) == prompt
    assert IGNORE_INDEX not in ex["labels"][n_prefix:]
    assert trained_text(chat_tokenizer, ex) == ANSWERS[0] + "</s>"  # the answer and the template's EOS after it


def test_three_turn_conversation_trains_only_on_the_last_answer(chat_tokenizer, tmp_path):
    messages = [
        {"role": "system", "content": "you write code"},
        {"role": "user", "content": "write add"}, {"role": "assistant", "content": ANSWERS[0]},
        {"role": "user", "content": "now sub"}, {"role": "assistant", "content": ANSWERS[1]},
    ]
    path = write_rows(tmp_path / "chats.jsonl", [{"messages": messages, "id": 7}])
    (ex,), stats = read_sft_examples(path, chat_tokenizer, max_length=512)
    assert trained_text(chat_tokenizer, ex) == ANSWERS[1] + "</s>"
    masked = [t for t, lab in zip(ex["input_ids"], ex["labels"]) if lab == IGNORE_INDEX]
    # the earlier answer (and its </s>) is context only
    assert chat_tokenizer.decode(masked) == (
        f"<|system|>\nyou write code\n<|user|>\nwrite add\n<|assistant|>\n{ANSWERS[0]}</s>"
        "<|user|>\nnow sub\n<|assistant|>\n"
    )
    assert (stats.rows, stats.examples, stats.dropped, stats.truncated) == (1, 1, 0, 0)


@pytest.mark.parametrize("row, field", [
    ({"prompt": "x"}, "'messages'"),
    ({"messages": []}, "'messages'"),
    ({"messages": [{"role": "user", "content": "q"}]}, "'messages[-1].role'"),
    ({"messages": [{"role": "robot", "content": "q"}, {"role": "assistant", "content": "a"}]}, "'messages[0].role'"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant"}]}, "'messages[1].content'"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": 3}]}, "'messages[1].content'"),
    ('{"messages": [', "invalid JSON"),
])
def test_bad_rows_name_file_line_and_field(chat_tokenizer, tmp_path, row, field):
    path = write_rows(tmp_path / "chats.jsonl", [chat("write add", ANSWERS[0]), row])
    with pytest.raises(ValueError) as e:
        read_sft_examples(path, chat_tokenizer, max_length=512)
    assert str(e.value).startswith(f"{path}:2: ") and field in str(e.value)


def test_parquet_chats_with_a_renamed_column_read_as_their_jsonl_twin(chat_tokenizer, tmp_path):
    from datasets import Dataset

    from focalpo.datasets_io import Source

    rows = [chat("write add", ANSWERS[0]), chat("now sub", ANSWERS[1])]
    jsonl = write_rows(tmp_path / "chats.jsonl", rows)
    parquet = tmp_path / "chats.parquet"
    Dataset.from_list([{"conversation": r["messages"]} for r in rows]).to_parquet(str(parquet))
    want, _ = read_sft_examples(jsonl, chat_tokenizer, max_length=512)
    got, stats = read_sft_examples(Source(str(parquet), columns=(("messages", "conversation"),)), chat_tokenizer, 512)
    assert got == want and stats.rows == 2
    with pytest.raises(ValueError, match=rf"^{parquet}\[0\]: field 'messages' is missing"):
        read_sft_examples(parquet, chat_tokenizer, max_length=512)


def test_prompt_tokens_not_a_prefix_is_an_error(chat_tokenizer, tmp_path):
    """This BPE merges "\\n" with the indent after it: an answer starting with spaces changes the prompt's
    last token."""
    path = write_rows(tmp_path / "chats.jsonl", [chat("q", ANSWERS[0]), chat("q", "    return 1\n")])
    with pytest.raises(ValueError, match=rf"^{path}:2: the tokens of the prompt .* are not a prefix"):
        read_sft_examples(path, chat_tokenizer, max_length=512)


def test_a_tokenizer_without_chat_template_is_refused(tmp_path):
    path = write_rows(tmp_path / "chats.jsonl", [chat("q", ANSWERS[0])])
    with pytest.raises(ConfigError, match="no chat template"):
        read_sft_examples(path, make_tokenizer(), max_length=512)


def test_truncation_and_dropping_are_counted(chat_tokenizer, tmp_path):
    rows = [chat("q", "x = 1\n"), chat("q", ANSWERS[3]), chat("write add " * 12, ANSWERS[0])]
    lengths = [tokenize_chat(r["messages"], chat_tokenizer, "") for r in rows]  # (full ids, n_prefix)
    short_full, long_full, long_prefix = len(lengths[0][0]), len(lengths[1][0]), lengths[2][1]
    max_length = short_full + 1
    assert lengths[1][1] < max_length < long_full and long_prefix >= max_length  # the cases this test needs
    path = write_rows(tmp_path / "chats.jsonl", rows)
    (short, cut), stats = read_sft_examples(path, chat_tokenizer, max_length=max_length)
    assert (stats.rows, stats.examples, stats.dropped, stats.truncated) == (3, 2, 1, 1)
    assert short["input_ids"] == lengths[0][0]
    assert cut["input_ids"] == lengths[1][0][:max_length]
    assert cut["labels"][: lengths[1][1]] == [IGNORE_INDEX] * lengths[1][1]
    assert "</s>" not in trained_text(chat_tokenizer, cut)  # the end is what truncation loses
    with pytest.raises(ValueError, match=r"no usable examples \(3 rows; 3 with a prompt of >= max_length=3"):
        read_sft_examples(path, chat_tokenizer, max_length=3)


def test_collator_right_pads_ids_and_masks_labels():
    batch = SFTCollator(pad_token_id=0)([
        {"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [8], "labels": [8]},
    ])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["input_ids"].dtype == torch.long


def test_cli_sft_lowers_the_loss_and_writes_a_reloadable_model(chat_model_dir, tmp_path, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    rows = [chat(f"task {i}", ANSWERS[i % 4]) for i in range(16)]
    data, out = write_rows(tmp_path / "chats.jsonl", rows), tmp_path / "run"
    code = main(["sft", "--model", str(chat_model_dir), "--data", str(data), "--output", str(out),
                 "--max-steps", "20", "--per-device-batch-size", "4", "--learning-rate", "3e-3", "--no-progress",
                 "warmup_ratio=0", "save_steps=10"])
    assert code == 0
    assert "sft: 16 of 16 examples (0 dropped" in capsys.readouterr().out
    losses = [r["loss"] for r in read_metrics(out / "metrics.jsonl")]
    assert len(losses) == 20 and losses[0] > 2 * losses[-1]
    cfg = load_config(SFTConfig, out / "sft_config.yaml")
    assert (cfg.max_steps, cfg.learning_rate, cfg.data) == (20, 3e-3, str(data))
    assert (out / "checkpoint-10" / "sft_config.yaml").is_file()
    model = AutoModelForCausalLM.from_pretrained(out)
    assert sum(p.numel() for p in model.parameters()) > 0
    assert AutoTokenizer.from_pretrained(out).chat_template == CHAT_TEMPLATE


def test_cli_sft_takes_its_process_group_down(chat_model_dir, tmp_path):
    # as `focalpo train` (test_distributed.py): a launched process must not exit with its group alive
    data = write_rows(tmp_path / "chats.jsonl", [chat("task", ANSWERS[0])] * 2)
    with one_rank_group(tmp_path / "store"):
        assert main(["sft", "--model", str(chat_model_dir), "--data", str(data), "--output", str(tmp_path / "run"),
                     "--max-steps", "1", "--no-progress", "save_strategy=no"]) == 0
        assert not torch.distributed.is_initialized()


def test_sft_on_one_example_makes_greedy_generation_reproduce_it(chat_model_dir, tmp_path):
    from focalpo.generate import get_backend

    row = chat("write add", ANSWERS[0])
    data = write_rows(tmp_path / "one.jsonl", [row] * 4)
    cfg = load_config(SFTConfig, None, [
        f"model={chat_model_dir}", f"data={data}", f"output={tmp_path / 'run'}", "max_steps=40",
        "per_device_batch_size=4", "learning_rate=3e-3", "warmup_ratio=0", "progress=false", "save_strategy=no",
    ])
    result = sft(cfg)
    assert result.global_step == 40 and not list(result.output.glob("checkpoint-*"))
    backend = get_backend("hf", model=str(result.output), device="cpu")
    (answer,), = backend.generate([row["messages"][:-1]], n=1, temperature=0, max_new_tokens=40)
    assert answer == ANSWERS[0]  # exact: the answer, then </s> stops generation


def test_non_empty_output_is_refused_without_overwrite(chat_model_dir, tmp_path, capsys):
    data = write_rows(tmp_path / "chats.jsonl", [chat("q", ANSWERS[0])])
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.jsonl").write_text('{"step": 99, "loss": 1.0}\n')
    args = ["sft", "--model", str(chat_model_dir), "--data", str(data), "--output", str(out), "--max-steps", "2",
            "--no-progress"]
    assert main(args) == 2
    assert "not empty; pass --overwrite" in capsys.readouterr().err
    assert not (out / "sft_config.yaml").exists()
    assert main(args + ["--overwrite"]) == 0
    assert [r["step"] for r in read_metrics(out / "metrics.jsonl")] == [1, 2]  # the old records are gone


def test_resume_continues_from_the_last_checkpoint(chat_model_dir, tmp_path):
    data = write_rows(tmp_path / "chats.jsonl", [chat(f"task {i}", ANSWERS[i % 4]) for i in range(4)])
    out = tmp_path / "run"
    args = ["sft", "--model", str(chat_model_dir), "--data", str(data), "--output", str(out),
            "--per-device-batch-size", "2", "--no-progress", "save_steps=2"]
    assert main(args + ["--max-steps", "3"]) == 0  # checkpoint-2, then step 3 (logged, not checkpointed)
    assert main(args + ["--max-steps", "5", "--resume"]) == 0
    records = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5]  # step 3 of the first run dropped, then redone
    assert load_config(SFTConfig, out / "sft_config.yaml").max_steps == 5


@pytest.mark.parametrize("grouped", [True, False])
def test_group_by_length_batches_similar_lengths_in_random_order(chat_model_dir, tmp_path, grouped):
    from transformers import TrainerCallback

    class BatchProbe(TrainerCallback):  # reads the batches the trainer will draw, before it trains
        kinds: list[str] = []

        def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
            for batch in train_dataloader:
                n = batch["attention_mask"].sum(1)
                self.kinds.append("mixed" if (n != n.max()).any() else "long" if n.max() > 20 else "short")

    short, long = chat("q", "x"), chat("q", "y " * 60)
    data = write_rows(tmp_path / "mixed.jsonl", [short, long] * 100)
    probe = BatchProbe()
    cfg = load_config(SFTConfig, None, [
        f"model={chat_model_dir}", f"data={data}", f"output={tmp_path / 'run'}", "max_steps=1", "seed=3",
        "per_device_batch_size=2", "progress=false", "save_strategy=no", f"group_by_length={grouped}",
    ])
    sft(cfg, callbacks=[probe])
    kinds = probe.kinds
    assert len(kinds) == 100  # 200 examples, batches of 2
    switches = sum(a != b for a, b in zip(kinds, kinds[1:]))
    if grouped:  # 2 mega-batches of 100 sorted by length: at most one mixed batch each; batch order shuffled
        assert kinds.count("mixed") <= 2 and switches >= 25  # sorted runs would switch <= 4 times
    else:  # random batches: half of them mix a short and a long example
        assert kinds.count("mixed") >= 25


def test_shuffled_length_batches_is_a_new_permutation_each_epoch():
    lengths = [(7 * i) % 23 for i in range(103)]
    sampler = ShuffledLengthBatches(lengths, batch_size=4, seed=0)
    first, second = list(sampler), list(sampler)
    assert sorted(first) == sorted(second) == list(range(103)) and first != second
    batches = [first[i:i + 4] for i in range(0, 100, 4)]
    spread = [max(lengths[j] for j in b) - min(lengths[j] for j in b) for b in batches]
    assert sum(spread) / len(spread) <= 2  # 103 examples sorted into 25 full batches: neighbours in length
    again = ShuffledLengthBatches(lengths, 4, seed=0)
    assert list(again) == first  # deterministic for a seed and epoch
    again.set_epoch(1)  # what accelerate calls before each epoch: a resumed run draws the same order
    assert list(again) == second
