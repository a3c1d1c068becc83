"""
Tests for L{twsgi.wsgi.webrequest}: L{twsgi.WSGIResource} in a plain
C{twisted.web} site, through the public API of its requests.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.logger import formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.server import Site

from tests.helpers.handoff import (
    ERROR_PAGE,
    FIRST_CHUNK,
    ErrorPage,
    QueuedCallsReactor,
    failsAfterFirstChunk,
)
from tests.helpers.responses import parseResponses
from twsgi import WSGIResource
from twsgi.testing import SynchronousReactor, SynchronousThreadPool


class ForeignSiteTests(SynchronousTestCase):
    """
    L{WSGIResource} in a plain C{twisted.web} L{Site}, through the public
    API of its requests (L{twsgi.wsgi.webrequest.RequestExchange}).
    """

    def test_clientGoneMidResponse(self) -> None:
        """
        A client that goes away during a streamed response stops the
        application's iteration, whose C{close()} is called, and nothing
        more is written.
        """
        reactor = SynchronousReactor()
        closed: list[bool] = []
        protocols: list[Any] = []

        class Body:
            def __iter__(self) -> Any:
                yield b"first"
                protocols[0].connectionLost(Failure(ConnectionDone()))
                yield b"second"

            def close(self) -> None:
                closed.append(True)

        def app(environ: Any, startResponse: Any) -> Body:
            startResponse("200 OK", [])
            return Body()

        site = Site(WSGIResource(reactor, SynchronousThreadPool(), app))
        protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5000))
        protocols.append(protocol)
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertIn(b"first", transport.value())
        self.assertNotIn(b"second", transport.value())
        self.assertEqual(closed, [True])

    def test_poolNotStarted(self) -> None:
        """
        A request that reaches a resource whose thread pool was never
        started (a C{ThreadPool()} of the user's own) waits for it, as in
        C{twisted.web.wsgi}; a warning says why and what to do, once.
        """
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        resource = WSGIResource(
            SynchronousReactor(), ThreadPool(), lambda e, s: [], appName="app"
        )
        site = Site(resource)
        for _ in range(2):
            protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5000))
            transport = StringTransport()
            protocol.makeConnection(transport)
            protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            self.assertEqual(transport.value(), b"")
        warnings = [formatEvent(e) for e in events if "not started" in formatEvent(e)]
        self.assertEqual(
            warnings,
            [
                "WSGIResource of app: its thread pool is not started, so "
                "requests wait for it; start it (reactor.callWhenRunning("
                "pool.start)) or pass reactor.getThreadPool()"
            ],
        )


class ErrorPageTests(SynchronousTestCase):
    """
    C{start_response(exc_info)} in a plain C{twisted.web} site, as on
    twsgi's own connections.
    """

    def serve(
        self, app: ErrorPage, reactor: QueuedCallsReactor, version: bytes = b"HTTP/1.1"
    ) -> StringTransport:
        """
        Serve one GET (of C{version}) with C{app}, and run the calls its
        WSGI thread handed to the I/O thread.  The connection is lost once
        the test is done, so that its timeout (on the global reactor) goes
        too.
        """
        site = Site(WSGIResource(reactor, SynchronousThreadPool(), app))
        protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5000))
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.addCleanup(protocol.connectionLost, Failure(ConnectionDone()))
        protocol.dataReceived(b"GET / %s\r\nHost: h\r\n\r\n" % (version,))
        reactor.runQueued()
        return transport

    def test_beforeHeadTaken(self) -> None:
        """
        C{start_response(exc_info)} from an error middleware, after the
        first chunk was handed over but before the I/O thread took the
        head, replaces the head: the client gets the application's own
        error page, none of the first body.
        """
        app = ErrorPage(failsAfterFirstChunk(lambda: None))
        transport = self.serve(app, QueuedCallsReactor())
        [response] = parseResponses(transport.value())
        self.assertEqual(response.status, b"HTTP/1.1 500 Oops")
        self.assertEqual(response.body, ERROR_PAGE)
        self.assertNotIn(FIRST_CHUNK, transport.value())
        self.assertEqual(app.reraised, [])
        self.assertEqual(self.flushLoggedErrors(ZeroDivisionError), [])

    def test_afterHeadTaken(self) -> None:
        """
        C{start_response(exc_info)} once the I/O thread took the head (and
        wrote it with the first chunk) re-raises the error, and the
        connection is closed after that chunk: not aborted, which would
        drop what the transport still holds of it.
        """
        reactor = QueuedCallsReactor()
        app = ErrorPage(failsAfterFirstChunk(reactor.runQueued))
        transport = self.serve(app, reactor)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertIn(FIRST_CHUNK, transport.value())
        self.assertNotIn(ERROR_PAGE, transport.value())
        self.assertTrue(transport.disconnecting)
        self.assertFalse(transport.disconnected)
        self.assertEqual([type(e) for e in app.reraised], [ZeroDivisionError])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_afterHeadTakenCloseDelimited(self) -> None:
        """
        When the body ends only with the connection (an HTTP/1.0 request,
        no C{Content-Length}), a close would make the cut-off response look
        whole to its client (or to a proxy such as nginx, which speaks
        HTTP/1.0 to its upstreams by default): the connection is aborted.
        """
        reactor = QueuedCallsReactor()
        app = ErrorPage(failsAfterFirstChunk(reactor.runQueued, sized=False))
        transport = self.serve(app, reactor, b"HTTP/1.0")
        self.assertTrue(transport.value().startswith(b"HTTP/1.0 200 OK\r\n"))
        self.assertTrue(transport.disconnected)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)


class _VirtualHost(Resource):
    """
    A resource that serves C{/secure...} as a request made through a TLS
    proxy (L{Request.setHost<twisted.web.http.Request.setHost>} with
    C{ssl=True}, as a virtual host does), and everything through C{inner}.
    """

    isLeaf = True

    def __init__(self, inner: Resource) -> None:
        Resource.__init__(self)
        self.inner = inner

    def render(self, request: Any) -> Any:
        if request.path.startswith(b"/secure"):
            request.setHost(b"www.example.com", 443, ssl=True)
        return self.inner.render(request)


class SecureTests(SynchronousTestCase):
    """
    C{wsgi.url_scheme} of L{WSGIResource} in a plain C{twisted.web} site.
    """

    def test_setHostPerRequest(self) -> None:
        """
        A request made secure by C{Request.setHost(..., ssl=True)} is
        C{https}, and the other requests on the same plain connection stay
        C{http}, in either order.
        """

        def app(environ: Any, startResponse: Any) -> list[bytes]:
            startResponse("200 OK", [])
            return [environ["wsgi.url_scheme"].encode("ascii") + b";"]

        resource = WSGIResource(SynchronousReactor(), SynchronousThreadPool(), app)
        for paths, expected in [
            ((b"/plain", b"/secure", b"/plain"), [b"http;", b"https;", b"http;"]),
            ((b"/secure", b"/plain"), [b"https;", b"http;"]),
        ]:
            site = Site(_VirtualHost(resource))
            protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5000))
            transport = StringTransport()
            protocol.makeConnection(transport)
            for path in paths:
                protocol.dataReceived(b"GET %s HTTP/1.1\r\nHost: h\r\n\r\n" % path)
            schemes = [
                part.rsplit(b"\r\n", 1)[-1] + b";"
                for part in transport.value().split(b";")[:-1]
            ]
            self.assertEqual(schemes, expected, paths)
            protocol.connectionLost(Failure(ConnectionDone()))
