"""
Real-socket tests of what the server does for clients that go away or send
bad requests: a queued request whose client left is not run, a rejected
request reaches the access log file and the metrics like any other, and a
client that half-closes (C{shutdown(SHUT_WR)}) is answered.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, protocol, reactor, threads
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import TestCase

from tests.helpers.metrics import samples
from tests.helpers.rawhttp import LoopbackServer, exchange
from tests.helpers.realserver import RealServerMixin, deferLater
from twsgi.server.listeners import buildEndpoint
from twsgi.testing import parseResponses

_release = threading.Event()
_calls: list[str] = []


def blockingApp(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """
    Records each path it is called for; C{/block} waits for the test.
    """
    path = environ["PATH_INFO"]
    _calls.append(path)
    if path == "/block":
        _release.wait(10)
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]


@defer.inlineCallbacks
def waitUntil(condition: Callable[[], bool], what: str, tries: int = 500) -> Any:
    """
    Poll C{condition} every 10 ms, at most C{tries} times.

    @raise AssertionError: if it never held.
    """
    for _ in range(tries):
        if condition():
            return
        yield deferLater(0.01)
    raise AssertionError(f"never happened: {what}")


class QueuedClientGoneTests(RealServerMixin, TestCase):
    """
    With the only WSGI thread busy, a queued request whose client leaves is
    skipped when the thread frees up; a queued one whose client stays is
    served.
    """

    timeout = 20

    @defer.inlineCallbacks
    def test_skipped(self) -> Any:
        """
        The application is called for C{/block} and C{/stays}, never for
        C{/gone}, and one line says why; C{/gone} is one 499 line of the
        access log file and one 4xx request of the metrics.
        """
        _release.clear()
        del _calls[:]
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, True)
        logPath = os.path.join(directory, "access.log")
        app, admin = "tcp:0:interface=127.0.0.1", "tcp:0:interface=127.0.0.1:backlog=7"
        service = yield self.startServer(
            {
                "app": "tests.wsgi.test_bridge_clientgone:blockingApp",
                "endpoint": [app],
                "metrics_endpoint": [admin],
                "threads": "1:1",
                "access_log": logPath,
            }
        )
        self.addCleanup(_release.set)
        blocked = self.request(app, "/block")
        yield waitUntil(lambda: service.poolStats().busy == 1, "the thread is busy")

        connected: list[Any] = []
        for path in (b"/gone", b"/stays"):
            client = protocol.Protocol()
            yield TCP4ClientEndpoint(reactor, "127.0.0.1", self.ports[app]).connect(
                protocol.Factory.forProtocol(lambda client=client: client)
            )
            client.transport.write(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            connected.append(client)
        yield waitUntil(lambda: service.poolStats().backlog == 2, "two queued")
        connected[0].transport.abortConnection()
        sites = service.sites
        yield waitUntil(
            lambda: sum(len(site.connections) for site in sites) == 2,
            "the server noticed the client left",
        )
        _release.set()
        response, body = yield blocked
        self.assertEqual(body, b"ok")
        yield waitUntil(
            lambda: service.poolStats().backlog == 0 and service.poolStats().busy == 0,
            "the queue is empty",
        )
        self.assertEqual(_calls, ["/block", "/stays"])
        text = "\n".join(formatEvent(e) for e in events)
        self.assertEqual(
            text.count(
                "client disconnected before a WSGI thread took its request: GET /gone"
            ),
            1,
            text,
        )

        def lines() -> list[str]:
            with open(logPath) as f:
                return f.read().splitlines()

        yield waitUntil(lambda: len(lines()) == 3, "three access log lines")
        [gone] = [line for line in lines() if "/gone" in line]
        self.assertIn('"GET /gone HTTP/1.1" 499 - ', gone)
        response, body = yield self.request(admin, "/metrics")
        figures = samples(body.decode())
        self.assertEqual(
            (
                figures[
                    (
                        "twsgi_requests_total",
                        (("protocol", "HTTP/1.1"), ("status_class", "2xx")),
                    )
                ],
                figures[
                    (
                        "twsgi_requests_total",
                        (("protocol", "HTTP/1.1"), ("status_class", "4xx")),
                    )
                ],
            ),
            (2, 1),
        )
        connected[1].transport.loseConnection()


class RejectedEndToEndTests(RealServerMixin, TestCase):
    """
    A request the parser rejects is one line of the access log file and one
    request of the metrics.
    """

    timeout = 20

    @defer.inlineCallbacks
    def test_logAndMetrics(self) -> Any:
        """
        A 400 and a 414 each write one combined line (with C{-} for the
        request line not read) and count as 4xx, the 414 with an unknown
        protocol.
        """
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "access.log")
        app, admin = "tcp:0:interface=127.0.0.1", "tcp:0:interface=127.0.0.1:backlog=7"
        yield self.startServer(
            {
                "app": "tests.wsgi.test_bridge_clientgone:blockingApp",
                "endpoint": [app],
                "metrics_endpoint": [admin],
                "access_log": path,
                "limit_request_line": "100",
            }
        )
        for raw, status in (
            (b"GET /a HTTP/1.1\r\nBad Header: x\r\n\r\n", 400),
            (b"GET /" + b"a" * 200 + b" HTTP/1.1\r\n\r\n", 414),
        ):
            data, closed = yield exchange(reactor, self.ports[app], raw)
            self.assertEqual([r.code for r in parseResponses(data)], [status])
        response, body = yield self.request(admin, "/metrics")
        figures = samples(body.decode())
        # The 414's request line was not read: its protocol is unknown.
        self.assertEqual(
            [
                figures[
                    (
                        "twsgi_requests_total",
                        (("protocol", protocol), ("status_class", "4xx")),
                    )
                ]
                for protocol in ("HTTP/1.1", "unknown")
            ],
            [1, 1],
        )
        with open(path) as f:
            lines = f.read().splitlines()
        self.assertEqual(len(lines), 2, lines)
        self.assertIn('"GET /a HTTP/1.1" 400 ', lines[0])
        self.assertTrue(lines[0].startswith("127.0.0.1 - - ["), lines[0])
        self.assertIn('"-" 414 ', lines[1])
        self.assertEqual(_calls.count("/a"), 0)


def shutWrite(port: int, payload: bytes, timeout: float = 5.0) -> bytes:
    """
    Send C{payload} on a blocking socket, shut its writing side down, and
    read until the server closes.

    @raise OSError: if the server does not close within C{timeout} seconds.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as client:
        client.sendall(payload)
        client.shutdown(socket.SHUT_WR)
        received = bytearray()
        while True:
            data = client.recv(65536)
            if not data:
                return bytes(received)
            received += data


class HalfCloseTests(TestCase):
    """
    A client that sends its requests and then calls C{shutdown(SHUT_WR)}
    (as C{nc -N} does) reads every answer, over TCP and behind a C{haproxy:}
    listener.
    """

    timeout = 20

    @defer.inlineCallbacks
    def listen(self, description: str) -> Any:
        server = LoopbackServer(reactor)
        yield server.port.stopListening()
        server.port = yield buildEndpoint(reactor, description).listen(server.site)
        self.addCleanup(server.stop)
        return server.port.getHost().port

    @defer.inlineCallbacks
    def check(self, description: str, header: bytes = b"") -> Any:
        port = yield self.listen(description)
        request = b"GET /%s HTTP/1.1\r\nHost: x\r\n\r\n"
        data = yield threads.deferToThread(
            shutWrite, port, header + request % b"a" + request % b"b"
        )
        responses = parseResponses(data, closed=True)
        self.assertEqual([r.body for r in responses], [b"seen /a", b"seen /b"])

    def test_tcp(self) -> Any:
        """
        Two pipelined requests and a half-close: both are answered, in
        order, and the server closes.
        """
        return self.check("tcp:0:interface=127.0.0.1")

    def test_haproxy(self) -> Any:
        """
        The same behind a PROXY protocol header.
        """
        return self.check(
            "haproxy:tcp:0:interface=127.0.0.1",
            b"PROXY TCP4 198.51.100.7 127.0.0.1 40000 8000\r\n",
        )
