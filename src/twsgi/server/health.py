# -*- test-case-name: tests.server.test_health -*-
"""
Liveness and readiness, answered on the I/O thread.

C{/livez} says the process and its reactor are alive: it answers 200 as long
as the reactor turns, also while every WSGI thread is busy.  C{/readyz} says
whether this server should get new requests: 503 while it drains
(L{TwsgiService.draining}), and by default while it refuses requests for
C{--max-pending}, or, with C{--ready-queue-limit N}, while more than C{N}
requests wait for a thread.  Neither ever reaches the WSGI thread pool.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Literal, Protocol, TypeAlias

import attrs
from twisted.web.resource import Resource
from twisted.web.server import Request

from twsgi.http.abnf import TARGET
from twsgi.wsgi.pool import PoolStats, poolStats

FOLLOW_MAX_PENDING: Final = "max-pending"
"""
The default of C{--ready-queue-limit}: not ready while the server refuses
requests for C{--max-pending}.
"""

QueueLimit: TypeAlias = int | Literal["max-pending"] | None
"""
C{--ready-queue-limit}: the most requests that may wait for a thread while
ready, L{FOLLOW_MAX_PENDING}, or C{None} (the backlog does not matter).
"""


@attrs.frozen
class Readiness:
    """
    Pure: the answer of C{/readyz}.

    @ivar ready: whether new requests are welcome.
    @ivar reason: one line saying why (the response body).
    """

    ready: bool
    reason: str


def readiness(
    draining: bool,
    stats: PoolStats,
    queueLimit: QueueLimit,
    maxPending: int = 0,
    elsewhere: int = 0,
) -> Readiness:
    """
    Decide readiness from the drain state and the pool.

    A server that answers new requests 503 for C{--max-pending} is not ready
    by default: a load balancer that goes on sending it requests only gets
    them refused (Kubernetes: readiness is also for "recovering from
    temporary faults or overloads").  An operator who would rather keep the
    node in rotation (one replica: no endpoint at all is worse than a 503
    with C{Retry-After}) says C{--ready-queue-limit none}.

    @param queueLimit: the most requests that may wait for a thread while
        ready; L{FOLLOW_MAX_PENDING}: fewer than C{maxPending} (while no
        request is refused); C{None}: any number.
    @param maxPending: C{--max-pending}, the backlog at which requests are
        refused (0: none is).
    @param elsewhere: the connections that wait in the listen backlog of a
        worker with no thread free, which count with its own (see
        L{twsgi.server.ports.ConnectionGate}).
    """
    if draining:
        return Readiness(False, "draining")
    backlog = stats.backlog + elsewhere
    if queueLimit == FOLLOW_MAX_PENDING:
        if maxPending and backlog >= maxPending:
            return Readiness(
                False,
                f"{backlog} requests waiting for a thread: new ones are "
                f"refused (--max-pending {maxPending})",
            )
    elif queueLimit is not None and backlog > queueLimit:
        return Readiness(
            False, f"{backlog} requests waiting for a thread (limit {queueLimit})"
        )
    return Readiness(True, "ready")


def _answer(request: Request, code: int, text: str) -> bytes:
    body = text.encode("utf-8") + b"\n"
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    request.setHeader(b"cache-control", b"no-store")
    request.setHeader(b"content-length", b"%d" % len(body))
    return b"" if request.method == b"HEAD" else body


class LivenessResource(Resource):
    """
    C{/livez}: 200 whenever the reactor runs.  Rendered in the I/O thread.
    """

    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        return _answer(request, 200, "ok")

    render_HEAD = render_GET


class ReadinessResource(Resource):
    """
    C{/readyz}: 200 or 503 by L{readiness}.  Rendered in the I/O thread.
    """

    isLeaf = True

    def __init__(
        self,
        isDraining: Callable[[], bool],
        stats: Callable[[], PoolStats],
        queueLimit: QueueLimit = None,
        maxPending: int = 0,
        waitingElsewhere: Callable[[], int] | None = None,
    ) -> None:
        """
        @param isDraining: whether the server drains.
        @param stats: a snapshot of the WSGI pool.
        @param queueLimit: see L{readiness}.
        @param maxPending: see L{readiness}.
        @param waitingElsewhere: in a worker, the connections waiting in the
            listen backlog, counted while no thread of the pool is free.
        """
        Resource.__init__(self)
        self.isDraining = isDraining
        self.stats = stats
        self.queueLimit = queueLimit
        self.maxPending = maxPending
        self.waitingElsewhere = waitingElsewhere

    def render_GET(self, request: Request) -> bytes:
        stats = self.stats()
        elsewhere = 0
        if (
            self.waitingElsewhere is not None
            and stats.busy + stats.backlog >= stats.maximum
        ):
            elsewhere = self.waitingElsewhere()
        answer = readiness(
            self.isDraining(), stats, self.queueLimit, self.maxPending, elsewhere
        )
        return _answer(request, 200 if answer.ready else 503, answer.reason)

    render_HEAD = render_GET


class Pooled(Protocol):
    """
    What the health routes read of a service (a L{twsgi.TwsgiService}): its
    WSGI thread pool; and C{draining}, if it has it.
    """

    @property
    def threadpool(self) -> object: ...


def healthRoutes(
    service: Pooled,
    prefix: str,
    queueLimit: QueueLimit,
    maxPending: int = 0,
    waitingElsewhere: Callable[[], int] | None = None,
) -> dict[bytes, Resource]:
    """
    The health paths of a L{TwsgiService}: C{PREFIX/livez} and
    C{PREFIX/readyz} to their resources.

    @param queueLimit: see L{readiness}.
    @param maxPending: see L{readiness}.
    @param waitingElsewhere: see L{ReadinessResource}.
    """
    base = prefix.rstrip("/").encode("ascii")
    return {
        base + b"/livez": LivenessResource(),
        base + b"/readyz": ReadinessResource(
            lambda: bool(getattr(service, "draining", False)),
            lambda: poolStats(service.threadpool),
            queueLimit,
            maxPending,
            waitingElsewhere,
        ),
    }


def isPathPrefix(value: str) -> bool:
    """
    Whether C{value} is an absolute path that a request target can begin
    with: ASCII, without a space, a control character, C{?} or C{#}
    (C{--health-path-prefix}, the URL of C{--static}).
    """
    return (
        value.startswith("/")
        and value.isascii()
        and TARGET.match(value.encode("ascii")) is not None
        and "?" not in value
        and "#" not in value
    )


def parsePathPrefix(value: str) -> str:
    """
    Check C{--health-path-prefix}: empty, or an absolute path such as
    C{/_twsgi}.
    """
    value = value.strip()
    if value in ("", "/"):
        return ""
    if not isPathPrefix(value):
        raise ValueError(f"{value!r} is not an absolute path such as /_twsgi")
    return value.rstrip("/")


__all__ = [
    "FOLLOW_MAX_PENDING",
    "LivenessResource",
    "PoolStats",
    "QueueLimit",
    "Readiness",
    "ReadinessResource",
    "healthRoutes",
    "isPathPrefix",
    "parsePathPrefix",
    "readiness",
]
