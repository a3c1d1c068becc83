# -*- test-case-name: tests.server.test_http2 -*-
"""
C{twisted.web}'s HTTP/2 connection with twsgi's limits, timeouts and
graceful stop.  Imported only when C{h2} is installed and a TLS handshake
chose C{h2} (see L{twsgi.server.negotiate.ChannelSwitch}).

What HTTP/1.1 enforces in L{twsgi.server.http1.TwsgiChannel} holds per stream
here:

  - the header block is checked by L{twsgi.http.h2head.checkHead} before a
    request object exists (414, 431, 400, and 413 from C{content-length});
    a block beyond L{twsgi.server.negotiate.headerListBound} is refused by the HPACK
    decoder, which ends the connection;
  - DATA is counted as it arrives: above the body limit the stream gets 413
    and is reset, before the application ever runs (it runs once the whole
    body arrived, as for HTTP/1.1);
  - a header block must arrive whole within the header timeout (a HEADERS
    frame and its CONTINUATION frames), else the connection is closed;
  - a stream whose body stalls for the body timeout gets 408 and is reset;
  - a response that waits for a client that does not read it (its
    stream's flow-control window, or the connection's transport, stays
    blocked) for the send timeout is reset with C{CANCEL}, which stops its
    producer and so frees the application's thread; a WINDOW_UPDATE or a
    transport that drains restarts the timeout;
  - a connection without streams for the keep-alive timeout is closed with
    GOAWAY; the timer runs from the end of the last stream, and PING or
    SETTINGS frames do not reset it, so a header block that trickles in
    is bounded by it too;
  - at most C{limits.maxStreams} streams are open at once (each may hold
    a WSGI thread, and an upload without C{content-length} a temporary
    file): the connection advertises it as
    C{SETTINGS_MAX_CONCURRENT_STREAMS}; a stream beyond it is refused with
    C{REFUSED_STREAM} while the client may not have read it yet, and C{h2}
    ends the connection of a client that acknowledged it and opens more;
  - after L{MAX_REFUSED_STREAMS} streams refused without the application
    (any of the answers above) the connection is closed with GOAWAY
    C{ENHANCE_YOUR_CALM}, as HTTP/1.1 closes its connection after one: a
    client cannot buy an access record per stream at line rate;
  - on a graceful stop the connection sends GOAWAY naming the last stream it
    will serve (RFC 9113 section 6.8), lets those streams finish, refuses
    later ones with C{REFUSED_STREAM} (so that clients may retry them
    elsewhere), and closes once the last one finished.

Everything here runs in the I/O thread.
"""

from __future__ import annotations

from typing import Any

import h2.errors
import h2.events
import h2.exceptions
from h2.settings import SettingCodes, Settings
from hyperframe.frame import GoAwayFrame
from twisted.internet.error import ConnectionLost
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web._http2 import _END_STREAM_SENTINEL, H2Connection

from twsgi.http.h2head import PartialHead, checkHead, headerListBound, partialHead
from twsgi.http.limits import Limits
from twsgi.http.parse import FramingError, errorBody
from twsgi.logs.accesslog import escape
from twsgi.server.closing import CloseWatch, cancelCloseWatch, watchClose
from twsgi.server.connections import IDLE_GRACE

_log = Logger(namespace="twsgi")

_CONNECTION_SPECIFIC = frozenset(
    [
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"upgrade",
    ]
)
"""
Response fields that HTTP/2 forbids (RFC 9113 section 8.2.2); an
application or a shared code path may set them for HTTP/1.1.
"""

UNACKNOWLEDGED_STREAMS = 100
"""
The streams C{h2} lets a client open before it acknowledged the
connection's stream cap: a client may open streams before it read the
server's SETTINGS, and those beyond the cap are refused (it may retry
them) rather than ending the connection.
"""

_HEADER_FRAMES = (0x1, 0x9)
"""
The types of HEADERS and CONTINUATION frames.
"""

MAX_REFUSED_STREAMS = 4
"""
The streams of one connection the server may refuse itself (a 400, 408,
413, 414 or 431 answered without the application) before it closes the
connection with GOAWAY C{ENHANCE_YOUR_CALM}.  HTTP/1.1 closes its
connection after the first; a few are allowed here because one connection
carries many requests and a client may retry one with a smaller body.
"""


class TwsgiH2Connection(H2Connection):  # type: ignore[misc]
    """
    An HTTP/2 connection that enforces its listener's L{Limits} and drains.

    @ivar limits: the listener's L{Limits}.
    @ivar draining: C{True} once the server is stopping.
    @ivar partialHead: the L{PartialHead} of the request being refused,
        for its access record (see L{twsgi.server.site.rejectionRecord}).
    @ivar partialRequest: its request object, if it had one.
    """

    draining = False
    transport: Any
    callLater: Any
    requestFactory: Any
    closeWatch: CloseWatch | None = None

    def __init__(self, limits: Limits, reactor: Any = None) -> None:
        super().__init__(reactor)
        self.limits = limits
        bound = headerListBound(limits)
        self.conn.local_settings = Settings(
            client=False,
            initial_values={
                SettingCodes.MAX_HEADER_LIST_SIZE: bound,
                SettingCodes.MAX_CONCURRENT_STREAMS: max(
                    limits.maxStreams, UNACKNOWLEDGED_STREAMS
                ),
            },
        )
        self.conn.decoder.max_header_list_size = bound
        self._idleCall: Any = None
        self._headerCall: Any = None
        self._graceCall: Any = None
        self._bodyCalls: dict[int, Any] = {}
        self._bodyReceived: dict[int, int] = {}
        self._sendCalls: dict[int, Any] = {}
        self._heads: dict[int, Any] = {}
        self.partialHead: PartialHead | None = None
        self.partialRequest: Any = None
        self._lastStreamID: int | None = None
        self._started = False
        self._lost = False
        self._closing = False
        self._refused = 0

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

    def startDraining(self, idleGrace: float = IDLE_GRACE) -> None:
        """
        Send GOAWAY now, or after C{idleGrace} seconds for a connection
        that has not sent its first request yet.
        """
        if self.draining:
            return
        self.draining = True
        if not self._started and not self.streams:
            self._graceCall = self.callLater(idleGrace, self._goAway)
        else:
            self._goAway()

    def _goAway(self) -> None:
        """
        Tell the client which streams will still be served (RFC 9113 section
        6.8), then close once they are.  The frame is written as it is: the
        C{h2} state machine would allow nothing more once it sent GOAWAY.
        """
        self._graceCall = None
        if self._lastStreamID is not None or self._lost or self.transport is None:
            return
        self._lastStreamID = self.conn.highest_inbound_stream_id
        frame = GoAwayFrame(
            stream_id=0,
            last_stream_id=self._lastStreamID,
            error_code=h2.errors.ErrorCodes.NO_ERROR,
        )
        self._tryToWriteControlData()
        self.transport.write(frame.serialize())
        self._closeIfDone()

    def _closeIfDone(self) -> None:
        if self._lastStreamID is not None and not self.streams and not self._lost:
            self._close()

    def _close(self) -> None:
        """
        Close the connection once what was written is sent; abort it if
        it has not gone shortly after (see L{twsgi.server.closing}).
        """
        self._unregister()
        # Armed first: a transport that closes at once cancels it.
        self._armAbort()
        self.transport.loseConnection()

    def _unregister(self) -> None:
        """
        Stop being the transport's producer, once: a TLS transport only
        closes once its producer is unregistered.  Nothing more is read.
        """
        if not self._closing:
            self._closing = True
            self.transport.unregisterProducer()

    def _armAbort(self) -> None:
        watchClose(self)

    # -- timers --------------------------------------------------------------

    def _armIdle(self) -> None:
        self._cancel(self._idleCall)
        self._idleCall = None
        if self.limits.keepAliveTimeout > 0 and not self._lost:
            self._idleCall = self.callLater(
                self.limits.keepAliveTimeout, self._idleTimedOut
            )

    def _idleTimedOut(self) -> None:
        self._idleCall = None
        if self.streams or self._lost:
            return
        self.conn.close_connection(error_code=h2.errors.ErrorCodes.NO_ERROR)
        self._tryToWriteControlData()
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
        if streamID in self.streams:
            self._refuse(
                streamID, FramingError(408, "request body not received in time")
            )

    def _stalled(self, streamID: int) -> bool:
        """
        Whether the response on C{streamID} has something to send and
        waits for the client: its flow-control window is used up, or the
        transport's buffer is full.
        """
        stream = self.streams.get(streamID)
        if stream is None:
            return False
        queue = self._outboundStreamQueues.get(streamID, ())
        waiting = any(chunk is not _END_STREAM_SENTINEL for chunk in queue) or (
            stream.producer is not None and not stream._producerProducing
        )
        return waiting and (
            self._consumerBlocked is not None
            or self.remainingOutboundWindow(streamID) <= 0
        )

    def _watchSend(self, streamID: int, progress: bool = False) -> None:
        """
        Time a stalled response (see L{_stalled}): the timer starts when it
        stalls, and starts again on C{progress} (the client opened a window,
        or the transport drained).
        """
        call = self._sendCalls.get(streamID)
        if self._lost or not self._stalled(streamID):
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
        request = getattr(stream, "_request", None)
        if request is not None and not getattr(request, "cutOff", ""):
            request.cutOff = "send-timeout"
        self._resetStream(streamID, h2.errors.ErrorCodes.CANCEL)
        stream.connectionLost(Failure(ConnectionLost("response not read in time")))
        self._requestDone(streamID)
        _stopProducers([stream])

    def _watchHeaderBlock(self) -> None:
        """
        Time a header block that has begun to arrive but is not complete (a
        HEADERS frame still arriving, or waiting for its CONTINUATION
        frames): it must be complete within the header timeout, as an
        HTTP/1.1 head must (slowloris).  While no stream is open the
        keep-alive timer bounds it too.
        """
        # h2 keeps both as private attributes of its frame buffer: without
        # them (another h2 version), nothing is timed here.
        buffer = self.conn.incoming_buffer
        partial = bytes(getattr(buffer, "_data", b"")[:4])
        pending = bool(getattr(buffer, "_headers_buffer", None)) or (
            0 < len(partial) and (len(partial) < 4 or partial[3] in _HEADER_FRAMES)
        )
        if not pending or self._lost:
            self._cancel(self._headerCall)
            self._headerCall = None
        elif self._headerCall is None and self.limits.headerTimeout > 0:
            self._headerCall = self.callLater(
                self.limits.headerTimeout, self._headerTimedOut
            )

    def _headerTimedOut(self) -> None:
        self._headerCall = None
        if self._lost:
            return
        self._giveUp(
            h2.errors.ErrorCodes.PROTOCOL_ERROR, "header block not received in time"
        )

    def _giveUp(self, code: int, why: str) -> None:
        """
        Send GOAWAY with the error C{code} and close the connection now.
        """
        self._logClosed(why)
        self.conn.close_connection(error_code=code)
        self._tryToWriteControlData()
        self._close()
        # The streams still open end now: h2 allows nothing more to be sent
        # once it sent GOAWAY, so their responses must not try.
        self.connectionLost(Failure(ConnectionLost(why)), _cancelTimeouts=False)

    def _terminate(self, reason: Failure) -> None:
        """
        C{twisted.web} ends the connection: on an HTTP/2 protocol error (a
        header block beyond the advertised bound, a malformed frame), say
        so in the server log.
        """
        if reason.check(h2.exceptions.ProtocolError):
            self._logClosed(str(reason.value))
        super()._terminate(reason)

    def _logClosed(self, why: str) -> None:
        """
        One server-log line saying why this side closed the connection.
        """
        peer: Any = getattr(self.transport, "getPeer", lambda: None)()
        _log.info(
            "HTTP/2 connection from {peer} closed: {why}",
            peer=f"{peer.host}:{peer.port}" if hasattr(peer, "host") else "-",
            why=escape(why),
        )

    @staticmethod
    def _cancel(call: Any) -> None:
        if call is not None and call.active():
            call.cancel()

    # -- the connection ------------------------------------------------------

    def connectionMade(self) -> None:
        super().connectionMade()
        if self.limits.maxStreams < UNACKNOWLEDGED_STREAMS:
            # Enforced by h2 once the client acknowledged it.
            self.conn.update_settings(
                {SettingCodes.MAX_CONCURRENT_STREAMS: self.limits.maxStreams}
            )
            self._tryToWriteControlData()
        self._armIdle()

    def dataReceived(self, data: bytes) -> None:
        if self._closing:
            # Closed (or closing) by this side: what else arrives is ignored.
            return
        super().dataReceived(data)
        self._watchHeaderBlock()

    def connectionLost(
        self, reason: Failure = connectionDone, _cancelTimeouts: bool = True
    ) -> None:
        self._lost = True
        if _cancelTimeouts:
            cancelCloseWatch(self)
        calls = [self._idleCall, self._graceCall, self._headerCall]
        for call in [*calls, *self._bodyCalls.values(), *self._sendCalls.values()]:
            self._cancel(call)
        self._idleCall = self._graceCall = self._headerCall = None
        self._bodyCalls.clear()
        self._sendCalls.clear()
        if not _cancelTimeouts and self.transport is not None:
            # C{twisted.web} tore the connection down itself (a protocol
            # error, or GOAWAY from the client) and asked the transport to
            # close, which a TLS transport only does once its producer is
            # unregistered.
            self._unregister()
            self._armAbort()
        streams = list(self.streams.values())
        super().connectionLost(reason, _cancelTimeouts=_cancelTimeouts)
        _stopProducers(streams)
        closed = getattr(self.site, "connectionClosed", None)
        if closed is not None:
            closed(self)

    def pauseProducing(self) -> None:
        """
        The transport's buffer is full: pause every stream's producer too,
        so that responses wait in the application rather than in memory.
        """
        super().pauseProducing()
        for streamID, stream in list(self.streams.items()):
            stream.flowControlBlocked()
            self._watchSend(streamID)

    def resumeProducing(self) -> None:
        super().resumeProducing()
        for streamID, stream in list(self.streams.items()):
            if self._consumerBlocked is None:
                stream.windowUpdated()
            self._watchSend(streamID, progress=True)

    def writeDataToStream(self, streamID: int, data: bytes) -> None:
        super().writeDataToStream(streamID, data)
        self._watchSend(streamID)

    def _handleWindowUpdate(self, event: h2.events.WindowUpdated) -> None:
        super()._handleWindowUpdate(event)
        opened = [event.stream_id] if event.stream_id else list(self.streams)
        for streamID in opened:
            self._watchSend(streamID, progress=True)

    # -- streams -------------------------------------------------------------

    def _requestReceived(self, event: h2.events.RequestReceived) -> None:
        if self._lost:
            # Closed while the rest of what arrived with it was handled.
            return
        streamID = event.stream_id
        self._started = True
        if (self._lastStreamID is not None and streamID > self._lastStreamID) or len(
            self.streams
        ) >= self.limits.maxStreams:
            # After GOAWAY, or beyond the stream cap before the client knew
            # it: never processed, so the client may retry it.
            self._resetStream(streamID, h2.errors.ErrorCodes.REFUSED_STREAM)
            return
        try:
            checkHead(event.headers, self.limits)
        except FramingError as error:
            self._answer(streamID, error, event.headers)
            self._countRefused()
            return
        self._cancel(self._idleCall)
        self._idleCall = None
        super()._requestReceived(event)
        if event.stream_ended is None:
            self._bodyReceived[streamID] = 0
            self._heads[streamID] = event.headers
            self._armBody(streamID)

    def _requestDataReceived(self, event: h2.events.DataReceived) -> None:
        streamID = event.stream_id
        if self._lost:
            return
        if streamID not in self.streams:
            # A stream answered early: hand the flow-control window back.
            self.conn.acknowledge_received_data(event.flow_controlled_length, streamID)
            self._tryToWriteControlData()
            return
        received = self._bodyReceived.get(streamID, 0) + len(event.data)
        self._bodyReceived[streamID] = received
        if received > self.limits.maxBody:
            self.conn.acknowledge_received_data(event.flow_controlled_length, streamID)
            self._refuse(streamID, FramingError(413, "request body too large"))
            return
        self._armBody(streamID)
        super()._requestDataReceived(event)

    def _requestEnded(self, event: h2.events.StreamEnded) -> None:
        streamID = event.stream_id
        self._cancel(self._bodyCalls.pop(streamID, None))
        if streamID in self.streams:
            super()._requestEnded(event)

    def _requestAborted(self, event: h2.events.StreamReset) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is not None:
            super()._requestAborted(event)
            _stopProducers([stream])

    def _requestDone(self, streamID: int) -> None:
        super()._requestDone(streamID)
        self._cancel(self._bodyCalls.pop(streamID, None))
        self._cancel(self._sendCalls.pop(streamID, None))
        self._bodyReceived.pop(streamID, None)
        self._heads.pop(streamID, None)
        if self.streams or self._lost:
            return
        if self._lastStreamID is not None:
            self._closeIfDone()
        else:
            self._armIdle()

    def abortRequest(self, streamID: int) -> None:
        """
        Reset a stream whose response cannot be completed; one already gone
        is left alone.
        """
        if not self._streamIsActive(streamID):
            return
        try:
            super().abortRequest(streamID)
        except h2.exceptions.StreamClosedError:
            self._requestDone(streamID)

    def writeHeaders(
        self, version: bytes, code: bytes, reason: bytes, headers: Any, streamID: int
    ) -> None:
        headers = [
            (name, value)
            for name, value in headers
            if name.lower() not in _CONNECTION_SPECIFIC
        ]
        super().writeHeaders(version, code, reason, headers, streamID)

    # -- answering without the application -----------------------------------

    def _refuse(self, streamID: int, error: FramingError) -> None:
        """
        Answer a stream the application has not seen yet, and forget it.
        """
        stream = self.streams.get(streamID)
        request = getattr(stream, "_request", None)
        self._answer(streamID, error, self._heads.get(streamID, ()), request)
        if stream is not None:
            stream.connectionLost(Failure(ConnectionLost(error.reason)))
            self._requestDone(streamID)
            _stopProducers([stream])
        self._countRefused()

    def _countRefused(self) -> None:
        """
        One more stream was refused: close the connection at
        L{MAX_REFUSED_STREAMS}.
        """
        self._refused += 1
        if self._refused >= MAX_REFUSED_STREAMS and not self._lost:
            self._giveUp(
                h2.errors.ErrorCodes.ENHANCE_YOUR_CALM, "too many refused streams"
            )

    def _answer(
        self, streamID: int, error: FramingError, headers: Any, request: Any = None
    ) -> None:
        """
        Send C{error} as a short response on a stream, then reset the stream
        if the client is still sending (RFC 9113 section 8.1: C{NO_ERROR}
        asks it to stop without an error).  The site hears of it (for the
        access record) with the request's C{headers} and C{request}.
        """
        body = errorBody(error.status, error.reason)
        head = [
            (b":status", b"%d" % error.status),
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", b"%d" % len(body)),
        ]
        try:
            if self.conn.local_flow_control_window(streamID) >= len(body):
                self.conn.send_headers(streamID, head)
                self.conn.send_data(streamID, body, end_stream=True)
            else:
                self.conn.send_headers(streamID, head[:1], end_stream=True)
        except h2.exceptions.StreamClosedError:
            pass
        self._resetStream(streamID, h2.errors.ErrorCodes.NO_ERROR)
        notify = getattr(self.site, "requestRejected", None)
        if notify is not None:
            self.partialHead = partialHead(headers)
            self.partialRequest = request
            try:
                notify(self, error)
            finally:
                self.partialHead = self.partialRequest = None

    def _resetStream(self, streamID: int, code: int) -> None:
        try:
            self.conn.reset_stream(streamID, error_code=code)
        except h2.exceptions.StreamClosedError:
            pass
        self._tryToWriteControlData()
        if not self.streams and self._lastStreamID is None and self._idleCall is None:
            self._armIdle()


def _stopProducers(streams: list[Any]) -> None:
    """
    Tell the producers of lost streams' responses to stop, as a TCP
    transport tells its producer when its connection is lost:
    C{twisted.web}'s streams only tell their requests, and a producer
    paused by flow control (a WSGI thread waiting to write, say) would wait
    for ever.  Called in the I/O thread.
    """
    for stream in streams:
        producer = getattr(stream, "producer", None)
        if producer is not None:
            stream.producer = None
            producer.stopProducing()


__all__ = ["MAX_REFUSED_STREAMS", "TwsgiH2Connection"]
