"""Session-wide test settings: `datasets` keeps its Arrow cache in a temporary folder, never ~/.cache.

Set before any test imports `datasets` (which reads HF_DATASETS_CACHE once, at import).
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_HF_CACHE = tempfile.mkdtemp(prefix="focalpo-hf-datasets-")
os.environ["HF_DATASETS_CACHE"] = _HF_CACHE


@pytest.fixture(scope="session", autouse=True)
def _hf_datasets_cache():
    yield
    shutil.rmtree(_HF_CACHE, ignore_errors=True)
