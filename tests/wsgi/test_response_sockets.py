"""
The response side over real sockets: what an application sends never splits
a response, what a client sends never forges an access-log line, and what
an application yielded before it failed reaches its client.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from twisted.internet import defer, protocol
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from tests.helpers.rawhttp import LoopbackServer, exchange
from twsgi.logs.formats import formatterFor
from twsgi.testing import parseResponses

BAD_HEADERS = {
    "/crlf-value": ("200 OK", [("X-A", "a\r\nSet-Cookie: evil=1")]),
    "/lf-value": ("200 OK", [("X-A", "a\nX-B: b")]),
    "/nul-value": ("200 OK", [("X-A", "a\x00b")]),
    "/crlf-name": ("200 OK", [("X-A\r\nX-B", "b")]),
    "/crlf-status": ("200 OK\r\nSet-Cookie: evil=1", []),
    "/nul-status": ("200 O\x00K", []),
}


def injectingApp(environ: dict[str, Any], startResponse: Any) -> list[bytes]:
    status, headers = BAD_HEADERS[environ["PATH_INFO"]]
    startResponse(status, headers)
    return [b"body"]


class ResponseSplittingTests(TestCase):
    """
    CR, LF or NUL in a status or header from the application never reach
    the wire.
    """

    timeout = 20

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor = reactor
        self.server = LoopbackServer(reactor, app=injectingApp)
        self.addCleanup(self.server.stop)

    @defer.inlineCallbacks
    def test_injection(self) -> Any:
        """
        Each injecting response becomes a 500, and no injected header or
        stray line is on the wire.
        """
        for path in BAD_HEADERS:
            data, closed = yield exchange(
                self.reactor,
                self.server.portNumber,
                b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                % path.encode(),
            )
            [response] = parseResponses(data)
            self.assertEqual(response.code, 500, path)
            self.assertIsNone(response.header(b"set-cookie"), path)
            self.assertIsNone(response.header(b"x-b"), path)
            self.assertNotIn(b"\x00", data, path)
            self.assertNotIn(b"body", response.body, path)
        self.assertEqual(len(self.flushLoggedErrors()), 0)


class AccessLogInjectionTests(TestCase):
    """
    Request bytes that pass framing but are controls in latin-1 are escaped
    in the access log.
    """

    timeout = 20

    @defer.inlineCallbacks
    def test_escaped(self) -> Any:
        """
        C1 controls (NEL among them), quotes and backslashes in the target,
        user agent and referer are escaped: one request, one log line.
        """
        from twisted.internet import reactor

        lines: list[str] = []
        formatter = formatterFor("combined")
        server = LoopbackServer(
            reactor, observers=[lambda record: lines.append(formatter(record))]
        )
        self.addCleanup(server.stop)
        data, closed = yield exchange(
            reactor,
            server.portNumber,
            b'GET /a\x85b"\\ HTTP/1.1\r\nHost: x\r\nUser-Agent: u\x85"127.0.0.1 - -\r\n'
            b"Referer: r\x9b[2J\r\nConnection: close\r\n\r\n",
        )
        self.assertEqual([r.code for r in parseResponses(data)], [200])
        [line] = lines
        self.assertEqual(len(line.splitlines()), 1)
        self.assertIn('/a\\x85b\\"\\\\', line)
        self.assertIn('u\\x85\\"127.0.0.1', line)
        self.assertIn("r\\x9b[2J", line)


YIELDED = 4 * 1024 * 1024
"""
What L{FailsAfterYielding} yields before it fails: far more than a
loopback connection's socket buffers hold.
"""


class _LateReader(protocol.Protocol):
    """
    A client that sends a request and reads nothing of the response until
    L{read} is called; C{finished} fires with the bytes received and the
    reason the connection ended.
    """

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.data = bytearray()
        self.finished: defer.Deferred[tuple[bytes, Failure]] = defer.Deferred()

    def connectionMade(self) -> None:
        self.transport.write(self.request)
        self.transport.pauseProducing()

    def read(self) -> None:
        self.transport.resumeProducing()

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Failure) -> None:
        self.finished.callback((bytes(self.data), reason))


class FailsAfterYieldingTests(TestCase):
    """
    An application that fails after it yielded a large chunk, while its
    client has read little of it, still gets that chunk to the client
    (PEP 3333: a server transmits a yielded block even while the
    application produces the next one); then the connection closes without
    the chunked body's end, so the client can tell that the response is
    incomplete.
    """

    timeout = 20

    @defer.inlineCallbacks
    def failsAfterChunk(self, request: bytes) -> Any:
        """
        Send C{request} to a server whose application yields
        L{YIELDED} bytes, then raises once the client (which reads
        nothing until then) starts reading.

        @return: a L{Deferred} firing with the bytes the client got and
            the reason its connection ended.
        """
        from twisted.internet import reactor

        client = _LateReader(request)

        def app(environ: Any, startResponse: Any) -> Iterator[bytes]:
            startResponse("200 OK", [("Content-Type", "application/octet-stream")])
            yield b"x" * YIELDED
            # The client reads from now on: an abort of the connection
            # would drop most of the chunk, still in the server's buffers.
            reactor.callFromThread(client.read)
            raise ZeroDivisionError("after a large chunk")

        server = LoopbackServer(reactor, app=app)
        self.addCleanup(server.stop)
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", server.portNumber)
        yield endpoint.connect(protocol.Factory.forProtocol(lambda: client))
        result = yield client.finished
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        return result

    @defer.inlineCallbacks
    def test_yieldedReachesClient(self) -> Any:
        data, reason = yield self.failsAfterChunk(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        head, _, body = data.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 OK\r\n"), head)
        self.assertIn(b"Transfer-Encoding: chunked", head)
        self.assertTrue(reason.check(ConnectionDone), reason)
        self.assertEqual(body, b"%x\r\n%s\r\n" % (YIELDED, b"x" * YIELDED))

    @defer.inlineCallbacks
    def test_closeDelimitedReset(self) -> Any:
        """
        When the body ends only with the connection (an HTTP/1.0 request,
        no C{Content-Length}), a clean close would make the cut-off
        response look whole to its client (or to a proxy such as nginx,
        which speaks HTTP/1.0 to its upstreams by default): the connection
        is reset instead, and the client sees it lost, not done.
        """
        data, reason = yield self.failsAfterChunk(b"GET / HTTP/1.0\r\n\r\n")
        self.assertTrue(data.startswith(b"HTTP/1.0 200 OK\r\n"), data[:100])
        self.assertTrue(reason.check(ConnectionLost), reason)
