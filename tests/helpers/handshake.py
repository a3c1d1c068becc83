"""
Test helpers: a client's connection attempt on a real socket, and how the
server side's listening socket treated it (completed, refused, reset, or
still waiting for the handshake).
"""

from __future__ import annotations

import ctypes
import errno
import select
import socket
import struct
from typing import Any

_SO_ATTACH_FILTER = 26
_SO_DETACH_FILTER = 27


def connecting(address: Any) -> socket.socket:
    """
    A client socket whose connection to C{address} has begun.
    """
    client = socket.socket()
    client.setblocking(False)
    client.connect_ex(address)
    return client


def halfOpen(address: Any) -> socket.socket:
    """
    A client socket whose handshake with C{address} is half done (Linux):
    the server answered its SYN, and the client ignores the answer (a socket
    filter drops every packet it receives) until L{hear} is called; the
    server sends its answer again about a second later.
    """
    client = socket.socket()
    drop = ctypes.create_string_buffer(struct.pack("HBBI", 0x06, 0, 0, 0), 8)
    client.setsockopt(
        socket.SOL_SOCKET,
        _SO_ATTACH_FILTER,
        struct.pack("HP", 1, ctypes.addressof(drop)),
    )
    client.setblocking(False)
    client.connect_ex(address)
    return client


def hear(client: socket.socket) -> None:
    """
    Let a L{halfOpen} client receive packets again.
    """
    client.setsockopt(socket.SOL_SOCKET, _SO_DETACH_FILTER, 0)


def outcome(client: socket.socket, timeout: float) -> str:
    """
    How a client's connection fared within C{timeout} seconds:
    C{"connected"}, C{"refused"}, C{"reset"} or C{"waiting"} (the handshake
    is not complete).
    """
    if not select.select([], [client], [], timeout)[1]:
        return "waiting"
    error = client.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if error == errno.ECONNREFUSED:
        return "refused"
    if error:
        return errno.errorcode[error]
    try:
        client.send(b"GET / HTTP/1.1\r\n")
        if select.select([client], [], [], 0.2)[0]:
            client.recv(1)
    except ConnectionResetError:
        return "reset"
    return "connected"


__all__ = ["connecting", "halfOpen", "hear", "outcome"]
