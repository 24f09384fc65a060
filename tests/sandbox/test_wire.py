"""Tests of focalpo.sandbox.wire: the frame reader and byte comparison of pickled outputs.

Run: .venv/bin/python -m pytest tests/sandbox/test_wire.py -q
"""

from __future__ import annotations


def test_frame_reader_reads_big_raw_bodies_in_place_only_when_allowed():
    """Pickled messages come out as bytes; a raw body (RAW header bit) waits until the reader's
    owner allows it, then a large one is read straight into its own buffer via target()/filled()."""
    import pickle
    import struct

    from focalpo.sandbox.wire import HEADER, IN_PLACE, RAW, FrameReader

    msg = pickle.dumps(("ran", 0, 0.5))
    body = bytes(range(256)) * (IN_PLACE // 128)
    stream = HEADER.pack(len(msg)) + msg + struct.pack("<I", len(body) | RAW) + body[:1000]
    reader = FrameReader()
    assert reader.feed(stream) == [msg] and reader.blocked and reader.target() is None
    reader.allow_raw()
    assert reader.feed(b"") == [] and not reader.blocked
    view = reader.target()
    assert len(view) == len(body) - 1000
    view[:] = body[1000:]
    (got,) = reader.filled(len(view))
    assert type(got) is bytearray and got == body and reader.target() is None
    small = struct.pack("<I", 3 | RAW) + b"abc"
    assert reader.feed(small) == [] and reader.blocked  # one permission, one raw frame
    reader.allow_raw()
    assert reader.feed(b"") == [bytearray(b"abc")]


def test_same_bytes_compares_any_buffer_pair():
    from focalpo.sandbox.wire import same_bytes

    data = b"x" * 1000 + b"y"
    forms = [data, bytearray(data), memoryview(data)]
    assert all(same_bytes(a, b) for a in forms for b in forms)
    other = [b"x" * 1001, bytearray(b"x" * 1001), memoryview(b"x" * 1001), b"x"]
    assert not any(same_bytes(a, b) for a in forms for b in other)
