"""
Tests for L{twsgi.server.http1}: a client that half-closes its connection is
answered as RFC 9112 section 9.6 says, over an in-memory transport.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IHalfCloseableProtocol, ITCPTransport
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from zope.interface import implementer

from tests.helpers.rawhttp import (
    FailingPullProducer,
    RecordingProducer,
    connectOn,
    halfClose,
)
from twsgi.http.limits import Limits
from twsgi.logs.accesslog import CLIENT_CLOSED
from twsgi.server.closing import CLOSE_GRACE, STALL_LIMIT
from twsgi.server.http1 import LINGER
from twsgi.testing import MemoryServer, MemoryTransport, parseResponses

App = Callable[[dict[str, Any], Any], Any]

GET = b"GET /%s HTTP/1.1\r\nHost: h\r\n\r\n"


class HalfClosingTransport(MemoryTransport):
    """
    A L{MemoryTransport} that can shut its writing side down, and tells its
    protocol as a TCP transport does.

    @ivar writeClosed: C{True} once C{loseWriteConnection} was called.
    """

    writeClosed = False

    def loseWriteConnection(self) -> None:
        self.writeClosed = True
        halfCloseable = IHalfCloseableProtocol(self.protocol, None)
        if halfCloseable is not None:
            halfCloseable.writeConnectionLost()


def echoPath(environ: dict[str, Any], startResponse: Any) -> list[bytes]:
    """
    Answers with the request's path.
    """
    body = environ["PATH_INFO"].encode("ascii")
    startResponse("200 OK", [("Content-Length", str(len(body)))])
    return [body]


class HalfCloseTests(SynchronousTestCase):
    """
    A client that sends its requests and then shuts its side of the
    connection down gets every request that arrived whole answered, in
    order, and then the connection closes.
    """

    def serve(self, app: App = echoPath) -> tuple[MemoryServer, Any, MemoryTransport]:
        server = MemoryServer(app)
        protocol, transport = server.connect()
        return server, protocol, transport

    def test_answered(self) -> None:
        """
        A request followed by a half-close is answered in full, and the
        connection then closes.
        """
        server, protocol, transport = self.serve()
        protocol.dataReceived(GET % b"a")
        halfClose(protocol)
        [response] = parseResponses(transport.value(), closed=True)
        self.assertEqual((response.code, response.body), (200, b"/a"))
        self.assertTrue(transport.disconnecting)
        self.assertEqual(
            [(r.status, r.disconnected) for r in server.records], [(200, False)]
        )

    def halfClosedByApp(
        self, data: bytes, times: int = 1
    ) -> tuple[list[str], MemoryTransport]:
        """
        Send C{data}; the client half-closes (C{times} times) while the
        application runs for C{/a}.

        @return: the paths the application saw, and the transport.
        """
        seen: list[str] = []

        def app(environ: dict[str, Any], startResponse: Any) -> list[bytes]:
            seen.append(environ["PATH_INFO"])
            if environ["PATH_INFO"] == "/a":
                for _ in range(times):
                    halfClose(protocol)
            return echoPath(environ, startResponse)

        server, protocol, transport = self.serve(app)
        protocol.dataReceived(data)
        return seen, transport

    def test_whileRunning(self) -> None:
        """
        A half-close that arrives while the application runs: its response
        is sent whole, says C{Connection: close}, and the connection closes
        after it.
        """
        seen, transport = self.halfClosedByApp(GET % b"a")
        [response] = parseResponses(transport.value(), closed=True)
        self.assertEqual((response.code, response.body), (200, b"/a"))
        self.assertEqual(response.header(b"connection"), b"close")
        self.assertTrue(transport.disconnecting)

    def test_endOfFileAgain(self) -> None:
        """
        A second end of file (a transport reads it again once resumed)
        changes nothing: the response in flight is still answered.
        """
        seen, transport = self.halfClosedByApp(GET % b"a", times=2)
        [response] = parseResponses(transport.value(), closed=True)
        self.assertEqual(response.body, b"/a")

    def test_pipelined(self) -> None:
        """
        Requests pipelined before the half-close are all answered, in
        order; the last response says C{Connection: close}.
        """
        seen, transport = self.halfClosedByApp(GET % b"a" + GET % b"b" + GET % b"c")
        responses = parseResponses(transport.value(), closed=True)
        self.assertEqual([r.body for r in responses], [b"/a", b"/b", b"/c"])
        self.assertEqual(
            [r.header(b"connection") for r in responses], [None, None, b"close"]
        )
        self.assertTrue(transport.disconnecting)

    def test_pipelinedPartial(self) -> None:
        """
        A pipelined request that had not arrived whole at the half-close is
        dropped: the ones before it are answered, then the connection
        closes.
        """
        seen, transport = self.halfClosedByApp(GET % b"a" + b"GET /b HTTP/1.1\r\nHo")
        responses = parseResponses(transport.value(), closed=True)
        self.assertEqual([r.body for r in responses], [b"/a"])
        self.assertEqual(seen, ["/a"])
        self.assertTrue(transport.disconnecting)

    def test_partialHead(self) -> None:
        """
        A half-close in the middle of a request head closes the connection
        without an answer.
        """
        server, protocol, transport = self.serve(lambda e, s: self.fail("called"))
        protocol.dataReceived(b"GET / HTTP/1.1\r\nHo")
        halfClose(protocol)
        self.assertEqual(transport.value(), b"")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(server.records, [])

    def test_partialBody(self) -> None:
        """
        A half-close in the middle of a request body drops the request, as
        a client that disconnects: no answer, and one 499 access record.
        """
        server, protocol, transport = self.serve(lambda e, s: self.fail("called"))
        protocol.dataReceived(
            b"PUT /f HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabcd"
        )
        halfClose(protocol)
        self.assertEqual(transport.value(), b"")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(
            [(r.target, r.status, r.disconnected) for r in server.records],
            [("/f", CLIENT_CLOSED, True)],
        )

    def test_idle(self) -> None:
        """
        A half-close on an idle keep-alive connection closes it.
        """
        server, protocol, transport = self.serve()
        protocol.dataReceived(GET % b"a")
        sent = transport.value()
        self.assertFalse(transport.disconnecting)
        halfClose(protocol)
        self.assertEqual(transport.value(), sent)
        self.assertTrue(transport.disconnecting)
        self.assertFalse(transport.aborted)

    def test_rejected(self) -> None:
        """
        A client that half-closes after its rejected request's answer is
        closed at once, not aborted when the linger ends.
        """
        protocol, transport = connectOn(MemoryServer(echoPath), HalfClosingTransport)
        protocol.dataReceived(b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n")
        self.assertTrue(transport.writeClosed)
        self.assertFalse(transport.disconnecting)
        halfClose(protocol)
        self.assertTrue(transport.disconnecting)
        self.assertFalse(transport.aborted)
        [response] = parseResponses(transport.value(), closed=True)
        self.assertEqual(response.code, 400)

    def test_rejectedLingerBounded(self) -> None:
        """
        A client that keeps sending after its rejected request's answer,
        without closing, is aborted L{LINGER} seconds after the answer: its
        bytes do not extend the linger (nginx's C{lingering_timeout} starts
        again at each read), so a flood of bad requests holds each
        connection slot (C{--max-connections}) at most that long, less than
        a silent connection's keep-alive timeout.
        """
        server = MemoryServer(echoPath)
        protocol, transport = connectOn(server, HalfClosingTransport)
        protocol.dataReceived(b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n")
        for _ in range(19):
            server.reactor.advance(LINGER / 20)
            protocol.dataReceived(b"x" * 1000)
            self.assertFalse(transport.aborted)
        server.reactor.advance(LINGER / 20)
        self.assertTrue(transport.aborted)


@implementer(ITCPTransport)
class TCPMemoryTransport(MemoryTransport):
    """
    A L{MemoryTransport} that says it is TCP, and records C{TCP_NODELAY}.
    """

    noDelay = False

    def setTcpNoDelay(self, enabled: bool) -> None:
        self.noDelay = enabled


class TransportTests(SynchronousTestCase):
    """
    The connection is its transport's push producer, and sets up the
    socket as C{twisted.web}'s channel did.
    """

    def test_producerPausedAtOnce(self) -> None:
        """
        A response's push producer registered while the transport is full
        is paused at once (the transport will not say so again), and
        resumed with the transport.
        """
        server = MemoryServer(echoPath)
        protocol, transport = server.connect()
        channel = transport.producer
        channel.pauseProducing()
        producer = RecordingProducer()
        channel.registerProducer(producer, True)
        self.assertEqual(producer.calls, ["pause"])
        channel.resumeProducing()
        self.assertEqual(producer.calls, ["pause", "resume"])
        channel.unregisterProducer()
        channel.pauseProducing()
        self.assertEqual(producer.calls, ["pause", "resume"])

    def test_noDelay(self) -> None:
        """
        A TCP connection sends small writes at once (C{TCP_NODELAY}).
        """
        protocol, transport = connectOn(MemoryServer(echoPath), TCPMemoryTransport)
        self.assertTrue(transport.noDelay)

    def test_readingStopsWhileFull(self) -> None:
        """
        While the transport is full and no request is being answered, the
        connection stops reading, and reads again once it drained.
        """
        server = MemoryServer(echoPath)
        protocol, transport = server.connect()
        channel = transport.producer
        channel.pauseProducing()
        self.assertEqual(transport.producerState, "paused")
        channel.resumeProducing()
        self.assertEqual(transport.producerState, "producing")


def echoBody(environ: dict[str, Any], startResponse: Any) -> list[bytes]:
    """
    Answers with the request's path and body.
    """
    body = environ["PATH_INFO"].encode("ascii") + environ["wsgi.input"].read()
    startResponse("200 OK", [("Content-Length", str(len(body)))])
    return [body]


class KeepAliveTests(SynchronousTestCase):
    """
    The requests of one keep-alive connection are each read and answered
    on their own, also when their heads are the same bytes.
    """

    def test_sameHeadAgain(self) -> None:
        """
        The same head again, with another body, is another request; a head
        that differs from it in one bad byte is refused.
        """
        server = MemoryServer(echoBody)
        protocol, transport = server.connect()
        post = b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n"
        for body in (b"xy", b"zw", b"xy"):
            protocol.dataReceived(post + body)
        protocol.dataReceived(post.replace(b"Host: h", b"Host: h\x01"))
        responses = parseResponses(transport.value(), closed=True)
        self.assertEqual(
            [(r.code, r.body) for r in responses],
            [
                (200, b"/axy"),
                (200, b"/azw"),
                (200, b"/axy"),
                (400, b"Bad Request: control byte in a field value\n"),
            ],
        )
        self.assertTrue(transport.disconnecting)


class _DrainingStream(Resource):
    """
    A C{twisted.web} resource (as a static file is served) that writes its
    response in two parts and calls C{during} between them.
    """

    isLeaf = True

    def __init__(self, during: Callable[[], None]) -> None:
        super().__init__()
        self.during = during

    def render_GET(self, request: Any) -> object:
        request.setHeader(b"Content-Length", b"4")
        request.write(b"ab")
        self.during()
        request.write(b"cd")
        request.finish()
        return NOT_DONE_YET


class _FailingFile(Resource):
    """
    A C{twisted.web} resource whose response comes from a pull producer (as
    a static file's does) that writes a part, then raises.
    """

    isLeaf = True

    def render_GET(self, request: Any) -> object:
        if request.uri != b"/unsized":
            request.setHeader(b"Content-Length", b"10")
        request.registerProducer(FailingPullProducer(request, b"abcde"), False)
        return NOT_DONE_YET


class PullFailureTests(SynchronousTestCase):
    """
    A response whose pull producer fails is cut off.
    """

    def test_connectionClosed(self) -> None:
        """
        The connection is closed once what was written is sent (the client
        does not wait for the rest for ever, and has every byte written
        before the failure: an abort would drop what the transport still
        holds), and the access record says the response was cut off by an
        error.
        """
        server = MemoryServer(resource=_FailingFile())
        protocol, transport = connectOn(server, MemoryTransport)
        protocol.dataReceived(GET % (b"file",))
        server.reactor.advance(0)
        server.reactor.advance(0)
        self.assertTrue(transport.disconnecting)
        self.assertFalse(transport.aborted)
        self.assertTrue(transport.value().endswith(b"\r\n\r\nabcde"))
        [record] = server.records
        self.assertEqual(record.cutOff, "error")
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)

    def test_closeDelimitedAborted(self) -> None:
        """
        When the body ends only with the connection (an HTTP/1.0 request,
        no C{Content-Length}), a close would make the cut-off response look
        whole to its client: the connection is aborted.
        """
        server = MemoryServer(resource=_FailingFile())
        protocol, transport = connectOn(server, MemoryTransport)
        protocol.dataReceived(b"GET /unsized HTTP/1.0\r\n\r\n")
        server.reactor.advance(0)
        server.reactor.advance(0)
        self.assertTrue(transport.value().startswith(b"HTTP/1.0 200 OK\r\n"))
        self.assertTrue(transport.aborted)
        [record] = server.records
        self.assertEqual(record.cutOff, "error")
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)


class _Sending(MemoryTransport):
    """
    A transport that, asked to close, goes on holding L{unsent} bytes until
    the test says, as a socket whose client reads slowly, or not at all:
    the close watch (L{twsgi.server.closing}) counts them.
    """

    unsent = 0

    def loseConnection(self) -> None:
        self.disconnecting = True

    def unsentBytes(self) -> int:
        return self.unsent


class ClosingAfterErrorTests(SynchronousTestCase):
    """
    The connection of a response cut off by its application's error closes
    once what was written is sent: a client that reads it slowly gets it
    whole, and one that stops reading is aborted.
    """

    def test_slowReader(self) -> None:
        """
        A send timeout that began while the transport was full does not
        abort the closing connection of a client that still reads (the
        channel, no longer the transport's producer, does not hear that its
        buffer drains); once the client stops reading, the close watch
        aborts it after L{STALL_LIMIT}.
        """

        def app(environ: Any, startResponse: Any) -> Any:
            startResponse("200 OK", [])
            yield b"x" * 100
            # The transport's buffer is full: the send timeout starts.
            transport.producer.pauseProducing()
            raise ZeroDivisionError("after a chunk")

        server = MemoryServer(app)
        protocol, transport = connectOn(server, _Sending)
        transport.unsent = 100_000
        protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(transport.disconnecting)
        self.assertTrue(transport.value().endswith(b"64\r\n" + b"x" * 100 + b"\r\n"))
        for _ in range(int(2 * Limits().sendTimeout / CLOSE_GRACE)):
            transport.unsent -= 100
            server.reactor.advance(CLOSE_GRACE)
        self.assertFalse(transport.aborted)
        server.reactor.pump([CLOSE_GRACE] * int(STALL_LIMIT / CLOSE_GRACE - 1))
        self.assertFalse(transport.aborted)
        server.reactor.pump([CLOSE_GRACE] * 2)
        self.assertTrue(transport.aborted)
        [record] = server.records
        self.assertEqual(record.cutOff, "error")
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)


class DrainAfterHeadTests(SynchronousTestCase):
    """
    A drain that begins once a response's head went out saying that the
    connection stays open (a streamed body, a large file) cannot take that
    back: the client may send its next request on the connection as soon as
    the response is complete.  So the connection is then idle as any other,
    and gets the drain's grace for one more request, instead of closing
    under a request crossing its close (which a proxy such as nginx answers
    with 502 for a POST, retrying only idempotent requests).
    """

    def serve(self, kind: str) -> tuple[MemoryServer, Any, HalfClosingTransport]:
        """
        A connection to a server whose response to C{/stream} begins the
        drain between its two parts, on the hot path (C{kind="wsgi"}, a
        streamed WSGI body) or through C{twisted.web} (C{kind="web"}).
        """
        headSent: list[bool] = []

        def during() -> None:
            # The head went out before the drain began.
            headSent.append(b"HTTP/1.1 200 OK" in transport.value())
            transport.producer.startDraining(2.0)

        def streamed(environ: dict[str, Any], startResponse: Any) -> Any:
            if environ["PATH_INFO"] != "/stream":
                return echoPath(environ, startResponse)
            startResponse("200 OK", [("Content-Length", "4")])
            return self.parts(during)

        if kind == "wsgi":
            server = MemoryServer(streamed)
        else:
            server = MemoryServer(resource=_DrainingStream(during))
        protocol, transport = connectOn(server, HalfClosingTransport)
        protocol.dataReceived(GET % (b"stream",))
        self.assertEqual(headSent, [True])
        [response] = parseResponses(transport.value())
        self.assertEqual((response.code, response.body), (200, b"abcd"))
        self.assertIsNone(response.header(b"connection"))
        return server, protocol, transport

    def parts(self, during: Callable[[], None]) -> Any:
        yield b"ab"
        during()
        yield b"cd"

    def test_nextRequestAnswered(self) -> None:
        """
        A request sent within the grace after the response is answered, with
        C{Connection: close}, and the connection closes after it.
        """
        for kind in ("wsgi", "web"):
            server, protocol, transport = self.serve(kind)
            self.assertFalse(transport.disconnecting or transport.writeClosed)
            server.reactor.advance(1.9)
            protocol.dataReceived(GET % (b"stream",))
            first, second = parseResponses(transport.value())
            self.assertEqual(second.code, 200)
            self.assertEqual(second.header(b"connection"), b"close")
            self.assertTrue(transport.disconnecting)

    def test_closedAfterGrace(self) -> None:
        """
        Still idle once the grace has passed, the connection closes as an
        idle one does: our side first.
        """
        for kind in ("wsgi", "web"):
            server, protocol, transport = self.serve(kind)
            server.reactor.advance(1.9)
            self.assertFalse(transport.disconnecting or transport.writeClosed)
            server.reactor.advance(0.2)
            self.assertTrue(transport.writeClosed)
