# -*- test-case-name: tests.lifecycle.test_drain -*-
"""
Listening ports: closing one without resetting the connections the kernel
completed in its backlog.
"""

from __future__ import annotations

import ctypes
import os
import socket
import struct
import sys
from typing import Any

from twisted.internet import defer

_SO_ATTACH_FILTER = 26
"""
Linux's C{SO_ATTACH_FILTER} (C{socket} does not name it).
"""

_DROP_EVERYTHING = struct.pack("HBBI", 0x06, 0, 0, 0)
"""
A classic BPF program of one instruction, C{BPF_RET | BPF_K} with 0: keep no
byte of any packet.
"""


def refuseConnections(port: Any) -> bool:
    """
    Make the kernel drop every packet that would open a new connection to
    the listening TCP socket of C{port} (Linux): a socket filter that keeps
    nothing.  A connection the kernel completed before stays in the accept
    queue, and no connection completes after, so accepting what is queued
    and then closing the socket resets none: a client whose handshake was
    dropped sends it again a second later, and is then refused by the
    closed port (or served by whoever listens on it then).

    The filter is on the socket, not on this process's descriptor: only
    the last process that holds a listening socket may use this.

    @return: C{True} if the filter is in place; C{False} where it cannot be
        (another system, a UNIX socket, a port without a descriptor).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        listening = socket.socket(fileno=os.dup(port.fileno()))
    except (AttributeError, OSError, TypeError, ValueError):
        return False
    try:
        if listening.family not in (socket.AF_INET, socket.AF_INET6):
            return False
        program = ctypes.create_string_buffer(_DROP_EVERYTHING, len(_DROP_EVERYTHING))
        listening.setsockopt(
            socket.SOL_SOCKET,
            _SO_ATTACH_FILTER,
            struct.pack("HP", 1, ctypes.addressof(program)),
        )
    except OSError:
        return False
    finally:
        listening.close()
    return True


def closeAcceptingBacklog(port: Any, owned: bool = True) -> defer.Deferred[Any]:
    """
    Stop listening on C{port} without resetting a connection the kernel
    completed: every one is accepted, and served.

    If this process is the last to hold the listening socket (C{owned}),
    new connections are refused first (L{refuseConnections}), then the
    queue is accepted and the socket closed.  Otherwise (a socket inherited
    from a supervisor or from systemd: closing this copy does not close it,
    and a filter would stop the other holders' connections too), or where
    that cannot be done, the queue is accepted at the last moment before the
    port's socket closes (one reactor turn after C{stopListening}), which
    leaves only that moment for a connection to complete and be reset.
    """
    if owned and refuseConnections(port):
        acceptPending(port)
        return defer.maybeDeferred(port.stopListening)
    lost = getattr(port, "connectionLost", None)
    if lost is not None and hasattr(port, "numberAccepts"):

        def connectionLost(reason: Any) -> Any:
            acceptPending(port)
            return lost(reason)

        port.connectionLost = connectionLost
    else:
        acceptPending(port)
    return defer.maybeDeferred(port.stopListening)


def acceptPending(port: Any) -> None:
    """
    Accept the connections already waiting in a listening port's backlog, so
    that closing the port resets none of them.  Ports that cannot do this
    (not a socket port, or already closed) are left alone.
    """
    if not getattr(port, "connected", False) or getattr(port, "socket", None) is None:
        return
    doRead = getattr(port, "doRead", None)
    if doRead is None or not hasattr(port, "numberAccepts"):
        return
    for _ in range(100):
        limit = port.numberAccepts = max(port.numberAccepts, 1000)
        doRead()
        # The port accepts more next time only when it took all it could.
        if port.numberAccepts <= limit:
            return
