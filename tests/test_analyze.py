"""Tests of focalpo.analyze: Phi (hand table, brute-force Pearson), segments, the pooled table, CSV, CLI.

Run: .venv/bin/python -m pytest tests/test_analyze.py -q
"""

from __future__ import annotations

import csv
import json
import math
import random
import re
import statistics

import pytest

from focalpo.analyze import (
    SEGMENTS,
    Table2x2,
    contingency,
    error_concentration,
    format_table,
    pair_segments,
    phi_coefficient,
    problem_tables,
    write_csv,
)
from focalpo.cli import main

HEAD = "def f(x):\n"
TAIL = "# end\n"
A = HEAD + "    return x + 1\n" + TAIL  # correct
B = HEAD + "    return 1 + x\n" + TAIL  # correct
C = HEAD + "    return x - 1\n" + TAIL  # incorrect
PROBLEM = {"task_id": "t/0", "programs": [A, B, C], "correct": [True, True, False]}


# --------------------------------------------------------------------------------------------------
# Phi


def test_phi_hand_table():
    """n11 = 10, n10 = 5, n01 = 3, n00 = 12: margins n1. = 15, n0. = 15, n.1 = 13, n.0 = 17.

    phi = (10·12 − 5·3) / sqrt(15·15·13·17) = 105 / sqrt(49725) = 105 / 222.991 = 0.470870
    """
    assert phi_coefficient(Table2x2(10, 5, 3, 12)) == pytest.approx(0.470870, abs=1e-6)


def test_phi_limits_and_zero_margin():
    assert phi_coefficient(Table2x2(3, 0, 0, 4)) == 1.0  # contains <=> correct
    assert phi_coefficient(Table2x2(0, 3, 4, 0)) == -1.0  # contains <=> incorrect
    assert phi_coefficient(Table2x2(2, 1, 0, 0)) == 0.0  # every program contains it: margin n0. = 0
    assert phi_coefficient(Table2x2()) == 0.0


@pytest.mark.parametrize("seed", range(20))
def test_phi_equals_pearson_of_binary_vectors(seed):
    rng = random.Random(seed)
    n = rng.randint(2, 30)
    contains = [rng.random() < 0.5 for _ in range(n)]
    correct = [rng.random() < 0.5 for _ in range(n)]
    phi = phi_coefficient(contingency(contains, correct))
    if len(set(contains)) < 2 or len(set(correct)) < 2:
        assert phi == 0.0  # Pearson is undefined (a constant vector); we return 0
    else:
        pearson = statistics.correlation([float(x) for x in contains], [float(y) for y in correct])
        assert phi == pytest.approx(pearson, abs=1e-12)


def test_contingency_counts_cells():
    # (contains, correct): (T,T) (T,F) (F,T) (F,T) (F,F)
    assert contingency([1, 1, 0, 0, 0], [1, 0, 1, 1, 0]) == Table2x2(n11=1, n10=1, n01=2, n00=1)
    with pytest.raises(ValueError, match="3 'contains' flags for 2"):
        contingency([1, 1, 0], [1, 0])


# --------------------------------------------------------------------------------------------------
# segments and tables


def test_pair_segments():
    segs = pair_segments(A, C)
    assert segs == {
        "common_prefix": ("starts", HEAD),
        "common_suffix": ("ends", TAIL),
        "prefix+chosen_mid": ("starts", HEAD + "    return x + 1\n"),
        "prefix+rejected_mid": ("starts", HEAD + "    return x - 1\n"),
    }
    # the first line differs: no common prefix, so that segment is left out (everyone "contains" "")
    assert "common_prefix" not in pair_segments("a\n" + TAIL, "b\n" + TAIL)
    # char level: the prefix runs on into the middle line ("    return " + "x " vs "x ")
    assert pair_segments(A, C, unit="char")["common_prefix"] == ("starts", HEAD + "    return x ")


def test_problem_tables_by_hand():
    """Pairs (A, C) and (B, C); programs [A, B, C], correct [T, T, F].

    prefix HEAD / suffix TAIL: all three contain it -> (n11, n10, n01, n00) = (2, 1, 0, 0), phi 0.
    HEAD + A's middle: only A -> (1, 0, 1, 1), phi = (1·1 − 0·1)/sqrt(1·2·2·1) = 0.5; same for B.
    HEAD + C's middle: only C -> (0, 1, 2, 0), phi = (0 − 1·2)/sqrt(1·2·2·1) = −1.
    """
    tables = problem_tables(PROBLEM["programs"], PROBLEM["correct"])
    assert tables["common_prefix"] == tables["common_suffix"] == [Table2x2(2, 1, 0, 0)] * 2
    assert tables["prefix+chosen_mid"] == [Table2x2(1, 0, 1, 1)] * 2
    assert tables["prefix+rejected_mid"] == [Table2x2(0, 1, 2, 0)] * 2
    assert phi_coefficient(Table2x2(1, 0, 1, 1)) == 0.5


def test_error_concentration_pooled_rows():
    """Pooled over the two pairs of PROBLEM (an all-correct problem adds nothing):

    prefix / suffix: (4, 2, 0, 0) -> correct_freq 4/6, incorrect_freq 2/6, phi 0 (margin n0. = 0)
    prefix+chosen_mid: (2, 0, 2, 2) -> correct_freq 1, phi = (2·2 − 0)/sqrt(2·4·4·2) = 4/8 = 0.5
    prefix+rejected_mid: (0, 2, 4, 0) -> incorrect_freq 1, phi = (0 − 2·4)/sqrt(2·4·4·2) = −1
    """
    all_correct = {"task_id": "t/1", "programs": [A, B], "correct": [True, True]}
    rows = {r.segment: r for r in error_concentration([PROBLEM, all_correct])}
    assert list(rows) == list(SEGMENTS)
    prefix = rows["common_prefix"]
    assert (prefix.problems, prefix.tables, prefix.n11, prefix.n10, prefix.n01, prefix.n00) == (1, 2, 4, 2, 0, 0)
    assert (prefix.correct_freq, prefix.incorrect_freq, prefix.phi) == (pytest.approx(2 / 3), pytest.approx(1 / 3), 0.0)
    assert rows["common_suffix"].phi == 0.0
    mid = rows["prefix+chosen_mid"]
    assert (mid.correct_freq, mid.phi, mid.mean_phi) == (1.0, 0.5, 0.5)
    bad = rows["prefix+rejected_mid"]
    assert (bad.incorrect_freq, bad.phi, bad.mean_phi) == (1.0, -1.0, -1.0)


def test_mean_phi_weighs_pairs_equally_while_phi_pools():
    """Problem 1 = PROBLEM (chosen_mid tables (1,0,1,1) twice); problem 2: [A, C] -> one table (1, 0, 0, 1).

    pooled (3, 0, 2, 3): phi = (3·3 − 0)/sqrt(3·5·5·3) = 9/15 = 0.6; mean_phi = (0.5 + 0.5 + 1)/3 = 2/3
    """
    second = {"task_id": "t/2", "programs": [A, C], "correct": [True, False]}
    row = {r.segment: r for r in error_concentration([PROBLEM, second])}["prefix+chosen_mid"]
    assert (row.n11, row.n10, row.n01, row.n00) == (3, 0, 2, 3)
    assert row.phi == pytest.approx(0.6) and row.mean_phi == pytest.approx(2 / 3)


def test_pass_matrix_records_use_pagerank_ground_truth():
    """A and B pass both tests, C only test 0: the top program (A) passes [0, 1] -> correct = [A, B]."""
    record = {"task_id": "t/0", "programs": [A, B, C], "pass_matrix": [[1, 1], [1, 1], [1, 0]]}
    assert error_concentration([record]) == error_concentration([PROBLEM])


def test_identical_texts_make_no_pair():
    rows = error_concentration([{"programs": [A, A], "correct": [True, False]}])
    assert all(r.tables == 0 and r.phi == 0.0 for r in rows)


@pytest.mark.parametrize(
    "record, message",
    [
        ({"programs": [A, B]}, "needs field 'correct'"),
        ({"programs": [A, B], "correct": [True]}, "field 'correct'"),
        ({"programs": "A", "correct": [True]}, "field 'programs'"),
        ({"programs": [A, B], "pass_matrix": [[True]]}, "1 rows for 2 programs"),
        ({"programs": [A], "pass_matrix": [[]]}, "no columns"),
    ],
)
def test_bad_records_name_the_record_and_field(record, message):
    with pytest.raises(ValueError, match=message) as err:
        error_concentration([record])
    assert str(err.value).startswith("record 0")


# --------------------------------------------------------------------------------------------------
# output


def test_format_table_and_csv(tmp_path):
    rows = error_concentration([PROBLEM])
    text = format_table(rows)
    lines = text.splitlines()
    assert len(lines) == 2 + len(SEGMENTS)
    assert lines[4].split() == ["prefix+chosen_mid", "1", "2", "1.000", "0.000", "0.500", "0.500"]
    path = tmp_path / "table.csv"
    write_csv(rows, path)
    read = list(csv.DictReader(open(path, encoding="utf-8")))
    assert [r["segment"] for r in read] == list(SEGMENTS)
    assert math.isclose(float(read[3]["phi"]), -1.0) and read[0]["n11"] == "4"  # 2 pairs x 2 correct programs


def test_cli(tmp_path, capsys):
    samples = tmp_path / "samples.jsonl"
    samples.write_text(json.dumps(PROBLEM) + "\n")
    out = tmp_path / "t.csv"
    assert main(["analyze", str(samples), "--out", str(out)]) == 0
    assert "prefix+rejected_mid" in capsys.readouterr().out and out.exists()
    before = out.read_bytes()
    assert main(["analyze", str(samples), "--out", str(out)]) == 2  # refuses to overwrite silently
    assert "t.csv exists; pass --overwrite" in capsys.readouterr().err and out.read_bytes() == before
    assert main(["analyze", str(samples), "--out", str(out), "--overwrite"]) == 0
    config = tmp_path / "analyze.yaml"  # the same options from a --config file, a flag overriding it
    config.write_text(f"samples: {samples}\nunit: char\nout: {out}\n")
    assert main(["analyze", "--config", str(config), "--overwrite"]) == 0
    assert "prefix+rejected_mid" in capsys.readouterr().out
    samples.write_text(json.dumps({"programs": [A]}) + "\n")
    assert main(["analyze", str(samples)]) == 2
    assert re.search(r"samples.jsonl:1: needs field", capsys.readouterr().err)
