"""
Tests for L{twsgi.wsgi.bridge} and L{twsgi.server.site}: a real L{TwsgiSite} over an
in-memory transport, with a synchronous thread pool and a fake reactor
whose C{callFromThread} runs at once.  Assertions are on the raw bytes that
would go on the wire.
"""

from __future__ import annotations

import array
import io
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.drain import Body, ManualPool
from tests.helpers.handoff import (
    ERROR_PAGE,
    FIRST_CHUNK,
    ErrorPage,
    QueuedCallsReactor,
    failsAfterFirstChunk,
)
from tests.helpers.httpstrategies import (
    assertNativeEnviron,
    fieldValues,
    targets,
    tokens,
)
from tests.helpers.responses import Response, disconnect, parseResponses
from twsgi import ClientDisconnected
from twsgi.server.site import TwsgiSite
from twsgi.testing import SynchronousReactor, SynchronousThreadPool
from twsgi.wsgi import bridge as _bridge
from twsgi.wsgi.bridge import FileWrapper, WSGIResource
from twsgi.wsgi.environ import RequestFacts
from twsgi.wsgi.exchange import HIGH_WATER, LostCallbacks
from twsgi.wsgi.pool import PoolStats, WorkerPool

App = Callable[..., Any]


class BridgeTestCase(SynchronousTestCase):
    """
    Serve a WSGI application on a L{TwsgiSite} over a L{StringTransport}.
    """

    def setUp(self) -> None:
        self.reactor = SynchronousReactor()
        self.reactor.advance(1_795_104_000)
        self.events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def connect(self, app: App, **kwargs: Any) -> tuple[Any, StringTransport]:
        """
        Make a site for C{app} and connect a client to it.

        @return: the server protocol and its transport.
        """
        resource = WSGIResource(
            self.reactor, SynchronousThreadPool(), app, appName="tests:app", **kwargs
        )
        self.site = TwsgiSite(resource, self.reactor)
        protocol = self.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5555))
        transport = StringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 8000),
            peerAddress=IPv4Address("TCP", "127.0.0.1", 5555),
        )
        protocol.makeConnection(transport)
        return protocol, transport

    def request(
        self, app: App, raw: bytes, method: bytes = b"GET", **kwargs: Any
    ) -> tuple[Response, StringTransport]:
        """
        Send C{raw} to a new connection serving C{app}, and parse the one
        response.
        """
        protocol, transport = self.connect(app, **kwargs)
        protocol.dataReceived(raw)
        responses = parseResponses(transport.value(), method)
        self.assertEqual(len(responses), 1, transport.value())
        return responses[0], transport

    def get(
        self, app: App, target: bytes = b"/", method: bytes = b"GET", **kwargs: Any
    ) -> tuple[Response, StringTransport]:
        """
        Make one HTTP/1.1 request without a body.
        """
        raw = method + b" " + target + b" HTTP/1.1\r\nHost: example.com\r\n\r\n"
        return self.request(app, raw, method, **kwargs)

    def getQueued(self, app: App) -> tuple[list[Response], StringTransport]:
        """
        Make one HTTP/1.1 request with a reactor whose C{callFromThread}
        calls wait (L{QueuedCallsReactor}) until the application is done.

        @return: the responses, and the transport.
        """
        reactor = self.reactor = QueuedCallsReactor()
        protocol, transport = self.connect(app)
        protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual(transport.value(), b"")
        reactor.runQueued()
        return parseResponses(transport.value()), transport

    def failureLevels(self) -> list[Any]:
        """
        The level of every event logged with a failure during the test: an
        application's error is an error, not a critical condition of the
        server.
        """
        return [e["log_level"] for e in self.events if "log_failure" in e]

    def logText(self) -> str:
        """
        Everything logged during the test, formatted.
        """
        from twisted.logger import formatEvent

        return "\n".join(formatEvent(e) for e in self.events)


def listApp(
    body: list[bytes] | tuple[bytes, ...],
    status: str = "200 OK",
    headers: list[tuple[str, str]] | None = None,
) -> App:
    """
    An application that answers C{status}, C{headers} and a list body.
    """

    def app(environ: dict[str, Any], startResponse: Any) -> Any:
        startResponse(status, headers if headers is not None else [])
        return body

    return app


class ClosingBody:
    """
    A response iterable that counts its C{close()} calls, and can run a hook
    between chunks.
    """

    def __init__(
        self, chunks: list[bytes], hook: Callable[[int], None] | None = None
    ) -> None:
        self.chunks = chunks
        self.hook = hook
        self.closed = 0
        self.produced = 0

    def __iter__(self) -> Iterator[bytes]:
        for i, chunk in enumerate(self.chunks):
            if self.hook is not None:
                self.hook(i)
            self.produced += 1
            yield chunk

    def close(self) -> None:
        self.closed += 1


class ResponseTests(BridgeTestCase):
    """
    The response an application gives is sent as it should be.
    """

    def test_listBody(self) -> None:
        """
        A list body is sent with a C{Content-Length}, a C{Date} and our
        C{Server} header, not chunked.
        """
        response, transport = self.get(
            listApp([b"hello ", b"world"], headers=[("Content-Type", "text/plain")])
        )
        self.assertEqual(response.status, b"HTTP/1.1 200 OK")
        self.assertEqual(response.body, b"hello world")
        self.assertEqual(response.header(b"Content-Length"), [b"11"])
        self.assertEqual(response.header(b"Content-Type"), [b"text/plain"])
        self.assertEqual(response.header(b"Server"), [b"twsgi"])
        self.assertEqual(response.header(b"Date"), [b"Thu, 19 Nov 2026 16:00:00 GMT"])
        self.assertFalse(response.chunked)
        self.assertFalse(transport.disconnecting)

    def test_tupleBody(self) -> None:
        """
        A tuple body gets a C{Content-Length} too.
        """
        response, _ = self.get(listApp((b"ab", b"c")))
        self.assertEqual(
            (response.body, response.header(b"Content-Length")), (b"abc", [b"3"])
        )

    def test_emptyListBody(self) -> None:
        """
        An empty list body is sent as C{Content-Length: 0}.
        """
        response, _ = self.get(listApp([]))
        self.assertEqual(
            (response.body, response.header(b"Content-Length")), (b"", [b"0"])
        )

    def test_largeListBody(self) -> None:
        """
        A list body of several megabytes arrives whole, after its head, with
        its C{Content-Length}; the next pipelined request is answered after
        it.
        """
        big = bytes(range(256)) * 12_000
        protocol, transport = self.connect(
            lambda e, s: listApp([big] if e["PATH_INFO"] == "/big" else [b"small"])(
                e, s
            )
        )
        protocol.dataReceived(
            b"GET /big HTTP/1.1\r\nHost: h\r\n\r\n"
            b"GET /small HTTP/1.1\r\nHost: h\r\n\r\n"
        )
        first, second = parseResponses(transport.value())
        self.assertEqual(first.header(b"Content-Length"), [b"%d" % len(big)])
        self.assertEqual(first.body, big)
        self.assertEqual(second.body, b"small")

    def test_largeListBodyHead(self) -> None:
        """
        A HEAD request for a large list body gets its length and no body.
        """
        big = b"x" * 1_000_000
        response, transport = self.get(listApp([big]), method=b"HEAD")
        self.assertEqual(response.header(b"Content-Length"), [b"1000000"])
        self.assertTrue(transport.value().endswith(b"\r\n\r\n"))

    def test_appDateAndServerKept(self) -> None:
        """
        The application's own C{Date} and C{Server} headers are sent, and not
        doubled by ours.
        """
        response, _ = self.get(
            listApp(
                [b"x"],
                headers=[
                    ("Server", "my-app/1.0"),
                    ("date", "Mon, 01 Jan 2024 00:00:00 GMT"),
                ],
            )
        )
        self.assertEqual(response.header(b"Server"), [b"my-app/1.0"])
        self.assertEqual(response.header(b"Date"), [b"Mon, 01 Jan 2024 00:00:00 GMT"])

    def test_repeatedHeadersKept(self) -> None:
        """
        Repeated response headers (C{Set-Cookie}) are all sent, in order.
        """
        response, _ = self.get(
            listApp([b"x"], headers=[("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
        )
        self.assertEqual(response.header(b"Set-Cookie"), [b"a=1", b"b=2"])

    def test_reason(self) -> None:
        """
        The application's reason phrase is sent.
        """
        response, _ = self.get(listApp([b"x"], status="418 I'm a teapot"))
        self.assertEqual(response.status, b"HTTP/1.1 418 I'm a teapot")

    def test_appContentLengthKept(self) -> None:
        """
        The application's own C{Content-Length} is sent, once.
        """
        response, _ = self.get(listApp([b"abc"], headers=[("Content-Length", "3")]))
        self.assertEqual(response.header(b"Content-Length"), [b"3"])
        self.assertEqual(response.body, b"abc")

    def test_hopByHopDropped(self) -> None:
        """
        An application's C{Transfer-Encoding} is not sent; the server frames
        the body itself.
        """
        response, _ = self.get(
            listApp([b"abc"], headers=[("Transfer-Encoding", "chunked")])
        )
        self.assertEqual(response.header(b"Transfer-Encoding"), [])
        self.assertEqual(response.body, b"abc")

    def test_connectionClose(self) -> None:
        """
        An application asking for C{Connection: close} gets it, and the
        connection is closed after the response.
        """
        response, transport = self.get(
            listApp([b"abc"], headers=[("Connection", "close")])
        )
        self.assertEqual(response.header(b"Connection"), [b"close"])
        self.assertTrue(transport.disconnecting)

    def test_head(self) -> None:
        """
        A HEAD response has no body but the C{Content-Length} a GET has.
        """
        body = ClosingBody([b"hello"])

        def app(environ: Any, startResponse: Any) -> Any:
            startResponse("200 OK", [])
            return [b"hello"] if environ["PATH_INFO"] == "/list" else body

        response, transport = self.get(app, b"/list", method=b"HEAD")
        self.assertEqual(response.header(b"Content-Length"), [b"5"])
        self.assertTrue(transport.value().endswith(b"\r\n\r\n"))
        self.assertNotIn(b"hello", transport.value())

        response, transport = self.get(app, b"/stream", method=b"HEAD")
        self.assertNotIn(b"hello", transport.value())
        self.assertEqual(response.header(b"Transfer-Encoding"), [])
        self.assertEqual(body.closed, 1)

    def test_listOfWideMemoryviews(self) -> None:
        """
        A list body of memoryviews whose items are wider than a byte gets
        the C{Content-Length} of its bytes, for GET and for HEAD, not the
        count of its items (which would end the body early and leave the
        rest to be read as the next response).
        """
        data = memoryview(array.array("i", [1, 2]))
        response, transport = self.get(listApp([data]))  # type: ignore[list-item]
        self.assertEqual(response.header(b"Content-Length"), [b"8"])
        self.assertEqual(response.body, data.tobytes())
        response, _ = self.get(listApp([data]), method=b"HEAD")  # type: ignore[list-item]
        self.assertEqual(response.header(b"Content-Length"), [b"8"])

    def test_headAfterWrite(self) -> None:
        """
        A HEAD response whose application wrote with C{write()} before it
        returned a list has no C{Content-Length}, as the GET response (sent
        chunked) has none: the list is not the whole body.
        """

        def app(environ: Any, startResponse: Any) -> Any:
            write = startResponse("200 OK", [])
            write(b"hello ")
            return [b"end"]

        response, _ = self.get(app)
        self.assertEqual(response.body, b"hello end")
        self.assertEqual(response.header(b"Content-Length"), [])
        response, transport = self.get(app, method=b"HEAD")
        self.assertEqual(response.header(b"Content-Length"), [])
        self.assertTrue(transport.value().endswith(b"\r\n\r\n"))

    def test_noBodyStatuses(self) -> None:
        """
        204 and 304 responses carry no body, whatever the application
        returns, and get no C{Content-Length}.
        """
        for status in ["204 No Content", "304 Not Modified"]:
            for body in [[b"ignored"], ClosingBody([b"ignored"])]:
                response, transport = self.get(listApp(body, status=status))
                self.assertEqual(response.status, b"HTTP/1.1 " + status.encode())
                self.assertNotIn(b"ignored", transport.value())
                self.assertEqual(response.header(b"Content-Length"), [])
                self.assertEqual(response.header(b"Transfer-Encoding"), [])
                self.assertTrue(transport.value().endswith(b"\r\n\r\n"))

    def test_writeCallable(self) -> None:
        """
        Bytes given to the C{write()} callable are sent before the returned
        body.
        """

        def app(environ: Any, startResponse: Any) -> Any:
            write = startResponse("200 OK", [])
            write(b"one ")
            write(b"two ")
            return [b"three"]

        response, _ = self.get(app)
        self.assertEqual(response.body, b"one two three")
        self.assertTrue(response.chunked)

    def test_generatorChunked(self) -> None:
        """
        A generator body is sent chunked on HTTP/1.1, and the connection
        stays open.
        """

        def app(environ: Any, startResponse: Any) -> Any:
            startResponse("200 OK", [("Content-Type", "text/plain")])
            yield b"a"
            yield b""
            yield b"bc"

        response, transport = self.get(app)
        self.assertTrue(response.chunked)
        self.assertEqual(response.body, b"abc")
        self.assertEqual(response.header(b"Content-Length"), [])
        self.assertFalse(transport.disconnecting)

    def test_generatorStartsLate(self) -> None:
        """
        A generator that calls C{start_response} on its first step works.
        """

        def app(environ: Any, startResponse: Any) -> Any:
            startResponse("201 Created", [])
            yield b"late"

        def lazy(environ: Any, startResponse: Any) -> Any:
            return app(environ, startResponse)

        response, _ = self.get(lazy)
        self.assertEqual(
            (response.status, response.body), (b"HTTP/1.1 201 Created", b"late")
        )

    def test_generatorHTTP10(self) -> None:
        """
        A generator body on HTTP/1.0 is sent unchunked and the connection
        closed at its end.
        """

        def app(environ: Any, startResponse: Any) -> Any:
            startResponse("200 OK", [])
            yield b"a"
            yield b"b"

        response, transport = self.request(app, b"GET / HTTP/1.0\r\n\r\n")
        self.assertFalse(response.chunked)
        self.assertEqual(response.body, b"ab")
        self.assertTrue(transport.disconnecting)

    def test_keepAlive(self) -> None:
        """
        Two pipelined requests on one connection get two responses.
        """
        protocol, transport = self.connect(
            lambda e, s: listApp([e["PATH_INFO"].encode()])(e, s)
        )
        protocol.dataReceived(
            b"GET /one HTTP/1.1\r\nHost: h\r\n\r\nGET /two HTTP/1.1\r\nHost: h\r\n\r\n"
        )
        self.assertEqual(
            [r.body for r in parseResponses(transport.value())], [b"/one", b"/two"]
        )

    def test_shortListBody(self) -> None:
        """
        A list body shorter than the application's C{Content-Length} gives
        a 500 (the client would otherwise wait forever for the rest), logged
        with the application's name.
        """
        response, transport = self.get(
            listApp([b"abc"], headers=[("Content-Length", "10")])
        )
        self.assertEqual(response.status, b"HTTP/1.1 500 Internal Server Error")
        self.assertNotIn(b"abc", transport.value())
        self.assertIn("7 bytes shorter than its Content-Length", self.logText())
        self.assertIn("tests:app", self.logText())

    def test_shortStreamedBody(self) -> None:
        """
        A streamed body shorter than the application's C{Content-Length}
        closes the connection early once the head is sent, and is logged.
        """
        body = ClosingBody([b"abc"])
        protocol, transport = self.connect(
            listApp(body, headers=[("Content-Length", "10")])  # type: ignore[arg-type]
        )
        protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertTrue(transport.disconnecting)
        self.assertTrue(transport.value().endswith(b"\r\n\r\nabc"))
        self.assertIn("fewer than its Content-Length", self.logText())
        self.assertEqual(body.closed, 1)

    def test_emptyStreamedBodyShort(self) -> None:
        """
        A streamed body that ends without a byte, short of its
        C{Content-Length}, gets a 500: nothing of it was sent, so it is not
        cut off under its head.
        """
        body = ClosingBody([b""])
        response, transport = self.get(
            listApp(body, headers=[("Content-Length", "10")])  # type: ignore[arg-type]
        )
        self.assertEqual(response.status, b"HTTP/1.1 500 Internal Server Error")
        self.assertIn("10 bytes shorter than its Content-Length", self.logText())
        self.assertFalse(transport.disconnected)
        self.assertEqual(body.closed, 1)

    def test_shortStreamedBodyBeforeHead(self) -> None:
        """
        A streamed body that ends short of its C{Content-Length} before the
        I/O thread sent its head gets a 500 instead: the head and the body
        are taken back rather than cut off unsent.
        """
        body = ClosingBody([b"abc"])
        [response], transport = self.getQueued(
            listApp(body, headers=[("Content-Length", "10")])  # type: ignore[arg-type]
        )
        self.assertEqual(response.status, b"HTTP/1.1 500 Internal Server Error")
        self.assertNotIn(b"abc", transport.value())
        self.assertIn("7 bytes shorter than its Content-Length", self.logText())
        self.assertEqual(body.closed, 1)

    def test_raisesAfterFirstChunkBeforeHead(self) -> None:
        """
        A streamed body that raises after its first chunk, before the I/O
        thread sent its head, gets a 500 (with or without a
        C{Content-Length}): the head and the chunk are taken back rather
        than cut off unsent.
        """
        for headers in [[], [("Content-Length", "12")]]:
            self.events.clear()

            def hook(i: int) -> None:
                if i == 1:
                    raise ZeroDivisionError("after the first chunk")

            body = ClosingBody([b"part1\n", b"part2\n"], hook)
            [response], transport = self.getQueued(
                listApp(body, headers=headers)  # type: ignore[arg-type]
            )
            self.assertEqual(response.status, b"HTTP/1.1 500 Internal Server Error")
            self.assertNotIn(b"part1", transport.value())
            self.assertEqual(body.closed, 1)
            self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
            self.assertIn("tests:app", self.logText())

    def test_raisesAfterHeadTaken(self) -> None:
        """
        A streamed body that raises once the I/O thread took its head (it
        was woken between two chunks) has its response cut off: the head
        and the first chunk, then no end.
        """
        reactor = self.reactor = QueuedCallsReactor()

        def hook(i: int) -> None:
            if i == 1:
                reactor.runQueued()
                raise ZeroDivisionError("after the head went out")

        body = ClosingBody([b"part1\n", b"part2\n"], hook)
        protocol, transport = self.connect(listApp(body))  # type: ignore[arg-type]
        protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        reactor.runQueued()
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertIn(b"part1", transport.value())
        self.assertNotIn(b"500", transport.value())
        self.assertTrue(transport.disconnecting)
        self.assertEqual(body.closed, 1)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_excInfoBeforeHeadTaken(self) -> None:
        """
        C{start_response(exc_info)} from an error middleware, after the
        first chunk of a streamed body was handed over but before the I/O
        thread took its head, replaces the head: the client gets the
        application's own error page, none of the first body, and the
        connection stays open.
        """
        app = ErrorPage(failsAfterFirstChunk(lambda: None))
        [response], transport = self.getQueued(app)
        self.assertEqual(response.status, b"HTTP/1.1 500 Oops")
        self.assertEqual(response.body, ERROR_PAGE)
        self.assertNotIn(FIRST_CHUNK, transport.value())
        self.assertFalse(transport.disconnecting)
        self.assertEqual(app.reraised, [])
        self.assertEqual(self.flushLoggedErrors(ZeroDivisionError), [])

    def test_excInfoAfterHeadTaken(self) -> None:
        """
        C{start_response(exc_info)} once the I/O thread took the head (and
        wrote it with the first chunk) re-raises the error, and the
        response is cut off after that chunk.
        """
        reactor = self.reactor = QueuedCallsReactor()
        app = ErrorPage(failsAfterFirstChunk(reactor.runQueued))
        protocol, transport = self.connect(app)
        protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        reactor.runQueued()
        self.assertEqual([type(e) for e in app.reraised], [ZeroDivisionError])
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertTrue(transport.value().endswith(b"\r\n\r\n" + FIRST_CHUNK))
        self.assertNotIn(ERROR_PAGE, transport.value())
        self.assertTrue(transport.disconnecting)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_streamedBodyTooLongBeforeHead(self) -> None:
        """
        A streamed body that goes past its C{Content-Length} before the I/O
        thread sent its head is cut at that length, as when the head went
        out first.
        """
        body = ClosingBody([b"abc", b"defgh", b"never"])
        [response], transport = self.getQueued(
            listApp(body, headers=[("Content-Length", "4")])  # type: ignore[arg-type]
        )
        self.assertEqual(response.status, b"HTTP/1.1 200 OK")
        self.assertEqual(response.body, b"abcd")
        self.assertFalse(transport.disconnecting)
        self.assertEqual((body.produced, body.closed), (2, 1))


class CloseTests(BridgeTestCase):
    """
    C{close()} on the application's iterable is called exactly once.
    """

    def test_normal(self) -> None:
        """
        After a complete streamed response, C{close()} is called once.
        """
        body = ClosingBody([b"a", b"b"])
        response, _ = self.get(listApp(body))  # type: ignore[arg-type]
        self.assertEqual(response.body, b"ab")
        self.assertEqual(body.closed, 1)

    def test_appRaisesMidIteration(self) -> None:
        """
        When the iterable raises after the head was sent, C{close()} is
        called once, the connection is closed early and the error logged.
        """

        def hook(i: int) -> None:
            if i == 1:
                raise ZeroDivisionError("mid-stream")

        body = ClosingBody([b"a", b"b", b"c"], hook)
        protocol, transport = self.connect(listApp(body))  # type: ignore[arg-type]
        protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual(body.closed, 1)
        self.assertTrue(transport.disconnecting)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertNotIn(b"0\r\n\r\n", transport.value())
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertIn("tests:app", self.logText())

    def test_appRaisesBeforeFirstChunk(self) -> None:
        """
        When the iterable raises before any body bytes, the client gets a
        500, C{close()} is called once, and the error is logged at error
        level.
        """

        def hook(i: int) -> None:
            raise ZeroDivisionError("at once")

        body = ClosingBody([b"a"], hook)
        response, _ = self.get(listApp(body))  # type: ignore[arg-type]
        self.assertEqual(response.status, b"HTTP/1.1 500 Internal Server Error")
        self.assertEqual(body.closed, 1)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertEqual(self.failureLevels(), [LogLevel.error])

    def test_clientGoesAway(self) -> None:
        """
        When the client goes away mid-stream, iteration stops and
        C{close()} is called once.
        """
        holder: list[Any] = []

        def hook(i: int) -> None:
            if i == 2:
                disconnect(*holder)

        body = ClosingBody([b"a", b"b", b"c", b"d", b"e"], hook)
        protocol, transport = self.connect(listApp(body))  # type: ignore[arg-type]
        holder.extend([protocol, transport])
        protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual(body.closed, 1)
        self.assertLessEqual(body.produced, 4)
        self.assertNotIn(b"e", transport.value().partition(b"\r\n\r\n")[2])

    def test_closeRaises(self) -> None:
        """
        A C{close()} that raises is logged at error level; the response was
        sent already.
        """
        body = ClosingBody([b"ok"])

        def close() -> None:
            body.closed += 1
            raise ValueError("close failed")

        body.close = close  # type: ignore[method-assign]
        response, _ = self.get(listApp(body))  # type: ignore[arg-type]
        self.assertEqual(response.body, b"ok")
        self.assertEqual(body.closed, 1)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
        self.assertEqual(self.failureLevels(), [LogLevel.error])

    def test_closeOnClientGoneBeforeStart(self) -> None:
        """
        An iterable returned for a client that already went away is closed
        once and nothing is written.
        """
        body = ClosingBody([b"a"])
        holder: list[Any] = []

        def app(environ: Any, startResponse: Any) -> Any:
            disconnect(*holder)
            startResponse("200 OK", [])
            return body

        protocol, transport = self.connect(app)
        holder.extend([protocol, transport])
        protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual(body.closed, 1)
        self.assertEqual(transport.value(), b"")


class ClientGoneTests(BridgeTestCase):
    """
    A client that goes away while the application runs gets nothing written
    to it, whatever the application returns, and what it returned is closed.
    """

    def goneDuring(self, result: Callable[[Any, Any], Any]) -> StringTransport:
        """
        Serve one request with an application that loses the client, calls
        C{start_response} and returns C{result(environ, write)}.
        """
        holder: list[Any] = []

        def app(environ: Any, startResponse: Any) -> Any:
            disconnect(*holder)
            write = startResponse("200 OK", [])
            return result(environ, write)

        protocol, transport = self.connect(app)
        holder.extend([protocol, transport])
        protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        return transport

    def test_list(self) -> None:
        """
        A list body for a client gone is dropped.
        """
        transport = self.goneDuring(lambda environ, write: [b"dropped"])
        self.assertEqual(transport.value(), b"")

    def test_write(self) -> None:
        """
        C{write()} for a client gone stops the application (at the latest
        once the I/O thread has noticed), and nothing is written or logged.
        """
        calls: list[int] = []

        def result(environ: Any, write: Any) -> Any:
            for i in range(100):
                write(b"dropped")
                calls.append(i)
            return []

        transport = self.goneDuring(result)
        self.assertEqual(transport.value(), b"")
        self.assertLess(len(calls), 3)

    def test_fileWrapper(self) -> None:
        """
        A real file for a client gone is closed without being sent.
        """
        directory = tempfile.mkdtemp(prefix="twsgi-test-")
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "f")
        with open(path, "wb") as f:
            f.write(b"dropped")
        opened: list[Any] = []

        def result(environ: Any, write: Any) -> Any:
            opened.append(open(path, "rb"))
            return environ["wsgi.file_wrapper"](opened[0])

        transport = self.goneDuring(result)
        self.assertEqual(transport.value(), b"")
        self.assertTrue(opened[0].closed)

    def test_raiseAfterWrite(self) -> None:
        """
        An application that raises after its client went away (mid-body) is
        logged once and nothing more is written.
        """
        holder: list[Any] = []

        def app(environ: Any, startResponse: Any) -> Any:
            write = startResponse("200 OK", [])
            write(b"sent")
            disconnect(*holder)
            raise ZeroDivisionError("after the client left")

        protocol, transport = self.connect(app)
        holder.extend([protocol, transport])
        protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertTrue(transport.value().endswith(b"sent\r\n"))
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)


class InputAfterDisconnectTests(BridgeTestCase):
    """
    The request body, which arrived whole before the application was
    called, stays readable from C{wsgi.input} after the client went away.
    An application that lets L{ClientDisconnected} out then is logged as
    one line, not as an application error.
    """

    def readAfterGone(self, app: App) -> tuple[StringTransport, list[Any]]:
        """
        Serve one POST with C{app}, which is called with the client already
        gone; return the transport and the access records.
        """
        records: list[Any] = []
        holder: list[Any] = []

        def wrapper(environ: Any, startResponse: Any) -> Any:
            disconnect(*holder)
            return app(environ, startResponse)

        resource = WSGIResource(
            self.reactor, SynchronousThreadPool(), wrapper, appName="tests:app"
        )
        site = TwsgiSite(resource, self.reactor, observers=[records.append])
        protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5555))
        transport = StringTransport()
        protocol.makeConnection(transport)
        holder.extend([protocol, transport])
        protocol.dataReceived(
            b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\nab\ncde"
        )
        return transport, records

    def assertOneLine(self) -> None:
        """
        The log holds the one line and no failure.
        """
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertEqual([e for e in self.events if e.get("log_failure")], [])
        self.assertEqual(
            self.logText().count(
                "client disconnected while the app read the body: POST /up"
            ),
            1,
            self.logText(),
        )

    def test_readable(self) -> None:
        """
        Every read method reads the body after the client left; nothing is
        sent, nothing is logged, and the one record is the 499 of the
        client that left.
        """
        seen: list[Any] = []

        def app(environ: Any, startResponse: Any) -> Any:
            stream = environ["wsgi.input"]
            seen.append(stream.readline())
            seen.append(stream.read(None))
            stream.seek(0)
            seen.append(stream.readlines())
            stream.seek(0)
            seen.append(list(stream))
            seen.append(stream.read())
            startResponse("200 OK", [])
            return [b"unsent"]

        transport, records = self.readAfterGone(app)
        lines = [b"ab\n", b"cde"]
        self.assertEqual(seen, [b"ab\n", b"cde", lines, lines, b""])
        self.assertEqual(transport.value(), b"")
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertEqual([(r.status, r.disconnected) for r in records], [(499, True)])

    def test_uncaught(self) -> None:
        """
        An application that lets L{ClientDisconnected} out after the client
        left is logged as one info line without a traceback, and no 500 is
        answered or recorded: the one record is the 499 of the client that
        left.
        """

        def app(environ: Any, startResponse: Any) -> Any:
            raise ClientDisconnected("the client left")

        transport, records = self.readAfterGone(app)
        self.assertOneLine()
        self.assertEqual(transport.value(), b"")
        self.assertEqual([(r.status, r.disconnected) for r in records], [(499, True)])

    def test_wrapped(self) -> None:
        """
        An application (or framework) that turns L{ClientDisconnected} into
        its own exception, chained, is logged the same way.
        """

        class UnreadablePostError(OSError):
            pass

        def app(environ: Any, startResponse: Any) -> Any:
            try:
                raise ClientDisconnected("the client left")
            except OSError as e:
                raise UnreadablePostError("cannot read") from e

        transport, records = self.readAfterGone(app)
        self.assertOneLine()
        self.assertEqual(transport.value(), b"")

    def test_inBody(self) -> None:
        """
        A response iterable that reads C{wsgi.input} after the client went
        away reads it whole; one that then raises L{ClientDisconnected} is
        logged the same way, and closed.
        """
        closed: list[bool] = []
        read: list[bytes] = []

        class Body:
            def __init__(self, stream: Any) -> None:
                self.stream = stream

            def __iter__(self) -> Iterator[bytes]:
                read.append(self.stream.read())
                raise ClientDisconnected("the client left")
                yield b""

            def close(self) -> None:
                closed.append(True)

        def app(environ: Any, startResponse: Any) -> Any:
            startResponse("200 OK", [])
            return Body(environ["wsgi.input"])

        transport, records = self.readAfterGone(app)
        self.assertOneLine()
        self.assertEqual((read, closed), ([b"ab\ncde"], [True]))

    def test_bodyClosedAfter(self) -> None:
        """
        The body is closed once the application and its iterable are done
        with it (and not before: a response iterable still reads it).
        """
        streams: list[Any] = []

        def body() -> Iterator[bytes]:
            yield streams[0].read()

        def app(environ: Any, startResponse: Any) -> Any:
            streams.append(environ["wsgi.input"])
            startResponse("200 OK", [])
            return body()

        response, _ = self.request(
            app, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok"
        )
        self.assertEqual(response.body, b"ok")
        self.assertTrue(streams[0].closed)

    def test_connected(self) -> None:
        """
        While the client is there, C{wsgi.input} reads the body by every
        method.
        """
        seen: list[Any] = []

        def app(environ: Any, startResponse: Any) -> Any:
            stream = environ["wsgi.input"]
            seen.append(stream.readline(2))
            seen.append(stream.read(None))
            seen.append(stream.read())
            startResponse("200 OK", [])
            return [b"ok"]

        response, _ = self.request(
            app, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 7\r\n\r\nab\ncdef"
        )
        self.assertEqual(response.body, b"ok")
        self.assertEqual(seen, [b"ab", b"\ncdef", b""])

    def test_closedByApp(self) -> None:
        """
        An application that closes C{wsgi.input} itself and reads it gets a
        500 and a logged error: not mistaken for a client that went away.
        """

        def app(environ: Any, startResponse: Any) -> Any:
            environ["wsgi.input"].close()
            environ["wsgi.input"].read()
            return []

        response, _ = self.get(app)
        self.assertEqual(response.status, b"HTTP/1.1 500 Internal Server Error")
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
        self.assertNotIn("client disconnected while", self.logText())

    def test_otherError(self) -> None:
        """
        An application error while the client is there is still logged as
        one, with its traceback, and answered with a 500.
        """

        def app(environ: Any, startResponse: Any) -> Any:
            raise OSError("the app's own")

        response, _ = self.get(app)
        self.assertEqual(response.status, b"HTTP/1.1 500 Internal Server Error")
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
        self.assertNotIn("client disconnected", self.logText())


class QueuedClientGoneTests(BridgeTestCase):
    """
    A request whose client went away while it waited for a WSGI thread is
    not run; one whose client is there is.
    """

    def queue(
        self, target: bytes = b"/q"
    ) -> tuple[Any, StringTransport, ManualPool, list[str]]:
        """
        Queue one request for C{target} on a L{ManualPool}.
        """
        calls: list[str] = []

        def app(environ: Any, startResponse: Any) -> Any:
            calls.append(environ["PATH_INFO"])
            startResponse("200 OK", [("Content-Length", "2")])
            return [b"ok"]

        protocol, transport = self.connect(app)
        pool = ManualPool()
        self.site.resource.threadpool = pool
        protocol.dataReceived(b"GET %s HTTP/1.1\r\nHost: h\r\n\r\n" % target)
        self.assertEqual(len(pool.work), 1)
        return protocol, transport, pool, calls

    def test_goneBeforeThread(self) -> None:
        """
        The application is not called, nothing is sent, and one line is
        logged.
        """
        protocol, transport, pool, calls = self.queue()
        disconnect(protocol, transport)
        pool.runAll()
        self.assertEqual(calls, [])
        self.assertEqual(transport.value(), b"")
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertEqual(
            self.logText().count(
                "client disconnected before a WSGI thread took its request: GET /q"
            ),
            1,
        )

    def test_goneEscaped(self) -> None:
        """
        The line escapes the C1 controls of the target (NEL, CSI), as the
        access log does, so that it stays one line of plain text.
        """
        protocol, transport, pool, calls = self.queue(b"/q\x85x\x9b31m")
        disconnect(protocol, transport)
        pool.runAll()
        text = self.logText()
        self.assertIn("its request: GET /q\\x85x\\x9b31m;", text)
        self.assertNotIn("\x85", text)
        self.assertNotIn("\x9b", text)

    def test_goneLeavesBacklog(self) -> None:
        """
        A queued request whose client went away no longer counts in the
        pool's backlog: it takes no C{--max-pending} slot from the next
        request, and the count is right again once a thread took it.
        """
        pool = WorkerPool(1, 1)
        resource = WSGIResource(
            self.reactor, pool, lambda environ, startResponse: [], appName="t"
        )
        resource.maxPending = 1
        site = TwsgiSite(resource, self.reactor)
        first = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5555))
        firstTransport = StringTransport()
        first.makeConnection(firstTransport)
        first.dataReceived(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual(pool.stats().backlog, 1)
        disconnect(first, firstTransport)
        self.assertEqual(pool.stats().backlog, 0)
        second = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5556))
        transport = StringTransport()
        second.makeConnection(transport)
        second.dataReceived(b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual(transport.value(), b"")
        self.assertEqual(pool.backlog(), 1)
        disconnect(second, transport)
        pool.start()
        pool.stop(10)
        self.assertEqual(len(pool._tasks), 0)
        self.assertEqual(pool._aside, 0)

    def test_stillThere(self) -> None:
        """
        A queued request whose client is there is run and answered.
        """
        protocol, transport, pool, calls = self.queue()
        pool.runAll()
        self.assertEqual(calls, ["/q"])
        [response] = parseResponses(transport.value())
        self.assertEqual(response.body, b"ok")
        self.assertNotIn("client disconnected", self.logText())


class ErrorTests(BridgeTestCase):
    """
    Application errors and PEP 3333 violations give a 500 or an abort, and
    are logged.
    """

    def test_exceptionBeforeHeaders(self) -> None:
        """
        An exception before the headers gives a 500 with a short body and
        no traceback in it; the traceback goes to the log.
        """

        def app(environ: Any, startResponse: Any) -> Any:
            raise ZeroDivisionError("secret detail")

        response, transport = self.get(app)
        self.assertEqual(response.status, b"HTTP/1.1 500 Internal Server Error")
        self.assertEqual(response.body, b"Internal Server Error\n")
        self.assertNotIn(b"secret detail", transport.value())
        self.assertNotIn(b"Traceback", transport.value())
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertIn("tests:app", self.logText())

    def test_exposeTracebacks(self) -> None:
        """
        With C{exposeTracebacks}, the 500 body holds the traceback.
        """

        def app(environ: Any, startResponse: Any) -> Any:
            raise ZeroDivisionError("secret detail")

        response, _ = self.get(app, exposeTracebacks=True)
        self.assertEqual(response.status, b"HTTP/1.1 500 Internal Server Error")
        self.assertIn(b"Traceback", response.body)
        self.assertIn(b"ZeroDivisionError: secret detail", response.body)
        self.flushLoggedErrors(ZeroDivisionError)

    def test_exceptionAfterHeaders(self) -> None:
        """
        An exception after the head and some body bytes were sent closes the
        connection: the client can tell the response is incomplete.
        """

        def app(environ: Any, startResponse: Any) -> Any:
            startResponse("200 OK", [])
            yield b"partial"
            raise ZeroDivisionError("late")

        protocol, transport = self.connect(app)
        protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertTrue(transport.disconnecting)
        self.assertIn(b"partial", transport.value())
        self.assertNotIn(b"0\r\n\r\n", transport.value())
        self.assertNotIn(b"500", transport.value())
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_excInfoAfterHeaders(self) -> None:
        """
        C{start_response(exc_info)} after the head was sent re-raises, and
        the connection is closed early.
        """

        def app(environ: Any, startResponse: Any) -> Any:
            write = startResponse("200 OK", [])
            write(b"partial")
            try:
                raise KeyError("late")
            except KeyError:
                import sys

                startResponse("500 Oops", [], sys.exc_info())
            return [b"never"]

        protocol, transport = self.connect(app)
        protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertTrue(transport.disconnecting)
        self.assertNotIn(b"never", transport.value())
        self.assertEqual(len(self.flushLoggedErrors(KeyError)), 1)

    def test_excInfoBeforeHeaders(self) -> None:
        """
        C{start_response(exc_info)} before anything was sent replaces the
        head.
        """

        def app(environ: Any, startResponse: Any) -> Any:
            startResponse("200 OK", [("X-A", "1")])
            try:
                raise KeyError("x")
            except KeyError:
                import sys

                startResponse("503 Busy", [("X-B", "2")], sys.exc_info())
            return [b"try later"]

        response, _ = self.get(app)
        self.assertEqual(response.status, b"HTTP/1.1 503 Busy")
        self.assertEqual(
            (response.header(b"X-A"), response.header(b"X-B")), ([], [b"2"])
        )
        self.assertEqual(response.body, b"try later")

    def test_badStatus(self) -> None:
        """
        A status with CRLF in its reason gives a 500, logged with the
        application's name; the injected text is never sent.
        """
        response, transport = self.get(
            listApp([b"body"], status="200 OK\r\nSet-Cookie: evil=1")
        )
        self.assertEqual(response.status, b"HTTP/1.1 500 Internal Server Error")
        self.assertNotIn(b"evil", transport.value())
        self.assertNotIn(b"body", transport.value())
        log = self.logText()
        self.assertIn("tests:app", log)
        self.assertIn("PEP 3333", log)
        self.assertIn("Set-Cookie: evil=1", log)

    def test_badStatusExposed(self) -> None:
        """
        With C{exposeTracebacks}, a bad status is described in the 500 body
        only in escaped form: the CR LF it holds is never sent.
        """
        response, transport = self.get(
            listApp([b"body"], status="200 OK\r\nSet-Cookie: evil=1"),
            exposeTracebacks=True,
        )
        self.assertEqual(response.status, b"HTTP/1.1 500 Internal Server Error")
        self.assertEqual(response.header(b"Set-Cookie"), [])
        self.assertNotIn(b"\r\nSet-Cookie", transport.value())
        self.assertIn(b"ResponseError", response.body)

    def test_badHeaderValue(self) -> None:
        """
        A header value with CR LF gives a 500 logged with the application's
        name; the bad header is never sent.
        """
        response, transport = self.get(
            listApp([b"body"], headers=[("X-Ok", "1"), ("X-Bad", "a\r\nInjected: 1")])
        )
        self.assertEqual(response.status, b"HTTP/1.1 500 Internal Server Error")
        self.assertNotIn(b"Injected", transport.value())
        self.assertNotIn(b"X-Ok", transport.value())
        self.assertIn("tests:app", self.logText())
        self.assertIn("X-Bad", self.logText())

    def test_badHeaderName(self) -> None:
        """
        A header name that is not a token gives a 500.
        """
        response, transport = self.get(listApp([b"x"], headers=[("Bad Name", "v")]))
        self.assertEqual(response.status, b"HTTP/1.1 500 Internal Server Error")
        self.assertNotIn(b"Bad Name", transport.value())

    def test_strBody(self) -> None:
        """
        A body of text instead of bytes gives a 500.
        """
        response, transport = self.get(listApp(["text"]))  # type: ignore[list-item]
        self.assertEqual(response.status, b"HTTP/1.1 500 Internal Server Error")
        self.assertNotIn(b"text\r\n", transport.value())

    def test_noStartResponse(self) -> None:
        """
        A body without C{start_response} gives a 500, for a list and for a
        generator.
        """

        def listBody(environ: Any, startResponse: Any) -> Any:
            return [b"x"]

        def generator(environ: Any, startResponse: Any) -> Any:
            yield b"x"

        for app in [listBody, generator]:
            response, _ = self.get(app)
            self.assertEqual(response.status, b"HTTP/1.1 500 Internal Server Error")
            self.assertIn("start_response", self.logText())

    def test_bodyTooLong(self) -> None:
        """
        A list body longer than the application's C{Content-Length} is sent
        up to that length (PEP 3333), with a warning, and the connection is
        kept.
        """
        for body in [[b"abcdef"], [b"a", b"bcd", b"ef"], (b"ab", b"c", b"d")]:
            self.events.clear()
            protocol, transport = self.connect(
                listApp(body, headers=[("Content-Length", "3")])
            )
            protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n" * 2)
            responses = parseResponses(transport.value())
            self.assertEqual([r.status for r in responses], [b"HTTP/1.1 200 OK"] * 2)
            self.assertEqual([r.body for r in responses], [b"abc"] * 2)
            self.assertFalse(transport.disconnecting)
            self.assertIn(
                "tests:app sent a body longer than its Content-Length (3) for "
                "GET /; sending only 3 bytes",
                self.logText(),
            )


class ErrorsStreamTests(BridgeTestCase):
    """
    C{wsgi.errors} goes to the server's log.
    """

    def test_errorsLogged(self) -> None:
        """
        Text written to C{wsgi.errors} is logged, line by line.
        """

        def app(environ: Any, startResponse: Any) -> Any:
            errors = environ["wsgi.errors"]
            errors.write("first problem\n")
            errors.writelines(["second\n", "third"])
            errors.flush()
            startResponse("200 OK", [])
            return [b"ok"]

        response, _ = self.get(app)
        self.assertEqual(response.body, b"ok")
        log = self.logText()
        for text in ["first problem", "second", "third"]:
            self.assertIn(text, log)

    def test_errorsLineByLine(self) -> None:
        """
        Writes to C{wsgi.errors} that end no line are joined until one does:
        C{print()} of several values (a write per value and separator) is
        one line of the log, not one per piece; an unended line is logged
        once the request is done.
        """

        def app(environ: Any, startResponse: Any) -> Any:
            errors = environ["wsgi.errors"]
            print("total:", 3, "items", file=errors)
            errors.write("two\nlines\n")
            errors.write("unended")
            startResponse("200 OK", [])
            return [b"ok"]

        self.get(app)
        self.assertEqual(
            [e["text"] for e in self.events if e.get("log_format") == "{text}"],
            ["total: 3 items", "two\nlines", "unended"],
        )

    def test_errorsLongUnendedLine(self) -> None:
        """
        An unended line longer than L{_bridge.ERRORS_LINE_SIZE} is logged at
        once rather than held in memory.
        """
        # A small bound, so that the line logged is small: under trial -j
        # each log event goes to the manager as one AMP value (64 KiB at
        # most).
        self.patch(_bridge, "ERRORS_LINE_SIZE", 100)
        logged: list[int] = []
        long = "x" * (_bridge.ERRORS_LINE_SIZE + 1)

        def app(environ: Any, startResponse: Any) -> Any:
            environ["wsgi.errors"].write(long)
            logged.append(sum(e.get("text") == long for e in self.events))
            startResponse("200 OK", [])
            return [b"ok"]

        self.get(app)
        self.assertEqual(logged, [1])


class MoreErrorTests(BridgeTestCase):
    """
    More ways an application can break the rules, none of which may put a
    malformed or mis-framed response on the wire.
    """

    def test_returnedNotAnIterableOfBytes(self) -> None:
        """
        An application that returns its body itself (C{bytes} or C{str}),
        or C{None}, instead of an iterable of bytes gets a 500 and a log
        line that says what it returned and what it should have, not one
        about the items of a string or a traceback of the server.
        """
        for returned, name in [
            (b"body", "bytes"),
            ("body", "str"),
            (None, "None"),
        ]:
            self.events.clear()
            response, _ = self.get(listApp(returned))  # type: ignore[arg-type]
            self.assertEqual(response.status, b"HTTP/1.1 500 Internal Server Error")
            self.assertIn(
                f"the application returned {name}, not an iterable of bytes "
                "(such as [body])",
                self.logText(),
            )
            self.assertEqual(self.failureLevels(), [])

    def test_streamedBodyTooLong(self) -> None:
        """
        A streamed body that goes past the application's C{Content-Length}
        is sent up to that length (PEP 3333): its iteration stops there, it
        is closed, one warning names the application and the target, and
        the connection serves the next request.
        """
        bodies = []

        def app(environ: Any, startResponse: Any) -> Any:
            startResponse("200 OK", [("Content-Length", "4")])
            body = ClosingBody([b"abc", b"defgh", b"never"])
            bodies.append(body)
            return body

        protocol, transport = self.connect(app)
        protocol.dataReceived(b"GET /long?q HTTP/1.1\r\nHost: h\r\n\r\n" * 2)
        responses = parseResponses(transport.value())
        self.assertEqual([r.status for r in responses], [b"HTTP/1.1 200 OK"] * 2)
        self.assertEqual([r.body for r in responses], [b"abcd"] * 2)
        self.assertFalse(transport.disconnecting)
        self.assertEqual([(b.produced, b.closed) for b in bodies], [(2, 1)] * 2)
        warnings = [
            e
            for e in self.events
            if "longer than its Content-Length" in e["log_format"]
        ]
        self.assertEqual(len(warnings), 2)
        self.assertEqual(warnings[0]["log_level"], LogLevel.warn)
        self.assertIn(
            "tests:app sent a body longer than its Content-Length (4) for "
            "GET /long?q; sending only 4 bytes",
            self.logText(),
        )

    def test_writeTooLong(self) -> None:
        """
        C{write()} past the C{Content-Length} raises in the application (PEP
        3333 allows it) and sends none of that chunk; uncaught once the head
        went out, the connection is closed early; uncaught before the I/O thread
        sent the head, the client gets a 500.
        """

        def app(environ: Any, startResponse: Any) -> Any:
            write = startResponse("200 OK", [("Content-Length", "3")])
            write(b"ab")
            write(b"cd")
            return []

        protocol, transport = self.connect(app)
        protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertTrue(transport.disconnecting)
        self.assertTrue(transport.value().endswith(b"\r\n\r\nab"))
        self.assertIn("longer than its Content-Length (3)", self.logText())

        [response], _ = self.getQueued(app)
        self.assertEqual(response.status, b"HTTP/1.1 500 Internal Server Error")

    def test_interimStatus(self) -> None:
        """
        A 1xx status is not a final response: the application gets a 500
        instead of a client left waiting for the real answer.
        """
        for status in ["100 Continue", "103 Early Hints", "101 Switching Protocols"]:
            response, transport = self.get(listApp([], status=status))
            self.assertEqual(response.status, b"HTTP/1.1 500 Internal Server Error")
            self.assertNotIn(status.encode(), transport.value())

    def test_noContentLengthOn204(self) -> None:
        """
        An application's C{Content-Length} on a 204 is not sent (RFC 9110
        section 8.6).
        """
        response, transport = self.get(
            listApp([], status="204 No Content", headers=[("Content-Length", "0")])
        )
        self.assertEqual(response.header(b"Content-Length"), [])
        self.assertFalse(transport.disconnecting)


class RequestBodyTests(BridgeTestCase):
    """
    The request body reaches the application whole, unparsed.
    """

    def echoApp(self, seen: list[dict[str, Any]]) -> App:
        """
        An application that records its environ and the body it read.
        """

        def app(environ: Any, startResponse: Any) -> Any:
            seen.append(dict(environ, body=environ["wsgi.input"].read()))
            startResponse("200 OK", [])
            return [b"ok"]

        return app

    def test_chunkedBody(self) -> None:
        """
        A chunked request body reaches the application whole, with
        C{CONTENT_LENGTH} set to its length.
        """
        seen: list[dict[str, Any]] = []
        response, _ = self.request(
            self.echoApp(seen),
            b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: application/octet-stream\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        )
        self.assertEqual(response.body, b"ok")
        self.assertEqual(seen[0]["body"], b"hello world")
        self.assertEqual(seen[0]["CONTENT_LENGTH"], "11")
        self.assertIs(seen[0]["wsgi.input_terminated"], True)

    def test_formNotParsed(self) -> None:
        """
        A form body is left for the application: on the C{twisted.web}
        path (HTTP/2 streams, resource trees), the request's C{args} hold
        only the query, and the body is read whole from C{wsgi.input}.
        """
        seen: list[dict[str, Any]] = []
        requests: list[Any] = []

        class Recording(WSGIResource):
            def exchangeTarget(self, path: bytes) -> Any:
                # Not the HTTP/1.1 hot path: through twisted.web.
                return None

            def render(self, request: Any) -> Any:
                requests.append(request)
                return super().render(request)

        resource = Recording(self.reactor, SynchronousThreadPool(), self.echoApp(seen))
        site = TwsgiSite(resource, self.reactor)
        protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5555))
        transport = StringTransport()
        protocol.makeConnection(transport)
        body = b"field=value&other=2"
        protocol.dataReceived(
            b"POST /form?q=1 HTTP/1.1\r\nHost: h\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body
        )
        self.assertEqual(requests[0].args, {b"q": [b"1"]})
        self.assertEqual(seen[0]["body"], body)
        self.assertEqual(seen[0]["CONTENT_TYPE"], "application/x-www-form-urlencoded")
        self.assertEqual(seen[0]["QUERY_STRING"], "q=1")

    def test_multipartNotParsed(self) -> None:
        """
        A multipart body is left for the application too.
        """
        seen: list[dict[str, Any]] = []
        body = b'--B\r\nContent-Disposition: form-data; name="f"\r\n\r\nv\r\n--B--\r\n'
        self.request(
            self.echoApp(seen),
            b"POST / HTTP/1.1\r\nHost: h\r\n"
            b"Content-Type: multipart/form-data; boundary=B\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body,
        )
        self.assertEqual(seen[0]["body"], body)

    def test_environFromConnection(self) -> None:
        """
        The environ names the client and the listener from the connection.
        """
        seen: list[dict[str, Any]] = []
        self.request(
            self.echoApp(seen),
            b"GET /a%20b?x=%20 HTTP/1.1\r\nHost: [::1]:9000\r\n"
            b"X_Forwarded_For: 6.6.6.6\r\nX-Forwarded-For: 1.1.1.1\r\n"
            b"Accept: a\r\nAccept: b\r\n\r\n",
        )
        environ = seen[0]
        self.assertEqual(
            {k: environ[k] for k in [
                "REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "RAW_URI",
                "REMOTE_ADDR", "REMOTE_PORT", "SERVER_NAME", "SERVER_PORT",
                "HTTP_X_FORWARDED_FOR", "HTTP_ACCEPT", "wsgi.url_scheme",
                "SCRIPT_NAME",
            ]},
            {
                "REQUEST_METHOD": "GET",
                "PATH_INFO": "/a b",
                "QUERY_STRING": "x=%20",
                "RAW_URI": "/a%20b?x=%20",
                # The loopback peer is a trusted proxy by default, so its
                # X-Forwarded-For names the client (twsgi.server.forwarded).
                "REMOTE_ADDR": "1.1.1.1",
                "REMOTE_PORT": "0",
                "SERVER_NAME": "::1",
                "SERVER_PORT": "9000",
                "HTTP_X_FORWARDED_FOR": "1.1.1.1",
                "HTTP_ACCEPT": "a, b",
                "wsgi.url_scheme": "http",
                "SCRIPT_NAME": "",
            },
        )  # fmt: skip
        self.assertIs(environ["wsgi.file_wrapper"], FileWrapper)


class AccessRecordTests(BridgeTestCase):
    """
    Every finished request gives one access record to every observer.
    """

    def test_record(self) -> None:
        """
        The record holds the request line, status, body bytes, client,
        listener and the duration measured on the reactor's clock; a
        raising observer does not stop the others.
        """
        records: list[Any] = []

        def broken(record: Any) -> None:
            raise RuntimeError("observer bug")

        def app(environ: Any, startResponse: Any) -> Any:
            self.reactor.advance(0.25)
            startResponse("201 Created", [])
            return [b"hello"]

        resource = WSGIResource(self.reactor, SynchronousThreadPool(), app)
        site = TwsgiSite(
            resource, self.reactor, listener="tcp:0", observers=[broken, records.append]
        )
        protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5555))
        protocol.makeConnection(
            StringTransport(peerAddress=IPv4Address("TCP", "10.1.2.3", 4444))
        )
        protocol.dataReceived(
            b"POST /p?q=%22 HTTP/1.1\r\nHost: h\r\nUser-Agent: ua\r\n"
            b"Referer: http://r/\r\nContent-Length: 3\r\n\r\nabc"
        )
        [record] = records
        self.assertEqual(
            (
                record.method,
                record.target,
                record.protocol,
                record.status,
                record.bytesSent,
                record.duration,
                record.remoteAddr,
                record.remotePort,
                record.listener,
                record.userAgent,
                record.referer,
            ),
            ("POST", "/p?q=%22", "HTTP/1.1", 201, 5, 0.25, "10.1.2.3", 4444,
             "tcp:0", "ua", "http://r/"),
        )  # fmt: skip
        self.assertEqual(record.bytesReceived, 3)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class MountTests(BridgeTestCase):
    """
    Below a path prefix, the prefix is C{SCRIPT_NAME}.
    """

    def test_mounted(self) -> None:
        """
        A L{WSGIResource} that is the child C{app} of the root sees
        C{SCRIPT_NAME} C{/app} and the rest of the path as C{PATH_INFO}.
        """
        from twisted.web.resource import Resource

        seen: list[tuple[str, str]] = []

        def app(environ: Any, startResponse: Any) -> Any:
            seen.append((environ["SCRIPT_NAME"], environ["PATH_INFO"]))
            startResponse("200 OK", [])
            return [b"ok"]

        root = Resource()
        root.putChild(b"app", WSGIResource(self.reactor, SynchronousThreadPool(), app))
        site = TwsgiSite(root, self.reactor)
        for target in [b"/app", b"/app/", b"/app/x/y%20z?q=1"]:
            protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5555))
            transport = StringTransport()
            protocol.makeConnection(transport)
            protocol.dataReceived(b"GET " + target + b" HTTP/1.1\r\nHost: h\r\n\r\n")
            self.assertEqual(parseResponses(transport.value())[0].body, b"ok")
        self.assertEqual(seen, [("/app", ""), ("/app", "/"), ("/app", "/x/y z")])

    def test_absoluteForm(self) -> None:
        """
        An absolute-form request reaches the application with its authority
        as C{HTTP_HOST} and its path as C{PATH_INFO}.
        """
        seen: list[dict[str, Any]] = []

        def app(environ: Any, startResponse: Any) -> Any:
            seen.append(environ)
            startResponse("200 OK", [])
            return [b"ok"]

        response, _ = self.request(
            app, b"GET http://other.example:81/p?q=1 HTTP/1.1\r\nHost: h\r\n\r\n"
        )
        self.assertEqual(response.body, b"ok")
        self.assertEqual(
            [
                seen[0][k]
                for k in ["HTTP_HOST", "SERVER_NAME", "PATH_INFO", "QUERY_STRING"]
            ],
            ["other.example:81", "other.example", "/p", "q=1"],
        )


class FileWrapperTests(BridgeTestCase):
    """
    C{wsgi.file_wrapper} around a real file is sent from the I/O thread.
    """

    def setUp(self) -> None:
        super().setUp()
        directory = tempfile.mkdtemp(prefix="twsgi-test-")
        self.addCleanup(shutil.rmtree, directory, True)
        self.path = os.path.join(directory, "data.bin")
        self.content = bytes(range(256)) * 1000
        with open(self.path, "wb") as f:
            f.write(self.content)
        # The bridge streams the file from the I/O thread: one chunk a turn
        # of the reactor here, so that a client can go away mid-transfer.
        self.patch(_bridge, "FILE_CHUNKS_PER_TURN", 1)

    def step(self) -> None:
        """
        Run one turn of the reactor: the calls due now, not those they make.
        """
        now = self.reactor.seconds()
        for call in self.reactor.getDelayedCalls():
            if call.getTime() <= now and call.active():
                self.reactor.calls.remove(call)
                call.called = 1
                call.func(*call.args, **call.kw)

    def pump(self) -> None:
        """
        Run the file transfer's turns until there are none left.
        """
        for _ in range(10_000):
            now = self.reactor.seconds()
            if not any(c.getTime() <= now for c in self.reactor.getDelayedCalls()):
                return
            self.step()
        self.fail("the transfer never ended")

    def fileApp(
        self,
        opened: list[Any],
        headers: list[tuple[str, str]] | None = None,
        offset: int = 0,
        **kwargs: Any,
    ) -> App:
        """
        An application that answers with C{headers} and the test file from
        C{offset}, in a C{wsgi.file_wrapper}; the file goes into C{opened}.
        """

        def app(environ: Any, startResponse: Any) -> Any:
            startResponse("200 OK", headers or [])
            f = open(self.path, "rb")
            f.seek(offset)
            opened.append(f)
            return environ["wsgi.file_wrapper"](f, **kwargs)

        return app

    def serveFile(self, app: App) -> StringTransport:
        """
        Serve one GET with C{app} and run the file transfer to its end.
        """
        protocol, transport = self.connect(app)
        protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        self.pump()
        return transport

    def test_file(self) -> None:
        """
        A real file is sent whole with a C{Content-Length}, and closed.
        """
        opened: list[Any] = []
        transport = self.serveFile(self.fileApp(opened, blksize=4096))
        [response] = parseResponses(transport.value())
        self.assertEqual(response.header(b"Content-Length"), [b"256000"])
        self.assertEqual(response.body, self.content)
        self.assertTrue(opened[0].closed)

    def test_fileFromOffset(self) -> None:
        """
        A file positioned past its start is sent from there.
        """
        opened: list[Any] = []
        transport = self.serveFile(self.fileApp(opened, offset=1000))
        [response] = parseResponses(transport.value())
        self.assertEqual(response.body, self.content[1000:])
        self.assertTrue(opened[0].closed)

    def test_fileHead(self) -> None:
        """
        A file for a HEAD request is not sent, and is closed; the response
        has the C{Content-Length} a GET's has, the file's size (RFC 9110
        section 9.3.2).
        """
        opened: list[Any] = []
        protocol, transport = self.connect(self.fileApp(opened))
        protocol.dataReceived(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
        self.pump()
        self.assertTrue(transport.value().endswith(b"\r\n\r\n"))
        [response] = parseResponses(transport.value(), b"HEAD")
        self.assertEqual(
            response.header(b"Content-Length"), [b"%d" % len(self.content)]
        )
        self.assertTrue(opened[0].closed)

    def test_fileClientGone(self) -> None:
        """
        A file whose client goes away mid-transfer is closed.
        """
        opened: list[Any] = []
        protocol, transport = self.connect(self.fileApp(opened, blksize=1024))
        protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        self.step()
        self.step()
        self.assertIn(b"200 OK", transport.value())
        disconnect(protocol, transport)
        self.pump()
        self.assertTrue(opened[0].closed)
        self.assertLess(len(transport.value()), len(self.content))

    def test_fileLongerThanContentLength(self) -> None:
        """
        A file longer than the application's C{Content-Length} is sent up to
        that length, as PEP 3333 asks of C{wsgi.file_wrapper}, whether it is
        read at once or streamed from the I/O thread: from where the
        application left it (a range of it), never more bytes than that on
        the wire, the connection kept open; and the file is closed.
        """
        for offset, length in [(0, 10), (1000, 100_000)]:
            opened: list[Any] = []
            transport = self.serveFile(
                self.fileApp(
                    opened, headers=[("Content-Length", str(length))], offset=offset
                )
            )
            [response] = parseResponses(transport.value())
            self.assertEqual(response.status, b"HTTP/1.1 200 OK")
            self.assertEqual(response.body, self.content[offset : offset + length])
            self.assertTrue(transport.value().endswith(response.body))
            self.assertFalse(transport.disconnecting)
            self.assertTrue(opened[0].closed)
        self.assertEqual(self.logText(), "")

    def test_fileShorterThanContentLength(self) -> None:
        """
        A file shorter than the application's C{Content-Length} is sent and
        the connection closed early, as for any short body.
        """
        opened: list[Any] = []
        transport = self.serveFile(
            self.fileApp(opened, headers=[("Content-Length", "300000")])
        )
        self.assertTrue(transport.disconnecting)
        self.assertTrue(opened[0].closed)

    def test_fileExactContentLength(self) -> None:
        """
        A file exactly as long as the application's C{Content-Length} is
        sent whole, and the connection stays open.
        """
        opened: list[Any] = []
        transport = self.serveFile(
            self.fileApp(opened, headers=[("Content-Length", "256000")])
        )
        [response] = parseResponses(transport.value())
        self.assertEqual(response.body, self.content)
        self.assertFalse(transport.disconnecting)
        self.assertTrue(opened[0].closed)

    def test_fileGrowsWhileSent(self) -> None:
        """
        A file that grows while it is streamed is sent only up to the
        C{Content-Length} its head gave, so that the connection stays in
        step for the next response.
        """
        opened: list[Any] = []
        protocol, transport = self.connect(self.fileApp(opened))
        protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        self.step()
        with open(self.path, "ab") as f:
            f.write(b"appended later")
        self.pump()
        [response] = parseResponses(transport.value())
        self.assertEqual(response.header(b"Content-Length"), [b"256000"])
        self.assertEqual(response.body, self.content)
        self.assertTrue(transport.value().endswith(self.content[-1000:]))
        self.assertFalse(transport.disconnecting)
        self.assertTrue(opened[0].closed)

    def test_fileShrinksWhileSent(self) -> None:
        """
        A file cut short while it is streamed, so that it ends before the
        C{Content-Length} its head gave, closes the connection early (the client
        would wait for the rest), says so in the log, and is closed.
        """
        opened: list[Any] = []
        protocol, transport = self.connect(self.fileApp(opened))
        protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        self.step()
        os.truncate(self.path, 100_000)
        self.pump()
        self.assertTrue(transport.disconnecting)
        self.assertTrue(opened[0].closed)
        # Two chunks went out before the file was cut.
        left = len(self.content) - 2 * _bridge.FILE_CHUNK_SIZE
        self.assertIn(f"ended {left} bytes before its Content-Length", self.logText())

    def test_fileFirstReadFails(self) -> None:
        """
        A streamed file whose first read raises (an I/O error), or finds
        it cut to nothing since its size was taken, gets a 500, as nothing
        was sent yet (it was a connection cut off without a byte), with one
        log line; the file is closed.
        """
        import errno
        import io

        class Failing(io.FileIO):
            def read(self, size: int | None = -1) -> bytes:
                raise OSError(errno.EIO, "Input/output error")

        class Emptied(io.FileIO):
            def read(self, size: int | None = -1) -> bytes:
                return b""

        for opener, said in [
            (Failing, "reading the wsgi.file_wrapper file for / raised"),
            (Emptied, "ended 256000 bytes before its Content-Length"),
        ]:
            opened: list[Any] = []

            def app(environ: Any, startResponse: Any) -> Any:
                startResponse("200 OK", [])
                opened.append(opener(self.path))  # noqa: B023
                return environ["wsgi.file_wrapper"](opened[0])  # noqa: B023

            self.events.clear()
            transport = self.serveFile(app)
            [response] = parseResponses(transport.value())
            self.assertEqual(response.status, b"HTTP/1.1 500 Internal Server Error")
            self.assertEqual(response.body, b"Internal Server Error\n")
            self.assertTrue(transport.disconnecting)
            self.assertTrue(opened[0].closed)
            self.assertIn(said, self.logText())
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)

    def test_textFile(self) -> None:
        """
        A regular file opened in text mode, too large to be read at once,
        is a body of C{str}: the application gets a 500 and a log line that
        says so, nothing raises in the I/O thread, and the file is closed.
        """
        with open(self.path, "w") as f:
            f.write("x" * 200_000)
        opened: list[Any] = []

        def app(environ: Any, startResponse: Any) -> Any:
            startResponse("200 OK", [])
            opened.append(open(self.path))
            return environ["wsgi.file_wrapper"](opened[0])

        transport = self.serveFile(app)
        [response] = parseResponses(transport.value())
        self.assertEqual(response.status, b"HTTP/1.1 500 Internal Server Error")
        self.assertIn("the body must be bytes, not str", self.logText())
        self.assertEqual(self.failureLevels(), [])
        self.assertTrue(opened[0].closed)

    def test_notARealFile(self) -> None:
        """
        A file wrapper around a file-like object that is not a real file is
        iterated like any body, and closed.
        """
        import io

        class Closing(io.BytesIO):
            closes = 0

            def close(self) -> None:
                Closing.closes += 1
                super().close()

        def app(environ: Any, startResponse: Any) -> Any:
            startResponse("200 OK", [])
            return environ["wsgi.file_wrapper"](Closing(b"in memory"), 4)

        response, _ = self.get(app)
        self.assertEqual(response.body, b"in memory")
        self.assertEqual(Closing.closes, 1)

    def test_notARealFileContentLength(self) -> None:
        """
        A file wrapper around a file-like object that is not a real file is
        read only up to the application's C{Content-Length}, and closed.
        """
        import io

        inMemory = io.BytesIO(b"in memory")

        def app(environ: Any, startResponse: Any) -> Any:
            startResponse("200 OK", [("Content-Length", "6")])
            return environ["wsgi.file_wrapper"](inMemory, 4)

        response, transport = self.get(app)
        self.assertEqual(response.body, b"in mem")
        self.assertTrue(transport.value().endswith(b"\r\n\r\nin mem"))
        self.assertTrue(inMemory.closed)
        self.assertEqual(self.logText(), "")


# Fields that change framing or that proxy handling may rewrite.
_SPECIAL = (
    b"host", b"content-length", b"transfer-encoding", b"connection", b"expect",
    b"upgrade", b"te", b"trailer", b"keep-alive", b"forwarded", b"x-forwarded",
    b"x-real-ip", b"proxy",
)  # fmt: skip
_fieldNames = tokens.filter(lambda n: not n.lower().startswith(_SPECIAL))


class WireNativeStringTests(BridgeTestCase):
    """
    PEP 3333's native-string rules hold for requests that went through the
    server's own HTTP parsing, not only for the pure environ builder.
    """

    @settings(
        max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(
        method=tokens.filter(lambda m: m != b"CONNECT"),
        target=targets(),
        fields=st.lists(st.tuples(_fieldNames, fieldValues), max_size=10),
    )
    def test_anyValidRequest(
        self, method: bytes, target: bytes, fields: list[tuple[bytes, bytes]]
    ) -> None:
        """
        Any valid request is served, and its environ has C{str} keys and
        latin-1 C{str} values that give back the bytes sent.
        """
        seen: list[dict[str, Any]] = []

        def app(environ: Any, startResponse: Any) -> Any:
            seen.append(environ)
            startResponse("200 OK", [])
            return [b"ok"]

        raw = method + b" " + target + b" HTTP/1.1\r\nHost: example.com\r\n"
        raw += b"".join(name + b": " + value + b"\r\n" for name, value in fields)
        protocol, transport = self.connect(app)
        protocol.dataReceived(raw + b"\r\n")
        self.assertTrue(
            transport.value().startswith(b"HTTP/1.1 200 OK\r\n"), transport.value()
        )
        [environ] = seen
        assertNativeEnviron(self, environ, method, target, fields)


class FakeExchange(LostCallbacks):
    """
    An L{Exchange<twsgi.wsgi.exchange.Exchange>} in memory, with no
    C{twisted.web} request behind it: it records what the bridge does.
    L{tellLost<LostCallbacks.tellLost>} is the client going away.

    @ivar events: C{("head", code, reason, headers, close)}, C{("write",
        data)}, C{("finish",)}, C{("abort",)}, C{("register",)} and
        C{("unregister",)}, in order.
    @ivar full: pause a producer as soon as it is registered (the transport
        is full).
    """

    highWater = HIGH_WATER

    def __init__(self, method: bytes = b"GET", full: bool = False) -> None:
        LostCallbacks.__init__(self)
        self.facts = RequestFacts(method=method, target=b"/x?y=1")
        self.body = io.BytesIO(b"")
        self.environ: Any = None
        self.full = full
        self.events: list[tuple[Any, ...]] = []
        self.producer: Any = None

    def writeHead(self, code: int, reason: bytes, headers: Any, close: bool) -> None:
        self.events.append(("head", code, reason, list(headers), close))

    def write(self, data: bytes) -> None:
        self.events.append(("write", data))

    def finish(self) -> None:
        self.events.append(("finish",))

    def abort(self) -> None:
        self.events.append(("abort",))
        self.tellLost()

    def registerProducer(self, producer: Any) -> None:
        self.events.append(("register",))
        self.producer = producer
        if self.full:
            producer.pauseProducing()

    def unregisterProducer(self) -> None:
        self.events.append(("unregister",))
        self.producer = None

    def written(self) -> bytes:
        """
        The body bytes written.
        """
        return b"".join(e[1] for e in self.events if e[0] == "write")


class ExchangeTests(SynchronousTestCase):
    """
    L{WSGIResource.dispatch} runs an application for any L{Exchange}, with
    no C{twisted.web} request.
    """

    def setUp(self) -> None:
        self.reactor = SynchronousReactor()

    def resource(self, app: App, pool: Any = None) -> WSGIResource:
        return WSGIResource(
            self.reactor, pool or SynchronousThreadPool(), app, appName="tests:app"
        )

    def test_whole(self) -> None:
        """
        A list body goes out as one head with C{Date} and C{Server}, one
        write and a finish; the exchange keeps the environ.
        """

        def app(environ: Any, startResponse: Any) -> list[bytes]:
            startResponse("200 OK", [("Content-Type", "text/plain")])
            return [b"hello"]

        exchange = FakeExchange()
        self.resource(app).dispatch(exchange)
        [head, write, finish] = exchange.events
        self.assertEqual(head[:3], ("head", 200, b"OK"))
        self.assertEqual(
            [name for name, _ in head[3]],
            [b"Content-Type", b"Content-Length", b"Date", b"Server"],
        )
        self.assertEqual((write, finish), (("write", b"hello"), ("finish",)))
        self.assertEqual(exchange.environ["QUERY_STRING"], "y=1")
        self.assertTrue(exchange.body.closed)

    def test_lostWhileQueued(self) -> None:
        """
        An exchange lost while it waits for a thread is never run; its body
        is closed and nothing is written.
        """
        pool = ManualPool()
        exchange = FakeExchange()
        self.resource(lambda e, s: self.fail("run"), pool).dispatch(exchange)
        exchange.tellLost()
        pool.runAll()
        self.assertEqual(exchange.events, [])
        self.assertTrue(exchange.body.closed)

    def test_pausedAtRegistration(self) -> None:
        """
        A producer the exchange pauses as it registers it (the transport is
        full) writes nothing until it is resumed; then the rest goes out
        and the response finishes.
        """

        def app(environ: Any, startResponse: Any) -> Iterator[bytes]:
            startResponse("200 OK", [])
            yield b"a"
            yield b"b"
            yield b"c"

        exchange = FakeExchange(full=True)
        self.resource(app).dispatch(exchange)
        self.assertEqual([e[0] for e in exchange.events], ["head", "register"])
        exchange.producer.resumeProducing()
        self.assertEqual(exchange.written(), b"abc")
        self.assertEqual(exchange.events[-2:], [("unregister",), ("finish",)])

    def test_failedAfterHead(self) -> None:
        """
        An application that raises after its head was sent has its response
        aborted through the exchange, never finished.
        """

        def app(environ: Any, startResponse: Any) -> Iterator[bytes]:
            startResponse("200 OK", [])
            yield b"part"
            raise RuntimeError("boom")

        exchange = FakeExchange()
        self.resource(app).dispatch(exchange)
        self.assertEqual(exchange.written(), b"part")
        self.assertEqual(exchange.events[-1], ("abort",))
        self.assertNotIn(("finish",), exchange.events)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_failedWhilePausedAtRegistration(self) -> None:
        """
        An application that raises after the I/O thread took its head, while
        the body it yielded before waited in the queue (the transport was
        full), has that body written before its response is cut off: PEP
        3333 has a server transmit a yielded block even while the
        application produces the next one, so its failure there loses
        none of it.
        """

        def app(environ: Any, startResponse: Any) -> Iterator[bytes]:
            startResponse("200 OK", [])
            yield b"part"
            raise RuntimeError("boom")

        exchange = FakeExchange(full=True)
        self.resource(app).dispatch(exchange)
        self.assertEqual(
            [e[:2] for e in exchange.events],
            [
                ("head", 200),
                ("register",),
                ("write", b"part"),
                ("unregister",),
                ("abort",),
            ],
        )
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_excInfoWhilePausedSendsChunk(self) -> None:
        """
        C{start_response(exc_info)} after the I/O thread took the head
        re-raises (PEP 3333), and the chunk yielded before it, which waited
        in the queue (the transport was full), is written before the
        response is cut off.
        """

        def app(environ: Any, startResponse: Any) -> Iterator[bytes]:
            startResponse("200 OK", [])
            yield b"part"
            try:
                raise KeyError("late")
            except KeyError:
                startResponse("500 Oops", [], sys.exc_info())
            yield b"never"

        exchange = FakeExchange(full=True)
        self.resource(app).dispatch(exchange)
        self.assertEqual(exchange.written(), b"part")
        self.assertEqual(exchange.events[-2:], [("unregister",), ("abort",)])
        self.assertNotIn(("finish",), exchange.events)
        self.assertEqual(len(self.flushLoggedErrors(KeyError)), 1)

    def test_clientGoneStopsApp(self) -> None:
        """
        Once the exchange is lost, the application's next chunk stops its
        iteration and its response's C{close()} is called.
        """
        body = Body([b"a", b"b"])

        def app(environ: Any, startResponse: Any) -> Body:
            startResponse("200 OK", [])
            return body

        exchange = FakeExchange()
        write = exchange.write

        def writeThenLose(data: bytes) -> None:
            write(data)
            exchange.tellLost()

        exchange.write = writeThenLose  # type: ignore[method-assign]
        self.resource(app).dispatch(exchange)
        self.assertEqual(exchange.written(), b"a")
        self.assertTrue(body.closed)
        self.assertNotIn(("finish",), exchange.events)

    def test_overloaded(self) -> None:
        """
        Past C{maxPending}, an exchange is answered 503 with C{Retry-After},
        C{Date} and C{Server}, and its body is closed.
        """
        resource = self.resource(lambda e, s: self.fail("run"), _Backlogged())
        resource.maxPending = 1
        exchange = FakeExchange()
        resource.dispatch(exchange)
        [head, write, finish] = exchange.events
        self.assertEqual(head[1:3], (503, b"Service Unavailable"))
        self.assertEqual(
            [name for name, _ in head[3]],
            [b"Retry-After", b"Content-Type", b"Content-Length", b"Date", b"Server"],
        )
        self.assertIn(b"too many requests", write[1])
        self.assertEqual(finish, ("finish",))
        self.assertTrue(exchange.body.closed)

    def test_overloadedLost(self) -> None:
        """
        Past C{maxPending}, an exchange that is lost already gets no 503:
        nothing is written to it (see L{Exchange}); its body is closed.
        """
        resource = self.resource(lambda e, s: self.fail("run"), _Backlogged())
        resource.maxPending = 1
        exchange = FakeExchange()
        exchange.tellLost()
        resource.dispatch(exchange)
        self.assertEqual(exchange.events, [])
        self.assertTrue(exchange.body.closed)

    def test_fileStreamed(self) -> None:
        """
        A large file in a C{wsgi.file_wrapper} is streamed through the
        exchange by a producer the transport can pause, and closed.
        """
        directory = tempfile.mkdtemp(prefix="twsgi-test-")
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "data.bin")
        content = os.urandom(200_000)
        with open(path, "wb") as f:
            f.write(content)
        opened: list[Any] = []

        def app(environ: Any, startResponse: Any) -> Any:
            startResponse("200 OK", [])
            opened.append(open(path, "rb"))
            return environ["wsgi.file_wrapper"](opened[0])

        exchange = FakeExchange()
        self.patch(_bridge, "FILE_CHUNKS_PER_TURN", 1)
        self.resource(app).dispatch(exchange)
        self.assertEqual(
            [e[0] for e in exchange.events][:3], ["head", "register", "write"]
        )
        exchange.producer.pauseProducing()
        self.reactor.advance(0)
        self.assertEqual(len(exchange.written()), _bridge.FILE_CHUNK_SIZE)
        exchange.producer.resumeProducing()
        for _ in range(10):
            self.reactor.advance(0)
        self.assertEqual(exchange.written(), content)
        self.assertEqual(exchange.events[-2:], [("unregister",), ("finish",)])
        self.assertTrue(opened[0].closed)

    def test_fileStreamedPerTurn(self) -> None:
        """
        A streamed file is written 16 chunks a turn of the reactor (here the
        first, run at once), but no more than its exchange's C{highWater} a
        turn where that is less (an HTTP/2 stream, whose writes are queued
        until the turn's end), and at least one; all of it in the end.
        """
        directory = tempfile.mkdtemp(prefix="twsgi-test-")
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "data.bin")
        content = os.urandom(3 * 1024 * 1024)
        with open(path, "wb") as f:
            f.write(content)

        def app(environ: Any, startResponse: Any) -> Any:
            startResponse("200 OK", [])
            return environ["wsgi.file_wrapper"](open(path, "rb"))

        chunk = _bridge.FILE_CHUNK_SIZE
        for highWater, perTurn in [
            (HIGH_WATER, 16),
            (128 * 1024, 2),
            (1024, 1),
        ]:
            exchange = FakeExchange()
            exchange.highWater = highWater
            self.resource(app).dispatch(exchange)
            # The first turn, at once.
            self.assertEqual(len(exchange.written()), perTurn * chunk)
            self.reactor.advance(0)
            self.assertEqual(exchange.written(), content)


class _Backlogged:
    """
    A thread pool with one request waiting, that runs nothing.
    """

    def backlog(self) -> int:
        return 1

    def callInThread(self, f: Callable[..., Any], *args: Any) -> None:
        raise AssertionError("nothing runs")


class ArgumentOrderTests(SynchronousTestCase):
    """
    L{WSGIResource} takes Twisted's argument order and says so when it is
    given the old one.
    """

    def test_oldOrder(self) -> None:
        """
        C{WSGIResource(application, threadpool, reactor)} (twsgi's order
        before issue 13) raises a L{TypeError} that gives the order, instead
        of a resource whose requests hang.
        """

        def app(environ: Any, startResponse: Any) -> list[bytes]:
            return []

        reactor = SynchronousReactor()
        error = self.assertRaises(
            TypeError, WSGIResource, app, SynchronousThreadPool(), reactor
        )
        self.assertIn("WSGIResource(reactor, threadpool, application)", str(error))
        resource = WSGIResource(reactor, SynchronousThreadPool(), app)
        self.assertIs(resource.application, app)


class PoolStatsTests(SynchronousTestCase):
    """
    L{WSGIResource.poolStats} reads the thread pool it was given.
    """

    def test_twistedThreadPool(self) -> None:
        """
        A resource given Twisted's own L{ThreadPool} (as
        C{docs/examples/mount.tac} gives it C{reactor.getThreadPool()})
        reports its busy and idle threads, the requests waiting and its
        maximum, as C{docs/performance.rst} says.
        """
        from twisted.python.threadpool import ThreadPool

        pool = ThreadPool(0, 3)
        resource = WSGIResource(SynchronousReactor(), pool, lambda e, s: [])
        self.assertEqual(resource.poolStats(), PoolStats(0, 0, 0, 3))
        pool.callInThread(lambda: None)
        self.assertEqual(resource.poolStats(), PoolStats(0, 0, 1, 3))

    def test_ownPool(self) -> None:
        """
        twsgi's own pool reports itself; a pool that keeps no count (one
        that runs work at once) cannot tell: C{None}.
        """
        pool = WorkerPool(2, 5)
        resource = WSGIResource(SynchronousReactor(), pool, lambda e, s: [])
        self.assertEqual(resource.poolStats(), PoolStats(0, 0, 0, 5))
        resource = WSGIResource(
            SynchronousReactor(), SynchronousThreadPool(), lambda e, s: []
        )
        self.assertIsNone(resource.poolStats())
