# -*- test-case-name: tests.wsgi.test_overload -*-
"""
Overload protection: a bound on requests waiting for a WSGI thread (the rest
get 503 with C{Retry-After}).  The bound on open connections is
L{twsgi.server.ports.ConnectionGate}.

Everything here runs in the I/O thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from twisted.logger import Logger

from twsgi.http.shortage import retryAfterFields
from twsgi.logs.limited import Throttle
from twsgi.wsgi.exchange import Exchange
from twsgi.wsgi.pool import poolStats

_log = Logger(namespace="twsgi")

WARN_EVERY = 10.0
"""
The shortest time, in seconds, between two lines of L{OverloadLog}.
"""


def backlog(threadpool: object) -> int:
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
            *retryAfterFields(503),
            (b"Content-Type", b"text/plain; charset=utf-8"),
            (b"Content-Length", b"%d" % len(body)),
            *headers,
        ],
        False,
    )
    exchange.write(body)
    exchange.finish()


class OverloadLog:
    """
    Says in the server log that requests are refused for C{--max-pending}:
    one warning line at the first refusal, then at most one every
    L{WARN_EVERY} seconds while refusals go on, with how many requests were
    refused since the line before (a line for each would flood the log just
    when the server is busiest).
    """

    def __init__(self, seconds: Callable[[], float]) -> None:
        """
        @param seconds: the clock (a reactor's C{seconds}).
        """
        self.onRefused: Callable[[], None] | None = None
        self._refusals = Throttle(seconds, WARN_EVERY)

    def refusing(self, waiting: int, maximum: int) -> None:
        """
        A request was refused while C{waiting} requests wait for a thread,
        with C{--max-pending} C{maximum}: log it, and tell C{onRefused}
        (the metrics' count) if set.
        """
        if self.onRefused is not None:
            self.onRefused()
        refused = self._refusals.happened()
        if refused is None:
            return
        _log.warn(
            "twsgi is overloaded: {waiting} requests wait for a WSGI thread "
            "(--max-pending {maximum}); {refused} request(s) answered 503 "
            "(said at most every {every:g} s)",
            waiting=waiting,
            maximum=maximum,
            refused=refused,
            every=WARN_EVERY,
        )


__all__ = ["OverloadLog", "backlog", "refuseOverloaded"]
