# -*- test-case-name: tests.server.test_proxyprotocol -*-
"""
C{haproxy:} listeners: the PROXY protocol on a connection, on Twisted's
public L{policies.ProtocolWrapper}.

L{ProxyProtocolFactory} wraps a protocol factory; each connection reads the
PROXY header first (with L{twsgi.server.proxyheader}, split across reads or
not), then hands every later byte to the wrapped protocol, whose transport
gives the client the header names as C{getPeer()} and the address it
connected to as C{getHost()}.  A header that names no IP address (C{PROXY
UNKNOWN}, a health check's version 2 LOCAL header, a version 2 UNIX one, an
address that is no IP address of the header's family) leaves the
connection's own.  Anything that is no header closes
the connection quietly, with one line in the server log.  A half-close
passes on to a wrapped protocol that takes one (not TLS: under a TLS layer,
as on C{haproxy:ssl:}, it closes).  Everything here runs in the I/O thread.
"""

from __future__ import annotations

from typing import Any, cast

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.interfaces import (
    IHalfCloseableProtocol,
    IProtocol,
)
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from zope.interface import implementer

from twsgi.logs.clock import TellsTime
from twsgi.logs.limited import LimitedLog
from twsgi.server.proxyheader import (
    InetAddress,
    ProxyHeader,
    ProxyHeaderError,
    ProxyHeaderParser,
)

_log = Logger(namespace="twsgi")


SocketAddress = IPv4Address | IPv6Address | UNIXAddress


def _twistedAddress(address: InetAddress) -> IPv4Address | IPv6Address:
    kind = IPv4Address if address.version == 4 else IPv6Address
    return kind(address.transport, address.host, address.port)  # type: ignore[arg-type]


@implementer(IHalfCloseableProtocol)
class ProxyProtocolWrapper(ProtocolWrapper):
    """
    A connection that starts with a PROXY header.

    @ivar header: the header, once read.
    @ivar parser: reads the header; C{None} once it is read or refused.
    """

    factory: ProxyProtocolFactory

    def __init__(
        self, factory: WrappingFactory[ProxyProtocolWrapper], wrappedProtocol: IProtocol
    ) -> None:
        super().__init__(factory, wrappedProtocol)
        self.header: ProxyHeader | None = None
        self.parser: ProxyHeaderParser | None = ProxyHeaderParser()

    def dataReceived(self, data: bytes) -> None:
        """
        Read the header, then pass the bytes on.
        """
        wrapped: Any = self.wrappedProtocol
        if self.header is not None:
            wrapped.dataReceived(data)
            return
        if self.parser is None:
            return  # refused: closing
        try:
            parsed = self.parser.feed(data)
        except ProxyHeaderError as e:
            self.parser = None
            peer = self.getPeer()
            self.factory.refusals.info(
                "PROXY protocol: closed a connection from {peer} without a "
                "valid header ({reason})",
                peer=getattr(peer, "host", peer),
                reason=str(e),
            )
            self.loseConnection()
            return
        if parsed is None:
            return
        self.header, rest = parsed
        self.parser = None
        if rest:
            wrapped.dataReceived(rest)

    def getPeer(self) -> SocketAddress:
        """
        The client the PROXY header names, else the connection's own peer.
        """
        if self.header is not None and self.header.source is not None:
            return _twistedAddress(self.header.source)
        transport: Any = self.transport
        return transport.getPeer()  # type: ignore[no-any-return]

    def getHost(self) -> SocketAddress:
        """
        The address the client connected to, as the PROXY header names it,
        else the connection's own.
        """
        if self.header is not None and self.header.destination is not None:
            return _twistedAddress(self.header.destination)
        transport: Any = self.transport
        return transport.getHost()  # type: ignore[no-any-return]

    def readConnectionLost(self) -> None:
        """
        The peer half-closed: tell the wrapped protocol if it takes a
        half-close, else close.
        """
        wrapped: Any = self.wrappedProtocol
        if _takesHalfClose(wrapped):
            wrapped.readConnectionLost()
        else:
            self.loseConnection()

    def writeConnectionLost(self) -> None:
        """
        Our side of the connection is shut: tell the wrapped protocol if it
        takes a half-close.
        """
        wrapped: Any = self.wrappedProtocol
        if _takesHalfClose(wrapped):
            wrapped.writeConnectionLost()


def _takesHalfClose(protocol: IProtocol) -> bool:
    """
    Whether a protocol's class takes a half-close.  Not what the protocol
    itself provides: Twisted's TLS layer (under which this wrapper is, on
    C{haproxy:ssl:}) provides every interface of its transport, this
    wrapper's too, and would hand the call back down to it.
    """
    return IHalfCloseableProtocol.implementedBy(type(protocol))


class ProxyProtocolFactory(WrappingFactory):
    """
    Wraps a protocol factory's connections in L{ProxyProtocolWrapper}.

    @ivar refusals: the server-log lines about connections without a valid
        header.
    """

    protocol = ProxyProtocolWrapper
    # twsgi logs its own "listening on" and "stopped listening" lines.
    noisy = False

    def __init__(self, wrappedFactory: Any, clock: TellsTime | None = None) -> None:
        """
        @param wrappedFactory: makes the protocol of each connection.
        @param clock: tells the time for L{refusals}; the reactor if
            C{None}.
        """
        super().__init__(wrappedFactory)
        if clock is None:
            from twisted.internet import reactor

            clock = cast(TellsTime, reactor)
        self.refusals = LimitedLog(
            clock, _log, "connections without a valid PROXY header"
        )

    def logPrefix(self) -> str:
        """
        The wrapped factory's log prefix, marked as behind the PROXY
        protocol.
        """
        inner = getattr(self.wrappedFactory, "logPrefix", None)
        name = inner() if callable(inner) else type(self.wrappedFactory).__name__
        return f"{name} (PROXY)"


__all__ = ["ProxyProtocolFactory", "ProxyProtocolWrapper"]
