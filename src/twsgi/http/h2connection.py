# -*- test-case-name: tests.http.test_h2connection -*-
"""
twsgi's sans-I/O HTTP/2 server connection (RFC 9113): the connection
preface, SETTINGS, the streams' states, and flow control in both
directions; bytes in, calls to a L{Handler} and bytes out.

It owns what the C{h2} library did for twsgi, and no more: header blocks
are checked by L{twsgi.http.h2head}, and HPACK is C{hpack}'s (through
L{twsgi.http.h2hpack}).  Frames are parsed in place, from offsets into
what arrived, and a frame's meaning is handed to the handler as one method
call: no frame, flags or event object is made on the way.

Errors follow RFC 9113 section 5.4: a connection error queues GOAWAY with
its code and raises L{H2ConnectionError}, after which the connection
takes and sends nothing more; a stream error queues RST_STREAM and tells
the handler the stream was reset.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol

from hpack import HPACKError, OversizedHeaderListError

from twsgi.http.h2frames import (
    ACK,
    CONTINUATION,
    DATA,
    DEFAULT_FRAME_SIZE,
    DEFAULT_TABLE_SIZE,
    DEFAULT_WINDOW,
    ENABLE_CONNECT_PROTOCOL,
    ENABLE_PUSH,
    END_HEADERS,
    END_STREAM,
    GOAWAY,
    HEADER,
    HEADER_TABLE_SIZE,
    HEADERS,
    INITIAL_WINDOW_SIZE,
    MAX_CONCURRENT_STREAMS,
    MAX_FRAME_SIZE,
    MAX_FRAME_SIZE_LIMIT,
    MAX_WINDOW,
    PADDED,
    PING,
    PREFACE,
    PRIORITY,
    PRIORITY_FLAG,
    PUSH_PROMISE,
    RST_STREAM,
    SETTING,
    SETTINGS,
    SETTINGS_ACK,
    WINDOW_UPDATE,
    ErrorCode,
    frameHeader,
    goAwayFrame,
    headersFrames,
    pingFrame,
    resetFrame,
    settingsFrame,
    windowUpdateFrame,
)
from twsgi.http.h2hpack import RememberingDecoder, RememberingEncoder

Fields = Sequence[tuple[bytes, bytes]]

MAX_RESET_REMEMBERED = 1024
"""
How many streams reset by this side a connection remembers: frames the
client sent on them before it read the reset are ignored (RFC 9113 section
5.1), not taken as an error.
"""


MAX_CONTINUATIONS = 32
"""
How many CONTINUATION frames one header block may take: in frames of the
size a client may send, more than the largest block the HPACK decoder
takes (see L{twsgi.http.h2head.decoderBound}).  A block in more, however
small each frame, is a flood (CVE-2024-27316): C{ENHANCE_YOUR_CALM}, as
nghttp2 answers one (beyond 8).
"""


class H2ConnectionError(Exception):
    """
    A connection error (RFC 9113 section 5.4.1): GOAWAY with L{code} is
    queued, and the connection takes and sends nothing more.

    @ivar code: the L{ErrorCode}.
    """

    def __init__(self, code: ErrorCode, message: str) -> None:
        Exception.__init__(self, message)
        self.code = code


class Handler(Protocol):
    """
    What a L{H2ServerConnection} tells its user, one call per event, in the
    order the frames arrived.  A handler may call the connection back
    (send, reset, close) from any of these.
    """

    def requestReceived(self, streamID: int, fields: Fields, ended: bool) -> None:
        """
        A stream opened with the header block C{fields}, decoded but not
        checked; C{ended} if the request has no body (C{END_STREAM}).
        """

    def trailersReceived(self, streamID: int, fields: Fields, ended: bool) -> None:
        """
        A trailer block arrived on an open stream: it ended the request
        (C{ended}), or it did not, and the request is malformed (RFC 9113
        section 8.1), for the handler to reset.
        """

    def bodyReceived(
        self, streamID: int, data: bytes, flowLength: int, ended: bool
    ) -> None:
        """
        Body bytes arrived on an open stream; C{flowLength} octets (with the
        padding) of the windows are taken until the handler calls
        L{H2ServerConnection.acknowledgeReceivedData}.  C{ended}: the last.
        """

    def streamReset(self, streamID: int, code: int, local: bool = False) -> None:
        """
        A stream ended with RST_STREAM, sent by the client, or (C{local}) by
        this connection for a stream error the client made.
        """

    def windowOpened(self, streamID: int) -> None:
        """
        The client opened a stream's flow-control window, or the
        connection's (C{streamID} 0), or changed every stream's (also 0).
        """

    def pingAcked(self, data: bytes) -> None:
        """
        The client answered one of this side's PING frames.
        """

    def goAwayReceived(self, code: int, lastStreamID: int) -> None:
        """
        The client sent GOAWAY.  With an error code, the connection takes
        and sends nothing more; with C{NO_ERROR} (a graceful close, RFC 9113
        section 6.8), it goes on: the client opens no more streams, and
        reads the responses of those it opened.
        """


class Stream:
    """
    The state of one open stream (RFC 9113 section 5.1): open, or
    half-closed on one side; a closed stream is forgotten.

    @ivar sendWindow: what the client's flow-control window takes.
    @ivar receiveWindow: what this side's window for the stream takes.
    @ivar processed: received octets acknowledged since the last
        WINDOW_UPDATE.
    @ivar remoteEnded: the client ended the stream.
    @ivar localEnded: this side ended the stream.
    @ivar held: its receive window is not opened again (see
        L{H2ServerConnection.holdWindow}).
    """

    __slots__ = (
        "sendWindow",
        "receiveWindow",
        "processed",
        "remoteEnded",
        "localEnded",
        "held",
    )

    def __init__(self, sendWindow: int, receiveWindow: int, remoteEnded: bool) -> None:
        self.sendWindow = sendWindow
        self.receiveWindow = receiveWindow
        self.processed = 0
        self.remoteEnded = remoteEnded
        self.localEnded = False
        self.held = False


def _windowIncrement(window: int, processed: int, size: int) -> int:
    """
    How far to open a receive window of C{window} octets (of C{size} at
    most) once C{processed} octets were consumed: C{0} while too few were
    to be worth a WINDOW_UPDATE (as C{h2} decides it: half the window, or
    a quarter of it, up to 1024 octets, once the window is used up).
    """
    if processed >= size // 2 or (window <= 0 and processed > min(1024, size // 4)):
        return min(processed, size - window)
    return 0


class H2ServerConnection:
    """
    The server side of one HTTP/2 connection.

    @ivar handler: the L{Handler} told what arrives.
    @ivar encoder: the HPACK encoder of response header blocks.
    @ivar decoder: the HPACK decoder of request header blocks; its
        C{max_header_list_size} bounds a decoded block.
    @ivar streams: the open L{Stream}s, by identifier.
    @ivar highestInboundStreamID: the highest stream the client opened.
    @ivar maxOutboundFrameSize: the largest frame the client takes.
    @ivar closed: a GOAWAY was sent or received: nothing more is taken or
        sent.
    """

    def __init__(self, handler: Handler, settings: dict[int, int]) -> None:
        """
        @param settings: this side's settings beyond the defaults, sent by
            L{initiate} and in force at once.
        """
        self.handler = handler
        self.encoder = RememberingEncoder()
        self.decoder = RememberingDecoder()
        self.streams: dict[int, Stream] = {}
        self.highestInboundStreamID = 0
        self.maxOutboundFrameSize = DEFAULT_FRAME_SIZE
        self.closed = False
        self._settings = {
            HEADER_TABLE_SIZE: DEFAULT_TABLE_SIZE,
            ENABLE_PUSH: 0,
            INITIAL_WINDOW_SIZE: DEFAULT_WINDOW,
            MAX_FRAME_SIZE: DEFAULT_FRAME_SIZE,
            ENABLE_CONNECT_PROTOCOL: 0,
            **settings,
        }
        self.maxConcurrentStreams = self._settings.get(MAX_CONCURRENT_STREAMS, 2**31)
        # The settings of each SETTINGS frame sent and not yet acknowledged,
        # in order: those of initiate (in force at once, so empty here),
        # then those of updateSettings, in force once acknowledged.
        self._unacknowledged: list[dict[int, int]] = []
        self._out: list[bytes] = []
        # The reads that hold the start of a frame that has not arrived
        # whole, their length, and how long they must grow before it is
        # worth parsing them again (the whole frame, or its header): a frame
        # that arrives in many small reads is joined once, not once a read.
        self._pending: list[bytes] = []
        self._pendingSize = 0
        self._wanted = 0
        self._preface = True
        self._settingsFirst = True
        # The stream whose header block is still arriving, its parts so far,
        # whether its HEADERS frame ended the stream, and whether it made
        # the stream depend on itself.
        self._blockStream = 0
        self._blockParts: list[bytes] = []
        self._blockEnded = False
        self._blockSelfDependent = False
        self._initialSendWindow = DEFAULT_WINDOW
        self._sendWindow = DEFAULT_WINDOW
        self._receiveWindow = DEFAULT_WINDOW
        self._processed = 0
        self._reset: OrderedDict[int, None] = OrderedDict()

    # -- sending -------------------------------------------------------------

    def initiate(self) -> None:
        """
        Queue this side's SETTINGS, the first frame of the connection.
        """
        # In force at once: its acknowledgement changes nothing.
        self._unacknowledged.append({})
        self._out.append(settingsFrame(self._settings.items()))

    def updateSettings(self, settings: dict[int, int]) -> None:
        """
        Queue a SETTINGS frame; its values take effect when the client
        acknowledges it.
        """
        self._unacknowledged.append(settings)
        self._out.append(settingsFrame(settings.items()))

    def dataToSend(self) -> bytes:
        """
        Take what was queued to send.
        """
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        return data

    def localFlowControlWindow(self, streamID: int) -> int:
        """
        How many DATA octets the stream may send now: its window and the
        connection's; C{0} for a stream that cannot send.
        """
        stream = self._sending(streamID)
        if stream is None:
            return 0
        return min(stream.sendWindow, self._sendWindow)

    def streamFlowControlWindow(self, streamID: int) -> int:
        """
        The stream's own window, whatever the connection's; C{0} for a
        stream that cannot send.
        """
        stream = self._sending(streamID)
        return 0 if stream is None else stream.sendWindow

    def connectionFlowControlWindow(self) -> int:
        """
        The connection's window, which every stream's DATA takes from.
        """
        return self._sendWindow

    def _sending(self, streamID: int) -> Stream | None:
        """
        The stream, if it may still send: open on this side, and the
        connection not closed.
        """
        stream = self.streams.get(streamID)
        if stream is None or stream.localEnded or self.closed:
            return None
        return stream

    def sendHeaders(
        self, streamID: int, fields: Sequence[tuple[bytes, bytes]], end: bool = False
    ) -> bool:
        """
        Queue a header block on a stream, in as many frames as the client's
        frame size takes.

        @param end: it ends the stream.
        @return: C{False} if nothing was queued (see L{_sending}).
        """
        stream = self._sending(streamID)
        if stream is None:
            return False
        block = self.encoder.encode(fields)
        self._out.append(headersFrames(streamID, block, end, self.maxOutboundFrameSize))
        if end:
            self._ended(streamID, stream)
        return True

    def sendData(self, streamID: int, data: bytes, end: bool = False) -> bool:
        """
        Queue C{data} as one DATA frame: the caller keeps it within
        L{localFlowControlWindow} and L{maxOutboundFrameSize}.

        @param end: it ends the stream.
        @return: C{False} if nothing was queued (see L{_sending}).
        """
        stream = self._sending(streamID)
        if stream is None:
            return False
        size = len(data)
        stream.sendWindow -= size
        self._sendWindow -= size
        # Joined once, with everything else, by dataToSend.
        self._out += (frameHeader(size, DATA, END_STREAM if end else 0, streamID), data)
        if end:
            self._ended(streamID, stream)
        return True

    def endStream(self, streamID: int) -> bool:
        """
        End a stream with an empty DATA frame.
        """
        return self.sendData(streamID, b"", True)

    def _ended(self, streamID: int, stream: Stream) -> None:
        stream.localEnded = True
        if stream.remoteEnded:
            del self.streams[streamID]

    def resetStream(self, streamID: int, code: int) -> bool:
        """
        Reset an open stream: queue RST_STREAM, and forget the stream.  A
        stream already closed (or a closed connection) is left alone.

        @return: whether RST_STREAM was queued.
        """
        if self.closed or self.streams.pop(streamID, None) is None:
            return False
        self._out.append(resetFrame(streamID, code))
        self._forgetReset(streamID)
        return True

    def _forgetReset(self, streamID: int) -> None:
        reset = self._reset
        reset[streamID] = None
        if len(reset) > MAX_RESET_REMEMBERED:
            reset.popitem(last=False)

    def stop(self) -> None:
        """
        Take and send nothing more, without GOAWAY: the transport closes.
        """
        self.closed = True

    def ping(self, data: bytes) -> None:
        """
        Queue a PING carrying the 8 octets of C{data}.
        """
        if not self.closed:
            self._out.append(pingFrame(data))

    def closeConnection(self, code: int = ErrorCode.NO_ERROR) -> None:
        """
        Queue GOAWAY with C{code}, naming the highest stream the client
        opened: the connection takes and sends nothing more.
        """
        if not self.closed:
            self.closed = True
            self._out.append(goAwayFrame(self.highestInboundStreamID, code))

    def acknowledgeReceivedData(self, length: int, streamID: int) -> None:
        """
        The handler consumed C{length} flow-controlled octets of a stream:
        open the windows again (WINDOW_UPDATE) once enough were consumed.
        """
        if self.closed:
            return
        self._processed += length
        increment = _windowIncrement(
            self._receiveWindow, self._processed, DEFAULT_WINDOW
        )
        if increment:
            self._receiveWindow += increment
            self._processed = 0
            self._out.append(windowUpdateFrame(0, increment))
        stream = self.streams.get(streamID)
        if stream is None or stream.remoteEnded:
            return
        stream.processed += length
        if not stream.held:
            self._openWindow(streamID, stream)

    def _openWindow(self, streamID: int, stream: Stream) -> None:
        """
        Open the stream's receive window again (WINDOW_UPDATE) by what was
        consumed of it, if that is enough to be worth it.
        """
        size = self._settings[INITIAL_WINDOW_SIZE]
        increment = _windowIncrement(stream.receiveWindow, stream.processed, size)
        if increment:
            stream.receiveWindow += increment
            stream.processed = 0
            self._out.append(windowUpdateFrame(streamID, increment))

    def holdWindow(self, streamID: int, held: bool) -> None:
        """
        Hold a stream's receive window (C{held}), or let it go: while held,
        what the handler acknowledges of the stream opens the connection's
        window only, so the client may send on its other streams, and on
        this one no more than its window left; let go, the window opens by
        what was acknowledged meanwhile.
        """
        stream = self.streams.get(streamID)
        if stream is None or self.closed:
            return
        stream.held = held
        if not held and not stream.remoteEnded:
            self._openWindow(streamID, stream)

    # -- receiving -----------------------------------------------------------

    def receiveData(self, data: bytes) -> None:
        """
        Take the bytes that arrived, and tell the handler what their whole
        frames mean; keep an incomplete frame for the next bytes.

        @raise H2ConnectionError: a connection error; GOAWAY is queued.
        """
        if self.closed:
            return
        pending = self._pending
        if pending:
            pending.append(data)
            self._pendingSize += len(data)
            if self._pendingSize < self._wanted:
                return
            data = b"".join(pending)
            self._pending = []
        try:
            at = 0
            if self._preface:
                if len(data) < len(PREFACE):
                    if not PREFACE.startswith(data):
                        raise H2ConnectionError(
                            ErrorCode.PROTOCOL_ERROR, "invalid HTTP/2 preamble"
                        )
                    self._pending = [data]
                    self._pendingSize = len(data)
                    return
                if not data.startswith(PREFACE):
                    raise H2ConnectionError(
                        ErrorCode.PROTOCOL_ERROR, "invalid HTTP/2 preamble"
                    )
                self._preface = False
                at = len(PREFACE)
            end = len(data)
            unpack = HEADER.unpack_from
            while end - at >= 9:
                high, low, kind, flags, streamID = unpack(data, at)
                length = high << 16 | low
                if length > DEFAULT_FRAME_SIZE:
                    raise H2ConnectionError(
                        ErrorCode.FRAME_SIZE_ERROR, f"frame of {length} octets"
                    )
                start = at + 9
                at = start + length
                if at > end:
                    at = start - 9
                    break
                payload = data[start:at]
                streamID &= 0x7FFFFFFF
                if self._settingsFirst:
                    if kind != SETTINGS or flags & ACK:
                        raise H2ConnectionError(
                            ErrorCode.PROTOCOL_ERROR,
                            "the connection preface must end with SETTINGS",
                        )
                    self._settingsFirst = False
                if self._blockStream and (
                    kind != CONTINUATION or streamID != self._blockStream
                ):
                    raise H2ConnectionError(
                        ErrorCode.PROTOCOL_ERROR, "header block interrupted"
                    )
                if kind == DATA:
                    self._receiveDataFrame(streamID, flags, payload)
                elif kind == HEADERS:
                    self._receiveHeaders(streamID, flags, payload)
                elif kind == CONTINUATION:
                    self._receiveContinuation(streamID, flags, payload)
                elif kind == SETTINGS:
                    self._receiveSettings(streamID, flags, payload)
                elif kind == WINDOW_UPDATE:
                    self._receiveWindowUpdate(streamID, payload)
                elif kind == RST_STREAM:
                    self._receiveReset(streamID, payload)
                elif kind == PING:
                    self._receivePing(streamID, flags, payload)
                elif kind == PRIORITY:
                    # Ignored (RFC 9113 section 5.3.2); it opens no stream.
                    if not streamID:
                        raise H2ConnectionError(
                            ErrorCode.PROTOCOL_ERROR, "PRIORITY on stream 0"
                        )
                    if length != 5:
                        raise H2ConnectionError(
                            ErrorCode.FRAME_SIZE_ERROR, "PRIORITY frame size"
                        )
                elif kind == GOAWAY:
                    self._receiveGoAway(streamID, payload)
                elif kind == PUSH_PROMISE:
                    raise H2ConnectionError(
                        ErrorCode.PROTOCOL_ERROR, "PUSH_PROMISE from a client"
                    )
                # Unknown types are ignored (RFC 9113 section 5.5).
                if self.closed:
                    return
            if at < end:
                # The start of a frame: parsed again once its header, or
                # all of it, has arrived.
                rest = data[at:]
                self._pending = [rest]
                self._pendingSize = size = end - at
                self._wanted = (
                    9 + (rest[0] << 16 | rest[1] << 8 | rest[2]) if size >= 9 else 9
                )
        except H2ConnectionError as error:
            self._pending = []
            self.closeConnection(error.code)
            raise

    def _stripPadding(self, payload: bytes) -> bytes:
        """
        The payload of a padded DATA or HEADERS frame without its padding.
        """
        if not payload:
            raise H2ConnectionError(
                ErrorCode.FRAME_SIZE_ERROR, "padded frame too short"
            )
        padding = payload[0]
        if padding >= len(payload):
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "padding too long")
        return payload[1 : len(payload) - padding]

    def _receiveDataFrame(self, streamID: int, flags: int, payload: bytes) -> None:
        if not streamID:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "DATA on stream 0")
        data = self._stripPadding(payload) if flags & PADDED else payload
        flowLength = len(payload)
        if flowLength > self._receiveWindow:
            raise H2ConnectionError(
                ErrorCode.FLOW_CONTROL_ERROR, "connection window exceeded"
            )
        self._receiveWindow -= flowLength
        stream = self.streams.get(streamID)
        if stream is None or stream.remoteEnded:
            self._notOpen(streamID, stream, "DATA")
            # Dropped: the connection's window is handed back.
            self.acknowledgeReceivedData(flowLength, streamID)
            return
        if flowLength > stream.receiveWindow:
            raise H2ConnectionError(
                ErrorCode.FLOW_CONTROL_ERROR, "stream window exceeded"
            )
        stream.receiveWindow -= flowLength
        ended = bool(flags & END_STREAM)
        if ended:
            self._remoteEnded(streamID, stream)
        self.handler.bodyReceived(streamID, data, flowLength, ended)

    def _remoteEnded(self, streamID: int, stream: Stream) -> None:
        stream.remoteEnded = True
        if stream.localEnded:
            del self.streams[streamID]

    def _notOpen(self, streamID: int, stream: Stream | None, what: str) -> None:
        """
        A frame that needs an open stream arrived on one that is not: on a
        half-closed one, a stream error C{STREAM_CLOSED}; on one this side
        reset, nothing (the client sent it before it read the reset); else
        a connection error.
        """
        if stream is not None:
            self._streamError(streamID, ErrorCode.STREAM_CLOSED)
        elif streamID > self.highestInboundStreamID:
            raise H2ConnectionError(
                ErrorCode.PROTOCOL_ERROR, f"{what} on idle stream {streamID}"
            )
        elif streamID not in self._reset:
            raise H2ConnectionError(
                ErrorCode.STREAM_CLOSED, f"{what} on closed stream {streamID}"
            )

    def _streamError(self, streamID: int, code: ErrorCode) -> None:
        """
        A stream error (RFC 9113 section 5.4.2): reset the stream, and tell
        the handler.
        """
        self.resetStream(streamID, code)
        self.handler.streamReset(streamID, code, local=True)

    def _receiveHeaders(self, streamID: int, flags: int, payload: bytes) -> None:
        if not streamID:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "HEADERS on stream 0")
        block = self._stripPadding(payload) if flags & PADDED else payload
        selfDependent = False
        if flags & PRIORITY_FLAG:
            if len(block) < 5:
                raise H2ConnectionError(
                    ErrorCode.FRAME_SIZE_ERROR, "HEADERS priority too short"
                )
            selfDependent = int.from_bytes(block[:4], "big") & 0x7FFFFFFF == streamID
            block = block[5:]
        if flags & END_HEADERS:
            self._headerBlock(streamID, block, bool(flags & END_STREAM), selfDependent)
        else:
            self._blockStream = streamID
            self._blockParts = [block]
            self._blockEnded = bool(flags & END_STREAM)
            self._blockSelfDependent = selfDependent

    def _receiveContinuation(self, streamID: int, flags: int, payload: bytes) -> None:
        if not self._blockStream:
            raise H2ConnectionError(
                ErrorCode.PROTOCOL_ERROR, "CONTINUATION without a header block"
            )
        parts = self._blockParts
        if len(parts) > MAX_CONTINUATIONS:
            raise H2ConnectionError(
                ErrorCode.ENHANCE_YOUR_CALM, "too many CONTINUATION frames"
            )
        parts.append(payload)
        if flags & END_HEADERS:
            block = b"".join(self._blockParts)
            self._blockStream = 0
            self._blockParts = []
            self._headerBlock(
                streamID, block, self._blockEnded, self._blockSelfDependent
            )

    def _headerBlock(
        self, streamID: int, block: bytes, ended: bool, selfDependent: bool
    ) -> None:
        """
        A whole header block arrived: decode it (whatever becomes of its
        stream, the decoder's table must follow the client's), then open a
        stream, or end one with trailers.
        """
        try:
            fields: Fields = self.decoder.decode(block, raw=True)
        except OversizedHeaderListError as error:
            # An HPACK bomb: the client ignored the advertised bound.
            raise H2ConnectionError(
                ErrorCode.ENHANCE_YOUR_CALM, f"header block too large: {error}"
            ) from None
        except (HPACKError, IndexError, TypeError) as error:
            raise H2ConnectionError(
                ErrorCode.COMPRESSION_ERROR, f"header block not decoded: {error}"
            ) from None
        stream = self.streams.get(streamID)
        if stream is not None:
            if stream.remoteEnded:
                self._streamError(streamID, ErrorCode.STREAM_CLOSED)
                return
            if ended:
                self._remoteEnded(streamID, stream)
            self.handler.trailersReceived(streamID, fields, ended)
            return
        if not streamID & 1:
            raise H2ConnectionError(
                ErrorCode.PROTOCOL_ERROR, f"client stream {streamID} is even"
            )
        if streamID <= self.highestInboundStreamID:
            if streamID in self._reset:
                # Trailers the client sent before it read the reset.
                return
            raise H2ConnectionError(
                ErrorCode.PROTOCOL_ERROR,
                f"new stream {streamID} below {self.highestInboundStreamID}",
            )
        self.highestInboundStreamID = streamID
        if len(self.streams) >= self.maxConcurrentStreams:
            # RFC 9113 section 5.1.2: a stream error, which leaves the open
            # streams alone; REFUSED_STREAM tells the client that nothing of
            # the request was processed, so that it may send it again.  What
            # else arrives on the stream is dropped, as after any reset.
            self._out.append(resetFrame(streamID, ErrorCode.REFUSED_STREAM))
            self._forgetReset(streamID)
            self.handler.streamReset(streamID, ErrorCode.REFUSED_STREAM, local=True)
            return
        stream = self.streams[streamID] = Stream(
            self._initialSendWindow, self._settings[INITIAL_WINDOW_SIZE], ended
        )
        if selfDependent:
            self._streamError(streamID, ErrorCode.PROTOCOL_ERROR)
            return
        self.handler.requestReceived(streamID, fields, ended)

    def _receiveSettings(self, streamID: int, flags: int, payload: bytes) -> None:
        if streamID:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "SETTINGS on a stream")
        if flags & ACK:
            if payload:
                raise H2ConnectionError(
                    ErrorCode.FRAME_SIZE_ERROR, "SETTINGS acknowledgement with payload"
                )
            if self._unacknowledged:
                settings = self._unacknowledged.pop(0)
                self._settings.update(settings)
                self.maxConcurrentStreams = self._settings.get(
                    MAX_CONCURRENT_STREAMS, 2**31
                )
            return
        if len(payload) % 6:
            raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS frame size")
        # The initial window and the table size are applied once a frame,
        # whatever number of times it repeats them (a frame of 2,730 of
        # them would otherwise cost a pass over every stream each), as if
        # each value were applied in turn (RFC 9113 section 6.5.3).
        window: int | None = None
        highestWindow = 0
        table: int | None = None
        smallestTable = DEFAULT_TABLE_SIZE
        for code, value in SETTING.iter_unpack(payload):
            if code == INITIAL_WINDOW_SIZE:
                if value > MAX_WINDOW:
                    raise H2ConnectionError(
                        ErrorCode.FLOW_CONTROL_ERROR, "initial window too large"
                    )
                window = value
                highestWindow = max(highestWindow, value)
            elif code == MAX_FRAME_SIZE:
                if not DEFAULT_FRAME_SIZE <= value <= MAX_FRAME_SIZE_LIMIT:
                    raise H2ConnectionError(
                        ErrorCode.PROTOCOL_ERROR, f"invalid frame size {value}"
                    )
                self.maxOutboundFrameSize = value
            elif code == HEADER_TABLE_SIZE:
                # No larger than the default: a client that allows more
                # would have the encoder keep every field it ever sent.
                table = min(value, DEFAULT_TABLE_SIZE)
                smallestTable = min(smallestTable, table)
            elif code in (ENABLE_PUSH, ENABLE_CONNECT_PROTOCOL):
                if value > 1:
                    raise H2ConnectionError(
                        ErrorCode.PROTOCOL_ERROR, f"invalid setting {code}: {value}"
                    )
            # MAX_CONCURRENT_STREAMS and MAX_HEADER_LIST_SIZE bound what a
            # client sends: a server opens no stream, and its heads are small.
        if table is not None:
            # The smallest size of the frame, then its last, are signalled
            # (RFC 7541 section 4.2).  Set only if it changes: hpack's
            # encoder forgets a size update it has not sent yet when set to
            # the same size again.
            for size in (smallestTable, table):
                if size != self.encoder.header_table_size:
                    self.encoder.header_table_size = size
        changed = window is not None and window != self._initialSendWindow
        if window is not None and changed:
            self._changeInitialWindow(window, highestWindow)
        self._out.append(SETTINGS_ACK)
        if changed:
            self.handler.windowOpened(0)

    def _changeInitialWindow(self, window: int, highest: int) -> None:
        """
        The client's C{SETTINGS_INITIAL_WINDOW_SIZE} became C{window}, after
        C{highest} at most: every stream's window changes by as much, in one
        pass.

        @raise H2ConnectionError: C{highest} took a window past 2^31-1.
        """
        delta = window - self._initialSendWindow
        peak = highest - self._initialSendWindow
        self._initialSendWindow = window
        for stream in self.streams.values():
            if stream.sendWindow + peak > MAX_WINDOW:
                raise H2ConnectionError(
                    ErrorCode.FLOW_CONTROL_ERROR, "stream window too large"
                )
            stream.sendWindow += delta

    def _receiveWindowUpdate(self, streamID: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "WINDOW_UPDATE size")
        increment = int.from_bytes(payload, "big") & 0x7FFFFFFF
        if not streamID:
            if not increment:
                raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0")
            self._sendWindow += increment
            if self._sendWindow > MAX_WINDOW:
                raise H2ConnectionError(
                    ErrorCode.FLOW_CONTROL_ERROR, "connection window too large"
                )
            self.handler.windowOpened(0)
            return
        stream = self.streams.get(streamID)
        if stream is None:
            if streamID > self.highestInboundStreamID:
                raise H2ConnectionError(
                    ErrorCode.PROTOCOL_ERROR, f"WINDOW_UPDATE on idle stream {streamID}"
                )
            return
        if not increment:
            self._streamError(streamID, ErrorCode.PROTOCOL_ERROR)
            return
        stream.sendWindow += increment
        if stream.sendWindow > MAX_WINDOW:
            self._streamError(streamID, ErrorCode.FLOW_CONTROL_ERROR)
            return
        self.handler.windowOpened(streamID)

    def _receiveReset(self, streamID: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "RST_STREAM size")
        if not streamID:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "RST_STREAM on stream 0")
        if streamID > self.highestInboundStreamID:
            raise H2ConnectionError(
                ErrorCode.PROTOCOL_ERROR, f"RST_STREAM on idle stream {streamID}"
            )
        if self.streams.pop(streamID, None) is not None:
            self.handler.streamReset(streamID, int.from_bytes(payload, "big"))

    def _receivePing(self, streamID: int, flags: int, payload: bytes) -> None:
        if streamID:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "PING on a stream")
        if len(payload) != 8:
            raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "PING size")
        if flags & ACK:
            self.handler.pingAcked(payload)
        else:
            self._out.append(pingFrame(payload, ack=True))

    def _receiveGoAway(self, streamID: int, payload: bytes) -> None:
        if streamID:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "GOAWAY on a stream")
        if len(payload) < 8:
            raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "GOAWAY size")
        code = int.from_bytes(payload[4:8], "big")
        if code != ErrorCode.NO_ERROR:
            self.closed = True
        self.handler.goAwayReceived(
            code, int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
        )


__all__ = [
    "MAX_CONTINUATIONS",
    "MAX_RESET_REMEMBERED",
    "Fields",
    "H2ConnectionError",
    "H2ServerConnection",
    "Handler",
    "Stream",
]
