"""
Tests for L{twsgi.http.limits} and the limits and timeouts L{twsgi.server.http1}
enforces, driven over an in-memory transport and a fake clock.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.rawhttp import connect
from twsgi.http.limits import Limits, parseSize

GET = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"


def status(transport: StringTransport) -> bytes:
    return transport.value().split(b"\r\n", 1)[0]


class ParseSizeTests(SynchronousTestCase):
    """
    Tests for L{parseSize}.
    """

    def test_units(self) -> None:
        """
        Plain numbers are bytes; K, M and G are powers of 1024.
        """
        self.assertEqual(
            [parseSize(t) for t in ("10", "64K", "1m", "2G", "16KiB")],
            [10, 65536, 1048576, 2 * 1024**3, 16384],
        )

    def test_bad(self) -> None:
        """
        Text that is not a size, or a size of 0, is refused.
        """
        for text in ("", "x", "-1", "0", "1T", "1.5M"):
            self.assertRaises(ValueError, parseSize, text)


class SizeLimitTests(SynchronousTestCase):
    """
    The size limits answer 414, 431 and 413.
    """

    def test_requestLine(self) -> None:
        """
        A request line over the limit gets 414, even before it ends.
        """
        protocol, transport, _, app = connect(Limits(maxRequestLine=100))
        protocol.dataReceived(b"GET /" + b"a" * 200)
        self.assertEqual(status(transport), b"HTTP/1.1 414 URI Too Long")
        self.assertEqual(app.seen, [])

    def test_requestLineAtLimit(self) -> None:
        """
        A request line exactly at the limit is served.
        """
        line = b"GET /" + b"a" * (100 - len("GET / HTTP/1.1") - 1) + b" HTTP/1.1"
        self.assertEqual(len(line), 99)
        protocol, transport, _, app = connect(Limits(maxRequestLine=99))
        protocol.dataReceived(line + b"\r\nHost: x\r\n\r\n")
        self.assertEqual(status(transport), b"HTTP/1.1 200 OK")

    def test_headerField(self) -> None:
        """
        One header field line over the limit gets 431.
        """
        protocol, transport, _, app = connect(Limits(maxHeaderField=50))
        protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 60)
        self.assertEqual(
            status(transport), b"HTTP/1.1 431 Request Header Fields Too Large"
        )

    def test_headerCount(self) -> None:
        """
        More header fields than the limit gets 431.
        """
        protocol, transport, _, app = connect(Limits(maxHeaderCount=3))
        protocol.dataReceived(
            b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X: 1\r\n" * 3 + b"\r\n"
        )
        self.assertEqual(
            status(transport), b"HTTP/1.1 431 Request Header Fields Too Large"
        )
        self.assertEqual(app.seen, [])

    def test_headerTotal(self) -> None:
        """
        A header section over the total limit gets 431, though every field
        is within its own limit.
        """
        protocol, transport, _, app = connect(
            Limits(maxHeaderField=50, maxHeaderBytes=200)
        )
        protocol.dataReceived(
            b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X: " + b"a" * 40 + b"\r\n"
        )
        self.assertEqual(transport.value(), b"")
        protocol.dataReceived((b"X: " + b"a" * 40 + b"\r\n") * 4)
        self.assertEqual(
            status(transport), b"HTTP/1.1 431 Request Header Fields Too Large"
        )

    def test_bodyFromContentLength(self) -> None:
        """
        A Content-Length over the body limit gets 413 before any body byte.
        """
        protocol, transport, _, app = connect(Limits(maxBody=10))
        protocol.dataReceived(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n"
        )
        self.assertEqual(status(transport), b"HTTP/1.1 413 Content Too Large")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(app.seen, [])

    def test_bodyAtLimit(self) -> None:
        """
        A body exactly at the limit is served.
        """
        protocol, transport, _, app = connect(Limits(maxBody=10))
        protocol.dataReceived(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789"
        )
        self.assertEqual(status(transport), b"HTTP/1.1 200 OK")
        self.assertEqual(app.seen[0]["body"], "0123456789")

    def test_bodyChunked(self) -> None:
        """
        A chunked body is counted as its chunks arrive: 413 once it passes
        the limit.
        """
        protocol, transport, _, app = connect(Limits(maxBody=10))
        protocol.dataReceived(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"8\r\n01234567\r\n"
        )
        self.assertEqual(transport.value(), b"")
        protocol.dataReceived(b"3\r\n")
        self.assertEqual(status(transport), b"HTTP/1.1 413 Content Too Large")
        self.assertEqual(app.seen, [])

    def test_expectContinueOverLimit(self) -> None:
        """
        C{Expect: 100-continue} with a length over the limit gets 413 and
        no 100 Continue.
        """
        protocol, transport, _, app = connect(Limits(maxBody=10))
        protocol.dataReceived(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        self.assertEqual(status(transport), b"HTTP/1.1 413 Content Too Large")
        self.assertNotIn(b"100 Continue", transport.value())

    def test_expectContinueWithinLimit(self) -> None:
        """
        C{Expect: 100-continue} within the limit gets 100 Continue, then the
        response.
        """
        protocol, transport, _, app = connect(Limits(maxBody=10))
        protocol.dataReceived(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        self.assertEqual(transport.value(), b"HTTP/1.1 100 Continue\r\n\r\n")
        protocol.dataReceived(b"ok")
        self.assertIn(b"200 OK", transport.value())


class TimeoutTests(SynchronousTestCase):
    """
    The header, keep-alive and body timeouts run on the site's clock.
    """

    limits = Limits(headerTimeout=10, keepAliveTimeout=5, bodyTimeout=7)

    def test_idleBeforeFirstRequest(self) -> None:
        """
        A connection that sends nothing is closed, silently, after the
        keep-alive timeout.
        """
        protocol, transport, clock, _ = connect(self.limits)
        clock.advance(4.9)
        self.assertFalse(transport.disconnecting)
        clock.advance(0.1)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(transport.value(), b"")

    def test_idleBetweenRequests(self) -> None:
        """
        After a response, an idle keep-alive connection is closed after the
        keep-alive timeout.
        """
        protocol, transport, clock, app = connect(self.limits)
        clock.advance(4)
        protocol.dataReceived(GET)
        self.assertEqual(len(app.seen), 1)
        clock.advance(4.9)
        self.assertFalse(transport.disconnecting)
        clock.advance(0.1)
        self.assertTrue(transport.disconnecting)

    def test_slowHeaders(self) -> None:
        """
        Headers trickling in byte by byte get 408 when the header timeout
        has passed since the first byte, however steadily they come.
        """
        protocol, transport, clock, app = connect(self.limits)
        head = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X: y\r\n" * 50
        for i in range(99):
            protocol.dataReceived(head[i : i + 1])
            clock.advance(0.1)
        self.assertFalse(transport.disconnecting)
        clock.advance(0.2)
        self.assertEqual(status(transport), b"HTTP/1.1 408 Request Timeout")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(app.seen, [])

    def test_stalledBody(self) -> None:
        """
        A body that stops arriving gets 408 after the body timeout; each
        arriving byte restarts it.
        """
        protocol, transport, clock, app = connect(self.limits)
        protocol.dataReceived(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\na"
        )
        clock.advance(6)
        protocol.dataReceived(b"b")
        clock.advance(6)
        self.assertFalse(transport.disconnecting)
        clock.advance(1)
        self.assertEqual(status(transport), b"HTTP/1.1 408 Request Timeout")
        self.assertEqual(app.seen, [])

    def test_noTimerWhileAnswering(self) -> None:
        """
        No timeout runs while the application answers, and none is left once
        the connection is gone.
        """
        protocol, transport, clock, _ = connect(self.limits)
        protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(clock.getDelayedCalls(), [])


class PipelineBackpressureTests(SynchronousTestCase):
    """
    Pipelined requests wait in a bounded buffer: the connection stops
    reading while more than a little is buffered behind the request being
    answered.
    """

    def test_pausedAfterReplay(self) -> None:
        """
        When a response ends and the next of many pipelined requests starts,
        reading stays paused while the rest is still buffered, so that a
        client pipelining faster than it is served cannot grow the buffer by
        one read per request.
        """
        from tests.helpers.drain import ManualPool
        from twsgi.testing import MemoryServer

        def app(environ: object, start_response: Any) -> list[bytes]:
            start_response("200 OK", [("Content-Length", "2")])
            return [b"ok"]

        server = MemoryServer(app)
        pool = ManualPool()
        server.resource.threadpool = pool
        protocol, transport = server.connect()
        protocol.dataReceived(GET)
        protocol.dataReceived(GET * 2000)
        self.assertEqual(transport.producerState, "paused")
        pool.runAll()
        self.assertEqual(transport.value().count(b"HTTP/1.1 200"), 1)
        self.assertEqual(len(pool.work), 1)
        self.assertEqual(transport.producerState, "paused")
        for _ in range(1999):
            pool.runAll()
        self.assertEqual(transport.value().count(b"HTTP/1.1 200"), 2000)
        pool.runAll()
        self.assertEqual(transport.value().count(b"HTTP/1.1 200"), 2001)
        self.assertEqual(transport.producerState, "producing")
