"""
Tests for L{twsgi.server.exchange}: the HTTP/1.1 hot path, where a request
for a WSGI application is served without a C{twisted.web} request.
"""

from __future__ import annotations

import errno
import os
import tempfile
from typing import IO, Any

import attrs
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource

from tests.helpers.bodies import FailingFiles, FullFile, noDescriptorsLeft
from tests.helpers.rawhttp import connectOn
from twsgi.http.parse import RequestHead
from twsgi.logs.accesslog import AccessRecord
from twsgi.server import exchange as exchangeModule
from twsgi.server.exchange import (
    HeaderList,
    HTTP11Exchange,
    canonicalName,
    chooseTemporaryDirectory,
)
from twsgi.server.routes import Dispatcher
from twsgi.testing import (
    MemoryServer,
    MemoryTransport,
    SynchronousReactor,
    SynchronousThreadPool,
    parseResponses,
)
from twsgi.wsgi.bridge import THREAD_SEND_SIZE, WSGIResource


def hello(environ: dict[str, Any], startResponse: Any) -> list[bytes]:
    """
    Answers C{hello} with a length.
    """
    startResponse("200 OK", [("Content-Length", "5")])
    return [b"hello"]


def streamed(environ: dict[str, Any], startResponse: Any) -> Any:
    """
    Answers with a body of unknown length, in two chunks, and headers in
    lower case, one of them repeated.
    """
    startResponse(
        "200 OK",
        [
            ("x-one", "1"),
            ("content-type", "text/plain"),
            ("X-ONE", "2"),
            ("etag", '"e"'),
        ],
    )
    yield b"ab"
    yield b"cde"


_PHRASES = {
    500: b"Internal Server Error",
    503: b"Service Unavailable",
    507: b"Insufficient Storage",
}


class HotPathTests(SynchronousTestCase):
    """
    A request for the WSGI application goes through an L{HTTP11Exchange},
    and its response is framed as C{twisted.web} framed it.
    """

    def serve(self, app: Any, **kwargs: Any) -> MemoryServer:
        records: list[AccessRecord] = []
        server = MemoryServer(app, observers=[records.append], **kwargs)
        self.records = records
        return server

    def test_noTwistedWebRequest(self) -> None:
        """
        No C{twisted.web} request is made for a request to the application.
        """
        server = self.serve(hello)
        server.site.requestFactory = lambda *a: self.fail("a twisted.web request")
        response = server.request(b"GET", b"/x?y=1")
        self.assertEqual((response.code, response.body), (200, b"hello"))
        [record] = self.records
        self.assertEqual(
            (record.method, record.target, record.status), ("GET", "/x?y=1", 200)
        )
        self.assertEqual(record.bytesSent, 5)

    def test_routesStayOnTwistedWeb(self) -> None:
        """
        A path that a route of the L{Dispatcher} takes is rendered by its
        C{twisted.web} resource; the rest of the paths go to the
        application without a C{twisted.web} request.
        """

        class Ready(Resource):
            isLeaf = True

            def render_GET(self, request: Any) -> bytes:
                return b"ready"

        server = self.serve(hello)
        server.site.resource = Dispatcher(server.resource, {b"/readyz": Ready()})
        self.assertEqual(server.request(b"GET", b"/readyz").body, b"ready")
        server.site.requestFactory = lambda *a: self.fail("a twisted.web request")
        self.assertEqual(server.request(b"GET", b"/other").body, b"hello")

    def test_chunkedCanonical(self) -> None:
        """
        A body of unknown length is chunked on HTTP/1.1; header names go out
        in their canonical capitalisation, the values of a repeated name
        together, as C{twisted.web} sent them.
        """
        server = self.serve(streamed)
        protocol, transport = server.connect()
        protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        raw = transport.value()
        head = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        self.assertEqual(head[0], b"HTTP/1.1 200 OK")
        names = [line.split(b":")[0] for line in head[1:]]
        self.assertEqual(
            [n for n in names if n not in (b"Date", b"Server")],
            [b"X-One", b"X-One", b"Content-Type", b"ETag", b"Transfer-Encoding"],
        )
        self.assertIn(b"X-One: 1\r\nX-One: 2\r\n", raw)
        [response] = parseResponses(raw)
        self.assertEqual(response.body, b"abcde")
        self.assertEqual(self.records[0].bytesSent, 5)

    def test_head(self) -> None:
        """
        A response to C{HEAD} has the head a C{GET} would have and no body.
        """
        server = self.serve(hello)
        protocol, transport = server.connect()
        protocol.dataReceived(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
        raw = transport.value()
        self.assertIn(b"Content-Length: 5\r\n", raw)
        self.assertTrue(raw.endswith(b"\r\n\r\n"))
        self.assertEqual(self.records[0].bytesSent, 0)

    def test_headStreamed(self) -> None:
        """
        A response of unknown length to C{HEAD} is not chunked.
        """
        server = self.serve(streamed)
        protocol, transport = server.connect()
        protocol.dataReceived(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
        raw = transport.value()
        self.assertNotIn(b"Transfer-Encoding", raw)
        self.assertTrue(raw.endswith(b"\r\n\r\n"))

    def test_noContent(self) -> None:
        """
        A 204 response has no body, and is not chunked.
        """

        def app(environ: dict[str, Any], startResponse: Any) -> list[bytes]:
            startResponse("204 No Content", [])
            return []

        server = self.serve(app)
        protocol, transport = server.connect()
        protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        raw = transport.value()
        self.assertTrue(raw.startswith(b"HTTP/1.1 204 No Content\r\n"))
        self.assertNotIn(b"Transfer-Encoding", raw)
        self.assertTrue(raw.endswith(b"\r\n\r\n"))

    def test_http10Closes(self) -> None:
        """
        An HTTP/1.0 request without keep-alive gets an unchunked response
        that says C{Connection: close}, and the connection closes.
        """
        server = self.serve(streamed)
        protocol, transport = server.connect()
        protocol.dataReceived(b"GET / HTTP/1.0\r\n\r\n")
        raw = transport.value()
        self.assertTrue(raw.startswith(b"HTTP/1.0 200 OK\r\n"))
        self.assertIn(b"Connection: close\r\n", raw)
        self.assertNotIn(b"Transfer-Encoding", raw)
        self.assertTrue(raw.endswith(b"\r\n\r\nabcde"))
        self.assertTrue(transport.disconnecting)

    def test_oneWrite(self) -> None:
        """
        A whole response goes to the transport in one write.
        """
        server = self.serve(hello)
        protocol, transport = server.connect()
        writes: list[bytes] = []
        original = transport.write

        def write(data: bytes) -> None:
            writes.append(data)
            original(data)

        transport.write = write  # type: ignore[method-assign]
        protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual(len(writes), 1)
        self.assertTrue(writes[0].endswith(b"\r\n\r\nhello"))

    def test_requestOnChannel(self) -> None:
        """
        While the application runs, the connection's request in flight is
        an L{HTTP11Exchange} whose body holds what arrived.
        """
        seen: list[Any] = []

        def app(environ: dict[str, Any], startResponse: Any) -> list[bytes]:
            seen.append(list(channel.requests))
            seen.append(environ["wsgi.input"].read())
            return hello(environ, startResponse)

        server = self.serve(app)
        protocol, transport = server.connect()
        channel = transport.producer
        protocol.dataReceived(
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
        )
        [requests, body] = seen
        self.assertIsInstance(requests[0], HTTP11Exchange)
        self.assertEqual(body, b"abc")
        self.assertEqual(self.records[0].bytesReceived, 3)

    def test_lostWhileReceiving(self) -> None:
        """
        A request whose connection is lost while its body arrives is
        recorded as its client leaving, and its body is closed.
        """
        server = self.serve(lambda e, s: self.fail("called"))
        protocol, transport = server.connect()
        channel = transport.producer
        protocol.dataReceived(
            b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc"
        )
        [exchange] = channel.requests
        transport.abortConnection()
        self.assertTrue(exchange.body.closed)
        self.assertTrue(exchange.lost)
        [record] = self.records
        self.assertEqual((record.target, record.disconnected), ("/p", True))
        self.assertEqual(record.bytesReceived, 3)

    def refusedBody(self, body: Any, request: bytes) -> tuple[MemoryTransport, str]:
        """
        Send C{request} to an application that must not be called, with
        each request body kept in what C{body} (a function of the declared
        length) returns.

        @return: the transport, and the text of the one error logged.
        """
        self.patch(exchangeModule, "requestBody", body)
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        protocol, transport = self.serve(lambda e, s: self.fail("called")).connect()
        protocol.dataReceived(request)
        [error] = [e for e in events if e.get("log_level") == LogLevel.error]
        return transport, formatEvent(error)

    def assertRefused(self, transport: MemoryTransport, status: int) -> None:
        """
        The request was answered C{status} (503 with C{Retry-After}) and its
        connection closes, and its access record says so.
        """
        [response] = parseResponses(transport.value())
        self.assertEqual(response.code, status)
        self.assertEqual(response.header(b"connection"), b"close")
        self.assertEqual(
            response.header(b"retry-after"), b"1" if status == 503 else None
        )
        self.assertEqual(
            response.body,
            _PHRASES[status] + b": the request body could not be stored\n",
        )
        self.assertTrue(transport.disconnecting)
        [record] = self.records
        self.assertEqual(
            (record.method, record.target, record.status), ("POST", "/up", status)
        )

    def test_bodyNotWritten(self) -> None:
        """
        A request body that cannot be written to its temporary file (its
        disk is full) gets a 507 Insufficient Storage that closes the
        connection, not the application, and one error line with the reason
        in the server log; what was kept is closed.
        """
        kept: list[FullFile] = []

        def body(length: int | None) -> FullFile:
            kept.append(FullFile())
            return kept[0]

        for request in [
            b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 200000\r\n\r\nabc",
            b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n",
        ]:
            del kept[:]
            self.records = []
            transport, line = self.refusedBody(body, request)
            self.assertRefused(transport, 507)
            self.assertTrue(kept[0].closed)
            self.assertIn("POST /up could not be kept", line)
            self.assertIn("No space left on device", line)

    def test_bodyNotMade(self) -> None:
        """
        A request body whose temporary file cannot be made gets 503 with
        C{Retry-After} when no file descriptor (or memory) is left, a
        transient overload, 507 at a quota or the file size limit, and 500
        for other errors, with the reason in the log.
        """
        for code, status in [
            (errno.EMFILE, 503),
            (errno.EDQUOT, 507),
            (errno.EIO, 500),
        ]:

            def body(length: int | None, code: int = code) -> IO[bytes]:
                raise OSError(code, os.strerror(code))

            transport, line = self.refusedBody(
                body,
                b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 200000\r\n\r\nabc",
            )
            self.assertRefused(transport, status)
            self.assertIn(os.strerror(code), line)

    def test_bodyNoDescriptorNoDirectoryYet(self) -> None:
        """
        A request body that needs a temporary file while no file descriptor
        is left, in a process whose temporary directory was not chosen yet
        (Python chooses it by making a file in each candidate, which then
        fails too), gets a 500 (no directory: nothing to wait for) and one
        error line, not a traceback and a dropped connection.
        """
        self.patch(tempfile, "tempdir", None)
        noDescriptorsLeft(self)
        transport, line = self.refusedBody(
            exchangeModule.requestBody,
            b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 200000\r\n\r\nabc",
        )
        self.assertRefused(transport, 500)
        self.assertIn("POST /up could not be kept", line)

    def test_bodyNoDescriptorDirectoryChosen(self) -> None:
        """
        Once L{chooseTemporaryDirectory} chose the directory (as the server
        starts), a request body that needs a temporary file while no file
        descriptor is left gets a 503 with C{Retry-After} and an error line
        naming the directory and the missing descriptor.
        """
        directory = tempfile.gettempdir()
        self.patch(tempfile, "tempdir", None)
        chooseTemporaryDirectory()
        self.assertEqual(tempfile.tempdir, directory)
        noDescriptorsLeft(self)
        transport, line = self.refusedBody(
            exchangeModule.requestBody,
            b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 200000\r\n\r\nabc",
        )
        self.assertRefused(transport, 503)
        self.assertIn(f"(temporary files in {directory})", line)
        self.assertIn(os.strerror(errno.EMFILE), line)

    def test_noTemporaryDirectory(self) -> None:
        """
        L{chooseTemporaryDirectory} says in one warning when no directory is
        usable for temporary files, and which bodies will be refused; it
        does not raise (the server still starts).
        """

        def none() -> str:
            raise FileNotFoundError(errno.ENOENT, "No usable temporary directory")

        self.patch(tempfile, "gettempdir", none)
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        chooseTemporaryDirectory()
        [warning] = [e for e in events if e.get("log_level") == LogLevel.warn]
        self.assertIn(
            "twsgi has no directory for temporary files ([Errno 2] No usable "
            "temporary directory): request bodies of 100000 bytes or more "
            "will be refused with 500",
            formatEvent(warning),
        )

    def test_twistedWebBodyNotKept(self) -> None:
        """
        A request body for a C{twisted.web} resource (a route of the
        L{Dispatcher}: health, static files, a resource tree) that cannot be
        kept in its temporary file, or whose file cannot be made, gets the
        same answer (507 or 503) and the same error line; the resource is not
        rendered.
        """
        files = FailingFiles()

        class Upload(Resource):
            isLeaf = True

            def render(self, request: Any) -> bytes:
                raise AssertionError("rendered")

        for make, reason, status in files.ways():
            self.patch(tempfile, "TemporaryFile", make)
            events: list[dict[str, Any]] = []
            globalLogPublisher.addObserver(events.append)
            self.addCleanup(globalLogPublisher.removeObserver, events.append)
            server = self.serve(hello)
            server.site.resource = Dispatcher(server.resource, {b"/up": Upload()})
            protocol, transport = server.connect()
            protocol.dataReceived(
                b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 200000\r\n\r\nabc"
            )
            self.assertRefused(transport, status)
            [line] = [
                formatEvent(e) for e in events if e.get("log_level") == LogLevel.error
            ]
            self.assertIn("POST /up could not be kept", line)
            self.assertIn(reason, line)
            self.assertTrue(all(f.closed for f in files.made))


class FromThreadTransport(MemoryTransport):
    """
    A L{MemoryTransport} that also sends from a WSGI thread, as
    L{twsgi.server.transport.SocketTransport.sendFromThread} does: all of
    the bytes, C{take} of them, or none (C{refuse}); C{during} is called as
    they are sent.
    """

    refuse = False
    take: int | None = None
    during: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fromThread: list[bytes] = []

    def sendFromThread(self, data: bytes) -> int | None:
        if self.refuse:
            return None
        taken = len(data) if self.take is None else self.take
        self.fromThread.append(data[:taken])
        self.io.write(data[:taken])
        if self.during is not None:
            self.during()
        return taken


class HoldingReactor(SynchronousReactor):
    """
    A L{SynchronousReactor} that holds the calls from threads while
    C{holding}, until L{release}: what the I/O thread does between a WSGI
    thread's call and its turn to run it.
    """

    holding = False

    def __init__(self) -> None:
        super().__init__()
        self.held: list[Any] = []

    def callFromThread(self, f: Any, *args: Any, **kwargs: Any) -> None:
        if self.holding:
            self.held.append((f, args, kwargs))
        else:
            f(*args, **kwargs)

    def release(self) -> None:
        self.holding = False
        held, self.held = self.held, []
        for f, args, kwargs in held:
            f(*args, **kwargs)


class IdlePool(SynchronousThreadPool):
    """
    A synchronous thread pool that says whether the thread calling it runs
    the only task (L{twsgi.wsgi.pool.WorkerPool.othersIdle}).
    """

    idle = True
    prewakes = 0
    answers = 0

    def __init__(self) -> None:
        self.builtBefore: list[bool] = []

    def callInThread(self, f: Any, *args: Any, **kwargs: Any) -> None:
        # Whether the run's environ was built before a thread took it.
        self.builtBefore.append(getattr(f, "__self__", None).environ is not None)
        super().callInThread(f, *args, **kwargs)

    def othersIdle(self) -> bool:
        return self.idle

    def prewake(self) -> None:
        self.prewakes += 1

    def answered(self) -> None:
        self.answers += 1


class SendFromThreadTests(SynchronousTestCase):
    """
    A whole response is sent by the WSGI thread when the pool runs nothing
    else (L{HTTP11Exchange.sendWholeFromThread}), as the I/O thread would
    have sent it; the I/O thread then ends the exchange.
    """

    def serve(
        self,
        app: Any = hello,
        transportClass: type[MemoryTransport] = FromThreadTransport,
    ) -> tuple[Any, Any]:
        """
        Connect to C{app} on a transport of C{transportClass}.

        @return: the connection and its transport.
        """
        self.reactor = HoldingReactor()
        self.pool = IdlePool()
        server = MemoryServer(
            resource=WSGIResource(self.reactor, self.pool, app), reactor=self.reactor
        )
        self.records = server.records
        _, transport = connectOn(server, transportClass)
        return transport.producer, transport

    def test_sameAsIOThread(self) -> None:
        """
        The WSGI thread sends, in one go, the bytes the I/O thread would
        have sent, and the access records are the same, for a body, a
        C{HEAD}, a 204, HTTP/1.0 and a response that closes.
        """

        def app(environ: dict[str, Any], startResponse: Any) -> list[bytes]:
            if environ["PATH_INFO"] == "/204":
                startResponse("204 No Content", [("X-A", "1")])
                return []
            if environ["PATH_INFO"] == "/close":
                startResponse("200 OK", [("Connection", "close")])
                return [b"bye"]
            return hello(environ, startResponse)

        requests = [
            b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
            b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET /204 HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET / HTTP/1.0\r\n\r\n",
            b"GET /close HTTP/1.1\r\nHost: h\r\n\r\n",
        ]
        for request in requests:
            results = []
            for transportClass in (MemoryTransport, FromThreadTransport):
                channel, transport = self.serve(app, transportClass)
                channel.dataReceived(request)
                [record] = self.records
                results.append(
                    (
                        transport.value(),
                        transport.disconnecting,
                        attrs.evolve(record, duration=0, timestamp=0, requestId=""),
                    )
                )
            self.assertEqual(transport.fromThread, [transport.value()], request)
            self.assertEqual(results[0], results[1], request)

    def test_nextRequest(self) -> None:
        """
        Once the I/O thread ended the exchange, the connection reads the
        next request, pipelined or not, and waits with the keep-alive
        timeout.
        """
        channel, transport = self.serve()
        channel.dataReceived(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n" * 2)
        channel.dataReceived(b"GET /3 HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual(len(transport.fromThread), 3)
        self.assertEqual(
            [r.body for r in parseResponses(transport.value())], [b"hello"] * 3
        )
        self.assertEqual(len(self.records), 3)
        self.assertFalse(transport.disconnecting)
        self.assertEqual(len(self.reactor.getDelayedCalls()), 1)

    def test_prewake(self) -> None:
        """
        Once a response was sent by its WSGI thread (the reactor was idle),
        the head of the next request has the pool wake a thread early
        (L{twsgi.wsgi.pool.WorkerPool.prewake}), and the request's environ
        is built by the I/O thread; after a response the I/O thread sent
        (the pool was busy), neither.
        """
        environs: list[dict[str, Any]] = []

        def app(environ: dict[str, Any], startResponse: Any) -> list[bytes]:
            environs.append(environ)
            return hello(environ, startResponse)

        channel, transport = self.serve(app)
        request = b"GET /p?q=1 HTTP/1.1\r\nHost: h\r\n\r\n"
        channel.dataReceived(request)
        self.assertEqual(self.pool.prewakes, 0)
        channel.dataReceived(request)
        self.assertEqual(self.pool.prewakes, 1)
        self.pool.idle = False
        channel.dataReceived(request)
        self.assertEqual(self.pool.prewakes, 2)
        self.pool.idle = True
        channel.dataReceived(request)
        self.assertEqual(self.pool.prewakes, 2)
        self.assertEqual(len(transport.fromThread), 3)
        self.assertEqual(self.pool.builtBefore, [False, True, True, False])
        # The environ is the same, whoever built it.
        first, *others = [
            {k: v for k, v in environ.items() if k not in ("wsgi.input", "wsgi.errors")}
            for environ in environs
        ]
        self.assertEqual(others, [first] * 3)
        self.assertEqual((first["PATH_INFO"], first["QUERY_STRING"]), ("/p", "q=1"))

    def test_answered(self) -> None:
        """
        A WSGI thread that sent its response tells the pool that it only
        ends its request now (L{twsgi.wsgi.pool.WorkerPool.answered}), once;
        a response the I/O thread sends does not.
        """
        channel, transport = self.serve()
        channel.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        self.pool.idle = False
        channel.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual((len(transport.fromThread), self.pool.answers), (1, 1))

    def test_otherThreadsBusy(self) -> None:
        """
        While the pool runs another request, the I/O thread sends: a WSGI
        thread that sent too would fight it for the GIL.
        """
        channel, transport = self.serve()
        self.pool.idle = False
        channel.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual(transport.fromThread, [])
        self.assertEqual(parseResponses(transport.value())[0].body, b"hello")

    def test_largeBody(self) -> None:
        """
        A body larger than a WSGI thread sends itself goes the usual way.
        """
        big = b"b" * (THREAD_SEND_SIZE + 1)

        def app(environ: dict[str, Any], startResponse: Any) -> list[bytes]:
            startResponse("200 OK", [])
            return [big]

        channel, transport = self.serve(app)
        channel.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual(transport.fromThread, [])
        self.assertEqual(parseResponses(transport.value())[0].body, big)

    def test_wrapped(self) -> None:
        """
        A transport that wraps another (TLS, the PROXY protocol) and hands
        it the attributes it lacks, as Twisted's C{ProtocolWrapper} does, is
        written to: the WSGI thread does not send around it.
        """

        class Wrapper(MemoryTransport):
            def __getattr__(self, name: str) -> Any:
                return getattr(inner, name)

        inner = FromThreadTransport()
        channel, transport = self.serve(transportClass=Wrapper)
        self.assertIsNotNone(transport.sendFromThread)
        channel.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual(inner.fromThread, [])
        self.assertEqual(parseResponses(transport.value())[0].body, b"hello")

    def test_refused(self) -> None:
        """
        A transport that sends nothing from the thread (something written
        before is unsent, or it is closing) has the response go the usual
        way.
        """
        channel, transport = self.serve()
        transport.refuse = True
        channel.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual(transport.fromThread, [])
        self.assertEqual(parseResponses(transport.value())[0].body, b"hello")
        self.assertEqual(len(self.records), 1)

    def test_partial(self) -> None:
        """
        What the kernel did not take is written by the I/O thread, after it.
        """
        channel, transport = self.serve()
        transport.take = 10
        channel.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual(len(transport.fromThread[0]), 10)
        [response] = parseResponses(transport.value())
        self.assertEqual(response.body, b"hello")
        self.assertEqual(self.records[0].bytesSent, 5)

    def test_draining(self) -> None:
        """
        Once the server drains, the I/O thread sends, with C{Connection:
        close}.
        """
        channel, transport = self.serve()
        channel.startDraining()
        channel.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual(transport.fromThread, [])
        self.assertIn(b"Connection: close\r\n", transport.value())
        self.assertTrue(transport.disconnecting)

    def test_drainAfterSend(self) -> None:
        """
        A drain that begins after the response went out saying the
        connection stays open leaves the connection open for the drain's
        grace, as it does an idle connection, then closes it.
        """
        channel, transport = self.serve()
        transport.during = lambda: channel.startDraining(2.0)
        channel.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertNotIn(b"Connection: close", transport.value())
        self.assertEqual(len(self.records), 1)
        self.assertFalse(transport.disconnecting)
        self.reactor.advance(1.9)
        self.assertFalse(transport.disconnecting)
        self.reactor.advance(0.2)
        self.assertTrue(transport.disconnecting)

    def test_lostAfterSend(self) -> None:
        """
        A client that closes once it has the whole response, before the
        I/O thread ended the exchange, got it: its access record says so.
        """
        channel, transport = self.serve()
        self.reactor.holding = True
        channel.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        transport.abortConnection()
        self.reactor.release()
        [record] = self.records
        self.assertEqual((record.status, record.bytesSent), (200, 5))
        self.assertFalse(record.disconnected)

    def test_lostDuringPartialSend(self) -> None:
        """
        A client lost before it had the whole response is recorded as
        leaving.
        """
        channel, transport = self.serve()
        transport.take = 10
        self.reactor.holding = True
        channel.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        transport.abortConnection()
        self.reactor.release()
        [record] = self.records
        self.assertTrue(record.disconnected)


def noContent(environ: dict[str, Any], startResponse: Any) -> list[bytes]:
    """
    Answers 204.
    """
    startResponse("204 No Content", [("X-A", "1")])
    return []


def echoBody(environ: dict[str, Any], startResponse: Any) -> list[bytes]:
    """
    Answers with the request body, and sets a cookie twice.
    """
    body = environ["wsgi.input"].read()
    startResponse(
        "201 Created",
        [
            ("Set-Cookie", "a=1"),
            ("Content-Length", str(len(body))),
            ("Set-Cookie", "b=2"),
        ],
    )
    return [body]


def whoAmI(environ: dict[str, Any], startResponse: Any) -> list[bytes]:
    """
    Answers with what the environ says of the client and the server.
    """
    keys = ("REMOTE_ADDR", "wsgi.url_scheme", "HTTP_HOST", "SERVER_NAME")
    body = " ".join(str(environ.get(key)) for key in keys).encode("latin-1")
    startResponse("200 OK", [("Content-Length", str(len(body)))])
    return [body]


SAME_AS_TWISTED_WEB = [
    (
        whoAmI,
        b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 10.0.0.9\r\n"
        b"X-Forwarded-Proto: https\r\nX-Forwarded-Host: example.com\r\n\r\n",
    ),
    (whoAmI, b"GET http://other.example/x HTTP/1.1\r\nHost: h\r\n\r\n"),
    (hello, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"),
    (streamed, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"),
    (hello, b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n"),
    (streamed, b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n"),
    (noContent, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"),
    (streamed, b"GET / HTTP/1.0\r\n\r\n"),
    (hello, b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"),
    (
        echoBody,
        b"POST /p?q HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
        b"Content-Length: 3\r\n\r\nabc",
    ),
    (
        echoBody,
        b"PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nab\r\n0\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n",
    ),
]
"""
Applications and request bytes whose answers the hot path and the
C{twisted.web} path must give byte for byte alike.
"""


class SameAsTwistedWebTests(SynchronousTestCase):
    """
    The hot path answers as the C{twisted.web} path does (which HTTP/2
    streams and resource trees still take), byte for byte, with the same
    access records.
    """

    def answer(self, app: Any, data: bytes, hot: bool) -> tuple[bytes, list[Any]]:
        records: list[AccessRecord] = []
        server = MemoryServer(app, observers=[records.append])
        if not hot:
            server.site.exchangeRoute = lambda path: None  # type: ignore[method-assign]
        protocol, transport = server.connect()
        protocol.dataReceived(data)
        return transport.value(), [
            attrs.evolve(record, requestId="") for record in records
        ]

    def test_noContentTypeInvented(self) -> None:
        """
        A response whose application gave no C{Content-Type} gets none, on
        either path (C{twisted.web} would say C{text/html}).
        """
        for hot in (True, False):
            raw, _ = self.answer(hello, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", hot)
            self.assertNotIn(b"content-type", raw.lower())

    def test_same(self) -> None:
        """
        Each of L{SAME_AS_TWISTED_WEB} gets the same bytes and records on
        both paths.
        """
        for app, data in SAME_AS_TWISTED_WEB:
            hot = self.answer(app, data, True)
            web = self.answer(app, data, False)
            self.assertEqual(hot, web, data)
            self.assertTrue(hot[0])


class FakeChannel:
    """
    What an L{HTTP11Exchange} asks of its connection to write a head.
    """

    persistent = True

    def __init__(self) -> None:
        self.transport = MemoryTransport()

    def getPeer(self) -> Any:
        return self.transport.getPeer()


def _getHead() -> RequestHead:
    """
    A keep-alive HTTP/1.1 C{GET /} without a body.
    """
    return RequestHead(
        method=b"GET",
        target=b"/",
        version=b"HTTP/1.1",
        headers=((b"Host", b"h"),),
        contentLength=0,
        persistent=True,
        expectContinue=False,
    )


class WriteHeadTests(SynchronousTestCase):
    """
    L{HTTP11Exchange.writeHead} sets the framing fields as C{twisted.web}'s
    L{Headers.setRawHeaders} did: replacing a field given already.
    """

    def test_replaces(self) -> None:
        """
        C{Connection} and C{Transfer-Encoding} given by the caller are
        replaced where they stood.
        """
        channel = FakeChannel()
        head = _getHead()
        exchange = HTTP11Exchange(channel, head, b"/", lambda e: None, 0.0)
        exchange.writeHead(
            200,
            b"OK",
            [
                (b"connection", b"keep-alive"),
                (b"transfer-encoding", b"x"),
                (b"A", b"1"),
            ],
            True,
        )
        exchange.write(b"")
        self.assertEqual(
            channel.transport.value(),
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n"
            b"Transfer-Encoding: chunked\r\nA: 1\r\n\r\n",
        )
        self.assertFalse(channel.persistent)

    def test_sameHeadAgain(self) -> None:
        """
        A head made of what an earlier one was made of is that head again,
        framed once; one made on a connection that closes after it is
        framed anew, with C{Connection: close}.
        """
        self.patch(exchangeModule, "_heads", {})
        framed: list[Any] = []
        frameHead = exchangeModule.frameHead

        def counting(*args: Any) -> Any:
            framed.append(args)
            return frameHead(*args)

        self.patch(exchangeModule, "frameHead", counting)
        channel = FakeChannel()
        head = _getHead()
        for close in (False, False, True):
            exchange = HTTP11Exchange(channel, head, b"/", lambda e: None, 0.0)
            exchange.writeHead(200, b"OK", [(b"content-length", b"2")], close)
            exchange.write(b"hi")
        self.assertEqual(len(framed), 2)
        self.assertEqual(
            channel.transport.value(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi" * 2
            + b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
        )
        self.assertEqual(
            exchange.responseHeaders.pairs,
            [(b"content-length", b"2"), (b"Connection", b"close")],
        )


class HeaderListTests(SynchronousTestCase):
    """
    L{HeaderList} has the methods of L{twisted.web.http_headers.Headers}
    that forwarding and access records use, on pairs in order.
    """

    def test_getRawHeaders(self) -> None:
        """
        The values of a name, whatever its case, or the default.
        """
        headers = HeaderList([(b"Host", b"a"), (b"x-f", b"1"), (b"X-F", b"2")])
        self.assertEqual(headers.getRawHeaders(b"x-F"), [b"1", b"2"])
        self.assertIsNone(headers.getRawHeaders(b"nope"))
        self.assertEqual(headers.getRawHeaders(b"nope", ()), ())

    def test_setRawHeaders(self) -> None:
        """
        Setting a name replaces its values where it first appeared, or adds
        it at the end.
        """
        headers = HeaderList(
            [(b"a", b"1"), (b"host", b"x"), (b"b", b"2"), (b"Host", b"y")]
        )
        headers.setRawHeaders(b"host", [b"z"])
        self.assertEqual(headers.pairs, [(b"a", b"1"), (b"host", b"z"), (b"b", b"2")])
        headers.setRawHeaders(b"c", [b"3"])
        self.assertEqual(headers.pairs[-1], (b"c", b"3"))

    def test_removeHeader(self) -> None:
        """
        Removing a name removes all its values.
        """
        headers = HeaderList([(b"a", b"1"), (b"X-A", b"2"), (b"x-a", b"3")])
        headers.removeHeader(b"x-a")
        self.assertEqual(headers.pairs, [(b"a", b"1")])

    def test_getAllRawHeaders(self) -> None:
        """
        Every name as C{Headers} gives it: canonical, grouped, in the order
        each name first appeared.
        """
        headers = HeaderList([(b"user-agent", b"u"), (b"x-a", b"1"), (b"X-A", b"2")])
        self.assertEqual(
            list(headers.getAllRawHeaders()),
            [(b"User-Agent", [b"u"]), (b"X-A", [b"1", b"2"])],
        )

    def test_canonicalName(self) -> None:
        """
        L{canonicalName} capitalises as C{twisted.web} does, with its
        exceptions.
        """
        self.assertEqual(canonicalName(b"content-TYPE"), b"Content-Type")
        self.assertEqual(canonicalName(b"etag"), b"ETag")
        self.assertEqual(canonicalName(b"www-authenticate"), b"WWW-Authenticate")
