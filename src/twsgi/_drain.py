# -*- test-case-name: tests.test_drain -*-
"""
The graceful stop, in order, driven only by the injected reactor's clock.

  1. readiness flips (L{Drain.draining} becomes C{True});
  2. for C{drainDelay} seconds new requests are still accepted, so that load
     balancers notice the readiness change first;
  3. the listeners stop without resetting a connection the kernel
     completed (L{closeAcceptingBacklog}): new ones are refused first, then
     the backlog is accepted, then the socket closes;
  4. a connection with a request in flight gets C{Connection: close} on its
     response and closes after it.  An idle connection (kept alive after a
     response, or accepted but still silent) gets C{idleGrace} seconds for
     one more request, answered with C{Connection: close}; closing it at
     once would race the request its client may be sending that very moment
     (the client's request and the server's FIN cross on the wire, and a
     client that does not retry loses the request).  At the end of the
     grace a connection still idle is closed;
  5. the wait for in-flight requests is bounded by C{gracefulTimeout}, and
     L{Drain.skipWait} (a second signal) ends it early;
  6. whatever still runs is aborted: its transport is aborted, which wakes
     the WSGI thread that produces it; that thread calls C{close()} on the
     application's iterable once it notices.  The thread pool is stopped
     from a helper thread, so the reactor never joins a stuck worker
     (Twisted's own C{twistd web --wsgi} deadlocks there);
  7. the L{DrainResult} says whether everything drained, and how many
     requests the deadline cut off.

A worker process that its supervisor replaces (a reload, recycling) is
retired instead (L{twsgi._signals.StopSignals.retire}): the supervisor and the other
workers keep listening on the same sockets, so readiness does not flip, and
steps 1 to 3 become "stop accepting at once on every listener" (see
L{twsgi._service.TwsgiService.stopService}).

Connections are tracked by L{DrainableChannel} (mixed into
L{twsgi._channel.TwsgiChannel}) in one L{ConnectionSet} per site.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import socket
import struct
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import attrs
from twisted.internet import defer
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from ._closing import watchClose

_log = Logger(namespace="twsgi")

IDLE_GRACE = 1.0
"""
Seconds an idle connection (kept alive after a response, or accepted but
silent so far) may take to send one more request once the drain has begun
(C{--keepalive-grace}).
"""

THREAD_GRACE = 0.25
"""
Seconds the drain waits, at most, for the thread pool to stop after the last
request ended or was aborted.
"""

EXIT_CUT = 3
"""
The process exit status when the graceful timeout cut requests off.
"""


@attrs.frozen
class DrainResult:
    """
    How a graceful stop ended.

    @ivar drained: C{True} if every request in flight completed.
    @ivar cut: how many requests the deadline (or a second signal) aborted.
    @ivar threadsStopped: C{True} if every WSGI thread ended in time.
    """

    drained: bool
    cut: int
    threadsStopped: bool = True


class DrainableChannel:
    """
    A mixin for an L{HTTPChannel} subclass (put it first among the bases)
    that its site's L{ConnectionSet} can drain: the channel knows when it is
    idle, closes after its current response once draining, and says so with
    C{Connection: close}.

    The channel must set C{persistent} to C{False} for requests that begin
    while C{draining}.  All methods are called in the I/O thread.

    @ivar served: how many responses this connection completed.
    @ivar draining: C{True} once the server is stopping.
    """

    served = 0
    draining = False
    _graceCall: Any = None
    requests: list[Any]
    persistent: Any
    _handlingRequest: bool
    _buffer: bytes
    callLater: Any
    transport: Any

    def receivingRequest(self) -> bool:
        """
        C{True} once a byte of the next request has arrived.
        """
        return bool(self._buffer)

    @property
    def inFlight(self) -> int:
        """
        Requests this connection has started and not yet answered.
        """
        return len(self.requests)

    def isIdle(self) -> bool:
        """
        C{True} if no request is in flight and no byte of the next one has
        arrived.
        """
        return (
            not self.requests
            and not self._handlingRequest
            and not self.receivingRequest()
        )

    def writeHeaders(
        self, version: bytes, code: bytes, reason: bytes, headers: Any
    ) -> None:
        # RFC 9112 section 9.6: a server that will close the connection after
        # this response sends "close" in its Connection header.
        if not self.persistent and hasattr(headers, "setRawHeaders"):
            headers.setRawHeaders(b"Connection", [b"close"])
        super().writeHeaders(version, code, reason, headers)  # type: ignore[misc]

    def requestDone(self, request: Any) -> None:
        self.served += 1
        super().requestDone(request)  # type: ignore[misc]

    def loseConnection(self) -> None:
        """
        Close after what was written is sent; abort if the connection has
        not gone shortly after that (a TLS client that never answers the
        close, see L{twsgi._closing}).
        """
        # Armed first: a transport that closes at once cancels it.
        watchClose(self)
        super().loseConnection()  # type: ignore[misc]

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._graceCall is not None and self._graceCall.active():
            self._graceCall.cancel()
        super().connectionLost(reason)  # type: ignore[misc]

    def startDraining(self, idleGrace: float = IDLE_GRACE) -> None:
        """
        Close after the response in flight, if any (the channel sets
        C{persistent} to C{False} for a request that begins later); an idle
        connection gets C{idleGrace} seconds for one more request, and is
        closed if still idle after them.
        """
        if self.draining:
            return
        self.draining = True
        if self.requests:
            self.persistent = False
        elif self.isIdle():
            self._graceCall = self.callLater(idleGrace, self._closeIfIdle)

    def closeIdle(self) -> None:
        """
        Close this connection, which has no request in flight.
        """
        self.loseConnection()

    def _closeIfIdle(self) -> None:
        self._graceCall = None
        if self.isIdle():
            self.closeIdle()


class ConnectionSet:
    """
    The open connections of one site.  Called in the I/O thread.

    @ivar channels: the open L{DrainableChannel}s.
    @ivar draining: C{True} once L{drain} was called; connections accepted
        later drain at once.
    @ivar idleGrace: the seconds an idle connection gets for one more
        request once draining.
    @ivar aborted: C{True} once L{abort} was called: requests lost from
        then on were cut off by the server (their access records say
        C{cutOff="drain"}).
    """

    def __init__(self) -> None:
        self.channels: set[DrainableChannel] = set()
        self.draining = False
        self.aborted = False
        self.idleGrace = IDLE_GRACE
        self._waiting: list[defer.Deferred[None]] = []

    def __len__(self) -> int:
        return len(self.channels)

    def __iter__(self) -> Iterator[DrainableChannel]:
        return iter(self.channels)

    def __contains__(self, channel: object) -> bool:
        return channel in self.channels

    def add(self, channel: DrainableChannel) -> None:
        """
        A connection was made; it drains at once if the site is draining.
        """
        self.channels.add(channel)
        if self.draining:
            channel.startDraining(self.idleGrace)

    def discard(self, channel: DrainableChannel) -> None:
        """
        A connection was lost.
        """
        self.channels.discard(channel)
        if not self.channels:
            waiting, self._waiting = self._waiting, []
            for d in waiting:
                d.callback(None)

    @property
    def inFlight(self) -> int:
        """
        Requests in flight on all connections.
        """
        return sum(channel.inFlight for channel in self.channels)

    def drain(self, idleGrace: float = IDLE_GRACE) -> None:
        """
        Close every connection after its response in flight, and idle ones
        once they have been idle for C{idleGrace} seconds more.
        """
        self.draining = True
        self.idleGrace = idleGrace
        for channel in list(self.channels):
            channel.startDraining(idleGrace)

    def whenEmpty(self) -> defer.Deferred[None]:
        """
        A L{Deferred} that fires once no connection is open.
        """
        if not self.channels:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._waiting.append(d)
        return d

    def abort(self) -> int:
        """
        Abort every open connection.

        @return: how many requests were in flight on them.
        """
        self.aborted = True
        cut = 0
        for channel in list(self.channels):
            cut += channel.inFlight
            transport = channel.transport
            if transport is not None:
                transport.abortConnection()
        return cut


_SO_ATTACH_FILTER = 26
"""
Linux's C{SO_ATTACH_FILTER} (C{socket} does not name it).
"""

_DROP_EVERYTHING = struct.pack("HBBI", 0x06, 0, 0, 0)
"""
A classic BPF program of one instruction, C{BPF_RET | BPF_K} with 0: keep no
byte of any packet.
"""


def refuseConnections(port: Any) -> bool:
    """
    Make the kernel drop every packet that would open a new connection to
    the listening TCP socket of C{port} (Linux): a socket filter that keeps
    nothing.  A connection the kernel completed before stays in the accept
    queue, and no connection completes after, so accepting what is queued
    and then closing the socket resets none: a client whose handshake was
    dropped sends it again a second later, and is then refused by the
    closed port (or served by whoever listens on it then).

    The filter is on the socket, not on this process's descriptor: only
    the last process that holds a listening socket may use this.

    @return: C{True} if the filter is in place; C{False} where it cannot be
        (another system, a UNIX socket, a port without a descriptor).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        listening = socket.socket(fileno=os.dup(port.fileno()))
    except (AttributeError, OSError, TypeError, ValueError):
        return False
    try:
        if listening.family not in (socket.AF_INET, socket.AF_INET6):
            return False
        program = ctypes.create_string_buffer(_DROP_EVERYTHING, len(_DROP_EVERYTHING))
        listening.setsockopt(
            socket.SOL_SOCKET,
            _SO_ATTACH_FILTER,
            struct.pack("HP", 1, ctypes.addressof(program)),
        )
    except OSError:
        return False
    finally:
        listening.close()
    return True


def closeAcceptingBacklog(port: Any, owned: bool = True) -> defer.Deferred[Any]:
    """
    Stop listening on C{port} without resetting a connection the kernel
    completed: every one is accepted, and served.

    If this process is the last to hold the listening socket (C{owned}),
    new connections are refused first (L{refuseConnections}), then the
    queue is accepted and the socket closed.  Otherwise (a socket inherited
    from a supervisor or from systemd: closing this copy does not close it,
    and a filter would stop the other holders' connections too), or where
    that cannot be done, the queue is accepted at the last moment before the
    port's socket closes (one reactor turn after C{stopListening}), which
    leaves only that moment for a connection to complete and be reset.
    """
    if owned and refuseConnections(port):
        acceptPending(port)
        return defer.maybeDeferred(port.stopListening)
    lost = getattr(port, "connectionLost", None)
    if lost is not None and hasattr(port, "numberAccepts"):

        def connectionLost(reason: Any) -> Any:
            acceptPending(port)
            return lost(reason)

        port.connectionLost = connectionLost
    else:
        acceptPending(port)
    return defer.maybeDeferred(port.stopListening)


def acceptPending(port: Any) -> None:
    """
    Accept the connections already waiting in a listening port's backlog, so
    that closing the port resets none of them.  Ports that cannot do this
    (not a socket port, or already closed) are left alone.
    """
    if not getattr(port, "connected", False) or getattr(port, "socket", None) is None:
        return
    doRead = getattr(port, "doRead", None)
    if doRead is None or not hasattr(port, "numberAccepts"):
        return
    for _ in range(100):
        limit = port.numberAccepts = max(port.numberAccepts, 1000)
        doRead()
        # The port accepts more next time only when it took all it could.
        if port.numberAccepts <= limit:
            return


class Drain:
    """
    The ordered graceful stop of one server.  Every step runs on C{clock}.

    @ivar draining: C{True} from the first step on: readiness reports 503.
    @ivar step: the step in progress, for logs and tests: C{"serving"},
        C{"delay"}, C{"closing"}, C{"waiting"}, C{"aborting"},
        C{"threads"}, C{"stopped"}.
    @ivar result: the L{DrainResult}, once stopped.
    """

    def __init__(
        self,
        clock: Any,
        connectionSets: Callable[[], Iterable[ConnectionSet]],
        stopListening: Callable[[], defer.Deferred[Any]],
        stopThreads: Callable[[], defer.Deferred[Any]],
        drainDelay: float = 0.0,
        gracefulTimeout: float = 30.0,
        threadGrace: float = THREAD_GRACE,
        idleGrace: float = IDLE_GRACE,
        readiness: bool = True,
    ) -> None:
        """
        @param clock: an L{IReactorTime}.
        @param connectionSets: the L{ConnectionSet} of every site.
        @param stopListening: closes every listener; returns a L{Deferred}.
        @param stopThreads: stops the thread pool without blocking the
            reactor; returns a L{Deferred} that fires when it stopped.
        @param drainDelay: seconds to keep accepting after readiness flips.
        @param gracefulTimeout: seconds to wait for in-flight requests once
            the listeners closed.
        @param threadGrace: seconds to wait for the thread pool to stop.
        @param idleGrace: seconds an idle connection gets for one more
            request (at most C{gracefulTimeout}).
        @param readiness: flip readiness (L{draining}) as the stop begins;
            C{False} for a retiring worker, whose listeners other processes
            keep serving.
        """
        self.clock = clock
        self.connectionSets = connectionSets
        self.stopListening = stopListening
        self.stopThreads = stopThreads
        self.drainDelay = drainDelay
        self.gracefulTimeout = gracefulTimeout
        self.threadGrace = threadGrace
        self.idleGrace = idleGrace
        self.readiness = readiness
        self.draining = False
        self.step = "serving"
        self.result: DrainResult | None = None
        self._skipped = False
        self._skip: Callable[[], None] | None = None
        self._running: defer.Deferred[DrainResult] | None = None
        self._waiters: list[defer.Deferred[DrainResult]] = []

    @property
    def inFlight(self) -> int:
        """
        Requests in flight on every site.
        """
        return sum(s.inFlight for s in self.connectionSets())

    def stop(self) -> defer.Deferred[DrainResult]:
        """
        Run the stop (once; later calls wait for the same one).  Called in the
        I/O thread.
        """
        d: defer.Deferred[DrainResult] = defer.Deferred()
        if self.result is not None:
            d.callback(self.result)
            return d
        self._waiters.append(d)
        if self._running is None:
            self._running = self._run()
            self._running.addCallback(self._finished)
        return d

    def skipWait(self) -> None:
        """
        End the drain delay and the graceful wait now (a second signal).
        Called in the I/O thread.
        """
        self._skipped = True
        if self._skip is not None:
            self._skip()

    def _finished(self, result: DrainResult) -> None:
        self.result = result
        self.step = "stopped"
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(result)

    def _wait(
        self,
        seconds: float,
        until: defer.Deferred[Any] | None = None,
        skippable: bool = True,
    ) -> defer.Deferred[str]:
        """
        Wait until C{until} fires (C{"done"}), C{seconds} pass
        (C{"timeout"}) or L{skipWait} is called (C{"skipped"}).
        """
        d: defer.Deferred[str] = defer.Deferred()

        def fire(why: str) -> None:
            if d.called:
                return
            if call.active():
                call.cancel()
            self._skip = None
            d.callback(why)

        call = self.clock.callLater(seconds, fire, "timeout")
        if until is not None:
            until.addBoth(lambda _: fire("done"))
        if skippable:
            self._skip = lambda: fire("skipped")
            if self._skipped:
                fire("skipped")
        return d

    @defer.inlineCallbacks
    def _run(self) -> Any:
        self.step = "delay"
        if self.readiness:
            self.draining = True
            _log.info(
                "twsgi draining: readiness reports 503; {inFlight} request(s) "
                "in flight",
                inFlight=self.inFlight,
            )
        else:
            _log.info(
                "twsgi worker retiring: it stops accepting; {inFlight} request(s) "
                "in flight",
                inFlight=self.inFlight,
            )
        if self.drainDelay > 0:
            yield self._wait(self.drainDelay)

        self.step = "closing"
        try:
            yield self.stopListening()
        except BaseException:
            _log.failure("stopping a listener failed")
        sets = list(self.connectionSets())
        for connections in sets:
            connections.drain(min(self.idleGrace, self.gracefulTimeout))
        _log.info(
            "twsgi stopped listening; waiting up to {timeout}s for {inFlight} "
            "request(s) in flight",
            timeout=self.gracefulTimeout,
            inFlight=self.inFlight,
        )

        self.step = "waiting"
        empty = defer.gatherResults([c.whenEmpty() for c in sets])
        how = yield self._wait(self.gracefulTimeout, empty)

        cut = 0
        if how != "done":
            self.step = "aborting"
            for connections in sets:
                cut += connections.abort()
            if cut:
                _log.warn(
                    "twsgi: the graceful timeout ({timeout}s) cut off {cut} "
                    "request(s) still in flight",
                    timeout=self.gracefulTimeout,
                    cut=cut,
                )
            if how == "skipped" and cut:
                _log.warn("(the wait was skipped by a second stop signal)")

        self.step = "threads"
        stopped = yield self._wait(
            self.threadGrace, self.stopThreads(), skippable=False
        )
        threadsStopped = stopped == "done"
        if not threadsStopped:
            _log.warn(
                "twsgi: WSGI threads still busy after the drain; not waiting for them"
            )
        result = DrainResult(drained=cut == 0, cut=cut, threadsStopped=threadsStopped)
        _log.info(
            "twsgi stopped: {outcome}",
            outcome="every request drained"
            if result.drained
            else f"{cut} request(s) cut off",
        )
        return result


def stopThreadPool(pool: Any, reactor: Any) -> defer.Deferred[None]:
    """
    Stop C{pool} from a helper thread, so the I/O thread never joins a
    worker.  Called in the I/O thread.

    @return: a L{Deferred} firing (in the I/O thread) once every worker
        ended.
    """
    if not getattr(pool, "started", False):
        pool.stop()
        return defer.succeed(None)
    d: defer.Deferred[None] = defer.Deferred()

    def stop() -> None:
        try:
            pool.stop()
        finally:
            reactor.callFromThread(d.callback, None)

    threading.Thread(target=stop, name="twsgi-pool-stop", daemon=True).start()
    return d


def runHooks(hooks: Sequence[Callable[..., Any]], *args: Any) -> defer.Deferred[None]:
    """
    Call lifecycle hooks one after the other with C{args}, waiting for each
    one's L{Deferred}.  A hook that raises or fails is logged, and the next
    one still runs.  Called in the I/O thread.
    """

    @defer.inlineCallbacks
    def run() -> Any:
        for hook in hooks:
            try:
                yield defer.maybeDeferred(hook, *args)
            except BaseException:
                _log.failure("lifecycle hook {hook!r} failed", hook=hook)

    return run()  # type: ignore[no-any-return]


def exitNow(status: int) -> None:
    """
    End the process with C{status} at once, after flushing the output
    streams: for an exit status that C{twistd} and C{twist} would not give
    (they exit 0 after any reactor stop that no signal caused).
    """
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        if stream is not None:
            stream.flush()
    os._exit(status)


class ExitStatus:
    """
    Make the process exit non-zero after the reactor stopped, when the
    service failed.  C{twistd} and C{twist} themselves always exit 0 after a
    clean reactor stop.

    The exit happens at interpreter exit, so that C{twistd} still removes
    its pid file and finishes its own shutdown first.

    @ivar atexit: registers a function to run at interpreter exit.
    """

    def __init__(self, reactor: Any, atexit: Callable[..., Any] = atexit.register):
        self.status = 0
        self.atexit = atexit
        reactor.addSystemEventTrigger("after", "shutdown", self.reactorStopped)

    def reactorStopped(self) -> None:
        """
        The reactor stopped: if the service failed, arrange the exit status.
        Called in the I/O thread.
        """
        if self.status:
            self.atexit(self.exit)

    def fail(self, reactor: Any, status: int = 1) -> None:
        """
        Stop the reactor (now, or as soon as it runs: a listener can fail
        before C{twistd} starts it) and exit with C{status} afterwards.
        """
        self.status = status
        if reactor.running:
            reactor.stop()
        else:
            reactor.callWhenRunning(reactor.stop)

    def exit(self) -> None:
        """
        End the process with the failure status.
        """
        exitNow(self.status)


__all__ = [
    "EXIT_CUT",
    "ExitStatus",
    "ConnectionSet",
    "Drain",
    "DrainResult",
    "DrainableChannel",
    "acceptPending",
    "exitNow",
    "closeAcceptingBacklog",
    "refuseConnections",
    "runHooks",
    "stopThreadPool",
]
