"""Tests of focalpo.report.evidence: when a focused pair's labels rest on thin evidence.

Run: .venv/bin/python -m pytest -q tests/report/test_evidence.py
"""

from __future__ import annotations

from focalpo.report.evidence import thin_evidence


def test_thin_evidence_ties_and_single_consensus_test():
    """p0 and p1 score 0.4 with different pass rows: the consensus is p0's by index; chosen p0 ties with p1."""
    record = {"pass_matrix": [[True, False], [False, True], [False, False]], "code_scores": [0.4, 0.4, 0.2],
              "ground_truth_tests": [0]}
    flags = thin_evidence(record, {"chosen_index": 0, "rejected_index": 2, "chosen_rank": 1})
    assert any(f.startswith("PageRank tie at the top: p0 and p1") for f in flags)
    assert any(f.startswith("chosen p0 ties in PageRank with p1") for f in flags)
    assert any("consensus is one test (t0)" in f for f in flags)
    assert thin_evidence(None, {"chosen_index": 0, "rejected_index": 1, "chosen_score": 0.3, "rejected_score": 0.3})
    assert thin_evidence(None, {"chosen_iteration": 2}) == []


def test_well_supported_pair_has_no_flag():
    """p0 passes both tests, p1 confirms each of them with p0, scores are distinct: nothing to flag."""
    record = {"pass_matrix": [[True, True], [True, True], [False, False]], "code_scores": [0.45, 0.35, 0.2],
              "ground_truth_tests": [0, 1]}
    assert thin_evidence(record, {"chosen_index": 0, "rejected_index": 2, "chosen_rank": 1}) == []
