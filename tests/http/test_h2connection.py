"""
Tests for L{twsgi.http.h2connection.H2ServerConnection} and the frames of
L{twsgi.http.h2frames}: driven in memory with the C{h2} library as the
client (its bytes in, the server's bytes back into it), and with raw frames
for what C{h2} would not send.
"""

from __future__ import annotations

import struct
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
from hpack import Encoder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from twsgi.http import h2connection
from twsgi.http import h2frames as f
from twsgi.http.h2connection import (
    MAX_CONTINUATIONS,
    MAX_RESET_REMEMBERED,
    Fields,
    H2ConnectionError,
    H2ServerConnection,
)
from twsgi.http.h2frames import ErrorCode

GET = [
    (b":method", b"GET"),
    (b":scheme", b"https"),
    (b":authority", b"localhost"),
    (b":path", b"/"),
]

POST = [(b":method", b"POST"), *GET[1:]]


class Recorder:
    """
    A handler that records what its connection tells it.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def requestReceived(self, streamID: int, fields: Fields, ended: bool) -> None:
        self.calls.append(("request", streamID, list(fields), ended))

    def trailersReceived(self, streamID: int, fields: Fields, ended: bool) -> None:
        self.calls.append(("trailers", streamID, list(fields), ended))

    def bodyReceived(
        self, streamID: int, data: bytes, flowLength: int, ended: bool
    ) -> None:
        self.calls.append(("data", streamID, data, flowLength, ended))

    def streamReset(self, streamID: int, code: int, local: bool = False) -> None:
        self.calls.append(("reset", streamID, code))

    def windowOpened(self, streamID: int) -> None:
        self.calls.append(("window", streamID))

    def pingAcked(self, data: bytes) -> None:
        self.calls.append(("pingAck", data))

    def goAwayReceived(self, code: int, lastStreamID: int) -> None:
        self.calls.append(("goaway", code, lastStreamID))


def raw(kind: int, flags: int, streamID: int, payload: bytes = b"") -> bytes:
    """
    A frame, as it goes on the wire.
    """
    return f.frameHeader(len(payload), kind, flags, streamID) + payload


def frames(data: bytes) -> list[tuple[int, int, int, bytes]]:
    """
    The frames of C{data}: type, flags, stream and payload.
    """
    found = []
    at = 0
    while at < len(data):
        high, low, kind, flags, streamID = f.HEADER.unpack_from(data, at)
        length = high << 16 | low
        found.append((kind, flags, streamID, data[at + 9 : at + 9 + length]))
        at += 9 + length
    return found


class Pair:
    """
    A server connection and an C{h2} client connected to it in memory; the
    client has read the server's SETTINGS and the server the client's.
    """

    def __init__(self, settings: dict[int, int] | None = None) -> None:
        self.handler = Recorder()
        self.server = H2ServerConnection(self.handler, settings or {})
        self.client = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.server.initiate()
        self.client.initiate_connection()
        self.events: list[Any] = []
        self.pump()
        self.handler.calls.clear()
        self.events.clear()

    def pump(self) -> None:
        """
        Carry bytes both ways until neither side has more to say.
        """
        while True:
            data = self.client.data_to_send()
            if data:
                self.server.receiveData(data)
            back = self.server.dataToSend()
            if back:
                self.events.extend(self.client.receive_data(back))
            if not data and not back:
                return

    def send(self, data: bytes) -> bytes:
        """
        Give the server C{data} (frames the client would not send), and
        return what it answers.
        """
        self.server.receiveData(data)
        return self.server.dataToSend()

    def refused(self, case: SynchronousTestCase, data: bytes, code: ErrorCode) -> None:
        """
        C{data} is a connection error C{code}: the server raises it, and
        sends GOAWAY with it, and nothing after.
        """
        error = case.assertRaises(H2ConnectionError, self.server.receiveData, data)
        case.assertEqual(error.code, code)
        sent = frames(self.server.dataToSend())
        case.assertEqual(sent[-1][0], f.GOAWAY)
        case.assertEqual(struct.unpack(">LL", sent[-1][3][:8])[1], code)
        case.assertTrue(self.server.closed)
        self.server.receiveData(raw(f.PING, 0, 0, b"12345678"))
        self.server.sendHeaders(1, [(b":status", b"200")])
        case.assertEqual(self.server.dataToSend(), b"")

    def request(self, fields: Fields = GET, end: bool = True) -> int:
        """
        Open a stream with C{fields}; its identifier.
        """
        streamID: int = self.client.get_next_available_stream_id()
        self.client.send_headers(streamID, fields, end_stream=end)
        self.pump()
        return streamID


def _encoded(fields: Fields) -> bytes:
    return Encoder().encode(fields)


class PrefaceTests(SynchronousTestCase):
    """
    The connection preface (RFC 9113 section 3.4).
    """

    def test_settingsFirst(self) -> None:
        """
        The server's first frame is SETTINGS with the defaults and the
        given settings, and the client's SETTINGS is acknowledged.
        """
        server = H2ServerConnection(Recorder(), {f.MAX_CONCURRENT_STREAMS: 7})
        server.initiate()
        [(kind, flags, streamID, payload)] = frames(server.dataToSend())
        self.assertEqual((kind, flags, streamID), (f.SETTINGS, 0, 0))
        values = dict(struct.iter_unpack(">HL", payload))
        self.assertEqual(
            values,
            {
                f.HEADER_TABLE_SIZE: 4096,
                f.ENABLE_PUSH: 0,
                f.INITIAL_WINDOW_SIZE: 65535,
                f.MAX_FRAME_SIZE: 16384,
                f.ENABLE_CONNECT_PROTOCOL: 0,
                f.MAX_CONCURRENT_STREAMS: 7,
            },
        )
        server.receiveData(f.PREFACE + raw(f.SETTINGS, 0, 0))
        self.assertEqual(server.dataToSend(), f.SETTINGS_ACK)

    def test_bytewise(self) -> None:
        """
        The preface and frames may arrive an octet at a time.
        """
        server = H2ServerConnection(Recorder(), {})
        data = f.PREFACE + raw(f.SETTINGS, 0, 0) + raw(f.PING, 0, 0, b"abcdefgh")
        for at in range(len(data)):
            server.receiveData(data[at : at + 1])
        self.assertEqual(
            server.dataToSend(), f.SETTINGS_ACK + f.pingFrame(b"abcdefgh", ack=True)
        )

    def test_smallReadsParsedOnce(self) -> None:
        """
        A frame that arrives in small reads is parsed once its header is
        whole and once it is whole, not again at every read (which copied
        all it had so far each time: quadratic in the frame's size); what
        the frames mean is the same whatever the reads.
        """
        parses = []

        class Counting:
            def unpack_from(self, data: bytes, at: int) -> tuple[int, ...]:
                parses.append(at)
                return f.HEADER.unpack_from(data, at)

        self.patch(h2connection, "HEADER", Counting())
        frameList = [
            raw(0xFA, 0, 0, b"x" * 16384),
            raw(f.PING, 0, 0, b"abcdefgh"),
            raw(0xFA, 0, 0, b"xyz"),
            raw(f.PING, 0, 0, b"12345678"),
        ]
        data = b"".join(frameList)
        for chunk in [1, 2, 7, 9, 100, len(data)]:
            del parses[:]
            server = H2ServerConnection(Recorder(), {})
            server.receiveData(f.PREFACE + raw(f.SETTINGS, 0, 0))
            self.assertEqual(server.dataToSend(), f.SETTINGS_ACK)
            for at in range(0, len(data), chunk):
                server.receiveData(data[at : at + chunk])
            self.assertEqual(
                server.dataToSend(),
                f.pingFrame(b"abcdefgh", ack=True) + f.pingFrame(b"12345678", ack=True),
            )
            self.assertLessEqual(len(parses), 1 + 2 * len(frameList), chunk)

    def test_badPreface(self) -> None:
        """
        Bytes that are not the preface are a C{PROTOCOL_ERROR}, as soon as
        they differ.
        """
        for data in [b"GET / HTTP/1.1\r\n", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\rxxxxxx"]:
            server = H2ServerConnection(Recorder(), {})
            error = self.assertRaises(H2ConnectionError, server.receiveData, data)
            self.assertEqual(error.code, ErrorCode.PROTOCOL_ERROR)
            self.assertEqual(server.dataToSend(), f.goAwayFrame(0, 1))

    def test_settingsMustComeFirst(self) -> None:
        """
        A preface followed by any frame but SETTINGS is a C{PROTOCOL_ERROR}.
        """
        server = H2ServerConnection(Recorder(), {})
        error = self.assertRaises(
            H2ConnectionError,
            server.receiveData,
            f.PREFACE + raw(f.PING, 0, 0, b"12345678"),
        )
        self.assertEqual(error.code, ErrorCode.PROTOCOL_ERROR)


class RequestTests(SynchronousTestCase):
    """
    Streams, from their request to their response.
    """

    def test_roundTrip(self) -> None:
        """
        A request reaches the handler whole, and a response sent as HEADERS
        and DATA ending the stream reaches the client; the stream is then
        forgotten.
        """
        pair = Pair()
        streamID = pair.request()
        self.assertEqual(pair.handler.calls, [("request", streamID, GET, True)])
        self.assertTrue(pair.server.sendHeaders(streamID, [(b":status", b"200")]))
        self.assertTrue(pair.server.sendData(streamID, b"hello", end=True))
        pair.pump()
        kinds = [type(e) for e in pair.events]
        self.assertEqual(
            kinds,
            [
                h2.events.ResponseReceived,
                h2.events.DataReceived,
                h2.events.StreamEnded,
            ],
        )
        self.assertEqual(pair.events[1].data, b"hello")
        self.assertEqual(pair.server.streams, {})
        self.assertFalse(pair.server.sendData(streamID, b"late"))
        self.assertEqual(pair.server.localFlowControlWindow(streamID), 0)

    def test_headOnly(self) -> None:
        """
        A HEADERS frame may end the stream; C{endStream} ends it with an
        empty DATA frame.
        """
        pair = Pair()
        one, two = pair.request(), pair.request()
        pair.server.sendHeaders(one, [(b":status", b"204")], end=True)
        pair.server.sendHeaders(two, [(b":status", b"200")])
        pair.server.endStream(two)
        pair.pump()
        ended = [
            e.stream_id for e in pair.events if isinstance(e, h2.events.StreamEnded)
        ]
        self.assertEqual(ended, [one, two])
        self.assertEqual(pair.server.streams, {})

    def test_body(self) -> None:
        """
        DATA frames reach the handler with their flow-controlled length
        (padding included), the last one marked.
        """
        pair = Pair()
        streamID = pair.request(POST, end=False)
        pair.client.send_data(streamID, b"abc", pad_length=10)
        pair.client.send_data(streamID, b"de", end_stream=True)
        pair.pump()
        self.assertEqual(
            pair.handler.calls[1:],
            [
                ("data", streamID, b"abc", 3 + 1 + 10, False),
                ("data", streamID, b"de", 2, True),
            ],
        )

    def test_trailers(self) -> None:
        """
        A second header block ending the stream is its trailers.
        """
        pair = Pair()
        streamID = pair.request(POST, end=False)
        pair.client.send_headers(streamID, [(b"x-sum", b"1")], end_stream=True)
        pair.pump()
        self.assertEqual(
            pair.handler.calls[1:],
            [("trailers", streamID, [(b"x-sum", b"1")], True)],
        )

    def test_trailersMustEnd(self) -> None:
        """
        A second header block that does not end the stream makes the
        request malformed (RFC 9113 section 8.1), which is the handler's to
        reset: it is handed over, decoded, and the connection goes on.
        """
        pair = Pair()
        streamID = pair.request(POST, end=False)
        block = _encoded([(b"x-sum", b"1")])
        pair.send(raw(f.HEADERS, f.END_HEADERS, streamID, block))
        self.assertEqual(
            pair.handler.calls[1:],
            [("trailers", streamID, [(b"x-sum", b"1")], False)],
        )
        self.assertFalse(pair.server.closed)
        self.assertFalse(pair.server.streams[streamID].remoteEnded)

    def test_paddedHeaders(self) -> None:
        """
        A HEADERS frame with padding and a priority is read without them.
        """
        pair = Pair()
        block = _encoded(GET)
        payload = bytes([3]) + b"\x00\x00\x00\x00\x10" + block + b"\x00" * 3
        pair.send(raw(f.HEADERS, 0x5 | f.PADDED | f.PRIORITY_FLAG, 1, payload))
        self.assertEqual(pair.handler.calls, [("request", 1, GET, True)])

    def test_paddingTooLong(self) -> None:
        """
        Padding as long as the payload is a C{PROTOCOL_ERROR}; a padded
        frame without its pad length, a C{FRAME_SIZE_ERROR}.
        """
        pair = Pair()
        streamID = pair.request(POST, end=False)
        pair.refused(
            self, raw(f.DATA, f.PADDED, streamID, b"\x03ab"), ErrorCode.PROTOCOL_ERROR
        )
        pair = Pair()
        pair.refused(
            self, raw(f.HEADERS, 0x5 | f.PADDED, 1), ErrorCode.FRAME_SIZE_ERROR
        )

    def test_selfDependent(self) -> None:
        """
        A HEADERS frame whose stream depends on itself resets the stream
        with C{PROTOCOL_ERROR}; its block is still decoded, and the
        connection goes on.
        """
        pair = Pair()
        encoder = Encoder()
        first = encoder.encode([*GET, (b"x-new", b"in the table")])
        answer = pair.send(
            raw(f.HEADERS, 0x5 | f.PRIORITY_FLAG, 1, b"\x00\x00\x00\x01\x10" + first)
        )
        self.assertEqual(frames(answer), [(f.RST_STREAM, 0, 1, b"\x00\x00\x00\x01")])
        self.assertEqual(pair.handler.calls, [("reset", 1, ErrorCode.PROTOCOL_ERROR)])
        second = encoder.encode([*GET, (b"x-new", b"in the table")])
        pair.send(raw(f.HEADERS, 0x5, 3, second))
        self.assertEqual(
            pair.handler.calls[-1],
            ("request", 3, [*GET, (b"x-new", b"in the table")], True),
        )

    def test_frameTooLarge(self) -> None:
        """
        A frame longer than 16,384 octets is a C{FRAME_SIZE_ERROR}, from its
        header alone.
        """
        pair = Pair()
        streamID = pair.request(POST, end=False)
        pair.refused(
            self,
            f.frameHeader(2**14 + 1, f.DATA, 0, streamID),
            ErrorCode.FRAME_SIZE_ERROR,
        )

    def test_streamIdentifiers(self) -> None:
        """
        A client's new stream must be odd and above every stream it opened
        before: else a C{PROTOCOL_ERROR}.
        """
        block = _encoded(GET)
        pair = Pair()
        pair.refused(self, raw(f.HEADERS, 0x5, 2, block), ErrorCode.PROTOCOL_ERROR)
        pair = Pair()
        pair.send(raw(f.HEADERS, 0x5, 5, block))
        pair.refused(self, raw(f.HEADERS, 0x5, 3, block), ErrorCode.PROTOCOL_ERROR)

    def test_closedStream(self) -> None:
        """
        DATA on a stream that both sides ended is a C{STREAM_CLOSED}
        connection error; on one the client ended, a C{STREAM_CLOSED}
        stream error; DATA on an idle stream, a C{PROTOCOL_ERROR}.
        """
        pair = Pair()
        streamID = pair.request()
        pair.server.sendHeaders(streamID, [(b":status", b"204")], end=True)
        pair.refused(self, raw(f.DATA, 0, streamID, b"x"), ErrorCode.STREAM_CLOSED)
        pair = Pair()
        streamID = pair.request()
        answer = pair.send(raw(f.DATA, 0, streamID, b"x"))
        self.assertEqual(
            frames(answer), [(f.RST_STREAM, 0, streamID, b"\x00\x00\x00\x05")]
        )
        self.assertEqual(pair.handler.calls[-1], ("reset", streamID, 5))
        self.assertEqual(pair.server.streams, {})
        pair.refused(self, raw(f.DATA, 0, 9, b"x"), ErrorCode.PROTOCOL_ERROR)

    def test_resetByServer(self) -> None:
        """
        Frames on a stream the server reset are ignored (the client sent them
        before it read the reset), and the header blocks among them decoded;
        the connection's window is handed back for their DATA.
        """
        pair = Pair()
        streamID = pair.request(POST, end=False)
        pair.server.resetStream(streamID, ErrorCode.NO_ERROR)
        self.assertEqual(
            frames(pair.server.dataToSend()),
            [(f.RST_STREAM, 0, streamID, b"\x00\x00\x00\x00")],
        )
        pair.handler.calls.clear()
        encoder = Encoder()
        encoder.encode(GET)  # What the client's encoder sent before.
        pair.client.send_data(streamID, b"x" * 16384)
        data = pair.client.data_to_send()
        trailers = encoder.encode([(b"x-trailer", b"in the table")])
        answer = pair.send(data * 2 + raw(f.HEADERS, 0x5, streamID, trailers))
        self.assertEqual(pair.handler.calls, [])
        self.assertEqual(
            frames(answer), [(f.WINDOW_UPDATE, 0, 0, struct.pack(">L", 32768))]
        )
        again = encoder.encode([*GET, (b"x-trailer", b"in the table")])
        pair.send(raw(f.HEADERS, 0x5, streamID + 2, again))
        self.assertEqual(
            pair.handler.calls,
            [("request", streamID + 2, [*GET, (b"x-trailer", b"in the table")], True)],
        )

    def test_resetRememberedBounded(self) -> None:
        """
        Only the last L{MAX_RESET_REMEMBERED} streams reset by the server are
        remembered.
        """
        pair = Pair()
        block = _encoded(GET)
        for n in range(MAX_RESET_REMEMBERED + 1):
            pair.send(raw(f.HEADERS, 0x4, 2 * n + 1, block))
            pair.server.resetStream(2 * n + 1, ErrorCode.CANCEL)
        pair.send(raw(f.DATA, 0, 2 * MAX_RESET_REMEMBERED + 1, b"x"))
        pair.refused(self, raw(f.DATA, 0, 1, b"x"), ErrorCode.STREAM_CLOSED)

    def test_maxConcurrentStreams(self) -> None:
        """
        A stream beyond C{SETTINGS_MAX_CONCURRENT_STREAMS} in force is reset
        with C{REFUSED_STREAM} (RFC 9113 section 5.1.2: a stream error, so
        that the client may send it again), the streams open go on, and what
        else arrives on it is dropped; a lower value sent later is in force
        once the client acknowledged it.
        """
        pair = Pair({f.MAX_CONCURRENT_STREAMS: 3})
        pair.server.updateSettings({f.MAX_CONCURRENT_STREAMS: 1})
        block = _encoded(POST)
        pair.send(raw(f.HEADERS, 0x4, 1, block) + raw(f.HEADERS, 0x4, 3, block))
        self.assertEqual(len(pair.server.streams), 2)
        pair.send(raw(f.SETTINGS, f.ACK, 0))
        self.assertEqual(pair.server.maxConcurrentStreams, 1)
        pair.server.resetStream(3, ErrorCode.CANCEL)
        pair.server.dataToSend()
        pair.handler.calls.clear()
        sent = pair.send(raw(f.HEADERS, 0x4, 5, block))
        self.assertEqual(
            frames(sent),
            [(f.RST_STREAM, 0, 5, ErrorCode.REFUSED_STREAM.to_bytes(4, "big"))],
        )
        self.assertEqual(pair.handler.calls, [("reset", 5, ErrorCode.REFUSED_STREAM)])
        self.assertEqual(
            pair.send(raw(f.DATA, 0x1, 5, b"x") + raw(f.DATA, 0x1, 1, b"y")),
            b"",
        )
        self.assertFalse(pair.server.closed)
        self.assertEqual(pair.handler.calls[1:], [("data", 1, b"y", 1, True)])
        self.assertEqual(list(pair.server.streams), [1])

    def test_acknowledgedInOrder(self) -> None:
        """
        The client's first SETTINGS acknowledgement is for the connection's
        first SETTINGS, in force already: a stream cap sent after it is not
        in force until the second acknowledgement.
        """
        server = H2ServerConnection(Recorder(), {f.MAX_CONCURRENT_STREAMS: 3})
        server.initiate()
        server.updateSettings({f.MAX_CONCURRENT_STREAMS: 1})
        block = _encoded(GET)
        server.receiveData(
            f.PREFACE
            + raw(f.SETTINGS, 0, 0)
            + raw(f.SETTINGS, f.ACK, 0)
            + raw(f.HEADERS, 0x4, 1, block)
            + raw(f.HEADERS, 0x4, 3, block)
        )
        self.assertEqual((len(server.streams), server.maxConcurrentStreams), (2, 3))
        server.receiveData(raw(f.SETTINGS, f.ACK, 0))
        self.assertEqual(server.maxConcurrentStreams, 1)


class HeaderBlockTests(SynchronousTestCase):
    """
    Header blocks in several frames, and their decoding.
    """

    def test_continuation(self) -> None:
        """
        A block in a HEADERS frame and CONTINUATION frames is read whole.
        """
        pair = Pair()
        block = _encoded(GET)
        pair.send(
            raw(f.HEADERS, f.END_STREAM, 1, block[:3])
            + raw(f.CONTINUATION, 0, 1, block[3:5])
            + raw(f.CONTINUATION, f.END_HEADERS, 1, block[5:])
        )
        self.assertEqual(pair.handler.calls, [("request", 1, GET, True)])

    def test_continuationsBounded(self) -> None:
        """
        A block may take up to L{MAX_CONTINUATIONS} CONTINUATION frames;
        one more, however small, is a flood (CVE-2024-27316): a connection
        error C{ENHANCE_YOUR_CALM}, before the block is decoded.
        """
        block = _encoded(GET)
        pieces = [block[at : at + 1] for at in range(1, len(block))]
        pieces += [b""] * (MAX_CONTINUATIONS - 1 - len(pieces))
        continuations = [raw(f.CONTINUATION, 0, 1, piece) for piece in pieces]
        pair = Pair()
        pair.send(raw(f.HEADERS, f.END_STREAM, 1, block[:1]) + b"".join(continuations))
        pair.send(raw(f.CONTINUATION, f.END_HEADERS, 1))
        self.assertEqual(pair.handler.calls, [("request", 1, GET, True)])
        pair = Pair()
        pair.send(raw(f.HEADERS, f.END_STREAM, 1, block[:1]) + b"".join(continuations))
        pair.send(raw(f.CONTINUATION, 0, 1))
        pair.refused(
            self, raw(f.CONTINUATION, 0, 1, b"\x00"), ErrorCode.ENHANCE_YOUR_CALM
        )
        self.assertEqual(pair.handler.calls, [])

    def test_interrupted(self) -> None:
        """
        Any frame but a CONTINUATION of the same stream within a block is a
        C{PROTOCOL_ERROR}, an unknown type too.
        """
        block = _encoded(GET)
        for other in [
            raw(f.PING, 0, 0, b"12345678"),
            raw(f.CONTINUATION, f.END_HEADERS, 3, block[3:]),
            raw(0x42, 0, 0),
        ]:
            pair = Pair()
            pair.refused(
                self, raw(f.HEADERS, 0, 1, block[:3]) + other, ErrorCode.PROTOCOL_ERROR
            )

    def test_continuationAlone(self) -> None:
        """
        A CONTINUATION frame without a block open is a C{PROTOCOL_ERROR}.
        """
        pair = Pair()
        pair.refused(
            self,
            raw(f.CONTINUATION, f.END_HEADERS, 1, b"\x82"),
            ErrorCode.PROTOCOL_ERROR,
        )

    def test_decodeError(self) -> None:
        """
        A block that does not decode is a C{COMPRESSION_ERROR}; one beyond
        the decoder's bound, an C{ENHANCE_YOUR_CALM}.
        """
        pair = Pair()
        pair.refused(
            self,
            raw(f.HEADERS, 0x5, 1, b"\xff\xff\xff\xff"),
            ErrorCode.COMPRESSION_ERROR,
        )
        pair = Pair()
        pair.server.decoder.max_header_list_size = 100
        block = _encoded([*GET, (b"x-big", b"x" * 200)])
        pair.refused(self, raw(f.HEADERS, 0x5, 1, block), ErrorCode.ENHANCE_YOUR_CALM)

    def test_largeResponseHead(self) -> None:
        """
        A response head larger than the client's frame size goes out in a
        HEADERS frame and CONTINUATION frames, which the client reads.
        """
        pair = Pair()
        streamID = pair.request()
        big = [(b":status", b"200"), (b"x-big", b"y" * 40000)]
        pair.server.sendHeaders(streamID, big, end=True)
        sent = pair.server.dataToSend()
        self.assertEqual(
            [(kind, flags) for kind, flags, _, _ in frames(sent)],
            [
                (f.HEADERS, f.END_STREAM),
                (f.CONTINUATION, 0),
                (f.CONTINUATION, f.END_HEADERS),
            ],
        )
        events = pair.client.receive_data(sent)
        self.assertEqual(events[0].headers, big)


class ControlFrameTests(SynchronousTestCase):
    """
    SETTINGS, PING, PRIORITY, RST_STREAM, GOAWAY, PUSH_PROMISE and unknown
    frames.
    """

    def test_settingsErrors(self) -> None:
        """
        Malformed SETTINGS frames, and values out of range, are connection
        errors with the codes of RFC 9113 section 6.5.
        """
        cases = [
            (raw(f.SETTINGS, 0, 1), ErrorCode.PROTOCOL_ERROR),
            (raw(f.SETTINGS, 0, 0, b"\x00" * 5), ErrorCode.FRAME_SIZE_ERROR),
            (raw(f.SETTINGS, f.ACK, 0, b"\x00" * 6), ErrorCode.FRAME_SIZE_ERROR),
            (f.settingsFrame([(f.ENABLE_PUSH, 2)]), ErrorCode.PROTOCOL_ERROR),
            (
                f.settingsFrame([(f.INITIAL_WINDOW_SIZE, 2**31)]),
                ErrorCode.FLOW_CONTROL_ERROR,
            ),
            (
                f.settingsFrame([(f.MAX_FRAME_SIZE, 2**14 - 1)]),
                ErrorCode.PROTOCOL_ERROR,
            ),
            (f.settingsFrame([(f.MAX_FRAME_SIZE, 2**24)]), ErrorCode.PROTOCOL_ERROR),
        ]
        for data, code in cases:
            Pair().refused(self, data, code)

    def test_settingsApplied(self) -> None:
        """
        The client's settings are acknowledged and applied: its initial
        window to every open stream (the handler hears of it), its frame
        size and its table size; unknown ones are ignored.
        """
        pair = Pair()
        streamID = pair.request()
        pair.handler.calls.clear()
        answer = pair.send(
            f.settingsFrame(
                [
                    (f.INITIAL_WINDOW_SIZE, 100),
                    (f.MAX_FRAME_SIZE, 2**15),
                    (f.HEADER_TABLE_SIZE, 0),
                    (0x99, 7),
                ]
            )
        )
        self.assertEqual(answer, f.SETTINGS_ACK)
        self.assertEqual(pair.handler.calls, [("window", 0)])
        self.assertEqual(pair.server.localFlowControlWindow(streamID), 100)
        self.assertEqual(pair.server.maxOutboundFrameSize, 2**15)
        self.assertEqual(pair.server.encoder.header_table_size, 0)

    def test_tableSizeRepeated(self) -> None:
        """
        A smaller C{SETTINGS_HEADER_TABLE_SIZE} sent twice is still
        signalled at the start of the next response block (RFC 7541 section
        4.2), as a strict decoder (nghttp2's) requires.
        """
        pair = Pair()
        streamID = pair.request()
        table = f.settingsFrame([(f.HEADER_TABLE_SIZE, 0)])
        pair.send(table + table)
        pair.server.sendHeaders(streamID, [(b":status", b"200")], end=True)
        [(kind, _, _, block)] = frames(pair.server.dataToSend())
        self.assertEqual((kind, block[:1]), (f.HEADERS, b"\x20"))

    def test_tableSizeBounded(self) -> None:
        """
        A client that allows a dynamic table larger than the default gets
        one of the default size: the encoder does not keep every field it
        ever sent, and the client still reads every response.
        """
        pair = Pair()
        pair.client.update_settings({h2.settings.SettingCodes.HEADER_TABLE_SIZE: 2**20})
        pair.pump()
        for n in range(100):
            streamID = pair.request()
            pair.server.sendHeaders(
                streamID, [(b":status", b"200"), (b"location", b"/%032d" % n)], True
            )
            pair.pump()
            [response, _] = pair.events[-2:]
            self.assertIsInstance(response, h2.events.ResponseReceived)
            self.assertIn((b"location", b"/%032d" % n), response.headers)
        self.assertEqual(pair.server.encoder.header_table_size, f.DEFAULT_TABLE_SIZE)
        entries = pair.server.encoder.header_table.dynamic_entries
        self.assertLessEqual(
            sum(32 + len(name) + len(value) for name, value in entries),
            f.DEFAULT_TABLE_SIZE,
        )

    def test_windowOverflowBySettings(self) -> None:
        """
        An initial window whose change takes an open stream's window past
        2^31-1 is a C{FLOW_CONTROL_ERROR}.
        """
        pair = Pair()
        streamID = pair.request()
        pair.send(raw(f.WINDOW_UPDATE, 0, streamID, struct.pack(">L", 2**31 - 65536)))
        pair.refused(
            self,
            f.settingsFrame([(f.INITIAL_WINDOW_SIZE, 65536)]),
            ErrorCode.FLOW_CONTROL_ERROR,
        )

    def test_windowOverflowWithinFrame(self) -> None:
        """
        An initial window that takes a stream's window past 2^31-1 is a
        C{FLOW_CONTROL_ERROR} even if a later value of the same frame
        brings it back: the values count in turn.
        """
        pair = Pair()
        streamID = pair.request()
        pair.send(raw(f.WINDOW_UPDATE, 0, streamID, struct.pack(">L", 2**31 - 65536)))
        pair.refused(
            self,
            f.settingsFrame(
                [(f.INITIAL_WINDOW_SIZE, 65536), (f.INITIAL_WINDOW_SIZE, 1)]
            ),
            ErrorCode.FLOW_CONTROL_ERROR,
        )

    def test_settingsOnePass(self) -> None:
        """
        A SETTINGS frame that repeats the initial window changes every
        stream's window once, to its last value: a frame full of them costs
        one pass over the streams, not one per value.
        """
        passes: list[None] = []

        class Streams(dict[int, Any]):
            def values(self) -> Any:
                passes.append(None)
                return dict.values(self)

        pair = Pair()
        streamIDs = [pair.request(POST, end=False) for _ in range(10)]
        pair.server.streams = Streams(pair.server.streams)
        pair.handler.calls.clear()
        values = [(f.INITIAL_WINDOW_SIZE, 1000 + n % 2) for n in range(2000)]
        self.assertEqual(pair.send(f.settingsFrame(values)), f.SETTINGS_ACK)
        self.assertEqual(len(passes), 1)
        self.assertEqual(pair.handler.calls, [("window", 0)])
        for streamID in streamIDs:
            self.assertEqual(pair.server.localFlowControlWindow(streamID), 1001)

    def test_tableSizesWithinFrame(self) -> None:
        """
        Of the table sizes of one SETTINGS frame, the smallest and the last
        are signalled, in that order, at the start of the next response
        block (RFC 7541 section 4.2), however many the frame holds.
        """
        pair = Pair()
        streamID = pair.request()
        sizes = [(f.HEADER_TABLE_SIZE, n % 3) for n in range(1000)]
        pair.send(f.settingsFrame([*sizes, (f.HEADER_TABLE_SIZE, 4000)]))
        pair.server.sendHeaders(streamID, [(b":status", b"200")], end=True)
        [(kind, _, _, block)] = frames(pair.server.dataToSend())
        # 0 and 4000, each as a 5-bit prefixed integer, then :status 200.
        self.assertEqual(block, b"\x20\x3f\x81\x1f\x88")

    def test_ping(self) -> None:
        """
        A PING is answered; an acknowledgement is reported; a PING of the
        wrong size or on a stream is an error.
        """
        pair = Pair()
        self.assertEqual(
            pair.send(raw(f.PING, 0, 0, b"abcdefgh")),
            f.pingFrame(b"abcdefgh", ack=True),
        )
        pair.server.ping(b"twsgi-xx")
        pair.pump()
        self.assertEqual(pair.handler.calls, [("pingAck", b"twsgi-xx")])
        Pair().refused(self, raw(f.PING, 0, 0, b"1234567"), ErrorCode.FRAME_SIZE_ERROR)
        Pair().refused(self, raw(f.PING, 0, 1, b"12345678"), ErrorCode.PROTOCOL_ERROR)

    def test_priority(self) -> None:
        """
        PRIORITY frames are ignored and open no stream; one of the wrong
        size or on stream 0 is an error.
        """
        pair = Pair()
        self.assertEqual(pair.send(raw(f.PRIORITY, 0, 7, b"\x00\x00\x00\x07\x10")), b"")
        self.assertEqual(pair.server.highestInboundStreamID, 0)
        self.assertEqual(pair.request(), 1)
        pair.refused(
            self, raw(f.PRIORITY, 0, 3, b"\x00" * 4), ErrorCode.FRAME_SIZE_ERROR
        )
        Pair().refused(
            self, raw(f.PRIORITY, 0, 0, b"\x00" * 5), ErrorCode.PROTOCOL_ERROR
        )

    def test_reset(self) -> None:
        """
        RST_STREAM ends an open stream (the handler hears of it) and is
        ignored on a closed one; of the wrong size, on stream 0 or on an
        idle stream it is an error.
        """
        pair = Pair()
        streamID = pair.request()
        pair.client.reset_stream(streamID, 8)
        pair.pump()
        self.assertEqual(pair.handler.calls[-1], ("reset", streamID, 8))
        self.assertEqual(pair.server.streams, {})
        pair.send(raw(f.RST_STREAM, 0, streamID, b"\x00\x00\x00\x08"))
        self.assertEqual(len(pair.handler.calls), 2)
        pair.refused(
            self, raw(f.RST_STREAM, 0, 1, b"\x00" * 3), ErrorCode.FRAME_SIZE_ERROR
        )
        Pair().refused(
            self, raw(f.RST_STREAM, 0, 0, b"\x00" * 4), ErrorCode.PROTOCOL_ERROR
        )
        Pair().refused(
            self, raw(f.RST_STREAM, 0, 1, b"\x00" * 4), ErrorCode.PROTOCOL_ERROR
        )

    def test_goAway(self) -> None:
        """
        The client's GOAWAY is reported; with C{NO_ERROR} the connection goes
        on (its open streams may finish), with an error code it then takes
        and sends nothing more.
        """
        pair = Pair()
        streamID = pair.request()
        pair.send(raw(f.GOAWAY, 0, 0, bytes(8)))
        self.assertEqual(pair.handler.calls[-1], ("goaway", 0, 0))
        self.assertFalse(pair.server.closed)
        pair.server.sendHeaders(streamID, [(b":status", b"200")], end=True)
        pair.pump()
        [response, ended] = pair.events[-2:]
        self.assertIsInstance(response, h2.events.ResponseReceived)
        self.assertIsInstance(ended, h2.events.StreamEnded)
        pair = Pair()
        streamID = pair.request()
        pair.client.close_connection(error_code=ErrorCode.INTERNAL_ERROR)
        pair.pump()
        self.assertEqual(pair.handler.calls[-1], ("goaway", 2, 0))
        self.assertTrue(pair.server.closed)
        self.assertFalse(pair.server.sendHeaders(streamID, [(b":status", b"200")]))
        pair.server.receiveData(raw(f.PING, 0, 0, b"12345678"))
        self.assertEqual(pair.server.dataToSend(), b"")
        Pair().refused(self, raw(f.GOAWAY, 0, 1, b"\x00" * 8), ErrorCode.PROTOCOL_ERROR)

    def test_pushPromise(self) -> None:
        """
        A client may not push: PUSH_PROMISE is a C{PROTOCOL_ERROR}.
        """
        Pair().refused(
            self,
            raw(f.PUSH_PROMISE, 0x4, 1, b"\x00\x00\x00\x02"),
            ErrorCode.PROTOCOL_ERROR,
        )

    def test_unknownIgnored(self) -> None:
        """
        A frame of an unknown type is ignored.
        """
        pair = Pair()
        self.assertEqual(pair.send(raw(0x42, 0xFF, 3, b"whatever")), b"")
        self.assertEqual(pair.handler.calls, [])

    def test_closeConnection(self) -> None:
        """
        The server's GOAWAY names the highest stream the client opened, and
        nothing is sent after it.
        """
        pair = Pair()
        streamID = pair.request()
        pair.server.closeConnection(ErrorCode.ENHANCE_YOUR_CALM)
        pair.server.closeConnection(ErrorCode.NO_ERROR)
        pair.server.ping(b"12345678")
        pair.server.resetStream(streamID, ErrorCode.CANCEL)
        self.assertEqual(pair.server.dataToSend(), f.goAwayFrame(streamID, 11))


class FlowControlTests(SynchronousTestCase):
    """
    Flow control in both directions (RFC 9113 sections 5.2 and 6.9).
    """

    def test_inbound(self) -> None:
        """
        The client's DATA takes the windows; consumed data opens them again
        with WINDOW_UPDATE once half of a window was consumed.
        """
        pair = Pair()
        streamID = pair.request(POST, end=False)
        pair.client.send_data(streamID, b"x" * 16384)
        pair.pump()
        pair.server.acknowledgeReceivedData(16384, streamID)
        self.assertEqual(pair.server.dataToSend(), b"")
        pair.client.send_data(streamID, b"x" * 16384)
        pair.pump()
        pair.server.acknowledgeReceivedData(16384, streamID)
        self.assertEqual(
            frames(pair.server.dataToSend()),
            [
                (f.WINDOW_UPDATE, 0, 0, struct.pack(">L", 32768)),
                (f.WINDOW_UPDATE, 0, streamID, struct.pack(">L", 32768)),
            ],
        )

    def test_held(self) -> None:
        """
        While a stream's window is held, consumed data opens the
        connection's window only; let go, the stream's window opens by all
        that was consumed meanwhile.
        """
        pair = Pair()
        streamID = pair.request(POST, end=False)
        pair.server.holdWindow(streamID, True)
        sent = b""
        for _ in range(3):
            pair.server.receiveData(raw(f.DATA, 0, streamID, b"x" * 16384))
            pair.server.acknowledgeReceivedData(16384, streamID)
            sent += pair.server.dataToSend()
        self.assertEqual(
            frames(sent), [(f.WINDOW_UPDATE, 0, 0, struct.pack(">L", 32768))]
        )
        pair.server.holdWindow(streamID, False)
        self.assertEqual(
            frames(pair.server.dataToSend()),
            [(f.WINDOW_UPDATE, 0, streamID, struct.pack(">L", 49152))],
        )

    def test_inboundExceeded(self) -> None:
        """
        DATA beyond the connection's window is a C{FLOW_CONTROL_ERROR}.
        """
        pair = Pair()
        streamID = pair.request(POST, end=False)
        chunk = raw(f.DATA, 0, streamID, b"x" * 16384)
        pair.send(chunk * 3 + raw(f.DATA, 0, streamID, b"x" * 16383))
        pair.refused(self, raw(f.DATA, 0, streamID, b"x"), ErrorCode.FLOW_CONTROL_ERROR)

    def test_outbound(self) -> None:
        """
        The window a stream may send is the lesser of its own and the
        connection's, and WINDOW_UPDATE frames open them (the handler hears
        of each).
        """
        pair = Pair()
        one, two = pair.request(), pair.request()
        pair.server.sendHeaders(one, [(b":status", b"200")])
        for _ in range(4):
            pair.server.sendData(one, b"x" * 16000)
        self.assertEqual(pair.server.localFlowControlWindow(one), 65535 - 64000)
        self.assertEqual(pair.server.localFlowControlWindow(two), 65535 - 64000)
        pair.handler.calls.clear()
        pair.send(
            raw(f.WINDOW_UPDATE, 0, 0, struct.pack(">L", 1000))
            + raw(f.WINDOW_UPDATE, 0, one, struct.pack(">L", 10))
        )
        self.assertEqual(pair.handler.calls, [("window", 0), ("window", one)])
        self.assertEqual(pair.server.localFlowControlWindow(one), 1545)
        self.assertEqual(pair.server.localFlowControlWindow(two), 2535)

    def test_windowUpdateErrors(self) -> None:
        """
        An increment of 0 or past 2^31-1 is an error: of the connection on
        stream 0, of the stream on a stream; WINDOW_UPDATE of the wrong size
        or on an idle stream is a connection error; on a closed stream it is
        ignored.
        """
        update = struct.pack(">L", 2**31 - 1)
        Pair().refused(
            self, raw(f.WINDOW_UPDATE, 0, 0, b"\x00" * 4), ErrorCode.PROTOCOL_ERROR
        )
        Pair().refused(
            self, raw(f.WINDOW_UPDATE, 0, 0, update), ErrorCode.FLOW_CONTROL_ERROR
        )
        Pair().refused(
            self, raw(f.WINDOW_UPDATE, 0, 0, b"\x00" * 3), ErrorCode.FRAME_SIZE_ERROR
        )
        Pair().refused(
            self,
            raw(f.WINDOW_UPDATE, 0, 1, b"\x00\x00\x00\x01"),
            ErrorCode.PROTOCOL_ERROR,
        )
        for payload, code in [(b"\x00" * 4, 1), (update, 3)]:
            pair = Pair()
            streamID = pair.request()
            answer = pair.send(raw(f.WINDOW_UPDATE, 0, streamID, payload))
            self.assertEqual(
                frames(answer), [(f.RST_STREAM, 0, streamID, struct.pack(">L", code))]
            )
            self.assertEqual(pair.handler.calls[-1], ("reset", streamID, code))
            self.assertEqual(pair.send(raw(f.WINDOW_UPDATE, 0, streamID, payload)), b"")


def _frame(kind: int, flags: int, streamID: int, payload: bytes) -> bytes:
    return raw(kind, flags, streamID, payload)


_anyFrames = st.builds(
    _frame,
    st.sampled_from(range(11)),
    st.integers(0, 255),
    st.sampled_from([0, 1, 2, 3, 5, 2**31 - 1]),
    st.one_of(
        st.binary(max_size=40),
        st.just(_encoded(GET)),
        st.just(b"\x00\x00\x00\x01"),
        st.just(b"\x00\x04\x00\x00\x00\x00"),
    ),
)


class FuzzTests(SynchronousTestCase):
    """
    Whatever frames arrive, the connection raises nothing but its own
    connection error.
    """

    @settings(
        max_examples=400,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        frameList=st.lists(_anyFrames, max_size=12),
        cut=st.integers(0, 400),
        chunk=st.integers(1, 64),
    )
    def test_mutatedFrames(self, frameList: list[bytes], cut: int, chunk: int) -> None:
        """
        Frames of any type, flags, stream and payload, cut at any point and
        delivered in any chunks: only L{H2ConnectionError} is raised, and
        after it the connection takes nothing more.
        """
        server = H2ServerConnection(Recorder(), {})
        server.initiate()
        data = f.PREFACE + raw(f.SETTINGS, 0, 0) + b"".join(frameList)
        data = data[: len(data) - cut % (len(data) - len(f.PREFACE) + 1)]
        try:
            for at in range(0, len(data), chunk):
                server.receiveData(data[at : at + chunk])
                server.sendHeaders(1, [(b":status", b"200")])
                server.sendData(1, b"x")
                server.acknowledgeReceivedData(1, 1)
        except H2ConnectionError:
            self.assertTrue(server.closed)
            server.dataToSend()
            server.receiveData(raw(f.PING, 0, 0, b"12345678"))
            self.assertEqual(server.dataToSend(), b"")
