"""
Tests for L{twsgi.server.plainhttp}: a plain-HTTP request on a TLS port is
answered in clear, TLS goes on as before.  (Real C{ssl:}, C{tls:} and
C{haproxy:ssl:} listeners, and C{curl}, are in L{tests.server.test_tls}.)
"""

from __future__ import annotations

import os
from typing import Any

from OpenSSL import SSL
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.certs import makeCertificates
from twsgi.server.http1 import LINGER
from twsgi.server.plainhttp import (
    LONGEST_METHOD,
    PLAIN_HTTP_ANSWER,
    PlainHTTPAnsweringTLSFactory,
    PlainHTTPRequest,
    opensPlainHTTP,
)
from twsgi.server.tls import sslListen, tlsFailure
from twsgi.testing import parseResponses


class OpeningTests(SynchronousTestCase):
    """
    L{opensPlainHTTP} tells an HTTP request from TLS by the first bytes.
    """

    def test_http(self) -> None:
        """
        A method token and a space start an HTTP request, whatever the
        method.
        """
        for opening in (b"GET / HTTP/1.1\r\n", b"DELETE ", b"M-SEARCH *", b"PRI * "):
            self.assertIs(opensPlainHTTP(opening), True, opening)

    def test_tls(self) -> None:
        """
        A TLS record (or anything else that is no method token and a space,
        or a PROXY header) is not an HTTP request.
        """
        for opening in (
            b"\x16",
            b"\x16\x03\x01\x02\x00\x01",
            b"\x80\x2e\x01",
            b" GET",
            b"GE(T ",
            b"PROXY TCP4 203.0.113.7 192.0.2.1 40000 443\r\n",
            b"A" * (LONGEST_METHOD + 1),
        ):
            self.assertIs(opensPlainHTTP(opening), False, opening)

    def test_tooFew(self) -> None:
        """
        No bytes, or a token without its space yet, tell nothing.
        """
        for opening in (b"", b"G", b"OPTIONS", b"A" * LONGEST_METHOD):
            self.assertIsNone(opensPlainHTTP(opening), opening)


class _Site(Factory):
    """
    A factory that records what L{PlainHTTPAnsweringTLS} tells its listener.
    """

    protocol = Protocol

    def __init__(self) -> None:
        self.failed: list[tuple[Any, BaseException]] = []

    def tlsFailed(self, transport: Any, error: BaseException) -> None:
        self.failed.append((transport, error))


class _HalfClosingTransport(StringTransport):
    """
    A L{StringTransport} that can close its writing side alone, as a TCP
    transport can, and records an abort.
    """

    writeClosed = False
    aborted = False

    def loseWriteConnection(self) -> None:
        self.writeClosed = True

    def abortConnection(self) -> None:
        self.aborted = True


class AnsweringTests(SynchronousTestCase):
    """
    L{PlainHTTPAnsweringTLS} answers a plain-HTTP request in clear and
    hands TLS on to Twisted's TLS layer.
    """

    def setUp(self) -> None:
        certs = makeCertificates(self.mktemp())
        self.options = sslListen(
            f"ssl:0:privateKey={os.path.join(certs, 'server.key')}"
            f":certKey={os.path.join(certs, 'server.pem')}"
        ).options
        self.site = _Site()
        factory = PlainHTTPAnsweringTLSFactory(self.options, False, self.site)
        self.connection = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 0))
        self.transport = StringTransport(
            peerAddress=IPv4Address("TCP", "192.0.2.9", 50000)
        )
        self.connection.makeConnection(self.transport)

    def test_plainHTTP(self) -> None:
        """
        A request split across reads gets C{400 Bad Request} in clear,
        saying to use C{https://}, and the connection closes; the listener
        is told once.
        """
        self.connection.dataReceived(b"G")
        self.assertEqual(self.transport.value(), b"")
        self.connection.dataReceived(b"ET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(self.transport.value(), PLAIN_HTTP_ANSWER)
        [response] = parseResponses(self.transport.value())
        self.assertEqual(response.code, 400)
        self.assertEqual(response.header(b"connection"), b"close")
        self.assertIn(b"https://", response.body)
        self.assertTrue(self.transport.disconnecting)
        [(transport, error)] = self.site.failed
        self.assertEqual(transport.getPeer().host, "192.0.2.9")
        self.assertIsInstance(error, PlainHTTPRequest)
        self.assertIn("a plain-HTTP request on a TLS port", tlsFailure(error))
        self.connection.dataReceived(b"more bytes")
        self.assertEqual(self.transport.value(), PLAIN_HTTP_ANSWER)

    def test_plainHTTPLingers(self) -> None:
        """
        On a transport that can close one side, and with a listener that has
        a reactor, the answer is followed by a FIN only: what still arrives
        (a request body) is read and dropped, so that the kernel resets
        nothing before the client read the answer, until the client closes
        too, or for L{LINGER} seconds, when the connection is aborted.
        """
        clock = Clock()
        self.site.reactor = clock  # type: ignore[attr-defined]
        for clientCloses in (False, True):
            factory = PlainHTTPAnsweringTLSFactory(self.options, False, self.site)
            connection = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 0))
            transport = _HalfClosingTransport()
            connection.makeConnection(transport)
            connection.dataReceived(b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\n")
            self.assertEqual(transport.value(), PLAIN_HTTP_ANSWER)
            self.assertTrue(transport.writeClosed)
            self.assertFalse(transport.disconnecting)
            connection.dataReceived(b"the body")
            self.assertEqual(transport.value(), PLAIN_HTTP_ANSWER)
            # The HTTP channel inside gives up on it (a drain's grace): the
            # linger goes on, with no reset.
            connection.loseConnection()
            self.assertFalse(transport.aborted)
            self.assertFalse(transport.disconnecting)
            if clientCloses:
                connection.connectionLost(Failure(ConnectionDone()))
                self.assertEqual(clock.getDelayedCalls(), [])
                self.assertFalse(transport.aborted)
            else:
                clock.advance(LINGER - 0.1)
                self.assertFalse(transport.aborted)
                clock.advance(0.1)
                self.assertTrue(transport.aborted)

    def test_documented(self) -> None:
        """
        C{docs/security.rst} shows the answer as it is.
        """
        docs = os.path.join(
            os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "docs"
        )
        with open(os.path.join(docs, "security.rst"), encoding="utf-8") as f:
            page = f.read()
        shown = "".join(
            f"   {line}\n" if line else "\n"
            for line in PLAIN_HTTP_ANSWER.decode("ascii").split("\r\n")
        )
        self.assertIn(shown, page)

    def test_tls(self) -> None:
        """
        A TLS ClientHello, its first byte alone in the first read, goes on
        to TLS: the answer is a ServerHello.
        """
        client = SSL.Connection(SSL.Context(SSL.TLS_METHOD), None)
        client.set_connect_state()
        with self.assertRaises(SSL.WantReadError):
            client.do_handshake()
        hello = client.bio_read(65536)
        self.connection.dataReceived(hello[:1])
        self.assertEqual(self.transport.value(), b"")
        self.connection.dataReceived(hello[1:])
        answer = self.transport.value()
        self.assertEqual(answer[:2], b"\x16\x03")
        self.assertFalse(self.transport.disconnecting)
        self.assertEqual(self.site.failed, [])
