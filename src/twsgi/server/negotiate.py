# -*- test-case-name: tests.server.test_http2 -*-
"""
HTTP/2 through ALPN, with the limits of HTTP/1.1.

A TLS listener offers C{h2}, C{http/1.1} and C{http/1.0} in ALPN when the
C{http2} extra (C{hpack}, for twsgi's own HTTP/2 connection) is installed.
L{ChannelSwitch} starts every connection with the listener's HTTP/1.1
protocol; when the handshake chose
C{h2}, it hands the connection to a L{twsgi.server.http2.TwsgiH2Connection},
which enforces the same L{twsgi.http.limits.Limits}, timeouts and graceful
stop on every stream.

The pure half, which decides from a stream's decoded header block whether
the request may be served, is L{twsgi.http.h2head}.  Everything here runs in
the I/O thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from typing import Protocol as TypingProtocol

from OpenSSL import SSL
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from twsgi.http.h2head import PREFACE

_log = Logger(namespace="twsgi")

try:
    import hpack  # noqa: F401
except ImportError:
    HTTP2_AVAILABLE = False
else:
    HTTP2_AVAILABLE = True
"""
Whether HTTP/2 can be served here (C{hpack}, of the C{http2} extra, is
importable: twsgi's own connection does the rest).
"""

# http/1.0 last, as nginx offers it: a client that offers only it (curl
# --http1.0) would otherwise fail the handshake, which a client that offers
# none of these does (see twsgi.server.tls.protocolSelector).
HTTP11_ONLY = [b"http/1.1", b"http/1.0"]
WITH_HTTP2 = [b"h2", *HTTP11_ONLY]

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


def priorKnowledge(options: dict[str, str]) -> bool:
    """
    Whether a listener's options (see L{twsgi.server.forwarded.splitListener})
    ask for HTTP/2 by prior knowledge: C{;http2=prior-knowledge}.

    @raise ValueError: for another value of C{http2}, or without the
        C{http2} extra.
    """
    mode = options.get("http2")
    if mode is None:
        return False
    if mode != "prior-knowledge":
        raise ValueError(
            f"http2={mode!r}: the only value is http2=prior-knowledge "
            "(HTTP/2 without TLS; Upgrade: h2c is not supported)"
        )
    if not HTTP2_AVAILABLE:
        raise ValueError(
            "http2=prior-knowledge needs the 'http2' extra (pip install 'twsgi[http2]')"
        )
    return True


class ConnectionProtocol(TypingProtocol):
    """
    What the switch asks of the protocol it hands a connection to.
    """

    def makeConnection(self, transport: Any) -> None:
        """
        Take the connection.
        """

    def dataReceived(self, data: bytes) -> None:
        """
        Bytes arrived.
        """

    def connectionLost(self, reason: Failure) -> None:
        """
        The connection is gone.
        """


class Http1Protocol(ConnectionProtocol, TypingProtocol):
    """
    The listener's HTTP/1.1 protocol, as the switch makes it.
    """

    def handOver(self) -> None:
        """
        The connection goes to HTTP/2: stop every timer, and stop being
        the transport's producer.
        """


@implementer(IHalfCloseableProtocol)
class ChannelSwitch(Protocol):
    """
    The protocol of every connection of a listener: it runs the listener's
    HTTP/1.1 protocol, made by C{http1} when the connection is made, and
    passes everything on to it.  If the first bytes arrive on a TLS
    connection whose handshake chose C{h2} (the transport's public
    C{negotiatedProtocol}), it stops that protocol (C{handOver}) before it
    saw a byte and hands the connection to a
    L{twsgi.server.http2.TwsgiH2Connection} instead, which replaces it in
    the site's connections (see C{TwsgiSite.connectionUpgraded}).  On a
    listener with HTTP/2 by prior knowledge (C{http2PriorKnowledge}, for
    cleartext C{h2c}), a connection that opens with the HTTP/2 connection
    preface (RFC 9113 section 3.3) is handed over the same way; any other
    is HTTP/1.1.  A half-close goes on to a protocol that takes one.  A
    connection that OpenSSL ended (a plain-HTTP request on a TLS port, a
    failed handshake) is reported to the site (C{tlsFailed}).

    @ivar site: the listener.
    @ivar current: the protocol that has the connection.
    """

    current: ConnectionProtocol
    transport: Any

    def __init__(self, site: Any, http1: Callable[[], Http1Protocol]) -> None:
        """
        @param site: the listener (a L{twsgi.server.site.TwsgiSite}).
        @param http1: makes the listener's HTTP/1.1 protocol, ready to be
            given the connection (C{makeConnection}).
        """
        self.site = site
        self._http1 = http1
        self._decided = False
        self._priorKnowledge = HTTP2_AVAILABLE and site.http2PriorKnowledge
        self._opening = b""

    def connectionMade(self) -> None:
        self.current = self._first = self._http1()
        self.current.makeConnection(self.transport)

    def dataReceived(self, data: bytes) -> None:
        if not self._decided:
            if (
                HTTP2_AVAILABLE
                and getattr(self.transport, "negotiatedProtocol", None) == b"h2"
            ):
                self._switch()
            elif self._priorKnowledge:
                data = self._opening = self._opening + data
                if len(data) < len(PREFACE) and PREFACE.startswith(data):
                    # Too little yet to tell HTTP/2 from HTTP/1.1.
                    return
                self._opening = b""
                if data.startswith(PREFACE):
                    self._switch()
            self._decided = True
        self.current.dataReceived(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if isinstance(reason.value, SSL.Error):
            self.site.tlsFailed(self.transport, reason.value)
        self.current.connectionLost(reason)

    def readConnectionLost(self) -> None:
        """
        The client half-closed: tell the protocol, or close if it cannot
        answer a half-closed client.
        """
        current = self.current
        if IHalfCloseableProtocol.providedBy(current):
            current.readConnectionLost()  # type: ignore[attr-defined]
        else:
            self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        current = self.current
        if IHalfCloseableProtocol.providedBy(current):
            current.writeConnectionLost()  # type: ignore[attr-defined]

    def _switch(self) -> None:
        from twsgi.server.http2 import TwsgiH2Connection

        old = self._first
        old.handOver()
        new = TwsgiH2Connection(self.site)
        self.current = new
        new.makeConnection(self.transport)
        self.site.connectionUpgraded(old, new)


__all__ = [
    "HTTP2_AVAILABLE",
    "ChannelSwitch",
    "alpnProtocols",
    "priorKnowledge",
]
