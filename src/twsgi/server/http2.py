# -*- test-case-name: tests.server.test_http2 -*-
"""
twsgi's HTTP/2 connection, on twsgi's own sans-I/O state machine
(L{twsgi.http.h2connection}), with the limits, timeouts and graceful stop
of its listener.  Built only when C{hpack} is installed and a TLS
handshake (or a cleartext listener with prior knowledge) chose C{h2} (see
L{twsgi.server.negotiate.ChannelSwitch}).

L{TwsgiH2Connection} is the connection's protocol and the state machine's
handler: it feeds what arrives to the state machine, which calls it back
for each request, body chunk, reset and window update; it writes what the
state machine has to send, and sends each stream's response within the
stream's flow-control window; what the hot path's responses write in one
turn of the reactor goes out at the turn's end, in as few frames and one
write.  Each stream is an L{Http2Stream}.  A stream for
the WSGI application (the listener's C{exchangeRoute}) is an
L{H2Exchange<twsgi.server.h2exchange.H2Exchange>}, served like HTTP/1.1's
hot path without a C{twisted.web} request; any other (health, metrics,
static files, resource trees) gets a C{twisted.web} request from the
listener's C{requestFactory}, to which the stream gives the public methods
of a channel.

What HTTP/1.1 enforces in L{twsgi.server.http1.TwsgiChannel} holds per stream
here:

  - a malformed request (RFC 9113 section 8.1.1): a malformed header
    block or trailer block (sections 8.2 and 8.3,
    L{twsgi.http.h2head.checkBlock}), trailers without C{END_STREAM}, or a
    body that is not its C{content-length}, is a stream error: the stream
    is reset with C{PROTOCOL_ERROR} and the connection goes on; it counts
    as a refused stream and as a reset (below), and gets a server-log line
    and an access record (400, nothing sent);
  - the header block is checked by L{twsgi.http.h2head.checkHead} before a
    request object exists (414, 431, 400, and 413 from C{content-length}),
    also a block beyond the advertised L{twsgi.http.h2head.headerListBound}
    (the stream gets 431, the connection goes on); only a block beyond
    L{twsgi.http.h2head.decoderBound} ends the connection.  A block that
    passed both checks before on the connection (the same fields, up to
    L{MAX_CHECKED} of them) is not checked again;
  - DATA is counted as it arrives: above the body limit the stream gets 413
    and is reset, before the application ever runs (it runs once the whole
    body arrived, as for HTTP/1.1);
  - the body bytes the streams hold at once are bounded (L{BodyBudget}):
    once they reach the body limit, a stream that sends more waits with
    its window held (L{H2ServerConnection.holdWindow}) until bytes are
    given back, but for the oldest stream still receiving, so one
    connection holds at most twice the body limit, plus a window per
    stream; a waiting stream's body timeout stops while the client has
    filled its window, and starts again when it no longer waits; if the
    oldest stream's body times out, the streams waiting behind it are
    answered 408 with it (the client stalled the one that could go on),
    and counted as one refused stream with it;
  - a header block must arrive whole within the header timeout (a HEADERS
    frame and its CONTINUATION frames), else the connection is closed;
  - a stream whose body stalls for the body timeout gets 408 and is reset;
  - a response that waits for a client that does not read it (its
    stream's flow-control window, or the connection's transport, stays
    blocked) for the send timeout is reset with C{CANCEL}, which stops its
    producer and so frees the application's thread; a WINDOW_UPDATE the
    stream can use (its own, or the connection's while its own window is
    open; either while the transport takes more) or a transport that
    drains restarts the timeout;
  - a connection without streams for the keep-alive timeout is closed with
    GOAWAY; the timer runs from the end of the last stream, and PING or
    SETTINGS frames do not reset it, so a header block that trickles in
    is bounded by it too;
  - at most C{limits.maxStreams} streams are open at once (each may hold
    a WSGI thread, and an upload without C{content-length} a temporary
    file): the connection advertises it as
    C{SETTINGS_MAX_CONCURRENT_STREAMS}, and the state machine refuses
    (C{REFUSED_STREAM}) a stream beyond it of a client that acknowledged
    it.  Before the client acknowledged it, its opening burst is served up
    to L{UNACKNOWLEDGED_STREAMS} streams;
  - after C{limits.maxRefusedStreams} streams refused without the
    application (any of the answers above) the connection is closed with
    GOAWAY C{ENHANCE_YOUR_CALM}, as HTTP/1.1 closes its connection after
    one: a client cannot buy an access record per stream at line rate;
  - a client that resets streams faster than C{limits.resetRate} a second,
    beyond a burst of C{limits.resetBurst} (the "Rapid Reset" attack,
    CVE-2023-44487: each stream it opens and resets at once costs the
    server a request) is closed with GOAWAY C{ENHANCE_YOUR_CALM};
  - so is a client that sends more PING and SETTINGS frames
    (C{limits.controlFrames}), or more empty DATA and CONTINUATION frames
    (C{limits.emptyFrames}), than their buckets allow, or a header block
    larger than the HPACK decoder takes: counted from the frame headers
    (L{HeaderBlockWatch}) before the state machine parses the frames; RST_STREAM
    frames are counted so too.  Such a connection is no longer read, and
    is aborted L{CALM_LINGER} seconds after its GOAWAY;
  - what a connection sends at once goes to the state machine L{FRAMES_PER_TURN}
    frames a turn of the reactor, its transport's reading paused
    meanwhile, so that other connections get turns in between;
  - a client that makes the server answer frames (PING, SETTINGS) while
    it reads nothing is closed once L{MAX_CONTROL_BUFFER} bytes of them
    wait (the "ping flood", CVE-2019-9512);
  - on a graceful stop the connection first sends a PING and holds its
    responses until the PING is answered (one round trip, at most
    L{DRAIN_ROUND_TRIP}, or a quarter of the graceful timeout if that is
    shorter): the client then reads the GOAWAY that follows
    with no response before it, so it holds no request it queued in
    answer to one, which it would have to refuse itself (h2load counts
    those failed).  That GOAWAY refuses no stream and comes with a second
    PING, and once that one is answered a GOAWAY names the last stream the
    connection will serve (RFC 9113 section 6.8); it lets those streams
    finish, refuses later ones with C{REFUSED_STREAM} (so that clients may
    retry them elsewhere), and closes once the last one finished.

Everything here runs in the I/O thread.
"""

from __future__ import annotations

import copy
import enum
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol, cast

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import ConnectionLost
from twisted.internet.interfaces import IPushProducer, ISSLTransport, ITCPTransport
from twisted.internet.protocol import Protocol as TwistedProtocol
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web.http_headers import Headers
from zope.interface import implementer

from twsgi.http.h2budget import BodyBudget
from twsgi.http.h2connection import Fields, H2ConnectionError, H2ServerConnection
from twsgi.http.h2frames import (
    MAX_CONCURRENT_STREAMS,
    MAX_HEADER_LIST_SIZE,
    ErrorCode,
    goAwayFrame,
    pingFrame,
)
from twsgi.http.h2head import (
    HTTP2,
    HeaderBlockWatch,
    Http2Head,
    MalformedBlock,
    PartialHead,
    TokenBucket,
    checkBlock,
    checkHead,
    decoderBound,
    headerListBound,
    partialHead,
)
from twsgi.http.hopbyhop import CONNECTION_SPECIFIC
from twsgi.http.limits import Limits
from twsgi.http.parse import FramingError, errorBody
from twsgi.http.shortage import retryAfterFields
from twsgi.logs.accesslog import escape
from twsgi.logs.clock import DelayedCall, ResettableCall, TimeoutClock
from twsgi.logs.limited import LimitedLog
from twsgi.server.closing import CloseWatch, cancelCloseWatch, watchClose
from twsgi.server.connections import IDLE_GRACE
from twsgi.server.exchange import HotExchange, WebRequest
from twsgi.server.h2exchange import H2Exchange
from twsgi.server.pulling import ReactorPullToPush
from twsgi.server.transport import Address
from twsgi.wsgi.environ import RequestFacts
from twsgi.wsgi.exchange import PullProducer, PushProducer

FieldList = Sequence[tuple[bytes, bytes]]


UNACKNOWLEDGED_STREAMS = 100
"""
The streams a client may open before it acknowledged the connection's
stream cap (RFC 9113 recommends a cap no lower): a client may open streams
before it read the server's SETTINGS, and those of its opening burst are
served, not refused, while they fit.
"""

FRAMES_PER_TURN = 16
"""
The frames of one connection given to the state machine in one turn of the reactor:
what arrived beyond them waits for the next turn, with the transport's
reading paused, so that a connection that sends megabytes at once holds the
I/O thread no longer than any other connection does.
"""

AHEAD_FRAMES = 8 * FRAMES_PER_TURN
"""
The frames beyond a turn's that are judged with it, from their frame
headers, as a flood or not (more than the default flood buckets hold): a
flood that arrives at once is cut off before it is parsed, and a read of
megabytes is still followed a bounded number of frames a turn.
"""

CALM_LINGER = 1.0
"""
The seconds a connection closed for a flood (GOAWAY C{ENHANCE_YOUR_CALM}) is
kept, unread, before it is aborted: its client can read the GOAWAY before
the reset that its unread bytes would bring, and what a flooder still sends
costs nothing, nor does a flooder that waits for its writes to go.
"""

MAX_CHECKED = 8
"""
How many header blocks that passed its checks a connection remembers
with their L{Http2Head}: a repeated block is not checked again.
"""

MAX_CONTROL_BUFFER = 128 * 1024
"""
The bytes of frames (PING and SETTINGS acknowledgements, response heads,
resets) kept while the transport's buffer is full, before the connection
is aborted: a client that sends frames the server must answer, and reads
nothing, would otherwise grow them without bound.
"""


HUSH_PING = b"twsgi-hu"
"""
The payload of the PING that starts a graceful stop: the responses wait for
its answer.
"""

DRAIN_PING = b"twsgi-gd"
"""
The payload of the PING sent with the first GOAWAY of a graceful stop.
"""

DRAIN_ROUND_TRIP = 1.0
"""
The seconds a graceful stop waits for the answer to each of its PINGs
before it goes on: to send the first GOAWAY, then to name the last stream
it serves.  A graceful timeout under four times this shortens the wait to a
quarter of it (see L{TwsgiH2Connection.startDraining}).
"""


LAST_STREAM = 2**31 - 1
"""
The highest stream identifier: a GOAWAY that names it refuses no stream.
"""


class State(enum.Enum):
    """
    Where a L{TwsgiH2Connection} is in its life; it only moves down this
    list, and may skip steps.
    """

    NEW = "new"
    """No request has arrived yet: a graceful stop gives it a grace for one."""
    OPEN = "open"
    """Serving streams."""
    GRACE = "grace"
    """The graceful stop began on a new connection: it has the grace for its
    first request before it is hushed."""
    HUSHED = "hushed"
    """The graceful stop began: a PING is sent, and the responses wait for
    its answer (see L{TwsgiH2Connection._hush})."""
    DRAINING = "draining"
    """The first GOAWAY (refusing no stream) and a PING are sent."""
    LAST = "last"
    """The last GOAWAY named the last stream served: later streams are
    refused, and the connection closes after the last open one."""
    CLOSING = "closing"
    """This side closes the connection: nothing more is read."""
    LOST = "lost"
    """The connection ended: nothing more is read or written."""


class Http2Listener(Protocol):
    """
    What a connection needs of its listener (a L{twsgi.server.site.TwsgiSite}).
    """

    limits: Limits
    reactor: TimeoutClock
    requestFactory: Callable[[Http2Stream], WebRequest]
    http2Closes: LimitedLog
    """
    Where a connection says why this side closed it: a client that makes
    the server close its connections (a flood, each time it reconnects)
    must not fill the server log.
    """
    http2Malformed: LimitedLog
    """
    Where a connection says why it reset a stream for a malformed request.
    """
    onStreamReset: Callable[[bool, int], None] | None
    """
    Told of each stream reset (the metrics' count): whether the client
    reset it (else the server did), and the RST_STREAM error code.
    """

    def requestRejected(self, channel: TwsgiH2Connection, error: FramingError) -> None:
        """
        A stream was answered with C{error} without the application.
        """

    def connectionClosed(self, channel: TwsgiH2Connection) -> None:
        """
        The connection was lost.
        """


class Http2Stream:
    """
    One stream of a L{TwsgiH2Connection}: its flow-control state, and its
    C{request}, an L{H2Exchange} on the hot path or else a C{twisted.web}
    request, whose channel it is: the request writes its response here,
    and registers its producer here, as it would on an HTTP/1.1 channel.

    @ivar connection: the L{TwsgiH2Connection}.
    @ivar streamID: the stream's identifier.
    @ivar site: the listener (C{twisted.web} reads C{site} and C{factory}).
    @ivar request: the stream's request.
    @ivar command: the C{:method}.
    @ivar path: the C{:path}.
    @ivar contentLength: the request's C{content-length}, if it has one.
    @ivar producer: the push producer of the response, if one is registered.
    @ivar producerPaused: C{True} while this stream paused C{producer}.
    @ivar chunks: response bytes not yet sent (beyond the window).
    @ivar queued: how many bytes C{chunks} holds.
    @ivar ending: C{True} once the response is complete; the stream ends
        once C{chunks} are sent.
    """

    transport = None
    persistent = False

    def __init__(
        self,
        connection: TwsgiH2Connection,
        streamID: int,
        head: Http2Head,
    ) -> None:
        self.connection = connection
        self.streamID = streamID
        self.site = self.factory = connection.site
        self.command: bytes | None = head.method
        self.contentLength = head.contentLength
        self.path: bytes | None = head.path
        self.producer: PushProducer | None = None
        self.producerPaused = False
        self._pulling: ReactorPullToPush | None = None
        self.chunks: deque[bytes | memoryview] = deque()
        self.queued = 0
        self.ending = False
        route = connection.route
        target = route(head.path.split(b"?", 1)[0]) if route is not None else None
        self.request: H2Exchange | WebRequest
        if target is not None:
            # The hot path: no twisted.web request.
            self.request = H2Exchange(self, head, target, connection.clock.seconds())
        else:
            self.request = self._webRequest(head)
        if head.expectContinue:
            connection.writeHeaders(streamID, b"100", ())

    def _webRequest(self, head: Http2Head) -> WebRequest:
        """
        The stream's C{twisted.web} request, for a path that does not go to
        the application on the hot path (health, metrics, static files,
        resource trees).
        """
        request = self.connection.site.requestFactory(self)
        fields = request.requestHeaders
        for name, value in head.fields:
            fields.addRawHeader(name, value)
        if head.contentLength is None and head.method not in (b"GET", b"HEAD"):
            request.gotLength(None)
        else:
            request.gotLength(head.contentLength or 0)
        request.parseCookies()
        return request

    # -- what the connection tells ---------------------------------------------

    def receiveData(self, data: bytes) -> None:
        """
        A chunk of the request body arrived.

        @raise FramingError: 503, 507 or 500, the body could not be kept
            (see L{twsgi.server.exchange.bodyNotKept}).
        """
        self.request.handleContentChunk(data)

    def requestComplete(self) -> None:
        """
        The whole request arrived: hand it to the resource tree.
        """
        request = self.request
        if isinstance(request, H2Exchange):
            facts = self.connection.exchangeFacts
            assert facts is not None
            request.requestReceived(facts)
        else:
            assert self.command is not None and self.path is not None
            request.requestReceived(self.command, self.path, HTTP2)

    def lose(self, reason: Failure) -> None:
        """
        The stream or its connection is lost: tell the request, and stop
        the response's producer, as a TCP transport stops its producer
        when its connection is lost (a producer paused by flow control, a
        WSGI thread waiting to write, would otherwise wait for ever).
        """
        self.chunks.clear()
        self.queued = 0
        self.request.connectionLost(reason)
        producer, self.producer = self.producer, None
        if producer is not None:
            producer.stopProducing()

    def pauseProducer(self) -> None:
        """
        Pause the response's producer: no window, or a full transport.
        """
        if self.producer is not None and not self.producerPaused:
            self.producerPaused = True
            self.producer.pauseProducing()

    def resumeProducer(self) -> None:
        """
        Resume the response's producer, if this stream paused it.
        """
        if self.producer is not None and self.producerPaused:
            self.producerPaused = False
            self.producer.resumeProducing()

    # -- the channel of the request ---------------------------------------------

    def writeHeaders(
        self, version: bytes, code: bytes, reason: bytes, headers: Headers
    ) -> None:
        """
        Send the response head (C{version} and C{reason} have no place in
        HTTP/2).
        """
        self.connection.writeHeaders(
            self.streamID,
            code,
            [
                (name, value)
                for name, values in headers.getAllRawHeaders()
                for value in values
            ],
        )

    def write(self, data: bytes) -> None:
        """
        Send some of the response body.
        """
        self.connection.writeData(self, data)

    def writeSequence(self, iovec: Sequence[bytes]) -> None:
        """
        Send some of the response body.
        """
        self.write(b"".join(iovec))

    def requestDone(self, request: object) -> None:
        """
        The response is complete: end the stream once it is sent.
        """
        self.connection.endStream(self)

    def loseConnection(self) -> None:
        """
        End the stream once what was written is sent.
        """
        self.connection.endStream(self)

    def abortConnection(self) -> None:
        """
        Reset the stream now; its request is not told (its caller does).
        """
        self.connection.abortStream(self.streamID)

    def getPeer(self) -> Address:
        return self.connection.getPeer()

    def getHost(self) -> Address:
        return self.connection.getHost()

    def isSecure(self) -> bool:
        return self.connection.isSecure()

    def registerProducer(
        self, producer: PushProducer | PullProducer, streaming: bool
    ) -> None:
        """
        Take the response's producer; a pull producer is driven from the
        connection's reactor (see L{twsgi.server.pulling}).  It is paused at
        once while the transport's buffer is full.
        """
        if self.producer is not None:
            raise ValueError(
                f"registering producer {producer!r} before the previous one "
                f"({self.producer!r}) was unregistered"
            )
        if streaming:
            # Registered with streaming=True: an IPushProducer.
            push = cast(PushProducer, producer)
        else:
            self._pulling = push = ReactorPullToPush(
                producer, self, self.connection.callLater
            )
        self.producer = push
        self.producerPaused = False
        self.connection.producerRegistered(self)
        if self._pulling is not None:
            self._pulling.start()

    def unregisterProducer(self) -> None:
        pulling, self._pulling = self._pulling, None
        if pulling is not None:
            pulling.stop()
        self.producer = None
        self.producerPaused = False

    def abortResponse(self) -> None:
        """
        The response's pull producer failed (see L{ReactorPullToPush}): the
        response cannot be finished, so the stream is reset and its request
        told, as for a WSGI application that fails in the middle of its
        response.
        """
        if not getattr(self.request, "cutOff", ""):
            self.request.cutOff = "error"
        if self.connection.streams.get(self.streamID) is self:
            self.connection.abortStream(self.streamID)
            self.lose(Failure(ConnectionLost("the response's producer failed")))


class _Batch:
    """
    What L{TwsgiH2Connection.batch} returns: a block during which what
    the state machine has to send is kept, and written when the outermost block ends.
    (A class rather than a generator: it is entered twice per request.)
    """

    def __init__(self, connection: TwsgiH2Connection) -> None:
        self.connection = connection

    def __enter__(self) -> None:
        self.connection._corked += 1

    def __exit__(self, *exc: object) -> None:
        self.connection._uncork()


@implementer(IPushProducer)
class TwsgiH2Connection(TwistedProtocol):
    """
    An HTTP/2 connection that enforces its listener's L{Limits} and drains.

    @ivar site: its listener.
    @ivar limits: the listener's L{Limits}.
    @ivar conn: its L{H2ServerConnection}, whose handler it is.
    @ivar streams: the open L{Http2Stream}s, by identifier.
    @ivar state: the connection's L{State}.
    @ivar partialHead: the L{PartialHead} of the request being refused,
        for its access record (see L{twsgi.server.site.rejectionRecord}).
    @ivar partialRequest: its request object, if it had one.
    """

    transport: Any
    closeWatch: CloseWatch | None = None

    def __init__(self, site: Http2Listener) -> None:
        self.state = State.NEW
        self.site = site
        self.limits = limits = site.limits
        self.clock = site.reactor
        self.callLater = site.reactor.callLater
        # What serves a path on the hot path, and the facts of its requests
        # (see TwsgiSite.exchangeRoute and TwsgiSite.exchangeFacts).
        self.exchangeFacts: Callable[[HotExchange], RequestFacts] | None = getattr(
            site, "exchangeFacts", None
        )
        self.route: Callable[[bytes], Callable[[HotExchange], None] | None] | None = (
            getattr(site, "exchangeRoute", None) if self.exchangeFacts else None
        )
        # It tells this connection what arrives (it is its Handler).
        self.conn = H2ServerConnection(
            self,
            {
                MAX_HEADER_LIST_SIZE: headerListBound(limits),
                MAX_CONCURRENT_STREAMS: max(limits.maxStreams, UNACKNOWLEDGED_STREAMS),
            },
        )
        self.conn.decoder.max_header_list_size = decoderBound(limits)
        self.streams: dict[int, Http2Stream] = {}
        # The request-body bytes the streams hold (see bodyReceived).
        self._budget = BodyBudget(limits.maxBody)
        self.partialHead: PartialHead | None = None
        self.partialRequest: H2Exchange | WebRequest | None = None
        self._blocks = HeaderBlockWatch()
        # A watch that followed, at once, the frames that arrived beyond
        # this turn's (see _readTurn), and how many bytes of the next
        # turn's data it followed; the counts of flood frames charged.
        self._ahead: HeaderBlockWatch | None = None
        self._aheadBytes = 0
        self._charged = (0, 0, 0)
        self._idleCall: ResettableCall | None = None
        self._headerCall: ResettableCall | None = None
        self._graceCall: ResettableCall | None = None
        # How long a graceful stop waits for each of its PINGs to be answered.
        self._roundTrip = DRAIN_ROUND_TRIP
        self._bodyCalls: dict[int, ResettableCall] = {}
        self._bodyReceived: dict[int, int] = {}
        self._sendCalls: dict[int, ResettableCall] = {}
        self._heads: dict[int, FieldList] = {}
        # The heads of blocks that passed checkBlock and checkHead, by their
        # fields: a client's requests repeat theirs.
        self._checked: dict[tuple[tuple[bytes, bytes], ...], Http2Head] = {}
        # The last stream served: every one, until the last GOAWAY.
        self._lastStreamID = LAST_STREAM
        self._paused = False
        self._held: list[bytes] = []
        self._heldSize = 0
        self._refused = 0
        self._resetInRead: tuple[int, ...] = ()
        self._complete: list[Http2Stream] = []
        self._unread = b""
        self._readPaused = False
        self._readCall: ResettableCall | None = None
        now = self.clock.seconds()
        self._resets = TokenBucket(limits.resetBurst, limits.resetRate, now)
        self._answered = TokenBucket(
            limits.controlFrames, limits.controlFrames / 10, now
        )
        self._empty = TokenBucket(limits.emptyFrames, limits.emptyFrames / 10, now)
        self._host: Address | None = None
        self._peer: Address | None = None
        self._secure: bool | None = None
        self._corked = 0
        self._batch = _Batch(self)
        self._flushCall: ResettableCall | None = None
        self._pendingStreams: dict[int, Http2Stream] = {}
        # When the client last opened the connection's window (or changed
        # every stream's): see _sendTimedOut.
        self._windowShared = -float("inf")
        # The stream that had the first turn when the connection's window
        # last opened (see _shareWindow).
        self._firstTurn = 0

    # -- what the graceful stop asks (see twsgi.server.connections.ConnectionSet) -------

    @property
    def inFlight(self) -> int:
        """
        Streams started and not yet answered.
        """
        return len(self.streams)

    def isIdle(self) -> bool:
        """
        C{True} if no stream is open.
        """
        return not self.streams

    def startDraining(
        self, idleGrace: float = IDLE_GRACE, within: float | None = None
    ) -> None:
        """
        Start the graceful stop now, or after C{idleGrace} seconds for a
        connection that has not sent its first request yet.

        @param within: the seconds until what is still in flight is
            aborted, if bounded: each of the stop's two PINGs is then
            waited for a quarter of them at most (and L{DRAIN_ROUND_TRIP}
            at most), so that the responses held meanwhile go out, and
            the streams still open are named, well before that.
        """
        if within is not None:
            self._roundTrip = min(DRAIN_ROUND_TRIP, within / 4)
        state = self.state
        if state is State.NEW:
            self.state = State.GRACE
            self._graceCall = self.callLater(idleGrace, self._hush)
        elif state is State.OPEN:
            self._hush()

    def _hush(self) -> None:
        """
        Send a PING, and hold every response until it is answered (or for
        L{DRAIN_ROUND_TRIP} seconds, or less: see L{startDraining}); then
        L{_goAway}.  Once the client
        answered, it has read every response sent so far, and sent the
        requests it queued in answer to them: the GOAWAY is then the next
        thing it reads, with no response before it, so it has queued no
        request that it would have to refuse itself on reading it.
        """
        self._graceCall = None
        if self.state is not State.GRACE and self.state is not State.OPEN:
            return
        self.state = State.HUSHED
        # Written now, after what the connection holds, even within a batch.
        self._flush(pingFrame(HUSH_PING))
        self._graceCall = self.callLater(self._roundTrip, self._goAway)

    def _goAway(self) -> None:
        """
        Go on with the graceful stop of RFC 9113 section 6.8: a GOAWAY that
        refuses no stream (the client stops opening streams once it read
        it), then the responses held since L{_hush}, and a PING; once the
        PING is answered (or after the wait of L{_hush}), every
        stream the client opened before it read the GOAWAY has arrived, and
        L{_lastGoAway} names the last.  So no stream the client opened
        meanwhile is refused.  The GOAWAY frames are written as they are:
        L{H2ServerConnection.closeConnection} would allow nothing more.
        """
        self._cancel(self._graceCall)
        self._graceCall = None
        if self.state is not State.HUSHED:
            return
        self.state = State.DRAINING
        self._write(goAwayFrame(LAST_STREAM, ErrorCode.NO_ERROR))
        self.conn.ping(DRAIN_PING)
        with self.batch():
            self._sendAll()
            self._windowOpened(list(self.streams))
        self._graceCall = self.callLater(self._roundTrip, self._lastGoAway)

    def _lastGoAway(self) -> None:
        """
        Tell the client which streams will still be served, then close once
        they are.
        """
        self._cancel(self._graceCall)
        self._graceCall = None
        if self.state is not State.DRAINING:
            return
        self.state = State.LAST
        self._lastStreamID = self.conn.highestInboundStreamID
        self._flush(goAwayFrame(self._lastStreamID, ErrorCode.NO_ERROR))
        self._closeIfDone()

    def _closeIfDone(self) -> None:
        if self.state is State.LAST and not self.streams:
            self._close()

    def _close(self, linger: float = 0.0) -> None:
        """
        Close the connection once what was written is sent; abort it if
        it has not gone shortly after (see L{twsgi.server.closing}).
        Nothing more is read.

        @param linger: if not zero, stop reading the transport at once, and
            abort the connection C{linger} seconds later (once what was
            written is sent) rather than close it now.
        """
        if self.state is State.CLOSING or self.state is State.LOST:
            return
        self.state = State.CLOSING
        # What waited for the transport goes before the close, and what a
        # batch has not written yet after it.
        pending = self.conn.dataToSend()
        if pending:
            self._held.append(pending)
        for data in self._held:
            self.transport.write(data)
        self._held.clear()
        self._heldSize = 0
        self.conn.stop()
        # A TLS transport only closes once its producer is unregistered.
        self.transport.unregisterProducer()
        if linger:
            self._pauseReading()
            watchClose(self, linger)
            return
        # Armed first: a transport that closes at once cancels it.
        watchClose(self)
        self.transport.loseConnection()

    # -- writing -------------------------------------------------------------

    def _flush(self, extra: bytes = b"") -> None:
        """
        Write what the connection has to send (and C{extra} after it), or
        keep it while the transport's buffer is full, up to
        L{MAX_CONTROL_BUFFER} bytes.
        """
        if (self._corked or self.state is State.HUSHED) and not extra:
            # Written once the batch ends, or the client answered the PING
            # of a graceful stop.
            return
        self._write(self.conn.dataToSend() + extra)

    def _write(self, data: bytes) -> None:
        """
        Write C{data}, or keep it while the transport's buffer is full, up
        to L{MAX_CONTROL_BUFFER} bytes.
        """
        if not data or self.state is State.LOST:
            return
        if not self._paused and not self._held:
            self.transport.write(data)
            return
        self._held.append(data)
        self._heldSize += len(data)
        if self._heldSize > MAX_CONTROL_BUFFER:
            self._logClosed("too many frames sent to a client that does not read")
            self.transport.abortConnection()
            self._teardown(Failure(ConnectionLost("client does not read")))

    def batch(self) -> _Batch:
        """
        Write what the connection has to send once, when the block ends, rather than
        after each frame.
        """
        return self._batch

    def _uncork(self) -> None:
        self._corked -= 1
        if not self._corked:
            self._flush()

    def flushSoon(self) -> None:
        """
        Write what the connection has to send at the end of this turn of the reactor,
        in one write, rather than after each frame: the responses that
        finish in the same turn (the bridge hands them over together) go
        out together.
        """
        if self._flushCall is None and self.state is not State.LOST:
            self._corked += 1
            self._flushCall = self.callLater(0, self._flushTurn)

    def _flushTurn(self) -> None:
        self._flushCall = None
        pending, self._pendingStreams = self._pendingStreams, {}
        for stream in pending.values():
            self._send(stream)
            # What the window did not let out waits for the client: timed.
            self._watchSend(stream.streamID)
        self._uncork()

    def writeHeaders(
        self, streamID: int, status: bytes, headers: FieldList, end: bool = False
    ) -> None:
        """
        Send a response head, without the fields HTTP/2 forbids, with names
        in lower case and values without surrounding whitespace (RFC 9113
        section 8.2); with C{end}, it ends the
        stream (a response without a body).  The fields passed the checks
        of L{twsgi.wsgi.response.ResponseState} (or are the server's own).
        """
        block = [(b":status", status)]
        for name, value in headers:
            name = name.lower()
            if name not in CONNECTION_SPECIFIC:
                block.append((name, value.strip(b" \t")))
        if not self.conn.sendHeaders(streamID, block, end):
            # Reset by the client meanwhile: its request hears of it.
            return
        self._flush()
        if end:
            self._streamDone(streamID)

    def writeData(self, stream: Http2Stream, data: bytes, soon: bool = False) -> None:
        """
        Send C{data} on C{stream} as far as its window allows, and keep the
        rest until the client opens the window.

        @param soon: send it at the end of this turn of the reactor (see
            L{flushSoon}) rather than now: what a response writes in one
            turn goes out in as few DATA frames as the window and the frame
            size allow, the last one ending the stream if the response
            finished meanwhile.
        """
        streamID = stream.streamID
        if not data or self.streams.get(streamID) is not stream:
            return
        stream.chunks.append(data)
        stream.queued += len(data)
        window = None
        if soon:
            self.flushSoon()
            self._pendingStreams[streamID] = stream
        else:
            window = self._send(stream)
            if self.streams.get(streamID) is not stream:
                return
        # updateProducer and _watchSend, asking for the window once: a
        # response that has room and was not stalled needs no timer.
        if window is None:
            window = self.conn.localFlowControlWindow(streamID)
        self.updateProducer(stream, window)
        if self._paused or window <= 0 or streamID in self._sendCalls:
            self._watchSend(streamID)

    def endStream(self, stream: Http2Stream) -> None:
        """
        The response on C{stream} is complete: end the stream once what
        it holds is sent.
        """
        if self.streams.get(stream.streamID) is not stream or stream.ending:
            return
        stream.ending = True
        self._send(stream)
        self._watchSend(stream.streamID)

    def abortStream(self, streamID: int) -> None:
        """
        Reset a stream whose response cannot be completed, with
        C{INTERNAL_ERROR} (RFC 9113 section 8.1 keeps C{NO_ERROR} for a
        complete response whose request the server stops reading), once
        what it holds is sent as far as its window allows (written this
        turn, it would wait for the turn's end, after the reset; HTTP/1.1
        sends it too); one already gone is left alone.
        """
        stream = self.streams.get(streamID)
        if stream is not None:
            self._send(stream)
        if streamID in self.streams:
            self._resetStream(streamID, ErrorCode.INTERNAL_ERROR)
            self._streamDone(streamID)

    def _send(self, stream: Http2Stream) -> int | None:
        """
        Send what C{stream} holds, in frames of at most the peer's frame
        size, while its window is open and the transport takes more.

        @return: the stream's flow-control window once sent, if this asked
            for it (the stream is open and had something to send).
        """
        with self.batch():
            return self._sendFrames(stream, 0)

    def _sendFrames(self, stream: Http2Stream, frames: int) -> int | None:
        """
        Send up to C{frames} frames of C{stream}'s response (every frame
        its window allows, if C{0}), or end it.  The stream's window and
        the peer's frame size are asked once: within the batch this runs
        in, only these frames change the window.

        @return: the stream's window once sent, if it was asked; C{None} if
            the stream cannot send (gone, or waiting for the transport or
            for the client's answer to a PING) or had nothing to send.
        """
        streamID = stream.streamID
        if (
            self._paused
            or self._held
            or self.state is State.HUSHED
            or self.streams.get(streamID) is not stream
        ):
            # Waiting for the transport or the client's answer to a PING,
            # or the stream is gone.
            return None
        chunks = stream.chunks
        conn = self.conn
        window: int | None = None
        if chunks:
            window = conn.localFlowControlWindow(streamID)
            frameSize = conn.maxOutboundFrameSize
        while chunks and window is not None and window > 0:
            # As much as one frame takes, of as many chunks as it takes.
            size = min(window, frameSize)
            parts: list[bytes | memoryview] = []
            while chunks and size > 0:
                chunk = chunks[0]
                if len(chunk) > size:
                    view = memoryview(chunk)
                    chunks[0] = view[size:]
                    parts.append(view[:size])
                    size = 0
                else:
                    chunks.popleft()
                    parts.append(chunk)
                    size -= len(chunk)
            piece = b"".join(parts)
            stream.queued -= len(piece)
            window -= len(piece)
            end = stream.ending and not chunks
            if not conn.sendData(streamID, piece, end):
                self._sendClosed(stream)
                return None
            self._flush()
            if end:
                # The last frame ended the stream.
                self._streamDone(streamID)
                return window
            frames -= 1
            if not frames:
                return window
        if not chunks and stream.ending:
            if not conn.endStream(streamID):
                self._sendClosed(stream)
                return None
            self._flush()
            self._streamDone(streamID)
        return window

    def _sendClosed(self, stream: Http2Stream) -> None:
        """
        The client reset the stream meanwhile: forget what it held.
        """
        stream.chunks.clear()
        stream.queued = 0
        self._streamDone(stream.streamID)

    def _sendAll(self) -> None:
        """
        Send what every stream holds, a frame of each in turn.
        """
        progress = True
        with self.batch():
            while progress:
                progress = False
                for stream in list(self.streams.values()):
                    window = self._sendFrames(stream, 1)
                    if (
                        window is not None
                        and window > 0
                        and stream.chunks
                        and self.streams.get(stream.streamID) is stream
                    ):
                        # A frame went, and another may follow (a window the
                        # client's SETTINGS took below zero sends none).
                        progress = True

    def updateProducer(self, stream: Http2Stream, window: int | None = None) -> None:
        """
        Pause the producer of C{stream}'s response while the response has
        no room in its window or the transport's buffer is full, and resume
        it once it has.

        @param window: the stream's flow-control window, if already known.
        """
        if window is None:
            window = self.conn.localFlowControlWindow(stream.streamID)
        room = window - stream.queued
        if self._paused or self.state is State.HUSHED or room <= 0:
            stream.pauseProducer()
        else:
            stream.resumeProducer()

    def producerRegistered(self, stream: Http2Stream) -> None:
        """
        A producer was registered for C{stream}'s response: pause it while
        the transport's buffer is full (a response without window is
        paused by its first write).
        """
        if self._paused:
            stream.pauseProducer()
            self._watchSend(stream.streamID)

    def _windowOpened(self, streamIDs: Sequence[int], shared: bool = False) -> None:
        """
        Send what the streams C{streamIDs} hold now that a window opened,
        and resume their producers if they have room; restart their send
        timeouts, unless the transport's buffer is full: a client that
        reads nothing makes no progress by opening windows.

        @param shared: the connection's window opened (or every stream's
            changed): the streams whose own window is open share it, a
            frame each in turn, until it is used up, the first turn going
            to the stream after the one that had the first turn last time;
            the rest are left as they are (the send timeouts of those whose
            own window is open count from now, see L{_sendTimedOut}), so
            that a WINDOW_UPDATE of one octet costs one stream, not every
            one, and keeps alive no stream whose own window the client
            keeps shut.  (Served one after the other in stream order, the
            first streams took a window that the client opens little by
            little, and the later ones waited for them to end.)
        """
        # Only the streams that wait for it: something queued, or paused.
        streams = self.streams
        streamIDs = [
            streamID
            for streamID in streamIDs
            if (stream := streams.get(streamID)) is not None
            and (stream.queued or stream.producerPaused)
        ]
        if shared:
            if self._paused:
                # Nothing can go; the transport's draining sends it.
                return
            self._windowShared = self.clock.seconds()
            streamIDs = self._shareWindow(streamIDs)
        else:
            for streamID in streamIDs:
                stream = self.streams.get(streamID)
                if stream is not None:
                    self._send(stream)
        for streamID in streamIDs:
            stream = self.streams.get(streamID)
            if stream is not None:
                self.updateProducer(stream)
                self._watchSend(streamID, progress=not self._paused)

    def _shareWindow(self, streamIDs: Sequence[int]) -> list[int]:
        """
        Share the connection's window among the streams C{streamIDs} (in
        the order they were opened) whose own window is open: a frame each
        in turn, until the window is used up or they sent what they hold.
        The first turn goes to the first of them opened after the stream
        that had the first turn last time (to the first of them if none
        was); a turn in which a stream sends nothing (its frames held
        during a graceful stop's hush) is no one's.

        @return: the streams that had a turn.
        """
        conn = self.conn
        streams = self.streams
        waiting = [s for s in streamIDs if conn.streamFlowControlWindow(s) > 0]
        start = next((n for n, s in enumerate(waiting) if s > self._firstTurn), 0)
        waiting = [*waiting[start:], *waiting[:start]]
        served: dict[int, None] = {}
        sent = False
        with self.batch():
            while waiting:
                more = []
                for streamID in waiting:
                    if conn.connectionFlowControlWindow() <= 0:
                        waiting = []
                        break
                    stream = streams.get(streamID)
                    if stream is None:
                        continue
                    served[streamID] = None
                    # A stream alone takes what it can at once.
                    window = self._sendFrames(stream, 1 if len(waiting) > 1 else 0)
                    if window is not None and not sent:
                        # The first turn is the first stream's that sent.
                        sent = True
                        self._firstTurn = streamID
                    if window and stream.chunks and streams.get(streamID) is stream:
                        more.append(streamID)
                else:
                    waiting = more
        return list(served)

    # -- IPushProducer, for the transport ----------------------------------------

    def pauseProducing(self) -> None:
        """
        The transport's buffer is full: pause every stream's producer too,
        so that responses wait in the application rather than in memory.
        """
        self._paused = True
        for streamID, stream in list(self.streams.items()):
            stream.pauseProducer()
            self._watchSend(streamID)

    def resumeProducing(self) -> None:
        """
        The transport's buffer drained: send what waited, and resume the
        streams' producers.
        """
        self._paused = False
        while self._held and not self._paused:
            data = self._held.pop(0)
            self._heldSize -= len(data)
            self.transport.write(data)
        self._sendAll()
        self._windowOpened(list(self.streams))

    def stopProducing(self) -> None:
        self._teardown(Failure(ConnectionLost("producing stopped")))

    # -- timers --------------------------------------------------------------

    def _armIdle(self) -> None:
        self._cancel(self._idleCall)
        self._idleCall = None
        if self.limits.keepAliveTimeout > 0 and self.state is not State.LOST:
            self._idleCall = self.callLater(
                self.limits.keepAliveTimeout, self._idleTimedOut
            )

    def _idleTimedOut(self) -> None:
        self._idleCall = None
        if self.streams or self.state is State.CLOSING or self.state is State.LOST:
            return
        self.conn.closeConnection(ErrorCode.NO_ERROR)
        self._flush()
        self._close()

    def _armBody(self, streamID: int) -> None:
        call = self._bodyCalls.get(streamID)
        if call is not None and call.active():
            call.reset(self.limits.bodyTimeout)
        elif self.limits.bodyTimeout > 0:
            self._bodyCalls[streamID] = self.callLater(
                self.limits.bodyTimeout, self._bodyTimedOut, streamID
            )

    def _bodyTimedOut(self, streamID: int) -> None:
        self._bodyCalls.pop(streamID, None)
        if streamID not in self.streams:
            return
        # The uploads that wait behind this one (the oldest still
        # receiving) wait on a client that stalled it: they go with it, so
        # that filling the windows of many streams and sending no more holds
        # them one body timeout, not one each in turn.  One stall counts as
        # one refused stream: the client's other streams stay served.
        behind = self._budget.stalled(streamID)
        self._refuse(streamID, FramingError(408, "request body not received in time"))
        stalled = FramingError(408, "request body stalled behind an older upload")
        for waiting in behind:
            if waiting in self.streams:
                self._refuse(waiting, stalled, counted=False)

    def _stalled(self, streamID: int) -> bool:
        """
        Whether the response on C{streamID} has something to send and
        waits for the client: its flow-control window is used up, or the
        transport's buffer is full.
        """
        stream = self.streams.get(streamID)
        if stream is None:
            return False
        waiting = stream.queued > 0 or stream.producerPaused
        return waiting and (
            self._paused or self.conn.localFlowControlWindow(streamID) <= 0
        )

    def _watchSend(self, streamID: int, progress: bool = False) -> None:
        """
        Time a stalled response (see L{_stalled}): the timer starts when it
        stalls, and starts again on C{progress} (the client opened a window,
        or the transport drained).
        """
        call = self._sendCalls.get(streamID)
        if self.state is State.LOST or not self._stalled(streamID):
            self._cancel(self._sendCalls.pop(streamID, None))
        elif call is not None and call.active():
            if progress:
                call.reset(self.limits.sendTimeout)
        elif self.limits.sendTimeout > 0:
            self._sendCalls[streamID] = self.callLater(
                self.limits.sendTimeout, self._sendTimedOut, streamID
            )

    def _sendTimedOut(self, streamID: int) -> None:
        """
        A response waited for the client for the send timeout: reset its
        stream with C{CANCEL}; its request is lost, which stops its
        producer (a WSGI thread waiting to write gives up).
        """
        self._sendCalls.pop(streamID, None)
        stream = self.streams.get(streamID)
        if stream is None or not self._stalled(streamID):
            return
        left = self._windowShared + self.limits.sendTimeout - self.clock.seconds()
        if left > 0 and self.conn.streamFlowControlWindow(streamID) > 0:
            # Its own window is open: it waits for the connection's, which
            # the client opened since (see _windowOpened): it reads.
            self._sendCalls[streamID] = self.callLater(
                left, self._sendTimedOut, streamID
            )
            return
        if not getattr(stream.request, "cutOff", ""):
            stream.request.cutOff = "send-timeout"
        self._resetStream(streamID, ErrorCode.CANCEL)
        self._streamDone(streamID)
        stream.lose(Failure(ConnectionLost("response not read in time")))

    def _watchHeaderBlock(self) -> None:
        """
        Time a header block that has begun to arrive but is not complete (a
        HEADERS frame still arriving, or waiting for its CONTINUATION
        frames): it must be complete within the header timeout, as an
        HTTP/1.1 head must (slowloris).  While no stream is open the
        keep-alive timer bounds it too.
        """
        if not self._blocks.pending or self.state is State.LOST:
            self._cancel(self._headerCall)
            self._headerCall = None
        elif self._headerCall is None and self.limits.headerTimeout > 0:
            self._headerCall = self.callLater(
                self.limits.headerTimeout, self._headerTimedOut
            )

    def _headerTimedOut(self) -> None:
        self._headerCall = None
        if self.state is State.CLOSING or self.state is State.LOST:
            return
        self._giveUp("header block not received in time", ErrorCode.PROTOCOL_ERROR)

    def _giveUp(self, why: str, code: int | None = None, linger: float = 0.0) -> None:
        """
        Say in the server log why, send GOAWAY with the error C{code} (or
        the one the connection itself queued) and close the connection now
        (or stop reading it now, and abort it after C{linger} seconds: see
        L{_close}).  The streams still open end now: nothing more is sent
        after GOAWAY, so their responses must not try.
        """
        self._logClosed(why)
        if code is not None:
            self.conn.closeConnection(code)
        self._flush()
        self._close(linger)
        self._teardown(Failure(ConnectionLost(why)))

    def _logClosed(self, why: str) -> None:
        """
        One server-log line saying why this side closed the connection,
        rate-limited per listener (L{LimitedLog}).
        """
        self.site.http2Closes.info(
            "HTTP/2 connection from {peer} closed: {why}",
            peer=self._peerName(),
            why=escape(why),
        )

    def _peerName(self) -> str:
        """
        The client's address as the server log shows it.
        """
        peer = self.getPeer()
        if isinstance(peer, IPv4Address | IPv6Address):
            return f"{peer.host}:{peer.port}"
        return "-"

    @staticmethod
    def _cancel(call: DelayedCall | None) -> None:
        if call is not None and call.active():
            call.cancel()

    # -- the connection ------------------------------------------------------

    def getHost(self) -> Address:
        """
        The local address, asked of the transport once.
        """
        if self._host is None:
            self._host = self.transport.getHost()
        return self._host

    def getPeer(self) -> Address:
        """
        The client's address, asked of the transport once.
        """
        if self._peer is None:
            self._peer = self.transport.getPeer()
        return self._peer

    def isSecure(self) -> bool:
        """
        Whether the connection is over TLS, asked of the transport once.
        """
        if self._secure is None:
            self._secure = ISSLTransport.providedBy(self.transport)
        return self._secure

    def connectionMade(self) -> None:
        if ITCPTransport.providedBy(self.transport):
            self.transport.setTcpNoDelay(True)
        self.transport.registerProducer(self, True)
        self.conn.initiate()
        if self.limits.maxStreams < UNACKNOWLEDGED_STREAMS:
            # Enforced once the client acknowledged it.
            self.conn.updateSettings({MAX_CONCURRENT_STREAMS: self.limits.maxStreams})
        self._flush()
        self._armIdle()

    def dataReceived(self, data: bytes) -> None:
        if self.state is State.CLOSING or self.state is State.LOST:
            # Closed (or closing) by this side: what else arrives is ignored.
            return
        if self._unread:
            # Still reading what arrived before (a TLS transport delivers
            # what it decrypted even while paused).
            self._unread += data
            return
        self._readTurn(data)

    def _readOn(self) -> None:
        """
        Go on with what arrived beyond the last turn's frames, and resume
        reading the transport once it is all read.
        """
        self._readCall = None
        data, self._unread = self._unread, b""
        if self.state is State.CLOSING or self.state is State.LOST:
            return
        self._readTurn(data)
        if self.state is State.CLOSING or self.state is State.LOST:
            return
        if not self._unread and self._readPaused:
            self._readPaused = False
            self.transport.resumeProducing()

    def _pauseReading(self) -> None:
        if not self._readPaused:
            self._readPaused = True
            self.transport.pauseProducing()

    def _readTurn(self, data: bytes) -> None:
        """
        Judge the frames of C{data} from their frame headers, then give the
        first L{FRAMES_PER_TURN} of them to the state machine, which calls back
        with what they mean;
        keep the rest for the next turn of the reactor, and stop reading the
        transport meanwhile.  The rest arrived with them, so it is judged
        with them, at once (up to L{AHEAD_FRAMES} more frames a turn): a
        flood cut off before it is parseds first frames costs little.
        """
        blocks = self._blocks
        taken = blocks.feed(data, FRAMES_PER_TURN)
        ahead, followed = self._ahead, self._aheadBytes
        if ahead is None and taken < len(data):
            ahead, followed = copy.copy(blocks), taken
        if ahead is not None:
            followed += ahead.feed(data[followed:], AHEAD_FRAMES)
        judged = blocks if ahead is None else ahead
        if taken < len(data):
            self._ahead, self._aheadBytes = ahead, followed - taken
        else:
            self._ahead, self._aheadBytes = None, 0
        answered, empty, resets = self._charged
        self._charged = (judged.answered, judged.empty, judged.resets)
        if self._flooded(
            judged.answered - answered,
            judged.empty - empty,
            judged.resets - resets,
            max(blocks.blockSize, judged.blockSize),
        ):
            return
        if taken < len(data):
            data, self._unread = data[:taken], data[taken:]
            self._pauseReading()
            self._readCall = self.callLater(0, self._readOn)
        # The streams the client resets in this turn's frames: those it
        # opens in them too never cost a request (Rapid Reset).
        self._resetInRead, blocks.resetIDs = blocks.resetIDs, ()
        with self.batch():
            try:
                self.conn.receiveData(data)
            except H2ConnectionError as error:
                # The connection queued its GOAWAY.
                self._giveUp(str(error))
                return
            if not self._unread:
                self._dispatch()
        self._watchHeaderBlock()

    # -- what the connection tells (its Handler) ------------------------------

    def requestReceived(self, streamID: int, fields: Fields, ended: bool) -> None:
        """
        A stream opened with the header block C{fields}; C{ended} if the
        request has no body.
        """
        if self.state is State.NEW:
            self.state = State.OPEN
        key = tuple(fields)
        head = self._checked.get(key)
        # The connection enforces the stream cap the client acknowledged:
        # before it did, the streams of its opening burst are served up to
        # UNACKNOWLEDGED_STREAMS.
        if streamID > self._lastStreamID:
            # After GOAWAY: never processed, so the client may retry it.
            self._resetStream(streamID, ErrorCode.REFUSED_STREAM)
            return
        if streamID in self._resetInRead:
            # Reset by the client in the same read (Rapid Reset): it costs
            # no request; the reset is counted.
            return
        if head is None:
            if self._malformed(streamID, fields):
                return
            try:
                head = checkHead(fields, self.limits)
            except FramingError as error:
                self._answer(streamID, error, fields)
                self._countRefused()
                return
            if len(self._checked) < MAX_CHECKED:
                self._checked[key] = head
        self._cancel(self._idleCall)
        self._idleCall = None
        try:
            stream = Http2Stream(self, streamID, head)
        except FramingError as error:
            # Its body has nowhere to go (see HotExchange._notKept).
            self._answer(streamID, error, fields)
            return
        self.streams[streamID] = stream
        if ended:
            if head.contentLength and self._lengthWrong(stream, 0, True, fields):
                return
            # Handed to the application once the whole read is handled.
            self._complete.append(stream)
        else:
            self._bodyReceived[streamID] = 0
            self._heads[streamID] = fields
            self._budget.open(streamID)
            self._armBody(streamID)

    def trailersReceived(self, streamID: int, fields: Fields, ended: bool) -> None:
        """
        A trailer block ended a request: read and dropped, once checked.
        Without C{END_STREAM} (C{ended}) the request is malformed (RFC 9113
        section 8.1).
        """
        if not ended:
            self._streamMalformed(streamID, "trailers without END_STREAM")
            return
        if self._malformed(streamID, fields, trailers=True):
            return
        stream = self.streams.get(streamID)
        if stream is not None and self._lengthWrong(
            stream, self._bodyReceived.get(streamID, 0), True
        ):
            return
        self._streamEnded(streamID)

    def bodyReceived(
        self, streamID: int, data: bytes, flowLength: int, ended: bool
    ) -> None:
        """
        Body bytes arrived on a stream; C{ended} if they are the last.
        """
        if flowLength and not data and not ended:
            # Padding only: an empty frame, though not one of zero length
            # (CVE-2019-9518); the window it took is handed back below.
            if not self._empty.take(self.clock.seconds()):
                self._calmDown("too many empty frames")
                return
        stream = self.streams.get(streamID)
        if (
            stream is not None
            and data
            and not self._budget.received(streamID, len(data))
            and not ended
        ):
            # The connection holds as many body bytes as it may: the stream
            # waits, with no more window than it has (see _bodyWaits).
            self.conn.holdWindow(streamID, True)
        if flowLength:
            self.conn.acknowledgeReceivedData(flowLength, streamID)
        if stream is None:
            # A stream answered early.
            return
        received = self._bodyReceived.get(streamID, 0) + len(data)
        self._bodyReceived[streamID] = received
        if received > self.limits.maxBody:
            self._refuse(streamID, FramingError(413, "request body too large"))
            return
        if self._lengthWrong(stream, received, ended):
            return
        if self._bodyWaits(streamID):
            self._cancel(self._bodyCalls.pop(streamID, None))
        else:
            self._armBody(streamID)
        try:
            stream.receiveData(data)
        except FramingError as error:
            # The body could not be kept: the server's failing, not the
            # client's, so not counted as refused.
            self._refuse(streamID, error, counted=False)
            return
        if ended:
            self._streamEnded(streamID)

    def _lengthWrong(
        self,
        stream: Http2Stream,
        received: int,
        ended: bool,
        fields: FieldList | None = None,
    ) -> bool:
        """
        Whether the C{received} body octets of C{stream} (all of them if
        C{ended}) break its C{content-length}: the request is malformed
        (RFC 9113 section 8.1.1), a stream error; its stream is reset.

        @param fields: its header block, if not kept yet.
        """
        declared = stream.contentLength
        if declared is None or (
            received <= declared and (received == declared or not ended)
        ):
            return False
        self._streamMalformed(
            stream.streamID, "body length not its content-length", fields
        )
        return True

    def streamReset(self, streamID: int, code: int, local: bool = False) -> None:
        """
        The client reset a stream, or (C{local}) the connection did for a
        stream error the client made.  Those count as the client's own
        resets (see L{_flooded}): a stream error costs the client one frame
        too, and frees a stream the application may still serve
        ("MadeYouReset", CVE-2025-8671).
        """
        self._countReset(not local, code)
        if local and not self._resets.take(self.clock.seconds()):
            self._calmDown("too many streams reset for the client's errors")
            return
        stream = self.streams.get(streamID)
        if stream is not None:
            self._streamDone(streamID)
            stream.lose(Failure(ConnectionLost(f"stream reset with code {code}")))

    def windowOpened(self, streamID: int) -> None:
        """
        The client opened a stream's window, or every stream's (C{0}).
        """
        if streamID:
            self._windowOpened([streamID])
        else:
            self._windowOpened(list(self.streams), shared=True)

    def pingAcked(self, data: bytes) -> None:
        """
        The client answered a PING of the graceful stop.
        """
        if data == HUSH_PING:
            self._goAway()
        elif data == DRAIN_PING:
            self._lastGoAway()

    def goAwayReceived(self, code: int, lastStreamID: int) -> None:
        """
        The client sent GOAWAY.  With C{NO_ERROR} while streams are open (a
        graceful close, RFC 9113 section 6.8), they finish as in the last
        step of a graceful stop (see L{_lastGoAway}), and the connection
        closes after them; else it closes now.
        """
        if code != ErrorCode.NO_ERROR or not self.streams:
            self._close()
            self._teardown(Failure(ConnectionLost("the client sent GOAWAY")))
        elif self.state in _IDLE_TIMED:
            self.state = State.DRAINING
            self._lastGoAway()
            # What a graceful stop held (see _hush) goes now.
            self._sendAll()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        cancelCloseWatch(self)
        self._teardown(reason)

    def _teardown(self, reason: Failure) -> None:
        """
        The connection ends: stop every timer, lose every stream, and tell
        the site.  Its close watch, if any, runs on until the transport is
        gone.
        """
        if self.state is State.LOST:
            return
        self.state = State.LOST
        self.conn.stop()
        calls = [
            self._idleCall,
            self._graceCall,
            self._headerCall,
            self._flushCall,
            self._readCall,
        ]
        for call in [*calls, *self._bodyCalls.values(), *self._sendCalls.values()]:
            self._cancel(call)
        self._idleCall = self._graceCall = self._headerCall = None
        self._flushCall = self._readCall = None
        self._unread = b""
        self._complete.clear()
        self._bodyCalls.clear()
        self._sendCalls.clear()
        self._pendingStreams.clear()
        self._held.clear()
        self._heldSize = 0
        streams = list(self.streams.values())
        self.streams.clear()
        for stream in streams:
            stream.lose(reason)
        self.site.connectionClosed(self)

    # -- streams -------------------------------------------------------------

    def _malformed(
        self, streamID: int, headers: FieldList, trailers: bool = False
    ) -> bool:
        """
        Whether the header block (or trailer block) of a stream is
        malformed (see L{checkBlock}); if so, the stream is reset (see
        L{_streamMalformed}).
        """
        try:
            checkBlock(headers, trailers)
        except MalformedBlock as error:
            self._streamMalformed(streamID, str(error), None if trailers else headers)
            return True
        return False

    def _streamMalformed(
        self, streamID: int, why: str, fields: FieldList | None = None
    ) -> None:
        """
        The request on a stream is malformed (RFC 9113 section 8.1.1): a
        stream error C{PROTOCOL_ERROR}, which resets the stream (before
        the application sees the request) and leaves the connection and
        its other streams alone.  The server log says C{why} in one line,
        the access record shows C{400} with nothing sent, and the stream
        counts as refused (see L{_countRefused}) and as a reset of the
        client's (see L{streamReset}): endless malformed requests end the
        connection as a flood does.

        @param fields: the stream's header block, if not kept yet.
        """
        stream = self.streams.get(streamID)
        if fields is None:
            fields = self._heads.get(streamID, ())
        self._resetStream(streamID, ErrorCode.PROTOCOL_ERROR)
        self.site.http2Malformed.info(
            "HTTP/2 stream {stream} from {peer} reset: {why}",
            stream=streamID,
            peer=self._peerName(),
            why=escape(why),
        )
        self._rejected(
            FramingError(400, why, answered=False),
            fields,
            stream.request if stream is not None else None,
        )
        if stream is not None:
            self._streamDone(streamID)
            stream.lose(Failure(ConnectionLost(why)))
        if not self._resets.take(self.clock.seconds()):
            self._calmDown("too many streams reset for the client's errors")
            return
        self._countRefused()

    def _streamEnded(self, streamID: int) -> None:
        self._cancel(self._bodyCalls.pop(streamID, None))
        self._admitted(self._budget.ended(streamID))
        stream = self.streams.get(streamID)
        if stream is not None:
            # Handed to the application once the whole read is handled.
            self._complete.append(stream)

    def _dispatch(self) -> None:
        """
        Hand the requests that arrived whole to the application, once what
        was read has been handled (all its turns, see L{_readTurn}): a
        stream that the client reset in the same read never reaches it.
        """
        complete, self._complete = self._complete, []
        for stream in complete:
            if self.state is State.CLOSING or self.state is State.LOST:
                return
            if self.streams.get(stream.streamID) is stream:
                stream.requestComplete()

    def _flooded(self, answered: int, empty: int, resets: int, blockSize: int) -> bool:
        """
        Whether what just arrived, before it is parsed, is a flood:
        C{answered} more frames the server must answer (PING, SETTINGS:
        CVE-2019-9512, CVE-2019-9515), C{empty} more empty frames
        (CVE-2019-9518), C{resets} more streams reset by the client (the
        "Rapid Reset" attack, CVE-2023-44487: each stream it opens and
        resets at once costs the server a request) than their buckets
        allow, or a header block of C{blockSize} bytes so far, beyond what
        the HPACK decoder takes (the CONTINUATION flood, CVE-2024-27316).
        A flood closes the connection with GOAWAY C{ENHANCE_YOUR_CALM}.
        """
        now = self.clock.seconds()
        if answered and not self._answered.take(now, answered):
            why = "too many PING or SETTINGS frames"
        elif empty and not self._empty.take(now, empty):
            why = "too many empty frames"
        elif resets and not self._resets.take(now, resets):
            why = "too many streams reset by the client"
        elif blockSize > self.conn.decoder.max_header_list_size:
            why = "header block too large"
        else:
            return False
        self._calmDown(why)
        return True

    def _calmDown(self, why: str) -> None:
        """
        A flood: GOAWAY C{ENHANCE_YOUR_CALM}, and nothing more is read; the
        connection is aborted after L{CALM_LINGER} seconds.
        """
        self._giveUp(why, ErrorCode.ENHANCE_YOUR_CALM, CALM_LINGER)

    def _streamDone(self, streamID: int) -> None:
        """
        Forget a stream that ended, and its timers; close a draining
        connection after its last stream, or time an idle one.
        """
        self.streams.pop(streamID, None)
        self._cancel(self._bodyCalls.pop(streamID, None))
        self._cancel(self._sendCalls.pop(streamID, None))
        self._bodyReceived.pop(streamID, None)
        self._heads.pop(streamID, None)
        self._admitted(self._budget.release(streamID))
        if self.streams:
            return
        state = self.state
        if state is State.LAST:
            self._close()
        elif state in _IDLE_TIMED:
            self._armIdle()

    def _bodyWaits(self, streamID: int) -> bool:
        """
        Whether a stream's body waits for the server, not the client: the
        stream waits for the body budget, and the client filled the window
        it has.  Its body timeout does not run then (it starts again once
        the stream no longer waits); it runs while the client may send and
        does not.
        """
        if not self._budget.waiting(streamID):
            return False
        state = self.conn.streams.get(streamID)
        return state is not None and state.receiveWindow <= 0

    def _admitted(self, streamIDs: Sequence[int]) -> None:
        """
        The streams that waited for the body budget no longer do: their
        windows open, and the body timeout of those whose client had
        filled its window starts (that of the others runs on: their client
        could send, and did not).
        """
        if not streamIDs or self.state is State.LOST:
            return
        for streamID in streamIDs:
            self.conn.holdWindow(streamID, False)
            if streamID not in self._bodyCalls:
                self._armBody(streamID)
        self._flush()

    # -- answering without the application -----------------------------------

    def _refuse(self, streamID: int, error: FramingError, counted: bool = True) -> None:
        """
        Answer a stream the application has not seen yet, and forget it.

        @param counted: count it as refused (see L{_countRefused}).
        """
        stream = self.streams.get(streamID)
        request = stream.request if stream is not None else None
        self._answer(streamID, error, self._heads.get(streamID, ()), request)
        if stream is not None:
            self._streamDone(streamID)
            stream.lose(Failure(ConnectionLost(error.reason)))
        if counted:
            self._countRefused()

    def _countRefused(self) -> None:
        """
        One more stream was refused: close the connection at
        C{limits.maxRefusedStreams}.
        """
        self._refused += 1
        if (
            self._refused >= self.limits.maxRefusedStreams
            and self.state is not State.LOST
        ):
            self._calmDown("too many refused streams")

    def _answer(
        self,
        streamID: int,
        error: FramingError,
        headers: FieldList,
        request: H2Exchange | WebRequest | None = None,
    ) -> None:
        """
        Send C{error} as a short response on a stream, then reset the stream
        if the client is still sending (RFC 9113 section 8.1: C{NO_ERROR}
        asks it to stop without an error).  The site hears of it (for the
        access record) with the request's C{headers} and C{request}.
        """
        body = errorBody(error.status, error.reason)
        status = (b":status", b"%d" % error.status)
        retry = [
            (name.lower(), value) for name, value in retryAfterFields(error.status)
        ]
        # Nothing is sent on a stream (or a connection) closed already.
        conn = self.conn
        if conn.localFlowControlWindow(streamID) >= len(body):
            head = [
                status,
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", b"%d" % len(body)),
                *retry,
            ]
            if conn.sendHeaders(streamID, head):
                conn.sendData(streamID, body, True)
        else:
            # The client's window has no room for the body: the head alone.
            conn.sendHeaders(streamID, [status, *retry], True)
        self._resetStream(streamID, ErrorCode.NO_ERROR)
        self._rejected(error, headers, request)

    def _rejected(
        self,
        error: FramingError,
        headers: FieldList,
        request: H2Exchange | WebRequest | None,
    ) -> None:
        """
        Tell the site of a stream refused with C{error} (for its access
        record), with the request's C{headers} and C{request}, if any.
        """
        self.partialHead = partialHead(headers)
        self.partialRequest = request
        try:
            self.site.requestRejected(self, error)
        finally:
            self.partialHead = self.partialRequest = None

    def _countReset(self, byClient: bool, code: int) -> None:
        """
        Tell the listener's C{onStreamReset} of a stream reset by the
        client (C{byClient}) or by the server, with C{code}.
        """
        count = self.site.onStreamReset
        if count is not None:
            count(byClient, code)

    def _resetStream(self, streamID: int, code: int) -> None:
        if self.conn.resetStream(streamID, code):
            self._countReset(False, code)
        self._flush()
        if not self.streams and self._idleCall is None and self.state in _IDLE_TIMED:
            self._armIdle()


_IDLE_TIMED = (State.NEW, State.OPEN, State.GRACE, State.HUSHED, State.DRAINING)
"""
The states in which a connection without streams runs the keep-alive timer.
"""

__all__ = [
    "DRAIN_PING",
    "HUSH_PING",
    "LAST_STREAM",
    "DRAIN_ROUND_TRIP",
    "AHEAD_FRAMES",
    "CALM_LINGER",
    "MAX_CONTROL_BUFFER",
    "Http2Listener",
    "Http2Stream",
    "State",
    "TwsgiH2Connection",
]
