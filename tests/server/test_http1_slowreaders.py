"""
Memory stays bounded with clients that never read: a real server on
127.0.0.1 (port 0) pauses each streamed body near the high-water mark, and
serves other clients meanwhile.  (The full-size figure, 20 clients of a
512 MiB body, is measured by C{bench/}.)
"""

from __future__ import annotations

import socket
import threading
from typing import Any

from twisted.internet import defer, reactor, task
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent, readBody

from twsgi.testing import serverURL, startServer
from twsgi.wsgi.exchange import HIGH_WATER

CLIENTS = 4
CHUNK = 64 * 1024
# Kernel buffers on both ends (the client's receive buffer is made small),
# the transport's buffer and our queue: far below the 64 MiB body.
BOUND = 4 * 1024 * 1024


class StreamApp:
    """
    C{/stream} is 64 MiB in fresh 64 KiB chunks (counted per request);
    anything else is a short answer.
    """

    def __init__(self) -> None:
        self.produced: list[int] = []
        self.closed = 0
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], startResponse: Any) -> Any:
        if environ["PATH_INFO"] != "/stream":
            startResponse("200 OK", [("Content-Length", "2")])
            return [b"ok"]
        startResponse("200 OK", [("Content-Type", "application/octet-stream")])
        with self.lock:
            index = len(self.produced)
            self.produced.append(0)
        return self.stream(index)

    def stream(self, index: int) -> Any:
        try:
            for _ in range(1024):
                self.produced[index] += CHUNK
                yield b"x" * CHUNK
        finally:
            with self.lock:
                self.closed += 1


class SlowReaderTests(TestCase):
    """
    Clients that never read hold a bounded amount of the server's memory.
    """

    @defer.inlineCallbacks
    def test_paused(self) -> Any:
        """
        Each body stops near the high-water mark while its client does not
        read, an ordinary request is answered meanwhile, and every body is
        closed once its client goes away.
        """
        app = StreamApp()
        service = yield startServer(self, app, threads=(CLIENTS + 2, CLIENTS + 2))
        address = service.addresses[0][1]
        clients = []
        for _ in range(CLIENTS):
            client = socket.socket()
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            client.connect((address.host, address.port))
            client.sendall(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
            clients.append(client)

        # Wait until every body has stopped growing (bounded: 10 s).
        last: list[int] = []
        steady = 0
        for _ in range(200):
            yield task.deferLater(reactor, 0.05, lambda: None)
            now = list(app.produced)
            steady = steady + 1 if now == last and len(now) == CLIENTS else 0
            last = now
            if steady >= 4:
                break
        self.assertGreaterEqual(steady, 4, f"still producing: {last}")
        for produced in last:
            self.assertGreater(produced, HIGH_WATER)
            self.assertLess(produced, BOUND)
        self.assertEqual(service.poolStats().busy, CLIENTS)

        response = yield Agent(reactor).request(
            b"GET", (serverURL(service) + "/other").encode()
        )
        self.assertEqual((yield readBody(response)), b"ok")

        for client in clients:
            client.close()
        for _ in range(200):
            if app.closed == CLIENTS:
                break
            yield task.deferLater(reactor, 0.05, lambda: None)
        self.assertEqual(app.closed, CLIENTS)
