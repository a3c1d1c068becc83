# -*- test-case-name: tests.server.test_http2 -*-
"""
HTTP/2 through ALPN, with the limits of HTTP/1.1.

A TLS listener offers C{h2} and C{http/1.1} in ALPN when the C{http2} extra
(C{h2}, the HTTP/2 state machine C{twisted.web} itself uses) is installed.
L{ChannelSwitch} starts every connection as a strict
L{twsgi.server.http1.TwsgiChannel}; when the handshake chose C{h2}, it hands the
connection to a L{twsgi.server.http2.TwsgiH2Connection}, which enforces
the same L{Limits}, timeouts and graceful stop on every stream.

The pure half, which decides from a stream's decoded header block whether
the request may be served, is L{twsgi.http.h2head}.  Everything here runs in
the I/O thread.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.logger import Logger
from twisted.web import http
from zope.interface import implementer

_log = Logger(namespace="twsgi")

HTTP2_AVAILABLE: bool = bool(getattr(http, "H2_ENABLED", False))
"""
Whether C{twisted.web} can speak HTTP/2 here (C{h2} and C{priority} are
importable).
"""

HTTP11_ONLY = [b"http/1.1"]
WITH_HTTP2 = [b"h2", b"http/1.1"]

_said: list[bool] = []


def alpnProtocols(enabled: bool, available: bool = HTTP2_AVAILABLE) -> list[bytes]:
    """
    The protocols a TLS listener offers in ALPN, most preferred first.

    @param enabled: C{False} when the operator turned HTTP/2 off.
    @param available: whether HTTP/2 can be served at all.
    """
    if enabled and not available:
        if not _said:
            _said.append(True)
            _log.info(
                "twsgi: TLS listeners serve HTTP/1.1 only: HTTP/2 needs the "
                "'http2' extra (pip install 'twsgi[http2]')"
            )
        return list(HTTP11_ONLY)
    return list(WITH_HTTP2 if enabled else HTTP11_ONLY)


@implementer(IHalfCloseableProtocol)
class ChannelSwitch(http._GenericHTTPChannelProtocol):  # type: ignore[misc]
    """
    C{twisted.web}'s protocol switch, handing a connection whose TLS
    handshake chose C{h2} to a L{twsgi.server.http2.TwsgiH2Connection}
    (with its listener's limits, clock and graceful stop) instead of
    C{twisted.web}'s own.  It passes a half-close on to a channel that
    takes one (L{twsgi.server.http1.TwsgiChannel}).  Called in the I/O thread.
    """

    _negotiatedProtocol: Any
    _callLater: Any

    def dataReceived(self, data: bytes) -> None:
        if self._negotiatedProtocol is not None:
            # Decided: what twisted.web's switch does then, one call less.
            self._channel.dataReceived(data)
            return
        if HTTP2_AVAILABLE:
            transport = self._channel.transport
            if getattr(transport, "negotiatedProtocol", None) == b"h2":
                self._switch(transport)
        super().dataReceived(data)

    def readConnectionLost(self) -> None:
        """
        The client half-closed: tell the channel, or close if it cannot
        answer a half-closed client.
        """
        channel = self._channel
        if IHalfCloseableProtocol.providedBy(channel):
            channel.readConnectionLost()
        else:
            channel.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        channel = self._channel
        if IHalfCloseableProtocol.providedBy(channel):
            channel.writeConnectionLost()

    def _switch(self, transport: Any) -> None:
        from twsgi.server.http2 import TwsgiH2Connection

        old = self._channel
        site = self._site
        # Stops the HTTP/1.1 channel's timers and its drain grace, and its
        # being the transport's producer.
        old.handOver()
        reactor = getattr(site, "reactor", None)
        new = TwsgiH2Connection(old.limits, reactor)
        new.requestFactory = self._requestFactory
        new.site = site
        new.factory = self._factory
        new.callLater = self._callLater or getattr(reactor, "callLater", None)
        new.timeOut = None
        self._channel = new
        self._negotiatedProtocol = b"h2"
        new.makeConnection(transport)
        transport.registerProducer(new, True)
        upgraded = getattr(site, "connectionUpgraded", None)
        if upgraded is not None:
            upgraded(old, new)


__all__ = [
    "HTTP2_AVAILABLE",
    "ChannelSwitch",
    "alpnProtocols",
]
