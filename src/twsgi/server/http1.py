# -*- test-case-name: tests.server.test_http1 -*-
"""
twsgi's own HTTP/1.1 connection: a L{Protocol} that frames requests strictly
and enforces the limits and timeouts of its listener.

It parses with the pure L{twsgi.http.parse} parsers (the head, then a body of
known length or a chunked one), answers one request at a time (the bytes of
pipelined requests wait in a bounded buffer, and reading stops past it),
writes the status line and headers itself, and runs every timer on its
listener's reactor.  It is its transport's L{IPushProducer}: a transport that
cannot send pauses the response, and stops reading too.  It is built on
Twisted's public API only.

A request has one of two forms, chosen from its path when its head arrives
(L{Listener.exchangeRoute}):

  - on the hot path, a request for the WSGI application is an
    L{HTTP11Exchange<twsgi.server.exchange.HTTP11Exchange>}, handed to the
    bridge with no C{twisted.web} request at all;
  - anything else (health, C{/metrics}, static files, a resource tree) is a
    C{twisted.web} request (the listener's C{requestFactory}) whose channel
    is this connection: this class gives it the public methods of a
    C{twisted.web} channel (C{writeHeaders}, C{write}, C{writeSequence},
    C{requestDone}, C{getPeer}, C{getHost}, C{isSecure},
    C{registerProducer}, C{unregisterProducer}, C{loseConnection}).

Everything here runs in the I/O thread.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, cast
from typing import Protocol as TypingProtocol

from twisted.internet.interfaces import (
    IHalfCloseableProtocol,
    IPushProducer,
    ISSLTransport,
    ITCPTransport,
)
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http_headers import Headers
from zope.interface import implementer

from twsgi.http.limits import Limits
from twsgi.http.parse import (
    ChunkedDecoder,
    FramingError,
    HeadParser,
    RequestHead,
    errorResponse,
)
from twsgi.logs.clock import ResettableCall, TimeoutClock
from twsgi.server.closing import watchClose
from twsgi.server.connections import DrainableChannel
from twsgi.server.exchange import HotExchange, HTTP11Exchange, WebRequest
from twsgi.server.negotiate import ChannelSwitch
from twsgi.server.pulling import ReactorPullToPush
from twsgi.server.transport import Address
from twsgi.wsgi.environ import RequestFacts
from twsgi.wsgi.exchange import PullProducer, PushProducer
from twsgi.wsgi.webrequest import closeDelimited, endCutOff

_log = Logger(namespace="twsgi")

LINGER = 2.0
"""
Seconds a connection the server closes keeps reading (and discarding) after
its last byte, when the client may still be sending: after an error response,
so that the client reads the response instead of a reset; and after closing
an idle connection (L{TwsgiChannel.closeIdle}).
"""

PIPELINE_BUFFER = 16 * 1024
"""
Bytes of pipelined requests kept while a request is answered; past them the
connection stops reading until the response is done.
"""

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class Listener(TypingProtocol):
    """
    What a connection needs of its listener (a
    L{twsgi.server.site.TwsgiSite}).

    @ivar limits: the limits every connection enforces.
    @ivar reactor: the reactor whose clock runs the timers.
    @ivar requestFactory: makes the C{twisted.web} request of a request
        that is not on the hot path.
    """

    limits: Limits
    reactor: TimeoutClock
    requestFactory: Callable[..., Any]

    def exchangeRoute(self, path: bytes) -> Callable[[HotExchange], None] | None:
        """
        What serves a request for C{path} on the hot path, if anything.
        """

    def exchangeFacts(self, exchange: HotExchange) -> RequestFacts:
        """
        The facts of a request on the hot path, once it arrived whole.
        """

    def connectionOpened(self, channel: TwsgiChannel) -> None:
        """
        A connection was made.
        """

    def connectionClosed(self, channel: TwsgiChannel) -> None:
        """
        A connection was lost.
        """

    def requestRejected(self, channel: TwsgiChannel, error: FramingError) -> None:
        """
        A bad request was answered with C{error}.
        """

    def log(self, request: HTTP11Exchange) -> None:
        """
        Make the access record of a finished request.
        """


class State(enum.Enum):
    """
    What a connection does with the bytes that arrive.
    """

    HEAD = "head"
    """Reading the head of the next request (or waiting for it)."""
    LENGTH = "length"
    """Reading a body of known length."""
    CHUNKED = "chunked"
    """Reading a chunked body."""
    ANSWERING = "answering"
    """A whole request is being answered: what arrives waits."""
    DEAD = "dead"
    """Rejected, closing or lost: what arrives is dropped."""


class Timer(enum.Enum):
    """
    The kinds of the one timer a connection runs.
    """

    IDLE = "idle"
    """The keep-alive timeout: close an idle connection."""
    PARKED = "parked"
    """The keep-alive timer left running, with no effect, while the request
    that arrived before it ran out is answered (moving a timer later is far
    cheaper than making a new one)."""
    HEADER = "header"
    """The request head did not arrive in time: 408."""
    BODY = "body"
    """The request body stopped arriving: 408."""
    LINGER = "linger"
    """After an error response: abort."""
    LINGERED = "lingered"
    """After closing an idle connection: close."""


@implementer(IHalfCloseableProtocol, IPushProducer)
class TwsgiChannel(DrainableChannel, Protocol):
    """
    A strict HTTP/1.1 connection of one listener.

    L{twsgi.server.site.TwsgiSite.buildProtocol} makes one as
    C{TwsgiChannel(site)} inside a L{ChannelSwitch}, which hands the
    connection to HTTP/2 instead when ALPN chose it (see L{handOver}).

    @ivar site: the listener's L{twsgi.server.site.TwsgiSite}.
    @ivar limits: the L{Limits} of the listener.
    @ivar requests: the request being read or answered (at most one).
    @ivar headStartedAt: when the head of the rejected request began to
        arrive, if it came in more than one read (else C{None}): the start
        of its access record, which a 408 for a slow head would otherwise
        show as lasting no time.
    @ivar readClosed: C{True} once the client closed its side of the
        connection (see L{readConnectionLost}).
    @ivar headKeptAlive: whether the head of the response being sent said
        that the connection stays open (no C{Connection: close}); set by
        whatever writes the head (L{writeHeaders}, or the hot path's
        L{twsgi.server.exchange.HTTP11Exchange}), read by L{requestDone}.
    """

    readClosed = False
    headKeptAlive = False
    transport: Any

    def __init__(self, site: Listener) -> None:
        self.site = self.factory = site
        self.limits = site.limits
        self.callLater = site.reactor.callLater
        self._clock = site.reactor
        self.requests: list[HTTP11Exchange | WebRequest] = []
        self._parser = HeadParser(self.limits)
        self._state = State.HEAD
        self._remaining = 0
        self._decoder: ChunkedDecoder | None = None
        self._request: HTTP11Exchange | WebRequest | None = None
        self._head: RequestHead | None = None
        self._timer: ResettableCall | None = None
        self._timerKind: Timer | None = None
        self._sendCall: ResettableCall | None = None
        self._pending: list[bytes] = []
        self._pendingSize = 0
        self._producer: PushProducer | None = None
        self._registered = False
        self._waiting = False
        self._readPaused = False
        self._secure: bool | None = None
        self._host: Address | None = None
        self._peer: Address | None = None
        self._headSince = 0.0
        self.headStartedAt: float | None = None

    # -- timers ------------------------------------------------------------

    def _arm(self, kind: Timer, seconds: float) -> None:
        """
        Run the timeout C{kind} after C{seconds}, replacing any other.
        """
        if kind is Timer.IDLE and self._timerKind is Timer.PARKED and seconds > 0:
            # The keep-alive timer of the previous response, parked while
            # this request was answered.
            timer = self._timer
            if timer is not None and timer.active():
                self._timerKind = kind
                timer.reset(seconds)
                return
        self._cancelTimer()
        if seconds > 0:
            self._timerKind = kind
            self._timer = self.callLater(seconds, self._timedOut, kind)

    def _cancelTimer(self) -> None:
        timer = self._timer
        if timer is not None:
            if timer.active():
                timer.cancel()
            self._timer = None
            self._timerKind = None

    def _timedOut(self, kind: Timer) -> None:
        parked = self._timerKind is Timer.PARKED
        self._timer = None
        self._timerKind = None
        if parked:
            # A request is being answered: no timeout runs meanwhile.
            return
        if kind is Timer.IDLE:
            self.closeIdle()
        elif kind is Timer.LINGER:
            self.transport.abortConnection()
        elif kind is Timer.LINGERED:
            self.transport.loseConnection()
        else:
            what = "headers" if kind is Timer.HEADER else "request body"
            self._reject(FramingError(408, f"{what} not received in time"), kind)

    # -- the transport's producer --------------------------------------------

    def _pauseReading(self) -> None:
        if self._registered and not self._readPaused:
            self._readPaused = True
            self.transport.pauseProducing()

    def _resumeReading(self) -> None:
        if self._readPaused:
            self._readPaused = False
            self.transport.resumeProducing()

    def _unregister(self) -> None:
        """
        Stop being the transport's producer (a TLS transport closes only
        once its producer is gone).
        """
        if self._registered:
            self._registered = False
            self.transport.unregisterProducer()

    def pauseProducing(self) -> None:
        """
        The transport's buffer is full (the client reads slower than the
        response is written, or not at all): pause the response, stop
        reading, and give the client the send timeout to read some of it,
        else abort the connection, which stops the response's producer (and
        so frees its WSGI thread).
        """
        self._waiting = True
        if self._producer is not None:
            self._producer.pauseProducing()
        if self._state is not State.ANSWERING:
            self._pauseReading()
        if self._sendCall is None and self.limits.sendTimeout > 0:
            self._sendCall = self.callLater(self.limits.sendTimeout, self._sendTimedOut)

    def resumeProducing(self) -> None:
        """
        The transport's buffer drained: resume the response, and read again
        unless a request is being answered.
        """
        self._waiting = False
        self._cancelSend()
        if self._producer is not None:
            self._producer.resumeProducing()
        if self._state is not State.ANSWERING:
            self._resumeReading()

    def stopProducing(self) -> None:
        """
        The transport is gone: stop the response's producer.
        """
        if self._producer is not None:
            self._producer.stopProducing()

    def _cancelSend(self) -> None:
        call = self._sendCall
        if call is not None:
            if call.active():
                call.cancel()
            self._sendCall = None

    def _sendTimedOut(self) -> None:
        self._sendCall = None
        if self._state is State.DEAD:
            return
        self._cutOff("send-timeout")

    def _cutOff(self, why: str) -> None:
        """
        Abort the connection in the middle of a response; the request's
        access record says C{why} (see L{AccessRecord.cutOff}).
        """
        self._sayCutOff(why)
        self.transport.abortConnection()

    def _sayCutOff(self, why: str) -> None:
        """
        Make the access record of the request in flight say that the server
        cut its response off, and C{why}.
        """
        for request in self.requests:
            if not getattr(request, "cutOff", ""):
                request.cutOff = why

    def abortResponse(self) -> None:
        """
        The response's pull producer failed (see L{ReactorPullToPush}): the
        response cannot be finished, so its connection ends as for a WSGI
        application that fails in the middle of its response
        (L{endCutOff}), and its request's access record says it was cut off
        by an error.
        """
        self._sayCutOff("error")
        endCutOff(self, bool(self.requests) and closeDelimited(self.requests[0]))

    # -- what a request calls (a twisted.web channel's public methods) -------

    def registerProducer(
        self, producer: PushProducer | PullProducer, streaming: bool
    ) -> None:
        """
        Take a response's producer.  A push producer is paused at once if
        the transport is full; a pull producer (a static file, a large
        C{wsgi.file_wrapper}) is driven from this connection's reactor (see
        L{twsgi.server.pulling}).
        """
        if self._producer is not None:
            raise RuntimeError(
                f"Cannot register producer {producer!r}, because producer "
                f"{self._producer!r} was never unregistered."
            )
        if streaming:
            # Registered with streaming=True: an IPushProducer.
            push = cast(PushProducer, producer)
            self._producer = push
            if self._waiting:
                push.pauseProducing()
            return
        adapter = ReactorPullToPush(
            producer, self, self.callLater, paused=self._waiting
        )
        self._producer = adapter
        adapter.start()

    def unregisterProducer(self) -> None:
        producer, self._producer = self._producer, None
        if isinstance(producer, ReactorPullToPush):
            producer.stop()

    def writeHeaders(
        self, version: bytes, code: bytes, reason: bytes, headers: Headers
    ) -> None:
        """
        Write the status line and the headers of a response, with
        C{Connection: close} if the connection closes after it (RFC 9112
        section 9.6).
        """
        if not self.persistent:
            headers.setRawHeaders(b"Connection", [b"close"])
        self.headKeptAlive = self.persistent
        parts = [version, b" ", code, b" ", reason, b"\r\n"]
        for name, values in headers.getAllRawHeaders():
            for value in values:
                parts += (name, b": ", value, b"\r\n")
        parts.append(b"\r\n")
        self.transport.write(b"".join(parts))

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    def writeSequence(self, data: list[bytes]) -> None:
        self.transport.writeSequence(data)

    def getHost(self) -> Address:
        """
        The local address, asked of the transport once per connection.
        """
        host = self._host
        if host is None:
            host = self._host = self.transport.getHost()
        return host

    def getPeer(self) -> Address:
        """
        The client's address, asked of the transport once per connection.
        """
        peer = self._peer
        if peer is None:
            peer = self._peer = self.transport.getPeer()
        return peer

    def isSecure(self) -> bool:
        """
        Whether the connection is TLS, asked once per connection.
        """
        secure = self._secure
        if secure is None:
            secure = self._secure = ISSLTransport.providedBy(self.transport)
        return secure

    def requestDone(self, request: HTTP11Exchange | WebRequest) -> None:
        """
        A response is finished: close if it was the last, else wait for the
        next request with the keep-alive timeout and parse what was
        pipelined meanwhile.

        A drain that began once the head had gone out saying that the
        connection stays open (a streamed body, a large file) cannot take
        that back: the client may send its next request as soon as it has
        the response, and a close crossing it loses it (a proxy answers a
        POST lost so with 502).  So the connection is then idle, as any
        other, and gets the drain's grace for one more request, which is
        answered with C{Connection: close}.
        """
        if request in self.requests:
            self.requests.remove(request)
        if not self._waiting:
            self._resumeReading()
        keptAlive, self.headKeptAlive = self.headKeptAlive, False
        if not self.persistent:
            if not (keptAlive and self.draining and not self.readClosed):
                self.loseConnection()
                return
            self.persistent = True
        if self._state is State.DEAD:
            return
        self._arm(Timer.IDLE, self.limits.keepAliveTimeout)
        self._state = State.HEAD
        data = b"".join(self._pending)
        self._pending = []
        self._pendingSize = 0
        if data:
            self.dataReceived(data)
        if self.readClosed and self._state is State.HEAD:
            # The pipelined bytes left after a half-close held no whole
            # request.
            self._inputEnded()
        elif self.draining:
            self.graceIfIdle()

    def loseConnection(self) -> None:
        """
        Close after what was written is sent (see
        L{DrainableChannel.loseConnection}).  The send timeout stops: no
        longer the transport's producer, this channel would not hear that
        a client that still reads drained its buffer, and the close watch
        aborts a client that stops reading (see L{twsgi.server.closing}).
        """
        self._cancelSend()
        self._unregister()
        super().loseConnection()

    # -- the connection ----------------------------------------------------

    @property
    def inFlight(self) -> int:
        return len(self.requests)

    def isIdle(self) -> bool:
        return (
            not self.requests and self._state is State.HEAD and not self._parser.started
        )

    def connectionMade(self) -> None:
        transport = self.transport
        if ITCPTransport.providedBy(transport):
            transport.setTcpNoDelay(True)
        if IPushProducer.providedBy(transport):
            transport.registerProducer(self, True)
            self._registered = True
        self._arm(Timer.IDLE, self.limits.keepAliveTimeout)
        self.site.connectionOpened(self)

    def handOver(self) -> None:
        """
        The connection goes to another protocol (HTTP/2, chosen in ALPN,
        see L{ChannelSwitch}): stop every timer of this one and stop being
        the transport's producer.
        """
        self._cancelTimer()
        self._cancelSend()
        self.stopDrainTimers()
        self._unregister()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._cancelTimer()
        self._cancelSend()
        self.stopDrainTimers()
        self._state = State.DEAD
        requests, self.requests = self.requests, []
        for request in requests:
            request.connectionLost(reason)
        self.site.connectionClosed(self)

    # -- a client that half-closes -------------------------------------------

    def readConnectionLost(self) -> None:
        """
        The client closed its side of the connection (a TCP FIN:
        C{shutdown(SHUT_WR)}, C{nc -N}) and still reads.  RFC 9112 section
        9.6: the requests that arrived whole are answered, in order (the
        pipelined ones too), then the connection closes; the last response
        says C{Connection: close}.  A request cut short by the half-close is
        dropped, as if its client had disconnected.
        """
        if self.readClosed:
            # The transport read its end of file again, once resumed.
            return
        self.readClosed = True
        if self._state is State.ANSWERING:
            if not self._pending:
                self.persistent = False
            return
        self._inputEnded()

    def writeConnectionLost(self) -> None:
        """
        Our own half-close (after a rejected request, see L{_reject}):
        reading goes on until the client closes or the linger ends.
        """

    def _inputEnded(self) -> None:
        """
        The client half-closed and every request it sent whole is answered:
        close.  What arrived of a further request is dropped (a request
        whose body was still arriving is recorded as its client leaving,
        when the connection ends).
        """
        self._cancelTimer()
        if self._state is State.DEAD:
            # Rejected and lingering, or closing already.
            self.transport.loseConnection()
            return
        self._state = State.DEAD
        self.loseConnection()

    # -- reading requests ----------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        """
        Parse request bytes; while a request is being answered, keep the
        bytes of pipelined requests without parsing them.
        """
        state = self._state
        if state is State.DEAD:
            return
        if state is State.ANSWERING:
            self._pending.append(data)
            self._pendingSize += len(data)
            self._bufferFilled()
            return
        try:
            self._receive(data)
        except FramingError as error:
            self._reject(error)

    def _receive(self, data: bytes) -> None:
        while True:
            state = self._state
            if state is State.HEAD:
                result = self._parser.feed(data)
                if result is None:
                    if self._parser.started and self._timerKind is not Timer.HEADER:
                        self._arm(Timer.HEADER, self.limits.headerTimeout)
                        self._headSince = self._clock.seconds()
                    return
                head, data = result
                self._begin(head)
            elif state is State.LENGTH:
                take = min(self._remaining, len(data))
                if take:
                    assert self._request is not None
                    self._request.handleContentChunk(data[:take])
                    self._remaining -= take
                    data = data[take:]
                if self._remaining:
                    self._stillReceiving()
                    return
                self._complete(data)
                return
            elif state is State.CHUNKED:
                assert self._decoder is not None
                chunks, rest = self._decoder.feed(data)
                assert self._request is not None
                for chunk in chunks:
                    self._request.handleContentChunk(chunk)
                if rest is None:
                    self._stillReceiving()
                    return
                self._complete(rest)
                return
            else:
                return

    def _stillReceiving(self) -> None:
        timer = self._timer
        if self._timerKind is Timer.BODY and timer is not None:
            timer.reset(self.limits.bodyTimeout)
        else:
            self._arm(Timer.BODY, self.limits.bodyTimeout)

    def _begin(self, head: RequestHead) -> None:
        """
        A request head passed every check: make its request object, and
        decide how its body is read.
        """
        length = head.contentLength
        if length is not None and length > self.limits.maxBody:
            # Decided from Content-Length, before reading the body; also
            # instead of a 100 Continue (RFC 9110 section 10.1.1).
            raise FramingError(413, "request body too large")
        # Once the server drains, every response closes its connection.
        self.persistent = head.persistent and not self.draining
        path = head.target.split(b"?", 1)[0]
        target = self.site.exchangeRoute(path)
        if target is not None:
            # The hot path: no twisted.web request.
            request: HTTP11Exchange | WebRequest = HTTP11Exchange(
                self, head, path, target, self._clock.seconds()
            )
        else:
            webRequest: WebRequest = self.site.requestFactory(self, len(self.requests))
            headers = webRequest.requestHeaders
            for name, value in head.headers:
                headers.addRawHeader(name, value)
            webRequest.parseCookies()
            webRequest.gotLength(length)
            request = webRequest
        self.requests.append(request)
        self._request = request
        self._head = head
        if length == 0:
            self._state = State.LENGTH
            self._remaining = 0
            return
        if head.expectContinue:
            self.transport.write(CONTINUE)
        if length is None:
            self._state = State.CHUNKED
            self._decoder = ChunkedDecoder(self.limits)
        else:
            self._state = State.LENGTH
            self._remaining = length

    def _complete(self, rest: bytes) -> None:
        """
        The whole request has arrived: hand it on.  Bytes after it wait in
        the pipeline buffer until L{requestDone} parses them.
        """
        if self._timerKind is Timer.IDLE:
            # Parked, not cancelled: see _arm.
            self._timerKind = Timer.PARKED
        else:
            self._cancelTimer()
        request, head = self._request, self._head
        assert request is not None and head is not None
        self._request = self._head = self._decoder = None
        self._parser.next()
        self._state = State.ANSWERING
        if rest:
            self._pending.append(rest)
            self._pendingSize += len(rest)
            self._bufferFilled()
        elif self.readClosed:
            # Nothing follows this request: its response is the last.
            self.persistent = False
        if isinstance(request, HTTP11Exchange):
            request.requestReceived(self.site.exchangeFacts)
        else:
            request.requestReceived(head.method, head.target, head.version)

    def _bufferFilled(self) -> None:
        """
        Bytes of pipelined requests wait while a request is answered: past
        L{PIPELINE_BUFFER}, stop reading until the request is done.  Also
        when the bytes are what is left of the buffer after the previous
        request (else each request answered would let one more read in, and
        a client pipelining faster than it is served would grow the buffer
        without bound).
        """
        if self._pendingSize > PIPELINE_BUFFER:
            self._pauseReading()

    @property
    def partialHead(self) -> HeadParser:
        """
        The parser of the request being read: what is known of the head of
        a request that is rejected.
        """
        return self._parser

    @property
    def partialRequest(self) -> HTTP11Exchange | WebRequest | None:
        """
        The request whose body is being read, if any.
        """
        return self._request

    def _reject(self, error: FramingError, timedOut: Timer | None = None) -> None:
        """
        Answer a bad request, stop parsing, and close once the client has
        had the chance to read the answer.  The site's C{requestRejected}
        hears of it, with this request still in L{partialHead} and
        L{partialRequest}, and L{headStartedAt} set.

        @param timedOut: the timeout that ran out, if that is the error.
        """
        if Timer.HEADER in (timedOut, self._timerKind):
            # The header timeout runs for this head, armed when it began.
            self.headStartedAt = self._headSince
        self._cancelTimer()
        if self._state is State.DEAD or self.transport is None:
            return
        self._state = State.DEAD
        self._pending = []
        self._pendingSize = 0
        self.transport.write(errorResponse(error.status, error.reason))
        self.site.requestRejected(self, error)
        self._closeLingering(Timer.LINGER)

    def closeIdle(self) -> None:
        """
        Close this connection, which has no request in flight (its keep-alive
        timeout, or a drain's grace, ran out) without turning a request that
        its client sends at that very moment into a reset.

        A full close with unread bytes makes the kernel answer them with a
        reset, which can destroy a response the client has not read yet
        (RFC 9112 section 9.6).  So only our side is closed (a FIN after
        every byte written), and what still arrives is read and thrown away
        until the client closes too, or for L{LINGER} seconds; then the
        connection closes.  A client whose request crossed our FIN reads an
        end of file, and may retry the request on a new connection (RFC 9112
        section 9.3.1).
        """
        self._cancelTimer()
        if self._state is State.DEAD or self.transport is None:
            return
        self._state = State.DEAD
        self._closeLingering(Timer.LINGERED)

    def _closeLingering(self, then: Timer) -> None:
        """
        Close our side of the connection and go on reading (L{dataReceived}
        drops what arrives once dead); after L{LINGER} seconds, the timeout
        C{then} ends it: L{Timer.LINGER} aborts, and L{Timer.LINGERED}
        closes.
        """
        loseWrite = getattr(self.transport, "loseWriteConnection", None)
        if ISSLTransport.providedBy(self.transport):
            # Under TLS, loseWriteConnection half-closes the TCP stream
            # beneath it (no close_notify: the client reads a truncated
            # stream, and Twisted's TLS layer raises on its next bytes);
            # TLS's own close keeps reading until the peer answers it.
            loseWrite = None
        self._unregister()
        self._resumeReading()
        if loseWrite is None:
            watchClose(self)
            self.transport.loseConnection()
            return
        loseWrite()
        self._arm(then, LINGER)


def channelFactory(site: Listener) -> ChannelSwitch:
    """
    The C{protocol} of a L{twsgi.server.site.TwsgiSite}: a L{TwsgiChannel}
    inside the switch that hands the connection to HTTP/2 when ALPN chose
    it (see L{twsgi.server.negotiate.ChannelSwitch}).
    """
    return ChannelSwitch(site, lambda: TwsgiChannel(site))


__all__ = [
    "LINGER",
    "PIPELINE_BUFFER",
    "Listener",
    "State",
    "Timer",
    "TwsgiChannel",
    "channelFactory",
]
