"""Tests of focalpo.io: a failed write never touches the existing file or leaves a temp file.

Run: .venv/bin/python -m pytest tests/test_io.py -q
"""

from __future__ import annotations

import os
import stat

import pytest

from focalpo.io import atomic_path, atomic_write_bytes


def test_write_replaces_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "sub" / "out.bin"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.bin"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="crash"):
        with atomic_path(target) as tmp:
            tmp.write_text("half of the new")
            assert tmp.parent == target.parent and tmp != target
            raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_written_files_get_the_mode_open_would_give(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write_bytes(tmp_path / "a.json", b"{}")
        (tmp_path / "b.json").write_bytes(b"{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == stat.S_IMODE((tmp_path / "b.json").stat().st_mode)
