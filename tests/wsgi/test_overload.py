"""
Tests for L{twsgi.wsgi.overload}: --max-connections and --max-pending.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from twisted.internet import defer, protocol, task
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.helpers.rawhttp import LoopbackServer, RecordingApp
from twsgi.server.ports import ConnectionGate
from twsgi.server.site import TwsgiSite
from twsgi.testing import SynchronousReactor, parseResponses
from twsgi.wsgi.bridge import WSGIResource
from twsgi.wsgi.overload import WARN_EVERY, backlog

GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


class _QueuingPool:
    """
    A pool that never runs its work and reports it as backlogged, like a
    twisted ThreadPool whose threads are all busy.
    """

    def __init__(self) -> None:
        self.queued: list[Any] = []
        self.max = 1
        self.working = [None]
        self.waiters: list[None] = []
        self.q = SimpleNamespace(qsize=lambda: len(self.queued))

    def callInThread(self, f: Any, *args: Any) -> None:
        self.queued.append(f)


def _requests(site: TwsgiSite, count: int) -> list[StringTransport]:
    """
    Send C{count} requests to C{site}, each on a connection of its own: the
    connections' transports.
    """
    transports = []
    for _ in range(count):
        channel = site.buildProtocol(None)
        transport = StringTransport()
        channel.makeConnection(transport)
        channel.dataReceived(GET)
        transports.append(transport)
    return transports


class MaxPendingTests(SynchronousTestCase):
    """
    Requests beyond C{maxPending} waiting for a thread get 503.
    """

    def test_queueFull(self) -> None:
        """
        Once C{maxPending} requests wait, the next gets 503 with
        C{Retry-After} and is not queued; the waiting ones are untouched.
        """
        reactor = SynchronousReactor()
        pool = _QueuingPool()
        resource = WSGIResource(reactor, pool, RecordingApp())
        resource.maxPending = 2
        transports = _requests(TwsgiSite(resource, reactor), 3)
        self.assertEqual(len(pool.queued), 2)
        self.assertEqual([t.value() for t in transports[:2]], [b"", b""])
        [response] = parseResponses(transports[2].value())
        self.assertEqual(response.code, 503)
        self.assertEqual(response.header(b"retry-after"), b"1")

    def test_waitingElsewhere(self) -> None:
        """
        In a worker, the connections waiting in the listen backlog
        (C{waitingElsewhere}) count toward C{maxPending} once requests wait
        for a thread: with 1 queued and 2 in the backlog, a bound of 3
        refuses; the backlog is not asked while none is queued.
        """
        reactor = SynchronousReactor()
        pool = _QueuingPool()
        resource = WSGIResource(reactor, pool, RecordingApp())
        resource.maxPending = 3
        asked: list[int] = []

        def waitingElsewhere() -> int:
            asked.append(2)
            return 2

        resource.waitingElsewhere = waitingElsewhere
        transports = _requests(TwsgiSite(resource, reactor), 2)
        self.assertEqual((len(pool.queued), len(asked)), (1, 1))
        self.assertEqual(transports[0].value(), b"")
        [response] = parseResponses(transports[1].value())
        self.assertEqual(response.code, 503)

    def test_refusalsLogged(self) -> None:
        """
        The first request refused is said in one warning line, with how
        many wait and the bound; the refusals that follow within
        L{WARN_EVERY} seconds add no line, and the next line, once that
        time has passed, counts them.
        """
        reactor = SynchronousReactor()
        pool = _QueuingPool()
        resource = WSGIResource(reactor, pool, RecordingApp())
        resource.maxPending = 2
        site = TwsgiSite(resource, reactor)
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)

        def send(count: int) -> list[str]:
            del events[:]
            for _ in range(count):
                channel = site.buildProtocol(None)
                channel.makeConnection(StringTransport())
                channel.dataReceived(GET)
            return [formatEvent(e) for e in events if e["log_level"] >= LogLevel.warn]

        self.assertEqual(send(2), [])
        line = (
            "twsgi is overloaded: 2 requests wait for a WSGI thread "
            "(--max-pending 2); {} request(s) answered 503 (said at most every 10 s)"
        )
        self.assertEqual(send(5), [line.format(1)])
        reactor.advance(WARN_EVERY - 0.1)
        self.assertEqual(send(3), [])
        reactor.advance(0.1)
        self.assertEqual(send(1), [line.format(8)])
        self.assertEqual(len(pool.queued), 2)

    def test_unbounded(self) -> None:
        """
        With C{maxPending} 0, nothing is refused.
        """
        pool = _QueuingPool()
        resource = WSGIResource(SynchronousReactor(), pool, RecordingApp())
        site = TwsgiSite(resource, resource.reactor)
        for _ in range(5):
            channel = site.buildProtocol(None)
            channel.makeConnection(StringTransport())
            channel.dataReceived(GET)
        self.assertEqual(len(pool.queued), 5)

    def test_backlogOfOtherPools(self) -> None:
        """
        A pool without statistics has no backlog to bound.
        """
        self.assertEqual(backlog(object()), 0)


class _Held(protocol.Protocol):
    def __init__(self) -> None:
        self.data = b""
        self.lost: defer.Deferred[None] = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Any) -> None:
        self.lost.callback(None)


class MaxConnectionsTests(TestCase):
    """
    Over real sockets: above the maximum, connections wait in the backlog.
    """

    timeout = 20

    @defer.inlineCallbacks
    def test_backlog(self) -> Any:
        """
        With two connections open, a third is connected by the kernel but
        not accepted: its request is answered only once another closes.
        """
        from twisted.internet import reactor

        gate = ConnectionGate(2)
        server = LoopbackServer(reactor, gate=gate)
        gate.watch(server.port)
        self.addCleanup(server.stop)
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", server.portNumber)
        held = []
        for _ in range(3):
            client = _Held()
            yield endpoint.connect(protocol.Factory.forProtocol(lambda c=client: c))
            held.append(client)
        held[2].transport.write(GET)
        yield task.deferLater(reactor, 0.3, lambda: None)
        self.assertEqual(len(server.site.connections), 2)
        self.assertEqual(held[2].data, b"")
        held[0].transport.loseConnection()
        for _ in range(200):
            if held[2].data.endswith(b"seen /"):
                break
            yield task.deferLater(reactor, 0.01, lambda: None)
        self.assertEqual([r.code for r in parseResponses(held[2].data)], [200])
        for client in held[1:]:
            client.transport.loseConnection()
        yield defer.gatherResults([c.lost for c in held])
