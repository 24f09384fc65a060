"""Shared helpers of the generation backends (focalpo.generate.base).

Run: .venv/bin/python -m pytest tests/generate/test_base.py -q
"""

from __future__ import annotations

import pytest

from focalpo.generate.base import parse_backend_option


def test_parse_backend_option():
    assert parse_backend_option("batch-size=16") == ("batch_size", 16)
    assert parse_backend_option("timeout=2.5") == ("timeout", 2.5)
    assert parse_backend_option("trust_remote_code=True") == ("trust_remote_code", True)
    assert parse_backend_option("dtype=bfloat16") == ("dtype", "bfloat16")
    assert parse_backend_option('default=["a=b"]') == ("default", ["a=b"])
    with pytest.raises(ValueError, match="expects key=value, got 'dtype'"):
        parse_backend_option("dtype")
