"""Fixtures of the problem-layer tests: the shipped benchmarks, each loaded once per session (by task id).

The benchmark files are read from ../shared/data beside the checkout, or from $FOCALPO_DATA_DIR
(`problems_helpers.DATA`); tests that need them are marked `needs_data` and skipped without them.
Run: .venv/bin/python -m pytest tests/problems -q
"""

from __future__ import annotations


import pytest

from problems_helpers import BCB, HE, HEP, MBPP, by_id  # noqa: E402

from focalpo.problems import load_bigcodebench, load_humaneval, load_humaneval_plus, load_mbpp_plus  # noqa: E402


@pytest.fixture(scope="session")
def humaneval():
    return by_id(load_humaneval(HE))


@pytest.fixture(scope="session")
def humaneval_plus():
    return by_id(load_humaneval_plus(HEP))


@pytest.fixture(scope="session")
def mbpp_plus():
    return by_id(load_mbpp_plus(MBPP))


@pytest.fixture(scope="session")
def bigcodebench():
    return by_id(load_bigcodebench(BCB))
