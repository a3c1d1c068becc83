"""
Tests for L{twsgi.server.proxyprotocol}: the PROXY protocol on a connection.
(A real C{haproxy:} listener is tested in L{tests.server.test_forwarded}.)
"""

from __future__ import annotations

import struct
from typing import Any

from twisted.internet import ssl
from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from twsgi.logs.limited import BURST, PERIOD
from twsgi.server.proxyprotocol import ProxyProtocolFactory


@implementer(IHalfCloseableProtocol)
class _Recorder(Protocol):
    """
    Records what a wrapped protocol is told.
    """

    def __init__(self) -> None:
        self.events: list[Any] = []

    def dataReceived(self, data: bytes) -> None:
        self.events.append(data)

    def readConnectionLost(self) -> None:
        self.events.append("readConnectionLost")

    def writeConnectionLost(self) -> None:
        self.events.append("writeConnectionLost")


class ProxyWrapperTests(SynchronousTestCase):
    """
    L{ProxyProtocolFactory} reads the PROXY header of each connection and
    gives the wrapped protocol the addresses it names.
    """

    def setUp(self) -> None:
        self.clock = Clock()

    def connect(
        self, protocol: Protocol | None = None, factory: Any = None
    ) -> tuple[Any, StringTransport]:
        wrapped = protocol if protocol is not None else _Recorder()
        if factory is None:
            factory = ProxyProtocolFactory(
                Factory.forProtocol(lambda: wrapped), self.clock
            )
        connection = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 0))
        transport = StringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 8000),
            peerAddress=IPv4Address("TCP", "127.0.0.1", 50000),
        )
        connection.makeConnection(transport)
        return connection, transport

    def test_splitHeader(self) -> None:
        """
        A header split across reads, one byte at a time, gives the client
        and the address it connected to; the bytes after it reach the
        wrapped protocol.
        """
        connection, transport = self.connect()
        header = b"PROXY TCP4 198.51.100.7 192.0.2.1 40000 443\r\nGET"
        for i in range(len(header)):
            connection.dataReceived(header[i : i + 1])
        self.assertEqual(connection.wrappedProtocol.events, [b"G", b"E", b"T"])
        self.assertEqual(
            connection.wrappedProtocol.transport.getPeer(),
            IPv4Address("TCP", "198.51.100.7", 40000),
        )
        self.assertEqual(
            connection.wrappedProtocol.transport.getHost(),
            IPv4Address("TCP", "192.0.2.1", 443),
        )
        self.assertFalse(transport.disconnecting)

    def test_unix(self) -> None:
        """
        A version 2 header of UNIX socket paths (HAProxy's for a client of a
        UNIX-socket frontend) names no client: the connection's own
        addresses stand, not an empty C{REMOTE_ADDR}.
        """
        connection, transport = self.connect()
        body = struct.pack("!108s108s", b"/run/client", b"/run/server")
        connection.dataReceived(
            b"\r\n\r\n\x00\r\nQUIT\n\x21\x31" + struct.pack("!H", len(body)) + body
        )
        self.assertEqual(connection.getPeer(), transport.getPeer())
        self.assertEqual(connection.getHost(), transport.getHost())

    def test_local(self) -> None:
        """
        A version 2 LOCAL header (a health check) leaves the connection's
        own addresses.
        """
        connection, transport = self.connect()
        connection.dataReceived(b"\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00")
        self.assertEqual(connection.getPeer(), transport.getPeer())
        self.assertEqual(connection.getHost(), transport.getHost())

    def test_junk(self) -> None:
        """
        Bytes that are no PROXY header close the connection, with one line
        in the log naming the peer and why; nothing reaches the wrapped
        protocol, not even later bytes.
        """
        connection, transport = self.connect()
        with capturedLogs() as events:
            connection.dataReceived(b"GET / HTTP/1.1\r\n")
            connection.dataReceived(b"Host: x\r\n\r\n")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(connection.wrappedProtocol.events, [])
        self.assertEqual(len(events), 1)
        text = formatEvent(events[0])
        self.assertIn("127.0.0.1", text)
        self.assertIn("no PROXY header", text)
        self.assertEqual(events[0]["log_level"], LogLevel.info)

    def test_junkFlood(self) -> None:
        """
        Of many connections without a header (a scanner), a listener logs
        the first L{BURST} a minute, then how many it left out; another
        listener logs its own.
        """
        factory = ProxyProtocolFactory(Factory.forProtocol(_Recorder), self.clock)
        other = ProxyProtocolFactory(Factory.forProtocol(_Recorder), self.clock)
        with capturedLogs() as events:
            for _ in range(BURST + 5):
                connection, transport = self.connect(factory=factory)
                connection.dataReceived(b"GET / HTTP/1.1\r\n")
                self.assertTrue(transport.disconnecting)
            self.connect(factory=other)[0].dataReceived(b"\x16\x03\x01")
        lines = [formatEvent(event) for event in events]
        self.assertEqual(len(lines), BURST + 1, lines)
        self.assertTrue(all("without a valid header" in line for line in lines))
        self.clock.advance(PERIOD)
        with capturedLogs() as events:
            self.connect(factory=factory)[0].dataReceived(b"junk\r\n")
        lines = [formatEvent(event) for event in events]
        self.assertEqual(len(lines), 2, lines)
        self.assertIn(
            "5 more connections without a valid PROXY header were not logged",
            lines[0],
        )
        self.assertIn("without a valid header", lines[1])

    def test_halfClose(self) -> None:
        """
        A half-close reaches a wrapped protocol that takes one; one that
        does not is closed instead.
        """
        connection, transport = self.connect()
        connection.readConnectionLost()
        connection.writeConnectionLost()
        self.assertEqual(
            connection.wrappedProtocol.events,
            ["readConnectionLost", "writeConnectionLost"],
        )
        self.assertFalse(transport.disconnecting)
        connection, transport = self.connect(Protocol())
        connection.readConnectionLost()
        self.assertTrue(transport.disconnecting)

    def test_halfCloseUnderTLS(self) -> None:
        """
        Under Twisted's TLS layer (C{haproxy:ssl:}, where the PROXY header
        comes before the handshake), a half-close closes the connection:
        the TLS layer copies the wrapper's interfaces, so it looks as if it
        took a half-close, but it passes the call back down to the wrapper.
        """
        options = ssl.CertificateOptions()
        factory = ProxyProtocolFactory(
            TLSMemoryBIOFactory(options, False, Factory.forProtocol(_Recorder))
        )
        connection = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 0))
        transport = StringTransport()
        connection.makeConnection(transport)
        connection.readConnectionLost()
        self.assertTrue(transport.disconnecting)
        connection, transport = factory.buildProtocol(None), StringTransport()
        connection.makeConnection(transport)
        connection.writeConnectionLost()
        self.assertFalse(transport.disconnecting)
