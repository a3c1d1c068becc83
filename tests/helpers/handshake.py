"""
Test helpers: a client's connection attempt on a real socket, and how the
server side's listening socket treated it (completed, refused, reset, or
still waiting for the handshake).
"""

from __future__ import annotations

import errno
import select
import socket
from typing import Any


def connecting(address: Any) -> socket.socket:
    """
    A client socket whose connection to C{address} has begun.
    """
    client = socket.socket()
    client.setblocking(False)
    client.connect_ex(address)
    return client


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


__all__ = ["connecting", "outcome"]
