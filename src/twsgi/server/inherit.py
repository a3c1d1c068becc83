# -*- test-case-name: tests.process.test_workers -*-
"""
Listening sockets that a supervisor binds once and its workers inherit.

A listener is a listening socket plus layers around each accepted
connection: TLS (C{ssl:}) and the PROXY protocol (C{haproxy:}); see
L{twsgi.server.listeners}.  L{splitEndpoint} takes the two apart.
The supervisor listens with the socket part only and never accepts; each
worker re-parses the same endpoint string (so certificates are read anew on
every reload), adopts the inherited descriptor, and puts the layers back
with L{InheritedEndpoint}.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IStreamServerEndpoint
from zope.interface import implementer

from twsgi.server.endpoints import endpointType
from twsgi.server.listeners import (
    FactoryWrapper,
    Listener,
    ServerEndpoint,
    buildEndpoint,
)
from twsgi.server.ports import ListeningPort, adoptedPort


def splitEndpoint(endpoint: object) -> tuple[ServerEndpoint, FactoryWrapper]:
    """
    Split a listener (see L{twsgi.server.listeners.buildEndpoint}) into the
    endpoint that owns the listening socket and a function that wraps a
    protocol factory in every layer it adds to accepted connections.

    @raise ValueError: for an endpoint whose socket cannot be shared.
    """
    if isinstance(endpoint, Listener) and endpoint.shared:
        return endpoint.socket, endpoint.wrap
    name = type(getattr(endpoint, "socket", endpoint)).__name__
    raise ValueError(
        f"{name} endpoints cannot be shared with worker processes; use tcp:, "
        "tcp6:, ssl:, unix:, systemd: or haproxy:"
    )


def _layersOnly(description: str) -> str:
    """
    The endpoint string to parse in a worker for its layers only.  A
    C{systemd:} socket part is replaced by C{tcp:0}: it adds no layer, and
    only the process systemd started (the supervisor) may look up its
    descriptors.
    """
    index = description.find("systemd:")
    if index == 0 or (index > 0 and description[index - 1] == ":"):
        return description[:index] + "tcp:0"
    return description


@implementer(IStreamServerEndpoint)
class InheritedEndpoint:
    """
    In a worker: listen on an inherited socket, with the layers of the
    endpoint string it was bound for.
    """

    def __init__(
        self,
        reactor: Any,
        description: str,
        fileno: int,
        parse: Callable[[Any, str], Any] = buildEndpoint,
    ) -> None:
        """
        @param reactor: the worker's reactor.
        @param description: the endpoint string the supervisor bound.
        @param fileno: the inherited listening socket.
        @param parse: builds the endpoint whose layers to use (the same
            builder as a single process uses, so TLS options such as client
            certificates apply in workers too).
        """
        self.reactor = reactor
        self.description = description
        self.fileno = fileno
        _, self.wrap = splitEndpoint(parse(reactor, _layersOnly(description)))

    def listen(self, factory: Any) -> defer.Deferred[ListeningPort]:
        """
        Accept on the inherited socket as it is: its backlog stays the
        supervisor's, and a UNIX socket's file keeps its mode and is not
        removed, since the supervisor owns it.  The supervisor refuses new
        connections on a socket it made (not on one systemd passed on) as
        it stops its workers.
        """
        return defer.execute(
            adoptedPort,
            self.reactor,
            self.fileno,
            self.wrap(factory),
            # Not a systemd socket: the supervisor owns it (as it decides,
            # see twsgi.server.listeners.buildEndpoint).
            ownerRefuses=endpointType(self.description) != "systemd",
        )


__all__ = ["InheritedEndpoint", "splitEndpoint"]
