"""
Tests for L{twsgi.wsgi.webrequest}: L{twsgi.WSGIResource} in a plain
C{twisted.web} site, through the public API of its requests.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.server import Site

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
