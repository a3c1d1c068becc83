# -*- test-case-name: tests.server.test_closing -*-
"""
Closing a connection that the peer does not help close.

When the server closes a connection (the keep-alive timeout, the last
response of a C{Connection: close} exchange, the graceful stop), it calls
C{loseConnection()}: the transport sends what it still holds, then closes.
Over TCP that is the end of it.  Over TLS it is not: Twisted's TLS layer
(L{twisted.protocols.tls.TLSMemoryBIOProtocol}) sends its C{close_notify}
alert and then waits for the peer's, and a client that keeps its connection
open without reading never sends one.  The socket would stay open for ever,
and a graceful stop would wait for it until its timeout.

L{CloseWatch} bounds that wait: C{grace} seconds after the close, a
connection still open is aborted once nothing it wrote is left unsent (RFC
8446 section 6.1 lets the side that closes stop waiting for the peer's
C{close_notify}).  While bytes of a response are still leaving, it waits on;
if they stop leaving for C{stallLimit} seconds (a client that stopped
reading), it aborts too.  L{closeVerdict} is the pure decision; the rest
runs in the I/O thread.
"""

from __future__ import annotations

import array
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import attrs

from twsgi.logs.clock import CallsLater, DelayedCall
from twsgi.wsgi.turns import CallLater

CLOSE_GRACE = 2.0
"""
Seconds a connection the server closed may take to go, once nothing it
wrote is left unsent, before it is aborted.
"""

STALL_LIMIT = 60.0
"""
Seconds a closed connection whose unsent bytes stopped leaving (a client
that does not read) is kept before it is aborted.
"""


@attrs.frozen
class CloseState:
    """
    What L{CloseWatch} knew at its last look.

    @ivar unsent: bytes the connection had not sent (or the peer had not
        acknowledged).
    @ivar stalled: seconds those bytes have not decreased.
    """

    unsent: int | None = None
    stalled: float = 0.0


def closeVerdict(
    state: CloseState, unsent: int, waited: float, stallLimit: float
) -> tuple[bool, CloseState]:
    """
    Decide whether a connection the server closed, still open, is aborted
    now.

    @param state: what was known at the previous look.
    @param unsent: bytes it has not sent yet, now.
    @param waited: seconds since the previous look.
    @param stallLimit: seconds of no progress after which it is aborted.
    @return: C{(abort, next state)}.
    """
    if unsent <= 0:
        return True, CloseState(unsent=0)
    if state.unsent is None or unsent < state.unsent:
        return False, CloseState(unsent=unsent)
    stalled = state.stalled + waited
    return stalled >= stallLimit, CloseState(unsent=unsent, stalled=stalled)


def _kernelUnsent(transport: object) -> int:
    """
    Bytes in the socket's send queue the peer has not acknowledged (Linux
    C{SIOCOUTQ}); 0 where that cannot be asked.
    """
    getHandle = getattr(transport, "getHandle", None)
    if getHandle is None:
        return 0
    try:
        import fcntl
        import termios

        fileno = getHandle().fileno()
        buffer = array.array("i", [0])
        fcntl.ioctl(fileno, termios.TIOCOUTQ, buffer, True)
    except (ImportError, OSError, AttributeError, ValueError, TypeError):
        return 0
    return max(buffer[0], 0)


@runtime_checkable
class CountsUnsent(Protocol):
    """
    A transport that says how many bytes written to it it has not sent
    yet (twsgi's L{SocketTransport<twsgi.server.transport.SocketTransport>}).
    """

    def unsentBytes(self) -> int: ...


def unsentBytes(transport: object) -> int:
    """
    Bytes written to C{transport} (and to the transports under it, as the
    socket transport under a TLS one) that have not left yet: what a
    L{CountsUnsent} transport holds, and its kernel's send queue.  Called
    in the I/O thread.
    """
    total = 0
    depth = 0
    while transport is not None and depth < 4:
        depth += 1
        if isinstance(transport, CountsUnsent):
            total += transport.unsentBytes() + _kernelUnsent(transport)
        transport = getattr(transport, "transport", None)
    return total


class Abortable(Protocol):
    """
    A transport, as far as aborting it goes.
    """

    def abortConnection(self) -> None: ...


class CloseWatch:
    """
    Aborts a connection the server closed if it has not gone after
    C{grace} seconds (see the module docstring).  It has C{cancel} and
    C{active}, like a C{DelayedCall}; the connection keeps it in its
    C{closeWatch} and cancels it when it is lost (L{cancelCloseWatch}).
    Called in the I/O thread.
    """

    def __init__(
        self,
        callLater: CallLater,
        transport: Abortable,
        grace: float = CLOSE_GRACE,
        stallLimit: float = STALL_LIMIT,
        unsent: Callable[[object], int] = unsentBytes,
    ) -> None:
        """
        @param callLater: L{IReactorTime.callLater}.
        @param transport: the transport that was asked to close.
        @param grace: seconds between looks.
        @param stallLimit: seconds of unsent bytes not leaving before the
            connection is aborted anyway.
        @param unsent: measures the bytes not sent yet of a transport.
        """
        self._callLater = callLater
        self._transport = transport
        self._grace = grace
        self._stallLimit = stallLimit
        self._unsent = unsent
        self._state = CloseState()
        self._call: DelayedCall | None = None
        self.aborted = False

    def start(self) -> CloseWatch:
        """
        Look again in C{grace} seconds.
        """
        self._call = self._callLater(self._grace, self._look)
        return self

    def active(self) -> bool:
        """
        C{True} while the watch still waits.
        """
        return self._call is not None and self._call.active()

    def cancel(self) -> None:
        """
        The connection went: stop watching.
        """
        call = self._call
        if call is not None and call.active():
            call.cancel()
        self._call = None

    def _look(self) -> None:
        self._call = None
        transport = self._transport
        if (
            transport is None
            or getattr(transport, "disconnected", False)
            or not getattr(transport, "connected", True)
        ):
            return
        abort, self._state = closeVerdict(
            self._state, self._unsent(transport), self._grace, self._stallLimit
        )
        if abort:
            self.aborted = True
            transport.abortConnection()
        else:
            self.start()


class Closable(CallsLater, Protocol):
    """
    A connection that the close watch can watch: its transport, its
    reactor's C{callLater}, and where it keeps its watch.
    """

    transport: Abortable | None
    closeWatch: CloseWatch | None


def watchClose(channel: Closable, grace: float = CLOSE_GRACE) -> None:
    """
    Watch a connection that has just asked its transport to close (see
    L{CloseWatch}), once, in its C{closeWatch}, which the connection
    cancels when it is lost (L{cancelCloseWatch}).  Called in the I/O
    thread.
    """
    transport = channel.transport
    if transport is None or channel.closeWatch is not None:
        return
    channel.closeWatch = CloseWatch(channel.callLater, transport, grace).start()


def cancelCloseWatch(channel: Closable) -> None:
    """
    The connection C{channel} was lost: stop its close watch, if any.
    Called in the I/O thread.
    """
    watch = channel.closeWatch
    if watch is not None:
        watch.cancel()


__all__ = [
    "CLOSE_GRACE",
    "STALL_LIMIT",
    "Closable",
    "CloseState",
    "CloseWatch",
    "CountsUnsent",
    "cancelCloseWatch",
    "closeVerdict",
    "unsentBytes",
    "watchClose",
]
