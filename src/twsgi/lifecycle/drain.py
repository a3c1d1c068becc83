# -*- test-case-name: tests.lifecycle.test_drain -*-
"""
The graceful stop, in order, driven only by the injected reactor's clock.

  1. readiness flips (L{Drain.draining} becomes C{True});
  2. for C{drainDelay} seconds new requests are still accepted, so that load
     balancers notice the readiness change first;
  3. the listeners stop without resetting a connection the kernel
     completed (L{twsgi.server.ports.closeAcceptingBacklog}): new ones are
     refused first, then the handshakes answered just before complete,
     then the backlog is accepted, then the socket closes;
  4. from the start of step 3, a connection with a request in flight gets
     C{Connection: close} on its response and closes after it.  An idle
     connection (kept alive after a response, or accepted but still
     silent) gets C{idleGrace} seconds for one more request, answered with
     C{Connection: close}; closing it at once would race the request its
     client may be sending that very moment (the client's request and the
     server's FIN cross on the wire, and a client that does not retry
     loses the request).  At the end of the grace a connection still idle
     is closed;
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
retired instead (L{twsgi.lifecycle.signals.StopSignals.retire}): the supervisor and the other
workers keep listening on the same sockets, so readiness does not flip, and
steps 1 to 3 become "stop accepting at once on every listener" (see
L{twsgi.lifecycle.service.TwsgiService.stopService}).

Connections (L{twsgi.server.http1.TwsgiChannel}, a
L{twsgi.server.connections.DrainableChannel}, and the HTTP/2 connections)
are tracked in one L{twsgi.server.connections.ConnectionSet} per site.
"""

from __future__ import annotations

import atexit
import enum
import os
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import attrs
from twisted.internet import defer
from twisted.logger import Logger, LogLevel

from twsgi.logs.clock import Clock
from twsgi.server.connections import IDLE_GRACE, ConnectionSet
from twsgi.wsgi.pool import CallsFromThread

_log = Logger(namespace="twsgi")

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


class DrainStep(enum.Enum):
    """
    The step a L{Drain} is at (see the module's docstring for what each
    does).
    """

    SERVING = "serving"
    DELAY = "delay"
    CLOSING = "closing"
    WAITING = "waiting"
    ABORTING = "aborting"
    THREADS = "threads"
    STOPPED = "stopped"


class _WaitEnd(enum.Enum):
    """
    How a wait of L{Drain} ended.
    """

    DONE = "done"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"


class Drain:
    """
    The ordered graceful stop of one server.  Every step runs on C{clock}.

    @ivar draining: C{True} from the first step on: readiness reports 503.
    @ivar step: the L{DrainStep} in progress.
    @ivar result: the L{DrainResult}, once stopped.
    """

    def __init__(
        self,
        clock: Clock,
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
        self.step = DrainStep.SERVING
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
        self.step = DrainStep.STOPPED
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(result)

    def _wait(
        self,
        seconds: float,
        until: defer.Deferred[Any] | None = None,
        skippable: bool = True,
    ) -> defer.Deferred[_WaitEnd]:
        """
        Wait until C{until} fires (C{DONE}), C{seconds} pass (C{TIMEOUT}) or
        L{skipWait} is called (C{SKIPPED}).
        """
        d: defer.Deferred[_WaitEnd] = defer.Deferred()

        def fire(why: _WaitEnd) -> None:
            if d.called:
                return
            if call.active():
                call.cancel()
            self._skip = None
            d.callback(why)

        call = self.clock.callLater(seconds, fire, _WaitEnd.TIMEOUT)
        if until is not None:
            until.addBoth(lambda _: fire(_WaitEnd.DONE))
        if skippable:
            self._skip = lambda: fire(_WaitEnd.SKIPPED)
            if self._skipped:
                fire(_WaitEnd.SKIPPED)
        return d

    @defer.inlineCallbacks
    def _run(self) -> Any:
        self.step = DrainStep.DELAY
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

        self.step = DrainStep.CLOSING
        # From now on every connection closes after its response, also one
        # a listener accepts while it closes (its backlog, the handshakes
        # that complete meanwhile).
        sets = list(self.connectionSets())
        for connections in sets:
            connections.drain(
                min(self.idleGrace, self.gracefulTimeout), self.gracefulTimeout
            )
        try:
            yield self.stopListening()
        except BaseException:
            _log.failure("stopping a listener failed")
        _log.info(
            "twsgi stopped listening; waiting up to {timeout}s for {inFlight} "
            "request(s) in flight",
            timeout=self.gracefulTimeout,
            inFlight=self.inFlight,
        )

        self.step = DrainStep.WAITING
        empty = defer.gatherResults([c.whenEmpty() for c in sets])
        how = yield self._wait(self.gracefulTimeout, empty)

        cut = 0
        if how is not _WaitEnd.DONE:
            self.step = DrainStep.ABORTING
            receiving = sum(c.receiving for c in sets)
            for connections in sets:
                cut += connections.abort()
            if receiving:
                # Not requests: the application never saw them, and a
                # slowloris client must not make a stop a failed one.  But
                # the wait was for them, which the log should say.
                _log.warn(
                    "twsgi: the graceful timeout ({timeout}s) closed {receiving} "
                    "connection(s) whose client was still sending a request's head",
                    timeout=self.gracefulTimeout,
                    receiving=receiving,
                )
            if cut:
                _log.warn(
                    "twsgi: the graceful timeout ({timeout}s) cut off {cut} "
                    "request(s) still in flight",
                    timeout=self.gracefulTimeout,
                    cut=cut,
                )
            if how is _WaitEnd.SKIPPED and cut:
                _log.warn("(the wait was skipped by a second stop signal)")

        self.step = DrainStep.THREADS
        stopped = yield self._wait(
            self.threadGrace, self.stopThreads(), skippable=False
        )
        threadsStopped = stopped is _WaitEnd.DONE
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


class Pool(Protocol):
    """
    A thread pool, as far as stopping it goes (a L{twsgi.wsgi.pool.WorkerPool}
    or a L{twisted.python.threadpool.ThreadPool}).
    """

    def stop(self) -> None: ...


class RunningReactor(Protocol):
    """
    A reactor, as far as stopping it, and running code as it starts and
    stops, go (C{IReactorCore}).
    """

    @property
    def running(self) -> bool: ...

    def stop(self) -> None: ...

    def callWhenRunning(
        self, callable: Callable[..., object], /, *args: object
    ) -> object: ...

    def addSystemEventTrigger(
        self,
        phase: str,
        eventType: str,
        callable: Callable[..., object],
        /,
        *args: object,
    ) -> object: ...


def stopThreadPool(pool: Pool, reactor: CallsFromThread) -> defer.Deferred[None]:
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

    try:
        threading.Thread(target=stop, name="twsgi-pool-stop", daemon=True).start()
    except RuntimeError as e:
        # The system refuses threads (pids limit): joining the pool's
        # threads here could block the I/O thread for good, so they are
        # told nothing (a WorkerPool's are daemon threads: they end with
        # the process).
        _log.warn(
            "twsgi: cannot start a thread to stop the WSGI threads ({error}): "
            "not waiting for them",
            error=str(e),
        )
        d.callback(None)
    return d


class HookFailed(Exception):
    """
    A lifecycle hook that must succeed (an on-start hook) raised or failed.
    """

    def __init__(self, hook: Callable[..., object], error: BaseException) -> None:
        name = getattr(hook, "__qualname__", None)
        module = getattr(hook, "__module__", None)
        named = f"{module}:{name}" if name and module else repr(hook)
        super().__init__(
            f"the on-start hook {named} failed: {type(error).__name__}: {error}"
        )


def runHooks(
    hooks: Sequence[Callable[..., object]], *args: object, mustSucceed: bool = False
) -> defer.Deferred[None]:
    """
    Call lifecycle hooks one after the other with C{args}, waiting for each
    one's L{Deferred}.  A hook that raises or fails is logged, and the next
    one still runs; with C{mustSucceed} (the on-start hooks: a server whose
    start failed does not go on as if it had started), the run ends there
    instead, failing with a L{HookFailed}.  Called in the I/O thread.
    """

    @defer.inlineCallbacks
    def run() -> Any:
        for hook in hooks:
            try:
                yield defer.maybeDeferred(hook, *args)
            except BaseException as e:
                if not mustSucceed:
                    _log.failure("lifecycle hook {hook!r} failed", hook=hook)
                    continue
                # Error, not critical: before the runner begins logging
                # (twist, twsgi), Twisted also writes critical events to
                # standard error at once, and the traceback showed twice.
                failed = HookFailed(hook, e)
                _log.failure("twsgi: {error}", level=LogLevel.error, error=str(failed))
                raise failed from e

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

    def __init__(
        self,
        reactor: RunningReactor,
        atexit: Callable[[Callable[[], None]], object] = atexit.register,
    ):
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

    def fail(self, reactor: RunningReactor, status: int = 1) -> None:
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
    "HookFailed",
    "Drain",
    "DrainStep",
    "DrainResult",
    "Pool",
    "RunningReactor",
    "exitNow",
    "runHooks",
    "stopThreadPool",
]
