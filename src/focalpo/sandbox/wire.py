"""The byte format between a sandboxed job and the trusted parent.

The job writes length-prefixed frames to a dedicated pipe (not stdout: printed text can never pose
as a result). Values cross as pickles, but the parent decodes them with `safe_loads`, an unpickler
that resolves no global except a short allow-list of value types, so bytes forged by a hostile
program can at worst fail to decode; they cannot run code or produce an object with a custom
`__eq__`. Before pickling, the job replaces anything that is not a plain builtin value (exact
types, checked recursively) by an `Opaque` stand-in naming its type. A big return value's pickle
travels bare, as a "raw" frame right after the job's ("ran", test, seconds) notice, so that
neither side copies hundreds of MB into and out of a message; it is decoded the same way.
"""

from __future__ import annotations

from focalpo.sandbox._builtins import BUILTINS as __builtins__  # noqa: F401 - a program's patches never reach the harness

import collections
import io
import pickle
import struct
from typing import Any

HEADER = struct.Struct("<I")
MAX_FRAME = 1 << 30  # a frame larger than this is treated as a protocol violation
RAW = 1 << 31  # header bit: the body is raw bytes, not a pickled message
IN_PLACE = 1 << 16  # raw bodies from this size on are read straight into their own buffer


class Opaque:
    """Stand-in for a returned object that is not a plain value (a generator, a custom class ...).

    It never equals anything, so it can only pass a test whose oracle asks for "not None".
    """

    __slots__ = ("type_name",)

    def __init__(self, type_name: str):
        self.type_name = str(type_name)[:200]

    def __eq__(self, other: object) -> bool:
        return False

    def __ne__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"<{self.type_name} object>"

    def __reduce__(self):
        return (Opaque, (self.type_name,))


_SCALARS = (int, float, bool, str, bytes, type(None), complex)
SCALAR_TYPES = frozenset(_SCALARS)
_CONTAINERS = (list, tuple, set, frozenset)
_STDLIB_DICTS = (collections.Counter, collections.OrderedDict, collections.defaultdict)


def to_plain(x: Any, _depth: int = 0) -> Any:
    """Job side: a copy of `x` made only of exact builtin types, or `Opaque` stand-ins.

    numpy scalars become Python scalars (`np.float64(0.5) == 0.5` in numpy too); anything else
    that is not plain, subclasses of builtins included, becomes `Opaque`.
    """
    t = type(x)
    if t in _SCALARS:
        return x
    if _depth > 200:
        return Opaque("deeply nested value")
    if t in _CONTAINERS:
        if SCALAR_TYPES.issuperset(map(type, x)):
            return x  # already plain: the common case of a long list of numbers or strings
        return t(to_plain(v, _depth + 1) for v in x)
    if t is dict or t in _STDLIB_DICTS:
        # Counter/OrderedDict/defaultdict equal plain dicts with the same items (as in evalplus).
        return {to_plain(k, _depth + 1): to_plain(v, _depth + 1) for k, v in x.items()}
    if t.__module__ == "numpy" and hasattr(x, "item") and getattr(x, "ndim", None) == 0:
        return to_plain(x.item(), _depth + 1)
    return Opaque(f"{t.__module__}.{t.__qualname__}")


class Pickled:
    """A plain value held as its pickle (`pickle.dumps(value, HIGHEST_PROTOCOL)`), decoded lazily.

    Expected outputs of call tests are kept this way: a job sends its return value as a pickle
    too, and when the two byte strings are equal the values are equal (for plain values built
    the same way), so most passing tests are judged without decoding either side. Any mismatch
    falls back to decoding and the full comparison; byte equality is only ever a shortcut.
    """

    __slots__ = ("data", "_value")
    _UNSET: Any = object()

    def __init__(self, data: bytes | memoryview):
        if not isinstance(data, (bytes, memoryview)):
            raise TypeError(f"Pickled wants bytes or a memoryview, got {type(data).__name__}")
        self.data = data  # a memoryview: of the ground-truth cache's mapped side file
        self._value = Pickled._UNSET

    @classmethod
    def of(cls, value: Any) -> "Pickled":
        obj = cls(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        obj._value = value
        return obj

    @property
    def value(self) -> Any:
        if self._value is Pickled._UNSET:
            self._value = safe_loads(self.data)
        return self._value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pickled) and same_bytes(other.data, self.data)

    def __hash__(self) -> int:
        return hash(self.data)  # a read-only byte view hashes as its bytes do

    def __repr__(self) -> str:
        text = repr(self.value)
        return f"Pickled({text if len(text) <= 80 else text[:77] + '...'})"

    def __reduce__(self):
        return (Pickled, (bytes(self.data),))


def same_bytes(a: bytes | bytearray | memoryview, b: bytes | bytearray | memoryview) -> bool:
    """Byte equality of two buffers, at memcmp speed whatever their types (`memoryview.__eq__`
    compares item by item, ~15x slower; `bytes.__eq__` takes only bytes)."""
    if type(a) is bytes and type(b) is bytes:
        return a == b
    if len(a) != len(b):  # lengths in bytes: the views here are all of format "B"
        return False
    if type(a) is not bytearray:
        a, b = b, a
    if type(a) is not bytearray:
        a = bytearray(a)  # one copy: still far faster than comparing two views
    return a == b


def dumps(obj: Any) -> bytes:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(data)) + data


def plain(value: Any) -> Any:
    """Identity. A job pickles `(plain, (to_plain(obj),))` for an object that is not a plain value
    (see `focalpo.sandbox._job`): the parent's unpickler may call this, and gets the value."""
    return value


_ALLOWED = {
    ("focalpo.sandbox.wire", "plain"),
    ("builtins", "complex"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "bytearray"),
    ("focalpo.sandbox.wire", "Opaque"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")


def safe_loads(data: bytes) -> Any:
    """Parent side: decode an untrusted pickle that may only contain plain values."""
    return _SafeUnpickler(io.BytesIO(data)).load()


class FrameReader:
    """Incremental parser of length-prefixed frames from a pipe.

    A header is the body's length, with the `RAW` bit set when the body is raw bytes (a big
    return value's pickle, sent without wrapping it in a message). Frames come out as `bytes`
    (messages) or `bytearray` (raw bodies). A raw frame is only parsed once its reader allows
    one (`allow_raw()`, for the next raw frame only): until then `feed` stops at its header and
    `blocked` is true, so a job cannot make the parent allocate a big body it did not announce.
    A large raw body is read in place: `target()` is a view of its unread part for the caller to
    `os.readv` into, and `filled(n)` notes n bytes read there (one copy of hundreds of MB, not three).
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._body: bytearray | None = None  # a large raw body being read in place
        self._got = 0
        self._raw_ok = False
        self.blocked = False  # a raw frame's header waits for allow_raw()

    def allow_raw(self) -> None:
        self._raw_ok = True

    def feed(self, chunk: bytes) -> list[bytes | bytearray]:
        self.blocked = False
        self._buf += chunk
        buf, pos, frames = self._buf, 0, []
        while len(buf) - pos >= HEADER.size:
            (word,) = HEADER.unpack_from(buf, pos)
            n, raw = word & ~RAW, bool(word & RAW)
            if n > MAX_FRAME:
                raise ValueError(f"frame of {n} bytes exceeds the {MAX_FRAME} byte limit")
            if raw and not self._raw_ok:
                self.blocked = True
                break
            start = pos + HEADER.size
            if len(buf) - start < n:
                if raw and n >= IN_PLACE:
                    self._raw_ok = False
                    self._body = bytearray(n)
                    self._body[: len(buf) - start] = memoryview(buf)[start:]
                    self._got = len(buf) - start
                    pos = len(buf)
                break
            with memoryview(buf) as view:  # one copy of the frame, not two (slice, then bytes)
                body = view[start : start + n]
                frames.append(bytearray(body) if raw else bytes(body))
                del body
            if raw:
                self._raw_ok = False
            pos = start + n
        del buf[:pos]
        return frames

    def target(self) -> memoryview | None:
        """Where the next read goes while a large raw body arrives, else None (use `feed`)."""
        return None if self._body is None else memoryview(self._body)[self._got :]

    def filled(self, n: int) -> list[bytes | bytearray]:
        """n bytes were read into `target()`: the finished body, if that completed it."""
        self._got += n
        if self._body is None or self._got < len(self._body):
            return []
        body, self._body = self._body, None
        return [body]
