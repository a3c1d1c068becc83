"""
Tests for L{twsgi.server.closing}: a connection the server closed, which the peer
does not help close (a TLS client that never answers C{close_notify}), is
aborted shortly after, on a fake clock.
"""

from __future__ import annotations

import time
from typing import Any

from twisted.internet import task
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.drain import REQUEST, Harness
from tests.helpers.h2client import H2Client
from tests.helpers.h2wire import H2Wire
from tests.helpers.rawhttp import connectOn
from twsgi.http.limits import Limits
from twsgi.lifecycle.drain import DrainResult
from twsgi.server.closing import (
    CLOSE_GRACE,
    CloseState,
    CloseWatch,
    closeVerdict,
    unsentBytes,
)
from twsgi.server.connections import IDLE_GRACE
from twsgi.server.http2 import DRAIN_ROUND_TRIP
from twsgi.testing import MemoryServer, MemoryTransport


class VerdictTests(SynchronousTestCase):
    """
    L{closeVerdict}, the pure decision.
    """

    def test_table(self) -> None:
        """
        Nothing unsent aborts; bytes still leaving wait; bytes that stop
        leaving wait until the stall limit, then abort.
        """
        cases = [
            (CloseState(), 0, (True, CloseState(unsent=0))),
            (CloseState(), 100, (False, CloseState(unsent=100))),
            (CloseState(unsent=100), 50, (False, CloseState(unsent=50))),
            (CloseState(unsent=100), 100, (False, CloseState(100, 2.0))),
            (CloseState(100, 12.0), 100, (False, CloseState(100, 14.0))),
            (CloseState(100, 14.0), 100, (True, CloseState(100, 16.0))),
            (CloseState(100, 14.0), 0, (True, CloseState(unsent=0))),
            (CloseState(100, 14.0), 90, (False, CloseState(unsent=90))),
        ]
        for state, unsent, expected in cases:
            self.assertEqual(
                closeVerdict(state, unsent, 2.0, 15.0), expected, (state, unsent)
            )


class FakeTransport:
    """
    A transport that never closes by itself; C{unsent} is what it still
    holds.
    """

    def __init__(self) -> None:
        self.unsent = 0
        self.aborted = 0
        self.disconnected = False

    def abortConnection(self) -> None:
        self.aborted += 1
        self.disconnected = True


class CloseWatchTests(SynchronousTestCase):
    """
    L{CloseWatch} on a L{task.Clock}.
    """

    def watch(self, **kwargs: Any) -> tuple[task.Clock, FakeTransport, CloseWatch]:
        clock = task.Clock()
        transport = FakeTransport()
        watch = CloseWatch(
            clock.callLater, transport, unsent=lambda t: t.unsent, **kwargs
        ).start()
        return clock, transport, watch

    def test_abortsAfterGrace(self) -> None:
        """
        A connection with nothing left to send is aborted C{grace} seconds
        after the close, not before.
        """
        clock, transport, watch = self.watch(grace=2.0)
        clock.advance(1.9)
        self.assertEqual(transport.aborted, 0)
        self.assertTrue(watch.active())
        clock.advance(0.1)
        self.assertEqual(transport.aborted, 1)
        self.assertTrue(watch.aborted)
        self.assertFalse(watch.active())
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_waitsWhileSending(self) -> None:
        """
        While the unsent bytes go down, the connection is left to finish;
        it is aborted once they are all sent.
        """
        clock, transport, watch = self.watch(grace=2.0, stallLimit=15.0)
        for unsent in [1000, 800, 600, 400, 200, 100, 50, 10, 5]:
            transport.unsent = unsent
            clock.advance(2.0)
            self.assertEqual(transport.aborted, 0)
        transport.unsent = 0
        clock.advance(2.0)
        self.assertEqual(transport.aborted, 1)

    def test_stalled(self) -> None:
        """
        Unsent bytes that stop leaving (a client that does not read) get
        C{stallLimit} seconds, then the connection is aborted.
        """
        clock, transport, watch = self.watch(grace=2.0, stallLimit=6.0)
        transport.unsent = 500
        clock.pump([2.0] * 3)
        self.assertEqual(transport.aborted, 0)
        clock.advance(2.0)
        self.assertEqual(transport.aborted, 1)

    def test_cancel(self) -> None:
        """
        A cancelled watch (the connection went) aborts nothing.
        """
        clock, transport, watch = self.watch()
        watch.cancel()
        self.assertFalse(watch.active())
        clock.advance(60)
        self.assertEqual(transport.aborted, 0)

    def test_alreadyGone(self) -> None:
        """
        A transport already disconnected is not aborted.
        """
        clock, transport, watch = self.watch()
        transport.disconnected = True
        clock.advance(60)
        self.assertEqual(transport.aborted, 0)

    def test_unsentBytes(self) -> None:
        """
        L{unsentBytes} finds what the socket transport under a TLS layer
        still holds; a transport that holds nothing has none.
        """

        class Socket:
            def unsentBytes(self) -> int:
                return 4

        class TLS:
            transport = Socket()

        self.assertEqual(unsentBytes(TLS()), 4)
        self.assertEqual(unsentBytes(object()), 0)
        self.assertEqual(unsentBytes(None), 0)


class StubbornTransport(MemoryTransport):
    """
    A transport whose C{loseConnection} never completes, as a TLS
    transport's waits for a C{close_notify} that a client that does not read
    never sends.
    """

    def loseConnection(self) -> None:
        self.disconnecting = True


def stubbornConnect(server: MemoryServer) -> tuple[Any, StubbornTransport]:
    """
    Open one in-memory connection on a L{StubbornTransport}.
    """
    return connectOn(server, StubbornTransport)


class ChannelCloseTests(SynchronousTestCase):
    """
    An HTTP/1.1 connection the server closes, on a transport that does not
    close by itself.
    """

    def test_drainIdle(self) -> None:
        """
        The graceful stop closes an idle keep-alive connection after its
        grace and aborts it C{CLOSE_GRACE} seconds later, so the stop ends
        then, drained, long before the graceful timeout.
        """
        h = Harness(gracefulTimeout=20.0)
        protocol, transport = stubbornConnect(h.server)
        protocol.dataReceived(REQUEST)
        h.pool.runAll()
        d = h.drain.stop()
        h.clock.advance(IDLE_GRACE)
        self.assertTrue(transport.disconnecting)
        self.assertFalse(transport.aborted)
        h.clock.advance(CLOSE_GRACE)
        self.assertTrue(transport.aborted)
        self.assertEqual(len(h.server.site.connections), 0)
        h.threadsStopped.callback(None)
        self.assertEqual(self.successResultOf(d), DrainResult(drained=True, cut=0))

    def test_drainInFlight(self) -> None:
        """
        A connection with a request in flight is not aborted while the
        request runs; once its response is done and the connection closed,
        it is aborted C{CLOSE_GRACE} seconds later.
        """
        h = Harness(gracefulTimeout=30.0)
        protocol, transport = stubbornConnect(h.server)
        protocol.dataReceived(REQUEST)
        d = h.drain.stop()
        h.clock.advance(20.0)
        self.assertFalse(transport.aborted)
        self.assertFalse(transport.disconnecting)
        h.pool.runAll()
        self.assertTrue(transport.disconnecting)
        self.assertIn(b"Connection: close", transport.value())
        h.clock.advance(CLOSE_GRACE - 0.1)
        self.assertFalse(transport.aborted)
        self.assertNoResult(d)
        h.clock.advance(0.1)
        self.assertTrue(transport.aborted)
        h.threadsStopped.callback(None)
        self.assertEqual(self.successResultOf(d), DrainResult(drained=True, cut=0))

    def test_keepAliveTimeout(self) -> None:
        """
        The keep-alive timeout closes an idle connection, and aborts it
        C{CLOSE_GRACE} seconds later if it has not gone.
        """
        server = MemoryServer(lambda environ, start_response: [])
        server.site.limits = Limits(keepAliveTimeout=5.0)
        protocol, transport = stubbornConnect(server)
        clock = server.reactor
        clock.advance(5.0)
        self.assertTrue(transport.disconnecting)
        clock.advance(CLOSE_GRACE - 0.1)
        self.assertFalse(transport.aborted)
        clock.advance(0.1)
        self.assertTrue(transport.aborted)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_keepAliveTimeoutCloses(self) -> None:
        """
        A connection that closes when its keep-alive timeout asks leaves no
        close watch behind.
        """
        server = MemoryServer(lambda environ, start_response: [])
        server.site.limits = Limits(keepAliveTimeout=5.0)
        protocol, transport = connectOn(server, MemoryTransport)
        server.reactor.advance(5.0)
        self.assertFalse(transport.connected)
        self.assertEqual(server.reactor.getDelayedCalls(), [])

    def test_closesByItself(self) -> None:
        """
        A connection that closes when asked leaves no timer behind and is
        never aborted.
        """
        h = Harness()
        protocol, transport = h.served()
        h.drain.stop()
        h.clock.advance(IDLE_GRACE)
        self.assertTrue(transport.disconnecting)
        h.clock.advance(60)
        self.assertFalse(transport.aborted)


class Http2CloseTests(SynchronousTestCase):
    """
    An HTTP/2 connection the server closes, on a transport that does not
    close by itself.
    """

    def connect(self, limits: Limits) -> tuple[H2Wire, H2Client]:
        wire = H2Wire(limits)
        client = H2Client(wire)
        client.readOnce(time.monotonic() + 1)
        return wire, client

    def test_drainIdle(self) -> None:
        """
        Draining an idle HTTP/2 connection whose client reads nothing waits
        C{DRAIN_ROUND_TRIP} for the answer to its first PING (the hush), then
        sends GOAWAY and waits as long for the second; it closes then, and
        aborts C{CLOSE_GRACE} seconds later.
        """
        wire, client = self.connect(Limits())
        stream = client.request("GET", "/")
        wire.resource.finishAll()
        client.answer(stream)
        wire.site.connections.drain()
        wire.clock.advance(DRAIN_ROUND_TRIP)
        self.assertFalse(wire.transport.disconnecting)
        wire.clock.advance(DRAIN_ROUND_TRIP)
        self.assertTrue(wire.transport.disconnecting)
        wire.clock.advance(CLOSE_GRACE - 0.1)
        self.assertFalse(wire.transport.disconnected)
        wire.clock.advance(0.1)
        self.assertTrue(wire.transport.disconnected)

    def test_keepAliveTimeout(self) -> None:
        """
        The keep-alive timeout closes an idle HTTP/2 connection and aborts
        it C{CLOSE_GRACE} seconds later if it has not gone.
        """
        wire, client = self.connect(Limits(keepAliveTimeout=5.0))
        wire.clock.advance(5.0)
        self.assertTrue(wire.transport.disconnecting)
        wire.clock.advance(CLOSE_GRACE - 0.1)
        self.assertFalse(wire.transport.disconnected)
        wire.clock.advance(0.1)
        self.assertTrue(wire.transport.disconnected)
