# -*- test-case-name: tests.wsgi.test_bridge -*-
"""
twsgi's C{twisted.web} L{Site} and L{Request}: one site per listener, so each
listener can have its own policy, and access records for every observer.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import unquote_to_bytes

import attrs
from OpenSSL import SSL
from twisted.logger import Logger
from twisted.python import failure
from twisted.web import http, server

from twsgi.http.h2head import HTTP2
from twsgi.http.limits import Limits
from twsgi.http.parse import FramingError, errorBody, splitRequestLine
from twsgi.logs.accesslog import (
    CLIENT_CLOSED,
    AccessObserver,
    AccessRecord,
    readsEnviron,
    readsHeaders,
)
from twsgi.logs.clock import TellsTime
from twsgi.logs.limited import PERIOD, LimitedLog, Throttle
from twsgi.server.connections import ConnectionSet
from twsgi.server.exchange import SPOOL_SIZE, HotExchange, bodyNotKept
from twsgi.server.forwarded import FORWARDING_NAMES, ProxyPolicy, applyForwarding
from twsgi.server.http1 import channelFactory
from twsgi.server.plainhttp import PlainHTTPRequest
from twsgi.server.ports import ConnectionGate
from twsgi.server.routes import ExchangeTarget, exchangeTarget
from twsgi.server.tls import clientCertificateEnviron, tlsFailure
from twsgi.wsgi.environ import RequestFacts

_log = Logger(namespace="twsgi")


class TwsgiRequest(server.Request):
    """
    A request that never parses form bodies (the application reads
    C{wsgi.input} itself) and leaves C{Date} and C{Server} to the bridge, so
    that an application's own are kept, and that makes its access record
    when its connection ends before its response finished.

    @ivar accessLogged: C{True} once its access record was made (it
        finished, the framing layer refused it, or its connection ended).
    @ivar cutOff: set by the server before it cuts the response off itself
        (C{"error"}); see L{AccessRecord.cutOff}.
    @ivar bodyReceived: the request body bytes received so far, counted as
        they arrive, for access records: the body file is never seeked from
        the I/O thread while a WSGI thread may read it.
    @ivar forwardedScheme: the scheme a trusted proxy said its client used
        (see L{applyForwarding}), or C{None}; it decides L{isSecure}.
    """

    accessLogged = False
    cutOff = ""
    bodyReceived = 0
    forwardedScheme: str | None = None

    def __init__(self, channel: Any, queued: object = None) -> None:
        super().__init__(channel, parsePOSTFormSubmission=False)
        site = getattr(channel, "site", None)
        clock = site.reactor if site is not None else None
        self.startedAt = clock.seconds() if clock is not None else 0.0

    def write(self, data: bytes) -> None:
        """
        Write body bytes, and the head first: a 204 or 304 without the
        C{Content-Length: 0} that L{server.Request.render} gives every
        response it renders.  RFC 9110 section 8.6 forbids one on a 204, and
        on a 304 allows only the length a 200 would have had (a static
        file's 304 said 0, which a cache may store over the file's).
        """
        if not self.startedWriting and self.code in http.NO_BODY_CODES:
            self.responseHeaders.removeHeader(b"content-length")
        super().write(data)

    def isSecure(self) -> bool:
        """
        Whether the request came over TLS, or a trusted proxy said its
        client's did (see L{applyForwarding}).  Called in the I/O thread.
        """
        if self.forwardedScheme is not None:
            return self.forwardedScheme == "https"
        return super().isSecure()

    def handleContentChunk(self, data: bytes) -> None:
        """
        Keep a chunk of the request body, and count it.  Called in the I/O
        thread.

        @raise FramingError: 503, 507 or 500, the body could not be kept
            (see L{bodyNotKept}).
        """
        self.bodyReceived += len(data)
        try:
            super().handleContentChunk(data)
        except OSError as error:
            raise self._notKept(error) from None

    def gotLength(self, length: int | None) -> None:
        """
        Spool a body of unknown length (chunked, or an HTTP/2 upload without
        C{content-length}) in memory up to L{SPOOL_SIZE}, rather than in a
        temporary file from its first byte: one open file per such upload,
        however small, let a few HTTP/2 connections trickling many uploads
        use up the server's file descriptors.  Called in the I/O thread.

        @raise FramingError: 503, 507 or 500, no temporary file could be
            made for the body (see L{bodyNotKept}).
        """
        try:
            if length is None:
                self.content = tempfile.SpooledTemporaryFile(  # type: ignore[assignment]
                    max_size=SPOOL_SIZE
                )
            else:
                super().gotLength(length)
        except OSError as error:
            self.content = io.BytesIO()
            raise self._notKept(error) from None

    def _notKept(self, error: OSError) -> FramingError:
        """
        The request body could not be kept (see L{bodyNotKept}).
        """
        method, target, _ = _receivedLine(self, self.channel)
        content = self.content
        assert content is not None
        return bodyNotKept(content, method, target, error)

    def process(self) -> None:
        """
        Find the resource and render it; like L{server.Request.process}
        without the default C{Date} and C{Server} headers.
        """
        self.site = self.channel.site  # type: ignore[attr-defined]
        policy = getattr(self.site, "proxyPolicy", None)
        if policy is not None:
            applyForwarding(self, policy)
        self.environExtra = _certificateEnviron(self.channel)
        self.prepath = []
        self.postpath = [unquote_to_bytes(p) for p in self.path[1:].split(b"/")]
        try:
            resource = self.site.getResourceFor(self)
            self.render(resource)
        except BaseException:
            self.processingFailed(failure.Failure())

    def connectionLost(self, reason: failure.Failure) -> None:
        """
        The connection (or the HTTP/2 stream) ended.  A request not answered
        in full gets its one access record now (see L{TwsgiSite.requestLost}),
        while what it read is still at hand.  Called in the I/O thread.
        """
        # A finished request has no channel any more; an HTTP/2 stream whose
        # response is finished but not yet sent still tells it.
        channel = getattr(self, "channel", None)
        if not (self.finished or self.accessLogged) and channel is not None:
            lost = getattr(getattr(channel, "site", None), "requestLost", None)
            if lost is not None:
                lost(self, channel)
        super().connectionLost(reason)


class TwsgiSite(server.Site):
    """
    A site for one listener.

    @ivar listener: the endpoint description it serves, for access records.
    @ivar observers: the access-log observers.
    @ivar limits: the L{Limits} every connection of this listener enforces.
    @ivar proxyPolicy: which peers may set forwarding headers.
    @ivar connections: the open connections, for the graceful stop.
    @ivar gate: the L{ConnectionGate} bounding open connections, if any.
    @ivar http2: whether HTTP/2 is served by prior knowledge (see
        C{http2PriorKnowledge}); what TLS connections may choose in ALPN is
        their listener's TLS profile's (L{twsgi.server.tls.TLSProfile}).
    @ivar http2PriorKnowledge: whether a connection that opens with the
        HTTP/2 connection preface is served HTTP/2 without ALPN (cleartext
        C{h2c}, the listener's C{;http2=prior-knowledge}).
    @ivar tlsFailures: the server-log lines of L{tlsFailed}.
    @ivar http2Malformed: the server-log lines of the HTTP/2 streams reset
        for a malformed request.
    @ivar onStreamReset: called for each HTTP/2 stream reset, with whether
        the client reset it (else the server did) and the RST_STREAM error
        code (the metrics' count), or C{None}.
    """

    protocol = channelFactory  # type: ignore[assignment]
    requestFactory = TwsgiRequest  # type: ignore[assignment]
    displayTracebacks = False
    noisy = False

    def __init__(
        self,
        resource: Any,
        reactor: Any,
        listener: str = "",
        observers: Sequence[AccessObserver] = (),
        limits: Limits | None = None,
        proxyPolicy: ProxyPolicy | None = None,
        gate: ConnectionGate | None = None,
        http2: bool = True,
        http2PriorKnowledge: bool = False,
    ) -> None:
        super().__init__(resource, reactor=reactor, logPath=None)
        self.proxyPolicy = proxyPolicy if proxyPolicy is not None else ProxyPolicy()
        self.listener = listener
        self.observers = list(observers)
        self.limits = limits if limits is not None else Limits()
        self.connections = ConnectionSet()
        self.gate = gate
        self.http2 = http2
        self.http2PriorKnowledge = http2 and http2PriorKnowledge
        self.tlsFailures = LimitedLog(self.reactor, _log, "failed TLS connections")
        self.http2Closes = LimitedLog(
            self.reactor, _log, "HTTP/2 connections closed by the server"
        )
        self.http2Malformed = LimitedLog(
            self.reactor, _log, "malformed HTTP/2 requests"
        )
        self.onStreamReset: Callable[[bool, int], None] | None = None
        # By id() of the observer: when each last logged its failure.
        self._observerFailures: dict[int, Throttle] = {}

    def exchangeRoute(self, path: bytes) -> ExchangeTarget | None:
        """
        What serves an HTTP/1.1 request or an HTTP/2 stream for C{path} on
        the hot path, without a C{twisted.web} request (see L{twsgi.server.routes.exchangeTarget}),
        or C{None} if it goes through the resource tree.  Called in the I/O
        thread.
        """
        return exchangeTarget(self.resource, path)

    def exchangeFacts(self, exchange: HotExchange) -> RequestFacts:
        """
        The facts of a request on the hot path, once it arrived whole: with
        this listener's forwarding policy carried out (as for a
        C{twisted.web} request, see L{TwsgiRequest.process}) and the TLS
        client certificate's details.  Called in the I/O thread.
        """
        for name, _ in exchange.requestHeaders.pairs:
            if name.lower() in FORWARDING_NAMES:
                applyForwarding(exchange, self.proxyPolicy)
                break
        channel = exchange.channel
        client = exchange.client
        host = channel.getHost()
        return RequestFacts(
            method=exchange.method,
            target=exchange.uri,
            version=exchange.clientproto,
            headers=tuple(exchange.requestHeaders.pairs),
            remoteAddr=str(getattr(client, "host", "") or ""),
            remotePort=getattr(client, "port", None),
            serverName=str(getattr(host, "host", "") or "localhost"),
            serverPort=getattr(host, "port", None),
            scheme="https" if exchange.isSecure() else "http",
            contentLength=exchange.bodyReceived,
            extra=_certificateEnviron(channel),
        )

    def tlsFailed(self, transport: Any, error: SSL.Error | PlainHTTPRequest) -> None:
        """
        A TLS connection of this listener failed (a plain-HTTP request,
        answered in clear; OpenSSL ended it: a failed handshake, a client
        certificate refused): one line in the server log, rate-limited
        (L{LimitedLog}).  Called in the I/O thread.
        """
        # The socket may be closed by now: its peer is known, its own
        # address is not, so the listener's endpoint string names it.
        peer = transport.getPeer()
        self.tlsFailures.info(
            "TLS connection from {peer} failed on {listener}: {why}"
            if self.listener
            else "TLS connection from {peer} failed: {why}",
            peer=getattr(peer, "host", peer),
            listener=self.listener,
            why=tlsFailure(error),
        )

    def connectionOpened(self, channel: Any) -> None:
        """
        A connection of this listener was made.  Called in the I/O thread.
        """
        self.connections.add(channel)
        if self.gate is not None:
            self.gate.opened()

    def connectionUpgraded(self, old: Any, new: Any) -> None:
        """
        A connection of this listener switched to HTTP/2: C{new} replaces
        C{old} (it drains at once if the site is draining).  Called in the
        I/O thread.
        """
        if old in self.connections:
            self.connections.add(new)
            self.connections.discard(old)

    def connectionClosed(self, channel: Any) -> None:
        """
        A connection of this listener was lost.  Called in the I/O thread.
        """
        if channel in self.connections:
            self.connections.discard(channel)
            if self.gate is not None:
                self.gate.closed()

    def log(self, request: Any) -> None:
        """
        Make the access record of a finished request and hand it to every
        observer.  Called in the I/O thread.
        """
        request.accessLogged = True
        if not self.observers:
            return
        clock: TellsTime = self.reactor
        headers, environ = self._recordParts()
        self._notify(
            accessRecord(request, clock.seconds(), self.listener, headers, environ)
        )

    def requestLost(self, request: Any, channel: Any) -> None:
        """
        The connection (or HTTP/2 stream) of C{request}, on C{channel}, ended
        before its response finished: the client went away, or the server
        cut the response off (the graceful stop's deadline, or an
        application that failed after its status line was sent).  Make its
        access record, with C{disconnected} set, and hand it to every
        observer.  Called in the I/O thread.
        """
        request.accessLogged = True
        if not self.observers:
            return
        cutOff = getattr(request, "cutOff", "") or (
            "drain" if self.connections.aborted else ""
        )
        clock: TellsTime = self.reactor
        headers, environ = self._recordParts()
        self._notify(
            lostRecord(
                request,
                channel,
                clock.seconds(),
                self.listener,
                cutOff,
                headers,
                environ,
            )
        )

    def requestRejected(self, channel: Any, error: FramingError) -> None:
        """
        The framing layer of C{channel} answered a bad request with
        C{error}'s status: make its access record, from what is known of
        the request, and hand it to every observer like any other.  Called
        in the I/O thread.
        """
        request = getattr(channel, "partialRequest", None)
        if request is not None:
            # Its connection ends next: that is no second record.
            request.accessLogged = True
        if not self.observers:
            return
        clock: TellsTime = self.reactor
        headers, _ = self._recordParts()
        self._notify(
            rejectionRecord(channel, error, clock.seconds(), self.listener, headers)
        )

    def _recordParts(self) -> tuple[bool, bool]:
        """
        Whether a record must carry the headers (unless every observer is
        L{twsgi.logs.accesslog.headerless}) and the WSGI environ (if any
        observer L{twsgi.logs.accesslog.readsEnviron}).
        """
        headers = environ = False
        for observer in self.observers:
            headers = headers or readsHeaders(observer)
            environ = environ or readsEnviron(observer)
        return headers, environ

    def _notify(self, record: AccessRecord) -> None:
        for observer in self.observers:
            try:
                observer(record)
            except BaseException:
                self._observerFailed(observer)

    def _observerFailed(self, observer: AccessObserver) -> None:
        """
        Log the failure of C{observer} (called in an C{except} block) with
        its traceback: the first one at once, then at most one every
        L{PERIOD} seconds with how many failed since, so that an observer
        that fails for every request does not fill the log.
        """
        throttle = self._observerFailures.get(id(observer))
        if throttle is None:
            clock: TellsTime = self.reactor
            throttle = Throttle(clock.seconds, PERIOD)
            self._observerFailures[id(observer)] = throttle
        count = throttle.happened()
        if count == 1:
            _log.failure("access-log observer {observer!r} raised", observer=observer)
        elif count is not None:
            _log.failure(
                "access-log observer {observer!r} raised {count} times since it "
                "was last logged (at most one traceback every {period:g} s); "
                "the last time",
                observer=observer,
                count=count,
                period=PERIOD,
            )


def connectionTransport(channel: object) -> object:
    """
    The transport of the connection a request came on: the channel's own
    for HTTP/1.1, the connection's for an HTTP/2 stream (whose C{transport}
    is C{None}).
    """
    transport = getattr(channel, "transport", None)
    if transport is None:
        transport = getattr(getattr(channel, "connection", None), "transport", None)
    return transport


def _certificateEnviron(channel: Any) -> Mapping[str, str]:
    """
    L{clientCertificateEnviron} for a request on C{channel}, remembered on
    the channel (an HTTP/1.1 connection, an HTTP/2 connection, or the
    stream of a C{twisted.web} request on HTTP/2): a connection's answer
    does not change once its handshake is done, which it is by the time a
    request arrived.  Read-only: every request of the connection shares
    it.  Called in the I/O thread.
    """
    known: Mapping[str, str] | None = getattr(channel, "twsgiCertificate", None)
    if known is not None:
        return known
    transport = connectionTransport(channel)
    extra = clientCertificateEnviron(transport)
    if transport is not None:
        channel.twsgiCertificate = extra
    return extra


def _header(request: Any, name: bytes) -> str:
    values = request.requestHeaders.getRawHeaders(name)
    return values[0].decode("latin-1") if values else ""


def _field(fields: tuple[tuple[bytes, bytes], ...], name: bytes) -> str:
    for key, value in fields:
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


class _AllRawHeaders(Protocol):
    """
    Header fields, as access records read them: twisted.web's L{Headers},
    or the hot path's L{twsgi.server.exchange.HeaderList}.
    """

    def getAllRawHeaders(self) -> Iterable[tuple[bytes, Sequence[bytes]]]: ...


def _headerPairs(headers: _AllRawHeaders) -> tuple[tuple[str, str], ...]:
    return tuple(
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, values in headers.getAllRawHeaders()
        for value in values
    )


def _bodyLength(request: object) -> int:
    # Counted as the body arrived: seeking the body file here would move the
    # read position of the WSGI thread that may be reading it.
    return int(getattr(request, "bodyReceived", 0))


def accessRecord(
    request: Any,
    now: float,
    listener: str,
    headers: bool = True,
    environ: bool = False,
) -> AccessRecord:
    """
    Make the L{AccessRecord} of a finished C{request}.  Called in the I/O
    thread.

    @param headers: C{False} to leave its C{requestHeaders} and
        C{responseHeaders} empty.
    @param environ: C{True} to copy the text values of the WSGI environ
        the application had (see L{twsgi.wsgi.bridge}) into its C{environ}.
    """
    client = request.getClientAddress()
    started = getattr(request, "startedAt", now)
    return AccessRecord(
        timestamp=started,
        method=request.method.decode("latin-1"),
        target=request.uri.decode("latin-1"),
        protocol=request.clientproto.decode("latin-1"),
        status=request.code,
        bytesSent=request.sentLength,
        duration=max(0.0, now - started),
        remoteAddr=str(getattr(client, "host", "") or ""),
        remotePort=getattr(client, "port", None),
        listener=listener,
        requestId=_header(request, b"x-request-id") or os.urandom(8).hex(),
        userAgent=_header(request, b"user-agent"),
        referer=_header(request, b"referer"),
        bytesReceived=_bodyLength(request),
        requestHeaders=_headerPairs(request.requestHeaders) if headers else (),
        responseHeaders=_headerPairs(request.responseHeaders) if headers else (),
        environ=_environPairs(request) if environ else (),
    )


def _environPairs(request: object) -> tuple[tuple[str, str], ...]:
    """
    The text values of the WSGI environ the bridge kept on C{request}
    (C{wsgiEnviron}), as the application left them; none if it never ran.
    """
    environ = getattr(request, "wsgiEnviron", None)
    if environ is None:
        return ()
    return tuple(
        (key, value)
        for key, value in list(environ.items())
        if isinstance(key, str) and isinstance(value, str)
    )


_UNSENT_STATUS = {
    "": CLIENT_CLOSED,
    "drain": 503,
    "error": 500,
    "send-timeout": CLIENT_CLOSED,
}
"""
The status recorded for a response cut off before its status line was sent,
by who cut it off (see L{AccessRecord.cutOff}).
"""


def _receivedLine(request: Any, channel: Any) -> tuple[bytes, bytes, bytes]:
    """
    The method, target and protocol of C{request}, also while its body is
    still being read (before C{requestReceived}, which sets them): from the
    HTTP/2 stream C{channel}, or from the head the HTTP/1.1 C{channel}
    parsed.
    """
    if request.path is not None:
        return request.method, request.uri, request.clientproto
    command = getattr(channel, "command", None)
    if command is not None:
        return command, getattr(channel, "path", None) or b"", HTTP2
    head = getattr(channel, "partialHead", None)
    return splitRequestLine(head.requestLine if head is not None else None)


def lostRecord(
    request: Any,
    channel: Any,
    now: float,
    listener: str,
    cutOff: str = "",
    headers: bool = True,
    environ: bool = False,
) -> AccessRecord:
    """
    Make the L{AccessRecord} of a C{request} whose connection (or stream),
    on C{channel}, ended before its response finished: C{disconnected}, the
    status the application sent, or L{_UNSENT_STATUS} (499 when the client
    went away) if no status line was sent, the body bytes written, and the
    time up to C{now}.  Called in the I/O thread.

    @param cutOff: see L{AccessRecord.cutOff}.
    @param headers: see L{accessRecord}.
    @param environ: see L{accessRecord}.
    """
    method, target, protocol = _receivedLine(request, channel)
    return attrs.evolve(
        accessRecord(request, now, listener, headers, environ),
        method=method.decode("latin-1"),
        target=target.decode("latin-1"),
        protocol=protocol.decode("latin-1"),
        status=request.code if request.startedWriting else _UNSENT_STATUS[cutOff],
        disconnected=True,
        cutOff=cutOff,
    )


def rejectionRecord(
    channel: Any,
    error: FramingError,
    now: float,
    listener: str,
    headers: bool = True,
) -> AccessRecord:
    """
    Make the L{AccessRecord} of a request that C{channel}'s framing layer
    answered with C{error}: its request line and headers as far as they
    were read (empty where unknown), the body bytes read, and the body of
    the error response as the bytes sent; it starts when its request
    object was made, else when its head began to arrive (the channel's
    C{headStartedAt}, if known), else now.  Called in the I/O thread.

    @param headers: see L{accessRecord}.
    """
    head = channel.partialHead
    request = channel.partialRequest
    fields = head.fields
    method, target, protocol = splitRequestLine(head.requestLine)
    peer = channel.getPeer()
    if request is not None:
        started = getattr(request, "startedAt", now)
    else:
        headStartedAt = getattr(channel, "headStartedAt", None)
        started = now if headStartedAt is None else headStartedAt
    return AccessRecord(
        timestamp=started,
        method=method.decode("latin-1"),
        target=target.decode("latin-1"),
        protocol=protocol.decode("latin-1"),
        status=error.status,
        bytesSent=len(errorBody(error.status, error.reason)) if error.answered else 0,
        duration=max(0.0, now - started),
        remoteAddr=str(getattr(peer, "host", "") or ""),
        remotePort=getattr(peer, "port", None),
        listener=listener,
        requestId=_field(fields, b"x-request-id") or os.urandom(8).hex(),
        userAgent=_field(fields, b"user-agent"),
        referer=_field(fields, b"referer"),
        bytesReceived=_bodyLength(request) if request is not None else 0,
        requestHeaders=tuple(
            (name.decode("latin-1"), value.decode("latin-1")) for name, value in fields
        )
        if headers
        else (),
    )


__all__ = [
    "TwsgiRequest",
    "TwsgiSite",
    "accessRecord",
    "connectionTransport",
    "lostRecord",
    "rejectionRecord",
]
