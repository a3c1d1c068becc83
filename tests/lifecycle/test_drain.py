"""
Tests for L{twsgi.lifecycle.drain}: every step of the graceful stop, on a
L{task.Clock}, with in-memory connections and no sleeps.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, protocol
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.helpers.drain import REQUEST, Harness, ManualPool
from tests.helpers.h2client import H2Client
from tests.helpers.h2wire import H2Wire
from tests.helpers.handshake import connecting, halfOpen, outcome
from twsgi.http.limits import Limits
from twsgi.lifecycle.drain import (
    Drain,
    DrainResult,
    DrainStep,
    HookFailed,
    runHooks,
    stopThreadPool,
)
from twsgi.server.connections import IDLE_GRACE, ConnectionSet
from twsgi.server.http1 import LINGER
from twsgi.server.ports import SETTLE, tcpPort
from twsgi.server.transport import SocketTransport
from twsgi.testing import MemoryServer, MemoryTransport, parseResponse


class HalfClosingTransport(MemoryTransport):
    """
    A L{MemoryTransport} that can close its writing side alone, as a TCP
    transport can.

    @ivar writeClosed: C{True} once C{loseWriteConnection} was called.
    """

    writeClosed = False

    def loseWriteConnection(self) -> None:
        self.writeClosed = True


class DrainStepTests(SynchronousTestCase):
    def test_readinessFlipsFirst(self) -> None:
        """
        Readiness flips as the stop begins, while the listeners stay open for
        the drain delay.
        """
        h = Harness(drainDelay=5.0)
        self.assertFalse(h.drain.draining)
        h.drain.stop()
        self.assertTrue(h.drain.draining)
        self.assertEqual((h.drain.step, h.stopListeningCalls), (DrainStep.DELAY, 0))
        h.clock.advance(4.9)
        self.assertEqual(h.stopListeningCalls, 0)
        h.clock.advance(0.1)
        self.assertEqual(h.stopListeningCalls, 1)

    def test_drainDelayKeepsServing(self) -> None:
        """
        During the drain delay a new connection is served and kept alive as
        usual.
        """
        h = Harness(drainDelay=5.0)
        h.drain.stop()
        protocol, transport = h.inFlight()
        h.pool.runAll()
        response = parseResponse(transport.value())
        self.assertEqual((response.code, response.body), (200, b"ok"))
        self.assertIsNone(response.header(b"connection"))
        self.assertFalse(transport.disconnecting)

    def test_idleConnectionGetsGrace(self) -> None:
        """
        An idle connection, kept alive after a response or accepted before
        the listener closed and silent so far, is not closed when the
        listeners are: a request it sends within the grace is answered, with
        C{Connection: close}, and the connection closes after the response.
        """
        for keptAlive in (True, False):
            h = Harness(idleGrace=1.0)
            if keptAlive:
                protocol, transport = h.served()
            else:
                protocol, transport = h.server.connect()
            d = h.drain.stop()
            self.assertEqual(h.stopListeningCalls, 1)
            h.clock.advance(0.9)
            self.assertFalse(transport.disconnecting)
            protocol.dataReceived(REQUEST)
            h.pool.runAll()
            response = parseResponse(transport.value())
            self.assertEqual(
                (response.code, response.body, response.header(b"connection")),
                (200, b"ok", b"close"),
            )
            self.assertTrue(transport.disconnecting)
            self.assertFalse(transport.aborted)
            h.threadsStopped.callback(None)
            self.assertEqual(self.successResultOf(d), DrainResult(drained=True, cut=0))

    def test_idleKeepAliveClosedAfterGrace(self) -> None:
        """
        An idle keep-alive connection that sends nothing is closed once the
        grace has passed, and the stop is over then.
        """
        h = Harness(idleGrace=1.0)
        protocol, transport = h.served()
        d = h.drain.stop()
        h.threadsStopped.callback(None)
        h.clock.advance(0.99)
        self.assertFalse(transport.disconnecting)
        self.assertNoResult(d)
        h.clock.advance(0.01)
        self.assertTrue(transport.disconnecting)
        self.assertFalse(transport.aborted)
        self.assertEqual(transport.value(), b"")
        self.assertEqual(self.successResultOf(d), DrainResult(drained=True, cut=0))

    def test_connectionsDrainWhileListenersClose(self) -> None:
        """
        Connections are told to close after their response as soon as the
        listeners begin to close, not once they closed (a listener stays
        open while the handshakes it answered complete): a request on a
        connection accepted meanwhile gets C{Connection: close}.
        """
        h = Harness()
        closing: defer.Deferred[None] = defer.Deferred()
        h.drain.stopListening = lambda: closing
        h.drain.stop()
        self.assertEqual(h.drain.step, DrainStep.CLOSING)
        self.assertTrue(h.server.site.connections.draining)
        during, transport = h.inFlight()
        h.pool.runAll()
        self.assertIn(b"connection: close", transport.value().lower())
        closing.callback(None)
        self.assertIsNot(h.drain.step, DrainStep.CLOSING)

    def test_graceBoundedByGracefulTimeout(self) -> None:
        """
        The grace is no longer than the graceful timeout.
        """
        h = Harness(idleGrace=5.0, gracefulTimeout=0.5)
        protocol, transport = h.served()
        d = h.drain.stop()
        h.threadsStopped.callback(None)
        h.clock.advance(0.4)
        self.assertFalse(transport.disconnecting)
        h.clock.advance(0.1)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.successResultOf(d), DrainResult(drained=True, cut=0))

    def test_secondSignalCutsGrace(self) -> None:
        """
        A second stop signal (L{Drain.skipWait}) ends the grace of idle
        connections at once, and they count as no request cut off.
        """
        h = Harness(idleGrace=1.0)
        protocol, transport = h.served()
        d = h.drain.stop()
        h.threadsStopped.callback(None)
        self.assertFalse(transport.disconnecting)
        h.drain.skipWait()
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.successResultOf(d), DrainResult(drained=True, cut=0))

    def test_graceEndHalfCloses(self) -> None:
        """
        At the end of the grace, an idle connection over TCP closes its
        writing side only and reads on, throwing away a request that crossed
        the close (a full close would answer it with a reset); it closes
        L{LINGER} seconds later, without a reset.
        """
        h = Harness(idleGrace=1.0)
        protocol, transport = h.served(HalfClosingTransport)
        d = h.drain.stop()
        h.threadsStopped.callback(None)
        h.clock.advance(1.0)
        self.assertTrue(transport.writeClosed)
        self.assertFalse(transport.disconnecting)
        protocol.dataReceived(REQUEST)
        self.assertEqual((transport.value(), h.pool.work), (b"", []))
        self.assertNoResult(d)
        h.clock.advance(LINGER)
        self.assertTrue(transport.disconnecting)
        self.assertFalse(transport.aborted)
        self.assertEqual(self.successResultOf(d), DrainResult(drained=True, cut=0))

    def test_keepAliveTimeoutHalfCloses(self) -> None:
        """
        The keep-alive timeout closes an idle connection the same way: our
        side first, then the whole connection after L{LINGER} seconds.
        """
        h = Harness()
        protocol, transport = h.served(HalfClosingTransport)
        h.clock.advance(Limits().keepAliveTimeout)
        self.assertTrue(transport.writeClosed)
        self.assertFalse(transport.disconnecting)
        h.clock.advance(LINGER)
        self.assertTrue(transport.disconnecting)
        self.assertFalse(transport.aborted)

    def test_inFlightCompletesWithConnectionClose(self) -> None:
        """
        A response in flight when the stop begins completes, carries
        C{Connection: close}, and its connection closes after it.
        """
        h = Harness()
        protocol, transport = h.inFlight()
        d = h.drain.stop()
        self.assertEqual(h.drain.step, DrainStep.WAITING)
        self.assertEqual(h.drain.inFlight, 1)
        self.assertFalse(transport.disconnecting)
        h.pool.runAll()
        response = parseResponse(transport.value())
        self.assertEqual((response.code, response.body), (200, b"ok"))
        self.assertEqual(response.header(b"connection"), b"close")
        self.assertTrue(transport.disconnecting)
        self.assertFalse(transport.aborted)
        self.assertNoResult(d)
        h.threadsStopped.callback(None)
        self.assertEqual(self.successResultOf(d), DrainResult(drained=True, cut=0))

    def test_pipelinedRequestDropped(self) -> None:
        """
        A request pipelined behind the one in flight is not started once the
        stop began: the response says C{Connection: close} and the client
        retries it elsewhere.
        """
        h = Harness()
        protocol, transport = h.inFlight()
        protocol.dataReceived(REQUEST)
        h.drain.stop()
        h.pool.runAll()
        h.pool.runAll()
        self.assertEqual(transport.value().count(b"HTTP/1.1 200"), 1)
        self.assertTrue(transport.disconnecting)

    def test_headersArrivingDuringDrain(self) -> None:
        """
        A request whose headers are still arriving when the stop begins is
        served, with C{Connection: close}.
        """
        h = Harness()
        protocol, transport = h.server.connect()
        protocol.dataReceived(REQUEST[:20])
        h.drain.stop()
        self.assertFalse(transport.disconnecting)
        protocol.dataReceived(REQUEST[20:])
        h.pool.runAll()
        response = parseResponse(transport.value())
        self.assertEqual(response.header(b"connection"), b"close")
        self.assertTrue(transport.disconnecting)

    def test_silentNewConnectionClosedAfterGrace(self) -> None:
        """
        A silent new connection closes once the grace has passed, and is not
        counted as a cut request.
        """
        h = Harness(idleGrace=1.0)
        protocol, transport = h.server.connect()
        d = h.drain.stop()
        h.clock.advance(1.0)
        self.assertTrue(transport.disconnecting)
        self.assertFalse(transport.aborted)
        h.threadsStopped.callback(None)
        self.assertEqual(self.successResultOf(d), DrainResult(drained=True, cut=0))

    def test_connectionAcceptedWhileClosing(self) -> None:
        """
        A connection accepted from the backlog after the drain began drains
        too: its request gets C{Connection: close}.
        """
        h = Harness()
        h.drain.stop()
        protocol, transport = h.inFlight()
        h.pool.runAll()
        response = parseResponse(transport.value())
        self.assertEqual(response.header(b"connection"), b"close")
        self.assertTrue(transport.disconnecting)

    def test_gracefulTimeoutAborts(self) -> None:
        """
        When the graceful timeout passes, requests still in flight are
        aborted and counted, and the result says so.
        """
        h = Harness(gracefulTimeout=10.0)
        protocol, transport = h.inFlight()
        d = h.drain.stop()
        h.clock.advance(9.9)
        self.assertFalse(transport.aborted)
        h.clock.advance(0.1)
        self.assertTrue(transport.aborted)
        self.assertEqual(h.threadStops, 1)
        h.threadsStopped.callback(None)
        self.assertEqual(self.successResultOf(d), DrainResult(drained=False, cut=1))

    def test_gracefulTimeoutClosesHalfSentHead(self) -> None:
        """
        A connection whose client is still sending a request's head when the
        graceful timeout passes is closed, not counted as a cut request (the
        application never saw it), and the log says why the stop waited.
        """
        h = Harness(gracefulTimeout=5.0)
        protocol, transport = h.server.connect()
        protocol.dataReceived(REQUEST[:20])
        with capturedLogs() as events:
            d = h.drain.stop()
            h.clock.advance(5.0)
        self.assertTrue(transport.aborted)
        h.threadsStopped.callback(None)
        self.assertEqual(self.successResultOf(d), DrainResult(drained=True, cut=0))
        self.assertIn(
            "twsgi: the graceful timeout (5.0s) closed 1 connection(s) whose "
            "client was still sending a request's head",
            [formatEvent(e) for e in events],
        )

    def test_abortedQueuedRequestNotRun(self) -> None:
        """
        A request still waiting for a WSGI thread when the deadline aborts it
        is counted as cut, and the thread that picks it up later does not
        run the application for it and sends nothing.
        """
        h = Harness(gracefulTimeout=1.0)
        protocol, transport = h.inFlight()
        d = h.drain.stop()
        h.clock.advance(1.0)
        self.assertTrue(transport.aborted)
        transport.clear()
        h.pool.runAll()
        self.assertEqual(transport.value(), b"")
        self.assertEqual(h.bodies, [])
        h.threadsStopped.callback(None)
        self.assertEqual(self.successResultOf(d), DrainResult(drained=False, cut=1))

    def test_queuedRequestDrains(self) -> None:
        """
        A request waiting for a thread while the drain waits (its client
        still there) is run and answered, and counts as drained.
        """
        h = Harness(gracefulTimeout=10.0)
        protocol, transport = h.inFlight()
        d = h.drain.stop()
        h.clock.advance(5.0)
        h.pool.runAll()
        self.assertEqual(parseResponse(transport.value()).code, 200)
        self.assertEqual(len(h.bodies), 1)
        h.threadsStopped.callback(None)
        self.assertEqual(self.successResultOf(d), DrainResult(drained=True, cut=0))

    def test_secondSignalSkipsWait(self) -> None:
        """
        L{Drain.skipWait} ends the graceful wait at once, without the clock
        moving.
        """
        h = Harness(gracefulTimeout=30.0)
        protocol, transport = h.inFlight()
        d = h.drain.stop()
        h.drain.skipWait()
        self.assertTrue(transport.aborted)
        h.threadsStopped.callback(None)
        self.assertEqual(self.successResultOf(d).cut, 1)

    def test_skipDuringDelay(self) -> None:
        """
        L{Drain.skipWait} during the drain delay ends the delay and the wait.
        """
        h = Harness(drainDelay=5.0)
        protocol, transport = h.inFlight()
        h.drain.stop()
        h.drain.skipWait()
        self.assertEqual(h.stopListeningCalls, 1)
        self.assertTrue(transport.aborted)

    def test_threadsStopBounded(self) -> None:
        """
        The drain waits for the thread pool only C{threadGrace} seconds.
        """
        h = Harness(threadGrace=0.5)
        d = h.drain.stop()
        self.assertEqual(h.drain.step, DrainStep.THREADS)
        h.clock.advance(0.5)
        self.assertEqual(
            self.successResultOf(d),
            DrainResult(drained=True, cut=0, threadsStopped=False),
        )

    def test_stopTwice(self) -> None:
        """
        A second stop waits for the first one's result.
        """
        h = Harness()
        first, second = h.drain.stop(), h.drain.stop()
        h.threadsStopped.callback(None)
        self.assertEqual(self.successResultOf(first), self.successResultOf(second))
        self.assertEqual(h.stopListeningCalls, 1)
        self.assertEqual(self.successResultOf(h.drain.stop()).drained, True)


class HTTP2DrainTests(SynchronousTestCase):
    def test_shortGracefulTimeout(self) -> None:
        """
        With a graceful timeout shorter than the HTTP/2 graceful stop's
        two PING waits, a response that finished in time reaches a client
        that answers no PING before the deadline: nothing is cut off.
        """
        wire = H2Wire(Limits())
        client = H2Client(wire)
        client.readOnce(time.monotonic() + 1)
        stream = client.request("GET", "/")
        drain = Drain(
            wire.clock,
            lambda: [wire.site.connections],
            lambda: defer.succeed(None),
            lambda: defer.succeed(None),
            gracefulTimeout=0.5,
        )
        d = drain.stop()
        self.assertEqual(drain.step, DrainStep.WAITING)
        wire.resource.finishAll()
        # The client reads what comes, and answers no PING.
        for _ in range(49):
            wire.clock.advance(0.01)
        self.assertTrue(wire.transport.disconnecting)
        wire.server.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(client.answer(stream).body, b"done")
        self.assertEqual(self.successResultOf(d), DrainResult(drained=True, cut=0))


class ConnectionSetTests(SynchronousTestCase):
    def test_whenEmpty(self) -> None:
        """
        L{ConnectionSet.whenEmpty} fires once the last connection is gone.
        """
        server = MemoryServer(lambda e, s: [])
        connections = server.site.connections
        self.successResultOf(connections.whenEmpty())
        protocol, transport = server.connect()
        d = connections.whenEmpty()
        self.assertNoResult(d)
        transport.loseConnection()
        self.successResultOf(d)

    def test_inFlight(self) -> None:
        """
        L{ConnectionSet.inFlight} counts requests started and not answered.
        """
        h = Harness()
        self.assertEqual(h.server.site.connections.inFlight, 0)
        h.inFlight()
        h.inFlight()
        self.assertEqual(h.server.site.connections.inFlight, 2)
        h.pool.runAll()
        self.assertEqual(h.server.site.connections.inFlight, 0)

    def test_abortCountsRequests(self) -> None:
        """
        L{ConnectionSet.abort} aborts every connection and counts only those
        with a request in flight.
        """
        h = Harness()
        h.inFlight()
        h.server.connect()
        self.assertEqual(h.server.site.connections.abort(), 1)
        self.assertEqual(len(h.server.site.connections), 0)

    def test_drainBounds(self) -> None:
        """
        L{ConnectionSet.drain} passes the grace and the bound on the wait
        for requests in flight to every connection, also to one accepted
        afterwards.
        """
        told: list[tuple[float, float | None]] = []

        class Channel:
            inFlight = 0
            transport = None

            def startDraining(self, idleGrace: float, within: float | None) -> None:
                told.append((idleGrace, within))

        connections = ConnectionSet()
        connections.add(Channel())  # type: ignore[arg-type]
        connections.drain(0.5, within=2.0)
        connections.add(Channel())  # type: ignore[arg-type]
        self.assertEqual(told, [(0.5, 2.0), (0.5, 2.0)])

    def test_emptySet(self) -> None:
        """
        A new L{ConnectionSet} is empty and not draining.
        """
        connections = ConnectionSet()
        self.assertEqual((len(connections), connections.draining), (0, False))


class HookTests(SynchronousTestCase):
    def test_inOrderWaitingForDeferreds(self) -> None:
        """
        L{runHooks} runs hooks in order, each after the previous one's
        L{Deferred} fired.
        """
        calls: list[str] = []
        gate: defer.Deferred[None] = defer.Deferred()

        def first(arg: str) -> defer.Deferred[None]:
            calls.append("first " + arg)
            return gate

        def second(arg: str) -> None:
            calls.append("second " + arg)

        d = runHooks([first, second], "x")
        self.assertEqual(calls, ["first x"])
        gate.callback(None)
        self.assertEqual(calls, ["first x", "second x"])
        self.successResultOf(d)

    def test_failureLoggedAndNextRuns(self) -> None:
        """
        A hook that raises is logged, and the next one still runs.
        """
        calls: list[str] = []

        def broken() -> None:
            raise ZeroDivisionError()

        d = runHooks([broken, lambda: calls.append("next")])
        self.successResultOf(d)
        self.assertEqual(calls, ["next"])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_mustSucceedStopsAtFailure(self) -> None:
        """
        With C{mustSucceed} (the on-start hooks), the first hook that fails
        ends the run with a L{HookFailed} naming it, logged once at error
        level (a critical event is also written to standard error before the
        log begins); the next hook does not run.
        """
        calls: list[str] = []

        def broken() -> None:
            raise ZeroDivisionError("no")

        with capturedLogs() as events:
            failure = self.failureResultOf(
                runHooks([broken, lambda: calls.append("next")], mustSucceed=True),
                HookFailed,
            )
        self.assertEqual(calls, [])
        self.assertIn(".broken failed: ZeroDivisionError: no", str(failure.value))
        [logged] = [e for e in events if "log_failure" in e]
        self.assertEqual(logged["log_level"], LogLevel.error)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)


class FakeReactor:
    running = True

    def __init__(self) -> None:
        self.stops = 0
        self.calls: list[Any] = []

    def stop(self) -> None:
        self.stops += 1

    def callFromThread(self, f: Callable[..., Any], *args: Any) -> None:
        self.calls.append((f, args))


class StopThreadPoolTests(SynchronousTestCase):
    def test_notStartedStopsAtOnce(self) -> None:
        """
        A pool that never started is stopped synchronously.
        """
        stopped: list[bool] = []

        class Pool:
            started = False

            def stop(self) -> None:
                stopped.append(True)

        self.successResultOf(stopThreadPool(Pool(), FakeReactor()))
        self.assertEqual(stopped, [True])

    def test_stopperThreadRefused(self) -> None:
        """
        When the system refuses the thread that would stop a started pool
        (a pids limit), the stop goes on without waiting for the pool's
        threads, and the log says so: it does not fail, and it does not
        join them in the I/O thread.
        """
        stopped: list[bool] = []

        class Pool:
            started = True

            def stop(self) -> None:
                stopped.append(True)

        def refuse(thread: threading.Thread) -> None:
            raise RuntimeError("can't start new thread")

        self.patch(threading.Thread, "start", refuse)
        with capturedLogs() as events:
            self.successResultOf(stopThreadPool(Pool(), FakeReactor()))
        self.assertEqual(stopped, [])
        self.assertEqual(
            [formatEvent(e) for e in events],
            [
                "twsgi: cannot start a thread to stop the WSGI threads (can't "
                "start new thread): not waiting for them"
            ],
        )


class ServiceDrainTests(SynchronousTestCase):
    def test_readinessDuringDrainDelay(self) -> None:
        """
        During the drain delay of L{TwsgiService.stopService}, C{/readyz}
        answers 503 while the application is still served on the same
        listener; C{draining} is true.
        """
        from tests.helpers.service import cliService

        service = cliService(health_on_app=True, drain_delay="5")
        service.startService()
        server = MemoryServer(site=service.sites[0])
        self.assertEqual(server.request(target=b"/readyz").code, 200)
        self.assertFalse(service.draining)
        d = service.stopService()
        self.assertTrue(service.draining)
        self.assertEqual(server.request(target=b"/readyz").code, 503)
        self.assertEqual(server.request(target=b"/").code, 200)
        self.assertNoResult(d)
        service.reactor.advance(5)
        # The keep-alive connections of those requests get their grace.
        self.assertNoResult(d)
        service.reactor.advance(IDLE_GRACE)
        self.assertEqual(self.successResultOf(d), DrainResult(drained=True, cut=0))

    def test_adminListenersCloseLast(self) -> None:
        """
        Admin listeners stay open through the drain and close at its end;
        application listeners close after the drain delay.
        """
        from tests.helpers.service import cliService

        service = cliService(health_endpoint=["tcp:9000"], drain_delay="5")
        service.startService()
        closed: list[str] = []
        for port, site in service._portSites:
            port.stopListening = lambda listener=site.listener: closed.append(listener)
        d = service.stopService()
        self.assertEqual(closed, [])
        service.reactor.advance(5)
        self.successResultOf(d)
        self.assertEqual(closed, ["tcp:8000:interface=127.0.0.1", "tcp:9000"])

    def serviceWithRequest(self) -> Any:
        """
        A started service whose thread pool never runs the request that one
        connection sent: it stays in flight.
        """
        from tests.helpers.service import cliService

        service = cliService()
        service.resource.threadpool = ManualPool()
        service.startService()
        protocol, transport = MemoryServer(site=service.sites[0]).connect()
        protocol.dataReceived(REQUEST)
        return service

    def test_inFlightAndSkipWait(self) -> None:
        """
        L{TwsgiService.inFlight} counts requests in flight on every listener,
        and L{TwsgiService.skipWait} cuts them off.
        """
        service = self.serviceWithRequest()
        self.assertEqual(service.inFlight, 1)
        d = service.stopService()
        self.assertNoResult(d)
        service.skipWait()
        self.assertEqual(self.successResultOf(d).cut, 1)
        self.assertEqual(service.inFlight, 0)

    def test_skipWaitBeforeStop(self) -> None:
        """
        L{TwsgiService.skipWait} called before the stop began (a worker's
        first signal is SIGQUIT) makes the stop skip its wait as soon as it
        begins.
        """
        service = self.serviceWithRequest()
        service.skipWait()
        d = service.stopService()
        self.assertEqual(self.successResultOf(d).cut, 1)

    def test_skipWaitEndsSettle(self) -> None:
        """
        L{TwsgiService.skipWait} (a second stop signal) ends the listeners'
        wait for the handshakes they answered (up to 2 s): the listener
        closes at once, and so does the stop.
        """
        from tests.helpers.service import cliService

        if not sys.platform.startswith("linux"):
            raise SkipTest("socket filters are Linux's")
        service = cliService()
        reactor = service.reactor

        class RealEndpoint:
            def listen(self, factory: Any) -> defer.Deferred[Any]:
                port = tcpPort(reactor, 0, factory, interface="127.0.0.1")
                self.port = port
                return defer.succeed(port)

        endpoint = RealEndpoint()
        service.endpoints = [endpoint]
        service.startService()
        self.addCleanup(endpoint.port.stopListening)
        client = halfOpen(("127.0.0.1", endpoint.port.getHost().port))
        self.addCleanup(client.close)
        self.assertEqual(outcome(client, 0.05), "waiting")
        d = service.stopService()
        reactor.advance(0.5)
        self.assertNoResult(d)
        service.skipWait()
        self.assertEqual(endpoint.port.fileno(), -1)
        self.assertEqual(self.successResultOf(d), DrainResult(drained=True, cut=0))

    def test_drainWithoutReadiness(self) -> None:
        """
        A L{Drain} told not to flip readiness leaves C{draining} false for
        the whole stop.
        """
        h = Harness(readiness=False)
        h.drain.stop()
        self.assertFalse(h.drain.draining)
        self.assertEqual((h.drain.step, h.stopListeningCalls), (DrainStep.THREADS, 1))

    def test_retire(self) -> None:
        """
        L{TwsgiService.retire} closes the application and admin listeners at
        once despite the drain delay, leaves C{/readyz} at 200, and finishes
        the request in flight and the admin request of a connection it had
        accepted before it retired.
        """
        from tests.helpers.service import cliService
        from twsgi.metrics.prometheus import LiveFigures

        service = cliService(health_endpoint=["tcp:9000"], drain_delay="5")
        pool = ManualPool()
        service.resource.threadpool = pool
        service.startService()
        closed: list[str] = []
        for port, site in service._portSites:
            port.stopListening = lambda listener=site.listener: closed.append(listener)
        appSite, adminSite = service.sites
        appProtocol, appTransport = MemoryServer(site=appSite).connect()
        appProtocol.dataReceived(REQUEST)
        adminProtocol, adminTransport = MemoryServer(site=adminSite).connect()

        service.retire()
        d = service.stopService()
        self.assertEqual(closed, ["tcp:8000:interface=127.0.0.1", "tcp:9000"])
        self.assertFalse(service.draining)
        self.assertTrue(LiveFigures.read(service).draining)
        adminProtocol.dataReceived(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        ready = parseResponse(adminTransport.value())
        self.assertEqual((ready.code, ready.header(b"connection")), (200, b"close"))
        self.assertNoResult(d)
        pool.runAll()
        response = parseResponse(appTransport.value())
        self.assertEqual((response.code, response.body), (200, b"Hello from twsgi!\n"))
        self.assertEqual(response.header(b"connection"), b"close")
        self.assertEqual(self.successResultOf(d), DrainResult(drained=True, cut=0))

    def test_listenerArrivingDuringStop(self) -> None:
        """
        An endpoint that only starts listening after the stop began is
        closed at once instead of serving on.
        """
        from tests.helpers.service import cliService

        service = cliService()
        pending: defer.Deferred[Any] = defer.Deferred()

        class SlowEndpoint:
            def listen(self, factory: Any) -> defer.Deferred[Any]:
                return pending

        service.endpoints = [SlowEndpoint()]
        service.startService()
        self.successResultOf(service.stopService())
        reactor = MemoryReactorClock()
        factory = protocol.Factory.forProtocol(protocol.Protocol)
        port = tcpPort(reactor, 0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        client = connecting(("127.0.0.1", port.getHost().port))
        self.addCleanup(client.close)
        self.assertEqual(outcome(client, 5), "connected")
        pending.callback(port)
        # Refusing new connections, it lets half-done handshakes complete.
        reactor.advance(SETTLE)
        served = [r for r in reactor.readers if isinstance(r, SocketTransport)]
        self.assertEqual(len(served), 1)
        self.addCleanup(served[0].connectionLost, Failure(ConnectionDone()))
        self.assertEqual(port.fileno(), -1)
        self.assertEqual(service.sites, [])
