# -*- test-case-name: tests.server.test_endpoints -*-
"""
Endpoint strings turned into listeners: the endpoint that owns the listening
socket, and the layers put around each connection it accepts (TLS for
C{ssl:} and C{tls:}, the PROXY protocol for C{haproxy:}).

Both parts are built from public constructors, never read back out of a
Twisted endpoint: a supervisor binds the socket part alone, and a worker
puts the layers back around the socket it inherited (see
L{twsgi.server.inherit}).  C{tcp:}, C{tcp6:}, C{unix:} and C{systemd:}
socket parts are built by L{serverFromString}, in Twisted's words for any
error; C{ssl:} and C{tls:} are read here (L{twsgi.server.tls.sslListen},
L{twsgi.server.tls.tlsListen}) into a TCP port and a TLS layer; any other
endpoint type (an installed plugin) is built by L{serverFromString} whole,
and cannot be shared with workers.

A load balancer sends the PROXY header in clear, before the TLS handshake,
so C{haproxy:} layers go under TLS: socket, PROXY header, TLS, HTTP.  The
TLS layer then wraps the site itself, and offers the site's protocols
(HTTP/2) in ALPN; it answers a plain-HTTP request in clear (see
L{twsgi.server.plainhttp}).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Protocol

from attrs import frozen
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ServerEndpoint, serverFromString
from twisted.internet.interfaces import IStreamServerEndpoint
from zope.interface import implementer

from twsgi.server.endpoints import (
    checkAddress,
    endpointType,
    unwrapped,
    withBacklog,
)
from twsgi.server.plainhttp import PlainHTTPAnsweringTLSFactory
from twsgi.server.proxyprotocol import ProxyProtocolFactory
from twsgi.server.tls import (
    PROFILES,
    TLSProfile,
    defaultUnixMode,
    filesError,
    sslListen,
    tlsListen,
)

FactoryWrapper = Callable[[Any], Any]
"""
Wraps a protocol factory (an L{IProtocolFactory}) in one layer.
"""


class ServerEndpoint(Protocol):
    """
    What twsgi uses of an L{IStreamServerEndpoint}.
    """

    def listen(self, protocolFactory: Any) -> Deferred[Any]:
        """
        Listen, each connection made by C{protocolFactory}.
        """


_SHARED = ("tcp", "tcp6", "unix", "ssl", "systemd")
"""
The endpoint types whose socket a supervisor can bind for its workers.
"""


def _wrapped(layers: tuple[FactoryWrapper, ...], factory: Any) -> Any:
    for layer in layers:
        factory = layer(factory)
    return factory


@implementer(IStreamServerEndpoint)
@frozen
class Listener:
    """
    A server endpoint in two parts: the endpoint that owns the listening
    socket, and the layers around each accepted connection.

    @ivar socket: the endpoint of the listening socket alone.
    @ivar layers: each wraps the protocol factory in one layer, the
        innermost first.
    @ivar shared: a supervisor can bind the socket for its workers.
    """

    socket: ServerEndpoint
    layers: tuple[FactoryWrapper, ...] = ()
    shared: bool = False

    def wrap(self, factory: Any) -> Any:
        """
        Wrap a protocol factory in every layer.
        """
        return _wrapped(self.layers, factory)

    def listen(self, protocolFactory: Any) -> Deferred[Any]:
        """
        Listen on the socket, each connection in every layer.
        """
        return self.socket.listen(self.wrap(protocolFactory))


def parseListener(
    reactor: Any,
    description: str,
    clientCA: str | None = None,
    tls: TLSProfile = PROFILES["intermediate"],
) -> Listener:
    """
    Split an endpoint string into its socket part and its layers.

    @param clientCA: for an C{ssl:} listener, the PEM file of the CA that
        signs client certificates (see L{sslListen}).
    @param tls: for an C{ssl:} or C{tls:} listener, its profile where its
        endpoint string names none (see L{sslListen}).
    @raise ValueError: for C{clientCA} on another endpoint type, or for a
        certificate or key that cannot be used.
    @raise Exception: whatever L{serverFromString} raises for the others.
    """
    inner = unwrapped(description)
    # One PROXY protocol layer for each haproxy: prefix, under TLS.
    proxied = (len(description) - len(inner)) // len("haproxy:")
    layers: tuple[FactoryWrapper, ...] = (
        functools.partial(ProxyProtocolFactory, clock=reactor),
    ) * proxied
    description = inner
    kind = endpointType(description)
    if clientCA is not None and kind != "ssl":
        raise ValueError("client-ca= needs an ssl: endpoint")
    if kind in ("ssl", "tls"):
        listen = (
            sslListen(description, clientCA, tls)
            if kind == "ssl"
            else tlsListen(description, tls)
        )
        return Listener(
            TCP4ServerEndpoint(reactor, listen.port, listen.backlog, listen.interface),
            (
                functools.partial(PlainHTTPAnsweringTLSFactory, listen.options, False),  # type: ignore[arg-type]
                *layers,
            ),
            shared=True,
        )
    return Listener(
        serverFromString(reactor, description), layers, shared=kind in _SHARED
    )


def buildEndpoint(
    reactor: Any,
    description: str,
    clientCA: str | None = None,
    tls: TLSProfile = PROFILES["intermediate"],
) -> Listener:
    """
    Build a listener from its endpoint string, with the listen backlog
    L{twsgi.server.endpoints.DEFAULT_BACKLOG} unless it names one, and a
    C{unix:} socket's mode L{twsgi.server.tls.UNIX_MODE} unless it names
    one.  Check its port and a TLS one's certificate and key (or C{tls:}
    directory) at once, so that a port out of range, a missing file or a
    key that does not match its certificate is one line at startup, not an
    error when it listens or on the first connection.

    @param clientCA: see L{parseListener}.
    @param tls: see L{parseListener}.
    @raise ValueError: with that line.
    """
    checkAddress(description)
    try:
        return parseListener(
            reactor, withBacklog(defaultUnixMode(description)), clientCA, tls
        )
    except Exception as e:
        error = filesError(e)
        if error is None:
            raise
        raise error from None


__all__ = [
    "FactoryWrapper",
    "Listener",
    "ServerEndpoint",
    "buildEndpoint",
    "parseListener",
]
