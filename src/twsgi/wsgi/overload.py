# -*- test-case-name: tests.wsgi.test_overload -*-
"""
Overload protection: a bound on requests waiting for a WSGI thread (the rest
get 503 with C{Retry-After}).  The bound on open connections is
L{twsgi.server.ports.ConnectionGate}.

Everything here runs in the I/O thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twsgi.wsgi.exchange import Exchange
from twsgi.wsgi.pool import poolStats

RETRY_AFTER = b"1"


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


__all__ = ["backlog", "refuseOverloaded"]
