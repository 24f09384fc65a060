"""Framed messages (with file descriptors) between the parent and its zygotes.

Both ends are focalpo's own trusted processes; untrusted jobs never hold this socket (they close
every inherited descriptor before running code), so plain pickle is fine here.
"""

from __future__ import annotations

import pickle
import socket
import struct

_LEN = struct.Struct("<Q")


def send_msg(sock: socket.socket, obj, fds: list[int] | tuple[int, ...] = ()) -> None:
    body = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    data = memoryview(_LEN.pack(len(body)) + body)
    if fds:
        sent = socket.send_fds(sock, [data[:65536]], list(fds))
        data = data[sent:]
    if data:  # sendall of nothing would still make a syscall
        sock.sendall(data)


def send_raw(sock: socket.socket, data: bytes) -> None:
    """Send bytes as one frame, for `recv_raw` (no pickling at either end)."""
    sock.sendall(_LEN.pack(len(data)))
    if data:
        sock.sendall(data)


def recv_msg(sock: socket.socket):
    """Returns (obj, fds); raises EOFError when the peer is gone."""
    fds: list[int] = []
    body = _recv_frame(sock, fds)
    return pickle.loads(body), fds


def recv_raw(sock: socket.socket) -> bytearray:
    """The bytes of one `send_raw` frame; raises EOFError when the peer is gone."""
    return _recv_frame(sock, [])


def _recv_frame(sock: socket.socket, fds: list[int]) -> bytearray:
    head = bytearray()
    while len(head) < _LEN.size:
        chunk, got, _, _ = socket.recv_fds(sock, _LEN.size - len(head), 16)
        fds += got
        if not chunk:
            raise EOFError("peer closed the channel")
        head += chunk
    (n,) = _LEN.unpack(head)
    body = bytearray(n)
    view = memoryview(body)
    while view:
        k = sock.recv_into(view)
        if k == 0:
            raise EOFError("peer closed the channel mid-message")
        view = view[k:]
    return body
