# -*- test-case-name: tests.server.test_exchange -*-
"""
The hot path of HTTP/1.1: one L{HTTP11Exchange} per request that goes to a
WSGI application, made by L{twsgi.server.http1.TwsgiChannel} instead of a
C{twisted.web} request.

It is the L{Exchange<twsgi.wsgi.exchange.Exchange>} the bridge carries the
response out through, and the request the listener makes its access records
of (L{twsgi.server.site.accessRecord} reads the same names on it as on a
C{twisted.web} request).  It frames the response as C{twisted.web} did: the
status line and the headers (names in their canonical capitalisation,
repeated ones together), C{Transfer-Encoding: chunked} on an HTTP/1.1
response of unknown length, no body for C{HEAD}, 204 and 304, and
C{Connection: close} on the last response of the connection.  Everything
here runs in the I/O thread, but L{HTTP11Exchange.sendWholeFromThread}.
"""

from __future__ import annotations

import enum
import io
import tempfile
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from functools import partial
from typing import IO, Any, Protocol, TypeVar

from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http_headers import Headers

from twsgi.http.parse import FramingError, RequestHead
from twsgi.http.shortage import statusForOSError
from twsgi.logs.accesslog import escapeBytes
from twsgi.server.transport import Address
from twsgi.wsgi.environ import RequestFacts
from twsgi.wsgi.exchange import (
    HIGH_WATER,
    LostCallbacks,
    PushProducer,
)
from twsgi.wsgi.response import NO_BODY_STATUSES
from twsgi.wsgi.webrequest import endCutOff

_log = Logger(namespace="twsgi")

SPOOL_SIZE = 100_000
"""
The bytes of a request body kept in memory: a body of known length below
this is read into memory, a larger one into a temporary file, and one of
unknown length (chunked) spills to a temporary file past this.
"""

_canonical: dict[bytes, bytes] = {}


def canonicalName(name: bytes) -> bytes:
    """
    The capitalisation C{twisted.web} sends a header name in (C{Content-Type},
    C{ETag}), remembered per lower-cased name.
    """
    lower = name.lower()
    known = _canonical.get(lower)
    if known is None:
        if len(_canonical) > 4096:
            _canonical.clear()
        [(known, _)] = Headers({lower: [b""]}).getAllRawHeaders()
        _canonical[lower] = known
    return known


def grouped(pairs: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, list[bytes]]]:
    """
    Header C{pairs} as C{twisted.web}'s L{Headers} keeps them: by canonical
    name in the order each name first appeared, the values of a repeated
    name together.
    """
    groups: dict[bytes, list[bytes]] = {}
    for name, value in pairs:
        values = groups.get(name.lower())
        if values is None:
            groups[name.lower()] = [value]
        else:
            values.append(value)
    return [(canonicalName(name), values) for name, values in groups.items()]


def _set(
    pairs: list[tuple[bytes, bytes]], lowered: list[bytes], name: bytes, value: bytes
) -> tuple[list[tuple[bytes, bytes]], list[bytes]]:
    """
    Header C{pairs} (and their C{lowered} names) with the field C{name} set
    to C{value} as L{Headers.setRawHeaders} sets it: added at the end, or
    replacing the field where it first appeared.
    """
    lower = name.lower()
    if lower not in lowered:
        pairs.append((name, value))
        lowered.append(lower)
        return pairs, lowered
    headers = HeaderList(pairs)
    headers.setRawHeaders(name, [value])
    return headers.pairs, [key.lower() for key, _ in headers.pairs]


class Framing(enum.Enum):
    """
    How an HTTP/1.1 response's body goes on the wire, chosen with its head.
    """

    PLAIN = "plain"
    """As written: its C{Content-Length} says where it ends."""
    CLOSE = "close"
    """As written, ended by the connection's close (HTTP/1.0, no
    C{Content-Length}): a client cannot tell such a body cut off from a
    whole one, unless the connection is reset."""
    CHUNKED = "chunked"
    """In chunks (C{Transfer-Encoding: chunked}), ended by an empty one."""
    NONE = "none"
    """No body (C{HEAD}, 1xx, 204, 304): what is written is dropped."""


def frameHead(
    version: bytes,
    code: int,
    reason: bytes,
    headers: tuple[tuple[bytes, bytes], ...],
    toHead: bool,
    persistent: bool,
) -> tuple[bytes, tuple[tuple[bytes, bytes], ...], Framing]:
    """
    Frame the head of an HTTP/1.1 response as C{twisted.web} did.

    @param version: the request's protocol (C{HTTP/1.1}, C{HTTP/1.0}).
    @param headers: the response header fields.
    @param toHead: whether it answers a C{HEAD} request.
    @param persistent: whether the connection carries another request after
        it; if not, the head says C{Connection: close}.
    @return: the status line and header block, the header fields sent, and
        how the body goes on the wire.
    """
    pairs = list(headers)
    lowered = [name.lower() for name, _ in pairs]
    framing = Framing.PLAIN
    if code in NO_BODY_STATUSES or toHead:
        framing = Framing.NONE
    elif b"content-length" in lowered:
        pass
    elif version == b"HTTP/1.1":
        pairs, lowered = _set(pairs, lowered, b"Transfer-Encoding", b"chunked")
        framing = Framing.CHUNKED
    else:
        framing = Framing.CLOSE
    if not persistent:
        pairs, lowered = _set(pairs, lowered, b"Connection", b"close")
    parts = [version, b" %d " % code, reason, b"\r\n"]
    if len(set(lowered)) == len(lowered):
        # No repeated name, as a rule: in order, one canonical name each.
        known = _canonical.get
        for (_, value), lower in zip(pairs, lowered, strict=True):
            parts += (known(lower) or canonicalName(lower), b": ", value, b"\r\n")
    else:
        for name, values in grouped(pairs):
            for value in values:
                parts += (name, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts), tuple(pairs), framing


_heads: dict[tuple[Any, ...], tuple[bytes, tuple[tuple[bytes, bytes], ...], Framing]]
_heads = {}
"""
The heads L{frameHead} made lately, by what each was made of: the
responses of a server repeat a few heads, the same within each second (the
C{Date} field).  Used in the I/O thread, and in WSGI threads by
L{HTTP11Exchange.sendWholeFromThread}.
"""


_T = TypeVar("_T")


class HeaderList:
    """
    Header fields as C{(name, value)} pairs, in the order received, with the
    few methods of L{Headers} that forwarding and access records use.
    """

    __slots__ = ("pairs",)

    def __init__(self, pairs: Iterable[tuple[bytes, bytes]] = ()) -> None:
        self.pairs = list(pairs)

    def getRawHeaders(
        self, name: bytes, default: _T | None = None
    ) -> list[bytes] | _T | None:
        """
        The values of the field C{name}, or C{default} if it has none.
        """
        lower = name.lower()
        values = [value for key, value in self.pairs if key.lower() == lower]
        return values if values else default

    def getAllRawHeaders(self) -> Iterator[tuple[bytes, list[bytes]]]:
        """
        Every field as L{Headers.getAllRawHeaders} gives it.
        """
        return iter(grouped(self.pairs))

    def removeHeader(self, name: bytes) -> None:
        lower = name.lower()
        self.pairs = [pair for pair in self.pairs if pair[0].lower() != lower]

    def setRawHeaders(self, name: bytes, values: Sequence[bytes]) -> None:
        """
        Replace the field C{name} by C{values}, where it first appeared (at
        the end if it did not).
        """
        lower = name.lower()
        at = len(self.pairs)
        kept: list[tuple[bytes, bytes]] = []
        for key, value in self.pairs:
            if key.lower() == lower:
                at = min(at, len(kept))
            else:
                kept.append((key, value))
        kept[at:at] = [(name, value) for value in values]
        self.pairs = kept


def requestBody(length: int | None) -> IO[bytes]:
    """
    Where a request body of C{length} bytes (C{None}: unknown) is kept: in
    memory below L{SPOOL_SIZE}, in a temporary file above, and spilling
    from memory to a file past L{SPOOL_SIZE} when the length is unknown.
    """
    if length == 0 or length is not None and length < SPOOL_SIZE:
        return io.BytesIO()
    if length is None:
        return tempfile.SpooledTemporaryFile(max_size=SPOOL_SIZE)  # type: ignore[return-value]
    return tempfile.TemporaryFile()  # type: ignore[return-value]


def chooseTemporaryDirectory() -> None:
    """
    Choose the directory of request bodies' temporary files now, as the
    server starts.  Python chooses it at its first use, by making a file in
    each candidate: at a first use while the process has no file descriptor
    left, it finds none usable, and the body's error would name no
    directory instead of the missing descriptor.  If none is usable now,
    say so once in the server log (bodies that need a file will get 500).
    """
    try:
        tempfile.gettempdir()
    except OSError as error:
        _log.warn(
            "twsgi has no directory for temporary files ({error}): request "
            "bodies of {size} bytes or more will be refused with 500",
            error=error,
            size=SPOOL_SIZE,
        )


def bodyNotKept(
    body: IO[bytes], method: bytes, target: bytes, error: OSError
) -> FramingError:
    """
    The request C{body} of C{method} C{target} could not be kept: its
    temporary file could not be made (no file descriptor left) or written
    (its disk is full, a file size limit).  Drop what was kept, say why in
    the server log, and make the error that answers the request, by
    L{statusForOSError}: 503 with C{Retry-After} out of descriptors or
    memory, 507 out of storage, 500 otherwise (over HTTP/1.1 the connection
    then closes, as after any other request refused before the application;
    over HTTP/2 its stream ends).
    """
    body.close()
    _log.error(
        "twsgi: the body of {method} {target} could not be kept "
        "(temporary files in {directory}): {error}",
        method=escapeBytes(method),
        target=escapeBytes(target),
        # tempfile.tempdir: gettempdir() chooses one if none was, and fails
        # as the body's file did.
        directory=tempfile.tempdir or "(none usable)",
        error=error,
    )
    return FramingError(statusForOSError(error), "the request body could not be stored")


class WebRequest(Protocol):
    """
    A C{twisted.web} request, as the connection reads it in (one the
    listener's C{requestFactory} made: a L{twsgi.server.site.TwsgiRequest}).

    @ivar cutOff: see L{twsgi.logs.accesslog.AccessRecord.cutOff}.
    """

    cutOff: str
    requestHeaders: Headers

    def parseCookies(self) -> None: ...

    def gotLength(self, length: int | None) -> None: ...

    def handleContentChunk(self, data: bytes) -> None: ...

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None: ...

    def connectionLost(self, reason: Failure) -> None: ...


class ExchangeSite(Protocol):
    """
    What a hot-path exchange needs of its listener (a
    L{twsgi.server.site.TwsgiSite}): it makes the access record of a
    finished exchange.  (An exchange lost before it finished reports to
    its C{requestLost}, if it has one.)
    """

    def log(self, request: Any) -> None: ...


class ExchangeChannel(Protocol):
    """
    What a hot-path exchange needs of its connection (HTTP/1.1 or HTTP/2).
    """

    @property
    def site(self) -> ExchangeSite: ...

    def getHost(self) -> Address: ...

    def getPeer(self) -> Address: ...

    def isSecure(self) -> bool: ...


class HTTP11Channel(ExchangeChannel, Protocol):
    """
    What an L{HTTP11Exchange} needs of its connection (a
    L{twsgi.server.http1.TwsgiChannel}).

    @ivar transport: the connection's transport (Twisted's, or twsgi's
        socket transport; typed as Twisted types it, loosely).
    """

    transport: Any
    persistent: bool
    headKeptAlive: bool
    draining: bool

    def requestDone(self, request: HTTP11Exchange) -> None: ...

    def loseConnection(self) -> None: ...

    def registerProducer(self, producer: PushProducer, streaming: bool) -> None: ...

    def unregisterProducer(self) -> None: ...


class HotExchange(LostCallbacks):
    """
    What the hot-path exchanges of HTTP/1.1 (L{HTTP11Exchange}) and HTTP/2
    (L{twsgi.server.h2exchange.H2Exchange}) share: the request as the
    listener's forwarding, facts and access records read it, its body, and
    how it is handed to the application and lost.

    Its attributes for access records have the names of a C{twisted.web}
    request's (C{method}, C{uri}, C{clientproto}, C{code}, C{sentLength},
    C{requestHeaders}, C{responseHeaders}, C{startedWriting},
    C{getClientAddress()}).

    @ivar channel: the connection (with C{site}, C{getHost()},
        C{getPeer()} and C{isSecure()}).
    @ivar accessLogged: C{True} once its access record was made.
    @ivar cutOff: who cut the response off (see L{AccessRecord.cutOff}).
    @ivar bodyReceived: the request body bytes received so far.
    @ivar forwardedScheme: the scheme a trusted proxy said its client used,
        or C{None}.
    @ivar client: the client's address (a trusted proxy's client's).
    """

    accessLogged = False
    cutOff = ""
    bodyReceived = 0
    forwardedScheme: str | None = None
    highWater = HIGH_WATER
    code = 200
    sentLength = 0
    startedWriting = False
    finished = False
    environ: MutableMapping[str, Any] | None = None
    _handedOn = False

    channel: ExchangeChannel

    def __init__(
        self,
        channel: ExchangeChannel,
        method: bytes,
        target: bytes,
        path: bytes,
        version: bytes,
        headers: Iterable[tuple[bytes, bytes]],
        contentLength: int | None,
        dispatch: Callable[[HotExchange], None],
        startedAt: float,
    ) -> None:
        """
        @param channel: the connection.
        @param method: the request method.
        @param target: the request target.
        @param path: C{target} without the query.
        @param version: the protocol, as access records and the environ
            show it (C{HTTP/1.1}, C{HTTP/2.0}).
        @param headers: the request header fields.
        @param contentLength: the declared body length, or C{None}.
        @param dispatch: serves the exchange once the request arrived whole.
        @param startedAt: when the request began.
        """
        self.channel = channel
        self.method = method
        self.uri = target
        self.path = path
        self.clientproto = version
        self.requestHeaders = HeaderList(headers)
        self.responseHeaders = HeaderList()
        self.startedAt = startedAt
        self.client = channel.getPeer()
        self._dispatch = dispatch
        LostCallbacks.__init__(self)
        self._enders: list[Callable[[], None]] = []
        self.body: IO[bytes]
        try:
            self.body = requestBody(contentLength)
        except OSError as error:
            self.body = io.BytesIO()
            raise self._notKept(error) from None
        self.facts: RequestFacts

    # -- what access records and forwarding read -----------------------------

    def getClientAddress(self) -> Address:
        return self.client

    def isSecure(self) -> bool:
        """
        Whether the request came over TLS, or a trusted proxy said its
        client's did.
        """
        if self.forwardedScheme is not None:
            return self.forwardedScheme == "https"
        return bool(self.channel.isSecure())

    @property
    def wsgiEnviron(self) -> MutableMapping[str, Any] | None:
        """
        The environ the application had, for access records.
        """
        return self.environ

    # -- the request, from the connection --------------------------------------

    def handleContentChunk(self, data: bytes) -> None:
        """
        Keep a chunk of the request body, and count it.

        @raise FramingError: 503, 507 or 500, the body could not be kept
            (see L{bodyNotKept}).
        """
        self.bodyReceived += len(data)
        try:
            self.body.write(data)
        except OSError as error:
            raise self._notKept(error) from None

    def _notKept(self, error: OSError) -> FramingError:
        """
        The request body could not be kept (see L{bodyNotKept}).
        """
        return bodyNotKept(self.body, self.method, self.uri, error)

    def requestReceived(
        self,
        facts: Callable[[HotExchange], RequestFacts],
    ) -> None:
        """
        The whole request has arrived: take its facts and hand it to the
        application.

        @param facts: makes the facts of this request (the listener's
            forwarding policy and TLS details applied).
        """
        self.body.seek(0)
        try:
            self.facts = facts(self)
            self._handedOn = True
            self._dispatch(self)
        except BaseException:
            _log.failure("twsgi: dispatching {target!r} failed", target=self.uri)
            if not (self.finished or self.lost):
                self.abort()

    def connectionLost(self, reason: Failure) -> None:
        """
        The connection (or the HTTP/2 stream) ended before the response
        finished: make its access record (as its client leaving, or as cut
        off), then tell the bridge.
        """
        if self.lost or self.finished:
            return
        if not self._handedOn:
            # Its body is nobody else's yet.
            self.body.close()
        if not self.accessLogged:
            lost = getattr(self.channel.site, "requestLost", None)
            if lost is not None:
                lost(self, self.channel)
        self.tellLost()
        self._ended()

    def whenEnded(self, callback: Callable[[], None]) -> None:
        """
        Call C{callback} once when the response finished or the exchange was
        lost (what C{notifyFinish} tells of a C{twisted.web} request).
        """
        self._enders.append(callback)

    def _ended(self) -> None:
        enders, self._enders = self._enders, []
        for callback in enders:
            callback()

    def _finished(self) -> None:
        """
        The response is complete and written: make its access record.
        """
        self.finished = True
        self.channel.site.log(self)
        self._ended()

    # -- Exchange, written by each protocol ------------------------------------

    def writeHead(
        self,
        code: int,
        reason: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        close: bool,
    ) -> None:
        """
        See L{Exchange.writeHead}.
        """
        raise NotImplementedError

    def write(self, data: bytes) -> None:
        """
        See L{Exchange.write}.
        """
        raise NotImplementedError

    def finish(self) -> None:
        """
        See L{Exchange.finish}.
        """
        raise NotImplementedError

    def abort(self) -> None:
        """
        See L{Exchange.abort}.
        """
        raise NotImplementedError

    def registerProducer(self, producer: PushProducer) -> None:
        """
        See L{Exchange.registerProducer}.
        """
        raise NotImplementedError

    def unregisterProducer(self) -> None:
        """
        See L{Exchange.unregisterProducer}.
        """
        raise NotImplementedError


class HTTP11Exchange(HotExchange):
    """
    One HTTP/1.1 request for a WSGI application, and its response: an
    L{Exchange} on L{twsgi.server.http1.TwsgiChannel}'s hot path.
    """

    _framing = Framing.PLAIN
    _pendingHead = b""
    _sentAll: tuple[int, tuple[tuple[bytes, bytes], ...], int] | None = None
    channel: HTTP11Channel

    def __init__(
        self,
        channel: HTTP11Channel,
        head: RequestHead,
        path: bytes,
        dispatch: Callable[[HotExchange], None],
        startedAt: float,
    ) -> None:
        """
        @param channel: the connection.
        @param head: the request head.
        @param path: its target without the query.
        @param dispatch: serves the exchange once the request arrived whole.
        @param startedAt: when the request began.
        """
        HotExchange.__init__(
            self,
            channel,
            head.method,
            head.target,
            path,
            head.version,
            head.headers,
            head.contentLength,
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
        Start the response: its head is sent with the first body bytes (or
        at L{finish}), in one write.
        """
        channel = self.channel
        self.code = code
        self.startedWriting = True
        if close:
            channel.persistent = False
        channel.headKeptAlive = channel.persistent
        framed = self._frame(code, reason, headers, channel.persistent)
        self._pendingHead, pairs, self._framing = framed
        self.responseHeaders.pairs = list(pairs)

    def _frame(
        self,
        code: int,
        reason: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        persistent: bool,
    ) -> tuple[bytes, tuple[tuple[bytes, bytes], ...], Framing]:
        """
        The head of this exchange's response (L{frameHead}), as framed
        lately if it was.  Called in any thread.
        """
        key = (
            self.clientproto,
            code,
            reason,
            tuple(headers),
            self.method == b"HEAD",
            persistent,
        )
        framed = _heads.get(key)
        if framed is None:
            framed = frameHead(*key)
            if len(_heads) >= 256:
                _heads.clear()
            _heads[key] = framed
        return framed

    def sendWholeFromThread(
        self,
        code: int,
        reason: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        close: bool,
        body: bytes,
    ) -> Callable[[], None] | None:
        """
        Send a whole response (head and body of known length) at once from
        the WSGI thread, when the connection allows it: a twsgi socket
        transport (see L{SocketTransport.sendFromThread}) with nothing
        unsent, a response that is not chunked, and a server that is not
        draining.  Called in a WSGI thread; the I/O thread writes nothing
        to the connection while its request is answered.

        @return: what the I/O thread then does, to end the exchange as
            L{writeHead}, L{write} and L{finish} would (the response's access
            record; the rest of the bytes if the kernel did not take them
            all; the next request), or C{None} if nothing was sent: the
            response goes the usual way.
        """
        channel = self.channel
        transport = channel.transport
        # Looked up on the class: a wrapper (TLS, the PROXY protocol) hands
        # the attributes it lacks to the transport beneath it, whose
        # sendFromThread would go around the wrapper.
        if (
            getattr(type(transport), "sendFromThread", None) is None
            or channel.draining
            or self.lost
        ):
            return None
        persistent = channel.persistent and not close
        head, pairs, framing = self._frame(code, reason, headers, persistent)
        if framing is Framing.CHUNKED:
            return None
        if framing is Framing.NONE:
            body = b""
        data = head + body if body else head
        sent = transport.sendFromThread(data)
        if sent is None:
            return None
        length = 0 if framing is Framing.NONE else len(body)
        rest = data[sent:]
        if not rest:
            # Read by connectionLost in the I/O thread: a client that
            # closes as soon as it has the response had all of it.
            self._sentAll = (code, pairs, length)
        return partial(self._sentFromThread, code, pairs, length, persistent, rest)

    def _record(
        self, code: int, pairs: tuple[tuple[bytes, bytes], ...], length: int
    ) -> None:
        """
        What the access record says of a response sent by a WSGI thread.
        """
        self.code = code
        self.startedWriting = True
        self.responseHeaders.pairs = list(pairs)
        self.sentLength = length

    def _sentFromThread(
        self,
        code: int,
        pairs: tuple[tuple[bytes, bytes], ...],
        length: int,
        persistent: bool,
        rest: bytes,
    ) -> None:
        """
        End the exchange whose response L{sendWholeFromThread} sent: write
        what the kernel did not take, make the access record, and go on to
        the next request (or close).  Called in the I/O thread.
        """
        if self.lost or self.finished:
            return
        self._record(code, pairs, length)
        channel = self.channel
        if rest:
            channel.transport.write(rest)
        if not persistent:
            channel.persistent = False
        # A drain that began once the response was sent, saying that the
        # connection stays open, leaves it open (see requestDone).
        channel.headKeptAlive = persistent
        self._finished()
        channel.requestDone(self)

    def connectionLost(self, reason: Failure) -> None:
        """
        The connection ended before the response finished (see
        L{HotExchange.connectionLost}); or after a WSGI thread sent all of
        it, before the I/O thread heard: then the response is recorded as
        sent.
        """
        sentAll = self._sentAll
        if sentAll is not None and not (self.lost or self.finished):
            self._record(*sentAll)
            self._finished()
            return
        HotExchange.connectionLost(self, reason)

    def write(self, data: bytes) -> None:
        """
        Send body bytes, with the head if it is not sent yet.
        """
        framing = self._framing
        if framing is Framing.NONE or not data:
            data = b""
        else:
            self.sentLength += len(data)
            if framing is Framing.CHUNKED:
                data = b"%x\r\n%s\r\n" % (len(data), data)
        head = self._pendingHead
        if head:
            self._pendingHead = b""
            data = head + data if data else head
        if not data:
            return
        self.channel.transport.write(data)

    def finish(self) -> None:
        """
        The response is complete: send what is left, make its access record,
        and let the connection go on.
        """
        if self.lost or self.finished:
            return
        data = self._pendingHead
        self._pendingHead = b""
        if self._framing is Framing.CHUNKED:
            data += b"0\r\n\r\n"
        if data:
            self.channel.transport.write(data)
        self._finished()
        self.channel.requestDone(self)

    def abort(self) -> None:
        """
        The application failed after the head was sent: end the connection
        (L{endCutOff}: closed once what was written is sent, or reset if
        only its close ends the body, L{Framing.CLOSE}), and record the
        response as cut off by an error.  Nothing more is read from the
        connection.
        """
        self.cutOff = "error"
        endCutOff(self.channel, self._framing is Framing.CLOSE)

    def registerProducer(self, producer: PushProducer) -> None:
        self.channel.registerProducer(producer, True)

    def unregisterProducer(self) -> None:
        self.channel.unregisterProducer()


__all__ = [
    "ExchangeChannel",
    "ExchangeSite",
    "Framing",
    "HTTP11Channel",
    "HTTP11Exchange",
    "HeaderList",
    "HotExchange",
    "WebRequest",
    "canonicalName",
    "frameHead",
    "grouped",
    "chooseTemporaryDirectory",
    "requestBody",
]
