"""
Tests for L{twsgi.server.forwarded}: trusted forwarding headers and the PROXY
protocol.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.resource import Resource
from zope.interface import alsoProvides

from tests.helpers.rawhttp import LoopbackServer, connect, exchange
from twsgi.config.model import ServerConfig
from twsgi.lifecycle.service import TwsgiService
from twsgi.server.forwarded import Forwarding, ProxyPolicy, parseAllowIps, splitListener
from twsgi.server.listeners import buildEndpoint
from twsgi.server.site import TwsgiSite
from twsgi.testing import SynchronousReactor, parseResponses

XFF = (
    b"GET /p HTTP/1.1\r\nHost: inner.example:8000\r\n"
    b"X-Forwarded-For: 203.0.113.9, 127.0.0.1\r\nX-Forwarded-Proto: https\r\n"
    b"X-Forwarded-Host: www.example.com\r\nX-Forwarded-Port: 8443\r\n\r\n"
)


class ParseTests(SynchronousTestCase):
    """
    Tests for L{parseAllowIps} and L{splitListener}.
    """

    def test_allowIps(self) -> None:
        """
        Addresses and CIDR networks, separated by commas or spaces, are
        parsed; C{*} means every peer; an empty text trusts none.
        """
        networks = parseAllowIps("127.0.0.1, ::1 10.0.0.0/8")
        self.assertEqual(
            [str(n) for n in networks or ()], ["127.0.0.1/32", "::1/128", "10.0.0.0/8"]
        )
        self.assertIsNone(parseAllowIps("*"))
        self.assertEqual(parseAllowIps(""), ())

    def test_allowIpsBad(self) -> None:
        """
        An entry that is neither an address nor a network is refused, named.
        """
        error = self.assertRaises(ValueError, parseAllowIps, "10.0.0.0/8,proxy.local")
        self.assertIn("'proxy.local'", str(error))

    def test_splitListener(self) -> None:
        """
        Listener options follow the endpoint string after semicolons.
        """
        self.assertEqual(
            splitListener(
                "tcp:8000:interface=0.0.0.0;forwarded-allow-ips=10.0.0.0/8,::1"
            ),
            ("tcp:8000:interface=0.0.0.0", {"forwarded-allow-ips": "10.0.0.0/8,::1"}),
        )
        self.assertEqual(splitListener("unix:/tmp/s"), ("unix:/tmp/s", {}))
        self.assertRaises(ValueError, splitListener, "tcp:8000;colour=blue")

    def test_splitListenerTwice(self) -> None:
        """
        An option given twice is refused, naming it, rather than the last
        one silently winning: C{forwarded-allow-ips} takes a list instead.
        """
        error = self.assertRaises(
            ValueError,
            splitListener,
            "tcp:8000;forwarded-allow-ips=10.0.0.1;forwarded-allow-ips=10.0.0.2",
        )
        self.assertEqual(
            str(error),
            "forwarded-allow-ips= is given twice (once only: it takes a list, "
            "as forwarded-allow-ips=10.0.0.1,10.0.0.2)",
        )
        error = self.assertRaises(
            ValueError,
            splitListener,
            "tcp:0;http2=prior-knowledge;http2=prior-knowledge",
        )
        self.assertEqual(str(error), "http2= is given twice")

    def test_perListenerPolicy(self) -> None:
        """
        Each listener of a service gets its own policy: its own option, or
        the service-wide default.
        """
        config = ServerConfig(
            endpoint=(
                "tcp:0",
                "tcp:0;forwarded-allow-ips=*",
                "tcp:0;forwarded-allow-ips=",
            ),
            forwarded_allow_ips="192.0.2.0/24",
            access_log="none",
        )
        service = TwsgiService(config, lambda e, s: [], reactor=None)
        sites = [service.makeSite(d) for d in service.descriptions]
        self.assertEqual(
            [s.proxyPolicy.trusts("192.0.2.7") for s in sites], [True, True, False]
        )
        self.assertEqual(
            [s.proxyPolicy.trusts("127.0.0.1") for s in sites], [False, True, False]
        )


class DecideTests(SynchronousTestCase):
    """
    Tests for L{ProxyPolicy.decide}.
    """

    policy = ProxyPolicy(parseAllowIps("127.0.0.1,10.0.0.0/8"))

    def test_untrusted(self) -> None:
        """
        From an untrusted peer, nothing is believed.
        """
        self.assertIsNone(
            self.policy.decide("192.0.2.1", [(b"X-Forwarded-For", b"1.2.3.4")])
        )

    def test_chain(self) -> None:
        """
        The client is the rightmost address that is not a trusted proxy;
        proto and host come from the same hop when the lists line up.
        """
        self.assertEqual(
            self.policy.decide(
                "127.0.0.1",
                [
                    (b"X-Forwarded-For", b"6.6.6.6, 203.0.113.9, 10.1.1.1"),
                    (b"X-Forwarded-Proto", b"http, https, http"),
                ],
            ),
            Forwarding(client="203.0.113.9", scheme="https"),
        )

    def test_spoofedLeftmost(self) -> None:
        """
        An address a client put first in X-Forwarded-For is not believed.
        """
        forwarding = self.policy.decide(
            "127.0.0.1", [(b"X-Forwarded-For", b"10.0.0.5, 198.51.100.1")]
        )
        self.assertEqual(forwarding.client, "198.51.100.1")

    def test_forwarded(self) -> None:
        """
        RFC 7239 C{Forwarded} gives client, port, proto and host of one hop.
        """
        self.assertEqual(
            self.policy.decide(
                "10.2.3.4",
                [
                    (
                        b"Forwarded",
                        b'for="[2001:db8::1]:4711";proto=https;host=a.example',
                    )
                ],
            ),
            Forwarding(
                client="2001:db8::1", clientPort=4711, scheme="https", host="a.example"
            ),
        )

    def test_hostGrammar(self) -> None:
        """
        A forwarded host is believed exactly when it would be a valid Host
        header (L{twsgi.http.abnf.HOST}), and is not empty.
        """
        table = {
            "a.example:8443": True,
            "[2001:db8::1]:443": True,
            "[v1.fe]": True,
            "": False,
            "a.example/x": False,
            "user@a.example": False,
            "2001:db8::1": False,
            "caf\xe9.example": False,
        }
        for host, believed in table.items():
            forwarding = self.policy.decide(
                "127.0.0.1", [(b"X-Forwarded-Host", host.encode("latin-1"))]
            )
            self.assertEqual(forwarding.host, host if believed else None, host)

    def test_invalidValues(self) -> None:
        """
        Values that are not an address, a scheme, a host or a port are
        ignored.
        """
        self.assertEqual(
            self.policy.decide(
                "127.0.0.1",
                [
                    (b"X-Forwarded-For", b"not-an-ip"),
                    (b"X-Forwarded-Proto", b"gopher"),
                    (b"X-Forwarded-Host", b"a b/c"),
                    (b"X-Forwarded-Port", b"99999"),
                ],
            ),
            Forwarding(),
        )


class ApplyTests(SynchronousTestCase):
    """
    Forwarding headers as the application sees them.
    """

    def test_trustedPeer(self) -> None:
        """
        From a trusted peer, X-Forwarded-* set REMOTE_ADDR,
        wsgi.url_scheme, HTTP_HOST and SERVER_PORT.
        """
        protocol, transport, _, app = connect()
        protocol.dataReceived(XFF)
        seen = app.seen[0]
        self.assertEqual(seen["REMOTE_ADDR"], "203.0.113.9")
        self.assertEqual(seen["wsgi.url_scheme"], "https")
        self.assertEqual(seen["HTTP_HOST"], "www.example.com:8443")
        self.assertEqual(seen["SERVER_NAME"], "www.example.com")
        self.assertEqual(seen["SERVER_PORT"], "8443")

    def test_trustedHttpOverTLS(self) -> None:
        """
        On a TLS connection, a trusted proxy's C{X-Forwarded-Proto: http}
        (a load balancer that re-encrypts a plain-HTTP client's request)
        makes C{wsgi.url_scheme} C{http}, so that the application still
        redirects that client to HTTPS; the default port follows.
        """
        protocol, transport, _, app = connect()
        alsoProvides(transport, ISSLTransport)
        protocol.dataReceived(
            b"GET / HTTP/1.1\r\nHost: www.example.com\r\n"
            b"X-Forwarded-Proto: http\r\nX-Forwarded-Port: 80\r\n\r\n"
            b"GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n"
        )
        self.assertEqual(
            [(seen["wsgi.url_scheme"], seen["SERVER_PORT"]) for seen in app.seen],
            [("http", "80"), ("https", "443")],
        )

    def test_trustedSchemeIsSecure(self) -> None:
        """
        A trusted proxy's scheme also decides C{isSecure()} for the site's
        other C{twisted.web} resources, both ways: C{https} over plain TCP
        is secure, C{http} over TLS is not.
        """
        seen: list[bool] = []

        class Root(Resource):
            isLeaf = True

            def render_GET(self, request: Any) -> bytes:
                seen.append(request.isSecure())
                return b"ok"

        site = TwsgiSite(Root(), SynchronousReactor())
        for proto, tls in [(b"https", False), (b"http", True)]:
            protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5000))
            transport = StringTransport(
                peerAddress=IPv4Address("TCP", "127.0.0.1", 5000)
            )
            protocol.makeConnection(transport)
            if tls:
                alsoProvides(transport, ISSLTransport)
            protocol.dataReceived(
                b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: %s\r\n\r\n" % proto
            )
        self.assertEqual(seen, [True, False])

    def test_untrustedPeerStripped(self) -> None:
        """
        From an untrusted peer, every forwarding header is removed before
        the application sees the request, and nothing changes.
        """
        protocol, transport, _, app = connect(peer="192.0.2.50")
        protocol.dataReceived(XFF[:-2] + b"Forwarded: for=1.2.3.4;proto=https\r\n\r\n")
        seen = app.seen[0]
        self.assertEqual(seen["REMOTE_ADDR"], "192.0.2.50")
        self.assertEqual(seen["wsgi.url_scheme"], "http")
        self.assertEqual(seen["HTTP_HOST"], "inner.example:8000")
        self.assertEqual(
            [k for k in seen if "FORWARDED" in k],
            [],
            "forwarding headers reached the app",
        )

    def test_defaultTrustsLoopbackOnly(self) -> None:
        """
        The default policy trusts 127.0.0.1 and ::1 and nothing else.
        """
        policy = ProxyPolicy()
        self.assertEqual(
            [policy.trusts(a) for a in ("127.0.0.1", "::1", "127.0.0.2", "10.0.0.1")],
            [True, True, False, False],
        )


def _proxyV2(src: str, srcPort: int, dst: str, dstPort: int) -> bytes:
    body = (
        socket.inet_aton(src)
        + socket.inet_aton(dst)
        + struct.pack("!HH", srcPort, dstPort)
    )
    return (
        b"\r\n\r\n\x00\r\nQUIT\n"
        + bytes([0x21, 0x11])
        + struct.pack("!H", len(body))
        + body
    )


class HAProxyTests(TestCase):
    """
    A C{haproxy:} endpoint puts the client the PROXY header names in
    REMOTE_ADDR.
    """

    timeout = 20

    @defer.inlineCallbacks
    def setUp(self) -> Any:
        from twisted.internet import reactor

        self.reactor = reactor
        self.server = LoopbackServer(reactor)
        yield self.server.port.stopListening()
        endpoint = buildEndpoint(reactor, "haproxy:tcp:0:interface=127.0.0.1")
        self.server.port = yield endpoint.listen(self.server.site)
        self.server.portNumber = self.server.port.getHost().port
        self.addCleanup(self.server.stop)

    @defer.inlineCallbacks
    def check(self, header: bytes) -> Any:
        data, closed = yield exchange(
            self.reactor,
            self.server.portNumber,
            header + b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        self.assertEqual([r.code for r in parseResponses(data)], [200])
        self.assertEqual(self.server.app.seen[0]["REMOTE_ADDR"], "198.51.100.7")
        self.assertEqual(self.server.app.seen[0]["REMOTE_PORT"], "40000")

    def test_v1(self) -> None:
        """
        A PROXY protocol v1 header gives the real client.
        """
        return self.check(b"PROXY TCP4 198.51.100.7 127.0.0.1 40000 8000\r\n")

    def test_v2(self) -> None:
        """
        A PROXY protocol v2 header gives the real client.
        """
        return self.check(_proxyV2("198.51.100.7", 40000, "127.0.0.1", 8000))

    @defer.inlineCallbacks
    def test_addressesCanonical(self) -> Any:
        """
        The client address of a PROXY header reaches C{REMOTE_ADDR} in its
        canonical form (Twisted writes a v2 IPv6 address out in full, as
        C{2001:db8:0:0:0:0:0:9}); a v1 address that is no IP address at all
        is not believed, and the connection's own peer stands instead.
        """
        v6 = (
            socket.inet_pton(socket.AF_INET6, "2001:db8::9")
            + socket.inet_pton(socket.AF_INET6, "2001:db8::1")
            + struct.pack("!HH", 40000, 8000)
        )
        headers = [
            b"\r\n\r\n\x00\r\nQUIT\n"
            + bytes([0x21, 0x21])
            + struct.pack("!H", 36)
            + v6,
            b"PROXY TCP6 2001:DB8:0::9 2001:db8::1 40000 8000\r\n",
            b"PROXY TCP4 999.1.1.1 127.0.0.1 40000 8000\r\n",
            b"PROXY TCP4 1.2.3.4\x1b[31m 127.0.0.1 40000 8000\r\n",
        ]
        for header in headers:
            data, closed = yield exchange(
                self.reactor,
                self.server.portNumber,
                header + b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            )
            self.assertEqual([r.code for r in parseResponses(data)], [200])
        self.assertEqual(
            [seen["REMOTE_ADDR"] for seen in self.server.app.seen],
            ["2001:db8::9", "2001:db8::9", "127.0.0.1", "127.0.0.1"],
        )

    @defer.inlineCallbacks
    def test_v1Unknown(self) -> Any:
        """
        The bare v1 C{PROXY UNKNOWN} line (what HAProxy sends for a client
        on one of its UNIX-socket frontends; Twisted's parser dropped the
        connection) is served, with the connection's own peer.
        """
        data, closed = yield exchange(
            self.reactor,
            self.server.portNumber,
            b"PROXY UNKNOWN\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        self.assertEqual([r.code for r in parseResponses(data)], [200])
        self.assertEqual(self.server.app.seen[0]["REMOTE_ADDR"], "127.0.0.1")

    @defer.inlineCallbacks
    def test_v1PortNotANumber(self) -> Any:
        """
        A v1 header whose port is not a number closes the connection, as
        any other malformed header does: the request behind it never
        reaches the application, and no error is logged (Twisted's parser
        raised C{ValueError}, an unhandled error per connection).
        """
        for ports in (b"x 8000", b"40000 8000\nGET"):
            data, closed = yield exchange(
                self.reactor,
                self.server.portNumber,
                b"PROXY TCP4 198.51.100.7 127.0.0.1 " + ports + b"\r\n"
                b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            )
            self.assertEqual((data, closed), (b"", True))
        self.assertEqual(self.server.app.seen, [])
