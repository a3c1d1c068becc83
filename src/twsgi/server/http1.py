# -*- test-case-name: tests.server.test_http1 -*-
"""
An L{HTTPChannel} that frames requests strictly and enforces the limits and
timeouts of its listener.

C{twisted.web}'s channel parses requests with a lenient line receiver.  This
one replaces the parsing half (L{TwsgiChannel.dataReceived}) with the pure
L{twsgi.http.parse} parsers, and keeps the rest of L{HTTPChannel}: the request
objects, head-of-line blocking of pipelined requests, producers and
C{requestDone}.  Everything here runs in the I/O thread.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IHalfCloseableProtocol, ISSLTransport
from twisted.logger import Logger
from twisted.web import http
from zope.interface import implementer

from twsgi.http.limits import Limits
from twsgi.http.parse import ChunkedDecoder, FramingError, HeadParser, errorResponse
from twsgi.server.closing import watchClose
from twsgi.server.connections import DrainableChannel
from twsgi.server.negotiate import ChannelSwitch
from twsgi.server.pulling import ReactorPullToPush

_log = Logger(namespace="twsgi")

LINGER = 2.0
"""
Seconds a connection the server closes keeps reading (and discarding) after
its last byte, when the client may still be sending: after an error response,
so that the client reads the response instead of a reset; and after closing
an idle connection (L{TwsgiChannel.closeIdle}).
"""


_PARKED = "parked"
"""
The kind of a keep-alive timer left running, with no effect, while the
request that arrived before it ran out is answered.
"""


@implementer(IHalfCloseableProtocol)
class TwsgiChannel(DrainableChannel, http.HTTPChannel):
    """
    A strict HTTP/1.1 channel.

    @ivar limits: the L{Limits} of the listener.
    @ivar rejected: the L{FramingError} that closed this connection, if any.
    @ivar readClosed: C{True} once the client closed its side of the
        connection (see L{readConnectionLost}).
    """

    readClosed = False

    site: Any = None
    transport: Any
    callLater: Any

    def __init__(self, limits: Limits | None = None) -> None:
        super().__init__()
        self.limits = limits if limits is not None else Limits()
        self._parser = HeadParser(self.limits)
        self._state = "head"
        self._remaining = 0
        self._decoder: ChunkedDecoder | None = None
        self._request: Any = None
        self._head: Any = None
        self._timer: Any = None
        self._timerKind = ""
        self._sendCall: Any = None
        self.rejected: FramingError | None = None

    # -- timers ------------------------------------------------------------

    def _arm(self, kind: str, seconds: float) -> None:
        """
        Run the timeout called C{kind} after C{seconds}, replacing any other.
        """
        if kind == "idle" and self._timerKind == _PARKED and seconds > 0:
            # The keep-alive timer of the previous response, parked while
            # this request was answered: moving a timer later is far cheaper
            # than a new one (the reactor only notes the new time).
            timer = self._timer
            if timer.active():
                self._timerKind = kind
                timer.reset(seconds)
                return
        self._cancelTimer()
        if seconds > 0:
            self._timerKind = kind
            self._timer = self.callLater(seconds, self._timedOut, kind)

    def _cancelTimer(self) -> None:
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None
            self._timerKind = ""

    def _timedOut(self, kind: str) -> None:
        parked = self._timerKind == _PARKED
        self._timer = None
        self._timerKind = ""
        if parked:
            # A request is being answered: no timeout runs meanwhile.
            return
        if kind == "idle":
            self.closeIdle()
        elif kind == "linger":
            self.transport.abortConnection()
        elif kind == "lingered":
            self.transport.loseConnection()
        else:
            what = "headers" if kind == "header" else "request body"
            self._reject(FramingError(408, f"{what} not received in time"))

    # -- a client that does not read ------------------------------------------

    def pauseProducing(self) -> None:
        """
        The transport's buffer is full (the client reads slower than the
        response is written, or not at all): pause, and give the client the
        send timeout to read some of it, else abort the connection, which
        stops the response's producer (and so frees its WSGI thread).
        """
        super().pauseProducing()
        if self._sendCall is None and self.limits.sendTimeout > 0:
            self._sendCall = self.callLater(self.limits.sendTimeout, self._sendTimedOut)

    def resumeProducing(self) -> None:
        self._cancelSend()
        super().resumeProducing()

    def _cancelSend(self) -> None:
        if self._sendCall is not None:
            if self._sendCall.active():
                self._sendCall.cancel()
            self._sendCall = None

    def _sendTimedOut(self) -> None:
        self._sendCall = None
        if self._state == "dead":
            return
        for request in self.requests:
            if not getattr(request, "cutOff", ""):
                request.cutOff = "send-timeout"
        self.transport.abortConnection()

    # -- pull producers -------------------------------------------------------

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        """
        Take a response's producer; a pull producer (a static file, a large
        C{wsgi.file_wrapper}) is driven from this channel's reactor rather
        than from the global cooperator (see L{twsgi.server.pulling}).
        """
        if streaming:
            super().registerProducer(producer, True)
            return
        adapter = ReactorPullToPush(
            producer, self, self.callLater, paused=self._waitingForTransport
        )
        super().registerProducer(adapter, True)
        adapter.start()

    def unregisterProducer(self) -> None:
        producer = self._requestProducer
        super().unregisterProducer()
        if isinstance(producer, ReactorPullToPush):
            producer.stop()

    # -- the connection ----------------------------------------------------

    _host: Any = None
    _peer: Any = None

    def getHost(self) -> Any:
        """
        The local address, asked of the transport once per connection (a
        C{getsockname()} call every request otherwise).
        """
        host = self._host
        if host is None:
            host = self._host = self.transport.getHost()
        return host

    def getPeer(self) -> Any:
        """
        The client's address, made once per connection.
        """
        peer = self._peer
        if peer is None:
            peer = self._peer = self.transport.getPeer()
        return peer

    def connectionMade(self) -> None:
        # Our own timers replace TimeoutMixin's single idle timeout.
        self.timeOut = None
        super().connectionMade()
        self._arm("idle", self.limits.keepAliveTimeout)
        opened = getattr(self.site, "connectionOpened", None)
        if opened is not None:
            opened(self)

    def receivingRequest(self) -> bool:
        return self._state != "head" or self._parser.started

    def setTimeout(self, period: Any) -> Any:
        """
        C{TimeoutMixin}'s timeout is not used; C{None} (which is what the
        wrapper sends when HTTP/2 takes the connection over) also stops our
        own timers.
        """
        if period is None:
            self._cancelTimer()
            self._cancelSend()
        return super().setTimeout(period)

    def connectionLost(self, reason: Any = None) -> None:
        self._cancelTimer()
        self._cancelSend()
        self._state = "dead"
        super().connectionLost(reason)
        closed = getattr(self.site, "connectionClosed", None)
        if closed is not None:
            closed(self)

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
        if self._handlingRequest:
            if not self._dataBuffer:
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
        if self._state == "dead":
            # Rejected and lingering, or closing already.
            self.transport.loseConnection()
            return
        self._state = "dead"
        self.loseConnection()

    def dataReceived(self, data: bytes) -> None:
        """
        Parse request bytes; while a request is being answered, buffer the
        bytes of pipelined requests without parsing them (as L{HTTPChannel}
        does).
        """
        if self._state == "dead":
            return
        if self._handlingRequest:
            self._dataBuffer.append(data)
            self._bufferFilled()
            return
        try:
            self._receive(data)
        except FramingError as error:
            self._reject(error)

    def _receive(self, data: bytes) -> None:
        while True:
            state = self._state
            if state == "head":
                result = self._parser.feed(data)
                if result is None:
                    if self._parser.started and self._timerKind != "header":
                        self._arm("header", self.limits.headerTimeout)
                    return
                head, data = result
                self._begin(head)
            elif state == "length":
                take = min(self._remaining, len(data))
                if take:
                    self._request.handleContentChunk(data[:take])
                    self._remaining -= take
                    data = data[take:]
                if self._remaining:
                    self._stillReceiving()
                    return
                self._complete(data)
                return
            elif state == "chunked":
                assert self._decoder is not None
                chunks, rest = self._decoder.feed(data)
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
        if self._timerKind == "body" and self._timer is not None:
            self._timer.reset(self.limits.bodyTimeout)
        else:
            self._arm("body", self.limits.bodyTimeout)

    def _begin(self, head: Any) -> None:
        """
        A request head passed every check: make its request object, and
        decide how its body is read.
        """
        length = head.contentLength
        if length is not None and length > self.limits.maxBody:
            # Decided from Content-Length, before reading the body; also
            # instead of a 100 Continue (RFC 9110 section 10.1.1).
            raise FramingError(413, "request body too large")
        request = self.requestFactory(self, len(self.requests))
        self.requests.append(request)
        headers = request.requestHeaders
        for name, value in head.headers:
            headers.addRawHeader(name, value)
        # Once the server drains, every response closes its connection.
        self.persistent = head.persistent and not self.draining
        request.parseCookies()
        request.gotLength(length)
        self._request = request
        self._head = head
        if length == 0:
            self._state = "length"
            self._remaining = 0
            return
        if head.expectContinue:
            self._send100Continue()
        if length is None:
            self._state = "chunked"
            self._decoder = ChunkedDecoder(self.limits)
        else:
            self._state = "length"
            self._remaining = length

    def _complete(self, rest: bytes) -> None:
        """
        The whole request has arrived: hand it on.  Bytes after it wait in
        C{_dataBuffer} until C{requestDone} replays them.
        """
        if self._timerKind == "idle":
            # Parked, not cancelled: see _arm.
            self._timerKind = _PARKED
        else:
            self._cancelTimer()
        request, head = self._request, self._head
        self._request = self._head = self._decoder = None
        self._parser = HeadParser(self.limits)
        self._state = "head"
        self._handlingRequest = True
        if rest:
            self._dataBuffer.append(rest)
            self._bufferFilled()
        elif self.readClosed:
            # Nothing follows this request: its response is the last.
            self.persistent = False
        request.requestReceived(head.method, head.target, head.version)

    def _bufferFilled(self) -> None:
        """
        Bytes of pipelined requests wait while a request is answered: past
        a little, stop reading until the request is done.  Also when the
        bytes are what is left of the buffer after the previous request
        (else each request answered would let one more read in, and a
        client pipelining faster than it is served would grow the buffer
        without bound), and also while the transport is full (the next
        C{requestDone} or C{resumeProducing} reads again).
        """
        if sum(map(len, self._dataBuffer)) > self._optimisticEagerReadSize:
            self._networkProducer.pauseProducing()

    def requestDone(self, request: Any) -> None:
        """
        A response is finished: wait for the next request with the
        keep-alive timeout, then parse what was pipelined meanwhile.
        """
        if self.persistent and self._state != "dead":
            self._arm("idle", self.limits.keepAliveTimeout)
        super().requestDone(request)
        if self.readClosed and not self._handlingRequest and self._state != "dead":
            # The pipelined bytes left after a half-close held no whole
            # request.
            self._inputEnded()

    @property
    def partialHead(self) -> HeadParser:
        """
        The parser of the request being read: what is known of the head of
        a request that is rejected.
        """
        return self._parser

    @property
    def partialRequest(self) -> Any:
        """
        The request whose body is being read, if any.
        """
        return self._request

    def _reject(self, error: FramingError) -> None:
        """
        Answer a bad request, stop parsing, and close once the client has
        had the chance to read the answer.  The site's C{requestRejected}
        hears of it, with this request still in L{partialHead} and
        L{partialRequest}.
        """
        self._cancelTimer()
        if self._state == "dead" or self.transport is None:
            return
        self._state = "dead"
        self.rejected = error
        self._dataBuffer = []
        extra = b""
        if error.status == 503:
            extra = b"Retry-After: 1\r\n"
        self.transport.write(errorResponse(error.status, error.reason, extra))
        site = getattr(self, "site", None)
        notify = getattr(site, "requestRejected", None)
        if notify is not None:
            notify(self, error)
        self._closeLingering("linger")

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
        if self._state == "dead" or self.transport is None:
            return
        self._state = "dead"
        self._closeLingering("lingered")

    def _closeLingering(self, then: str) -> None:
        """
        Close our side of the connection and go on reading (L{dataReceived}
        drops what arrives once C{_state} is C{"dead"}); after L{LINGER}
        seconds, the timeout C{then} ends it: C{"linger"} aborts, and
        C{"lingered"} closes.
        """
        loseWrite = getattr(self.transport, "loseWriteConnection", None)
        if ISSLTransport.providedBy(self.transport):
            # Under TLS, loseWriteConnection half-closes the TCP stream
            # beneath it (no close_notify: the client reads a truncated
            # stream, and Twisted's TLS layer raises on its next bytes);
            # TLS's own close keeps reading until the peer answers it.
            loseWrite = None
        self._networkProducer.unregisterProducer()
        self._networkProducer.resumeProducing()
        if loseWrite is None:
            watchClose(self)
            self.transport.loseConnection()
            return
        loseWrite()
        self._arm(then, LINGER)


def channelFactory(site: Any) -> Any:
    """
    The C{protocol} of a L{twsgi.server.site.TwsgiSite}: a L{TwsgiChannel} inside
    wrapper that switches to HTTP/2 when ALPN chose it (see
    L{twsgi.server.negotiate.ChannelSwitch}).
    """
    return ChannelSwitch(TwsgiChannel(site.limits))


__all__ = ["LINGER", "TwsgiChannel", "channelFactory"]
