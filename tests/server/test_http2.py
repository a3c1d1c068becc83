"""
Tests for HTTP/2 through ALPN (L{twsgi.server.negotiate}, L{twsgi.server.http2}): the
same application, limits, timeouts, access log and graceful stop as
HTTP/1.1, over real TLS with certificates the tests generate, asked by a
small C{h2} client (L{tests.helpers.h2client}) and by C{curl --http2}.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes
from h2.settings import SettingCodes
from hyperframe.frame import (
    DataFrame,
    Frame,
    GoAwayFrame,
    PingFrame,
    WindowUpdateFrame,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import defer, threads
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.resource import Resource

from tests.helpers.bodies import FailingFiles
from tests.helpers.certs import makeCertificates
from tests.helpers.drain import ManualPool
from tests.helpers.h2client import GoAway, H2Client, connect
from tests.helpers.h2wire import H2Wire, PendingApp
from tests.helpers.handoff import (
    ERROR_PAGE,
    ErrorPage,
    QueuedCallsReactor,
    failsAfterFirstChunk,
)
from tests.helpers.rawhttp import FailingPullProducer, RecordingProducer
from tests.helpers.server import start
from twsgi.config.model import ServerConfig
from twsgi.config.resolve import resolveConfig
from twsgi.http.h2head import PREFACE, HeaderBlockWatch, checkHead, headerListBound
from twsgi.http.limits import Limits
from twsgi.http.parse import FramingError
from twsgi.lifecycle.build import tlsFromConfig
from twsgi.lifecycle.service import TwsgiService
from twsgi.logs.accesslog import AccessRecord
from twsgi.server import exchange as exchangeModule
from twsgi.server.http1 import TwsgiChannel
from twsgi.server.http2 import (
    CALM_LINGER,
    DRAIN_PING,
    DRAIN_ROUND_TRIP,
    HUSH_PING,
    MAX_CONTROL_BUFFER,
    State,
    TwsgiH2Connection,
)
from twsgi.server.listeners import buildEndpoint
from twsgi.server.negotiate import HTTP11_ONLY, WITH_HTTP2, _said, alpnProtocols
from twsgi.server.ports import ConnectionGate
from twsgi.server.routes import Dispatcher
from twsgi.server.site import SPOOL_SIZE, TwsgiSite
from twsgi.server.tls import TLSProfile
from twsgi.testing import SynchronousReactor
from twsgi.wsgi.bridge import WSGIResource
from twsgi.wsgi.pool import WorkerPool

REFUSED_STREAM = 7
PROTOCOL_ERROR = 1
CANCEL = 8

NO_STREAM_REFUSED = 2**31 - 1
"""
The last stream named by the first GOAWAY of a graceful stop.
"""

BOUND = 8 * 1024 * 1024
"""
What a response to a client that stopped reading may make the application
produce: the bridge's high-water mark, the transport's buffer and kernel
buffers, far below the 64 MiB the application would send.
"""


def _frames(data: bytes) -> list[Frame]:
    """
    The frames in C{data}, parsed.
    """
    frames = []
    while data:
        frame, length = Frame.parse_frame_header(memoryview(data[:9]))
        frame.parse_body(memoryview(data[9 : 9 + length]))
        frames.append(frame)
        data = data[9 + length :]
    return frames


def _describe(frame: Frame) -> tuple[str, int | bytes]:
    """
    A frame's type, and its payload for PING, its last stream for GOAWAY,
    or its stream.
    """
    if isinstance(frame, PingFrame):
        return ("PING", frame.opaque_data)
    if isinstance(frame, GoAwayFrame):
        return ("GOAWAY", frame.last_stream_id)
    return (type(frame).__name__.removesuffix("Frame").upper(), frame.stream_id)


def _head(
    path: bytes = b"/", method: bytes = b"GET", extra: list[tuple[bytes, bytes]] = ()
) -> list[tuple[bytes, bytes]]:
    return [
        (b":method", method),
        (b":scheme", b"https"),
        (b":authority", b"localhost"),
        (b":path", path),
        *extra,
    ]


def _uploadNotKept(client: H2Client) -> tuple[int, Any, str]:
    """
    Open a stream to C{/other}, then upload to C{/up} a body that the
    server cannot keep.

    @return: the other stream, the answer of the upload, and the one error
        line logged.
    """
    with capturedLogs() as events:
        other = client.request("POST", "/other", end=False)
        up = client.request("POST", "/up", [("content-length", "200000")], end=False)
        client.send(up, b"abc")
        answer = client.answer(up)
    [line] = [formatEvent(e) for e in events if e["log_level"].name == "error"]
    return other, answer, line


class CheckHeadTests(SynchronousTestCase):
    """
    L{checkHead} applies the HTTP/1.1 limits to an HTTP/2 header block.
    """

    limits = Limits(
        maxRequestLine=100, maxHeaderField=50, maxHeaderCount=4, maxHeaderBytes=120
    )

    def status(self, headers: list[tuple[bytes, bytes]]) -> int:
        try:
            checkHead(headers, self.limits)
        except FramingError as error:
            return error.status
        return 200

    def test_table(self) -> None:
        """
        Each limit gives the status HTTP/1.1 gives for it.
        """
        field = (b"x-a", b"v" * 20)
        cases = [
            (_head(), 200),
            (_head(extra=[(b"content-length", b"10")]), 200),
            (_head(path=b"/" + b"p" * 100), 414),
            (_head(extra=[(b"x-big", b"v" * 50)]), 431),
            (_head(extra=[field] * 4), 431),
            (_head(extra=[(b"x-a", b"v" * 40), (b"x-b", b"v" * 40)] + [field]), 431),
            (_head(method=b"CONNECT", path=b"/"), 400),
            (_head(path=b"*"), 400),
            (_head(method=b"OPTIONS", path=b"*"), 200),
            (_head(extra=[(b"content-length", b"+1")]), 400),
            (_head(extra=[(b"content-length", b"1"), (b"content-length", b"1")]), 400),
            (_head(extra=[(b"content-length", b"%d" % (2**30 + 1))]), 413),
        ]
        for headers, expected in cases:
            self.assertEqual(self.status(headers), expected, headers)

    def test_characters(self) -> None:
        """
        The method, path, field names and values, and the authority obey the
        character rules of HTTP/1.1: each breach is a 400.
        """
        cases = [
            _head(method=b"G T"),
            _head(method=b"GE\x0bT"),
            _head(method=b""),
            _head(path=b"/a\x1b[31mb"),
            _head(path=b"/a c"),
            _head(path=b"/a\x7f"),
            _head(extra=[(b"x-a", b"x\x01y")]),
            _head(extra=[(b"x-a", b"x\x7f")]),
            _head(extra=[(b"x-a", b"x\ny")]),
            _head(extra=[(b"x a", b"v")]),
            _head(extra=[(b"x\x01", b"v")]),
            _head(extra=[(b"host", b"a b")]),
            [(b":authority", b"a\x1bb") if n == b":authority" else (n, v)
             for n, v in _head()],
        ]  # fmt: skip
        for headers in cases:
            self.assertEqual(self.status(headers), 400, headers)
        ok = _head(path=b"/caf\xc3\xa9?q=\x85", extra=[(b"x-a", b"a\tb \xff")])
        self.assertEqual(self.status(ok), 200)

    def test_contentLength(self) -> None:
        """
        The declared length is returned, or C{None} without one.
        """
        self.assertEqual(
            checkHead(_head(extra=[(b"content-length", b"7")]), Limits()).contentLength,
            7,
        )
        self.assertIsNone(checkHead(_head(), Limits()).contentLength)

    def test_bound(self) -> None:
        """
        The header list bound is above the header section limit, so that a
        section over the limit but within the bound gets a 431.
        """
        limits = Limits()
        self.assertGreater(headerListBound(limits), limits.maxHeaderBytes)


def _frame(kind: int, flags: int, payload: bytes = b"", stream: int = 1) -> bytes:
    """
    An HTTP/2 frame (RFC 9113 section 4.1).
    """
    return (
        len(payload).to_bytes(3, "big")
        + bytes([kind, flags])
        + stream.to_bytes(4, "big")
        + payload
    )


class HeaderBlockWatchTests(SynchronousTestCase):
    """
    L{HeaderBlockWatch} tells from the bytes received whether a header
    block is incomplete.
    """

    def feed(self, *pieces: bytes) -> list[bool]:
        """
        Feed C{pieces} one after the other, byte by byte too: what
        C{pending} said after each piece.
        """
        whole = HeaderBlockWatch()
        split = HeaderBlockWatch()
        seen = []
        for piece in pieces:
            whole.feed(piece)
            for at in range(len(piece)):
                split.feed(piece[at : at + 1])
            self.assertEqual(split.pending, whole.pending, pieces)
            seen.append(whole.pending)
        return seen

    def test_blocks(self) -> None:
        """
        A HEADERS frame is pending until it arrived whole with
        C{END_HEADERS}, or until the CONTINUATION frame that carries it;
        the preface, a partial DATA frame and SETTINGS are not.
        """
        settings = _frame(0x4, 0, stream=0)
        self.assertEqual(
            self.feed(PREFACE[:10], PREFACE[10:], settings[:2], settings[2:]),
            [False, False, True, False],
        )
        headers = _frame(0x1, 0x0, b"h" * 20)
        continuation = _frame(0x9, 0x4, b"c" * 5)
        self.assertEqual(
            self.feed(
                PREFACE,
                headers[:12],
                headers[12:],
                continuation[:9],
                continuation[9:],
                _frame(0x1, 0x4 | 0x1, b"x" * 3, stream=3),
            ),
            [False, True, True, True, False, False],
        )
        data = _frame(0x0, 0x0, b"d" * 30)
        self.assertEqual(
            self.feed(PREFACE, data[:5], data[5:20], data[20:]),
            [False, False, False, False],
        )

    def test_frameBudget(self) -> None:
        """
        Given a number of frames, it follows C{data} only to the end of that
        many frames and says how many bytes that is; a frame whose header
        an earlier call counted is followed to its end first, beyond them.
        """
        watch = HeaderBlockWatch()
        ping = _frame(0x6, 0, b"12345678", stream=0)
        data = PREFACE + ping * 5
        self.assertEqual(watch.feed(data, 2), len(PREFACE) + 2 * len(ping))
        self.assertEqual(watch.answered, 2)
        self.assertEqual(watch.feed(ping[:12], 1), 12)
        self.assertEqual(watch.answered, 3)
        self.assertEqual(watch.feed(ping[12:] + ping * 2, 1), 2 * len(ping) - 12)
        self.assertEqual(watch.answered, 4)
        self.assertEqual(watch.feed(ping * 3), 3 * len(ping))
        self.assertEqual(watch.answered, 7)

    def test_resets(self) -> None:
        """
        It counts the RST_STREAM frames.
        """
        watch = HeaderBlockWatch()
        reset = _frame(0x3, 0, b"\x00\x00\x00\x08")
        watch.feed(PREFACE + reset * 3 + _frame(0x6, 0, b"12345678", stream=0))
        self.assertEqual((watch.resets, watch.answered), (3, 1))


class AlpnTests(SynchronousTestCase):
    """
    What a TLS listener offers in ALPN.
    """

    def test_choices(self) -> None:
        """
        HTTP/2 first when enabled and available; HTTP/1.1 only otherwise,
        with one log line saying why when HTTP/2 is missing.
        """
        self.assertEqual(alpnProtocols(True, available=True), WITH_HTTP2)
        self.assertEqual(alpnProtocols(False, available=True), HTTP11_ONLY)
        self.assertEqual(alpnProtocols(False, available=False), HTTP11_ONLY)
        self.addCleanup(_said.clear)
        _said.clear()
        with capturedLogs() as events:
            self.assertEqual(alpnProtocols(True, available=False), HTTP11_ONLY)
            self.assertEqual(alpnProtocols(True, available=False), HTTP11_ONLY)
        self.assertEqual(len(events), 1)
        self.assertIn("'http2' extra", events[0]["log_format"])


class SettingTests(SynchronousTestCase):
    """
    C{--no-http2} and C{TWSGI_NO_HTTP2} reach the TLS profile of every
    listener (what its handshake offers: see L{tests.server.test_tls.ALPNTests}).
    """

    def http2(self, commandLine: dict[str, Any], environ: dict[str, str]) -> bool:
        config = resolveConfig(
            {
                "app": "twsgi.example:app",
                "endpoint": ["tcp:0:interface=127.0.0.1"],
                "access_log": "none",
                **commandLine,
            },
            environ,
        )
        return tlsFromConfig(config).http2

    def test_setting(self) -> None:
        """
        By default listeners offer C{h2}; the flag or the environment
        variable turns it off.
        """
        self.assertTrue(self.http2({}, {}))
        self.assertFalse(self.http2({"no_http2": True}, {}))
        self.assertFalse(self.http2({}, {"TWSGI_NO_HTTP2": "1"}))


class App:
    """
    A WSGI application for these tests: it records what it saw and, by
    path, blocks, streams a large body, or sends a file.
    """

    def __init__(self, fileName: str = "") -> None:
        self.seen: list[dict[str, Any]] = []
        self.started = threading.Semaphore(0)
        self.release = threading.Event()
        self.fileName = fileName
        self.produced = 0

    def endless(self) -> Any:
        """
        Up to 64 MiB in fresh 64 KiB chunks, counted in C{produced}.
        """
        for _ in range(1024):
            if self.release.is_set():
                return
            self.produced += 65536
            yield os.urandom(65536)

    def __call__(self, environ: dict[str, Any], startResponse: Any) -> Any:
        path = environ["PATH_INFO"]
        body = environ["wsgi.input"].read()
        record = {k: v for k, v in environ.items() if isinstance(v, (str, bool))}
        record["body"] = body
        self.seen.append(record)
        if path == "/block":
            self.started.release()
            self.release.wait(15)
            startResponse("200 OK", [("Content-Length", "4")])
            return [b"done"]
        if path == "/big":
            startResponse("200 OK", [("Connection", "close")])
            return (bytes([65 + i % 26]) * 65536 for i in range(32))
        if path == "/endless":
            startResponse("200 OK", [])
            return self.endless()
        if path == "/file":
            startResponse("200 OK", [("Content-Type", "application/octet-stream")])
            return environ["wsgi.file_wrapper"](open(self.fileName, "rb"))
        out = b"seen " + path.encode("latin-1") + b" %d" % len(body)
        startResponse("200 OK", [("Content-Length", str(len(out)))])
        return [out]


class Http2ServerMixin:
    """
    A L{TwsgiSite} on an C{ssl:} listener on 127.0.0.1, port 0, with a real
    thread pool; the test's client runs in a thread.
    """

    timeout = 30

    def serve(
        self,
        limits: Limits | None = None,
        clientCA: bool = False,
        http2: bool = True,
        poolSize: tuple[int, int] = (1, 4),
        maxPending: int = 0,
    ) -> Any:
        from twisted.internet import reactor

        case: Any = self
        self.certs = makeCertificates(os.path.abspath(case.mktemp()))
        self.fileName = os.path.join(self.certs, "payload")
        with open(self.fileName, "wb") as f:
            f.write(os.urandom(300_000))
        self.app = App(self.fileName)
        self.records: list[AccessRecord] = []
        pool = WorkerPool(*poolSize, name="twsgi-h2-test")
        pool.start()
        # Joined from another thread: the I/O thread must stay free to tell
        # a WSGI thread that waits on a paused response that it was lost.
        case.addCleanup(threads.deferToThread, pool.stop)
        case.addCleanup(self.app.release.set)
        resource = WSGIResource(reactor, pool, self.app)
        resource.maxPending = maxPending
        self.site = TwsgiSite(
            resource,
            reactor,
            limits=limits,
            observers=[self.records.append],
            http2=http2,
        )
        description = (
            f"ssl:0:interface=127.0.0.1:privateKey={self.certs}/server.key"
            f":certKey={self.certs}/server.pem"
        )
        ca = os.path.join(self.certs, "ca.pem") if clientCA else None
        d = buildEndpoint(reactor, description, ca, tls=TLSProfile(http2=http2)).listen(
            self.site
        )

        def listening(port: Any) -> int:
            case.addCleanup(self._closeAll)
            case.addCleanup(port.stopListening)
            self.port = port.getHost().port
            return self.port

        return d.addCallback(listening)

    def _closeAll(self) -> None:
        for channel in list(self.site.connections):
            channel.transport.abortConnection()

    def client(self, **kw: Any) -> H2Client:
        client = connect(self.port, self.certs, **kw)
        self.addCleanup(client.close)  # type: ignore[attr-defined]
        return client

    def inThread(self, f: Any, *args: Any) -> Any:
        return threads.deferToThread(f, *args)


class Http2Tests(Http2ServerMixin, TestCase):
    """
    The application over HTTP/2, with the limits and the access log of
    HTTP/1.1.
    """

    @defer.inlineCallbacks
    def test_getAndPost(self) -> Any:
        """
        ALPN chooses C{h2}; a GET and a POST with a body on one connection
        reach the application as C{HTTP/2} over C{https}, each with one
        access-log line.
        """
        yield self.serve()

        def talk() -> Any:
            client = self.client()
            get = client.request("GET", "/a?x=1")
            post = client.request(
                "POST", "/b", [("content-length", "5000")], body=b"x" * 5000
            )
            return client.alpn, client.answer(get), client.answer(post)

        alpn, get, post = yield self.inThread(talk)
        self.assertEqual(alpn, "h2")
        self.assertEqual((get.status, get.body), (200, b"seen /a 0"))
        self.assertEqual((post.status, post.body), (200, b"seen /b 5000"))
        first, second = sorted(self.app.seen, key=lambda r: r["PATH_INFO"])
        self.assertEqual(first["SERVER_PROTOCOL"], "HTTP/2.0")
        self.assertEqual(first["QUERY_STRING"], "x=1")
        self.assertEqual(first["wsgi.url_scheme"], "https")
        self.assertEqual(first["HTTP_HOST"], "localhost")
        self.assertEqual(second["body"], b"x" * 5000)
        self.assertEqual(second["CONTENT_LENGTH"], "5000")
        self.assertEqual(
            sorted((r.method, r.target, r.protocol, r.status) for r in self.records),
            [("GET", "/a?x=1", "HTTP/2.0", 200), ("POST", "/b", "HTTP/2.0", 200)],
        )

    @defer.inlineCallbacks
    def test_uploadWithoutLength(self) -> Any:
        """
        A body sent in several DATA frames without C{content-length} reaches
        the application whole, with C{wsgi.input_terminated}, also once it
        outgrew the in-memory spool.
        """
        yield self.serve()

        def talk() -> Any:
            client = self.client()
            stream = client.request("POST", "/up", end=False)
            for piece in (b"a" * 3000, b"b" * SPOOL_SIZE, b"c" * 10):
                client.send(stream, piece)
            client.send(stream, b"", end=True)
            return client.answer(stream)

        answer = yield self.inThread(talk)
        size = 3010 + SPOOL_SIZE
        self.assertEqual((answer.status, answer.body), (200, b"seen /up %d" % size))
        (seen,) = self.app.seen
        self.assertEqual(seen["body"], b"a" * 3000 + b"b" * SPOOL_SIZE + b"c" * 10)
        self.assertIs(seen["wsgi.input_terminated"], True)
        self.assertEqual(seen["CONTENT_LENGTH"], str(size))

    @defer.inlineCallbacks
    def test_bodyLimit(self) -> Any:
        """
        A declared length over the body limit gets 413 at once; a body
        without a declared length gets 413 once its DATA passes the limit;
        the application never runs, each refusal has its access record, and
        the connection serves the next request.
        """
        yield self.serve(Limits(maxBody=1000))

        def talk() -> Any:
            client = self.client()
            declared = client.request(
                "POST", "/declared", [("content-length", "2000")], end=False
            )
            first = client.answer(declared)
            counted = client.request("POST", "/counted", end=False)
            client.send(counted, b"x" * 600)
            client.send(counted, b"x" * 600)
            second = client.answer(counted)
            after = client.answer(client.request("GET", "/after"))
            return first, second, after

        first, second, after = yield self.inThread(talk)
        self.assertEqual(first.status, 413)
        self.assertIn(b"too large", first.body)
        self.assertEqual(second.status, 413)
        self.assertEqual((after.status, after.body), (200, b"seen /after 0"))
        self.assertEqual([r["PATH_INFO"] for r in self.app.seen], ["/after"])
        self.assertEqual(
            [(r.method, r.target, r.protocol, r.status) for r in self.records],
            [
                ("POST", "/declared", "HTTP/2.0", 413),
                ("POST", "/counted", "HTTP/2.0", 413),
                ("GET", "/after", "HTTP/2.0", 200),
            ],
        )

    @defer.inlineCallbacks
    def test_headerLimits(self) -> Any:
        """
        A long path gets 414; a large field, too many fields, a large
        header section, or a block beyond the advertised bound get 431;
        none reaches the application; a header block beyond the decoder's
        bound ends the connection.  (Fewer than C{Limits.maxRefusedStreams}
        are refused on one connection, which then goes on serving.)
        """
        yield self.serve()

        def talk() -> Any:
            client = self.client()
            statuses = []
            for path, headers in [
                ("/" + "p" * 9000, []),
                ("/field", [("x-big", "v" * 9000)]),
                ("/count", [(f"x-h{i}", "v") for i in range(101)]),
            ]:
                statuses.append(client.answer(client.request("GET", path, headers)))
            ok = client.answer(client.request("GET", "/ok"))
            bound = client.settings.get(6)
            huge = [(f"x-h{i}", "v" * 8000) for i in range(12)]
            statuses.append(client.answer(client.request("GET", "/huge", huge)))
            client.untilClosed()
            client = self.client()
            bomb = [(f"x-h{i}", "v" * 8000) for i in range(50)]
            client.request("GET", "/bomb", bomb)
            client.untilClosed()
            client = self.client()
            total = [(f"x-h{i}", "v" * 7500) for i in range(9)]
            statuses.append(client.answer(client.request("GET", "/total", total)))
            return [a.status for a in statuses], ok.status, bound

        statuses, ok, bound = yield self.inThread(talk)
        self.assertEqual(statuses, [414, 431, 431, 431, 431])
        self.assertEqual(ok, 200)
        self.assertEqual(bound, headerListBound(Limits()))
        self.assertEqual([r["PATH_INFO"] for r in self.app.seen], ["/ok"])
        self.assertEqual(
            [(r.protocol, r.status) for r in self.records],
            [("HTTP/2.0", status) for status in (414, 431, 431, 200, 431, 431)],
        )
        self.assertEqual(self.records[1].target, "/field")

    @defer.inlineCallbacks
    def test_timeouts(self) -> Any:
        """
        A stream whose body stalls gets 408 after the body timeout; a
        connection without streams is closed with GOAWAY after the
        keep-alive timeout.
        """
        # The keep-alive timeout is not much shorter than a busy machine may
        # take between the client's connect and its first request: the
        # connection would rightly be closed before the stream opens.
        yield self.serve(Limits(bodyTimeout=0.3, keepAliveTimeout=2.0))

        def talk() -> Any:
            client = self.client()
            stalled = client.answer(client.request("POST", "/stall", end=False))
            client.untilClosed(timeout=10)
            return stalled, client.goaway

        stalled, goaway = yield self.inThread(talk)
        self.assertEqual(stalled.status, 408)
        self.assertEqual(goaway.errorCode, 0)
        self.assertEqual(self.app.seen, [])

    @defer.inlineCallbacks
    def test_responses(self) -> Any:
        """
        A streamed response larger than every flow-control window and a
        C{wsgi.file_wrapper} response arrive whole; a C{Connection} field
        from the application is dropped (HTTP/2 forbids it).
        """
        yield self.serve()

        def talk() -> Any:
            client = self.client()
            big = client.request("GET", "/big")
            file = client.request("GET", "/file")
            return client.answer(big, timeout=20), client.answer(file, timeout=20)

        big, file = yield self.inThread(talk)
        self.assertEqual(big.status, 200)
        self.assertEqual(len(big.body), 32 * 65536)
        self.assertEqual(big.body[-1:], b"F")
        self.assertNotIn(b"connection", big.headers)
        with open(self.fileName, "rb") as f:
            self.assertEqual(file.body, f.read())

    @defer.inlineCallbacks
    def test_slowReader(self) -> Any:
        """
        A client that opens its flow-control windows wide and then stops
        reading gets its response paused near the bridge's high-water mark
        (plus socket buffers), not buffered whole in the server.
        """
        yield self.serve()

        def talk() -> Any:
            client = self.client()
            client.conn.update_settings(
                {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1}
            )
            client.conn.increment_flow_control_window(2**31 - 1 - 65535)
            stream = client.request("GET", "/endless")
            deadline = time.monotonic() + 10
            while client.answers[stream].status is None:
                client.readOnce(deadline)
            before = -1
            # Stop reading; wait until the application stops producing.
            while before != self.app.produced and time.monotonic() < deadline:
                before = self.app.produced
                time.sleep(0.5)
            return self.app.produced

        produced = yield self.inThread(talk)
        self.assertLess(produced, BOUND)

    @defer.inlineCallbacks
    def test_hundredUnreadStreams(self) -> Any:
        """
        A client that opens 100 streams of endless responses and reads none
        holds the server to far less than 30 MB: each response pauses once
        the flow-control window is used up, and the application stops
        producing.
        """
        yield self.serve(Limits(maxStreams=100), poolSize=(100, 100))

        def talk() -> Any:
            client = self.client()
            for _ in range(100):
                client.request("GET", "/endless")
            deadline = time.monotonic() + 20
            before = -1
            while time.monotonic() < deadline and (
                len(self.app.seen) < 100 or before != self.app.produced
            ):
                before = self.app.produced
                time.sleep(0.5)
            return len(self.app.seen), self.app.produced

        started, produced = yield self.inThread(talk)
        self.assertEqual(started, 100)
        queued = sum(
            stream.queued
            for connection in self.site.connections
            for stream in connection.streams.values()
        )
        self.assertLess(produced, 30 * 1024 * 1024)
        self.assertLess(queued, 30 * 1024 * 1024)

    @defer.inlineCallbacks
    def test_sendTimeout(self) -> Any:
        """
        A stream whose client never opens its flow-control window is reset
        with C{CANCEL} after the send timeout, which frees the only WSGI
        thread for another client, and leaves one access record.
        """
        yield self.serve(Limits(sendTimeout=0.5), poolSize=(1, 1))

        def talk() -> Any:
            stuck = self.client()
            stuck.conn.update_settings(
                {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0}
            )
            stuck.flush()
            held = stuck.answer(stuck.request("GET", "/endless"), timeout=10)
            other = self.client()
            return held, other.answer(other.request("GET", "/after"), timeout=10)

        held, after = yield self.inThread(talk)
        self.assertEqual((held.status, held.reset, held.body), (200, CANCEL, b""))
        self.assertEqual((after.status, after.body), (200, b"seen /after 0"))
        (record,) = [r for r in self.records if r.target == "/endless"]
        self.assertEqual(
            (record.status, record.disconnected, record.cutOff),
            (200, True, "send-timeout"),
        )

    @defer.inlineCallbacks
    def test_uploadStreamsBounded(self) -> Any:
        """
        Connections that open as many uploads without C{content-length} as
        they may (the default stream cap), and trickle them, cost the server
        no file descriptor beyond their sockets: small bodies are spooled in
        memory.
        """
        yield self.serve()
        before = len(os.listdir("/proc/self/fd"))

        def talk() -> Any:
            opened = []
            for _ in range(3):
                client = self.client()
                client.readOnce(time.monotonic() + 10)
                for _ in range(Limits().maxStreams + 8):
                    try:
                        stream = client.request("POST", "/up", end=False)
                        client.send(stream, b"x")
                    except h2.exceptions.TooManyStreamsError:
                        break
                    except h2.exceptions.StreamClosedError:
                        pass  # Refused before this client read the cap.
                client.sync()
                answers = client.answers.values()
                opened.append(sum(answer.reset is None for answer in answers))
            return opened

        opened = yield self.inThread(talk)
        grown = len(os.listdir("/proc/self/fd")) - before
        # Each connection: a server and a client socket; and a few more for
        # the threads (a temporary file per upload: 56; and without the
        # stream cap, 128).
        self.assertLessEqual(grown, 3 * 2 + 8)
        self.assertEqual(opened, [Limits().maxStreams] * 3)

    @defer.inlineCallbacks
    def test_maxPending(self) -> Any:
        """
        With the only thread busy and the queue full, the next stream gets
        503 with C{Retry-After}; the others complete once the thread is free.
        """
        yield self.serve(poolSize=(1, 1), maxPending=1)

        def talk() -> Any:
            client = self.client()
            blocked = client.request("GET", "/block")
            if not self.app.started.acquire(timeout=10):
                raise AssertionError("the application never started")
            queued = client.request("GET", "/queued")
            refused = client.answer(client.request("GET", "/refused"))
            self.app.release.set()
            return refused, client.answer(blocked), client.answer(queued)

        refused, blocked, queued = yield self.inThread(talk)
        self.assertEqual(refused.status, 503)
        self.assertEqual(refused.headers[b"retry-after"], b"1")
        self.assertEqual((blocked.status, blocked.body), (200, b"done"))
        self.assertEqual(queued.status, 200)

    @defer.inlineCallbacks
    def test_mutualTLS(self) -> Any:
        """
        Over HTTP/2 too, the verified client certificate is in the environ,
        and forwarding headers from a trusted peer are applied.
        """
        yield self.serve(clientCA=True)

        def talk() -> Any:
            client = self.client(clientCertificate="client")
            stream = client.request("GET", "/me", [("x-forwarded-for", "203.0.113.9")])
            return client.alpn, client.answer(stream)

        alpn, answer = yield self.inThread(talk)
        self.assertEqual((alpn, answer.status), ("h2", 200))
        (seen,) = self.app.seen
        self.assertEqual(seen["SSL_CLIENT_S_DN"], "CN=client,O=twsgi tests")
        self.assertEqual(seen["SSL_CLIENT_I_DN"], "CN=twsgi test CA,O=twsgi tests")
        self.assertEqual(seen["SSL_CLIENT_VERIFY"], "SUCCESS")
        self.assertEqual(seen["REMOTE_ADDR"], "203.0.113.9")

    @defer.inlineCallbacks
    def test_environBothWays(self) -> Any:
        """
        One request sent over HTTP/1.1 and over HTTP/2 on TLS, with a client
        certificate, reaches the application with the same environ (the
        scheme, the client's address, its certificate, the headers), but
        for the protocol and the client's port.
        """
        yield self.serve(clientCA=True)

        def talk() -> Any:
            client = self.client(clientCertificate="client")
            stream = client.request("GET", "/same?q=1", [("x-a", "b")])
            h2 = client.alpn, client.answer(stream).status
            plain = self.client(clientCertificate="client", protocols=("http/1.1",))
            plain.sock.sendall(
                b"GET /same?q=1 HTTP/1.1\r\nHost: localhost\r\nx-a: b\r\n\r\n"
            )
            data = b""
            while not data.endswith(b"seen /same 0"):
                chunk = plain.sock.recv(65536)
                if not chunk:
                    break
                data += chunk
            return h2, plain.alpn, data.split(b"\r\n", 1)[0]

        h2, alpn, statusLine = yield self.inThread(talk)
        self.assertEqual(
            (h2, alpn, statusLine), (("h2", 200), "http/1.1", b"HTTP/1.1 200 OK")
        )
        two, one = self.app.seen
        self.assertEqual(
            (two["SERVER_PROTOCOL"], one["SERVER_PROTOCOL"]), ("HTTP/2.0", "HTTP/1.1")
        )
        self.assertEqual(two["SSL_CLIENT_VERIFY"], "SUCCESS")
        self.assertEqual(two["wsgi.url_scheme"], "https")
        self.assertEqual(two["REMOTE_ADDR"], "127.0.0.1")
        different = ("SERVER_PROTOCOL", "REMOTE_PORT")
        self.assertEqual(
            {k: v for k, v in two.items() if k not in different},
            {k: v for k, v in one.items() if k not in different},
        )
        self.assertEqual(
            sorted((r.protocol, r.status) for r in self.records),
            [("HTTP/1.1", 200), ("HTTP/2.0", 200)],
        )

    @defer.inlineCallbacks
    def test_turnedOff(self) -> Any:
        """
        With HTTP/2 turned off, ALPN chooses C{http/1.1} for a client that
        offers both.
        """
        yield self.serve(http2=False)
        client = yield self.inThread(self.client)
        self.assertEqual(client.alpn, "http/1.1")


class Http2DrainTests(TestCase):
    """
    The graceful stop of a L{TwsgiService} with an HTTP/2 request in flight.
    """

    timeout = 30

    @defer.inlineCallbacks
    def test_drain(self) -> Any:
        """
        The connection gets a GOAWAY that refuses no stream, then, one round
        trip later, a GOAWAY naming the stream in flight; a stream
        opened later is refused (so the client may retry it); the stream in
        flight completes; then the connection closes and the stop reports
        every request drained.
        """
        from twisted.internet import reactor

        certs = makeCertificates(os.path.abspath(self.mktemp()))
        app = App()
        self.addCleanup(app.release.set)
        config = ServerConfig(
            endpoint=(
                f"ssl:0:interface=127.0.0.1:privateKey={certs}/server.key"
                f":certKey={certs}/server.pem",
            ),
            threads=(1, 2),
            graceful_timeout=15.0,
            access_log="none",
        )
        service = TwsgiService(config, app, reactor)
        service.startService()
        self.addCleanup(service.stopService)
        ((_, address),) = yield service.whenListening
        stops: list[Any] = []

        def talk() -> Any:
            client = connect(address.port, certs)
            self.addCleanup(client.close)
            blocked = client.request("GET", "/block")
            if not app.started.acquire(timeout=10):
                raise AssertionError("the application never started")
            reactor.callFromThread(lambda: stops.append(service.stopService()))
            goaways = []
            while (not goaways or goaways[-1].lastStreamID == NO_STREAM_REFUSED) and (
                not client.closed
            ):
                client.readOnce(time.monotonic() + 10)
                if client.goaway is not None and client.goaway not in goaways:
                    goaways.append(client.goaway)
            first, goaway = goaways[0], goaways[-1]
            self.assertEqual(first, GoAway(NO_STREAM_REFUSED, 0))
            late = client.answer(client.request("GET", "/late"))
            app.release.set()
            answer = client.answer(blocked)
            client.untilClosed()
            # The server waits for the client's TLS close_notify (or for the
            # socket to close) before the connection counts as closed.
            client.close()
            return goaway, late, answer

        goaway, late, answer = yield threads.deferToThread(talk)
        self.assertEqual((goaway.errorCode, goaway.lastStreamID), (0, 1))
        self.assertEqual(late.reset, REFUSED_STREAM)
        self.assertEqual((answer.status, answer.body), (200, b"done"))
        result = yield stops[0]
        self.assertEqual((result.drained, result.cut), (True, 0))
        self.assertEqual([r["PATH_INFO"] for r in app.seen], ["/block"])


class WorkersCurlTests(SynchronousTestCase):
    """
    C{python -m twsgi --workers 2} serves HTTP/2 to C{curl}.
    """

    def curl(self, port: int, path: str) -> list[str]:
        result = subprocess.run(
            [
                "curl",
                "-sk",
                "--http2",
                "--max-time",
                "10",
                "-w",
                "\n%{http_version} %{http_code}",
                f"https://127.0.0.1:{port}{path}",
            ],
            capture_output=True,
            text=True,
            timeout=20,
        )
        return result.stdout.rsplit("\n", 1)

    def test_workers(self) -> None:
        """
        The application, the health path and the metrics listener answer
        over HTTP/2 (ALPN chose C{h2}), through worker processes; the access
        log says C{HTTP/2.0}.
        """
        if shutil.which("curl") is None:
            raise AssertionError("curl is needed for this test")
        certs = makeCertificates(os.path.abspath(self.mktemp()))
        endpoint = (
            f"ssl:0:interface=127.0.0.1:privateKey={certs}/server.key"
            f":certKey={certs}/server.pem"
        )
        metrics = endpoint + ":backlog=7"
        server = start(
            self,
            [
                "--app",
                "twsgi.example:app",
                "--endpoint",
                endpoint,
                "--metrics-endpoint",
                metrics,
                "--workers",
                "2",
                "--health-on-app",
            ],
            checkout=True,
            listeners=2,
        )
        port = server.endpoints[endpoint][1]
        body, facts = self.curl(port, "/")
        self.assertEqual((body, facts), ("Hello from twsgi!\n", "2 200"))
        self.assertEqual(self.curl(port, "/livez")[1], "2 200")
        body, facts = self.curl(server.endpoints[metrics][1], "/metrics")
        self.assertEqual(facts, "2 200")
        self.assertIn("twsgi_requests_total", body)
        server.waitFor(r'"GET / HTTP/2.0" 200')


def _windowQuestions(wire: H2Wire, limit: int | None = None) -> list[int]:
    """
    The streams whose flow-control window C{wire}'s connection asks for
    from now on, as it asks; asked more than C{limit} times, it fails (a
    loop that would not end).
    """
    conn = wire.server.conn
    asked: list[int] = []
    window = conn.localFlowControlWindow

    def counted(streamID: int) -> int:
        asked.append(streamID)
        if limit is not None and len(asked) > limit:
            raise AssertionError(f"the window was asked for {limit} times")
        return window(streamID)

    conn.localFlowControlWindow = counted  # type: ignore[method-assign]
    return asked


class WireMixin:
    """
    A connection on an L{H2Wire}, and its client.
    """

    def connect(self, limits: Limits | None = None) -> tuple[H2Wire, H2Client]:
        wire = H2Wire(limits or Limits())
        client = H2Client(wire)
        client.readOnce(time.monotonic() + 1)
        return wire, client

    def read(self, client: H2Client) -> None:
        """
        Read whatever the server has sent, if anything.
        """
        try:
            client.readOnce(time.monotonic() + 1)
        except AssertionError:
            pass


class Http2ConnectionTests(WireMixin, SynchronousTestCase):
    """
    L{TwsgiH2Connection}'s timers and graceful stop, on a fake clock.
    """

    def test_checkedOnce(self) -> None:
        """
        A header block the connection checked before (the same fields) is
        not checked again; another one is, and a refused one is refused
        each time.
        """
        import twsgi.server.http2 as http2

        checked: list[bytes] = []

        def checkHead(headers: Any, limits: Limits) -> Any:
            checked.append(dict(headers)[b":path"])
            return realCheck(headers, limits)

        realCheck = http2.checkHead
        self.patch(http2, "checkHead", checkHead)
        wire, client = self.connect()
        streams = [client.request("GET", path) for path in ["/a", "/a", "/b", "/a"]]
        wire.resource.finishAll()
        for stream in streams:
            self.assertEqual(client.answer(stream).body, b"done")
        self.assertEqual(checked, [b"/a", b"/b"])
        refused = [client.request("GET", "/c", [("x-a", "\x01")]) for _ in range(2)]
        for stream in refused:
            self.assertEqual(client.answer(stream).status, 400)
        self.assertEqual(checked, [b"/a", b"/b", b"/c", b"/c"])

    def test_expectContinue(self) -> None:
        """
        A request that asks for C{100 Continue} gets it at once, before it
        sends its body; one that does not, does not.
        """
        wire = H2Wire(Limits())
        client = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        client.initiate_connection()
        client.send_headers(1, _head(method=b"POST"), end_stream=False)
        client.send_headers(
            3, _head(method=b"POST", extra=[(b"expect", b"100-continue")])
        )
        wire.sendall(client.data_to_send())
        interim = [
            (event.stream_id, dict(event.headers)[b":status"])
            for event in client.receive_data(wire.transport.value())
            if isinstance(event, h2.events.InformationalResponseReceived)
        ]
        self.assertEqual(interim, [(3, b"100")])

    def test_idle(self) -> None:
        """
        A connection without streams closes with GOAWAY after the keep-alive
        timeout, which a PING does not reset and which does not run while a
        stream is open.
        """
        wire, client = self.connect(Limits(keepAliveTimeout=5))
        stream = client.request("GET", "/")
        wire.clock.advance(10)
        self.assertFalse(wire.transport.disconnecting)
        wire.resource.finishAll()
        self.assertEqual(client.answer(stream).body, b"done")
        wire.clock.advance(3)
        client.conn.ping(b"12345678")
        client.flush()
        wire.clock.advance(2)
        self.read(client)
        self.assertTrue(wire.transport.disconnecting)
        self.assertEqual(client.goaway, GoAway(lastStreamID=1, errorCode=0))

    def test_protocolErrorLogged(self) -> None:
        """
        A header block beyond the decoder's bound ends the connection with
        GOAWAY, and the server log says why, naming the peer.
        """
        wire, client = self.connect()
        with capturedLogs() as events:
            client.request("GET", "/", [(f"x-h{i}", "v" * 8000) for i in range(50)])
            self.read(client)
        self.assertTrue(wire.transport.disconnecting)
        self.assertIsNotNone(client.goaway)
        lines = [formatEvent(e) for e in events]
        closed = [line for line in lines if "HTTP/2 connection from" in line]
        self.assertEqual(len(closed), 1, lines)
        self.assertIn("closed: ", closed[0])
        self.assertIn("header", closed[0].lower())

    def test_bodyTimeout(self) -> None:
        """
        Each DATA frame restarts the body timeout; a body that stalls for
        longer gets 408 and never reaches the resource.
        """
        wire, client = self.connect(Limits(bodyTimeout=2))
        stream = client.request("POST", "/", end=False)
        wire.clock.advance(1.5)
        client.send(stream, b"x")
        wire.clock.advance(1.5)
        self.assertIsNone(client.answers[stream].status)
        wire.clock.advance(1)
        self.assertEqual(client.answer(stream).status, 408)
        self.assertEqual(wire.resource.requests, [])
        self.assertEqual(wire.server.inFlight, 0)

    def test_bodyNotKept(self) -> None:
        """
        A request body for a C{twisted.web} resource that cannot be kept in
        its temporary file, or whose file cannot be made, gets its stream a
        507 or a 503 with C{retry-after} and one error line, as on the hot
        path; the resource is not rendered, and the connection and its other
        streams go on.
        """
        files = FailingFiles()
        for make, reason, status in files.ways():
            self.patch(tempfile, "TemporaryFile", make)
            wire, client = self.connect()
            records: list[AccessRecord] = []
            wire.site.observers.append(records.append)
            other, answer, line = _uploadNotKept(client)
            self.assertEqual(answer.status, status)
            self.assertEqual(
                answer.headers.get(b"retry-after"), b"1" if status == 503 else None
            )
            self.assertIn("POST /up could not be kept", line)
            self.assertIn(reason, line)
            self.assertTrue(all(f.closed for f in files.made))
            client.send(other, b"x", end=True)
            self.read(client)
            wire.resource.finishAll()
            self.assertEqual(client.answer(other).body, b"done")
            self.assertEqual(wire.resource.bodies, [b"x"])
            self.assertEqual(
                [(r.target, r.status) for r in records],
                [("/up", status), ("/other", 200)],
            )
            self.assertEqual(wire.server.inFlight, 0)

    def test_drain(self) -> None:
        """
        Draining sends a PING; once the client answered it, a GOAWAY that
        refuses no stream and another PING; once the client answered that
        one, a GOAWAY naming the last stream received (also one the client
        opened before it read the first GOAWAY).  Streams opened after that
        are refused with C{REFUSED_STREAM}; the connection closes once the
        streams in flight are answered.
        """
        wire, client = self.connect()
        first = client.request("GET", "/first")
        wire.site.connections.drain()
        between = client.request("GET", "/between")
        self.read(client)
        self.assertIsNone(client.goaway)
        self.read(client)
        self.assertEqual(client.goaway, GoAway(NO_STREAM_REFUSED, errorCode=0))
        self.read(client)
        self.assertEqual(client.goaway, GoAway(lastStreamID=between, errorCode=0))
        self.assertEqual(client.answer(client.request("GET", "/late")).reset, 7)
        self.assertEqual(wire.site.connections.inFlight, 2)
        self.assertFalse(wire.transport.disconnecting)
        wire.resource.finishAll()
        self.assertEqual(client.answer(first).body, b"done")
        self.assertEqual(client.answer(between).body, b"done")
        self.assertTrue(wire.transport.disconnecting)

    def assertDrainWaits(self, within: float | None, wait: float) -> None:
        """
        Drained (with C{within}), a connection whose client answers neither
        PING of the graceful stop sends its first GOAWAY, with the response
        held meanwhile, C{wait} seconds later, and the GOAWAY naming the
        last stream C{wait} seconds after that.
        """
        wire, client = self.connect()
        stream = client.request("GET", "/")
        wire.site.connections.drain(within=within)
        self.assertEqual(
            [_describe(f) for f in _frames(wire.transport.value())],
            [("PING", HUSH_PING)],
        )
        wire.transport.clear()
        wire.resource.finishAll()
        wire.clock.advance(wait - 0.05)
        self.assertEqual(wire.transport.value(), b"")
        wire.clock.advance(0.05)
        frames = [_describe(f) for f in _frames(wire.transport.value())]
        self.assertEqual(frames[0], ("GOAWAY", NO_STREAM_REFUSED))
        self.assertEqual(
            sorted(frames[1:], key=repr),
            [("DATA", stream), ("HEADERS", stream), ("PING", DRAIN_PING)],
        )
        wire.transport.clear()
        wire.clock.advance(wait - 0.05)
        self.assertEqual(wire.transport.value(), b"")
        wire.clock.advance(0.05)
        self.assertEqual(
            [_describe(f) for f in _frames(wire.transport.value())],
            [("GOAWAY", stream)],
        )
        self.assertTrue(wire.transport.disconnecting)

    def test_drainWithoutPingAck(self) -> None:
        """
        A client that answers neither PING of a graceful stop gets the
        first GOAWAY, with the responses held meanwhile, after
        L{DRAIN_ROUND_TRIP} seconds, and the GOAWAY naming the last stream
        L{DRAIN_ROUND_TRIP} seconds later.
        """
        self.assertDrainWaits(None, DRAIN_ROUND_TRIP)

    def test_drainWithinShortTimeout(self) -> None:
        """
        A graceful stop that aborts what is in flight C{within} seconds
        (a graceful timeout under four times L{DRAIN_ROUND_TRIP}) waits a
        quarter of them for each PING of a client that answers neither:
        the responses held meanwhile go out long before the abort.
        """
        self.assertDrainWaits(0.8, 0.2)

    def test_drainWithinLongTimeout(self) -> None:
        """
        A graceful timeout of four times L{DRAIN_ROUND_TRIP} or more leaves
        each PING its L{DRAIN_ROUND_TRIP}.
        """
        self.assertDrainWaits(4 * DRAIN_ROUND_TRIP, DRAIN_ROUND_TRIP)
        self.assertDrainWaits(100 * DRAIN_ROUND_TRIP, DRAIN_ROUND_TRIP)

    def test_drainHushes(self) -> None:
        """
        From the PING that starts a graceful stop until the client answers
        it, no frame of any stream is sent, also of responses that finish
        meanwhile; then the first GOAWAY comes before them.  So the client
        reads that GOAWAY with no response before it, and has queued no
        request in answer to one (h2load counts failed the requests it
        queued and then could not send).
        """
        wire, client = self.connect()
        streams = [client.request("GET", f"/{n}") for n in range(3)]
        wire.resource.requests.pop().finish()
        wire.site.connections.drain()
        self.assertEqual(
            [_describe(f) for f in _frames(wire.transport.value())],
            [("HEADERS", streams[2]), ("DATA", streams[2]), ("PING", HUSH_PING)],
        )
        wire.transport.clear()
        wire.resource.finishAll()
        client.request("GET", "/meanwhile")
        self.assertEqual(wire.transport.value(), b"")
        # The client answers the PING.
        client.conn.receive_data(
            PingFrame(stream_id=0, opaque_data=HUSH_PING).serialize()
        )
        client.flush()
        frames = [_describe(f) for f in _frames(wire.transport.value())]
        self.assertEqual(frames[0], ("GOAWAY", NO_STREAM_REFUSED))
        self.assertEqual(
            sorted(frames[1:], key=repr),
            sorted(
                [("PING", DRAIN_PING)]
                + [
                    (kind, stream)
                    for kind in ("HEADERS", "DATA")
                    for stream in streams[:2]
                ],
                key=repr,
            ),
        )

    def test_drainHushPausesProducer(self) -> None:
        """
        A streamed response that writes while the connection waits for the
        answer to the PING of a graceful stop has its producer paused (its
        frames are held), and resumed once the client answered.
        """
        wire, client = self.connect()
        client.request("GET", "/")
        (request,) = wire.resource.requests
        producer = RecordingProducer()
        request.registerProducer(producer, True)
        wire.site.connections.drain()
        request.write(b"x" * 100)
        self.assertEqual(producer.calls, ["pause"])
        client.conn.receive_data(
            PingFrame(stream_id=0, opaque_data=HUSH_PING).serialize()
        )
        client.flush()
        self.assertEqual(producer.calls, ["pause", "resume"])

    def test_drainFresh(self) -> None:
        """
        A connection that has not sent its first request gets the fresh
        grace for it before GOAWAY.
        """
        wire, client = self.connect()
        wire.site.connections.drain(idleGrace=1)
        self.assertEqual(wire.server.state, State.GRACE)
        wire.clock.advance(0.5)
        stream = client.request("GET", "/")
        self.read(client)
        self.assertIsNone(client.goaway)
        wire.clock.advance(0.5)
        self.assertEqual(wire.server.state, State.HUSHED)
        self.read(client)
        self.read(client)
        self.assertEqual(client.goaway, GoAway(NO_STREAM_REFUSED, errorCode=0))
        self.read(client)
        self.assertEqual(client.goaway, GoAway(lastStreamID=1, errorCode=0))
        wire.resource.finishAll()
        self.assertEqual(client.answer(stream).body, b"done")
        self.assertTrue(wire.transport.disconnecting)

    def test_states(self) -> None:
        """
        A connection's L{State} follows its life: new until its first
        request, open, hushed once the graceful stop began, draining once
        the first GOAWAY is sent, last once the GOAWAY naming the last
        stream is sent, closing once that stream is answered, and lost once
        the connection is gone.
        """
        wire, client = self.connect()
        states = [wire.server.state]
        stream = client.request("GET", "/")
        states.append(wire.server.state)
        wire.site.connections.drain()
        states.append(wire.server.state)
        self.read(client)
        states.append(wire.server.state)
        self.read(client)
        self.read(client)
        self.assertEqual(client.goaway, GoAway(lastStreamID=stream, errorCode=0))
        states.append(wire.server.state)
        wire.resource.finishAll()
        states.append(wire.server.state)
        wire.server.connectionLost(Failure(ConnectionDone()))
        states.append(wire.server.state)
        self.assertEqual(
            states,
            [
                State.NEW,
                State.OPEN,
                State.HUSHED,
                State.DRAINING,
                State.LAST,
                State.CLOSING,
                State.LOST,
            ],
        )

    def test_connectionLost(self) -> None:
        """
        A lost connection leaves its site's connection set and cancels its
        timers.
        """
        wire, client = self.connect(Limits(bodyTimeout=2))
        client.request("POST", "/", end=False)
        wire.server.connectionLost(Failure(ConnectionDone()))
        self.assertNotIn(wire.server, wire.site.connections)
        self.assertEqual(wire.clock.getDelayedCalls(), [])

    def test_switch(self) -> None:
        """
        When ALPN chose C{h2}, the HTTP/1.1 channel hands the connection to
        a L{TwsgiH2Connection} with the listener's limits, which replaces it
        in the site's connection set and counts once for
        C{--max-connections} until it is lost.
        """
        clock = MemoryReactorClock()
        gate = ConnectionGate(10)
        limits = Limits(maxBody=5)
        site = TwsgiSite(PendingApp(), clock, limits=limits, gate=gate)
        protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1234))
        transport = StringTransport()
        transport.negotiatedProtocol = b"h2"  # type: ignore[attr-defined]
        protocol.makeConnection(transport)
        self.assertEqual(gate.open, 1)
        client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        client.initiate_connection()
        protocol.dataReceived(client.data_to_send())
        (connection,) = site.connections
        self.assertIsInstance(connection, TwsgiH2Connection)
        self.assertIs(connection.limits, limits)
        self.assertEqual(gate.open, 1)
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual((len(site.connections), gate.open), (0, 0))

    def test_switchHttp11(self) -> None:
        """
        Without C{h2} chosen in ALPN, the bytes go to the listener's
        HTTP/1.1 protocol, and so does the client's half-close.
        """
        clock = MemoryReactorClock()
        resource = PendingApp()
        site = TwsgiSite(resource, clock)
        protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1234))
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(b"GET /one HTTP/1.1\r\nHost: a\r\n\r\n")
        (channel,) = site.connections
        self.assertIsInstance(channel, TwsgiChannel)
        self.assertEqual([r.path for r in resource.requests], [b"/one"])
        protocol.readConnectionLost()
        self.assertTrue(channel.readClosed)

    def test_rapidReset(self) -> None:
        """
        A client may reset C{Limits.resetBurst} streams at once, and
        C{Limits.resetRate} more a second after that; one more reset closes the
        connection with GOAWAY C{ENHANCE_YOUR_CALM} and a server-log line.
        """
        wire, client = self.connect()

        def openAndReset(count: int) -> None:
            for _ in range(count):
                stream = client.request("GET", "/")
                client.conn.reset_stream(stream)
                client.flush()

        openAndReset(Limits().resetBurst)
        wire.clock.advance(1)
        openAndReset(int(Limits().resetRate))
        wire.transport.clear()
        self.assertFalse(wire.transport.disconnecting)
        self.assertEqual(wire.server.inFlight, 0)
        with capturedLogs() as events:
            openAndReset(1)
            stream = client.request("GET", "/")
        self.read(client)
        self.assertEqual(wire.transport.producerState, "paused")
        wire.clock.advance(CALM_LINGER)
        self.assertTrue(wire.transport.disconnected)
        self.assertEqual(client.goaway, GoAway(lastStreamID=stream - 2, errorCode=11))
        self.assertEqual(client.answers[stream].status, None)
        lines = [formatEvent(e) for e in events]
        self.assertEqual(
            [line for line in lines if "HTTP/2 connection from" in line],
            [
                "HTTP/2 connection from 192.168.1.1:54321 closed: too many streams "
                "reset by the client"
            ],
        )

    def test_controlFlood(self) -> None:
        """
        While the transport's buffer is full, the answers to a client's
        PING frames wait, and are sent first once it drains; a client that
        makes more than L{MAX_CONTROL_BUFFER} bytes of them wait is cut off.
        """
        wire, client = self.connect(Limits(controlFrames=10**6))
        wire.server.pauseProducing()
        client.conn.ping(b"12345678")
        client.flush()
        self.assertEqual(wire.transport.value(), b"")
        wire.server.resumeProducing()
        self.read(client)
        self.assertEqual(client.pingAcks, 1)
        wire.server.pauseProducing()
        for _ in range(MAX_CONTROL_BUFFER // 17):
            client.conn.ping(b"12345678")
        client.flush()
        self.assertFalse(wire.transport.disconnecting)
        with capturedLogs() as events:
            client.conn.ping(b"12345678")
            client.flush()
        self.assertTrue(wire.transport.disconnected)
        self.assertEqual(wire.transport.value(), b"")
        self.assertNotIn(wire.server, wire.site.connections)
        self.assertIn("does not read", "".join(formatEvent(e) for e in events))

    def test_lostAfterFinish(self) -> None:
        """
        A connection lost while a finished response still waits to be sent
        raises nothing, and the request keeps its one access record.
        """
        wire, client = self.connect()
        records: list[AccessRecord] = []
        wire.site.observers.append(records.append)
        client.request("GET", "/")
        wire.server.pauseProducing()
        wire.resource.finishAll()
        self.assertEqual(wire.server.inFlight, 1)
        wire.server.connectionLost(Failure(ConnectionDone()))
        self.assertEqual([(r.status, r.disconnected) for r in records], [(200, False)])

    def test_pullProducerFails(self) -> None:
        """
        A response whose pull producer (a static file's) fails after a part
        has its stream reset with C{INTERNAL_ERROR}, and its access record
        says it was cut off by an error; the connection goes on.
        """
        wire, client = self.connect()
        records: list[AccessRecord] = []
        wire.site.observers.append(records.append)
        client.request("GET", "/")
        (request,) = wire.resource.requests
        request.setHeader(b"content-length", b"10")
        request.registerProducer(FailingPullProducer(request, b"abcde"), False)
        wire.run()
        wire.run()
        self.read(client)
        self.assertEqual(client.answers[1].reset, ErrorCodes.INTERNAL_ERROR)
        self.assertEqual(client.answers[1].body, b"abcde")
        self.assertEqual([r.cutOff for r in records], ["error"])
        self.assertFalse(wire.transport.disconnecting)
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)

    def test_transportBackpressure(self) -> None:
        """
        When the transport's buffer is full, the producers of the streams'
        responses pause too, and resume with it; a stream the client resets
        stops its producer (a WSGI thread waiting to write would otherwise
        wait for ever).
        """
        wire, client = self.connect()
        client.request("GET", "/")
        (request,) = wire.resource.requests
        producer = RecordingProducer()
        calls = producer.calls
        request.registerProducer(producer, True)
        wire.server.pauseProducing()
        self.assertEqual(calls, ["pause"])
        wire.server.resumeProducing()
        self.assertEqual(calls, ["pause", "resume"])
        client.conn.reset_stream(1)
        client.flush()
        self.assertEqual(calls, ["pause", "resume", "stop"])

    def test_registeredWhilePaused(self) -> None:
        """
        A producer registered while the transport's buffer is full is paused
        at once, and timed by the send timeout; it resumes with the
        transport.
        """
        wire, client = self.connect(Limits(sendTimeout=5))
        client.request("GET", "/")
        (request,) = wire.resource.requests
        wire.server.pauseProducing()
        producer = RecordingProducer()
        request.registerProducer(producer, True)
        self.assertEqual(producer.calls, ["pause"])
        wire.clock.advance(4)
        wire.server.resumeProducing()
        self.assertEqual(producer.calls, ["pause", "resume"])
        wire.clock.advance(4)
        self.assertEqual(wire.server.inFlight, 1)
        wire.server.pauseProducing()
        wire.clock.advance(5)
        self.assertEqual(producer.calls, ["pause", "resume", "pause", "stop"])
        self.assertEqual(wire.server.inFlight, 0)

    def test_sendTimeout(self) -> None:
        """
        A response blocked by the client's flow-control window is reset with
        C{CANCEL} once it made no progress for the send timeout (a
        WINDOW_UPDATE restarts it), and its producer is stopped.
        """
        wire, client = self.connect(Limits(sendTimeout=5))
        client.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
        client.flush()
        stream = client.request("GET", "/")
        (request,) = wire.resource.requests
        producer = RecordingProducer()
        calls = producer.calls
        request.registerProducer(producer, True)
        request.write(b"x" * 100)
        self.assertEqual(calls, ["pause"])
        wire.clock.advance(4)
        client.conn.increment_flow_control_window(1, stream)
        client.flush()
        wire.clock.advance(4)
        # Not read by the client yet: reading the byte the window let out
        # would make it open the window again.
        self.assertEqual((wire.server.inFlight, calls), (1, ["pause"]))
        wire.clock.advance(1)
        self.assertEqual(client.answer(stream).reset, CANCEL)
        self.assertEqual(calls, ["pause", "stop"])
        self.assertEqual(wire.server.inFlight, 0)
        self.assertEqual(
            wire.clock.getDelayedCalls()[0].func, wire.server._idleTimedOut
        )

    def openEvery(
        self, seconds: float, times: int, octets: int, wire: H2Wire, client: H2Client
    ) -> None:
        """
        Open the connection's window by C{octets}, C{times} times, each
        after C{seconds}.
        """
        for _ in range(times):
            wire.clock.advance(seconds)
            client.conn.increment_flow_control_window(octets)
            client.flush()

    def test_clientGoAway(self) -> None:
        """
        A client's graceful GOAWAY (C{NO_ERROR}) lets the streams it opened
        finish (RFC 9113 section 6.8): the connection answers with its own
        GOAWAY naming the last of them, and closes once they are answered.
        A GOAWAY with an error code closes the connection at once.
        """
        wire, client = self.connect()
        first = client.request("GET", "/")
        second = client.request("GET", "/")
        wire.sendall(GoAwayFrame(0, last_stream_id=0, error_code=0).serialize())
        self.read(client)
        self.assertEqual(client.goaway, GoAway(lastStreamID=second, errorCode=0))
        self.assertFalse(wire.transport.disconnecting)
        wire.resource.finishAll()
        self.assertEqual(
            [client.answer(s).body for s in (first, second)], [b"done", b"done"]
        )
        self.assertTrue(wire.transport.disconnecting)
        wire, client = self.connect()
        client.request("GET", "/")
        wire.sendall(GoAwayFrame(0, last_stream_id=0, error_code=2).serialize())
        self.assertTrue(wire.transport.disconnecting)
        self.assertEqual(wire.server.inFlight, 0)

    def test_windowBelowZero(self) -> None:
        """
        A stream whose window the client took below zero (it lowered
        C{SETTINGS_INITIAL_WINDOW_SIZE} once the stream's frames went) holds
        its data while the transport resumes and while a graceful GOAWAY
        sends what every stream holds; a WINDOW_UPDATE that opens the window
        lets it go.  (The I/O thread asked for that window again and again,
        forever: one client froze the server.)
        """
        wire, client = self.connect()
        stream = client.request("GET", "/")
        (request,) = wire.resource.requests
        request.write(b"x" * 100000)
        client.conn.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: 0})
        client.flush()
        self.assertEqual(wire.server.conn.streamFlowControlWindow(stream), -65535)
        asked = _windowQuestions(wire, limit=100)
        wire.server.pauseProducing()
        wire.server.resumeProducing()
        wire.sendall(GoAwayFrame(0, last_stream_id=0, error_code=0).serialize())
        request.finish()
        self.read(client)
        self.assertEqual(len(client.answers[stream].body), 65535)
        self.assertLess(len(asked), 100)
        client.conn.increment_flow_control_window(2**20)
        client.conn.increment_flow_control_window(2**20, stream)
        client.flush()
        self.read(client)
        self.assertEqual(len(client.answer(stream).body), 100000)
        self.assertTrue(wire.transport.disconnecting)

    def test_sharedWindowNoProgress(self) -> None:
        """
        A response whose own window the client keeps shut is reset with
        C{CANCEL} after the send timeout, even while the client opens the
        connection's window, which is no use to it.
        """
        wire, client = self.connect(Limits(sendTimeout=5))
        client.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
        client.flush()
        stream = client.request("GET", "/")
        (request,) = wire.resource.requests
        request.write(b"x" * 100)
        self.openEvery(2, 3, 1, wire, client)
        self.assertEqual(wire.server.inFlight, 0)
        self.assertEqual(client.answer(stream).reset, CANCEL)

    def test_windowWhileNotReading(self) -> None:
        """
        A client that reads nothing (the transport's buffer stays full)
        makes no progress by opening windows, its stream's or the
        connection's: its response is reset with C{CANCEL} after the send
        timeout.
        """
        wire, client = self.connect(Limits(sendTimeout=5))
        stream = client.request("GET", "/")
        (request,) = wire.resource.requests
        request.write(b"x" * 70000)
        wire.server.pauseProducing()
        for _ in range(3):
            client.conn.increment_flow_control_window(100, stream)
        self.openEvery(2, 3, 100, wire, client)
        self.assertEqual(wire.server.inFlight, 0)
        wire.server.resumeProducing()
        self.read(client)
        self.assertEqual(client.answers[stream].reset, CANCEL)

    def test_sharedWindowProgress(self) -> None:
        """
        Responses whose own windows are open, and which wait for the
        connection's window, are not reset while the client opens that
        window, though each has a turn at it only every third time (it
        goes to them in turn, see L{test_sharedWindowFair}); they are once
        the client stops.
        """
        wire, client = self.connect(Limits(sendTimeout=5))
        streams = [client.request("GET", "/") for _ in range(3)]
        for stream in streams:
            client.conn.increment_flow_control_window(2**20, stream)
        client.flush()
        for request in wire.resource.requests:
            request.write(b"x" * 2**20)
        self.openEvery(2, 6, 100, wire, client)
        self.assertEqual(wire.server.inFlight, 3)
        wire.clock.advance(5)
        self.assertEqual(wire.server.inFlight, 0)
        self.read(client)
        self.assertEqual([client.answers[s].reset for s in streams], [CANCEL] * 3)

    def test_sharedWindowFair(self) -> None:
        """
        The streams that wait for the connection's window share it when it
        opens, a frame each in turn, and the first turn goes round: a
        stream opened later is not kept waiting until the earlier ones
        end.
        """
        wire, client = self.connect()
        for _ in range(3):
            client.request("GET", "/")
        for request in wire.resource.requests:
            request.write(b"x" * 200000)
        # The first stream took the connection's first window.
        frameSize = wire.server.conn.maxOutboundFrameSize

        def opened(octets: int) -> dict[int, int]:
            wire.transport.clear()
            wire.sendall(WindowUpdateFrame(0, window_increment=octets).serialize())
            sent: dict[int, int] = {}
            for frame in _frames(wire.transport.value()):
                if isinstance(frame, DataFrame):
                    sent[frame.stream_id] = sent.get(frame.stream_id, 0) + len(
                        frame.data
                    )
            return sent

        # The first stream's own window is shut; the other two's are wide
        # open, and they share.
        for stream in (3, 5):
            wire.sendall(WindowUpdateFrame(stream, window_increment=2**20).serialize())
        self.assertEqual(opened(2 * frameSize), {3: frameSize, 5: frameSize})
        # One frame's worth goes to each in turn.
        self.assertEqual(
            [opened(frameSize) for _ in range(6)],
            [{5: frameSize}, {3: frameSize}] * 3,
        )
        # While a graceful stop holds every frame, a window that opens
        # gives no stream its turn: once the client answered the stop's
        # PING (and the window went to the first stream to send, 3), the
        # next turn is 5's.
        wire.site.connections.drain()
        self.assertEqual(opened(frameSize), {})
        client.conn.receive_data(
            PingFrame(stream_id=0, opaque_data=HUSH_PING).serialize()
        )
        client.flush()
        self.assertEqual(opened(frameSize), {5: frameSize})

    def test_sharedWindowTaken(self) -> None:
        """
        When the connection's window opens, the streams that wait for it
        get it in turn (those whose own window is open), until it is used
        up: the others are not asked, so that a WINDOW_UPDATE of one octet
        costs one stream, not every one.
        """
        wire, client = self.connect(Limits(sendTimeout=5))
        for _ in range(20):
            client.request("GET", "/")
        for request in wire.resource.requests:
            request.write(b"x" * 70000)
        asked = _windowQuestions(wire)
        client.conn.increment_flow_control_window(1)
        client.flush()
        self.assertEqual(sorted(set(asked)), [3])

    def test_maxStreams(self) -> None:
        """
        The connection advertises the stream cap; streams beyond it that
        the client opened before it read the cap are served (its opening
        burst), and once the client acknowledged the cap, a stream beyond it
        is refused with C{REFUSED_STREAM} while the streams open go on.
        """
        wire = H2Wire(Limits(maxStreams=2))
        client = H2Client(wire)
        for _ in range(3):
            client.request("POST", "/", end=False)
        self.read(client)
        self.assertEqual(client.settings[SettingCodes.MAX_CONCURRENT_STREAMS], 2)
        self.assertEqual(wire.server.inFlight, 3)
        self.assertEqual([a.reset for a in client.answers.values()], [None] * 3)
        self.assertFalse(wire.transport.disconnecting)
        # A client that ignores the cap.
        client.conn.remote_settings[SettingCodes.MAX_CONCURRENT_STREAMS] = 100
        client.conn.remote_settings.acknowledge()
        refused = client.request("POST", "/", end=False)
        self.read(client)
        self.assertEqual(client.answers[refused].reset, REFUSED_STREAM)
        self.assertEqual(wire.server.inFlight, 3)
        self.assertFalse(wire.transport.disconnecting)
        self.assertIsNone(client.goaway)

    def test_bodyNotContentLength(self) -> None:
        """
        A request body longer or shorter than its C{content-length} is
        malformed (RFC 9113 section 8.1.1), also one that a HEADERS frame
        ends, and one that trailers end: its stream is reset with
        C{PROTOCOL_ERROR} before the resource sees it, and the connection
        goes on.
        """
        wire, client = self.connect(Limits(maxRefusedStreams=10))
        short = client.request("POST", "/", [("content-length", "5")], b"abc")
        long = client.request("POST", "/", [("content-length", "2")], b"abc")
        none = client.request("POST", "/", [("content-length", "5")])
        trailed = client.request(
            "POST", "/", [("content-length", "5")], b"abc", end=False
        )
        client.conn.send_headers(trailed, [(b"x-trailer", b"1")], end_stream=True)
        client.flush()
        good = client.request("POST", "/good", [("content-length", "3")], b"abc")
        self.read(client)
        self.assertEqual(
            [client.answers[s].reset for s in (short, long, none, trailed)],
            [PROTOCOL_ERROR] * 4,
        )
        self.assertEqual([r.path for r in wire.resource.requests], [b"/good"])
        wire.resource.finishAll()
        self.assertEqual(client.answer(good).body, b"done")
        self.assertFalse(wire.transport.disconnecting)

    def test_badCharacters(self) -> None:
        """
        A stream whose method, path or field value breaks the HTTP/1.1
        character rules gets 400 and never reaches the resource.
        """
        wire, client = self.connect()
        streams = [
            client.request("G T", "/"),
            client.request("GE\x0bT", "/"),
            client.request("GET", "/a\x1b[31mb c"),
            client.request("GET", "/", headers=[("x-a", "x\x01y\x7f")]),
        ]
        for stream in streams:
            self.assertEqual(client.answer(stream).status, 400)
        self.assertEqual(wire.resource.requests, [])

    def test_resetQuiet(self) -> None:
        """
        A stream the client reset while its request waited for a thread
        gets its 499 access record, but no server-log line: a reset costs
        an HTTP/2 client one frame.
        """
        calls: list[str] = []

        def app(environ: Any, startResponse: Any) -> Any:
            calls.append(environ["PATH_INFO"])
            startResponse("200 OK", [])
            return [b"ok"]

        pool = ManualPool()
        wire = H2Wire(Limits(), app, pool)
        records: list[Any] = []
        wire.site.observers.append(records.append)
        client = H2Client(wire)
        client.readOnce(time.monotonic() + 1)
        stream = client.request("GET", "/gone")
        self.assertEqual(len(pool.work), 1)
        client.conn.reset_stream(stream)
        client.flush()
        with capturedLogs() as events:
            pool.runAll()
        self.assertEqual(calls, [])
        self.assertEqual([r.status for r in records], [499])
        text = "\n".join(formatEvent(e) for e in events)
        self.assertNotIn("client disconnected", text)

    def test_refusedLimit(self) -> None:
        """
        The connection closes with GOAWAY C{ENHANCE_YOUR_CALM} once
        C{Limits.maxRefusedStreams} of its streams were refused (431, 400 or 413
        alike), not before; what arrives after is not answered.
        """
        wire, client = self.connect(Limits(maxBody=10))
        client.request("GET", "/pending")
        big = [("x-big", "v" * 10000)]
        for _ in range(Limits().maxRefusedStreams - 2):
            self.assertEqual(client.answer(client.request("G T", "/")).status, 400)
        self.assertEqual(
            client.answer(client.request("POST", "/", body=b"x" * 20)).status, 413
        )
        self.assertFalse(wire.transport.disconnecting)
        self.assertIsNone(client.goaway)
        last = client.request("GET", "/", headers=big)
        self.assertEqual(client.answer(last).status, 431)
        # Nothing more is read; the connection is aborted CALM_LINGER later.
        self.assertEqual(wire.transport.producerState, "paused")
        wire.clock.advance(CALM_LINGER)
        self.assertTrue(wire.transport.disconnected)
        self.assertEqual(client.goaway, GoAway(lastStreamID=last, errorCode=11))
        self.assertEqual(len(wire.resource.requests), 1)
        self.assertEqual(wire.resource.lost, wire.resource.requests)
        wire.transport.clear()
        wire.server.dataReceived(b"\x00" * 9)
        self.assertEqual(wire.transport.value(), b"")

    def test_headerTimeout(self) -> None:
        """
        A header block that does not arrive whole within the header timeout
        (here: a HEADERS frame waiting for its CONTINUATION) closes the
        connection, also while another stream is open; a block that
        arrives in time is served.
        """
        wire, client = self.connect(Limits(headerTimeout=3, keepAliveTimeout=100))
        client.request("GET", "/pending")
        big = [(f"x-big{i}", "v" * 7000) for i in range(4)]
        client.conn.send_headers(
            3,
            _head(b"/slow") + [(k.encode(), v.encode()) for k, v in big],
            end_stream=True,
        )
        data = client.conn.data_to_send()
        first = 9 + int.from_bytes(data[:3], "big")
        self.assertEqual(data[3], 0x1)
        wire.sendall(data[:first])
        wire.clock.advance(2)
        wire.sendall(data[first:])
        self.assertEqual(len(wire.resource.requests), 2)
        client.conn.send_headers(
            5,
            _head(b"/slower") + [(k.encode(), v.encode()) for k, v in big],
            end_stream=True,
        )
        data = client.conn.data_to_send()
        wire.sendall(data[:first])
        wire.clock.advance(2.9)
        self.assertFalse(wire.transport.disconnecting)
        wire.clock.advance(0.1)
        self.assertTrue(wire.transport.disconnecting)
        self.assertEqual(len(wire.resource.requests), 2)


_names = st.sampled_from(
    [
        b":method",
        b":path",
        b":scheme",
        b":authority",
        b"host",
        b"content-length",
        b"connection",
        b"te",
        b"X-Upper",
        b"x-a",
        b"expect",
        b"",
    ]
)
_values = st.one_of(
    st.sampled_from(
        [
            b"GET",
            b"POST",
            b"CONNECT",
            b"/",
            b"*",
            b"https",
            b"5",
            b"-1",
            b"100-continue",
            b"trailers",
            b"a\r\nb",
            b"",
        ]
    ),
    st.binary(max_size=40),
    st.integers(0, 20000).map(lambda n: b"v" * n),
)
_operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("headers"),
            st.integers(0, 3),
            st.lists(st.tuples(_names, _values), max_size=8),
            st.booleans(),
        ),
        st.tuples(st.just("request"), st.integers(0, 3), st.booleans()),
        st.tuples(
            st.just("data"), st.integers(0, 3), st.integers(0, 3000), st.booleans()
        ),
        st.tuples(st.just("reset"), st.integers(0, 3)),
        st.tuples(st.just("ping")),
        st.tuples(st.just("raw"), st.binary(min_size=1, max_size=30)),
        st.tuples(st.just("advance"), st.sampled_from([0.5, 2.0, 11.0])),
        st.tuples(st.just("finish")),
        st.tuples(st.just("pause")),
        st.tuples(st.just("resume")),
        st.tuples(st.just("window"), st.sampled_from([0, 1, 100, 65535])),
        st.tuples(st.just("drain")),
    ),
    max_size=12,
)


class Http2FuzzTests(SynchronousTestCase):
    """
    Random and malformed HTTP/2 traffic never breaks the connection's
    invariants.
    """

    limits = Limits(
        maxBody=2000,
        maxHeaderField=4000,
        headerTimeout=5,
        bodyTimeout=3,
        keepAliveTimeout=10,
        sendTimeout=4,
    )

    @settings(
        max_examples=200,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(operations=_operations)
    def test_neverMisbehaves(self, operations: list[Any]) -> None:
        """
        Whatever a client sends, however its transport stalls, and whether
        the server drains: no exception escapes, only requests within the
        limits reach the resource, and once every answer is given the
        connection closes within its timeouts.
        """
        wire = H2Wire(self.limits)
        client = h2.connection.H2Connection(
            h2.config.H2Configuration(
                client_side=True,
                header_encoding=None,
                validate_outbound_headers=False,
                normalize_outbound_headers=False,
                validate_inbound_headers=False,
            )
        )
        client.initiate_connection()
        seen: list[Any] = []

        def exchange() -> None:
            wire.sendall(client.data_to_send())
            reply = wire.transport.value()
            wire.transport.clear()
            try:
                client.receive_data(reply)
            except Exception:
                pass

        exchange()
        for operation in operations:
            kind = operation[0]
            index = (
                operation[1] if kind in ("headers", "request", "data", "reset") else 0
            )
            streamID = 1 + 2 * index
            try:
                if kind == "headers":
                    client.send_headers(streamID, operation[2], end_stream=operation[3])
                elif kind == "request":
                    client.send_headers(streamID, _head(), end_stream=operation[2])
                elif kind == "data":
                    client.send_data(
                        streamID, b"d" * operation[2], end_stream=operation[3]
                    )
                elif kind == "reset":
                    client.reset_stream(streamID)
                elif kind == "ping":
                    client.ping(b"12345678")
                elif kind == "window":
                    client.update_settings(
                        {SettingCodes.INITIAL_WINDOW_SIZE: operation[1]}
                    )
            except Exception:
                continue
            if kind == "raw":
                wire.sendall(operation[1])
            elif kind == "advance":
                wire.clock.advance(operation[1])
            elif kind == "finish":
                seen += wire.resource.requests
                wire.resource.finishAll()
            elif kind == "pause":
                wire.server.pauseProducing()
            elif kind == "resume":
                wire.server.resumeProducing()
            elif kind == "drain":
                wire.site.connections.drain()
            exchange()
        seen += wire.resource.requests
        for request in seen:
            self.assertIn(request.method, (b"GET", b"POST"))
            self.assertTrue(request.uri.startswith(b"/"), request.uri)
        for body in wire.resource.bodies:
            self.assertLessEqual(len(body), self.limits.maxBody)
        wire.resource.finishAll()
        if wire.server.state is not State.LOST:
            wire.server.resumeProducing()
        wire.run()
        wire.clock.advance(self.limits.keepAliveTimeout + self.limits.bodyTimeout)
        wire.clock.advance(self.limits.keepAliveTimeout)
        self.assertTrue(wire.transport.disconnecting or wire.server.state is State.LOST)


class Http2HotPathTests(SynchronousTestCase):
    """
    A stream whose request goes to the WSGI application is an
    L{H2Exchange}, dispatched as HTTP/1.1's exchanges are, with no
    C{twisted.web} request.
    """

    def connect(
        self, app: Any, clock: SynchronousReactor | None = None
    ) -> tuple[H2Wire, H2Client, ManualPool]:
        pool = ManualPool()
        wire = H2Wire(Limits(), app, pool, clock)
        self.records: list[AccessRecord] = []
        wire.site.observers.append(self.records.append)
        client = H2Client(wire)
        client.readOnce(time.monotonic() + 1)
        return wire, client, pool

    def recordWrites(self, wire: H2Wire) -> list[bytes]:
        """
        The writes to C{wire}'s transport from now on, as they happen.
        """
        writes: list[bytes] = []
        write = wire.transport.write

        def recorded(data: bytes) -> None:
            writes.append(data)
            write(data)

        wire.transport.write = recorded  # type: ignore[method-assign]
        return writes

    def test_noTwistedWebRequest(self) -> None:
        """
        No C{twisted.web} request is made for a stream to the application;
        its access record and C{SERVER_PROTOCOL} say C{HTTP/2.0}.
        """
        seen: list[dict[str, Any]] = []

        def app(environ: Any, startResponse: Any) -> Any:
            seen.append(environ)
            startResponse("200 OK", [("Content-Length", "2")])
            return [b"ok"]

        wire, client, pool = self.connect(app)
        wire.site.requestFactory = lambda *a: self.fail("a twisted.web request")
        stream = client.request("GET", "/x?y=1")
        pool.runAll()
        answer = client.answer(stream)
        self.assertEqual((answer.status, answer.body), (200, b"ok"))
        self.assertEqual(seen[0]["SERVER_PROTOCOL"], "HTTP/2.0")
        self.assertEqual(seen[0]["QUERY_STRING"], "y=1")
        [record] = self.records
        self.assertEqual(
            (record.method, record.target, record.protocol, record.status),
            ("GET", "/x?y=1", "HTTP/2.0", 200),
        )
        self.assertEqual(record.bytesSent, 2)

    def test_routesStayOnTwistedWeb(self) -> None:
        """
        A path that a route of the L{Dispatcher} takes is rendered by its
        C{twisted.web} resource over HTTP/2 too; its access record says
        C{HTTP/2.0} as well.
        """

        class Ready(Resource):
            isLeaf = True

            def render_GET(self, request: Any) -> bytes:
                return b"ready"

        def app(environ: Any, startResponse: Any) -> Any:
            startResponse("200 OK", [])
            return [b"app"]

        wire, client, pool = self.connect(app)
        wire.site.resource = Dispatcher(wire.site.resource, {b"/readyz": Ready()})
        ready = client.answer(client.request("GET", "/readyz"))
        self.assertEqual((ready.status, ready.body), (200, b"ready"))
        wire.site.requestFactory = lambda *a: self.fail("a twisted.web request")
        other = client.request("GET", "/other")
        pool.runAll()
        self.assertEqual(client.answer(other).body, b"app")
        self.assertEqual(
            [(r.target, r.protocol) for r in self.records],
            [("/readyz", "HTTP/2.0"), ("/other", "HTTP/2.0")],
        )

    def notKept(
        self, app: Any
    ) -> Iterator[tuple[FailingFiles, str, int, tuple[H2Wire, H2Client, ManualPool]]]:
        """
        For each way a request body cannot be kept (L{FailingFiles.ways}):
        the files made, the reason the failure gives, the status that
        answers it, and a new connection to C{app} whose uploads fail so.
        """
        files = FailingFiles()
        for make, reason, status in files.ways():
            self.patch(
                exchangeModule,
                "requestBody",
                lambda length, make=make: make() if length else io.BytesIO(),
            )
            yield files, reason, status, self.connect(app)

    def test_bodyNotKept(self) -> None:
        """
        A request body that cannot be kept in its temporary file (its disk
        is full: 507, or no file descriptor is left to make one: 503 with
        C{retry-after}) gets its stream that answer, not the application,
        and one error line with the reason in the server log, as over
        HTTP/1.1; what was kept is closed, and the connection and its other
        streams go on.
        """

        def app(environ: Any, startResponse: Any) -> Any:
            startResponse("200 OK", [])
            return [environ["PATH_INFO"].encode()]

        for files, reason, status, (wire, client, pool) in self.notKept(app):
            other, answer, line = _uploadNotKept(client)
            self.assertEqual(answer.status, status)
            self.assertEqual(
                answer.headers.get(b"retry-after"), b"1" if status == 503 else None
            )
            self.assertEqual(
                answer.body,
                {
                    503: b"Service Unavailable",
                    507: b"Insufficient Storage",
                }[status]
                + b": the request body could not be stored\n",
            )
            self.assertIn("POST /up could not be kept", line)
            self.assertIn(reason, line)
            self.assertTrue(all(f.closed for f in files.made))
            client.send(other, b"x", end=True)
            pool.runAll()
            self.assertEqual(client.answer(other).body, b"/other")
            self.assertFalse(wire.transport.disconnecting)
            self.assertEqual(
                [(r.target, r.status) for r in self.records],
                [("/up", status), ("/other", 200)],
            )
            self.assertEqual(wire.server.inFlight, 0)

    def test_bodyNotKeptNoWindow(self) -> None:
        """
        When the client's flow-control window has no room for the error
        page, the stream gets the head alone, and a 503's head still says
        when to retry.
        """

        def app(environ: Any, startResponse: Any) -> Any:
            startResponse("200 OK", [])
            return [b"app"]

        for _, reason, status, (_, client, _) in self.notKept(app):
            client.conn.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: 0})
            client.flush()
            other, answer, line = _uploadNotKept(client)
            self.assertEqual((answer.status, answer.body), (status, b""))
            self.assertEqual(
                (
                    answer.headers.get(b"retry-after"),
                    b"content-length" in answer.headers,
                ),
                (b"1" if status == 503 else None, False),
            )
            self.assertIn(reason, line)

    def test_headOnly(self) -> None:
        """
        A response without a body is one HEADERS frame that ends the stream,
        with no DATA frame, and the stream is done.
        """

        def app(environ: Any, startResponse: Any) -> Any:
            startResponse("204 No Content", [("X-A", " b ")])
            return []

        wire, client, pool = self.connect(app)
        stream = client.request("GET", "/")
        pool.runAll()
        wire.run()
        events = client.conn.receive_data(wire.transport.value())
        wire.transport.clear()
        [response] = [e for e in events if isinstance(e, h2.events.ResponseReceived)]
        self.assertIsNotNone(response.stream_ended)
        self.assertIn((b"x-a", b"b"), response.headers)
        self.assertEqual(
            [e for e in events if isinstance(e, h2.events.DataReceived)], []
        )
        self.assertEqual(response.stream_id, stream)
        self.assertEqual(wire.server.streams, {})
        self.assertEqual([r.status for r in self.records], [204])

    def test_oneWritePerTurn(self) -> None:
        """
        The responses that finish in one turn of the reactor go out in one
        write to the transport.
        """

        def app(environ: Any, startResponse: Any) -> Any:
            startResponse("200 OK", [("Content-Length", "5")])
            return [b"hello"]

        wire, client, pool = self.connect(app)
        streams = [client.request("GET", f"/{i}") for i in range(3)]
        writes = self.recordWrites(wire)
        pool.runAll()
        wire.run()
        self.assertEqual(len(writes), 1)
        for stream in streams:
            self.assertEqual(client.answer(stream).body, b"hello")

    def test_framesCoalesced(self) -> None:
        """
        The chunks a streamed response writes in one turn of the reactor go
        out in as few DATA frames as the frame size allows, and the last
        one ends the stream (no empty DATA frame after it).
        """

        def app(environ: Any, startResponse: Any) -> Any:
            startResponse("200 OK", [])
            return (b"x" * 1024 for _ in range(20))

        wire, client, pool = self.connect(app)
        stream = client.request("GET", "/")
        pool.runAll()
        wire.run()
        events = client.conn.receive_data(wire.transport.value())
        data = [e for e in events if isinstance(e, h2.events.DataReceived)]
        self.assertEqual([len(e.data) for e in data], [16384, 4096])
        self.assertEqual([e.stream_ended is not None for e in data], [False, True])
        self.assertEqual(data[-1].stream_id, stream)
        self.assertEqual(wire.server.streams, {})
        self.assertEqual([r.bytesSent for r in self.records], [20480])

    def test_excInfoBeforeHeadTaken(self) -> None:
        """
        C{start_response(exc_info)} from an error middleware, after the
        first chunk was handed over but before the I/O thread took the
        head, replaces the head: the stream gets the application's own
        error page, none of the first body, as over HTTP/1.1.
        """
        reactor = QueuedCallsReactor()
        app = ErrorPage(failsAfterFirstChunk(lambda: None))
        wire, client, pool = self.connect(app, reactor)
        stream = client.request("GET", "/")
        pool.runAll()
        reactor.runQueued()
        answer = client.answer(stream)
        self.assertEqual((answer.status, answer.body), (500, ERROR_PAGE))
        self.assertEqual(app.reraised, [])
        self.assertEqual([r.status for r in self.records], [500])
        self.assertEqual(self.flushLoggedErrors(ZeroDivisionError), [])

    def test_excInfoAfterHeadTaken(self) -> None:
        """
        C{start_response(exc_info)} once the I/O thread took the head (with
        the first chunk) re-raises the error, and the stream is reset with
        C{INTERNAL_ERROR}, as over HTTP/1.1.
        """
        reactor = QueuedCallsReactor()
        app = ErrorPage(failsAfterFirstChunk(reactor.runQueued))
        wire, client, pool = self.connect(app, reactor)
        stream = client.request("GET", "/")
        pool.runAll()
        reactor.runQueued()
        answer = client.answer(stream)
        self.assertEqual(answer.reset, ErrorCodes.INTERNAL_ERROR)
        self.assertNotIn(ERROR_PAGE, answer.body)
        self.assertEqual([type(e) for e in app.reraised], [ZeroDivisionError])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_yieldedBeforeFailureSent(self) -> None:
        """
        What the application yielded before it failed, in the same turn of
        the reactor as its failure, reaches the client before the stream is
        reset with C{INTERNAL_ERROR}, as far as the window allows: the
        reset drops only what the window held back, and the HTTP/1.1
        connection too sends what was yielded before it closes.
        """

        def app(environ: Any, startResponse: Any) -> Iterator[bytes]:
            startResponse("200 OK", [])
            yield b"yielded"
            raise ZeroDivisionError("after a chunk")

        wire, client, pool = self.connect(app)
        stream = client.request("GET", "/")
        pool.runAll()
        wire.run()
        answer = client.answer(stream)
        self.assertEqual(
            (answer.status, answer.body, answer.reset),
            (200, b"yielded", ErrorCodes.INTERNAL_ERROR),
        )
        self.assertEqual(
            [(r.cutOff, r.bytesSent) for r in self.records], [("error", 7)]
        )
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_stalledWhenWrittenTimed(self) -> None:
        """
        A response the application wrote whole in one turn, beyond the
        window of a client that reads nothing, is reset with C{CANCEL} after
        the send timeout: its stream is not held for ever.
        """

        def app(environ: Any, startResponse: Any) -> Any:
            startResponse("200 OK", [])
            return [b"x" * 100_000]

        wire, client, pool = self.connect(app)
        stream = client.request("GET", "/")
        pool.runAll()
        wire.run()
        self.assertEqual(wire.server.inFlight, 1)
        wire.clock.advance(wire.site.limits.sendTimeout)
        self.assertEqual(wire.server.inFlight, 0)
        self.assertEqual(client.answer(stream).reset, CANCEL)


class Http2WindowTests(SynchronousTestCase):
    """
    How often a connection asks for a stream's flow-control window.
    """

    def test_oncePerSend(self) -> None:
        """
        A write that goes out in many DATA frames asks for the stream's
        window once: only those frames change it meanwhile.
        """
        wire = H2Wire(Limits())
        client = H2Client(wire)
        client.readOnce(time.monotonic() + 1)
        stream = client.request("GET", "/")
        [request] = wire.resource.requests
        asked = _windowQuestions(wire)
        request.write(b"x" * 60000)
        # Four DATA frames, for one question.
        self.assertEqual(asked, [stream])
        request.finish()
        self.assertEqual(len(client.answer(stream).body), 60000)


class Http2ResetCountTests(WireMixin, SynchronousTestCase):
    """
    Every stream reset, by the server (with its error code) or by the
    client, is told to the listener's C{onStreamReset} (the metrics'
    counters), once; a stream that ends without a reset is not.
    """

    def counting(
        self, limits: Limits
    ) -> tuple[H2Wire, H2Client, list[tuple[bool, int]]]:
        wire, client = self.connect(limits)
        resets: list[tuple[bool, int]] = []
        wire.site.onStreamReset = lambda byClient, code: resets.append((byClient, code))
        return wire, client, resets

    def test_counted(self) -> None:
        """
        A stream the client resets, a malformed request (C{PROTOCOL_ERROR}),
        a body over the limit (413, then C{NO_ERROR} while the client still
        sends) and a stream beyond the cap (C{REFUSED_STREAM}) are counted,
        each once; a refused request the client had ended (431, no reset)
        and a stream served whole are not.
        """
        wire, client, resets = self.counting(Limits(maxStreams=2, maxBody=10))
        served = client.request("GET", "/")
        wire.resource.finishAll()
        self.assertEqual(client.answer(served).status, 200)
        cancelled = client.request("POST", "/", end=False)
        client.conn.reset_stream(cancelled, ErrorCodes.CANCEL)
        client.flush()
        malformed = client.sendBlock(
            [
                (b":method", b"GET"),
                (b":scheme", b"https"),
                (b":authority", b"localhost"),
                (b":path", b"/"),
                (b"X-Upper", b"1"),
            ]
        )
        self.assertEqual(client.answer(malformed).reset, ErrorCodes.PROTOCOL_ERROR)
        large = client.request("POST", "/", body=b"x" * 11, end=False)
        self.assertEqual(client.answer(large).status, 413)
        tooLong = client.request("GET", "/" + "a" * 9000)
        self.assertEqual(client.answer(tooLong).status, 414)
        self.assertIsNone(client.answers[tooLong].reset)
        open1 = client.request("POST", "/", end=False)
        open2 = client.request("POST", "/", end=False)
        # A client that ignores the cap.
        client.conn.remote_settings[SettingCodes.MAX_CONCURRENT_STREAMS] = 100
        client.conn.remote_settings.acknowledge()
        refused = client.request("POST", "/", end=False)
        self.assertEqual(client.answer(refused).reset, ErrorCodes.REFUSED_STREAM)
        self.assertEqual(
            resets,
            [
                (True, ErrorCodes.CANCEL),
                (False, ErrorCodes.PROTOCOL_ERROR),
                (False, ErrorCodes.NO_ERROR),
                (False, ErrorCodes.REFUSED_STREAM),
            ],
        )
        self.assertEqual(wire.server.inFlight, 2, (open1, open2))


class Http2BodyBudgetTests(WireMixin, SynchronousTestCase):
    """
    The request-body bytes one connection holds at once are bounded
    (L{twsgi.http.h2budget.BodyBudget}): once they reach the body limit,
    the streams that send more wait, with no more window than they have,
    but for the oldest one still receiving; none is refused.
    """

    def upload(
        self, limits: Limits, sizes: list[int], declared: bool = True
    ) -> tuple[list[int], int, H2Wire]:
        """
        Upload bodies of C{sizes} on as many streams at once (with a
        C{content-length} if C{declared}), sending on every stream in turn
        a frame of 4 KiB at most, as its window allows (so that every
        stream sends while it may), and answer each request as it reaches
        the application.

        @return: the streams in the order the application got them, the
            most bytes the server held at once (sent, and not yet
            answered), and the wire.
        """
        wire, client = self.connect(limits)
        left: dict[int, bytes] = {}
        for size in sizes:
            headers = [("content-length", str(size))] if declared else []
            streamID = client.request("POST", "/", headers, end=False)
            left[streamID] = os.urandom(size)
        bodies = dict(left)
        sent = dict.fromkeys(left, 0)
        peak = 0
        order: list[int] = []
        for _ in range(10_000):
            for streamID, data in list(left.items()):
                room = min(client.conn.local_flow_control_window(streamID), 4096)
                if room:
                    piece = data[:room]
                    left[streamID] = data = data[room:]
                    client.conn.send_data(streamID, piece, end_stream=not data)
                    sent[streamID] += len(piece)
                    if not data:
                        del left[streamID]
            client.flush()
            self.read(client)
            peak = max(peak, sum(sent[s] for s in sent if s not in order))
            for request in wire.resource.requests:
                streamID = request.channel.streamID
                order.append(streamID)
                # What the application read is the body that was sent.
                body = wire.resource.bodies[len(order) - 1]
                self.assertEqual(body, bodies[streamID])
            wire.resource.finishAll()
            if len(order) == len(sizes):
                break
        for streamID in order:
            self.assertEqual(client.answer(streamID).status, 200)
        self.assertFalse(wire.transport.disconnecting)
        return order, peak, wire

    def test_bounded(self) -> None:
        """
        Eight uploads that together hold far more than the body limit all
        complete, intact, the oldest first, while the server never holds
        more than twice the limit plus a window per stream.
        """
        order, peak, _ = self.upload(Limits(maxBody=200_000), [190_000] * 8)
        self.assertEqual(sorted(order), list(range(1, 17, 2)))
        self.assertEqual(order[0], 1)
        self.assertLessEqual(peak, 2 * 200_000 + 8 * 65_535)

    def test_undeclared(self) -> None:
        """
        Bodies without C{content-length} are bounded the same way.
        """
        order, peak, _ = self.upload(
            Limits(maxBody=200_000), [190_000] * 8, declared=False
        )
        self.assertEqual(sorted(order), list(range(1, 17, 2)))
        self.assertLessEqual(peak, 2 * 200_000 + 8 * 65_535)

    def test_fitTogether(self) -> None:
        """
        Uploads that fit the budget together are received together: each
        is whole before any reaches the application.
        """
        order, peak, _ = self.upload(Limits(maxBody=400_000), [90_000] * 4)
        self.assertEqual(sorted(order), [1, 3, 5, 7])
        self.assertEqual(peak, 4 * 90_000)

    def test_waitingUntimed(self) -> None:
        """
        A waiting stream whose client filled its window is not timed out
        while the oldest stream receives: the body timeout runs for the
        oldest stream, and once the oldest is done the waiting stream no
        longer waits, is timed, and completes.
        """
        wire, client = self.connect(Limits(maxBody=100_000, bodyTimeout=10))
        first = client.request("POST", "/", end=False)
        second = client.request("POST", "/", [("content-length", "100000")], end=False)
        client.send(first, b"x" * 99_000)
        client.send(second, b"y" * 65_535)
        for _ in range(3):
            wire.clock.advance(6)
            client.send(first, b"x")
        # The second waited 18 s, more than the body timeout.
        self.read(client)
        self.assertIsNone(client.answers[second].status)
        self.assertEqual(client.conn.streams[second].outbound_flow_control_window, 0)
        wire.clock.advance(6)
        client.send(first, b"x", end=True)
        wire.resource.finishAll()
        self.assertEqual(client.answer(first).status, 200)
        self.read(client)
        self.assertEqual(
            client.conn.streams[second].outbound_flow_control_window, 65_535
        )
        wire.clock.advance(9)
        client.send(second, b"y" * (100_000 - 65_535), end=True)
        self.assertEqual(wire.resource.bodies[-1], b"y" * 100_000)
        wire.resource.finishAll()
        self.assertEqual(client.answer(second).status, 200)

    def stallBehindOldest(
        self, limits: Limits, waiting: int
    ) -> tuple[H2Wire, H2Client, list[int]]:
        """
        Open an upload that holds almost the body limit, then C{waiting}
        more whose client fills their windows, so that they wait behind
        the first; then send nothing more.

        @return: the wire, the client, and the streams, oldest first.
        """
        wire, client = self.connect(limits)
        streams = [client.request("POST", "/", end=False)]
        client.send(streams[0], b"x" * (limits.maxBody - 1000))
        for _ in range(waiting):
            streamID = client.request("POST", "/", end=False)
            client.send(streamID, b"y" * 65_535)
            streams.append(streamID)
        self.read(client)
        for streamID in streams[1:]:
            self.assertEqual(
                client.conn.streams[streamID].outbound_flow_control_window, 0
            )
        return wire, client, streams

    def test_stalledWaitingRefusedTogether(self) -> None:
        """
        When the oldest upload's body times out while others wait behind
        it with their windows full, they are answered 408 with it: a
        client that fills the windows of many streams and stalls holds
        them one body timeout, not one a stream in turn.
        """
        limits = Limits(maxBody=100_000, bodyTimeout=10, maxRefusedStreams=1000)
        wire, client, streams = self.stallBehindOldest(limits, 30)
        wire.clock.advance(9)
        self.read(client)
        self.assertEqual([client.answers[s].status for s in streams], [None] * 31)
        wire.clock.advance(1)
        self.read(client)
        self.assertEqual([client.answers[s].status for s in streams], [408] * 31)
        self.assertEqual(wire.server.streams, {})
        self.assertIsNone(client.goaway)

    def test_stalledWaitingCountedOnce(self) -> None:
        """
        With the default limits, a client that fills the windows of 99
        streams behind a stalled upload gets all 100 answered 408 at one
        body timeout; that counts as one refused stream, so the connection
        goes on serving.
        """
        limits = Limits(maxBody=100_000, bodyTimeout=10)
        wire, client, streams = self.stallBehindOldest(limits, 99)
        wire.clock.advance(10)
        self.read(client)
        self.assertEqual([client.answers[s].status for s in streams], [408] * 100)
        self.assertEqual(wire.server.streams, {})
        self.assertIsNone(client.goaway)
        later = client.request("GET", "/")
        wire.resource.finishAll()
        self.assertEqual(client.answer(later).status, 200)

    def test_resetReleases(self) -> None:
        """
        A stream the client resets gives its bytes back: a stream that
        waited receives again.
        """
        wire, client = self.connect(Limits(maxBody=50_000))
        first = client.request("POST", "/", end=False)
        second = client.request("POST", "/", end=False)
        client.send(first, b"x" * 40_000)
        client.send(second, b"y" * 45_000)
        self.read(client)
        window = client.conn.streams[second].outbound_flow_control_window
        self.assertEqual(window, 65_535 - 45_000)
        client.conn.reset_stream(first)
        client.flush()
        self.read(client)
        self.assertEqual(
            client.conn.streams[second].outbound_flow_control_window, 65_535
        )

    def test_waitingIdle(self) -> None:
        """
        A waiting stream on which the client sends nothing, though its
        window is open, gets 408 after the body timeout, as any stream.
        """
        wire, client = self.connect(Limits(maxBody=10_000, bodyTimeout=10))
        first = client.request("POST", "/", end=False)
        second = client.request("POST", "/", end=False)
        client.send(first, b"x" * 9_500)
        client.send(second, b"y" * 1000)
        wire.clock.advance(5)
        client.send(first, b"x")
        wire.clock.advance(5)
        self.assertEqual(client.answer(second).status, 408)
        self.assertIsNone(client.answers[first].status)

    def test_admittedIdleNotExtended(self) -> None:
        """
        A waiting stream whose client could send and did not keeps its body
        timeout when it no longer waits: two idle uploads both get 408 at
        the body timeout, and the connection is idle then.
        """
        wire, client = self.connect(Limits(maxBody=2000, bodyTimeout=3))
        first = client.request("POST", "/", end=False)
        second = client.request("POST", "/", end=False)
        client.send(first, b"x" * 1000)
        client.send(second, b"y" * 1500)
        wire.clock.advance(3)
        self.assertEqual(client.answer(first).status, 408)
        self.assertEqual(client.answer(second).status, 408)
        self.assertEqual(wire.server.inFlight, 0)
