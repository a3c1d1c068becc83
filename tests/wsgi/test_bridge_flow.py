"""
Tests for how L{twsgi.wsgi.bridge} moves a body from a WSGI thread to the I/O
thread: no blocking round trip per chunk, a high-water and a low-water mark,
the transport's pause, and a client that goes away.

The application runs in a real thread (one per request); the fake reactor
only queues what is handed to the I/O thread, and the test runs it when it
chooses, so a slow reactor is simulated exactly.  Every wait is bounded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.responses import disconnect, parseResponses
from twsgi.http.limits import Limits
from twsgi.server.exchange import HotExchange, HTTP11Exchange
from twsgi.server.site import TwsgiSite
from twsgi.wsgi import bridge as _bridge
from twsgi.wsgi.bridge import (
    FLUSH_SIZE,
    LOW_WATER,
    WHOLE_FILE_SIZE,
    WSGIResource,
)
from twsgi.wsgi.exchange import HIGH_WATER

TIMEOUT = 10.0


class QueueingReactor(MemoryReactorClock):
    """
    A memory reactor whose C{callFromThread} only queues the call, from any
    thread; L{runCalls} runs the queue in the test's thread.
    """

    def __init__(self) -> None:
        super().__init__()
        self.hops = 0
        self._calls: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
        self._lock = threading.Lock()

    def callFromThread(self, f: Callable[..., Any], *args: Any, **kw: Any) -> None:
        with self._lock:
            self.hops += 1
            self._calls.append((f, args))

    def runCalls(self) -> int:
        """
        Run the queued calls (and any they queue); return how many ran.
        """
        ran = 0
        while True:
            with self._lock:
                calls, self._calls = self._calls, []
            if not calls:
                return ran
            for f, args in calls:
                f(*args)
                ran += 1


class ThreadPerCall:
    """
    A thread pool that starts one thread per call.
    """

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []

    def callInThread(self, f: Callable[..., Any], *args: Any, **kw: Any) -> None:
        thread = threading.Thread(target=f, args=args, kwargs=kw, daemon=True)
        self.threads.append(thread)
        thread.start()


class WatchedCondition(threading.Condition):
    """
    A condition that says when a thread starts to wait on it.
    """

    waiting: threading.Event

    def wait(self, timeout: float | None = None) -> bool:
        self.waiting.set()
        return super().wait(timeout)


class Body:
    """
    A streamed response body of C{count} chunks of C{size} bytes that
    records how many it produced and whether C{close()} was called.
    """

    def __init__(self, count: int, size: int) -> None:
        self.count = count
        self.size = size
        self.produced = 0
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        for i in range(self.count):
            self.produced += 1
            yield bytes([65 + i % 26]) * self.size

    def close(self) -> None:
        self.closed.set()


class FlowTestCase(SynchronousTestCase):
    """
    Serve one streamed body over a L{StringTransport}, with the application
    in its own thread and a L{QueueingReactor}.
    """

    def setUp(self) -> None:
        self.reactor = QueueingReactor()
        self.pool = ThreadPerCall()
        self.waiting = threading.Event()
        condition = type("Condition", (WatchedCondition,), {"waiting": self.waiting})
        namespace = type(
            "threading", (), {"Lock": threading.Lock, "Condition": condition}
        )
        self.patch(_bridge, "threading", namespace)

    def serve(self, body: Body) -> tuple[Any, StringTransport]:
        """
        Start a GET whose application answers C{body}.
        """

        def app(environ: Any, startResponse: Any) -> Body:
            startResponse("200 OK", [("Content-Type", "application/octet-stream")])
            return body

        self.records: list[Any] = []
        site = TwsgiSite(
            WSGIResource(self.reactor, self.pool, app),
            self.reactor,
            observers=[self.records.append],
        )
        protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5555))
        transport = StringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 8000),
            peerAddress=IPv4Address("TCP", "127.0.0.1", 5555),
        )
        protocol.makeConnection(transport)
        protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
        return protocol, transport

    def waitForWorker(self) -> bool:
        """
        Wait (bounded) until the WSGI thread either waits for the I/O
        thread or is done.  C{True} if it waits.
        """
        thread = self.pool.threads[-1]
        for _ in range(int(TIMEOUT * 100)):
            if self.waiting.wait(0.01):
                self.waiting.clear()
                return True
            if not thread.is_alive():
                return False
        self.fail("the WSGI thread neither waited nor ended")

    def drain(self, transport: StringTransport, resume: bool) -> Any:
        """
        Run the I/O thread's side (resuming the transport's producer first,
        if C{resume}) until the WSGI thread is done; the parsed response.
        """
        rounds = 0
        while self.pool.threads[-1].is_alive() and rounds < 100:
            rounds += 1
            if resume:
                transport.producer.resumeProducing()
            self.reactor.runCalls()
            self.waitForWorker()
        self.finishWorker()
        self.reactor.runCalls()
        [response] = parseResponses(transport.value())
        return response

    def finishWorker(self) -> None:
        thread = self.pool.threads[-1]
        thread.join(TIMEOUT)
        self.assertFalse(thread.is_alive())


class NoRoundTripTests(FlowTestCase):
    """
    A streamed body does not cost a hop to the I/O thread per chunk.
    """

    def test_slowReactor(self) -> None:
        """
        A 100-chunk body below the high-water mark is produced to its end
        without the WSGI thread ever waiting, while the reactor runs nothing;
        it then costs far fewer than 100 hops to the I/O thread.
        """
        body = Body(100, 1024)
        protocol, transport = self.serve(body)
        self.assertFalse(self.waitForWorker())
        self.finishWorker()
        self.assertEqual(body.produced, 100)
        self.assertTrue(body.closed.is_set())
        self.assertEqual(transport.value(), b"")
        self.reactor.runCalls()
        self.assertLessEqual(self.reactor.hops, 2)
        [response] = parseResponses(transport.value())
        self.assertEqual(len(response.body), 100 * 1024)
        self.assertEqual(response.body[:1024], b"A" * 1024)

    def assertWaitsAbove(self, highWater: int, size: int, count: int) -> None:
        """
        Serve C{count} chunks of C{size} bytes: the WSGI thread waits once
        more than C{highWater} bytes are queued, and goes on when the I/O
        thread has taken them.
        """
        body = Body(count, size)
        protocol, transport = self.serve(body)
        self.assertTrue(self.waitForWorker())
        self.assertEqual(body.produced, highWater // size + 1)
        self.assertEqual(transport.value(), b"")
        response = self.drain(transport, resume=False)
        self.assertTrue(body.closed.is_set())
        self.assertEqual(len(response.body), count * size)

    def test_highWater(self) -> None:
        """
        The WSGI thread waits once more than L{HIGH_WATER} bytes are queued,
        and goes on when the I/O thread has taken them.
        """
        size = 16 * 1024
        count = 4 * HIGH_WATER // size
        self.assertWaitsAbove(HIGH_WATER, size, count)
        self.assertLess(self.reactor.hops, count // 4)

    def test_exchangeHighWaterBelowLowWater(self) -> None:
        """
        An exchange's own C{highWater} below L{LOW_WATER} holds too: the
        WSGI thread waits once more than it is queued, and goes on when the
        I/O thread has taken them.
        """
        highWater = 16 * 1024
        self.assertLess(highWater, LOW_WATER)
        self.patch(HotExchange, "highWater", highWater)
        self.assertWaitsAbove(highWater, 4 * 1024, 4 * LOW_WATER // (4 * 1024))


class PauseTests(FlowTestCase):
    """
    The transport's pause stops the I/O thread taking from the queue, so the
    WSGI thread fills it to the high-water mark and waits; it goes on once
    no more than L{LOW_WATER} bytes are left.
    """

    def test_pausedThenResumed(self) -> None:
        """
        While paused nothing more is written and the WSGI thread waits above
        the high-water mark; resuming writes the queue and lets the WSGI
        thread finish.
        """
        size = 16 * 1024
        count = 6 * HIGH_WATER // size
        body = Body(count, size)
        protocol, transport = self.serve(body)
        self.assertTrue(self.waitForWorker())
        self.reactor.runCalls()
        written = len(transport.value())
        self.assertGreater(written, HIGH_WATER)
        transport.producer.pauseProducing()
        self.assertTrue(self.waitForWorker())
        self.reactor.runCalls()
        self.assertEqual(len(transport.value()), written)
        produced = body.produced
        self.assertLessEqual(produced * size - written, HIGH_WATER + size)
        self.assertEqual(len(self.drain(transport, resume=True).body), count * size)

    def test_lowWater(self) -> None:
        """
        A transport that pauses us part-way through writing the queue leaves
        the rest queued; the WSGI thread waits until the I/O thread has
        brought the queue to L{LOW_WATER} or below.
        """
        size = 16 * 1024
        count = 3 * HIGH_WATER // size
        body = Body(count, size)
        protocol, transport = self.serve(body)
        self.assertTrue(self.waitForWorker())
        queued = body.produced * size
        # The first body write pauses us: the rest stays queued, above
        # LOW_WATER.
        original = transport.write

        def writeThenPause(data: bytes) -> None:
            original(data)
            if len(transport.value()) >= FLUSH_SIZE:
                transport.producer.pauseProducing()

        transport.write = writeThenPause  # type: ignore[method-assign]
        self.reactor.runCalls()
        self.assertLess(len(transport.value()), queued - LOW_WATER)
        self.assertTrue(self.pool.threads[-1].is_alive())
        self.assertEqual(body.produced * size, queued)
        transport.write = original  # type: ignore[method-assign]
        self.assertEqual(len(self.drain(transport, resume=True).body), count * size)


class SendTimeoutTests(FlowTestCase):
    """
    A client that stops reading has the send timeout to read some of the
    response, else its connection is aborted.
    """

    def test_stalledClient(self) -> None:
        """
        A transport paused for the send timeout (a resume restarts it) is
        aborted, and the WSGI thread waiting to write stops.
        """
        body = Body(10_000, 16 * 1024)
        protocol, transport = self.serve(body)
        self.assertTrue(self.waitForWorker())
        transport.producer.pauseProducing()
        self.reactor.runCalls()
        self.reactor.advance(Limits().sendTimeout - 1)
        transport.producer.resumeProducing()
        transport.producer.pauseProducing()
        self.reactor.advance(Limits().sendTimeout - 1)
        self.assertFalse(transport.disconnecting)
        self.assertTrue(self.pool.threads[-1].is_alive())
        self.reactor.advance(1)
        self.assertTrue(transport.disconnected)
        produced = body.produced
        disconnect(protocol, transport)
        self.finishWorker()
        self.assertLessEqual(body.produced, produced + 1)
        self.assertTrue(body.closed.is_set())
        self.reactor.runCalls()
        self.assertEqual(
            [(r.status, r.disconnected, r.cutOff) for r in self.records],
            [(200, True, "send-timeout")],
        )


class FailedBody:
    """
    A streamed body that raises after its first chunk, once the test sets
    L{go}; L{yielded} is set once the first chunk was handed over.
    """

    def __init__(self) -> None:
        self.yielded = threading.Event()
        self.go = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        yield b"part1\n"
        self.yielded.set()
        self.go.wait(TIMEOUT)
        raise ZeroDivisionError("once the head was taken")


class HeadRaceTests(FlowTestCase):
    """
    Who sends an application's error, when it raises mid-body: a 500 while
    nothing of its response was sent, else an abort after what was.
    """

    def test_failsBetweenHeadTakenAndWritten(self) -> None:
        """
        An application that raises after the I/O thread took its head but
        before the I/O thread wrote anything has its response cut off after
        the head and the chunk it had yielded (without the chunked body's
        end): its client never has a connection reset for a response, nor
        loses what the application yielded.
        """
        body = FailedBody()
        protocol, transport = self.serve(body)  # type: ignore[arg-type]
        self.assertTrue(body.yielded.wait(TIMEOUT))
        writeHead = HTTP11Exchange.writeHead

        def raced(exchange: HTTP11Exchange, *args: Any) -> None:
            # The I/O thread took the head: the application raises now, and
            # its WSGI thread is done before the I/O thread writes.
            body.go.set()
            self.finishWorker()
            writeHead(exchange, *args)

        self.patch(HTTP11Exchange, "writeHead", raced)
        self.reactor.runCalls()
        self.assertTrue(body.go.is_set())
        sent = transport.value()
        self.assertTrue(sent.startswith(b"HTTP/1.1 200 OK\r\n"), sent)
        self.assertTrue(sent.endswith(b"\r\n\r\n6\r\npart1\n\r\n"), sent)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)


class ClientGoneTests(FlowTestCase):
    """
    When the client goes away, the body stops within one chunk and its
    C{close()} is called.
    """

    def test_goneWhileWaiting(self) -> None:
        """
        A WSGI thread waiting for a paused transport stops when the
        connection is lost, producing no further chunk.
        """
        body = Body(10_000, 16 * 1024)
        protocol, transport = self.serve(body)
        self.assertTrue(self.waitForWorker())
        transport.producer.pauseProducing()
        self.reactor.runCalls()
        self.assertTrue(self.pool.threads[-1].is_alive())
        produced = body.produced
        disconnect(protocol, transport)
        self.finishWorker()
        self.assertEqual(body.produced, produced)
        self.assertTrue(body.closed.is_set())
        self.reactor.runCalls()

    def test_goneBeforeFirstWrite(self) -> None:
        """
        A client lost before the I/O thread wrote anything is noticed at the
        first write; the WSGI thread stops at its next chunk.
        """
        body = Body(10_000, 64 * 1024)
        protocol, transport = self.serve(body)
        self.assertTrue(self.waitForWorker())
        disconnect(protocol, transport)
        produced = body.produced
        self.reactor.runCalls()
        self.finishWorker()
        self.assertLessEqual(body.produced, produced + 1)
        self.assertTrue(body.closed.is_set())
        self.assertEqual(transport.value(), b"")


class SmallFileTests(FlowTestCase):
    """
    A small regular file in C{wsgi.file_wrapper} is read by the WSGI thread
    and travels like a list body.
    """

    def test_oneHop(self) -> None:
        """
        The file is read and closed by the WSGI thread, which is done before
        the reactor runs anything; the response then takes one hop.
        """
        content = bytes(range(256)) * (WHOLE_FILE_SIZE // 256)
        path = self.mktemp()
        with open(path, "wb") as f:
            f.write(content)
        opened: list[Any] = []

        def app(environ: Any, startResponse: Any) -> Any:
            startResponse("200 OK", [])
            opened.append(open(path, "rb"))
            return environ["wsgi.file_wrapper"](opened[0])

        site = TwsgiSite(WSGIResource(self.reactor, self.pool, app), self.reactor)
        protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5555))
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
        self.finishWorker()
        self.assertTrue(opened[0].closed)
        self.assertEqual(transport.value(), b"")
        self.reactor.runCalls()
        self.assertEqual(self.reactor.hops, 1)
        [response] = parseResponses(transport.value())
        self.assertEqual(response.body, content)
        self.assertEqual(response.header(b"content-length"), [b"%d" % len(content)])
