"""
Doubles for the hand-off of a response from a WSGI thread to the I/O thread:
a reactor whose C{callFromThread} calls wait until the test runs them (the
I/O thread is busy), and an application that fails after its first body
chunk, under a middleware that answers its own error page (PEP 3333's
C{start_response} with C{exc_info}).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any

from twsgi.testing import SynchronousReactor

ERROR_PAGE = b"the application's own error page\n"

FIRST_CHUNK = b"part1\n"


class QueuedCallsReactor(SynchronousReactor):
    """
    A L{SynchronousReactor} whose C{callFromThread} calls wait in a queue,
    as they do while the I/O thread is busy, until L{runQueued}.
    """

    def __init__(self) -> None:
        super().__init__()
        self.queued: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []

    def callFromThread(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.queued.append((f, args))

    def runQueued(self) -> None:
        """
        Run the queued calls, and those they queue, in order.
        """
        while self.queued:
            f, args = self.queued.pop(0)
            f(*args)


def failsAfterFirstChunk(
    meanwhile: Callable[[], None], sized: bool = True
) -> Callable[..., Any]:
    """
    An application that answers 200 with a C{Content-Length} (unless not
    C{sized}) and yields L{FIRST_CHUNK}, then raises C{ZeroDivisionError}
    once C{meanwhile} (what the I/O thread does between the two) has run.
    """

    def app(environ: Any, startResponse: Any) -> Iterator[bytes]:
        startResponse("200 OK", [("Content-Length", "12")] if sized else [])
        yield FIRST_CHUNK
        meanwhile()
        raise ZeroDivisionError("after the first chunk")

    return app


class ErrorPage:
    """
    A middleware that answers its application's error with its own 500
    page, as PEP 3333's example of C{exc_info} does (and werkzeug's and
    Paste's error middleware): C{start_response} with C{exc_info}, then
    L{ERROR_PAGE}.  When that C{start_response} re-raises (the head was
    sent), the error goes on up, as in PEP 3333's example.

    @ivar reraised: the errors C{start_response} re-raised.
    """

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.reraised: list[BaseException] = []

    def __call__(self, environ: Any, startResponse: Any) -> Iterator[bytes]:
        try:
            yield from self.app(environ, startResponse)
        except Exception:
            try:
                startResponse(
                    "500 Oops",
                    [
                        ("Content-Type", "text/plain"),
                        ("Content-Length", str(len(ERROR_PAGE))),
                    ],
                    sys.exc_info(),
                )
            except Exception as error:
                self.reraised.append(error)
                raise
            yield ERROR_PAGE


__all__ = [
    "ERROR_PAGE",
    "FIRST_CHUNK",
    "ErrorPage",
    "QueuedCallsReactor",
    "failsAfterFirstChunk",
]
