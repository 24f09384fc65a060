"""Focused-DPO's ranking step: bipartite PageRank over a pass matrix, ground truth, pair selection.

    >>> pass_matrix = [[True, True], [True, False], [False, False]]   # 3 programs x 2 tests
    >>> code_scores, test_scores = pagerank_scores(pass_matrix)
    >>> gt = ground_truth_tests(pass_matrix, code_scores); gt
    [0, 1]
    >>> classify(pass_matrix, gt)
    ([0], [1, 2])

Then `select_pairs(prompt, programs, code_scores, correct, incorrect)` returns
`focalpo.pairs.PreferencePair` records with Focused-DPO's prefix/suffix boundaries;
`focused_selection(prompt, programs, pass_matrix)` runs every step at once (`focused_pairs`: its pairs). Pure Python (no numpy): k = 10 programs x 10 tests is tiny.

Method (Focused-DPO, arXiv 2502.11475, ranking taken from CodeDPO, arXiv 2410.05605):

- `pagerank_scores`: code-test bipartite graph, edge (c, t) when program c passes test t;
  `s(c) <- (1-d)·s(c) + d·Σ_t s(t)·link(t,c)` and `s(t) <- (1-d)·s(t) + d·Σ_c s(c)·link(c,t)`,
  d = 0.85, 10 iterations. Choices the papers leave open (documented here, tested in
  tests/test_rank.py):
  * initialisation: uniform, 1/n_codes per program and 1/n_tests per test;
  * link(t,c) = 1/deg(t) (deg(t) = programs passing t), link(c,t) = 1/deg(c), as in PageRank: a
    node spreads its score evenly over its edges, so a test every program passes vouches less
    for each;
  * updates are synchronous (both sides from the previous iteration's scores);
  * after every iteration each side is renormalised to sum 1 (mass leaks at isolated nodes:
    a program passing nothing only keeps (1-d) of its score). With d = 1 and no edges at all a
    side sums to 0 and is left at 0.
- `rank_order` / `ranks`: higher score first; scores equal after rounding to `TIE_DECIMALS`
  decimals are ties (identical pass rows give bitwise-equal scores, other equal ones may differ
  in the last bit), broken by the lower index. Ranks are ordinal, 1 = best.
- `ground_truth_tests`: the tests passed by the top-ranked program; `classify`: programs passing
  all of them are correct, the rest incorrect. When the top program passes no test, every
  program is "correct" (vacuous) and no pair can be formed.
- `select_pairs`: `Diff = (rank(rejected) - rank(chosen)) + lam·(common prefix + suffix length)`,
  lengths from `focalpo.localize.common_prefix_suffix` in `unit` (lines by default: Focused-DPO
  matches code structure, and a line count is on the scale of ranks 1..k). `lam = 1.0` by
  default: an assumption, the paper does not publish λ (one shared line is worth one rank
  place). Candidates sorted by Diff desc, then chosen rank, then rejected rank (asc); taken
  greedily, at most `max_pairs` (default 1) per problem, each program at most once per side
  unless `reuse=True`. Pairs whose two texts are equal are skipped (no middle to focus on).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from focalpo.localize import UNITS, common_prefix_suffix
from focalpo.pairs import PreferencePair, Text

TIE_DECIMALS = 12
DAMPING = 0.85  # CodeDPO / Focused-DPO
ITERATIONS = 10  # CodeDPO / Focused-DPO
LAM = 1.0  # assumption: Focused-DPO does not publish λ
PassMatrix = Sequence[Sequence[bool]]


# --------------------------------------------------------------------------------------------------
# PageRank on the code-test bipartite graph


def check_pass_matrix(pass_matrix: PassMatrix) -> tuple[int, int]:
    """(n_codes, n_tests) of a non-empty rectangular matrix of booleans (0/1 accepted); else ValueError."""
    if len(pass_matrix) == 0:
        raise ValueError("pass_matrix is empty: need at least one program (row)")
    n_tests = len(pass_matrix[0])
    if n_tests == 0:
        raise ValueError("pass_matrix has no columns: need at least one test")
    for i, row in enumerate(pass_matrix):
        if len(row) != n_tests:
            raise ValueError(f"pass_matrix row {i} has {len(row)} entries, row 0 has {n_tests}: not rectangular")
        for j, x in enumerate(row):
            if x not in (True, False):  # 0 and 1 compare equal to False and True
                raise ValueError(f"pass_matrix[{i}][{j}] = {x!r} is not a boolean")
    return len(pass_matrix), n_tests


def _normalised(scores: list[float]) -> list[float]:
    total = sum(scores)
    return [s / total for s in scores] if total > 0 else scores


def pagerank_step(
    pass_matrix: PassMatrix, code_scores: Sequence[float], test_scores: Sequence[float], d: float = DAMPING
) -> tuple[list[float], list[float]]:
    """One synchronous update of both sides, then each side renormalised to sum 1 (see module doc)."""
    n_codes, n_tests = len(pass_matrix), len(pass_matrix[0])
    code_deg = [sum(1 for x in row if x) for row in pass_matrix]
    test_deg = [sum(1 for i in range(n_codes) if pass_matrix[i][j]) for j in range(n_tests)]
    # s(c) <- (1-d) s(c) + d Σ_t s(t) / deg(t)   (CodeDPO, arXiv 2410.05605)
    new_codes = [
        (1 - d) * code_scores[i]
        + d * sum(test_scores[j] / test_deg[j] for j in range(n_tests) if pass_matrix[i][j])
        for i in range(n_codes)
    ]
    new_tests = [
        (1 - d) * test_scores[j]
        + d * sum(code_scores[i] / code_deg[i] for i in range(n_codes) if pass_matrix[i][j])
        for j in range(n_tests)
    ]
    return _normalised(new_codes), _normalised(new_tests)


def pagerank_scores(
    pass_matrix: PassMatrix, d: float = DAMPING, iterations: int = ITERATIONS
) -> tuple[list[float], list[float]]:
    """(code_scores, test_scores), each summing to 1: `iterations` steps from uniform scores."""
    n_codes, n_tests = check_pass_matrix(pass_matrix)
    if not 0.0 <= d <= 1.0:
        raise ValueError(f"damping d must lie in [0, 1], got {d}")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        raise ValueError(f"iterations must be a non-negative integer, got {iterations!r}")
    codes, tests = [1.0 / n_codes] * n_codes, [1.0 / n_tests] * n_tests
    for _ in range(iterations):
        codes, tests = pagerank_step(pass_matrix, codes, tests, d)
    return codes, tests


# --------------------------------------------------------------------------------------------------
# ranks, ground truth, correctness


def rank_order(scores: Sequence[float]) -> list[int]:
    """Indices best first: score desc (equal after rounding to TIE_DECIMALS = tie), then index asc."""
    return sorted(range(len(scores)), key=lambda i: (-round(scores[i], TIE_DECIMALS), i))


def ranks(scores: Sequence[float]) -> list[int]:
    """Ordinal rank of each index, 1 = best; [0.2, 0.5, 0.2, 0.1] -> [2, 1, 3, 4]."""
    out = [0] * len(scores)
    for position, i in enumerate(rank_order(scores), start=1):
        out[i] = position
    return out


def ground_truth_tests(pass_matrix: PassMatrix, code_scores: Sequence[float]) -> list[int]:
    """Indices of the tests passed by the top-ranked program (ties: lowest index)."""
    n_codes, n_tests = check_pass_matrix(pass_matrix)
    if len(code_scores) != n_codes:
        raise ValueError(f"{len(code_scores)} code scores for {n_codes} programs")
    top = rank_order(code_scores)[0]
    return [j for j in range(n_tests) if pass_matrix[top][j]]


def classify(pass_matrix: PassMatrix, gt_tests: Sequence[int]) -> tuple[list[int], list[int]]:
    """(correct, incorrect) program indices: correct = passes every ground-truth test."""
    n_codes, n_tests = check_pass_matrix(pass_matrix)
    bad = [j for j in gt_tests if not 0 <= j < n_tests]
    if bad:
        raise ValueError(f"ground-truth test index {bad[0]} out of range for {n_tests} tests")
    correct = [i for i in range(n_codes) if all(pass_matrix[i][j] for j in gt_tests)]
    chosen = set(correct)
    return correct, [i for i in range(n_codes) if i not in chosen]


# --------------------------------------------------------------------------------------------------
# pair selection


def common_length(chosen: str, rejected: str, unit: str = "line") -> tuple[int, Any]:
    """(common prefix + suffix length in `unit`, the PrefixSuffix boundaries)."""
    ps = common_prefix_suffix(chosen, rejected, unit=unit)
    prefix, suffix = chosen[: ps.prefix_len], chosen[ps.chosen_suffix_start :]
    if unit == "line":  # both boundaries fall at line starts: whole lines
        return len(prefix.splitlines()) + len(suffix.splitlines()), ps
    return len(prefix) + len(suffix), ps


def select_pairs(
    prompt: Text,
    programs: Sequence[str],
    code_scores: Sequence[float],
    correct: Sequence[int],
    incorrect: Sequence[int],
    *,
    lam: float = LAM,
    max_pairs: int = 1,
    unit: str = "line",
    reuse: bool = False,
    task_id: str | None = None,
    pass_counts: Sequence[int] | None = None,
) -> list[PreferencePair]:
    """Focused-DPO pairs (chosen from `correct`, rejected from `incorrect`) maximising Diff (module doc).

    `programs` are the completion texts the pair records store (prefix/suffix are matched on them).
    """
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    if max_pairs < 0:
        raise ValueError(f"max_pairs must be >= 0, got {max_pairs}")
    if len(code_scores) != len(programs):
        raise ValueError(f"{len(code_scores)} code scores for {len(programs)} programs")
    if set(correct) & set(incorrect):
        raise ValueError(f"programs {sorted(set(correct) & set(incorrect))} are both correct and incorrect")
    rank = ranks(code_scores)
    candidates = []
    for c in correct:
        for r in incorrect:
            if programs[c] == programs[r]:
                continue
            length, ps = common_length(programs[c], programs[r], unit)
            diff = (rank[r] - rank[c]) + lam * length
            candidates.append((-diff, rank[c], rank[r], c, r, length, ps))
    candidates.sort(key=lambda x: x[:3])
    pairs, used_c, used_r = [], set(), set()
    for neg_diff, _, _, c, r, length, ps in candidates:
        if len(pairs) >= max_pairs:
            break
        if not reuse and (c in used_c or r in used_r):
            continue
        used_c.add(c)
        used_r.add(r)
        meta = {
            "task_id": task_id,
            "chosen_index": c,
            "rejected_index": r,
            "chosen_rank": rank[c],
            "rejected_rank": rank[r],
            "chosen_score": code_scores[c],
            "rejected_score": code_scores[r],
            "diff": -neg_diff,
            "common_length": length,
            "unit": unit,
            "lam": lam,
            "localize": {"method": "prefix-suffix", "unit": unit},
        }
        if pass_counts is not None:
            meta["chosen_passes"], meta["rejected_passes"] = pass_counts[c], pass_counts[r]
        pairs.append(
            PreferencePair(
                prompt,
                programs[c],
                programs[r],
                prefix_len=ps.prefix_len,
                chosen_suffix_start=ps.chosen_suffix_start,
                rejected_suffix_start=ps.rejected_suffix_start,
                meta=meta,
            )
        )
    return pairs


@dataclass
class Selection:
    """Every intermediate of Focused-DPO's selection for one problem (see `focused_selection`)."""

    code_scores: list[float]
    test_scores: list[float]
    ground_truth: list[int]  # test indices
    correct: list[int]  # program indices
    incorrect: list[int]
    pairs: list[PreferencePair]


def focused_selection(
    prompt: Text,
    programs: Sequence[str],
    pass_matrix: PassMatrix,
    *,
    task_id: str | None = None,
    d: float = DAMPING,
    iterations: int = ITERATIONS,
    **options: Any,
) -> Selection:
    """All of Focused-DPO's selection for one problem: PageRank -> ground truth -> classify -> pairs.

    `options` go to `select_pairs` (lam, max_pairs, unit, reuse).
    """
    n_codes, n_tests = check_pass_matrix(pass_matrix)
    if len(programs) != n_codes:
        raise ValueError(f"{len(programs)} programs for a pass matrix of {n_codes} rows")
    code_scores, test_scores = pagerank_scores(pass_matrix, d=d, iterations=iterations)
    gt = ground_truth_tests(pass_matrix, code_scores)
    correct, incorrect = classify(pass_matrix, gt)
    pass_counts = [sum(1 for x in row if x) for row in pass_matrix]
    pairs = select_pairs(
        prompt, programs, code_scores, correct, incorrect, task_id=task_id, pass_counts=pass_counts, **options
    )
    for pair in pairs:
        pair.meta.update({"n_tests": n_tests, "n_ground_truth_tests": len(gt)})
    return Selection(code_scores, test_scores, gt, correct, incorrect, pairs)


def focused_pairs(prompt: Text, programs: Sequence[str], pass_matrix: PassMatrix, **options: Any) -> list[PreferencePair]:
    """The pairs of `focused_selection` (same arguments)."""
    return focused_selection(prompt, programs, pass_matrix, **options).pairs
