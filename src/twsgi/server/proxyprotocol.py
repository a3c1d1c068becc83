# -*- test-case-name: tests.server.test_forwarded -*-
"""
C{haproxy:} listeners (the PROXY protocol) that refuse every malformed
header the same way.

Twisted closes the connection on most malformed PROXY headers, but its v1
parser lets a port that is not a number (C{PROXY TCP4 a b x 80}, or a
header that runs into the request) raise L{ValueError} out of
C{dataReceived}: an unhandled error, with its traceback in the server log,
for every such connection.  It also takes any text between spaces for an
address (C{999.1.1.1}), and writes v2 IPv6 addresses out in full
(C{2001:db8:0:0:0:0:0:9}).  L{strictProxyEndpoint} gives a C{haproxy:}
endpoint a wrapper that closes the first kind of connection quietly, gives
addresses in their canonical form, and does not believe one that is no IP
address.  It also takes the bare C{PROXY UNKNOWN} line, which Twisted
drops.  Everything here runs in the I/O thread.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from twisted.internet import endpoints
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.protocols.haproxy._info import ProxyInfo
from twisted.protocols.haproxy._v1parser import V1Parser
from twisted.protocols.haproxy._wrapper import (
    HAProxyProtocolWrapper,
    HAProxyWrappingFactory,
)
from zope.interface import implementer


class _V1Parser(V1Parser):  # type: ignore[misc]
    """
    Twisted's v1 parser, which also takes the bare C{PROXY UNKNOWN} line
    that the specification allows and HAProxy sends where it has no client
    address (a health check with C{check-send-proxy}, a client on a UNIX
    socket): the connection's own addresses stand.
    """

    @classmethod
    def parse(cls, line: bytes) -> Any:
        if line == b"PROXY UNKNOWN":
            return ProxyInfo(line, None, None)
        return super().parse(line)


@implementer(IHalfCloseableProtocol)
class _StrictProxyProtocol(HAProxyProtocolWrapper):
    """
    A PROXY protocol wrapper that closes the connection on any header its
    parser cannot read, and passes a half-close on to the protocol it
    wraps (Twisted's wrapper turns one into the loss of the connection).
    """

    def readConnectionLost(self) -> None:
        """
        The peer half-closed: tell the wrapped protocol if it takes a
        half-close, else close.
        """
        wrapped: Any = self.wrappedProtocol
        if IHalfCloseableProtocol.providedBy(wrapped):
            wrapped.readConnectionLost()
        else:
            self.loseConnection()

    def writeConnectionLost(self) -> None:
        wrapped: Any = self.wrappedProtocol
        if IHalfCloseableProtocol.providedBy(wrapped):
            wrapped.writeConnectionLost()

    def dataReceived(self, data: bytes) -> None:
        if self._parser is None and self._proxyInfo is None:
            if len(data) >= 8 and data[:5] == V1Parser.PROXYSTR:
                self._parser = _V1Parser()
        try:
            super().dataReceived(data)
        except ValueError:
            if self._proxyInfo is not None:
                raise
            self.loseConnection()

    def getPeer(self) -> Any:
        """
        The client the PROXY header names, its address in canonical form;
        the connection's own peer if the header named no IP address.
        """
        return _canonical(super().getPeer(), self.transport)

    def getHost(self) -> Any:
        """
        The address the client connected to, as L{getPeer} gives the
        client.
        """
        return _canonical(super().getHost(), self.transport, host=True)


def _canonical(address: Any, transport: Any, host: bool = False) -> Any:
    text = getattr(address, "host", None)
    if not isinstance(address, (IPv4Address, IPv6Address)) or text is None:
        return address
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        return transport.getHost() if host else transport.getPeer()
    if str(parsed) == text:
        return address
    kind = IPv6Address if parsed.version == 6 else IPv4Address
    return kind(address.type, str(parsed), address.port)


class _StrictProxyFactory(HAProxyWrappingFactory):
    protocol = _StrictProxyProtocol  # type: ignore[assignment]
    # twsgi logs its own "listening on" and "stopped listening" lines.
    noisy = False


def strictProxyEndpoint(endpoint: Any) -> Any:
    """
    Give a C{haproxy:} endpoint (as Twisted's endpoint parser builds it)
    the strict wrapper; return any other endpoint as it is.
    """
    if (
        isinstance(endpoint, endpoints._WrapperServerEndpoint)
        and endpoint._wrapperFactory is HAProxyWrappingFactory
    ):
        endpoint._wrapperFactory = _StrictProxyFactory
    return endpoint


__all__ = ["strictProxyEndpoint"]
