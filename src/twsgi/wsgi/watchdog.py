# -*- test-case-name: tests.wsgi.test_watchdog -*-
"""
C{--request-timeout}: notice requests that run past their deadline.

A request whose application call runs longer than the timeout is counted,
the stack of the thread serving it is logged (so the operator sees where it
is stuck), and, with C{--request-timeout-action recycle} under C{--workers},
its worker is replaced gracefully: the replacement starts, then this worker
drains without killing its other requests.  A Python thread cannot be killed
safely, so the stuck request itself is left to finish or to be cut off by
the worker's drain deadline.
"""

from __future__ import annotations

import gc
import sys
import threading
import traceback
from collections.abc import Callable
from types import FrameType

from twisted.logger import Logger

from twsgi.logs.accesslog import escapeBytes
from twsgi.logs.clock import Clock
from twsgi.logs.periodic import repeating
from twsgi.wsgi.environ import RequestFacts

_log = Logger(namespace="twsgi")


def currentFrames() -> dict[int, FrameType]:
    """
    L{sys._current_frames}, with the cyclic garbage collector off while it
    runs: CPython before 3.12 can deadlock when a collection starts inside
    it and a finalizer needs the interpreter's thread list, which it holds
    (CPython issue gh-106883; the watchdog's I/O thread hung there once in
    the test suite).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return sys._current_frames()
    finally:
        if enabled:
            gc.enable()


class RequestWatchdog:
    """
    Tracks which WSGI thread runs which request since when.

    @ivar stuck: how many requests ran past the timeout.
    """

    def __init__(
        self,
        reactor: Clock,
        timeout: float,
        onStuck: Callable[[], None] | None = None,
    ) -> None:
        """
        @param reactor: the clock, and where the checks run (every second).
        @param timeout: seconds a request may run.
        @param onStuck: called in the I/O thread for each stuck request.
        """
        self.reactor = reactor
        self.timeout = timeout
        self.onStuck = onStuck
        self.stuck = 0
        self._running: dict[int, tuple[float, RequestFacts]] = {}
        self._reported: set[tuple[int, float]] = set()
        self._loop = repeating(self.check, reactor, "the --request-timeout check")

    def track(self, work: Callable[[], None], facts: RequestFacts) -> None:
        """
        Run C{work} (one request's application call), recording this thread
        and the start time.  Called in a WSGI thread.
        """
        ident = threading.get_ident()
        self._running[ident] = (self.reactor.seconds(), facts)
        try:
            work()
        finally:
            self._running.pop(ident, None)

    def check(self) -> None:
        """
        Report every request past the timeout, once.  Called in the I/O
        thread.
        """
        now = self.reactor.seconds()
        running = dict(self._running)
        current = {(ident, started) for ident, (started, _) in running.items()}
        self._reported &= current
        frames: dict[int, FrameType] | None = None
        for ident, (started, facts) in running.items():
            if now - started <= self.timeout or (ident, started) in self._reported:
                continue
            self._reported.add((ident, started))
            self.stuck += 1
            if frames is None:
                frames = currentFrames()
            frame = frames.get(ident)
            stack = "".join(traceback.format_stack(frame)) if frame else "(gone)\n"
            _log.error(
                "request {method} {target} has run {seconds:.1f} s, past "
                "--request-timeout {timeout:g}; its thread's stack:\n{stack}",
                method=escapeBytes(facts.method),
                target=escapeBytes(facts.target),
                seconds=now - started,
                timeout=self.timeout,
                stack=stack.rstrip("\n"),
            )
            if self.onStuck is not None:
                self.onStuck()

    def start(self) -> None:
        """
        Start checking.  Called in the I/O thread.
        """
        if not self._loop.running:
            self._loop.start(1.0, now=False)

    def stop(self) -> None:
        """
        Stop checking.
        """
        if self._loop.running:
            self._loop.stop()


__all__ = ["RequestWatchdog"]
