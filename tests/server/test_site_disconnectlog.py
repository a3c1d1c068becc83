"""
Tests for the access records of requests whose connection ended before their
response finished (L{twsgi.server.site.TwsgiSite.requestLost}): one record each,
as nginx writes them (499 when no status line was sent, else the status
sent, with the body bytes written), never a second one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.drain import ManualPool
from tests.helpers.h2client import H2Client
from tests.helpers.h2wire import H2Wire
from twsgi.http.limits import Limits
from twsgi.logs.accesslog import CLIENT_CLOSED, AccessRecord
from twsgi.logs.formats import compileTemplate, formatJSON
from twsgi.server.site import TwsgiSite
from twsgi.testing import MemoryServer, MemoryTransport, SynchronousReactor
from twsgi.wsgi.bridge import WSGIResource
from twsgi.wsgi.webrequest import RequestExchange

App = Callable[[dict[str, Any], Any], Any]


def leave(protocol: Any, transport: MemoryTransport) -> None:
    """
    The client closes its connection, as a real transport reports it.
    """
    if transport.producer is not None:
        transport.producer.stopProducing()
    transport.connected = False
    protocol.connectionLost(Failure(ConnectionDone("the client left")))


def _failsMidStream(environ: Any, startResponse: Any) -> Iterator[bytes]:
    """
    An application that raises after its first chunk.
    """
    startResponse("200 OK", [])
    yield b"part"
    raise ZeroDivisionError("broken body")


class Http11Tests(SynchronousTestCase):
    """
    HTTP/1.1 requests whose client leaves, through the real site and bridge
    in memory.
    """

    def serve(self, app: App, **kwargs: Any) -> tuple[MemoryServer, Any, Any]:
        """
        A L{MemoryServer} for C{app}, a connection to it, and a way for the
        application to make the client leave (C{self.leave()}).
        """
        server = MemoryServer(app, **kwargs)
        protocol, transport = server.connect()
        self.leave = lambda: leave(protocol, transport)
        return server, protocol, transport

    def test_beforeResponse(self) -> None:
        """
        A client that leaves while the application runs, before any status
        line was sent, gets one 499 record with C{disconnected}, no bytes
        sent, and the duration up to the moment it left.
        """

        def app(environ: Any, startResponse: Any) -> list[bytes]:
            server.reactor.advance(2)
            self.leave()
            server.reactor.advance(5)
            startResponse("200 OK", [("Content-Length", "7")])
            return [b"dropped"]

        server, protocol, transport = self.serve(app)
        protocol.dataReceived(
            b"POST /up?x=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: ua\r\n"
            b"Content-Length: 3\r\n\r\nabc"
        )
        self.assertEqual(transport.value(), b"")
        [record] = server.records
        self.assertEqual(
            (record.status, record.bytesSent, record.disconnected, record.cutOff),
            (CLIENT_CLOSED, 0, True, ""),
        )
        self.assertEqual(
            (record.method, record.target, record.protocol, record.userAgent),
            ("POST", "/up?x=1", "HTTP/1.1", "ua"),
        )
        self.assertEqual(record.bytesReceived, 3)
        self.assertEqual(record.duration, 2)

    def test_midStream(self) -> None:
        """
        A client that leaves after the head and part of a streamed body gets
        one record with the application's status and the body bytes
        written.
        """

        def body() -> Iterator[bytes]:
            yield b"12345"
            yield b"678"
            self.leave()
            yield b"never sent"

        def app(environ: Any, startResponse: Any) -> Iterator[bytes]:
            startResponse("201 Created", [])
            return body()

        server, protocol, transport = self.serve(app)
        protocol.dataReceived(b"GET /stream HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertNotIn(b"never sent", transport.value())
        [record] = server.records
        self.assertEqual(
            (record.status, record.bytesSent, record.disconnected),
            (201, 8, True),
        )

    def test_finishedThenLeft(self) -> None:
        """
        On a kept-alive connection, a request answered in full keeps its one
        record when the client then leaves during the next request, which
        gets its own 499.
        """
        server, protocol, transport = self.serve(
            lambda environ, startResponse: (
                startResponse("200 OK", [("Content-Length", "2")]) and [b"ok"]
            )
        )
        protocol.dataReceived(b"GET /one HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertTrue(transport.value().endswith(b"\r\n\r\nok"))
        protocol.dataReceived(
            b"POST /two HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\nab"
        )
        self.leave()
        self.assertEqual(
            [(r.target, r.status, r.disconnected) for r in server.records],
            [("/one", 200, False), ("/two", CLIENT_CLOSED, True)],
        )

    def test_queuedSkipped(self) -> None:
        """
        A request whose client left while it waited for a WSGI thread is not
        run, and has one 499 record.
        """
        calls: list[str] = []

        def app(environ: Any, startResponse: Any) -> list[bytes]:
            calls.append(environ["PATH_INFO"])
            startResponse("200 OK", [])
            return [b"ok"]

        reactor = SynchronousReactor()
        pool = ManualPool()
        server, protocol, transport = self.serve(
            None, resource=WSGIResource(reactor, pool, app), reactor=reactor
        )
        protocol.dataReceived(b"GET /queued HTTP/1.1\r\nHost: h\r\n\r\n")
        reactor.advance(3)
        self.leave()
        pool.runAll()
        self.assertEqual(calls, [])
        [record] = server.records
        self.assertEqual(
            (record.target, record.status, record.disconnected, record.duration),
            ("/queued", CLIENT_CLOSED, True, 3),
        )

    def test_whileReadingBody(self) -> None:
        """
        A client that leaves while its request body is still arriving (the
        application never saw it) has one 499 record with its request line
        and the body bytes read.
        """
        server, protocol, transport = self.serve(
            lambda environ, startResponse: self.fail("the app was called")
        )
        protocol.dataReceived(
            b"PUT /file HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabcd"
        )
        self.leave()
        [record] = server.records
        self.assertEqual(
            (record.method, record.target, record.protocol, record.status),
            ("PUT", "/file", "HTTP/1.1", CLIENT_CLOSED),
        )
        self.assertEqual((record.bytesReceived, record.disconnected), (4, True))

    def test_leftMidRead(self) -> None:
        """
        An application reading its body when the client leaves reads on to
        its end: the body's read position is untouched while the lost
        request's record is made (an observer reads on from it), and the
        record counts every body byte received.
        """
        observed: list[bytes] = []
        read: list[bytes] = []

        def app(environ: Any, startResponse: Any) -> list[bytes]:
            body = environ["wsgi.input"]
            self.inputStream = body
            read.append(body.read(2))
            self.leave()
            read.append(body.read())
            startResponse("200 OK", [])
            return [b"late"]

        server, protocol, transport = self.serve(
            app,
            # Runs in the I/O thread while the WSGI thread may still read.
            observers=[lambda record: observed.append(self.inputStream.read(2))],
        )
        protocol.dataReceived(
            b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\nabcdef"
        )
        self.assertEqual((observed, read), ([b"cd"], [b"ab", b"ef"]))
        [record] = server.records
        self.assertEqual((record.bytesReceived, record.disconnected), (6, True))

    def test_rejectedThenClosed(self) -> None:
        """
        A request the framing layer refused mid-body has its one rejection
        record; the connection closing after it adds none.
        """
        reactor = SynchronousReactor()
        resource = WSGIResource(
            reactor,
            ManualPool(),
            lambda environ, startResponse: self.fail("the app was called"),
        )
        site = TwsgiSite(resource, reactor, limits=Limits(maxBody=4))
        server = MemoryServer(site=site)
        protocol, transport = server.connect()
        protocol.dataReceived(
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n3\r\ndef\r\n"
        )
        self.assertIn(b" 413 ", transport.value())
        leave(protocol, transport)
        self.assertEqual(
            [(r.status, r.disconnected) for r in server.records], [(413, False)]
        )

    def test_applicationFailedMidStream(self) -> None:
        """
        An application that raises after its head was sent has its
        connection closed once what it wrote is sent (not aborted, which
        would drop it), and one record with its status, the bytes written
        and C{cutOff="error"}.
        """
        server, protocol, transport = self.serve(_failsMidStream)
        protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertTrue(transport.disconnecting)
        self.assertFalse(transport.aborted)
        self.assertTrue(transport.value().endswith(b"\r\n\r\n4\r\npart\r\n"))
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        [record] = server.records
        self.assertEqual(
            (record.status, record.bytesSent, record.disconnected, record.cutOff),
            (200, 4, True, "error"),
        )

    def test_applicationFailedMidStreamCloseDelimited(self) -> None:
        """
        When the body ends only with the connection (an HTTP/1.0 request,
        no C{Content-Length}), a close would make the cut-off response look
        whole to its client (or to a proxy such as nginx, which speaks
        HTTP/1.0 to its upstreams by default): the connection is aborted.
        """
        server, protocol, transport = self.serve(_failsMidStream)
        protocol.dataReceived(b"GET / HTTP/1.0\r\n\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.0 200 OK\r\n"))
        self.assertTrue(transport.aborted)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        [record] = server.records
        self.assertEqual((record.status, record.cutOff), (200, "error"))

    def test_drainCutOff(self) -> None:
        """
        A request still waiting when the graceful stop's deadline aborts its
        connection has one record: 503 as no status line was sent, with
        C{cutOff="drain"}.
        """
        reactor = SynchronousReactor()
        pool = ManualPool()
        server, protocol, transport = self.serve(
            None,
            resource=WSGIResource(reactor, pool, lambda e, s: self.fail("run")),
            reactor=reactor,
        )
        protocol.dataReceived(b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual(server.site.connections.abort(), 1)
        pool.runAll()
        [record] = server.records
        self.assertEqual(
            (record.status, record.disconnected, record.cutOff), (503, True, "drain")
        )


class Http2Tests(SynchronousTestCase):
    """
    HTTP/2 streams the client resets, or whose connection drops, get the
    same one record as HTTP/1.1 requests.
    """

    def connect(self) -> tuple[H2Wire, H2Client, list[AccessRecord]]:
        wire = H2Wire(Limits())
        records: list[AccessRecord] = []
        wire.site.observers.append(records.append)
        client = H2Client(wire)
        client.readOnce(time.monotonic() + 1)
        return wire, client, records

    def test_reset(self) -> None:
        """
        A stream the client resets (RST_STREAM) before its response has one
        499 record; its neighbour, answered, has its own.
        """
        wire, client, records = self.connect()
        gone = client.request("GET", "/gone")
        stays = client.request("GET", "/stays")
        client.conn.reset_stream(gone, error_code=8)
        client.flush()
        wire.run()
        wire.resource.finishAll()
        self.assertEqual(client.answer(stays).body, b"done")
        self.assertEqual(
            sorted((r.target, r.status, r.disconnected, r.protocol) for r in records),
            [
                ("/gone", CLIENT_CLOSED, True, "HTTP/2.0"),
                ("/stays", 200, False, "HTTP/2.0"),
            ],
        )

    def test_connectionDropped(self) -> None:
        """
        Every stream in flight on a connection that drops has one 499
        record, including one whose body was still arriving.
        """
        wire, client, records = self.connect()
        client.request("GET", "/a")
        client.request("POST", "/upload", end=False)
        wire.server.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(
            sorted((r.method, r.target, r.status, r.disconnected) for r in records),
            [
                ("GET", "/a", CLIENT_CLOSED, True),
                ("POST", "/upload", CLIENT_CLOSED, True),
            ],
        )

    def test_applicationFailed(self) -> None:
        """
        A stream the server resets because its application failed after its
        head has one record with C{cutOff="error"}, and its connection stays.
        """
        wire, client, records = self.connect()
        client.request("GET", "/broken")
        wire.run()
        [request] = wire.resource.requests
        request.write(b"part")
        RequestExchange(request).abort()
        wire.run()
        self.assertEqual(
            [(r.status, r.bytesSent, r.disconnected, r.cutOff) for r in records],
            [(200, 4, True, "error")],
        )
        self.assertFalse(wire.transport.disconnecting)

    def test_droppedMidRead(self) -> None:
        """
        A stream whose connection drops while its application reads its
        body keeps the body's read position while its record is made, and
        the record counts the body bytes received.
        """
        wire, client, records = self.connect()
        stream = client.request("POST", "/upload", end=False)
        client.send(stream, b"abcdef", end=True)
        wire.run()
        [request] = wire.resource.requests
        request.content.seek(2)
        positions: list[int] = []
        wire.site.observers.append(
            lambda record: positions.append(request.content.tell())
        )
        wire.server.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(positions, [2])
        self.assertEqual(
            [(r.bytesReceived, r.disconnected) for r in records], [(6, True)]
        )

    def test_refusedThenDropped(self) -> None:
        """
        A stream refused for its body size keeps its one 413 record when
        the connection drops later.
        """
        wire, client, records = self.connect()
        wire.server.limits = Limits(maxBody=2)
        stream = client.request("POST", "/", end=False)
        client.send(stream, b"abcd")
        wire.server.connectionLost(Failure(ConnectionDone()))
        self.assertEqual([(r.status, r.disconnected) for r in records], [(413, False)])


class FormatTests(SynchronousTestCase):
    """
    The formats show whether a response was cut off.
    """

    record = AccessRecord(
        timestamp=0.0,
        method="GET",
        target="/",
        protocol="HTTP/1.1",
        status=CLIENT_CLOSED,
        bytesSent=0,
        duration=1.5,
        remoteAddr="127.0.0.1",
        remotePort=1,
        listener="tcp:0",
        requestId="r",
        disconnected=True,
        cutOff="drain",
    )

    def test_json(self) -> None:
        """
        JSON lines carry C{disconnected} and C{cut_off}; both are false and
        empty for a complete response.
        """
        fields = json.loads(formatJSON(self.record))
        self.assertEqual(
            (fields["status"], fields["disconnected"], fields["cut_off"]),
            (499, True, "drain"),
        )
        complete = json.loads(
            formatJSON(attrs.evolve(self.record, disconnected=False, cutOff=""))
        )
        self.assertEqual((complete["disconnected"], complete["cut_off"]), (False, ""))

    def test_atom(self) -> None:
        """
        The C{X} atom is C{X} for a response cut off and C{-} otherwise.
        """
        format = compileTemplate("%(s)s %(X)s")
        self.assertEqual(format(self.record), "499 X")
        self.assertEqual(
            format(attrs.evolve(self.record, disconnected=False, status=200)), "200 -"
        )
