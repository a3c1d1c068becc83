"""
End-to-end proof, with real processes and TLS sockets on 127.0.0.1 (port
0), that a client which keeps an idle connection open without reading (so
never answers the server's TLS C{close_notify}) neither delays the graceful
stop nor keeps its socket open after the keep-alive timeout.
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import time
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.certs import makeCertificates
from tests.helpers.h2client import connect
from twsgi.testing import ServerProcess, spawnServer

BOUND = 60.0
"""
Seconds the stop (or a close after the keep-alive timeout) may take: a
correct server needs about the close grace (2 s), so this is a margin of
more than an order of magnitude for a loaded machine, and still far below
the graceful timeout (300 s) that a server waiting for the client would
take (or the never that a keep-alive close would).
"""


def clientContext(certs: str) -> ssl.SSLContext:
    """
    A client context trusting the test CA, for C{127.0.0.1}.
    """
    context = ssl.create_default_context(cafile=os.path.join(certs, "ca.pem"))
    context.check_hostname = False
    return context


def spawnTLS(case: SynchronousTestCase, *args: str) -> tuple[ServerProcess, str]:
    """
    A server on a TLS listener with certificates made for C{case}, stopped
    when it ends; the server and the certificates' directory.
    """
    certs = makeCertificates(case.mktemp())
    endpoint = (
        f"ssl:0:interface=127.0.0.1:privateKey={certs}/server.key"
        f":certKey={certs}/server.pem"
    )
    server = spawnServer(
        [
            "--app",
            "twsgi.example:app",
            "--endpoint",
            endpoint,
            "--access-log",
            "none",
            *args,
        ]
    )
    case.addCleanup(server.stop)
    return server, certs


def idleHTTP11(server: ServerProcess, certs: str) -> http.client.HTTPSConnection:
    """
    One request over HTTPS/1.1 on a keep-alive connection, left open and
    never read again.
    """
    connection = http.client.HTTPSConnection(
        server.host, server.port, context=clientContext(certs), timeout=10
    )
    connection.request("GET", "/")
    response = connection.getresponse()
    response.read()
    assert response.status == 200, response.status
    assert response.getheader("Connection", "") != "close"
    return connection


def idleHTTP2(server: ServerProcess, certs: str) -> Any:
    """
    One request over HTTP/2, on a connection left open and never read
    again.
    """
    client = connect(server.port, certs)
    assert client.alpn == "h2", client.alpn
    stream = client.request("GET", "/")
    assert client.answer(stream).status == 200
    return client


class IdleTLSStopTests(SynchronousTestCase):
    """
    The graceful stop of a TLS server with idle clients that do not read.
    """

    def spawn(self, *args: str) -> tuple[ServerProcess, str]:
        return spawnTLS(self, "--graceful-timeout", "300", *args)

    def stop(self, server: ServerProcess) -> tuple[int, float]:
        """
        SIGTERM; the exit status and the seconds until the process ended.
        """
        signalled = time.monotonic()
        server.signal()
        status = server.wait(BOUND + 30)
        return status, time.monotonic() - signalled

    def assertPrompt(self, server: ServerProcess, status: int, elapsed: float) -> None:
        self.assertEqual(status, 0, server.output)
        self.assertLess(elapsed, BOUND, server.output)
        self.assertIn("every request drained", server.output)

    def test_http11(self) -> None:
        """
        An idle HTTPS/1.1 keep-alive client that does not read does not
        hold the stop up to the graceful timeout: it ends in seconds, with
        exit status 0.
        """
        server, certs = self.spawn()
        connection = idleHTTP11(server, certs)
        self.addCleanup(connection.close)
        self.assertPrompt(server, *self.stop(server))

    def test_http2(self) -> None:
        """
        The same for an idle HTTP/2 connection.
        """
        server, certs = self.spawn()
        client = idleHTTP2(server, certs)
        self.addCleanup(client.close)
        self.assertPrompt(server, *self.stop(server))

    def test_workers(self) -> None:
        """
        The same with worker processes, for both protocols at once.
        """
        server, certs = self.spawn("--workers", "2")
        # A worker signalled before its reactor runs has no handler yet.
        deadline = time.monotonic() + 20
        while server.output.count("Starting reactor") < 3:
            self.assertLess(time.monotonic(), deadline, server.output)
            time.sleep(0.05)
        connection = idleHTTP11(server, certs)
        self.addCleanup(connection.close)
        client = idleHTTP2(server, certs)
        self.addCleanup(client.close)
        self.assertPrompt(server, *self.stop(server))


def closedWithin(sock: ssl.SSLSocket, seconds: float) -> bool:
    """
    Read the raw bytes under a TLS socket (never answering the server's
    C{close_notify}) until the server closes the TCP connection: C{True} if
    it did within C{seconds}.
    """
    raw = socket.socket(fileno=os.dup(sock.fileno()))
    try:
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            raw.settimeout(left)
            try:
                if not raw.recv(65536):
                    return True
            except ConnectionResetError:
                return True
            except TimeoutError:
                return False
    finally:
        raw.close()


class KeepAliveTimeoutTests(SynchronousTestCase):
    """
    The keep-alive timeout closes an idle TLS connection whose client
    never answers the close, during normal serving.
    """

    def test_http11(self) -> None:
        """
        With C{--keepalive-timeout 1}, the server's side of an idle
        HTTPS/1.1 connection is gone within a few seconds although the
        client never answers the server's C{close_notify}.
        """
        server, certs = spawnTLS(self, "--keepalive-timeout", "1")
        connection = idleHTTP11(server, certs)
        self.addCleanup(connection.close)
        assert connection.sock is not None
        self.assertTrue(closedWithin(connection.sock, BOUND), server.output)
        client = idleHTTP2(server, certs)
        self.addCleanup(client.close)
        self.assertTrue(closedWithin(client.sock, BOUND), server.output)
