# -*- test-case-name: tests.wsgi.test_webrequest -*-
"""
L{RequestExchange}: an L{Exchange<twsgi.wsgi.exchange.Exchange>} over the
public API of a C{twisted.web} L{Request<twisted.web.server.Request>}, for
L{twsgi.WSGIResource} mounted in any C{twisted.web} site.

What the public API cannot do: tell whether the transport is full when a
response starts.  On a C{twisted.web} channel, a response that starts while
the transport is full is paused only at the transport's next pause (a socket
transport pauses again at the next write while its buffer is full): one
more write of the response may be buffered.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from typing import IO, Any

from twisted.internet.error import ConnectionAborted
from twisted.python.failure import Failure
from twisted.web.http_headers import Headers

from twsgi.wsgi.environ import RequestFacts
from twsgi.wsgi.exchange import (
    HIGH_WATER,
    LostCallbacks,
    PushProducer,
)
from twsgi.wsgi.response import NO_BODY_STATUSES


def closeDelimited(request: Any) -> bool:
    """
    Whether the body of the response to twisted.web C{request}, whose head
    went out, ends only with its connection: not chunked (HTTP/1.0), no
    C{Content-Length}, and a body at all.  Cut off, such a body looks whole
    to its client unless the connection is reset.
    """
    return not (
        request.chunked
        or request.method == b"HEAD"
        or request.code in NO_BODY_STATUSES
        or request.responseHeaders.hasHeader(b"content-length")
    )


def endCutOff(channel: Any, byClose: bool) -> None:
    """
    End the HTTP/1.1 connection of a response cut off after its head (its
    application or producer failed): close it once what was written is
    sent (the channel's C{loseConnection}, which twisted.web's
    C{HTTPChannel} and twsgi's begin by ceasing to be the transport's
    producer), so that the client has every byte and sees the body end
    early (no last chunk, short of its C{Content-Length}); or, when only the
    close ends the body (C{byClose}, see L{closeDelimited}), which a close
    would make look whole, reset it.
    """
    if byClose:
        channel.transport.abortConnection()
    else:
        channel.loseConnection()


def _isSecure(request: Any) -> bool:
    """
    L{twisted.web.http.Request.isSecure}, with the channel's answer (an
    interface adaptation, slow when the answer is no) remembered on the
    channel for the next request on the same connection, with the channel's
    address.  A request whose host was changed since
    (L{Request.setHost<twisted.web.http.Request.setHost>}, which may make
    it secure on a plain connection, as a virtual host behind a TLS proxy
    does) is asked itself.  A trusted proxy's scheme (see
    L{twsgi.server.forwarded.applyForwarding}) wins, either way.  Called in
    the I/O thread.
    """
    forwarded = getattr(request, "forwardedScheme", None)
    if forwarded is not None:
        return bool(forwarded == "https")
    channel = getattr(request, "channel", None)
    if channel is None:
        return bool(request.isSecure())
    known: tuple[Any, bool] | None = getattr(channel, "twsgiSecure", None)
    if known is None:
        known = channel.twsgiSecure = (channel.getHost(), bool(channel.isSecure()))
    host, secure = known
    if secure or request.getHost() == host:
        return secure
    return bool(request.isSecure())


def requestFacts(request: Any) -> RequestFacts:
    """
    Take the facts of a C{twisted.web} request.  Called in the I/O thread.
    """
    content = request.content
    length = content.seek(0, 2)
    content.seek(0)
    client = request.getClientAddress()
    host = request.getHost()
    headers = tuple(
        [
            (name, value)
            for name, values in request.requestHeaders.getAllRawHeaders()
            for value in values
        ]
    )
    prepath = request.prepath
    return RequestFacts(
        method=request.method,
        target=request.uri,
        version=request.clientproto,
        headers=headers,
        remoteAddr=str(getattr(client, "host", "") or ""),
        remotePort=getattr(client, "port", None),
        serverName=str(getattr(host, "host", "") or "localhost"),
        serverPort=getattr(host, "port", None),
        scheme="https" if _isSecure(request) else "http",
        scriptName=(b"/" + b"/".join(prepath)).decode("latin-1") if prepath else "",
        contentLength=length,
        extra=dict(getattr(request, "environExtra", None) or {}),
    )


class RequestExchange(LostCallbacks):
    """
    An L{Exchange<twsgi.wsgi.exchange.Exchange>} over the public API of a
    C{twisted.web} request.  Everything here runs in the I/O thread.

    It takes the request's body (C{request.content} becomes C{None}), since
    C{twisted.web} closes the body of a request whose connection is lost
    while a WSGI thread may still read it.  It learns that the client left
    from L{notifyFinish<twisted.web.server.Request.notifyFinish>}.

    @ivar request: the request.
    """

    highWater = HIGH_WATER

    def __init__(self, request: Any) -> None:
        """
        Take the facts and the body of C{request}, which is being rendered.
        """
        LostCallbacks.__init__(self)
        self.request = request
        self.facts: RequestFacts = requestFacts(request)
        self.body: IO[bytes] = request.content
        request.content = None
        # A request whose connection was lost has no channel; so has a
        # finished one, which is never rendered.
        if request.channel is None:
            self.tellLost()
        else:
            request.notifyFinish().addErrback(self._connectionLost)

    @property
    def environ(self) -> MutableMapping[str, Any] | None:
        """
        See L{Exchange.environ<twsgi.wsgi.exchange.Exchange.environ>}: kept
        on the request as C{wsgiEnviron}, for access records.
        """
        return getattr(self.request, "wsgiEnviron", None)

    @environ.setter
    def environ(self, environ: MutableMapping[str, Any] | None) -> None:
        self.request.wsgiEnviron = environ

    def _connectionLost(self, reason: Failure) -> None:
        self.tellLost()

    def writeHead(
        self,
        code: int,
        reason: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        close: bool,
    ) -> None:
        request = self.request
        request.setResponseCode(code, reason)
        # The application's headers are the response's: twisted.web would
        # add a Content-Type of text/html where it gave none.
        request.defaultContentType = None
        responseHeaders = Headers()
        for name, value in headers:
            responseHeaders.addRawHeader(name, value)
        if close:
            responseHeaders.setRawHeaders(b"Connection", [b"close"])
            if request.channel is not None:
                request.channel.persistent = False
        request.responseHeaders = responseHeaders

    def write(self, data: bytes) -> None:
        self.request.write(data)

    def finish(self) -> None:
        self.request.finish()

    def abort(self) -> None:
        """
        End the connection of an HTTP/1.1 request (L{endCutOff}), or reset
        the stream of an HTTP/2 request (whose channel has no transport of
        its own).  Either way the request hears
        C{connectionLost}, which makes its access record (with
        C{cutOff="error"}).
        """
        request = self.request
        request.cutOff = "error"
        channel = request.channel
        transport = getattr(channel, "transport", None)
        if transport is not None:
            endCutOff(channel, closeDelimited(request))
        elif channel is not None:
            channel.abortConnection()
            if not self.lost:
                # The stream is forgotten by its connection, which will not
                # tell the request.
                request.connectionLost(Failure(ConnectionAborted("stream reset")))

    def registerProducer(self, producer: PushProducer) -> None:
        self.request.registerProducer(producer, True)

    def unregisterProducer(self) -> None:
        self.request.unregisterProducer()


__all__ = ["RequestExchange", "closeDelimited", "endCutOff", "requestFacts"]
