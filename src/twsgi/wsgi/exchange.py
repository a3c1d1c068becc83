# -*- test-case-name: tests.wsgi.test_exchange,tests.wsgi.test_bridge -*-
"""
The seam between a connection and the WSGI bridge: one L{Exchange} is one
request and its response, as the bridge sees them.

A connection makes one exchange per HTTP/1.1 request (and one per HTTP/2
stream) and hands it to the bridge
(L{WSGIResource.dispatch<twsgi.wsgi.bridge.WSGIResource.dispatch>}), which
runs the application in a thread pool and carries its response out through
the exchange's methods, always in the I/O thread.

Who implements it:

  - twsgi's own HTTP/1.1 protocol (in L{twsgi.server}), on the hot path,
    with no C{twisted.web} request at all;
  - L{twsgi.wsgi.webrequest.RequestExchange}, over the public API of a
    C{twisted.web} L{Request<twisted.web.server.Request>}: this is what
    L{twsgi.WSGIResource} uses when it is mounted in any C{twisted.web}
    L{Site<twisted.web.server.Site>}.

What the bridge does and the exchange does not: the C{Date} and C{Server}
headers (the bridge has the date cache), and every rule of PEP 3333.  What
the exchange does and the bridge does not: the framing of the response on
the wire (status line, chunked or not, C{HEAD}), and its access record (the
status sent, the bytes sent, and who cut the response off).
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from typing import IO, Any, Protocol

from twsgi.wsgi.environ import RequestFacts

HIGH_WATER = 256 * 1024
"""
Queued body bytes above which a WSGI thread waits for the I/O thread: the
L{Exchange.highWater} of an exchange that holds no less.
"""


class Producer(Protocol):
    """
    What every producer has: Twisted's
    L{IProducer<twisted.internet.interfaces.IProducer>}, as a type mypy
    checks.
    """

    def stopProducing(self) -> None:
        """
        Produce no more: the consumer is gone.
        """


class PushProducer(Producer, Protocol):
    """
    A producer that writes to its consumer on its own until paused:
    L{IPushProducer<twisted.internet.interfaces.IPushProducer>}.  It is what
    an L{Exchange} is given, and what a consumer registers with
    C{streaming=True}.
    """

    def pauseProducing(self) -> None:
        """
        Write nothing more until L{resumeProducing}.
        """

    def resumeProducing(self) -> None:
        """
        Go on writing after L{pauseProducing}.
        """


class PullProducer(Producer, Protocol):
    """
    A producer that writes one chunk each time its consumer asks:
    L{IPullProducer<twisted.internet.interfaces.IPullProducer>} (such as the
    producer of C{twisted.web.static.File}), registered with
    C{streaming=False}.
    """

    def resumeProducing(self) -> None:
        """
        Write one more chunk.
        """


class Exchange(Protocol):
    """
    One request and its response, as the WSGI bridge sees them.

    Every method is called in the I/O thread.  Once the exchange is
    L{lost}, the bridge calls none of L{writeHead}, L{write}, L{finish} or
    L{abort}; it calls L{writeHead} at most once, before any L{write}, and
    ends every response it started with exactly one L{finish} or L{abort},
    unless the exchange is lost first.

    @ivar facts: what the server knows about the request, taken in the I/O
        thread before the exchange is dispatched.
    @ivar body: the request body, received whole before the exchange is
        dispatched.  The bridge owns it from then on, reads it in a WSGI
        thread (also after the client went away) and closes it: the
        exchange must not close it.
    @ivar environ: C{None} until the bridge built the WSGI environ, then
        that environ, which the application may still change.  Set in a
        WSGI thread; the exchange reads it in the I/O thread once the
        response ended, for the C{{variable}e} atoms of its access record.
    @ivar highWater: the response body bytes the bridge queues for this
        exchange before its WSGI thread waits for the I/O thread
        (L{HIGH_WATER}, or less where many exchanges share a connection).
    """

    facts: RequestFacts
    body: IO[bytes]
    environ: MutableMapping[str, Any] | None
    highWater: int

    @property
    def lost(self) -> bool:
        """
        Whether the client went away (the connection was lost, or the HTTP/2
        stream was reset) before the response was finished.
        """

    def whenLost(self, callback: Callable[[], None]) -> None:
        """
        Call C{callback} once, in the I/O thread, when the exchange is lost;
        at once if it is lost already.  It is never called for an exchange
        whose response finished.
        """

    def writeHead(
        self,
        code: int,
        reason: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        close: bool,
    ) -> None:
        """
        Start the response.

        @param code: the status code.
        @param reason: the reason phrase.
        @param headers: the response headers, in order, with C{Date} and
            C{Server} added by the bridge; they passed the checks of
            L{twsgi.wsgi.response.ResponseState}.
        @param close: close the connection once this response is sent
            (C{Connection: close} on HTTP/1.1; nothing on HTTP/2).
        """

    def write(self, data: bytes) -> None:
        """
        Send body bytes (after L{writeHead}).  An empty C{data} sends the
        head at once if it is not sent yet.  A write may find the client
        gone: then the exchange is lost by the time it returns.
        """

    def finish(self) -> None:
        """
        The response is complete.
        """

    def abort(self) -> None:
        """
        The application failed after the head was sent: cut the response
        off (close the HTTP/1.1 connection once what was written is sent,
        or reset the HTTP/2 stream) and record it as cut off by an error
        (C{cutOff="error"}).  The bridge calls nothing else on the exchange
        afterwards.
        """

    def registerProducer(self, producer: PushProducer) -> None:
        """
        Let the transport pause and resume C{producer} while the response is
        sent, until L{unregisterProducer}.  If the transport is already full,
        the exchange should pause C{producer} at once (an exchange over a
        C{twisted.web} request cannot tell, and pauses it only at the
        transport's next pause).
        """

    def unregisterProducer(self) -> None:
        """
        Stop pausing and resuming the producer given to L{registerProducer}.
        """


class SendsFromThread(Protocol):
    """
    An L{Exchange} that may also send a whole response from a WSGI thread
    (twsgi's HTTP/1.1 exchange on its own socket transport), skipping the
    hop back to the I/O thread before the client has it.
    """

    def sendWholeFromThread(
        self,
        code: int,
        reason: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        close: bool,
        body: bytes,
    ) -> Callable[[], None] | None:
        """
        Send the head and the whole body of a response now, if the
        connection allows it.  Called in a WSGI thread, instead of
        L{Exchange.writeHead}, L{Exchange.write} and L{Exchange.finish}.

        @param body: the whole body (dropped for C{HEAD}, 204 and 304).
        @return: the call that ends the exchange, to make in the I/O thread
            (unless the exchange is lost by then), or C{None} if nothing was
            sent.
        """


class LostCallbacks:
    """
    The L{Exchange.lost} and L{Exchange.whenLost} of an exchange: its
    implementation calls L{tellLost} when the exchange is lost.  Everything
    here runs in the I/O thread.
    """

    _lost = False

    def __init__(self) -> None:
        self._lostCallbacks: list[Callable[[], None]] = []

    @property
    def lost(self) -> bool:
        """
        See L{Exchange.lost}.
        """
        return self._lost

    def whenLost(self, callback: Callable[[], None]) -> None:
        """
        See L{Exchange.whenLost}.
        """
        if self._lost:
            callback()
        else:
            self._lostCallbacks.append(callback)

    def tellLost(self) -> None:
        """
        The exchange is lost: call each callback given to L{whenLost} (once).
        """
        self._lost = True
        callbacks, self._lostCallbacks = self._lostCallbacks, []
        for callback in callbacks:
            callback()


__all__ = [
    "Exchange",
    "HIGH_WATER",
    "LostCallbacks",
    "Producer",
    "PullProducer",
    "PushProducer",
    "SendsFromThread",
]
