"""
Tests for L{twsgi.server.negotiate}: which protocol a connection of a
listener speaks, HTTP/2 by ALPN or by prior knowledge (cleartext C{h2c}),
or HTTP/1.1.
"""

from __future__ import annotations

import h2.config
import h2.connection
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.h2wire import PendingApp
from twsgi.config.resolve import resolveConfig
from twsgi.lifecycle.build import EndpointError, listenersFromConfig
from twsgi.server.http1 import TwsgiChannel
from twsgi.server.http2 import TwsgiH2Connection
from twsgi.server.negotiate import priorKnowledge
from twsgi.server.site import TwsgiSite


def _preface() -> bytes:
    """
    What an HTTP/2 client sends first: the preface and its SETTINGS, and a
    GET of C{/h2}.
    """
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    client.send_headers(
        1,
        [
            (":method", "GET"),
            (":scheme", "http"),
            (":authority", "localhost"),
            (":path", "/h2"),
        ],
        end_stream=True,
    )
    return client.data_to_send()


class PriorKnowledgeTests(SynchronousTestCase):
    """
    A listener with C{;http2=prior-knowledge} serves a connection that opens
    with the HTTP/2 preface over HTTP/2, and any other over HTTP/1.1.
    """

    def connect(
        self, priorKnowledge: bool = True
    ) -> tuple[TwsgiSite, PendingApp, object]:
        resource = PendingApp()
        site = TwsgiSite(
            resource, MemoryReactorClock(), http2PriorKnowledge=priorKnowledge
        )
        protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1234))
        protocol.makeConnection(StringTransport())
        return site, resource, protocol

    def test_preface(self) -> None:
        """
        The preface, even a byte at a time, hands the connection to HTTP/2,
        which serves the request over cleartext.
        """
        site, resource, protocol = self.connect()
        for i, byte in enumerate(_preface()):
            protocol.dataReceived(bytes([byte]))  # type: ignore[attr-defined]
            if i < 23:
                self.assertIsInstance(list(site.connections)[0], TwsgiChannel)
        (connection,) = site.connections
        self.assertIsInstance(connection, TwsgiH2Connection)
        self.assertEqual([r.path for r in resource.requests], [b"/h2"])
        self.assertFalse(resource.requests[0].isSecure())

    def test_http11(self) -> None:
        """
        An HTTP/1.1 request, even one whose first bytes could begin the
        preface, is served over HTTP/1.1.
        """
        site, resource, protocol = self.connect()
        protocol.dataReceived(b"P")  # type: ignore[attr-defined]
        protocol.dataReceived(
            b"UT /one HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"
        )  # type: ignore[attr-defined]
        (channel,) = site.connections
        self.assertIsInstance(channel, TwsgiChannel)
        self.assertEqual([r.path for r in resource.requests], [b"/one"])

    def test_withoutOption(self) -> None:
        """
        Without the option, the preface goes to HTTP/1.1 (which refuses it).
        """
        site, resource, protocol = self.connect(priorKnowledge=False)
        protocol.dataReceived(_preface())  # type: ignore[attr-defined]
        (channel,) = site.connections
        self.assertIsInstance(channel, TwsgiChannel)
        self.assertEqual(resource.requests, [])

    def test_option(self) -> None:
        """
        C{;http2=prior-knowledge} is the only value of the option; another
        is one line naming the listener at startup.
        """
        self.assertTrue(priorKnowledge({"http2": "prior-knowledge"}))
        self.assertFalse(priorKnowledge({}))
        config = resolveConfig({"endpoint": ("tcp:0;http2=h2c",)}, {})
        with self.assertRaises(EndpointError) as caught:
            listenersFromConfig(config, MemoryReactorClock())
        message = str(caught.exception)
        self.assertIn("'tcp:0;http2=h2c'", message)
        self.assertIn("http2=prior-knowledge", message)
        self.assertIn("Upgrade: h2c is not supported", message)
        self.assertNotIn("\n", message)
