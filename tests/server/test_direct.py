"""
Tests for L{twsgi.server.direct}: a whole small response sent by the WSGI
thread that made it, on the socket of a plain TCP connection.
"""

from __future__ import annotations

import os
import resource
import socket
import threading
from typing import Any

from twisted.internet import defer, reactor
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.static import Data

from tests.helpers.server import LOOPBACK, start, temporaryDirectory
from twsgi.http.parse import RequestHead
from twsgi.server.direct import (
    DIRECT_SIZE,
    DUPLICATES_SHARE,
    DirectSocket,
    Duplicates,
)
from twsgi.server.exchange import HTTP11Exchange
from twsgi.server.routes import Dispatcher
from twsgi.testing import (
    MemoryServer,
    MemoryTransport,
    SynchronousReactor,
    SynchronousThreadPool,
    parseResponse,
    parseResponses,
)
from twsgi.wsgi.bridge import WSGIResource


def hello(environ: dict[str, Any], startResponse: Any) -> list[bytes]:
    """
    Answers C{hello} with a length.
    """
    startResponse("200 OK", [("Content-Length", "5")])
    return [b"hello"]


class DirectSocketTests(SynchronousTestCase):
    """
    L{DirectSocket} sends on a duplicate of a connection's socket, and
    closes for good after anything but a whole send.
    """

    def pair(self) -> tuple[socket.socket, socket.socket]:
        """
        A connected pair of non-blocking sockets, closed after the test.
        """
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        self.addCleanup(ours.close)
        self.addCleanup(theirs.close)
        return ours, theirs

    def test_sendsWhole(self) -> None:
        """
        What the socket takes whole is sent, and the socket stays open.
        """
        ours, theirs = self.pair()
        direct = DirectSocket(ours)
        self.addCleanup(direct.close)
        with direct.lock:
            self.assertEqual(direct.send(b"hello"), 5)
        self.assertTrue(direct.open)
        self.assertEqual(theirs.recv(100), b"hello")

    def test_shortSend(self) -> None:
        """
        A send the socket takes only part of closes it: the rest is for the
        transport.
        """
        ours, theirs = self.pair()
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        direct = DirectSocket(ours)
        data = b"x" * (8 * 1024 * 1024)
        with direct.lock:
            sent = direct.send(data)
        self.assertLess(sent, len(data))
        self.assertFalse(direct.open)
        with direct.lock:
            self.assertEqual(direct.send(b"more"), 0)

    def test_failedSend(self) -> None:
        """
        A send to a peer that is gone sends nothing and closes it, without
        raising.
        """
        ours, theirs = self.pair()
        direct = DirectSocket(ours)
        theirs.close()
        with direct.lock:
            self.assertEqual(direct.send(b"hello"), 0)
        self.assertFalse(direct.open)

    def test_closeKeepsTheTransportSocket(self) -> None:
        """
        Closing it closes its duplicate only: the transport's socket still
        works.
        """
        ours, theirs = self.pair()
        before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc") else 0
        direct = DirectSocket(ours)
        direct.close()
        if before:
            self.assertEqual(len(os.listdir("/proc/self/fd")), before)
        self.assertFalse(direct.open)
        ours.send(b"still")
        self.assertEqual(theirs.recv(100), b"still")

    def test_notForOtherTransports(self) -> None:
        """
        A transport that is not Twisted's plain TCP connection (TLS, a
        wrapper, one in memory) gets none.
        """
        self.assertIsNone(DirectSocket.forTransport(StringTransport()))
        self.assertIsNone(DirectSocket.forTransport(object()))


class ForTCPTests(TestCase):
    """
    L{DirectSocket.forTransport} on a real TCP connection.
    """

    @defer.inlineCallbacks
    def connected(self) -> Any:
        """
        A TCP connection on 127.0.0.1, both ends closed after the test.

        @return: a L{Deferred} firing with the server's transport and the
            client's socket.
        """
        made: defer.Deferred[Any] = defer.Deferred()

        class Accepting(Protocol):
            def connectionMade(self) -> None:
                made.callback(self.transport)

        port = reactor.listenTCP(  # type: ignore[attr-defined]
            0, Factory.forProtocol(Accepting), interface="127.0.0.1"
        )
        self.addCleanup(port.stopListening)
        client = socket.create_connection(("127.0.0.1", port.getHost().port), 5)
        self.addCleanup(client.close)
        transport = yield made
        self.addCleanup(transport.abortConnection)
        return transport, client

    @defer.inlineCallbacks
    def test_tcpServer(self) -> Any:
        """
        The server side of a TCP connection gets one, which sends to the
        client.
        """
        transport, client = yield self.connected()
        direct = DirectSocket.forTransport(transport)
        assert direct is not None
        self.addCleanup(direct.close)
        with direct.lock:
            self.assertEqual(direct.send(b"hi"), 2)
        self.assertEqual(client.recv(10), b"hi")

    @defer.inlineCallbacks
    def test_bounded(self) -> Any:
        """
        Past the bound of L{Duplicates}, a connection gets none (it sends
        through its transport); one closed, the next may have one again,
        and a send that closes it gives its place back too.
        """
        transport, client = yield self.connected()
        duplicates = Duplicates(1)
        first = DirectSocket.forTransport(transport, duplicates)
        assert first is not None
        self.addCleanup(first.close)
        self.assertIsNone(DirectSocket.forTransport(transport, duplicates))
        first.close()
        self.assertEqual(duplicates.alive, 0)
        second = DirectSocket.forTransport(transport, duplicates)
        assert second is not None
        self.addCleanup(second.close)
        self.assertEqual(duplicates.alive, 1)
        client.shutdown(socket.SHUT_RDWR)
        with second.lock:
            second.send(b"x" * (1 << 24))
        self.assertFalse(second.open)
        self.assertEqual(duplicates.alive, 0)

    def test_processBound(self) -> None:
        """
        A process's bound is its file descriptor limit over
        L{DUPLICATES_SHARE}.
        """
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.assertEqual(Duplicates.forProcess().bound, soft // DUPLICATES_SHARE)


class FakeDirect:
    """
    A L{DirectSocket} that takes C{take} bytes of each send (all if
    C{None}) and records what it sent, and whether the lock was held.
    """

    def __init__(self, take: int | None = None) -> None:
        self.lock = threading.Lock()
        self.take = take
        self.sent: list[bytes] = []
        self.closed = False

    @property
    def open(self) -> bool:
        return not self.closed

    def send(self, data: bytes) -> int:
        assert self.lock.locked()
        taken = data if self.take is None else data[: self.take]
        self.sent.append(taken)
        if len(taken) < len(data):
            self.closed = True
        return len(taken)

    def close(self) -> None:
        self.closed = True


class FakeSite:
    """
    What an exchange tells its listener: the requests logged and lost.
    """

    def __init__(self) -> None:
        self.logged: list[Any] = []
        self.lost: list[Any] = []
        self.observers: list[Any] = []

    def log(self, request: Any) -> None:
        self.logged.append(request)

    def requestLost(self, request: Any, channel: Any) -> None:
        self.lost.append(request)


class FakeChannel:
    """
    What an L{HTTP11Exchange} asks of its connection, with a L{FakeDirect}.
    """

    persistent = True

    def __init__(self, direct: FakeDirect | None) -> None:
        self.direct = direct
        self.transport = MemoryTransport()
        self.site = FakeSite()
        self.done: list[Any] = []

    def getPeer(self) -> Any:
        return self.transport.getPeer()

    def stopDirect(self) -> None:
        if self.direct is not None:
            self.direct.close()
            self.direct = None

    def requestDone(self, request: Any) -> None:
        self.done.append(request)


def exchangeOn(channel: Any, method: bytes = b"GET") -> HTTP11Exchange:
    """
    An L{HTTP11Exchange} of a C{method} request on C{channel}.
    """
    head = RequestHead(
        method=method,
        target=b"/",
        version=b"HTTP/1.1",
        headers=((b"Host", b"h"),),
        contentLength=0,
        persistent=True,
        expectContinue=False,
    )
    return HTTP11Exchange(channel, head, b"/", lambda e: None, 0.0)


HEADERS = [(b"Content-Length", b"5"), (b"Date", b"today")]


class SendWholeTests(SynchronousTestCase):
    """
    L{HTTP11Exchange.sendWhole} sends a whole response on the connection's
    L{DirectSocket}, as the transport would have had it.
    """

    def viaTransport(self, method: bytes = b"GET", close: bool = False) -> bytes:
        """
        The bytes of the response written the usual way, through the
        transport.
        """
        channel = FakeChannel(None)
        exchange = exchangeOn(channel, method)
        self.assertFalse(exchange.sendWhole(200, b"OK", HEADERS, close, b"hello"))
        exchange.writeHead(200, b"OK", HEADERS, close)
        exchange.write(b"hello")
        exchange.finish()
        return channel.transport.value()

    def test_sent(self) -> None:
        """
        The response goes to the socket whole, byte for byte what the
        transport would have sent; L{HTTP11Exchange.finish} writes nothing
        more, logs it and lets the connection go on.
        """
        direct = FakeDirect()
        channel = FakeChannel(direct)
        exchange = exchangeOn(channel)
        self.assertTrue(exchange.sendWhole(200, b"OK", HEADERS, False, b"hello"))
        self.assertEqual(direct.sent, [self.viaTransport()])
        self.assertEqual((channel.site.logged, channel.done), ([], []))
        exchange.finish()
        self.assertEqual(channel.transport.value(), b"")
        self.assertEqual(channel.site.logged, [exchange])
        self.assertEqual(channel.done, [exchange])
        self.assertEqual((exchange.code, exchange.sentLength), (200, 5))
        self.assertTrue(direct.open)

    def test_headAndClose(self) -> None:
        """
        A response to C{HEAD} has no body, and one that closes says so, as
        through the transport.
        """
        for method, close in [(b"HEAD", False), (b"GET", True)]:
            direct = FakeDirect()
            channel = FakeChannel(direct)
            exchange = exchangeOn(channel, method)
            self.assertTrue(exchange.sendWhole(200, b"OK", HEADERS, close, b"hello"))
            self.assertEqual(direct.sent, [self.viaTransport(method, close)])
            self.assertEqual(channel.persistent, not close)

    def test_rest(self) -> None:
        """
        What the socket did not take, L{HTTP11Exchange.finish} writes through
        the transport, after the part sent.
        """
        direct = FakeDirect(take=7)
        channel = FakeChannel(direct)
        exchange = exchangeOn(channel)
        self.assertTrue(exchange.sendWhole(200, b"OK", HEADERS, False, b"hello"))
        exchange.finish()
        self.assertEqual(
            direct.sent[0] + channel.transport.value(), self.viaTransport()
        )
        self.assertEqual(len(direct.sent[0]), 7)
        self.assertEqual(channel.done, [exchange])

    def test_notSent(self) -> None:
        """
        With no socket of its own, a closed one, or a body larger than
        L{DIRECT_SIZE}, it takes nothing.
        """
        closed = FakeDirect()
        closed.close()
        for direct, body in [
            (None, b"hello"),
            (closed, b"hello"),
            (FakeDirect(), b"x" * (DIRECT_SIZE + 1)),
        ]:
            exchange = exchangeOn(FakeChannel(direct))
            self.assertFalse(exchange.sendWhole(200, b"OK", [], False, body))
            self.assertFalse(exchange.startedWriting)

    def test_observed(self) -> None:
        """
        While the listener has access-log observers, it takes nothing: each
        sees the record of a response before its client has the response.
        """
        direct = FakeDirect()
        channel = FakeChannel(direct)
        channel.site.observers.append(print)
        exchange = exchangeOn(channel)
        self.assertFalse(exchange.sendWhole(200, b"OK", HEADERS, False, b"hello"))
        self.assertEqual(direct.sent, [])

    def test_lostAfterSent(self) -> None:
        """
        A connection lost after the response was sent whole, before its
        finish, leaves the access record of a response served.
        """
        channel = FakeChannel(FakeDirect())
        exchange = exchangeOn(channel)
        exchange.sendWhole(200, b"OK", HEADERS, False, b"hello")
        exchange.connectionLost(None)  # type: ignore[arg-type]
        self.assertEqual((channel.site.logged, channel.site.lost), ([exchange], []))
        self.assertTrue(exchange.finished)
        exchange.finish()
        self.assertEqual(channel.site.logged, [exchange])

    def test_lostAfterPartlySent(self) -> None:
        """
        A connection lost before the whole response went out is a lost
        request.
        """
        channel = FakeChannel(FakeDirect(take=3))
        exchange = exchangeOn(channel)
        exchange.sendWhole(200, b"OK", HEADERS, False, b"hello")
        exchange.connectionLost(None)  # type: ignore[arg-type]
        self.assertEqual((channel.site.logged, channel.site.lost), ([], [exchange]))


class ChannelTests(SynchronousTestCase):
    """
    L{twsgi.server.http1.TwsgiChannel} gives up its L{DirectSocket} before
    it writes anything through the transport, and changes its persistence
    under its lock.
    """

    def connected(self) -> tuple[Any, MemoryTransport, FakeDirect]:
        """
        A connection that served one request, then given a L{FakeDirect}.
        """
        server = MemoryServer(hello)
        server.site.observers.clear()
        protocol, transport = server.connect()
        protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual(parseResponse(transport.value()).body, b"hello")
        transport.clear()
        channel = protocol.current
        direct = FakeDirect()
        channel.direct = direct
        return channel, transport, direct

    def test_memoryTransportHasNone(self) -> None:
        """
        A transport in memory gets no L{DirectSocket}: responses go through
        it.
        """
        server = MemoryServer(hello)
        protocol, transport = server.connect()
        protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertIsNone(protocol.current.direct)
        self.assertEqual(parseResponse(transport.value()).body, b"hello")

    def test_sentDirect(self) -> None:
        """
        A whole response goes to the L{DirectSocket}, nothing through the
        transport, and the connection goes on.
        """
        channel, transport, direct = self.connected()
        channel.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        [sent] = direct.sent
        self.assertEqual(parseResponse(sent).body, b"hello")
        self.assertEqual(transport.value(), b"")
        channel.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual(len(direct.sent), 2)
        self.assertEqual(channel.served, 3)

    def test_afterTransportResponse(self) -> None:
        """
        A connection whose first response went through the transport (a
        C{twisted.web} resource: a health path, a static file) never gets a
        L{DirectSocket}: the transport may still hold bytes of that
        response when a pipelined request on the hot path is answered, and
        a send on the socket would overtake them.  Both responses go
        through the transport, in order.
        """
        made: list[FakeDirect] = []

        def forTransport(transport: object) -> FakeDirect:
            made.append(FakeDirect())
            return made[-1]

        self.patch(DirectSocket, "forTransport", staticmethod(forTransport))
        clock = SynchronousReactor()
        wsgi = WSGIResource(clock, SynchronousThreadPool(), hello)
        root = Dispatcher(wsgi, {b"/page": Data(b"page", "text/plain")})
        server = MemoryServer(resource=root, reactor=clock)
        server.site.observers.clear()
        protocol, transport = server.connect()
        protocol.dataReceived(
            b"GET /page HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"
        )
        first, second = parseResponses(transport.value())
        self.assertEqual((first.body, second.body), (b"page", b"hello"))
        self.assertEqual([direct.sent for direct in made], [])

    def test_continue(self) -> None:
        """
        A 100 Continue goes through the transport: the L{DirectSocket} is
        given up first, and the response follows through the transport.
        """
        channel, transport, direct = self.connected()
        channel.dataReceived(
            b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
            b"Content-Length: 2\r\n\r\n"
        )
        self.assertTrue(direct.closed)
        self.assertIsNone(channel.direct)
        channel.dataReceived(b"ab")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 100 Continue\r\n"))
        self.assertIn(b"hello", transport.value())
        self.assertEqual(direct.sent, [])

    def test_rejected(self) -> None:
        """
        An error response goes through the transport, once the
        L{DirectSocket} is given up.
        """
        channel, transport, direct = self.connected()
        channel.dataReceived(b"GET / HTTP/1.1\r\n\r\n")
        self.assertTrue(direct.closed)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 400 "))

    def test_lost(self) -> None:
        """
        The L{DirectSocket} is closed as the connection ends.
        """
        channel, transport, direct = self.connected()
        transport.loseConnection()
        self.assertTrue(direct.closed)
        self.assertIsNone(channel.direct)

    def test_drainUnderLock(self) -> None:
        """
        Draining a connection whose request is being answered makes it not
        persistent under the L{DirectSocket}'s lock, which a WSGI thread
        holds while it writes the head.
        """
        channel, transport, direct = self.connected()
        seen: list[bool] = []

        class Lock:
            def __enter__(self) -> None:
                seen.append(channel.persistent)

            def __exit__(self, *args: object) -> None:
                seen.append(channel.persistent)

        direct.lock = Lock()  # type: ignore[assignment]
        channel.requests.append(object())
        channel.startDraining()
        self.assertEqual(seen, [True, False])
        self.assertFalse(channel.persistent)


class WithoutTheReactorTests(SynchronousTestCase):
    """
    A whole response reaches the client while the server's I/O thread is
    busy: its WSGI thread sent it.
    """

    def test_reactorBlocked(self) -> None:
        """
        The application blocks the server's reactor until the client has its
        response; the response arrives, and the connection serves the next
        request once the reactor is back.
        """
        server = start(
            self,
            [
                "--app",
                "tests.apps.wsgiapps:stallsReactor",
                "--endpoint",
                LOOPBACK,
                "--access-log",
                "none",
            ],
            checkout=True,
        )
        release = str(temporaryDirectory(self) / "release")
        request = b"GET /?%s HTTP/1.1\r\nHost: h\r\n\r\n" % release.encode()
        with socket.create_connection((server.host, server.port), 10) as client:
            client.settimeout(5)
            client.sendall(request)
            try:
                data = _readUntilHello(client)
            except TimeoutError:
                data = b""
            finally:
                open(release, "w").close()
            self.assertTrue(data.startswith(b"HTTP/1.1 200 OK\r\n"), data)
            self.assertTrue(data.endswith(b"\r\n\r\nhello"), data)
            # This one waits for a file that exists: the response may come
            # before the reactor looks, and the test's files go first.
            client.settimeout(10)
            client.sendall(b"GET /?/ HTTP/1.1\r\nHost: h\r\n\r\n")
            data = _readUntilHello(client)
            self.assertTrue(data.endswith(b"hello"), data)


def _readUntilHello(client: socket.socket) -> bytes:
    """
    Read from C{client} until what came ends with C{hello} or the server
    closes; what came.
    """
    data = b""
    while not data.endswith(b"hello"):
        chunk = client.recv(4096)
        if not chunk:
            break
        data += chunk
    return data
