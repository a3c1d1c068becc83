"""
Shared test doubles and helpers (moved from tests/server/test_http2.py).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.testing import StringTransport
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from twsgi.http.limits import Limits
from twsgi.server.http2 import TwsgiH2Connection
from twsgi.server.site import TwsgiSite
from twsgi.testing import SynchronousReactor
from twsgi.wsgi.bridge import WSGIResource


class PendingApp(Resource):
    """
    A resource that answers only when the test finishes its requests.
    """

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Any] = []
        self.bodies: list[bytes] = []
        # The requests whose connection (or stream) was lost first.
        self.lost: list[Any] = []

    def render(self, request: Any) -> Any:
        self.requests.append(request)
        self.bodies.append(request.content.read())
        request.notifyFinish().addErrback(lambda _: self.lost.append(request))
        return NOT_DONE_YET

    def finishAll(self) -> None:
        for request in self.requests:
            if request not in self.lost:
                request.write(b"done")
                request.finish()
        self.requests = []


class H2Wire:
    """
    What L{H2Client} takes for a socket: a L{TwsgiH2Connection} on a
    L{StringTransport}, driven by a L{MemoryReactorClock}.  C{recv} raises
    L{TimeoutError} at once when the server has nothing to say: it never
    waits, so give the client its default timeout, which then bounds only
    the real time a test's own steps take (a short one failed them on a
    busy machine, with the server's answer waiting to be read).
    """

    def __init__(
        self,
        limits: Limits,
        app: Any = None,
        pool: Any = None,
        clock: SynchronousReactor | None = None,
    ) -> None:
        self.clock = clock or SynchronousReactor()
        self.resource = PendingApp()
        resource: Any = self.resource
        if app is not None:
            resource = WSGIResource(self.clock, pool, app, appName="tests:app")
        self.site = TwsgiSite(resource, self.clock, limits=limits)
        server = self.server = TwsgiH2Connection(self.site)
        self.transport = StringTransport()
        server.makeConnection(self.transport)
        self.site.connections.add(server)

    def run(self) -> None:
        self.clock.advance(0)

    def sendall(self, data: bytes) -> None:
        self.server.dataReceived(data)
        self.run()

    def recv(self, size: int) -> bytes:
        self.run()
        data = self.transport.value()
        self.transport.clear()
        if data:
            return data
        if self.transport.disconnecting:
            return b""
        raise TimeoutError()

    def settimeout(self, timeout: float) -> None:
        pass

    def close(self) -> None:
        pass
