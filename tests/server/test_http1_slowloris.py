"""
A bounded slowloris check on loopback: a twsgi process with 1,000
connections that never finish their headers serves every one of a bounded
number of ordinary requests, keeps the slow connections open (cheaply)
until the header timeout, and then answers each of them 408 and closes it.

Nothing here is timed: how fast ordinary clients are served meanwhile is
the C{slowloris} scenario of C{bench/run.py}, measured against the peers.
"""

from __future__ import annotations

import resource
import selectors
import socket
import time

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.server import start
from twsgi.testing import ServerProcess

SLOW = 1000
ORDINARY = 100
REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
SOCKET_TIMEOUT = 30.0
"""
Generous: an ordinary request on a loaded 2-core machine takes milliseconds.
"""


def _once(port: int) -> bytes:
    """
    One request on a new connection; the whole response.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT) as s:
        s.sendall(REQUEST)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class SlowlorisTests(SynchronousTestCase):
    """
    Slow-header connections do not starve ordinary clients, cost little
    memory, and end at the header timeout.
    """

    def setUp(self) -> None:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < SLOW + 200:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, SLOW + 500), hard))
            self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))

    def serve(self, headerTimeout: float) -> ServerProcess:
        """
        A twsgi process serving the example app, with a backlog for the
        burst of slow connections.
        """
        return start(
            self,
            [
                "--app",
                "twsgi.example:app",
                "--endpoint",
                "tcp:0:interface=127.0.0.1:backlog=1024",
                "--access-log",
                "none",
                "--header-timeout",
                str(headerTimeout),
            ],
            checkout=True,
        )

    def openSlow(self, port: int) -> list[socket.socket]:
        """
        C{SLOW} connections, each with a header section begun and never
        finished; closed in the cleanup.
        """
        slow: list[socket.socket] = []

        def close() -> None:
            for s in slow:
                s.close()

        self.addCleanup(close)
        for i in range(SLOW):
            s = socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT)
            s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\nX-Slow-%d: " % i)
            slow.append(s)
        return slow

    def test_thousandSlowConnections(self) -> None:
        """
        With 1,000 connections each holding a header section open (the
        header timeout far away), every one of 100 ordinary requests is
        answered 200, the slow connections stay open with nothing written
        to them, and each costs the server less than 64 KiB.
        """
        server = self.serve(600)
        port = server.port
        self.assertTrue(_once(port).startswith(b"HTTP/1.1 200 "))
        before = _rss(server.process.pid)
        slow = self.openSlow(port)
        statuses = [_once(port)[:13] for _ in range(ORDINARY)]
        self.assertEqual(statuses, [b"HTTP/1.1 200 "] * ORDINARY)
        # The ordinary requests were accepted after every slow connection:
        # the server holds all of them by now.
        perConnection = (_rss(server.process.pid) - before) / SLOW
        self.assertLess(perConnection, 64 * 1024)
        for s in slow:
            s.setblocking(False)
            with self.assertRaises(BlockingIOError):
                s.recv(1)

    def test_headerTimeoutClosesThem(self) -> None:
        """
        When the header timeout passes, each of the 1,000 slow connections
        is answered 408 and closed, and ordinary requests are still served.
        """
        server = self.serve(2)
        port = server.port
        slow = self.openSlow(port)
        answers = {s: b"" for s in slow}
        with selectors.DefaultSelector() as selector:
            for s in slow:
                s.setblocking(False)
                selector.register(s, selectors.EVENT_READ, s)
            # A bound orders of magnitude past the 2 s timeout, only so that
            # a broken server fails the test instead of hanging it.
            deadline = time.monotonic() + 120
            while selector.get_map() and time.monotonic() < deadline:
                for key, _ in selector.select(1):
                    s = key.data
                    try:
                        chunk = s.recv(65536)
                    except ConnectionResetError:
                        chunk = b""
                    answers[s] += chunk
                    if not chunk:
                        selector.unregister(s)
            self.assertEqual(len(selector.get_map()), 0, "slow connections left open")
        statuses = {answer[:13] for answer in answers.values()}
        self.assertEqual(statuses, {b"HTTP/1.1 408 "})
        self.assertTrue(_once(port).startswith(b"HTTP/1.1 200 "))
