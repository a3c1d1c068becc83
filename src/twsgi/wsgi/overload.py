# -*- test-case-name: tests.wsgi.test_overload -*-
"""
Overload protection: a bound on open connections (the rest wait in the
kernel's listen backlog) and on requests waiting for a WSGI thread (the rest
get 503 with C{Retry-After}).

Everything here runs in the I/O thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.logger import Logger

from twsgi.wsgi.exchange import Exchange
from twsgi.wsgi.pool import poolStats

_log = Logger(namespace="twsgi")

RETRY_AFTER = b"1"


class ConnectionGate:
    """
    Stop accepting connections while C{maximum} are open, on every watched
    listening port; new connections then wait in the kernel's backlog until
    one closes.

    A port accepts up to C{numberAccepts} connections each time it is
    readable; the gate lowers that to the room left, so that the bound is
    never overshot.

    @ivar maximum: the most connections open at once.
    @ivar open: the connections open now.
    @ivar paused: whether the ports are not accepting.
    """

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.open = 0
        self.paused = False
        self.ports: list[Any] = []

    def watch(self, port: Any) -> None:
        """
        Gate a listening port (anything with C{doRead}, C{stopReading},
        C{startReading} and C{numberAccepts}, as TCP and UNIX ports have).
        """
        if not all(
            hasattr(port, name)
            for name in ("doRead", "stopReading", "startReading", "numberAccepts")
        ):
            _log.warn(
                "--max-connections cannot pause {port!r}; it is not bounded",
                port=port,
            )
            return
        original = port.doRead

        def doRead() -> Any:
            room = self.maximum - self.open
            if room <= 0:
                self._pause()
                return None
            port.numberAccepts = max(1, min(port.numberAccepts, room))
            return original()

        port.doRead = doRead
        self.ports.append(port)
        if self.paused:
            port.stopReading()

    def opened(self) -> None:
        """
        A connection was made.
        """
        self.open += 1
        if self.open >= self.maximum:
            self._pause()

    def closed(self) -> None:
        """
        A connection was lost.
        """
        self.open -= 1
        if self.paused and self.open < self.maximum:
            self.paused = False
            for port in self.ports:
                if getattr(port, "connected", False):
                    port.startReading()

    def _pause(self) -> None:
        if not self.paused:
            self.paused = True
            for port in self.ports:
                port.stopReading()


def backlog(threadpool: Any) -> int:
    """
    The work items waiting for a thread of a L{twsgi.wsgi.pool.WorkerPool} or
    a L{twisted.python.threadpool} C{ThreadPool}; 0 for a pool that does not
    say.  Called in the I/O thread.
    """
    waiting = getattr(threadpool, "backlog", None)
    if waiting is not None:
        return int(waiting())
    return poolStats(threadpool).backlog


def refuseOverloaded(
    exchange: Exchange, headers: Sequence[tuple[bytes, bytes]]
) -> None:
    """
    Answer 503 with C{Retry-After} through C{exchange}.  Called in the I/O
    thread.

    @param headers: more response headers (the bridge's C{Date} and
        C{Server}).
    """
    body = b"Service Unavailable: too many requests are waiting\n"
    exchange.writeHead(
        503,
        b"Service Unavailable",
        [
            (b"Retry-After", RETRY_AFTER),
            (b"Content-Type", b"text/plain; charset=utf-8"),
            (b"Content-Length", b"%d" % len(body)),
            *headers,
        ],
        False,
    )
    exchange.write(body)
    exchange.finish()


__all__ = ["ConnectionGate", "backlog", "refuseOverloaded"]
