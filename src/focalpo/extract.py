"""From model text to code: fenced-block extraction, evalplus sample files, assert splitting.

    >>> extract_code("Here you go:\\n```python\\ndef f():\\n    return 1\\n```\\nDone.")
    'def f():\\n    return 1\\n'
    >>> split_asserts("assert f(1) == 2\\nprint('x')\\nassert f(1)==2\\nassert g(")
    ['assert f(1) == 2']

- `extract_code(text)`: the fenced markdown block (``` or ~~~) that looks most like the answer, or
  the text itself when it has no fence. Tolerates CRLF, indented fences and a final fence cut off
  by the generation limit.
- `program_from_sample(sample, prompt)`: the program an evalplus-format sample stands for: its
  `solution` (a whole program, fences extracted) or `prompt + completion`.
- `read_samples(path)`: samples from a JSONL file (optionally .gz), a parquet file or `save_to_disk`
  directory (`focalpo.datasets_io`), or an evalplus sample directory
  `DIR/<task_id with "/" replaced by "_">/<n>.py`. Each sample dict gets `_file` and `_line` (where
  it came from, for error messages); drop the keys starting with "_" before writing samples back.
- `split_asserts(test_code)`: the distinct top-level `assert` statements of model-written tests.
"""

from __future__ import annotations

import ast
import os
import re
import textwrap
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from focalpo.datasets_io import is_parquet, iter_source_rows, saved_dataset_splits
from focalpo.io import iter_json_lines

PYTHON_TAGS = frozenset({"python", "py", "python3", "py3"})

# CommonMark: up to any indentation here (models indent fences inside list items), 3+ backticks or
# tildes, then an info string, which for backtick fences may not contain a backtick.
_OPEN = re.compile(r"(?P<indent>[ \t]*)(?P<fence>`{3,}(?=[^`]*$)|~{3,})(?P<info>.*)")
_CLOSE = re.compile(r"[ \t]*(`{3,}|~{3,})[ \t]*")
_PARTIAL_FENCE = re.compile(r"[ \t]*(`{1,2}|~{1,2})[ \t]*")


@dataclass(frozen=True)
class FencedBlock:
    """One fenced block: its language tag (lower-cased first word of the info string, "" if none)."""

    tag: str
    code: str
    closed: bool


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):  # ValueError: null bytes
        return False
    return True


def _block_code(lines: list[str], indent: int) -> str:
    """Lines with up to `indent` leading whitespace characters removed, blank edges trimmed."""
    out = []
    for line in lines:
        strip = len(line) - len(line.lstrip(" \t"))
        out.append(line[min(strip, indent) :])
    while out and not out[-1].strip():
        out.pop()
    while out and not out[0].strip():
        out.pop(0)
    return "\n".join(out) + "\n" if out else ""


def _tag(info: str) -> str:
    words = info.strip().strip("{}").lstrip(".").split()
    return words[0].lower() if words else ""


def _closes(line: str, fence: str) -> bool:
    """Whether `line` closes a block opened by `fence`: same character, at least as long, bare."""
    c = _CLOSE.fullmatch(line)
    return c is not None and c.group(1)[0] == fence[0] and len(c.group(1)) >= len(fence)


def fenced_blocks(text: str) -> list[FencedBlock]:
    """All fenced blocks of `text`, in order; an unterminated last fence runs to the end of the text.

    A python(-ish) block that does not parse is extended to a later closing fence when that makes
    it parse: the first "```" was then inside a string of the code (e.g. a docstring with markdown).
    """
    if "```" not in text and "~~~" not in text:
        return []  # no fence can open: most samples (18 -> 3 us each on p2's 1,640)
    lines = _normalise_newlines(text).split("\n")
    blocks: list[FencedBlock] = []
    i = 0
    while i < len(lines):
        m = _OPEN.fullmatch(lines[i])
        if m is None:
            i += 1
            continue
        fence, indent, tag = m.group("fence"), len(m.group("indent")), _tag(m.group("info"))
        closes = [j for j in range(i + 1, len(lines)) if _closes(lines[j], fence)]
        end = closes[0] if closes else len(lines)
        if (tag in PYTHON_TAGS or not tag) and closes and not _parses(_block_code(lines[i + 1 : end], indent)):
            end = next((j for j in closes[1:] if _parses(_block_code(lines[i + 1 : j], indent))), end)
        body = lines[i + 1 : end]
        if not closes:  # cut off mid closing fence: "``" on the last line
            while body and (_PARTIAL_FENCE.fullmatch(body[-1]) or not body[-1].strip()):
                body.pop()
        blocks.append(FencedBlock(tag=tag, code=_block_code(body, indent), closed=bool(closes)))
        i = end + 1
    return blocks


def extract_code(text: str, *, language: str = "python") -> str:
    """The code of the fenced block that looks most like the answer, else the text itself.

    Candidates are the non-empty blocks tagged with `language` (for python: python/py/python3/py3,
    any case) and untagged blocks; blocks tagged with another language are ignored. The best is the
    one with the largest (tagged with the language, parses with `ast` [python only], length); ties
    go to the first. Text without any fence comes back unchanged (CRLF turned into LF); text whose
    only fences hold other languages or nothing also comes back unchanged.
    """
    text = _normalise_newlines(text)
    language = language.lower()
    tags = PYTHON_TAGS if language in PYTHON_TAGS else frozenset({language})
    is_python = tags is PYTHON_TAGS
    candidates = [b for b in fenced_blocks(text) if (b.tag in tags or not b.tag) and b.code.strip()]
    if not candidates:
        return text

    def score(b: FencedBlock) -> tuple[bool, bool, int]:
        return (b.tag in tags, _parses(b.code) if is_python else True, len(b.code.strip()))

    return max(candidates, key=score).code


# --------------------------------------------------------------------------------------------------
# evalplus samples


def _where(file: object, line: int | None) -> str:
    return f"{file}:{line}" if line is not None else str(file)


def program_from_sample(
    sample: dict, prompt: str, *, file: str | os.PathLike | None = None, line: int | None = None
) -> str:
    """The program of an evalplus-format sample: `solution` (fences extracted) or prompt + `completion`.

    `solution` wins when both are present (as in evalplus); a null field counts as absent.
    `file`/`line` (default: the sample's `_file`/`_line` from `read_samples`) locate errors:
    ValueError "samples.jsonl:7: field 'solution' must be a string, got int".
    """
    file = file if file is not None else sample.get("_file", "<sample>")
    where = _where(file, line if line is not None else sample.get("_line"))
    for field in ("solution", "completion"):
        value = sample.get(field)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{where}: field {field!r} must be a string, got {type(value).__name__}")
    if sample.get("solution") is not None:
        return extract_code(sample["solution"])
    if sample.get("completion") is not None:
        return prompt + sample["completion"]
    raise ValueError(
        f"{where}: sample for task {sample.get('task_id')!r} has neither a 'solution' nor a 'completion' field"
    )


def _read_jsonl(path: Path) -> Iterator[dict]:
    for lineno, sample in iter_json_lines(path):
        if not isinstance(sample.get("task_id"), str):
            raise ValueError(f"{path}:{lineno}: field 'task_id' is missing or not a string")
        yield {**sample, "_file": str(path), "_line": lineno}


def _sample_file_key(p: Path) -> tuple[int, int, str]:
    return (0, int(p.stem), p.name) if p.stem.isdigit() else (1, 0, p.name)


def _read_sample_dir(path: Path, task_ids: dict[str, str]) -> Iterator[dict]:
    for task_dir in sorted(p for p in path.iterdir() if p.is_dir()):
        task_id = task_ids.get(task_dir.name, task_dir.name.replace("_", "/"))
        files = [p for p in task_dir.iterdir() if p.suffix == ".py" and p.is_file()]
        for file in sorted(files, key=_sample_file_key):
            try:
                solution = file.read_text(encoding="utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{file}: not valid UTF-8 ({e.reason})") from None
            yield {"task_id": task_id, "solution": solution, "_file": str(file), "_line": None}


def _read_dataset(path: Path) -> Iterator[dict]:
    """Sample rows of a parquet file or a `save_to_disk` directory, each named `file[i]` (0-based)."""
    for where, sample in iter_source_rows(path):
        if not isinstance(sample.get("task_id"), str):
            raise ValueError(f"{where}: field 'task_id' is missing or not a string")
        yield {**sample, "_file": where, "_line": None}


def read_samples(path: str | os.PathLike, *, task_ids: Iterable[str] | None = None) -> Iterator[dict]:
    """Samples from a JSONL file (`.gz` too), a parquet file, a `save_to_disk` directory or an evalplus
    sample directory, in file order.

    JSONL: one object per line with a string `task_id`; blank lines are skipped; errors name
    "file:line". Parquet / `save_to_disk` (a Dataset, or a DatasetDict of one split; `focalpo sample
    --parquet` writes the parquet): one row per sample, the JSONL's fields as columns, a null
    counting as absent; errors name "file[i]". Directory: `DIR/<task dir>/<n>.py`, files in numeric
    order, each a `solution`; a task dir name is mapped back to a task id through `task_ids` (the
    benchmark's ids, which settles ids that contain "_") and otherwise by replacing every "_" with
    "/" (evalplus). The path is checked now; the file is read lazily.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such samples file or directory")
    if path.is_dir():
        splits = saved_dataset_splits(path)
        if splits is None:
            return _read_sample_dir(path, {t.replace("/", "_"): t for t in task_ids or ()})
        if len(splits) > 1:
            raise ValueError(f"{path}: a DatasetDict of {len(splits)} splits ({', '.join(splits)}); samples are "
                             "one split: save that one alone (dataset[split].save_to_disk(...))")
        return _read_dataset(path)
    return _read_dataset(path) if is_parquet(path) else _read_jsonl(path)


# --------------------------------------------------------------------------------------------------
# asserts


def _top_level_chunks(code: str) -> Iterator[str]:
    """Top-level statements by layout: a line at column 0 plus its indented/closing-bracket lines."""
    chunk: list[str] = []
    for line in code.split("\n"):
        continues = not line.strip() or line[0] in " \t)]}" or line.lstrip().startswith("#")
        if chunk and not continues:
            yield "\n".join(chunk)
            chunk = []
        if line.strip() or chunk:
            chunk.append(line)
    if chunk:
        yield "\n".join(chunk)


def _asserts_of(code: str) -> Iterator[tuple[str, str]]:
    """(source text, ast dump) of the top-level asserts of `code`, which must parse."""
    for node in ast.parse(code).body:
        if isinstance(node, ast.Assert):
            yield ast.get_source_segment(code, node) or ast.unparse(node), ast.dump(node)


def split_asserts(test_code: str) -> list[str]:
    """The top-level `assert` statements of `test_code`, as source text, without duplicates.

    When the whole text does not parse, each top-level statement is parsed on its own and the
    unparsable ones are dropped. Duplicates are judged on the syntax tree (`assert f(1)==2` equals
    `assert f(1) == 2`); the first spelling is kept. Asserts inside functions or classes are not
    top-level and are not returned. Pass `extract_code(text)` when the tests are in a fence.
    """
    code = textwrap.dedent(_normalise_newlines(test_code))
    if _parses(code):
        found = list(_asserts_of(code))
    else:
        found = [a for chunk in _top_level_chunks(code) if _parses(chunk) for a in _asserts_of(chunk)]
    seen: set[str] = set()
    out = []
    for source, key in found:
        if key not in seen:
            seen.add(key)
            out.append(source)
    return out
