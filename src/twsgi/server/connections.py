# -*- test-case-name: tests.lifecycle.test_drain -*-
"""
The connections of one listener: each knows when it is idle, and the set of
them can be drained (see L{twsgi.lifecycle.drain}) or aborted.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from twisted.internet import defer

from twsgi.logs.clock import DelayedCall
from twsgi.server.closing import CloseWatch, cancelCloseWatch, watchClose

IDLE_GRACE = 1.0
"""
Seconds an idle connection (kept alive after a response, or accepted but
silent so far) may take to send one more request once the drain has begun
(C{--keepalive-grace}).
"""


class DrainableChannel:
    """
    The base of a connection that its site's L{ConnectionSet} can drain
    (L{twsgi.server.http1.TwsgiChannel}): it closes after its current
    response once draining, and an idle one gets a grace for one more
    request.  The connection keeps its own state: it says how many requests
    are in flight (L{inFlight}) and whether it is idle (L{isIdle}), and
    sets C{persistent} to C{False} for requests that begin while
    C{draining}.  All methods are called in the I/O thread.

    @ivar draining: C{True} once the server is stopping.
    @ivar persistent: whether the connection stays open after the response
        in flight.
    @ivar idleGrace: the seconds it gets for one more request once draining
        and idle.
    @ivar closeWatch: the L{CloseWatch} of a connection the server closed,
        cancelled when it is lost.
    """

    draining = False
    persistent = True
    idleGrace = IDLE_GRACE
    _graceCall: DelayedCall | None = None
    closeWatch: CloseWatch | None = None
    callLater: Any
    transport: Any

    @property
    def inFlight(self) -> int:
        """
        Requests this connection has started and not yet answered.
        """
        raise NotImplementedError()

    def isIdle(self) -> bool:
        """
        C{True} if no request is in flight and no byte of the next one has
        arrived.
        """
        raise NotImplementedError()

    def loseConnection(self) -> None:
        """
        Close after what was written is sent; abort if the connection has
        not gone shortly after that (a TLS client that never answers the
        close, see L{twsgi.server.closing}).
        """
        # Armed first: a transport that closes at once cancels it.
        watchClose(self)
        self.transport.loseConnection()

    def stopDrainTimers(self) -> None:
        """
        The connection was lost, or handed to another protocol: cancel the
        drain's grace and the close watch.
        """
        if self._graceCall is not None and self._graceCall.active():
            self._graceCall.cancel()
        self._graceCall = None
        cancelCloseWatch(self)

    def startDraining(
        self, idleGrace: float = IDLE_GRACE, within: float | None = None
    ) -> None:
        """
        Close after the response in flight, if any (the channel sets
        C{persistent} to C{False} for a request that begins later); an idle
        connection gets C{idleGrace} seconds for one more request, and is
        closed if still idle after them.

        @param within: the seconds until what is still in flight is aborted
            (the graceful timeout), if there is such a bound; an HTTP/1.1
            connection waits for nothing of its own, and does not use it.
        """
        if self.draining:
            return
        self.draining = True
        self.idleGrace = idleGrace
        if self.inFlight:
            self.persistent = False
        else:
            self.graceIfIdle()

    def graceIfIdle(self) -> None:
        """
        Draining, and perhaps idle: if it is, give it L{idleGrace} seconds
        for one more request (once).
        """
        if self._graceCall is None and self.isIdle():
            self._graceCall = self.callLater(self.idleGrace, self._closeIfIdle)

    def closeIdle(self) -> None:
        """
        Close this connection, which has no request in flight.
        """
        self.loseConnection()

    def _closeIfIdle(self) -> None:
        self._graceCall = None
        if self.isIdle():
            self.closeIdle()


class ConnectionSet:
    """
    The open connections of one site.  Called in the I/O thread.

    @ivar channels: the open L{DrainableChannel}s.
    @ivar draining: C{True} once L{drain} was called; connections accepted
        later drain at once.
    @ivar idleGrace: the seconds an idle connection gets for one more
        request once draining.
    @ivar within: the seconds the drain gives requests in flight before it
        aborts them, if bounded (see L{DrainableChannel.startDraining}).
    @ivar aborted: C{True} once L{abort} was called: requests lost from
        then on were cut off by the server (their access records say
        C{cutOff="drain"}).
    """

    def __init__(self) -> None:
        self.channels: set[DrainableChannel] = set()
        self.draining = False
        self.aborted = False
        self.idleGrace = IDLE_GRACE
        self.within: float | None = None
        self._waiting: list[defer.Deferred[None]] = []

    def __len__(self) -> int:
        return len(self.channels)

    def __iter__(self) -> Iterator[DrainableChannel]:
        return iter(self.channels)

    def __contains__(self, channel: object) -> bool:
        return channel in self.channels

    def add(self, channel: DrainableChannel) -> None:
        """
        A connection was made; it drains at once if the site is draining.
        """
        self.channels.add(channel)
        if self.draining:
            channel.startDraining(self.idleGrace, self.within)

    def discard(self, channel: DrainableChannel) -> None:
        """
        A connection was lost.
        """
        self.channels.discard(channel)
        if not self.channels:
            waiting, self._waiting = self._waiting, []
            for d in waiting:
                d.callback(None)

    @property
    def inFlight(self) -> int:
        """
        Requests in flight on all connections.
        """
        return sum(channel.inFlight for channel in self.channels)

    def drain(self, idleGrace: float = IDLE_GRACE, within: float | None = None) -> None:
        """
        Close every connection after its response in flight, and idle ones
        once they have been idle for C{idleGrace} seconds more.

        @param within: the seconds until what is still in flight is
            aborted, if there is such a bound: a connection that waits for
            its client during the stop (an HTTP/2 connection's PINGs) waits
            for a part of them only.
        """
        self.draining = True
        self.idleGrace = idleGrace
        self.within = within
        for channel in list(self.channels):
            channel.startDraining(idleGrace, within)

    def whenEmpty(self) -> defer.Deferred[None]:
        """
        A L{Deferred} that fires once no connection is open.
        """
        if not self.channels:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._waiting.append(d)
        return d

    @property
    def receiving(self) -> int:
        """
        Connections on which no request is in flight but part of the next
        one arrived: a client still sending a request's head (a slow one,
        or a slowloris).
        """
        return sum(1 for c in self.channels if not c.inFlight and not c.isIdle())

    def abort(self) -> int:
        """
        Abort every open connection.

        @return: how many requests were in flight on them.
        """
        self.aborted = True
        cut = 0
        for channel in list(self.channels):
            cut += channel.inFlight
            transport = channel.transport
            if transport is not None:
                transport.abortConnection()
        return cut
