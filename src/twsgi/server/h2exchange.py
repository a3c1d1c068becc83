# -*- test-case-name: tests.server.test_http2 -*-
"""
The hot path of HTTP/2: one L{H2Exchange} per stream whose request goes to
a WSGI application, made by L{twsgi.server.http2.Http2Stream} instead of a
C{twisted.web} request.

It is the L{Exchange<twsgi.wsgi.exchange.Exchange>} the bridge carries the
response out through, and the request the listener makes its facts and
access records of, as for HTTP/1.1 (L{twsgi.server.exchange.HotExchange}
holds what both share).  Its response goes out through its stream, within
the stream's flow-control window: the head with the first body bytes (or,
for a response without a body, as one HEADERS frame that ends the stream),
and what the responses of a connection send in one turn of the reactor in
one write.
Everything here runs in the I/O thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from twisted.internet.error import ConnectionAborted
from twisted.python.failure import Failure

from twsgi.http.h2head import HTTP2, Http2Head
from twsgi.server.exchange import ExchangeChannel, HotExchange
from twsgi.wsgi.exchange import PushProducer
from twsgi.wsgi.response import NO_BODY_STATUSES


class Stream(Protocol):
    """
    What an L{H2Exchange} needs of its stream (a
    L{twsgi.server.http2.Http2Stream}).

    @ivar connection: its L{twsgi.server.http2.TwsgiH2Connection}.
    """

    streamID: int
    connection: Any

    def lose(self, reason: Failure) -> None: ...

    def registerProducer(self, producer: PushProducer, streaming: bool) -> None: ...

    def unregisterProducer(self) -> None: ...


class H2Channel(ExchangeChannel, Protocol):
    """
    What an L{H2Exchange} needs of its connection (a
    L{twsgi.server.http2.TwsgiH2Connection}): it writes the response's
    frames.
    """

    def writeHeaders(
        self,
        streamID: int,
        status: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        end: bool = False,
    ) -> None: ...

    def flushSoon(self) -> None: ...

    def writeData(self, stream: Stream, data: bytes, soon: bool = False) -> None: ...

    def endStream(self, stream: Stream) -> None: ...

    def abortStream(self, streamID: int) -> None: ...


class H2Exchange(HotExchange):
    """
    One HTTP/2 request for a WSGI application, and its response: an
    L{Exchange} on L{twsgi.server.http2.TwsgiH2Connection}'s hot path.

    @ivar stream: its stream.
    @ivar highWater: the body bytes the bridge queues for this response
        before its WSGI thread waits (the bridge's own high-water mark is
        256 KiB): the streams of one connection are many, and one whose
        client reads nothing holds at most this much in the bridge, and
        a chunk in its stream, once its flow-control window is used up.
        A 100 KiB streamed response still never waits.
    """

    highWater = 128 * 1024
    _noBody = False
    _head: list[tuple[bytes, bytes]] | None = None
    channel: H2Channel

    def __init__(
        self,
        stream: Stream,
        head: Http2Head,
        dispatch: Callable[[HotExchange], None],
        startedAt: float,
    ) -> None:
        """
        @param stream: its stream.
        @param head: the checked facts of its header block, and its fields.
        @param dispatch: serves the exchange once the request arrived whole.
        @param startedAt: when the request began.
        """
        self.stream = stream
        length = head.contentLength
        if length is None and head.method in (b"GET", b"HEAD"):
            length = 0
        HotExchange.__init__(
            self,
            stream.connection,
            head.method,
            head.path,
            head.path.split(b"?", 1)[0],
            HTTP2,
            head.fields,
            length,
            dispatch,
            startedAt,
        )

    # -- Exchange ------------------------------------------------------------

    def writeHead(
        self,
        code: int,
        reason: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        close: bool,
    ) -> None:
        """
        Start the response: its head goes out with the first body bytes, or
        at L{finish}.  C{reason} and C{close} have no place in HTTP/2.
        """
        self.code = code
        self.startedWriting = True
        self.responseHeaders.pairs = pairs = list(headers)
        self._head = pairs
        if code in NO_BODY_STATUSES or self.method == b"HEAD":
            self._noBody = True

    def _sendHead(self, end: bool) -> None:
        head, self._head = self._head, None
        if head is not None:
            self.channel.writeHeaders(
                self.stream.streamID, b"%d" % self.code, head, end=end
            )

    def write(self, data: bytes) -> None:
        """
        Send body bytes, with the head if it is not sent yet.
        """
        if self._head is not None:
            # Corked first: the head goes out with the body, at the turn's end.
            self.channel.flushSoon()
            self._sendHead(False)
        if data and not self._noBody:
            self.sentLength += len(data)
            self.channel.writeData(self.stream, data, soon=True)

    def finish(self) -> None:
        """
        The response is complete: end the stream once what it holds is
        sent, and make its access record.
        """
        if self.lost or self.finished:
            return
        self.channel.flushSoon()
        if self._head is not None:
            # Head only: one HEADERS frame ends the stream.
            self._sendHead(True)
        else:
            self.channel.endStream(self.stream)
        self._finished()

    def abort(self) -> None:
        """
        The application failed after the head was sent: reset the stream,
        and record the response as cut off by an error.
        """
        self.cutOff = "error"
        self.channel.abortStream(self.stream.streamID)
        if not self.lost:
            # The stream is forgotten by its connection, which will not tell
            # this exchange.
            self.stream.lose(Failure(ConnectionAborted("stream reset")))

    def registerProducer(self, producer: PushProducer) -> None:
        self.stream.registerProducer(producer, True)

    def unregisterProducer(self) -> None:
        self.stream.unregisterProducer()


__all__ = ["H2Exchange", "Stream"]
