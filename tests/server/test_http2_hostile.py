"""
Tests for what a hostile HTTP/2 client may send to
L{twsgi.server.http2.TwsgiH2Connection}: inputs that once made a traceback,
malformed and mutated frame sequences, and the published floods.  Each
connection ends normally, or with GOAWAY and one server-log line; never
with an exception.
"""

from __future__ import annotations

import time
from typing import Any

import h2.errors
from hpack import Encoder
from hyperframe.frame import (
    PriorityFrame,
    SettingsFrame,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.drain import ManualPool
from tests.helpers.h2client import GoAway, H2Client
from tests.helpers.h2wire import H2Wire
from twsgi.http.h2head import PREFACE
from twsgi.http.limits import Limits
from twsgi.logs.limited import BURST, PERIOD
from twsgi.server.http2 import CALM_LINGER, FRAMES_PER_TURN, TwsgiH2Connection
from twsgi.testing import SynchronousThreadPool

PROTOCOL_ERROR = h2.errors.ErrorCodes.PROTOCOL_ERROR


def _connect(limits: Limits | None = None) -> tuple[H2Wire, H2Client]:
    """
    A server connection on a memory transport, and a client that read its
    SETTINGS.
    """
    wire = H2Wire(limits or Limits())
    client = H2Client(wire)
    client.readOnce(time.monotonic() + 1)
    return wire, client


def _read(client: H2Client) -> None:
    """
    Read whatever the server has sent, if anything.
    """
    try:
        client.readOnce(time.monotonic() + 1)
    except AssertionError:
        pass


def _closedLines(events: list[Any]) -> list[str]:
    """
    The server-log lines that say why a connection was closed.
    """
    return [
        formatEvent(event)
        for event in events
        if "HTTP/2 connection from" in formatEvent(event)
    ]


def _failures(events: list[Any]) -> list[str]:
    """
    The logged failures and tracebacks among C{events}.
    """
    return [
        formatEvent(event)
        for event in events
        if "log_failure" in event or "Traceback" in formatEvent(event)
    ]


class RegressionTests(SynchronousTestCase):
    """
    The inputs that once made the connection log "Unhandled Error".
    """

    def test_refusedThenGoAway(self) -> None:
        """
        A request the server refuses, followed by the client's GOAWAY in the
        same write, closes the connection quietly: nothing is sent after the
        client's GOAWAY closed it, and nothing is raised.
        """
        wire, client = _connect()
        wire.transport.clear()
        client.conn.send_headers(
            1,
            [
                (b":method", b"G T"),
                (b":scheme", b"https"),
                (b":authority", b"localhost"),
                (b":path", b"/"),
            ],
            end_stream=True,
        )
        client.conn.close_connection()
        with capturedLogs() as events:
            wire.sendall(client.conn.data_to_send())
        self.assertTrue(wire.transport.disconnecting)
        self.assertEqual(_failures(events), [])
        self.assertNotIn(wire.server, wire.site.connections)

    def test_priorityIgnored(self) -> None:
        """
        1,001 PRIORITY frames, each for a new stream, are ignored (RFC 9113
        deprecates them): nothing is answered or logged, and the connection
        serves its next request.
        """
        wire, client = _connect()
        wire.transport.clear()
        frames = b"".join(
            PriorityFrame(2 * i + 1, depends_on=0, stream_weight=16).serialize()
            for i in range(1001)
        )
        with capturedLogs() as events:
            wire.sendall(frames)
        self.assertEqual(wire.transport.value(), b"")
        self.assertEqual([formatEvent(event) for event in events], [])
        stream = client.request("GET", "/")
        wire.resource.finishAll()
        self.assertEqual(client.answer(stream).body, b"done")
        self.assertFalse(wire.transport.disconnecting)

    def test_badPreface(self) -> None:
        """
        A connection that does not open with the HTTP/2 connection preface
        gets GOAWAY C{PROTOCOL_ERROR} before it is closed, and one server-log
        line.
        """
        wire = H2Wire(Limits())
        client = H2Client(wire, alpn=None)
        client.conn.initiate_connection()
        client.conn.data_to_send()
        with capturedLogs() as events:
            wire.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        _read(client)
        self.assertTrue(wire.transport.disconnecting)
        self.assertEqual(
            client.goaway, GoAway(lastStreamID=0, errorCode=PROTOCOL_ERROR)
        )
        self.assertEqual(len(_closedLines(events)), 1)
        self.assertIn("preamble", _closedLines(events)[0])


GOAWAY = 0x7


def _frameTypes(data: bytes) -> list[int]:
    """
    The types of the frames in C{data}, as the server sent them.
    """
    types = []
    while len(data) >= 9:
        types.append(data[3])
        data = data[9 + int.from_bytes(data[:3], "big") :]
    return types


def _calmed(wire: H2Wire) -> bool:
    """
    Whether the server stopped reading a connection it cut off for a flood,
    and aborts it L{CALM_LINGER} seconds later (which passes here).
    """
    stopped = wire.transport.producerState == "paused"
    stopped = stopped and not wire.transport.disconnecting
    wire.clock.advance(CALM_LINGER)
    return stopped and wire.transport.disconnected


def _raw(kind: int, flags: int, streamID: int, payload: bytes = b"") -> bytes:
    """
    One frame, as bytes; unlike C{hyperframe}, any stream for any type.
    """
    head = len(payload).to_bytes(3, "big") + bytes([kind, flags])
    return head + streamID.to_bytes(4, "big") + payload


# :method GET, :scheme https, :path /, :authority "localhost", encoded with
# the static HPACK table only (so that any frame sequence may hold it).
_BLOCK = b"\x82\x87\x84\x41\x09localhost"
_streams = st.sampled_from([0, 1, 2, 3, 5, 7])
_frames = st.one_of(
    st.builds(
        lambda s, end: _raw(0x1, 0x4 | end, s, _BLOCK),
        _streams,
        st.sampled_from([0, 1]),
    ),
    st.builds(
        lambda s, n, end: _raw(0x0, end, s, b"d" * n),
        _streams,
        st.integers(0, 300),
        st.sampled_from([0, 1]),
    ),
    st.builds(
        lambda s, d: _raw(0x2, 0, s, d.to_bytes(4, "big") + b"\x10"), _streams, _streams
    ),
    st.builds(lambda s: _raw(0x3, 0, s, b"\x00\x00\x00\x08"), _streams),
    st.builds(
        lambda ack: _raw(0x4, ack, 0, b"" if ack else b"\x00\x04\x00\x00\x00\x64"),
        st.sampled_from([0, 1]),
    ),
    st.builds(lambda s: _raw(0x6, 0, s, b"12345678"), st.sampled_from([0, 1])),
    st.builds(
        lambda s, n: _raw(0x8, 0, s, n.to_bytes(4, "big")),
        _streams,
        st.integers(0, 2**31 - 1),
    ),
    st.builds(
        lambda s, end: _raw(0x9, end, s, b"\x82"), _streams, st.sampled_from([0, 4])
    ),
    st.builds(lambda: _raw(0x7, 0, 0, bytes(8))),
    st.binary(max_size=20),
)
_mutations = st.lists(
    st.tuples(
        st.sampled_from(["byte", "truncate", "duplicate", "drop"]),
        st.integers(0, 10_000),
        st.integers(0, 255),
    ),
    max_size=4,
)


def _mutate(data: bytes, mutations: list[tuple[str, int, int]]) -> bytes:
    """
    C{data} with each of C{mutations} applied: a byte replaced, the tail
    cut off, a slice repeated, or a slice dropped.
    """
    for kind, at, value in mutations:
        if not data:
            break
        at %= len(data)
        if kind == "byte":
            data = data[:at] + bytes([value]) + data[at + 1 :]
        elif kind == "truncate":
            data = data[:at]
        elif kind == "duplicate":
            data = data[:at] + data[at : at + value] * 2 + data[at + value :]
        else:
            data = data[:at] + data[at + value :]
    return data


class FrameFuzzTests(SynchronousTestCase):
    """
    Mutated frame sequences against a live connection.
    """

    @settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        frames=st.lists(_frames, max_size=20),
        mutations=_mutations,
        chunk=st.integers(1, 200),
        withPreface=st.booleans(),
    )
    def test_mutatedFrames(
        self,
        frames: list[bytes],
        mutations: list[tuple[str, int, int]],
        chunk: int,
        withPreface: bool,
    ) -> None:
        """
        Whatever frames arrive, mutated and cut into any chunks: nothing is
        raised or logged as a failure, a connection the server closes gets
        a GOAWAY and exactly one server-log line, and one it keeps open
        still answers PING.
        """
        wire = H2Wire(Limits(maxBody=1000))
        data = (PREFACE if withPreface else b"") + SettingsFrame(0).serialize()
        data = _mutate(data + b"".join(frames), mutations)
        with capturedLogs() as events:
            for at in range(0, len(data), chunk):
                wire.sendall(data[at : at + chunk])
            wire.resource.finishAll()
            wire.run()
        self.assertEqual(_failures(events), [])
        closed = _closedLines(events)
        self.assertLessEqual(len(closed), 1, closed)
        if closed:
            # Closed, or (a flood) no longer read until it is aborted.
            self.assertTrue(
                wire.transport.disconnecting or wire.transport.producerState == "paused"
            )
            self.assertEqual(_frameTypes(wire.transport.value())[-1], GOAWAY)
        with capturedLogs() as later:
            limits = wire.site.limits
            wire.clock.advance(limits.headerTimeout + limits.bodyTimeout)
            wire.clock.advance(limits.keepAliveTimeout)
        self.assertTrue(wire.transport.disconnecting)
        self.assertEqual(_failures(later), [])
        self.assertLessEqual(len(closed + _closedLines(later)), 1)


def _exchangeApp(environ: dict[str, Any], startResponse: Any) -> list[bytes]:
    """
    A WSGI application that echoes the request body, or (at C{/big}) answers
    more than an HTTP/2 stream's default window.
    """
    body: bytes = environ["wsgi.input"].read()
    if environ["PATH_INFO"] == "/big":
        startResponse("200 OK", [("Content-Type", "text/plain")])
        return [b"x" * 70_000, b"y" * 30_000]
    startResponse("200 OK", [("Content-Length", str(len(body)))])
    return [body]


_OPERATIONS = [
    "get",
    "big",
    "post",
    "declared",
    "split",
    "data",
    "padded",
    "end",
    "trailers",
    "reset",
    "window",
    "settings",
    "table",
    "ping",
    "priority",
    "goaway",
]
_operations = st.lists(
    st.tuples(st.sampled_from(_OPERATIONS), st.integers(0, 7), st.integers(0, 70_000)),
    max_size=30,
)


def _sequence(operations: list[tuple[str, int, int]]) -> bytes:
    """
    What a client that means well, mostly, sends for C{operations}: streams
    opened in order (some split into CONTINUATION frames), bodies (some
    padded), trailers, resets, window updates, settings, PING, PRIORITY and
    GOAWAY, on the streams it opened; each operation's numbers pick the
    stream and the sizes.
    """
    encoder = Encoder()
    frames = [PREFACE, SettingsFrame(0).serialize()]
    opened: list[int] = []
    for operation, pick, number in operations:
        stream = opened[pick % len(opened)] if opened else 1
        if operation in ("get", "big", "post", "declared", "split"):
            stream = 2 * len(opened) + 1
            opened.append(stream)
            get = operation in ("get", "big")
            fields = [
                (":method", "GET" if get else "POST"),
                (":scheme", "https"),
                (":authority", "localhost"),
                (":path", "/big" if operation == "big" else "/"),
            ]
            if operation == "declared":
                fields.append(("content-length", str(number % 50)))
            block = encoder.encode(fields)
            end = 0x1 if get else 0
            if operation == "split":
                frames.append(_raw(0x1, end, stream, block[:3]))
                frames.append(_raw(0x9, 0, stream, block[3:6]))
                frames.append(_raw(0x9, 0x4, stream, block[6:]))
            else:
                frames.append(_raw(0x1, 0x4 | end, stream, block))
        elif operation == "data":
            frames.append(_raw(0x0, number & 1, stream, b"d" * (number % 600)))
        elif operation == "padded":
            padding = number % 256
            payload = bytes([padding]) + b"d" * (number % 30) + bytes(padding)
            frames.append(_raw(0x0, 0x8 | (number & 1), stream, payload))
        elif operation == "end":
            frames.append(_raw(0x0, 0x1, stream))
        elif operation == "trailers":
            trailer = encoder.encode([("x-trailer", str(number))])
            frames.append(_raw(0x1, 0x5, stream, trailer))
        elif operation == "reset":
            frames.append(_raw(0x3, 0, stream, (number % 14).to_bytes(4, "big")))
        elif operation == "window":
            target = stream if pick & 1 else 0
            frames.append(_raw(0x8, 0, target, max(1, number).to_bytes(4, "big")))
        elif operation == "settings":
            code = (0x4, 0x4, 0x5, 0x3, 0x6)[pick % 5]
            value = (
                2**14 + number if code == 0x5 else (0, 1, 100, 65_535, number)[pick % 5]
            )
            frames.append(
                _raw(0x4, 0, 0, code.to_bytes(2, "big") + value.to_bytes(4, "big"))
            )
        elif operation == "table":
            size = (0, 100, 4096)[pick % 3]
            frames.append(_raw(0x4, 0, 0, b"\x00\x01" + size.to_bytes(4, "big")))
        elif operation == "ping":
            frames.append(_raw(0x6, pick & 1, 0, b"12345678"))
        elif operation == "priority":
            frames.append(_raw(0x2, 0, stream + 2 * (pick % 3), bytes(4) + b"\x10"))
        else:
            frames.append(_raw(0x7, 0, 0, bytes(8)))
    return b"".join(frames)


class ExchangeFuzzTests(SynchronousTestCase):
    """
    Frame sequences a client could send, mostly well formed, against streams
    that a WSGI application serves on the hot path, with responses larger
    than the client's windows.
    """

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(operations=_operations, chunk=st.integers(1, 3000), later=st.booleans())
    def test_sequences(
        self, operations: list[tuple[str, int, int]], chunk: int, later: bool
    ) -> None:
        """
        Whatever the sequence, cut into any chunks, and whether the
        application runs at once or after the client's frames: nothing is
        raised or logged as a failure, at most one server-log line says why
        the connection was closed, and once every timeout has passed, the
        connection is closed: no stream is held for ever.
        """
        pool: Any = ManualPool() if later else SynchronousThreadPool()
        wire = H2Wire(Limits(maxBody=1000, maxStreams=4), _exchangeApp, pool)
        data = _sequence(operations)
        limits = wire.site.limits
        with capturedLogs() as events:
            for at in range(0, len(data), chunk):
                wire.sendall(data[at : at + chunk])
            if later:
                pool.runAll()
            wire.run()
            for timeout in (limits.sendTimeout, limits.keepAliveTimeout):
                wire.clock.advance(limits.headerTimeout + limits.bodyTimeout)
                wire.clock.advance(timeout)
        self.assertEqual(_failures(events), [])
        self.assertLessEqual(len(_closedLines(events)), 1)
        self.assertTrue(wire.transport.disconnecting)


ENHANCE_YOUR_CALM = h2.errors.ErrorCodes.ENHANCE_YOUR_CALM


class MalformedBlockTests(SynchronousTestCase):
    """
    A malformed request (RFC 9113 section 8.1.1: a header block or trailer
    block that breaks sections 8.2 and 8.3, checked by
    L{twsgi.http.h2head.checkBlock}) is a stream error: its stream is reset
    with C{PROTOCOL_ERROR} before the application sees it, with one
    server-log line and an access record, and the connection serves its
    other streams.
    """

    head = [
        (b":method", b"POST"),
        (b":scheme", b"https"),
        (b":authority", b"localhost"),
        (b":path", b"/"),
    ]

    def refused(
        self, fields: list[tuple[bytes, bytes]], why: str, trailers: bool = False
    ) -> None:
        """
        The block C{fields}, sent as a request (or as the trailers of one)
        while another stream is open, resets its stream with
        C{PROTOCOL_ERROR}; the log line says C{why}, the access record shows
        400 with nothing sent; the other stream, and a later one, are
        served.
        """
        wire, client = _connect()
        records: list[Any] = []
        wire.site.observers.append(records.append)
        good = client.request("POST", "/good", end=False)
        with capturedLogs() as events:
            if trailers:
                bad = client.request("POST", "/bad", body=b"x", end=False)
                client.sendBlock(fields, bad)
            else:
                bad = client.sendBlock(fields)
            client.send(good, b"body", end=True)
            self.assertEqual(client.answer(bad).reset, PROTOCOL_ERROR)
            later = client.request("GET", "/later")
            client.sync()
            self.assertEqual(wire.resource.bodies, [b"body", b""])
            wire.resource.finishAll()
            self.assertEqual(client.answer(good).status, 200)
            self.assertEqual(client.answer(later).body, b"done")
        self.assertIsNone(client.goaway)
        self.assertFalse(wire.transport.disconnecting)
        lines = [formatEvent(event) for event in events]
        self.assertEqual(len(lines), 1)
        self.assertIn(f"HTTP/2 stream {bad} from ", lines[0])
        self.assertIn(why, lines[0])
        self.assertEqual(_failures(events), [])
        rejected = [r for r in records if r.status == 400]
        self.assertEqual(len(rejected), 1)
        self.assertEqual((rejected[0].protocol, rejected[0].bytesSent), ("HTTP/2.0", 0))
        self.assertEqual(sorted(r.status for r in records), [200, 200, 400])

    def test_upperCase(self) -> None:
        """
        A field name in upper case is malformed.
        """
        self.refused([*self.head, (b"X-Upper", b"v")], "invalid field name")

    def test_connectionSpecific(self) -> None:
        """
        A connection-specific field is malformed, C{transfer-encoding} too.
        """
        self.refused([*self.head, (b"connection", b"close")], "connection-specific")
        self.refused(
            [*self.head, (b"transfer-encoding", b"chunked")], "connection-specific"
        )

    def test_te(self) -> None:
        """
        C{te} other than C{trailers} is malformed.
        """
        self.refused([*self.head, (b"te", b"gzip")], "TE other than trailers")

    def test_pseudoHeaders(self) -> None:
        """
        A missing, repeated or unknown pseudo-header field, one after a
        regular field, and an empty C{:path} are malformed.
        """
        head = self.head
        self.refused(head[:3], "no :scheme or :path")
        self.refused([*head, (b":method", b"GET")], "':method' twice")
        self.refused([*head, (b":foo", b"1")], "unknown pseudo-header")
        self.refused([*head[:3], (b"x-a", b"1"), head[3]], "after a field")
        self.refused([*head[:3], (b":path", b"")], "empty :path")

    def test_trailers(self) -> None:
        """
        A trailer block with a pseudo-header field is malformed.
        """
        self.refused([(b":path", b"/")], "pseudo-header field", trailers=True)

    def test_trailersWithoutEnd(self) -> None:
        """
        A trailer block without C{END_STREAM} is malformed (RFC 9113
        section 8.1): the stream is reset, not the connection.
        """
        wire, client = _connect()
        good = client.request("POST", "/good", end=False)
        bad = client.request("POST", "/bad", body=b"x", end=False)
        with capturedLogs() as events:
            # Not through h2, which refuses to send it.
            block = client.conn.encoder.encode([(b"x-sum", b"1")])
            wire.sendall(_raw(0x1, 0x4, bad, block))
            client.send(good, b"body", end=True)
            self.assertEqual(client.answer(bad).reset, PROTOCOL_ERROR)
            client.sync()
            wire.resource.finishAll()
            self.assertEqual(client.answer(good).status, 200)
        self.assertIsNone(client.goaway)
        lines = [formatEvent(event) for event in events]
        self.assertEqual(len(lines), 1)
        self.assertIn("trailers without END_STREAM", lines[0])

    def test_lengthWrongLogged(self) -> None:
        """
        A body that is not its C{content-length} resets its stream with a
        server-log line and an access record (400, nothing sent).
        """
        wire, client = _connect()
        records: list[Any] = []
        wire.site.observers.append(records.append)
        with capturedLogs() as events:
            bad = client.request("POST", "/", [("content-length", "5")], b"abc")
            self.assertEqual(client.answer(bad).reset, PROTOCOL_ERROR)
        lines = [formatEvent(event) for event in events]
        self.assertEqual(len(lines), 1)
        self.assertIn("body length not its content-length", lines[0])
        self.assertEqual(
            [(r.status, r.bytesSent, r.target) for r in records], [(400, 0, "/")]
        )

    def test_endless(self) -> None:
        """
        A client that sends malformed requests without end loses its
        connection (GOAWAY C{ENHANCE_YOUR_CALM}) at the refused-stream
        limit, or at the reset burst if that is lower: each reset counts
        as one of the client's own.
        """
        for limits, why in [
            (Limits(), "too many refused streams"),
            (
                Limits(maxRefusedStreams=1000, resetBurst=10, resetRate=0.001),
                "too many streams reset",
            ),
        ]:
            wire, client = _connect(limits)
            with capturedLogs() as events:
                for _ in range(limits.maxRefusedStreams + limits.resetBurst):
                    if client.goaway is not None:
                        break
                    client.sendBlock([*self.head, (b"X-Upper", b"v")])
                    _read(client)
            self.assertEqual(client.goaway.errorCode, ENHANCE_YOUR_CALM)
            self.assertEqual(len(_closedLines(events)), 1)
            self.assertIn(why, _closedLines(events)[0])
            self.assertEqual(wire.resource.requests, [])

    def test_goodTrailers(self) -> None:
        """
        A well-formed trailer block is dropped, and the request served.
        """
        wire, client = _connect()
        encoder = Encoder()
        data = _raw(0x1, 0x4, 1, encoder.encode(self.head))
        data += _raw(0x0, 0, 1, b"body")
        data += _raw(0x1, 0x5, 1, encoder.encode([(b"x-checksum", b"abc")]))
        wire.transport.clear()
        wire.sendall(data)
        self.assertEqual(wire.resource.bodies, [b"body"])
        wire.resource.finishAll()
        wire.run()
        # The response: HEADERS, then DATA (the client never opened stream
        # 1 through its h2 state machine, so it is read as frames).
        types = [t for t in _frameTypes(wire.transport.value()) if t < 2]
        self.assertEqual(types[:2], [1, 0])
        self.assertFalse(wire.transport.disconnecting)


class FloodTests(SynchronousTestCase):
    """
    The published HTTP/2 floods end in GOAWAY C{ENHANCE_YOUR_CALM} after a
    bounded number of frames, with bounded bytes sent and kept.
    """

    def flood(
        self, limits: Limits, frame: bytes, allowed: int, opening: bytes = b""
    ) -> tuple[H2Wire, H2Client, list[Any]]:
        """
        Send C{opening}, then C{allowed} copies of C{frame} at once (the
        connection stays open), then more of them in one write: the
        server's GOAWAY, and the log events of the flood.
        """
        wire, client = _connect(limits)
        wire.sendall(opening + frame * allowed)
        self.assertFalse(wire.transport.disconnecting)
        self.assertIsNone(client.goaway)
        wire.transport.clear()
        with capturedLogs() as events:
            wire.sendall(frame * 100_000)
        self.assertTrue(_calmed(wire))
        _read(client)
        self.assertEqual(client.goaway.errorCode, ENHANCE_YOUR_CALM)
        self.assertEqual(len(_closedLines(events)), 1)
        self.assertEqual(_failures(events), [])
        # Nothing of the flood was answered or kept.
        self.assertLessEqual(len(wire.transport.value()), 64)
        self.assertEqual(wire.server._heldSize, 0)
        return wire, client, events

    def test_emptyData(self) -> None:
        """
        Empty DATA frames without C{END_STREAM} (CVE-2019-9518) beyond
        C{Limits.emptyFrames} end the connection.
        """
        opening = _raw(0x1, 0x4, 1, _BLOCK)
        self.flood(Limits(emptyFrames=50), _raw(0x0, 0, 1), 50, opening)

    def test_paddingOnly(self) -> None:
        """
        DATA frames that carry only padding count as empty frames too.
        """
        wire, client = _connect(Limits(emptyFrames=50))
        padded = _raw(0x0, 0x8, 1, b"\x05" + bytes(5))
        wire.sendall(_raw(0x1, 0x4, 1, _BLOCK) + padded * 50)
        self.assertFalse(wire.transport.disconnecting)
        with capturedLogs() as events:
            wire.sendall(padded)
        _read(client)
        self.assertEqual(client.goaway.errorCode, ENHANCE_YOUR_CALM)
        self.assertEqual(len(_closedLines(events)), 1)
        self.assertIn("empty frames", _closedLines(events)[0])

    def test_emptyContinuation(self) -> None:
        """
        Empty CONTINUATION frames without C{END_HEADERS} count as empty
        frames too.
        """
        opening = _raw(0x1, 0, 1, _BLOCK)
        self.flood(Limits(emptyFrames=20), _raw(0x9, 0, 1), 20, opening)

    def test_continuation(self) -> None:
        """
        A header block that grows through CONTINUATION frames
        (CVE-2024-27316) ends the connection once it is larger than the
        HPACK decoder takes, before it is decoded.
        """
        limits = Limits()
        frame = _raw(0x9, 0, 1, b"\x00" * 16_000)
        # Sixteen frames fit under the decoder's bound of four times the
        # default advertised bound (about 309 KB).
        self.flood(limits, frame, 16, _raw(0x1, 0, 1, _BLOCK))

    def test_ping(self) -> None:
        """
        PING frames (CVE-2019-9512) beyond C{Limits.controlFrames} end the
        connection; those within it are answered.
        """
        frame = _raw(0x6, 0, 0, b"12345678")
        # The client's own first SETTINGS frame took one.
        wire, client, events = self.flood(Limits(controlFrames=30), frame, 29)
        self.assertIn("PING", _closedLines(events)[0])

    def test_settings(self) -> None:
        """
        SETTINGS frames (CVE-2019-9515) share the allowance of PING frames;
        acknowledgements do not count.
        """
        wire, client = _connect(Limits(controlFrames=30))
        wire.sendall(_raw(0x4, 0x1, 0) * 1000)
        self.assertFalse(wire.transport.disconnecting)
        frame = _raw(0x4, 0, 0, b"\x00\x04\x00\x00\xff\xff")
        self.flood(Limits(controlFrames=30), frame, 29)

    def test_refill(self) -> None:
        """
        The allowance refills at a tenth of it a second, on the connection's
        clock.
        """
        wire, client = _connect(Limits(controlFrames=30))
        frame = _raw(0x6, 0, 0, b"12345678")
        wire.sendall(frame * 29)
        wire.clock.advance(1)
        wire.sendall(frame * 3)
        self.assertFalse(wire.transport.disconnecting)
        wire.sendall(frame)
        self.assertTrue(_calmed(wire))

    def test_rapidReset(self) -> None:
        """
        Streams opened and reset at once (CVE-2023-44487) beyond
        C{Limits.resetBurst} end the connection; a stream reset in the same
        read as it opened never reaches the application.
        """
        frame = b"".join(
            _raw(0x1, 0x5, s, _BLOCK) + _raw(0x3, 0, s, b"\x00\x00\x00\x08")
            for s in range(1, 2 * 200, 2)
        )
        wire, client = _connect(Limits(resetBurst=20, resetRate=1))
        with capturedLogs() as events:
            wire.sendall(frame)
        self.assertTrue(_calmed(wire))
        _read(client)
        self.assertEqual(client.goaway.errorCode, ENHANCE_YOUR_CALM)
        # Reset in the same read as they opened: none was dispatched.
        self.assertEqual(len(wire.resource.requests), 0)
        self.assertEqual(len(_closedLines(events)), 1)

    def test_provokedResets(self) -> None:
        """
        Streams the connection resets for a stream error the client made
        (CVE-2025-8671, "MadeYouReset": a WINDOW_UPDATE of 0, DATA after
        the stream's end) count as resets by the client: beyond
        C{Limits.resetBurst} they end the connection, though each request
        reached the application before it was reset.
        """
        for error in [
            lambda s: _raw(0x8, 0, s, bytes(4)),
            lambda s: _raw(0x0, 0x1, s, b"x"),
        ]:
            wire, client = _connect(Limits(resetBurst=20, resetRate=1))
            with capturedLogs() as events:
                for stream in range(1, 2 * 40, 2):
                    wire.sendall(_raw(0x1, 0x5, stream, _BLOCK))
                    wire.sendall(error(stream))
            sent = wire.transport.value()
            self.assertTrue(_calmed(wire))
            self.assertEqual(_frameTypes(sent)[-1], GOAWAY)
            self.assertEqual(sent[-4:], ENHANCE_YOUR_CALM.to_bytes(4, "big"))
            self.assertEqual(len(wire.resource.requests), 21)
            [line] = _closedLines(events)
            self.assertIn("the client's errors", line)


PING = 0x6


def _turn(clock: Any) -> None:
    """
    One turn of the reactor: the calls due now run, and not those they
    schedule (a task.Clock would run those too).
    """
    due = [c for c in clock.getDelayedCalls() if c.getTime() <= clock.seconds()]
    for call in due:
        if call.active():
            func, args, kw = call.func, call.args, call.kw
            call.cancel()
            func(*args, **kw)


class FloodLogTests(SynchronousTestCase):
    """
    A client that floods, reconnects and floods again does not fill the
    server log.
    """

    def test_closesRateLimited(self) -> None:
        """
        The lines saying why the server closed HTTP/2 connections are
        rate-limited per listener: L{BURST} a period, then one line saying
        how many more there were.
        """
        wire, _ = _connect(Limits(controlFrames=5))
        flood = PREFACE + _raw(0x4, 0, 0) + _raw(0x6, 0, 0, b"12345678") * 10

        def flooder() -> StringTransport:
            server = TwsgiH2Connection(wire.site)
            transport = StringTransport()
            server.makeConnection(transport)
            server.dataReceived(flood)
            return transport

        with capturedLogs() as events:
            transports = [flooder() for _ in range(BURST + 5)]
        # Each was cut off all the same.
        self.assertEqual(
            [_frameTypes(t.value())[-1] for t in transports], [GOAWAY] * (BURST + 5)
        )
        lines = [formatEvent(event) for event in events]
        self.assertEqual(len(_closedLines(events)), BURST, lines)
        self.assertIn("too many PING or SETTINGS frames", _closedLines(events)[0])
        wire.clock.advance(PERIOD)
        with capturedLogs() as events:
            flooder()
        self.assertEqual(
            [formatEvent(event) for event in events][:1],
            [
                "twsgi: 5 more HTTP/2 connections closed by the server were not "
                f"logged (at most {BURST} every {PERIOD:g} s)"
            ],
        )
        self.assertEqual(len(_closedLines(events)), 1)


class FairnessTests(SynchronousTestCase):
    """
    What one connection sends at once is given to C{h2} a few frames a turn
    of the reactor, so that other connections get turns in between, and a
    flood is judged from its frame headers before C{h2} parses it.
    """

    def test_framesPerTurn(self) -> None:
        """
        Of many frames that arrive at once, C{h2} gets L{FRAMES_PER_TURN} in
        one turn of the reactor and the next ones in the next turns, with
        what arrives meanwhile after them; the transport's reading is paused
        until they are all read.
        """
        wire, client = _connect(Limits(controlFrames=10**6))
        wire.transport.clear()
        ping = _raw(0x6, 0, 0, b"12345678")
        wire.server.dataReceived(ping * (2 * FRAMES_PER_TURN + 1))
        wire.server.dataReceived(ping)
        seen = []
        for _ in range(4):
            answered = _frameTypes(wire.transport.value()).count(PING)
            seen.append((answered, wire.transport.producerState))
            _turn(wire.clock)
        turn = FRAMES_PER_TURN
        self.assertEqual(
            seen,
            [
                (turn, "paused"),
                (2 * turn, "paused"),
                (2 * turn + 2, "producing"),
                (2 * turn + 2, "producing"),
            ],
        )

    def test_dispatchAfterTheRead(self) -> None:
        """
        The requests of a read reach the application once all its frames
        are handled: a stream reset in a later turn of the same read never
        does, one not reset does.
        """
        wire, client = _connect(Limits(controlFrames=10**6))
        ping = _raw(0x6, 0, 0, b"12345678")
        # The HEADERS frame ends the first turn, its RST_STREAM begins the
        # second; stream 3 comes whole in the third.
        wire.server.dataReceived(
            ping * (FRAMES_PER_TURN - 1)
            + _raw(0x1, 0x5, 1, _BLOCK)
            + _raw(0x3, 0, 1, b"\x00\x00\x00\x08")
            + ping * (FRAMES_PER_TURN - 1)
            + _raw(0x1, 0x5, 3, _BLOCK)
        )
        seen = []
        for _ in range(3):
            seen.append(len(wire.resource.requests))
            _turn(wire.clock)
        seen.append(len(wire.resource.requests))
        self.assertEqual(seen, [0, 0, 1, 1])
        self.assertEqual(wire.resource.requests[0].path, b"/")
        self.assertEqual(list(wire.server.streams), [3])

    def test_resetsJudgedBeforeParsing(self) -> None:
        """
        Streams reset beyond C{Limits.resetBurst} are counted from the frame
        headers: the connection ends with GOAWAY C{ENHANCE_YOUR_CALM} before
        C{h2} decoded a header block of theirs, and nothing more is read.
        """
        pairs = b"".join(
            _raw(0x1, 0x5, s, _BLOCK) + _raw(0x3, 0, s, b"\x00\x00\x00\x08")
            for s in range(1, 4 * FRAMES_PER_TURN, 2)
        )
        wire, client = _connect(Limits(resetBurst=FRAMES_PER_TURN // 4))
        with capturedLogs() as events:
            wire.server.dataReceived(pairs)
            wire.clock.advance(0)
        self.assertTrue(_calmed(wire))
        _read(client)
        self.assertEqual(client.goaway.errorCode, ENHANCE_YOUR_CALM)
        self.assertEqual(wire.server.conn.highestInboundStreamID, 0)
        # Nothing more is read: no turn of reading is due.
        now = wire.clock.seconds()
        self.assertEqual(
            [c for c in wire.clock.getDelayedCalls() if c.getTime() <= now], []
        )
        self.assertEqual(
            [line.rsplit(": ", 1)[1] for line in _closedLines(events)],
            ["too many streams reset by the client"],
        )

    def test_floodJudgedOnArrival(self) -> None:
        """
        The frames that arrive beyond a turn's are judged with it: a flood
        that arrives at once is cut off before C{h2} parsed any of it,
        however many turns it would take to parse.
        """
        wire, client = _connect(Limits(controlFrames=2 * FRAMES_PER_TURN))
        wire.transport.clear()
        ping = _raw(0x6, 0, 0, b"12345678")
        with capturedLogs() as events:
            wire.server.dataReceived(ping * (3 * FRAMES_PER_TURN))
            wire.clock.advance(0)
        self.assertEqual(_frameTypes(wire.transport.value()), [GOAWAY])
        self.assertTrue(_calmed(wire))
        self.assertIn("PING", _closedLines(events)[0])

    def test_judgedOnce(self) -> None:
        """
        Frames judged on arrival are not charged again when their turn
        comes: as many frames as the bucket holds, arriving at once, are
        all answered.
        """
        wire, client = _connect(Limits(controlFrames=3 * FRAMES_PER_TURN))
        wire.transport.clear()
        ping = _raw(0x6, 0, 0, b"12345678")
        # The client's own first SETTINGS frame took one.
        wire.server.dataReceived(ping * (3 * FRAMES_PER_TURN - 1))
        for _ in range(4):
            _turn(wire.clock)
        types = _frameTypes(wire.transport.value())
        self.assertEqual(types, [PING] * (3 * FRAMES_PER_TURN - 1))
        self.assertFalse(wire.transport.disconnecting)

    def test_defaultsSpareBrowsers(self) -> None:
        """
        With the default limits, a client that opens as many streams as it
        may at once and resets them all (a browser leaving a page), and
        sends a few PING and SETTINGS frames, is not cut off.
        """
        limits = Limits()
        wire, client = _connect()
        opened = range(1, 2 * limits.maxStreams, 2)
        wire.sendall(b"".join(_raw(0x1, 0x5, s, _BLOCK) for s in opened))
        wire.sendall(b"".join(_raw(0x3, 0, s, b"\x00\x00\x00\x08") for s in opened))
        ping = _raw(0x6, 0, 0, b"12345678")
        wire.sendall((ping + _raw(0x4, 0, 0, b"\x00\x04\x00\x00\xff\xff")) * 10)
        self.assertFalse(wire.transport.disconnecting)
        self.assertIsNone(client.goaway)
        self.assertEqual(len(wire.resource.requests), limits.maxStreams)
