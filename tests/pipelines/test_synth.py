"""Focused-DPO phase 0/1 prompt synthesis: concept extraction, prompt building, answer parsing, the CLI path.

Run: .venv/bin/python -m pytest tests/pipelines/test_synth.py -q
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from focalpo.cli import build_parser
from focalpo.generate import get_backend
from focalpo.pipelines.synth import (
    Concept,
    RejectedAnswer,
    build_prompt,
    concept_groups,
    extract_concepts,
    parse_problem,
    scan_sources,
    synthesize_problems,
    write_problems,
)
from focalpo.problems.jsonl import load_jsonl
from focalpo.prompts import SYNTH_TEMPLATE

TEXTUTILS = '''"""Text helpers."""
import re
import collections as col
from itertools import groupby
from os import path


def slugify(text: str, sep="-") -> str:
    """Turn text into
    a URL slug.

    Lowercases and replaces runs of non-word characters.
    """
    return re.sub(r"\\W+", sep, text).strip(sep).lower()


def _private(x):
    """Hidden."""
    return re.sub("a", "b", x)


def undocumented(x):
    return col.Counter(x)


class Tally:
    """A counter."""

    def most_common_word(self, words, *, k=1):
        """The k most frequent words."""
        return col.Counter(words).most_common(k)

    def _helper(self):
        """Private method."""
        return os._exit(0)


def runs(xs):
    """Lengths of runs of equal items."""
    return [len(list(g)) for _, g in groupby(xs)] + [path.join("a", "b")]
'''

PKG_INIT = '''import json
import os.path
from textutils import slugify
from . import sibling


def load(s):
    """Parse JSON text."""
    return json.loads(s), slugify(s), sibling.f(), os.path.basename(s)


def _later(s):
    import decimal
    return os._exit(1), decimal(s)  # a private API; calling a module is no API
'''

GOOD_A = ("Problem:\nWrite `count_runs(xs: list) -> int` returning the number of maximal runs of equal items.\n"
          "Entry point: count_runs")
GOOD_B = "Implement `slug(s: str) -> str`, which lowercases s and joins its words with dashes.\n\nEntry point: slug"


def write_tree(root):
    """Two parsed files, one with a latin-1 cookie; a syntax error, a non-UTF-8 file, tests and a venv to skip."""
    (root / "textutils.py").write_text(TEXTUTILS)
    (root / "pkg").mkdir()
    (root / "pkg" / "__init__.py").write_text(PKG_INIT)
    (root / "legacy.py").write_bytes(b'# -*- coding: latin-1 -*-\ndef cafe():\n    """Caf\xe9 helper."""\n')
    (root / "broken.py").write_text("def f(:\n    pass\n")
    (root / "latin.py").write_bytes(b"s = '\xe9'\n")
    (root / "test_textutils.py").write_text('import re\ndef test_x():\n    """Doc."""\n    re.sub("a", "b", "c")\n')
    (root / "tests").mkdir()
    (root / "tests" / "helpers.py").write_text('import shutil\ndef helper():\n    """Doc."""\n    shutil.rmtree("x")\n')
    for venv in (".venv", "env"):
        (root / venv / "lib").mkdir(parents=True)
        (root / venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
        (root / venv / "lib" / "m.py").write_text('import os\ndef g():\n    """Doc."""\n    os.getcwd()\n')
    return root


def test_extract_concepts_exact(tmp_path):
    concepts, stats = scan_sources(write_tree(tmp_path))
    assert [(c.kind, c.name, c.path, c.line, c.signature, c.doc, c.count) for c in concepts] == [
        ("function", "legacy.cafe", "legacy.py", 2, "cafe()", "Café helper.", 1),
        ("function", "pkg.load", "pkg/__init__.py", 7, "load(s)", "Parse JSON text.", 1),
        ("function", "textutils.slugify", "textutils.py", 8, "slugify(text: str, sep='-') -> str",
         "Turn text into a URL slug.", 1),
        ("function", "textutils.Tally.most_common_word", "textutils.py", 29, "most_common_word(self, words, *, k=1)",
         "The k most frequent words.", 1),
        ("function", "textutils.runs", "textutils.py", 38, "runs(xs)", "Lengths of runs of equal items.", 1),
        # most used first; `textutils.slugify` (the tree's own module), `sibling.f` (relative import) and
        # `os._exit` (private), `decimal(s)` (a module) and textutils' `os._exit` (no `os` import) are no APIs
        ("api", "collections.Counter", "textutils.py", 23, "", "", 2),
        ("api", "re.sub", "textutils.py", 14, "", "", 2),
        ("api", "itertools.groupby", "textutils.py", 40, "", "", 1),
        ("api", "json.loads", "pkg/__init__.py", 9, "", "", 1),
        ("api", "os.path.basename", "pkg/__init__.py", 9, "", "", 1),
        ("api", "os.path.join", "textutils.py", 40, "", "", 1),
    ]
    assert stats.files_parsed == 3
    assert sorted(stats.skipped) == ["broken.py", "latin.py"]
    assert stats.skipped["broken.py"].startswith("does not parse: ")
    assert stats.skipped["latin.py"].startswith("does not decode: ")
    assert extract_concepts(tmp_path) == concepts


def test_extract_concepts_options(tmp_path):
    write_tree(tmp_path)
    names = lambda cs: [c.name for c in cs]  # noqa: E731
    private = extract_concepts(tmp_path, include_private=True)
    assert names(private) == [
        "legacy.cafe", "pkg.load", "textutils.slugify", "textutils._private", "textutils.Tally.most_common_word",
        "textutils.Tally._helper", "textutils.runs", "collections.Counter", "re.sub", "itertools.groupby",
        "json.loads", "os._exit", "os.path.basename", "os.path.join"]
    with_tests = {c.name: c for c in extract_concepts(tmp_path, include_tests=True)}
    assert "test_textutils.test_x" in with_tests and "tests.helpers.helper" in with_tests
    assert with_tests["re.sub"].count == 3 and with_tests["shutil.rmtree"].path == "tests/helpers.py"
    assert "env.lib.m.g" not in with_tests and "os.getcwd" not in with_tests  # venvs stay pruned
    # the first file only (sorted: broken.py); the tree's own modules are still no APIs
    assert extract_concepts(tmp_path, max_files=1) == []
    assert names(extract_concepts(tmp_path, max_files=4)) == ["legacy.cafe", "pkg.load", "json.loads",
                                                              "os.path.basename"]
    with pytest.raises(FileNotFoundError, match="no-such-dir: no such directory"):
        extract_concepts(tmp_path / "no-such-dir")


def concepts_for_tests(k=8):
    return [Concept("api", f"mod.f{i}", "mod.py", i + 1) for i in range(k)]


def test_build_prompt_replaces_fields_only():
    fn = Concept("function", "t.slugify", "t.py", 3, "slugify(text)", "Make a slug.")
    template = 'Use {n} concepts:\n{concepts}\nAnswer as JSON {"name": ...} with {other}.'
    assert build_prompt(template, [fn, concepts_for_tests(1)[0]]) == (
        "Use 2 concepts:\n- the function `slugify(text)`: Make a slug.\n- the library call `mod.f0`\n"
        'Answer as JSON {"name": ...} with {other}.'
    )
    assert "- the library call `mod.f0`\n\nRequirements:" in build_prompt(SYNTH_TEMPLATE, concepts_for_tests(1))
    with pytest.raises(ValueError, match=r"no \{concepts\} field"):
        build_prompt("Write a problem about {n} things.", [fn])


def test_concept_groups_deal_every_concept_before_repeating():
    concepts = concepts_for_tests(8)
    groups = concept_groups(concepts, per_prompt=2, n_prompts=6, seed=3)
    assert groups == concept_groups(concepts, 2, 6, 3) and groups != concept_groups(concepts, 2, 6, 4)
    assert [len(g) for g in groups] == [2] * 6 and all(g[0] != g[1] for g in groups)
    assert sorted(c.name for g in groups[:4] for c in g) == [c.name for c in concepts]  # one full deck
    assert [len(g) for g in concept_groups(concepts[:3], 5, 2, 0)] == [3, 3]  # capped at the pool size
    assert concept_groups(concepts, 2, 0, 0) == []
    with pytest.raises(ValueError, match="no concepts"):
        concept_groups([], 2, 1, 0)
    with pytest.raises(ValueError, match="per_prompt must be >= 1, got 0"):
        concept_groups(concepts, 0, 1, 0)


@pytest.mark.parametrize("answer, expected", [
    (GOOD_A, ("Write `count_runs(xs: list) -> int` returning the number of maximal runs of equal items.",
              "count_runs")),
    ("```markdown\n## Problem\nImplement `slug(s: str) -> str`, which lowercases s and joins words.\n\n"
     "**Entry point:** `slug`\n```",
     ("Implement `slug(s: str) -> str`, which lowercases s and joins words.", "slug")),
    ("Given a list, return it sorted without duplicates.\n```python\ndef uniq_sorted(xs):\n```\n",
     ("Given a list, return it sorted without duplicates.\n```python\ndef uniq_sorted(xs):\n```", "uniq_sorted")),
    ("Problem: Return the sum of the squares of the even numbers of a list.\r\n",
     ("Return the sum of the squares of the even numbers of a list.", None)),
])
def test_parse_problem_good(answer, expected):
    assert parse_problem(answer) == expected


@pytest.mark.parametrize("answer, reason", [
    ("", "empty"),
    ("  \n\t", "empty"),
    ("```\n\n```", "no_statement"),
    ("Problem:\nEntry point: f", "no_statement"),
    ("Problem:\nSort a list.\nEntry point: sort_list", "too_short"),
])
def test_parse_problem_rejects(answer, reason):
    with pytest.raises(RejectedAnswer) as e:
        parse_problem(answer)
    assert e.value.reason == reason and str(e.value).startswith(f"{reason}: ")


def test_synthesize_problems_end_to_end(tmp_path):
    concepts = concepts_for_tests(8)
    groups = concept_groups(concepts, 2, 4, seed=5)
    prompts = [build_prompt(SYNTH_TEMPLATE, g) for g in groups]
    backend = get_backend("scripted", completions={
        prompts[0]: [GOOD_A],
        prompts[1]: [GOOD_A.replace(" ", "  ").replace("\n", "\n\n")],  # duplicate up to whitespace
        prompts[2]: ["Problem:\nToo short.\nEntry point: f"],
        prompts[3]: [GOOD_B],
    })
    problems, stats = synthesize_problems(backend, concepts, n_problems=4, seed=5, temperature=0.7,
                                          max_new_tokens=64, prefix="demo", max_rounds=1)
    assert (stats.prompts, stats.kept, dict(stats.rejected)) == (4, 2, {"duplicate": 1, "too_short": 1})
    assert backend.calls == [{"prompts": prompts, "n": 1, "temperature": 0.7, "top_p": 1.0, "max_new_tokens": 64,
                              "stop": [], "seed": 5}]
    assert problems == [
        {"task_id": "demo/0", "prompt": parse_problem(GOOD_A)[0], "entry_point": "count_runs", "tests": [],
         "meta": {"concepts": [c.name for c in groups[0]], "source": "synth-prompts"}},
        {"task_id": "demo/1", "prompt": parse_problem(GOOD_B)[0], "entry_point": "slug", "tests": [],
         "meta": {"concepts": [c.name for c in groups[3]], "source": "synth-prompts"}},
    ]
    out = tmp_path / "sub" / "problems.jsonl"
    assert write_problems(out, problems) == 2
    assert [json.loads(line) for line in out.read_text().splitlines()] == problems
    loaded = load_jsonl(out)
    assert [(p.task_id, p.entry_point, p.tests, p.meta["concepts"]) for p in loaded] == [
        ("demo/0", "count_runs", {"base": []}, [c.name for c in groups[0]]),
        ("demo/1", "slug", {"base": []}, [c.name for c in groups[3]]),
    ]
    assert loaded[1].prompt == "Implement `slug(s: str) -> str`, which lowercases s and joins its words with dashes."


def test_synthesize_problems_retries_the_shortfall():
    """Every answer is the same: round 1 keeps 1 of 3, rounds 2 and 3 ask for the 2 missing, all duplicates."""
    backend = get_backend("scripted", default=[GOOD_A])
    problems, stats = synthesize_problems(backend, concepts_for_tests(8), n_problems=3, seed=2)
    assert (len(problems), stats.prompts, stats.kept, dict(stats.rejected)) == (1, 7, 1, {"duplicate": 6})
    assert [(len(c["prompts"]), c["seed"]) for c in backend.calls] == [(3, 2), (2, 3), (2, 4)]
    with pytest.raises(ValueError, match="n_problems must be >= 1, got 0"):
        synthesize_problems(backend, concepts_for_tests(8), n_problems=0)
    with pytest.raises(ValueError, match=r"\{concepts\}"):
        synthesize_problems(backend, concepts_for_tests(8), n_problems=1, template="no field")


def test_write_problems_refuses_to_overwrite(tmp_path):
    out = tmp_path / "p.jsonl"
    first = [{"task_id": "s/0", "prompt": "a", "entry_point": None, "tests": [], "meta": {}}]
    write_problems(out, first)
    with pytest.raises(FileExistsError, match=rf"{out} exists; pass overwrite=True \(--overwrite\)"):
        write_problems(out, [])
    assert json.loads(out.read_text()) == first[0]
    assert write_problems(out, [], overwrite=True) == 0 and out.read_text() == ""


def run(argv: list[str]) -> int:
    """`focalpo synth-prompts ARGV` with the CLI's errors raised, not turned into exit code 2."""
    args = build_parser().parse_args(["synth-prompts", *argv])
    return args.func(args)


def test_run_through_argparse(tmp_path, capsys):
    (tmp_path / "tree").mkdir()
    src, out = write_tree(tmp_path / "tree"), tmp_path / "out.jsonl"
    argv = ["--source-dir", str(src), "--out", str(out), "--backend", "scripted", "--n-problems", "2",
            "--backend-option", "default=" + json.dumps([GOOD_A, GOOD_B])]
    assert run(argv) == 0
    assert capsys.readouterr().out == (
        "synth-prompts: 11 concepts (5 functions, 6 APIs) from 3 files (2 skipped as undecodable or unparsable); "
        f"4 prompts sent, 1 problems written to {out}; rejected: duplicate 3.\n"
    )
    assert [(p.task_id, p.entry_point) for p in load_jsonl(out)] == [("synth/0", "count_runs")]
    with pytest.raises(FileExistsError, match=f"{out} exists; pass --overwrite"):
        run(argv)
    template = tmp_path / "t.txt"
    template.write_text("Only {concepts}!")
    assert run([*argv, "--overwrite", "--template", str(template), "--seed", "1"]) == 0
    assert load_jsonl(out)[0].meta["source"] == "synth-prompts"


def test_run_errors(tmp_path):
    write_tree(tmp_path)
    (tmp_path / "empty").mkdir()
    bad_template = tmp_path / "bad.txt"
    bad_template.write_text("A problem about {n} things")
    base = ["--out", str(tmp_path / "o.jsonl"), "--backend", "scripted", "--backend-option", 'default=["x"]']
    cases = [
        (["--source-dir", str(tmp_path / "nope")], FileNotFoundError, "nope: no such directory"),
        (["--source-dir", str(tmp_path / "empty")], ValueError, "no concepts found under"),
        (["--source-dir", str(tmp_path), "--template", str(bad_template)], ValueError, r"no \{concepts\} field"),
        (["--source-dir", str(tmp_path), "--template", str(tmp_path / "t")], FileNotFoundError, "no such file"),
        (["--source-dir", str(tmp_path), "--base-url", "http://x/v1"], ValueError, "only applies to --backend openai"),
        (["--source-dir", str(tmp_path), "--backend-option", "batch_size=2"], ValueError, r"no option\(s\)"),
    ]
    for extra, error, message in cases:
        with pytest.raises(error, match=message):
            run([*base, *extra])
    with pytest.raises(ValueError, match="--model is required with --backend hf"):
        run(["--source-dir", str(tmp_path), "--out", str(tmp_path / "o.jsonl")])
    assert not (tmp_path / "o.jsonl").exists()


def test_import_is_light():
    code = "import sys, focalpo.pipelines.synth; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
