"""The Focused-DPO commands chained through the CLI: synth-prompts -> focused (2 shards) -> merge -> view, analyze.

Run: .venv/bin/python -m pytest tests/pipelines/test_cli_chain.py -q
"""

from __future__ import annotations

import csv
import json

from focalpo.cli import main
from focalpo.pairs import read_pairs

STATEMENT = "Problem:\nWrite a function add(a, b) that returns the sum of the integers a and b, e.g. add(1, 2) == 3.\nEntry point: add"
GOOD = "```python\ndef add(a, b):\n    return a + b\nassert add(1, 2) == 3\n```"  # its assert is the test too
BAD = "```python\ndef add(a, b):\n    return a * b\n```"


def test_synth_focused_merge_analyze(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    (src / "util.py").write_text('import math\n\ndef area(r):\n    """Area of a circle."""\n    return math.pi * r * r\n')
    problems = tmp_path / "problems.jsonl"
    assert main(["synth-prompts", "--source-dir", str(src), "--out", str(problems), "--backend", "scripted",
                 "--backend-option", "default=" + json.dumps([STATEMENT]), "--n-problems", "1"]) == 0
    [problem] = [json.loads(line) for line in problems.read_text().splitlines()]
    assert problem["entry_point"] == "add"

    common = ["focused", "--benchmark", "jsonl", "--problems", str(problems), "--backend", "scripted",
              "--backend-option", "default=" + json.dumps([GOOD, BAD]), "--k", "2", "--k-tests", "1",
              "--workers", "1", "--no-progress"]
    for i in range(2):
        assert main(common + ["--shard", f"{i}/2", "--out", str(tmp_path / f"s{i}")]) == 0
    assert main(["merge", str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(tmp_path / "all")]) == 0
    [pair] = read_pairs(tmp_path / "all" / "pairs.jsonl")
    assert (pair.chosen, pair.rejected) == (GOOD, BAD)
    assert pair.chosen[pair.prefix_len : pair.chosen_suffix_start] == "    return a + b\nassert add(1, 2) == 3\n"

    assert main(["merge", str(tmp_path / "s0"), "--out", str(tmp_path / "all")]) == 2  # exists: refused
    assert "--overwrite" in capsys.readouterr().err

    assert main(["view", str(tmp_path / "all" / "pairs.jsonl"), "--out", str(tmp_path / "pairs.html")]) == 0
    page = (tmp_path / "pairs.html").read_text()  # the merged run's pair, its pass matrix from records.jsonl
    assert page.count('class="pair"') == 1 and "consensus" in page.lower() and "PageRank" in page

    assert main(["analyze", str(tmp_path / "all" / "records.jsonl"), "--out", str(tmp_path / "table.csv")]) == 0
    rows = {r["segment"]: r for r in csv.DictReader(open(tmp_path / "table.csv"))}
    # one correct and one incorrect program: the shared prefix says nothing, the middles everything
    assert float(rows["common_prefix"]["phi"]) == 0.0
    assert float(rows["prefix+chosen_mid"]["phi"]) == 1.0
    assert float(rows["prefix+rejected_mid"]["phi"]) == -1.0
