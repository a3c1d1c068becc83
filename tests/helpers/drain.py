"""
Doubles for drain and connection tests: a thread pool the test runs by hand,
and a harness of one in-memory server with its drain.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer

from twsgi.lifecycle.drain import Drain
from twsgi.testing import MemoryServer, MemoryTransport

REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


class ManualPool:
    """
    A thread pool whose work runs only when the test says so.
    """

    def __init__(self) -> None:
        self.work: list[Callable[[], Any]] = []

    def callInThread(self, f: Callable[..., Any], *args: Any) -> None:
        self.work.append(lambda: f(*args))

    def runAll(self) -> None:
        work, self.work = self.work, []
        for item in work:
            item()


class Body:
    """
    An application iterable that records C{close()}.
    """

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.closed = False

    def __iter__(self) -> Any:
        return iter(self.chunks)

    def close(self) -> None:
        self.closed = True


class Harness:
    """
    A L{MemoryServer} whose application runs on a L{ManualPool}, and a
    L{Drain} over its site.
    """

    def __init__(self, **drainArgs: Any) -> None:
        self.bodies: list[Body] = []

        def app(environ: Any, start_response: Any) -> Body:
            start_response("200 OK", [("Content-Length", "2")])
            body = Body([b"o", b"k"])
            self.bodies.append(body)
            return body

        self.server = MemoryServer(app)
        self.pool = ManualPool()
        self.server.resource.threadpool = self.pool
        self.clock = self.server.reactor
        self.listening = True
        self.stopListeningCalls = 0
        self.threadsStopped: defer.Deferred[None] = defer.Deferred()
        self.threadStops = 0

        def stopListening() -> defer.Deferred[None]:
            self.stopListeningCalls += 1
            self.listening = False
            return defer.succeed(None)

        def stopThreads() -> defer.Deferred[None]:
            self.threadStops += 1
            return self.threadsStopped

        drainArgs.setdefault("gracefulTimeout", 10.0)
        self.drain = Drain(
            self.clock,
            lambda: [self.server.site.connections],
            stopListening,
            stopThreads,
            **drainArgs,
        )

    def inFlight(self) -> Any:
        """
        A connection with one request in flight.
        """
        protocol, transport = self.server.connect()
        protocol.dataReceived(REQUEST)
        return protocol, transport

    def served(self, transportType: type[MemoryTransport] = MemoryTransport) -> Any:
        """
        A keep-alive connection that got one response and is idle.
        """
        protocol, transport = self.connect(transportType)
        protocol.dataReceived(REQUEST)
        self.pool.runAll()
        transport.clear()
        return protocol, transport

    def connect(self, transportType: type[MemoryTransport]) -> Any:
        """
        A new connection over a transport of C{transportType}.
        """
        transport = transportType()
        protocol = self.server.site.buildProtocol(transport.getPeer())
        transport.protocol = protocol
        protocol.makeConnection(transport)
        return protocol, transport
