"""Tests of focalpo.rank: bipartite PageRank (hand numbers, invariances, convergence), ground truth, pairs.

Run: .venv/bin/python -m pytest tests/test_rank.py -q
"""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from focalpo.pairs import PreferencePair, check_record
from focalpo.rank import (
    classify,
    common_length,
    focused_pairs,
    ground_truth_tests,
    pagerank_scores,
    pagerank_step,
    rank_order,
    ranks,
    select_pairs,
)

T, F = True, False
# 3 programs x 2 tests: program 0 passes both, program 1 passes test 0, program 2 passes nothing.
M3 = [[T, T], [T, F], [F, F]]


def _random_matrix(rng: random.Random, n_codes: int, n_tests: int, p: float = 0.5) -> list[list[bool]]:
    return [[rng.random() < p for _ in range(n_tests)] for _ in range(n_codes)]


# --------------------------------------------------------------------------------------------------
# PageRank: hand arithmetic


def test_one_iteration_by_hand():
    """d = 0.85; start codes 1/3 each, tests 1/2 each; deg(test) = [2, 1], deg(code) = [2, 1, 0].

    codes: c0 = 0.15/3 + 0.85·(0.5/2 + 0.5/1) = 0.05 + 0.6375 = 0.6875
           c1 = 0.05 + 0.85·(0.5/2) = 0.2625;  c2 = 0.05          (sum 1.0: nothing to renormalise)
    tests: t0 = 0.15/2 + 0.85·((1/3)/2 + (1/3)/1) = 0.075 + 0.425 = 0.5
           t1 = 0.075 + 0.85·((1/3)/2) = 0.075 + 0.141667 = 0.216667
           sum 0.716667 -> t0 = 0.5/0.716667 = 0.697674, t1 = 0.302326
    """
    codes, tests = pagerank_scores(M3, iterations=1)
    assert codes == pytest.approx([0.6875, 0.2625, 0.05])
    assert tests == pytest.approx([0.5 / (0.5 + 0.075 + 0.85 / 6), (0.075 + 0.85 / 6) / (0.5 + 0.075 + 0.85 / 6)])
    assert tests == pytest.approx([0.697674, 0.302326], abs=1e-6)


def test_zero_iterations_is_uniform_and_scores_sum_to_one():
    assert pagerank_scores(M3, iterations=0) == ([1 / 3] * 3, [0.5, 0.5])
    for k in (1, 5, 10):
        codes, tests = pagerank_scores(M3, iterations=k)
        assert sum(codes) == pytest.approx(1.0) and sum(tests) == pytest.approx(1.0)


def test_fixed_point_by_hand():
    """M3's fixed point: c2 -> 0 (only (1-d) kept, renormalised away), and with c = (a, 1-a), t = (b, 1-b):
    codes: a ∝ 0.15a + 0.85(b/2 + (1-b)),  1-a ∝ 0.15(1-a) + 0.85·b/2
    tests: b ∝ 0.15b + 0.85(a/2 + (1-a)),  1-b ∝ 0.15(1-b) + 0.85·a/2
    a = b = 2/3 solves both: c0 ∝ 0.1 + 0.85·(1/3 + 1/3) = 2/3, c1 ∝ 0.05 + 0.85/3 = 1/3 (sum 1).
    """
    codes, tests = pagerank_scores(M3, iterations=200)
    assert codes == pytest.approx([2 / 3, 1 / 3, 0.0], abs=1e-12)
    assert tests == pytest.approx([2 / 3, 1 / 3], abs=1e-12)


def test_d_zero_keeps_the_uniform_start():
    assert pagerank_scores(M3, d=0.0) == ([1 / 3] * 3, [0.5, 0.5])


# --------------------------------------------------------------------------------------------------
# invariances


@pytest.mark.parametrize("seed", range(5))
def test_permuting_codes_permutes_scores(seed):
    rng = random.Random(seed)
    m = _random_matrix(rng, 6, 4)
    perm = list(range(6))
    rng.shuffle(perm)
    codes, tests = pagerank_scores(m)
    p_codes, p_tests = pagerank_scores([m[i] for i in perm])
    assert p_codes == pytest.approx([codes[i] for i in perm], abs=1e-15)
    assert p_tests == pytest.approx(tests, abs=1e-15)


@pytest.mark.parametrize("seed", range(5))
def test_permuting_tests_permutes_scores(seed):
    rng = random.Random(seed)
    m = _random_matrix(rng, 5, 6)
    perm = list(range(6))
    rng.shuffle(perm)
    codes, tests = pagerank_scores(m)
    p_codes, p_tests = pagerank_scores([[row[j] for j in perm] for row in m])
    assert p_codes == pytest.approx(codes, abs=1e-15)
    assert p_tests == pytest.approx([tests[j] for j in perm], abs=1e-15)


@pytest.mark.parametrize("seed", range(10))
def test_isolated_test_and_code_score_lowest(seed):
    """A test no program passes keeps only (1-d) of its score each step; others also get d·(inflow) > 0."""
    rng = random.Random(seed)
    m = _random_matrix(rng, 6, 5, p=0.6)
    m[0] = [T] * 5  # every other test has an edge
    m[3] = [F] * 5  # program 3 passes nothing
    for row in m:
        row[2] = F  # test 2 is passed by nobody
    codes, tests = pagerank_scores(m)
    assert all(tests[2] < tests[j] for j in range(5) if j != 2)
    # other programs may pass nothing too (random rows): those tie with program 3, the rest are above
    assert all(codes[3] < codes[i] if any(m[i]) else codes[3] == codes[i] for i in range(6) if i != 3)


def test_identical_rows_get_identical_scores():
    m = [[T, F, T], [F, T, T], [T, F, T]]
    codes, _ = pagerank_scores(m)
    assert codes[0] == codes[2]


# --------------------------------------------------------------------------------------------------
# convergence


def test_more_iterations_change_scores_less():
    rng = random.Random(7)
    m = _random_matrix(rng, 10, 10, p=0.6)
    codes, tests = pagerank_scores(m, iterations=0)
    deltas = []
    for _ in range(30):
        new_codes, new_tests = pagerank_step(m, codes, tests)
        deltas.append(max(abs(a - b) for a, b in zip(codes + tests, new_codes + new_tests)))
        codes, tests = new_codes, new_tests
    assert deltas[-1] < 1e-9 < deltas[0]
    assert all(later <= earlier + 1e-15 for earlier, later in zip(deltas[5:], deltas[6:]))


def test_converged_scores_are_a_fixed_point():
    m = _random_matrix(random.Random(3), 8, 6, p=0.5)
    codes, tests = pagerank_scores(m, iterations=500)
    again = pagerank_step(m, codes, tests)
    assert again[0] == pytest.approx(codes, abs=1e-12) and again[1] == pytest.approx(tests, abs=1e-12)


# --------------------------------------------------------------------------------------------------
# degenerate inputs


@pytest.mark.parametrize(
    "matrix, message",
    [
        ([], "empty"),
        ([[]], "no columns"),
        ([[T, F], [T]], "row 1 has 1 entries"),
        ([[T, "yes"]], r"pass_matrix\[0\]\[1\]"),
    ],
)
def test_bad_matrices_raise_clear_errors(matrix, message):
    with pytest.raises(ValueError, match=message):
        pagerank_scores(matrix)


@pytest.mark.parametrize("kwargs, message", [({"d": 1.5}, "damping"), ({"iterations": -1}, "iterations")])
def test_bad_parameters_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pagerank_scores(M3, **kwargs)


def test_no_edges_stays_uniform_and_d_one_stays_zero():
    """No edges: each side is (1-d)·uniform, renormalised -> uniform. With d = 1 it sums to 0 and stays 0."""
    assert pagerank_scores([[F, F], [F, F]]) == ([0.5, 0.5], [0.5, 0.5])
    assert pagerank_scores([[F, F], [F, F]], d=1.0) == ([0.0, 0.0], [0.0, 0.0])


def test_single_cell():
    assert pagerank_scores([[T]]) == ([1.0], [1.0])
    assert pagerank_scores([[0]]) == ([1.0], [1.0])  # 0/1 accepted as booleans


# --------------------------------------------------------------------------------------------------
# ranks, ground truth, classify


def test_ranks_break_ties_by_index():
    assert ranks([0.2, 0.5, 0.2, 0.1]) == [2, 1, 3, 4]
    assert rank_order([0.25, 0.25 + 1e-15, 0.5]) == [2, 0, 1]  # within TIE_DECIMALS: a tie


def test_ground_truth_and_classify():
    codes, _ = pagerank_scores(M3)
    assert ground_truth_tests(M3, codes) == [0, 1]
    assert classify(M3, [0, 1]) == ([0], [1, 2])
    assert classify(M3, [0]) == ([0, 1], [2])
    assert classify(M3, []) == ([0, 1, 2], [])  # vacuous ground truth: all "correct"


def test_ground_truth_tie_takes_lowest_index():
    """Programs 0 and 1 are symmetric (each passes one own test): equal scores, program 0 is the top."""
    m = [[T, F], [F, T]]
    codes, _ = pagerank_scores(m)
    assert codes[0] == codes[1]
    assert ground_truth_tests(m, codes) == [0]


def test_classify_rejects_out_of_range_tests():
    with pytest.raises(ValueError, match="out of range"):
        classify(M3, [2])


# --------------------------------------------------------------------------------------------------
# pair selection

HEAD = "def f(x):\n    y = x\n"
TAIL = "    return y\n"
GOOD = HEAD + "    y += 1\n" + TAIL  # 4 lines
BAD_NEAR = HEAD + "    y -= 1\n" + TAIL  # differs from GOOD in one line: common 2 + 1 = 3 lines
BAD_FAR = "def f(x):\n    return x - 1\n"  # common prefix 1 line, suffix 0: 1 line


def test_common_length_units():
    """GOOD vs BAD_NEAR: prefix = 2 lines (10 + 10 = 20 chars), suffix = 1 line (13 chars)."""
    assert common_length(GOOD, BAD_NEAR, "line")[0] == 3
    # char level also matches "    y " before "+"/"-" and "= 1\n" after: 20 + 6 = 26, 4 + 13 = 17.
    assert common_length(GOOD, BAD_NEAR, "char")[0] == 26 + 17


def test_select_pairs_hand_example():
    """Scores -> ranks: GOOD(0) 1, BAD_FAR(1) 2, BAD_NEAR(2) 3.

    Diff(0, 2) = (3 - 1) + 1.0·3 = 5;  Diff(0, 1) = (2 - 1) + 1.0·1 = 2  -> (0, 2) first.
    With lam = 0: Diff(0, 2) = 2 > Diff(0, 1) = 1 still; max_pairs = 2 without reuse gives one pair
    (program 0 is the only correct one), with reuse both, in Diff order.
    """
    programs = [GOOD, BAD_FAR, BAD_NEAR]
    scores = [0.5, 0.3, 0.2]
    pairs = select_pairs("p", programs, scores, [0], [1, 2], task_id="t/0", pass_counts=[4, 2, 1])
    assert len(pairs) == 1
    pair = pairs[0]
    assert (pair.chosen, pair.rejected) == (GOOD, BAD_NEAR)
    # prefix 20 chars; middle "    y += 1\n" / "    y -= 1\n" (11 chars) -> suffix starts at 31 in both
    assert (pair.prefix_len, pair.chosen_suffix_start, pair.rejected_suffix_start) == (20, 31, 31)
    assert pair.meta["diff"] == 5 and pair.meta["common_length"] == 3
    assert (pair.meta["chosen_rank"], pair.meta["rejected_rank"]) == (1, 3)
    assert (pair.meta["chosen_passes"], pair.meta["rejected_passes"], pair.meta["task_id"]) == (4, 1, "t/0")
    check_record(pair.to_json(), "pair")  # boundaries are consistent with the texts

    assert len(select_pairs("p", programs, scores, [0], [1, 2], max_pairs=2)) == 1
    both = select_pairs("p", programs, scores, [0], [1, 2], max_pairs=2, reuse=True)
    assert [p.meta["rejected_index"] for p in both] == [2, 1]
    assert [p.meta["diff"] for p in both] == [5, 2]


def test_lambda_trades_rank_for_shared_context():
    """BAD_FAR ranked last (3), BAD_NEAR second (2): Diff(near) = 1 + 3λ, Diff(far) = 2 + 1λ.

    λ = 0 -> far (2 > 1); λ = 1 -> near (4 > 3); λ = 0.5 -> tie 2.5 = 2.5, broken by rejected rank: near.
    """
    programs, scores = [GOOD, BAD_FAR, BAD_NEAR], [0.5, 0.1, 0.3]
    pick = {lam: select_pairs("p", programs, scores, [0], [1, 2], lam=lam)[0].rejected for lam in (0, 0.5, 1)}
    assert pick == {0: BAD_FAR, 0.5: BAD_NEAR, 1: BAD_NEAR}


def test_select_pairs_each_program_once_per_side():
    """Two correct (A, B), two incorrect; greedy on Diff without reuse gives two disjoint pairs."""
    a, b = GOOD, GOOD.replace("x\n", "x  # copy\n", 1)
    programs = [a, b, BAD_NEAR, BAD_FAR]
    pairs = select_pairs("p", programs, [0.4, 0.3, 0.2, 0.1], [0, 1], [2, 3], max_pairs=5)
    assert len(pairs) == 2
    assert {p.meta["chosen_index"] for p in pairs} == {0, 1}
    assert {p.meta["rejected_index"] for p in pairs} == {2, 3}


def test_select_pairs_skips_identical_texts_and_validates():
    assert select_pairs("p", [GOOD, GOOD], [0.5, 0.5], [0], [1]) == []
    with pytest.raises(ValueError, match="both correct and incorrect"):
        select_pairs("p", [GOOD, BAD_FAR], [0.5, 0.5], [0], [0, 1])
    with pytest.raises(ValueError, match="unit"):
        select_pairs("p", [GOOD, BAD_FAR], [0.5, 0.5], [0], [1], unit="token")


def test_focused_pairs_end_to_end():
    """Program 0 passes all 3 tests (top rank); 1 fails test 2; 2 fails everything -> pair (0, 1) by Diff."""
    m = [[T, T, T], [T, T, F], [F, F, F]]
    pairs = focused_pairs("p", [GOOD, BAD_NEAR, BAD_FAR], m, task_id="x", max_pairs=1)
    assert len(pairs) == 1 and isinstance(pairs[0], PreferencePair)
    assert pairs[0].rejected == BAD_NEAR
    assert pairs[0].meta["n_ground_truth_tests"] == 3 and pairs[0].meta["rejected_passes"] == 2


def test_import_is_light():
    code = "import sys, focalpo, focalpo.rank; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
