"""Focused-DPO phase 0/1: synthesise self-contained programming problems from concepts found in Python sources.

    focalpo synth-prompts --source-dir REPO --out problems.jsonl --backend openai --model M \
        --base-url http://localhost:8000/v1 [--n-problems 100] [--concepts-per-prompt 2] [--template FILE]
    run_synth(SynthConfig(source_dir="repo/", out="problems.jsonl", backend="openai", model="M", ...))

Step by step:

    concepts = extract_concepts("repo/")             # documented functions and called library APIs
    problems, stats = synthesize_problems(backend, concepts, n_problems=100)
    write_problems("problems.jsonl", problems)       # focalpo problem JSONL, `tests` empty

A concept is a documented public function or method (name, signature, first docstring paragraph) or a
called attribute of an imported module (`re.sub`, `collections.Counter`; import aliases resolved, calls
into the scanned tree itself left out). Each prompt fills `{concepts}` of a template with a random group
of concepts; answers give the statement, then `Entry point: name`. The paper (arXiv 2502.11475) does not
publish its prompt; SYNTH_TEMPLATE is ours. Files that do not decode or parse are skipped and counted.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import random
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from focalpo.io import atomic_path
from focalpo.prompts import SYNTH_TEMPLATE, render

MIN_STATEMENT_CHARS = 40
SKIPPED_DIRS = {"__pycache__", "site-packages", "node_modules"}
TEST_DIRS = {"test", "tests"}


@dataclass(frozen=True)
class Concept:
    """kind "function": `name` is module.qualname, with `signature` and `doc`; kind "api": a dotted call."""

    kind: str
    name: str
    path: str  # relative to the source dir, "/"-separated; for an API, its first use
    line: int
    signature: str = ""
    doc: str = ""
    count: int = 1  # occurrences across files (APIs)

    def describe(self) -> str:
        if self.kind == "function":
            return f"the function `{self.signature}`: {self.doc}"
        return f"the library call `{self.name}`"


@dataclass
class ScanStats:
    files_parsed: int = 0
    skipped: dict[str, str] = field(default_factory=dict)  # relative path -> why


def _source_files(root: Path, include_tests: bool) -> list[Path]:
    """*.py under root, sorted; hidden dirs, caches, site-packages and virtual environments pruned."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        dirnames[:] = sorted(n for n in dirnames if not (
            n.startswith(".") or n in SKIPPED_DIRS or (d / n / "pyvenv.cfg").exists()
            or (not include_tests and n in TEST_DIRS)))
        for name in sorted(filenames):
            is_test = name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"
            if name.endswith(".py") and (include_tests or not is_test):
                out.append(d / name)
    return sorted(out, key=lambda f: f.relative_to(root).as_posix())


def _parse(path: Path) -> ast.Module:
    """The module's AST; ValueError("does not decode: ..." / "does not parse: ...") otherwise."""
    data = path.read_bytes()
    try:
        text = importlib.util.decode_source(data)  # honours PEP 263 coding cookies
    except (UnicodeDecodeError, SyntaxError, LookupError) as e:
        raise ValueError(f"does not decode: {e}") from None
    try:
        with warnings.catch_warnings():  # invalid escape sequences warn, harmlessly
            warnings.simplefilter("ignore")
            return ast.parse(text, filename=str(path))
    except (SyntaxError, ValueError, RecursionError) as e:
        raise ValueError(f"does not parse: {e}") from None


def _functions(tree: ast.Module, rel: str, include_private: bool) -> list[Concept]:
    module = rel[: -len(".py")].replace("/", ".").removesuffix(".__init__")
    defs = (ast.FunctionDef, ast.AsyncFunctionDef)
    found = [(n.name, n) for n in tree.body if isinstance(n, defs)]
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        found += [(f"{cls.name}.{n.name}", n) for n in cls.body if isinstance(n, defs)]
    out = []
    for qualname, node in sorted(found, key=lambda q_n: q_n[1].lineno):
        doc = ast.get_docstring(node)
        if not doc or (not include_private and any(p.startswith("_") for p in qualname.split("."))):
            continue
        returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
        signature = f"{node.name}({ast.unparse(node.args)}){returns}"
        first_paragraph = " ".join(doc.strip().split("\n\n")[0].split())
        out.append(Concept("function", f"{module}.{qualname}", rel, node.lineno, signature, first_paragraph))
    return out


def _import_aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> dotted module path, from every absolute import of the file."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:  # `import os.path` binds `os`
                aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            aliases.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names if a.name != "*"})
    return aliases


def _dotted(node: ast.expr) -> list[str] | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return [node.id, *reversed(parts)] if isinstance(node, ast.Name) else None


def _api_calls(tree: ast.Module) -> list[tuple[str, int]]:
    """(dotted API name, line) of each call of an imported module's attribute, in source order."""
    aliases, calls = _import_aliases(tree), []
    for node in ast.walk(tree):
        parts = _dotted(node.func) if isinstance(node, ast.Call) else None
        if parts and parts[0] in aliases:
            name = ".".join([aliases[parts[0]], *parts[1:]])
            if "." in name:  # calling a bare module (`import m; m()`) is no API
                calls.append((name, node.lineno, node.col_offset))
    return [(n, line) for n, line, _ in sorted(calls, key=lambda c: (c[1], c[2]))]


def scan_sources(source_dir: str | os.PathLike, *, max_files: int | None = None, include_private: bool = False,
                 include_tests: bool = False) -> tuple[list[Concept], ScanStats]:
    """`extract_concepts` plus how many files were parsed and which were skipped (and why)."""
    root = Path(source_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such directory")
    if max_files is not None and max_files < 1:
        raise ValueError(f"max_files must be >= 1, got {max_files}")
    candidates, stats = _source_files(root, include_tests), ScanStats()
    local = {p for f in candidates for p in f.relative_to(root).with_suffix("").parts}  # the tree's own modules
    files = candidates[:max_files]
    functions, counts, first = [], Counter(), {}
    for f in files:
        rel = f.relative_to(root).as_posix()
        try:
            tree = _parse(f)
        except (OSError, ValueError) as e:
            stats.skipped[rel] = str(e)
            continue
        stats.files_parsed += 1
        functions += _functions(tree, rel, include_private)
        for name, line in _api_calls(tree):
            if name.split(".")[0] in local or (not include_private and "._" in f".{name}"):
                continue
            counts[name] += 1
            first.setdefault(name, (rel, line))
    apis = [Concept("api", n, *first[n], count=counts[n]) for n in sorted(counts, key=lambda n: (-counts[n], n))]
    return functions + apis, stats


def extract_concepts(source_dir: str | os.PathLike, *, max_files: int | None = None, include_private: bool = False,
                     include_tests: bool = False) -> list[Concept]:
    """Functions (file order) then APIs (most used first, then by name) of the *.py files under source_dir."""
    return scan_sources(source_dir, max_files=max_files, include_private=include_private,
                        include_tests=include_tests)[0]


def check_template(template: str) -> str:
    if "{concepts}" not in template:
        raise ValueError("the prompt template has no {concepts} field; add it where the concepts should go")
    return template


def build_prompt(template: str, concepts: Sequence[Concept]) -> str:
    """The template with `{concepts}` (one "- ..." line each) and `{n}` replaced; other braces kept."""
    listing = "\n".join(f"- {c.describe()}" for c in concepts)
    return render(check_template(template), n=str(len(concepts)), concepts=listing)


def concept_groups(concepts: Sequence[Concept], per_prompt: int, n_prompts: int, seed: int | random.Random = 0
                   ) -> list[list[Concept]]:
    """`n_prompts` groups of min(per_prompt, len(concepts)) distinct concepts, dealt from reshuffled decks
    so every concept is used once before any is used twice."""
    if not concepts:
        raise ValueError("no concepts to draw from")
    if per_prompt < 1:
        raise ValueError(f"per_prompt must be >= 1, got {per_prompt}")
    rng = seed if isinstance(seed, random.Random) else random.Random(seed)
    k, deck, groups = min(per_prompt, len(concepts)), [], []
    for _ in range(n_prompts):
        group: list[Concept] = []
        while len(group) < k:
            deck = deck or rng.sample(list(concepts), len(concepts))
            c = deck.pop()
            if c not in group:
                group.append(c)
        groups.append(group)
    return groups


class RejectedAnswer(ValueError):
    """An unusable completion; `reason` is the key counted in the stats."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason


_FENCED = re.compile(r"\A```[\w+-]*[ \t]*\n(.*)\n[ \t]*```\Z", re.DOTALL)
_ENTRY = re.compile(r"^[ \t>#*_-]*entry[ \t_-]*point[ \t*_]*:[ \t*_]*`?([A-Za-z_]\w*)", re.IGNORECASE | re.MULTILINE)
_HEADER = re.compile(r"\A[ \t#*_]*problem(?: statement)?[ \t*_]*:?[ \t*_]*(?:\n|\Z)|\A[ \t*_]*problem[ \t*_]*:[ \t*_]*",
                     re.IGNORECASE)
_DEF = re.compile(r"\bdef\s+([A-Za-z_]\w*)\s*\(")


def parse_problem(text: str) -> tuple[str, str | None]:
    """(statement, entry point) of an answer in the template's format; RejectedAnswer if unusable.

    A fence around the whole answer and a leading "Problem:" header are dropped; without an
    `Entry point:` line the entry point is the first `def name(` of the statement, else None."""
    text = text.replace("\r\n", "\n").strip()
    if not text:
        raise RejectedAnswer("empty", "the completion is empty")
    fenced = _FENCED.match(text)
    if fenced and "\n```" not in fenced.group(1):
        text = fenced.group(1).strip()
    entry = _ENTRY.search(text)
    statement = _HEADER.sub("", text[: entry.start()] if entry else text, count=1).strip()
    if not statement:
        raise RejectedAnswer("no_statement", "nothing before the entry point line")
    if len(statement) < MIN_STATEMENT_CHARS:
        raise RejectedAnswer("too_short", f"statement of {len(statement)} chars < {MIN_STATEMENT_CHARS}")
    name = entry.group(1) if entry else (m.group(1) if (m := _DEF.search(statement)) else None)
    return statement, name


@dataclass
class SynthStats:
    prompts: int = 0
    kept: int = 0
    rejected: Counter = field(default_factory=Counter)  # reason ("duplicate", "too_short", ...) -> count


def synthesize_problems(backend: Any, concepts: Sequence[Concept], *, n_problems: int, per_prompt: int = 2,
                        seed: int = 0, template: str = SYNTH_TEMPLATE, temperature: float = 1.0,
                        max_new_tokens: int = 512, prefix: str = "synth", max_rounds: int = 3
                        ) -> tuple[list[dict], SynthStats]:
    """Up to `n_problems` distinct problems (focalpo JSONL dicts); a shortfall from rejected or duplicate
    answers is asked for again with fresh concept groups, for at most `max_rounds` rounds in all."""
    check_template(template)
    if n_problems < 1:
        raise ValueError(f"n_problems must be >= 1, got {n_problems}")
    rng, stats, problems, seen = random.Random(seed), SynthStats(), [], set()
    for round_ in range(max_rounds):
        groups = concept_groups(concepts, per_prompt, n_problems - len(problems), rng)
        if not groups:
            break
        prompts = [build_prompt(template, g) for g in groups]
        answers = backend.generate(prompts, n=1, temperature=temperature, top_p=1.0,
                                   max_new_tokens=max_new_tokens, stop=None, seed=seed + round_)
        stats.prompts += len(prompts)
        for group, (answer, *_) in zip(groups, answers):
            try:
                statement, entry_point = parse_problem(answer)
            except RejectedAnswer as e:
                stats.rejected[e.reason] += 1
                continue
            key = " ".join(statement.split())
            if key in seen:
                stats.rejected["duplicate"] += 1
                continue
            seen.add(key)
            problems.append({"task_id": f"{prefix}/{len(problems)}", "prompt": statement,
                             "entry_point": entry_point, "tests": [],
                             "meta": {"concepts": [c.name for c in group], "source": "synth-prompts"}})
    stats.kept = len(problems)
    return problems, stats


def write_problems(path: str | os.PathLike, problems: Sequence[dict], *, overwrite: bool = False) -> int:
    """Write problems as JSONL, atomically; refuses an existing `path` unless `overwrite`."""
    if Path(path).exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace it")
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in problems), encoding="utf-8")
    return len(problems)


@dataclass
class SynthConfig:
    """Options of `focalpo synth-prompts` (flags, `--config` YAML, key=value overrides)."""

    source_dir: str = ""  # directory of Python sources to take concepts from
    out: str = ""  # problems JSONL (focalpo format, no tests yet)
    backend: str = "hf"  # focalpo.generate backend: hf, openai, scripted
    model: str = ""  # HF model dir / hub id, or the served model name (openai)
    base_url: str | None = None  # openai backend: server URL up to and including /v1
    backend_options: dict = field(default_factory=dict)
    n_problems: int = 100
    concepts_per_prompt: int = 2
    template: str = SYNTH_TEMPLATE  # the prompt, with a {concepts} field (`--template FILE` reads it)
    temperature: float = 1.0
    max_new_tokens: int = 512
    seed: int = 0
    overwrite: bool = False

    def check(self) -> None:
        """Raise ValueError naming the first invalid option."""
        if not self.source_dir or not self.out:
            raise ValueError("synth-prompts config: give source_dir (--source-dir) and out (--out)")
        if not self.model and self.backend in ("hf", "vllm", "openai"):
            raise ValueError(f"--model is required with --backend {self.backend}")
        if self.base_url is not None and self.backend != "openai":
            raise ValueError("--base-url only applies to --backend openai")
        check_template(self.template)


def run_synth(cfg: SynthConfig, *, backend: Any = None) -> dict:
    """`focalpo synth-prompts`: extract concepts, synthesise problems, write them; returns the counts."""
    from focalpo.generate.base import backend_from_config

    cfg.check()
    if Path(cfg.out).exists() and not cfg.overwrite:  # before any generation is paid for
        raise FileExistsError(f"{cfg.out} exists; pass --overwrite to replace it, or --out another path")
    concepts, scan = scan_sources(cfg.source_dir)
    if not concepts:
        raise ValueError(f"no concepts found under {cfg.source_dir} ({scan.files_parsed} files parsed, "
                         f"{len(scan.skipped)} skipped): no documented public functions or library calls")
    if backend is None:
        try:
            backend = backend_from_config(cfg)
        except TypeError as e:  # an option the backend does not take
            raise ValueError(str(e)) from None
    problems, stats = synthesize_problems(
        backend, concepts, n_problems=cfg.n_problems, per_prompt=cfg.concepts_per_prompt,
        seed=cfg.seed, template=cfg.template, temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens)
    write_problems(cfg.out, problems, overwrite=cfg.overwrite)
    n_api = sum(c.kind == "api" for c in concepts)
    return {"concepts": len(concepts), "functions": len(concepts) - n_api, "apis": n_api,
            "files_parsed": scan.files_parsed, "files_skipped": len(scan.skipped), "prompts": stats.prompts,
            "problems": stats.kept, "rejected": dict(sorted(stats.rejected.items())), "out": cfg.out}


def format_summary(summary: dict) -> str:
    """The one-line report `focalpo synth-prompts` prints."""
    rejected = ", ".join(f"{r} {n}" for r, n in summary["rejected"].items()) or "none"
    return (f"synth-prompts: {summary['concepts']} concepts ({summary['functions']} functions, {summary['apis']} "
            f"APIs) from {summary['files_parsed']} files ({summary['files_skipped']} skipped as undecodable or "
            f"unparsable); {summary['prompts']} prompts sent, {summary['problems']} problems written to "
            f"{summary['out']}; rejected: {rejected}.")
