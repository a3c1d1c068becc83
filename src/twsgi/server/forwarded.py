# -*- test-case-name: tests.server.test_forwarded -*-
"""
Trusted proxies: C{X-Forwarded-*} and RFC 7239 C{Forwarded}, believed only
from the peers an operator names.

The trust model: a request's peer is the address that opened the TCP
connection (or, on a C{haproxy:} endpoint, the client the PROXY header
names).  If that peer is in the listener's C{forwarded-allow-ips}, the
forwarding headers say who the client is (C{REMOTE_ADDR}), which scheme it
used (C{wsgi.url_scheme}), and which host and port it asked for
(C{HTTP_HOST}, C{SERVER_NAME}, C{SERVER_PORT}).  From any other peer these
headers are removed before the application sees them, so that a client can
never pretend to be someone else.

When several proxies are chained, the client is found by walking the
C{X-Forwarded-For} (or C{Forwarded}) list from the right and skipping every
address that is itself trusted: the first untrusted address is the client.

L{ProxyPolicy.decide} is pure; L{applyForwarding} carries the decision out
on a C{twisted.web} request, in the I/O thread.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from typing import Any

import attrs
from twisted.internet.address import IPv4Address, IPv6Address

from twsgi.http.abnf import HOST

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network

FORWARDING_HEADERS = (
    b"forwarded",
    b"x-forwarded-for",
    b"x-forwarded-proto",
    b"x-forwarded-host",
    b"x-forwarded-port",
)

FORWARDING_NAMES = frozenset(FORWARDING_HEADERS)

DEFAULT_ALLOW_IPS = "127.0.0.1,::1"


def parseAllowIps(value: str) -> tuple[_Network, ...] | None:
    """
    Parse a comma- or space-separated list of addresses and CIDR networks;
    C{*} trusts every peer (returned as C{None}); an empty text trusts none.

    @raise ValueError: naming the first entry that is not an address or a
        network.
    """
    networks = []
    for item in re.split(r"[,\s]+", value.strip()):
        if not item:
            continue
        if item == "*":
            return None
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or a CIDR network")
    return tuple(networks)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


@attrs.frozen
class Forwarding:
    """
    What trusted forwarding headers say about a request; C{None} where they
    say nothing (or nothing valid).

    @ivar client: the client's address.
    @ivar clientPort: the client's port.
    @ivar scheme: C{"http"} or C{"https"}.
    @ivar host: the host (and maybe C{:port}) the client asked for.
    @ivar port: the port the client connected to.
    """

    client: str | None = None
    clientPort: int | None = None
    scheme: str | None = None
    host: str | None = None
    port: int | None = None


def _split(values: Sequence[bytes]) -> list[str]:
    return [
        item.strip()
        for value in values
        for item in value.decode("latin-1").split(",")
        if item.strip()
    ]


def _forwardedElements(values: Sequence[bytes]) -> list[dict[str, str]]:
    """
    Parse RFC 7239 C{Forwarded} values into one dict per element.
    """
    elements = []
    for element in _split(values):
        pairs: dict[str, str] = {}
        for pair in element.split(";"):
            name, sep, value = pair.partition("=")
            if sep:
                pairs[name.strip().lower()] = value.strip().strip('"')
        elements.append(pairs)
    return elements


def _node(text: str) -> tuple[str | None, int | None]:
    """
    An RFC 7239 node (C{192.0.2.1}, C{"[2001:db8::1]:4711"}) or an
    X-Forwarded-For entry, as address and port; C{unknown} and obfuscated
    identifiers give C{None}.
    """
    port = None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, portText = text.partition(":")
        if portText.isdigit():
            port = int(portText)
    else:
        host = text
    address = _address(host)
    if address is None:
        return None, None
    return str(address), port if port is None or 0 < port < 65536 else None


@attrs.frozen
class ProxyPolicy:
    """
    Which peers may set forwarding headers, for one listener.

    @ivar trusted: the trusted networks, or C{None} to trust every peer.
    """

    trusted: tuple[_Network, ...] | None = attrs.field(
        factory=lambda: parseAllowIps(DEFAULT_ALLOW_IPS)
    )

    def trusts(self, peer: str) -> bool:
        """
        Whether C{peer} (an address text) is a trusted proxy.
        """
        if self.trusted is None:
            return True
        address = _address(peer)
        if address is None:
            return False
        return any(address in network for network in self.trusted)

    def _pick(self, nodes: list[str]) -> int:
        """
        The index of the client in a list of hops: the rightmost untrusted
        one, or the leftmost when every hop is trusted.
        """
        for index in range(len(nodes) - 1, -1, -1):
            address, _ = _node(nodes[index])
            if address is None or not self.trusts(address):
                return index
        return 0

    def decide(
        self, peer: str, headers: Iterable[tuple[bytes, bytes]]
    ) -> Forwarding | None:
        """
        What the forwarding headers of a request from C{peer} mean.

        @return: C{None} if C{peer} is not trusted (the headers must then be
            removed), else the L{Forwarding} they describe.
        """
        if not self.trusts(peer):
            return None
        byName: dict[bytes, list[bytes]] = {}
        for name, value in headers:
            lowered = name.lower()
            if lowered in FORWARDING_HEADERS:
                byName.setdefault(lowered, []).append(value)
        if b"forwarded" in byName:
            elements = _forwardedElements(byName[b"forwarded"])
            if not elements:
                return Forwarding()
            chosen = elements[self._pick([e.get("for", "unknown") for e in elements])]
            client, clientPort = _node(chosen.get("for", "unknown"))
            return _checked(
                client, clientPort, chosen.get("proto"), chosen.get("host"), None
            )
        nodes = _split(byName.get(b"x-forwarded-for", []))
        client = clientPort = None
        index = -1
        if nodes:
            index = self._pick(nodes)
            client, clientPort = _node(nodes[index])

        def matching(name: bytes) -> str | None:
            values = _split(byName.get(name, []))
            if not values:
                return None
            if nodes and len(values) == len(nodes):
                return values[index]
            return values[-1]

        port = matching(b"x-forwarded-port")
        return _checked(
            client,
            clientPort,
            matching(b"x-forwarded-proto"),
            matching(b"x-forwarded-host"),
            int(port) if port is not None and port.isdigit() else None,
        )


def _checked(
    client: str | None,
    clientPort: int | None,
    scheme: str | None,
    host: str | None,
    port: int | None,
) -> Forwarding:
    if scheme is not None:
        scheme = scheme.lower()
        if scheme not in ("http", "https"):
            scheme = None
    # A forwarded host becomes HTTP_HOST: the grammar of a Host header.
    if host is not None and not (
        host and HOST.match(host.encode("latin-1", "replace"))
    ):
        host = None
    if port is not None and not 0 < port < 65536:
        port = None
    return Forwarding(client, clientPort, scheme, host, port)


def applyForwarding(request: Any, policy: ProxyPolicy) -> None:
    """
    Carry out C{policy} on a C{twisted.web} request before it is rendered:
    believe the forwarding headers of a trusted peer, remove those of any
    other.  Called in the I/O thread.
    """
    headers = request.requestHeaders
    for name, _ in headers.getAllRawHeaders():
        if name.lower() in FORWARDING_NAMES:
            break
    else:
        # None of them: the common case, decided in one pass.
        return
    peer = request.getClientAddress()
    peerHost = str(getattr(peer, "host", "") or "")
    present = [
        (name, value)
        for name in FORWARDING_HEADERS
        for value in headers.getRawHeaders(name, ())
    ]
    if not present:
        return
    forwarding = policy.decide(peerHost, present)
    if forwarding is None:
        for name in FORWARDING_HEADERS:
            headers.removeHeader(name)
        return
    if forwarding.client is not None:
        kind = IPv6Address if ":" in forwarding.client else IPv4Address
        request.client = kind("TCP", forwarding.client, forwarding.clientPort or 0)
    if forwarding.scheme is not None:
        # Both ways: http from a proxy that re-encrypts a plain-HTTP
        # client's request on a TLS connection is http.
        request.forwardedScheme = forwarding.scheme
    if forwarding.host is not None or forwarding.port is not None:
        host = forwarding.host
        if host is None:
            host = headers.getRawHeaders(b"host", [b""])[0].decode("latin-1")
        if forwarding.port is not None:
            host = _withoutPort(host)
            if forwarding.scheme is not None:
                secure = forwarding.scheme == "https"
            else:
                secure = request.isSecure()
            if forwarding.port != (443 if secure else 80):
                host = f"{host}:{forwarding.port}"
        headers.setRawHeaders(b"host", [host.encode("latin-1")])


def _withoutPort(host: str) -> str:
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


LISTENER_OPTIONS = ("forwarded-allow-ips", "client-ca", "http2")


def listenerEndpoint(description: str) -> str:
    """
    The Twisted endpoint string of a listener description, without the
    twsgi options after it (see L{splitListener}), which it does not check.
    """
    return description.split(";", 1)[0].strip()


def splitListener(description: str) -> tuple[str, dict[str, str]]:
    """
    Split a listener description into its Twisted endpoint string and the
    twsgi options after it: C{ENDPOINT;name=value;name=value}.

    @raise ValueError: for an unknown option, one without C{=}, or one
        given twice.
    """
    rest = description.split(";")[1:]
    options: dict[str, str] = {}
    for item in rest:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in LISTENER_OPTIONS:
            raise ValueError(
                f"{item!r} is not a listener option (known: "
                f"{', '.join(LISTENER_OPTIONS)}, as ;name=value)"
            )
        if name in options:
            hint = ""
            if name == "forwarded-allow-ips":
                hint = (
                    f" (once only: it takes a list, as {name}={options[name]},{value})"
                )
            raise ValueError(f"{name}= is given twice{hint}")
        options[name] = value
    return listenerEndpoint(description), options


__all__ = [
    "DEFAULT_ALLOW_IPS",
    "FORWARDING_HEADERS",
    "Forwarding",
    "ProxyPolicy",
    "applyForwarding",
    "listenerEndpoint",
    "parseAllowIps",
    "splitListener",
]
