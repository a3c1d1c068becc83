# -*- test-case-name: tests.http.test_h2connection -*-
"""
The HTTP/2 frame layer of twsgi's own server connection (RFC 9113 section
4 and 6): the frame types, flags, error codes and settings as plain
integers, the 9-octet frame header, and the frames a server sends, built
straight as bytes.  Frames that arrive are parsed in place by
L{twsgi.http.h2connection.H2ServerConnection}, from offsets into what was
received: no object per frame.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
"""
The client connection preface (RFC 9113 section 3.4).
"""

HEADER = struct.Struct(">BHBBL")
"""
The 9-octet frame header (RFC 9113 section 4.1): the length's high octet
and low 16 bits, the type, the flags, and the stream identifier (with its
reserved bit).
"""

# Frame types (RFC 9113 section 6).
DATA = 0x0
HEADERS = 0x1
PRIORITY = 0x2
RST_STREAM = 0x3
SETTINGS = 0x4
PUSH_PROMISE = 0x5
PING = 0x6
GOAWAY = 0x7
WINDOW_UPDATE = 0x8
CONTINUATION = 0x9

# Flags.
ACK = 0x1
END_STREAM = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

# Settings (RFC 9113 section 6.5.2).
HEADER_TABLE_SIZE = 0x1
ENABLE_PUSH = 0x2
MAX_CONCURRENT_STREAMS = 0x3
INITIAL_WINDOW_SIZE = 0x4
MAX_FRAME_SIZE = 0x5
MAX_HEADER_LIST_SIZE = 0x6
ENABLE_CONNECT_PROTOCOL = 0x8

DEFAULT_WINDOW = 65535
"""
The flow-control window of a connection and of each stream before SETTINGS
change it.
"""

MAX_WINDOW = 2**31 - 1
"""
The largest flow-control window (RFC 9113 section 6.9.1).
"""

DEFAULT_TABLE_SIZE = 4096
"""
The size of an HPACK dynamic table before SETTINGS change it (RFC 7541
section 4.2); also the largest a twsgi encoder uses, whatever larger size
the client allows.
"""

DEFAULT_FRAME_SIZE = 2**14
"""
The frame size every endpoint takes; also the largest a twsgi connection
takes.
"""

MAX_FRAME_SIZE_LIMIT = 2**24 - 1
"""
The largest C{SETTINGS_MAX_FRAME_SIZE} an endpoint may announce.
"""


class ErrorCode(enum.IntEnum):
    """
    The error codes of RST_STREAM and GOAWAY frames (RFC 9113 section 7).
    """

    NO_ERROR = 0x0
    PROTOCOL_ERROR = 0x1
    INTERNAL_ERROR = 0x2
    FLOW_CONTROL_ERROR = 0x3
    SETTINGS_TIMEOUT = 0x4
    STREAM_CLOSED = 0x5
    FRAME_SIZE_ERROR = 0x6
    REFUSED_STREAM = 0x7
    CANCEL = 0x8
    COMPRESSION_ERROR = 0x9
    CONNECT_ERROR = 0xA
    ENHANCE_YOUR_CALM = 0xB
    INADEQUATE_SECURITY = 0xC
    HTTP_1_1_REQUIRED = 0xD


def frameHeader(length: int, kind: int, flags: int, streamID: int) -> bytes:
    """
    The 9-octet header of a frame of C{length} payload octets.
    """
    return HEADER.pack(length >> 16, length & 0xFFFF, kind, flags, streamID)


SETTING = struct.Struct(">HL")
"""
One setting of a SETTINGS frame: its code and its value.
"""


def settingsFrame(settings: Iterable[tuple[int, int]]) -> bytes:
    """
    A SETTINGS frame announcing C{settings}, in their order.
    """
    payload = b"".join(SETTING.pack(code, value) for code, value in settings)
    return frameHeader(len(payload), SETTINGS, 0, 0) + payload


SETTINGS_ACK = frameHeader(0, SETTINGS, ACK, 0)
"""
The acknowledgement of a SETTINGS frame.
"""


def pingFrame(data: bytes, ack: bool = False) -> bytes:
    """
    A PING frame carrying the 8 octets of C{data}, or its acknowledgement.
    """
    return frameHeader(8, PING, ACK if ack else 0, 0) + data


def goAwayFrame(lastStreamID: int, code: int) -> bytes:
    """
    A GOAWAY frame naming the last stream the sender processes and why it
    goes away, with no debug data.
    """
    return frameHeader(8, GOAWAY, 0, 0) + struct.pack(">LL", lastStreamID, code)


def resetFrame(streamID: int, code: int) -> bytes:
    """
    A RST_STREAM frame.
    """
    return frameHeader(4, RST_STREAM, 0, streamID) + code.to_bytes(4, "big")


def windowUpdateFrame(streamID: int, increment: int) -> bytes:
    """
    A WINDOW_UPDATE frame, for the connection if C{streamID} is 0.
    """
    return frameHeader(4, WINDOW_UPDATE, 0, streamID) + increment.to_bytes(4, "big")


def headersFrames(streamID: int, block: bytes, end: bool, frameSize: int) -> bytes:
    """
    A header block as a HEADERS frame, followed by CONTINUATION frames when
    it is larger than C{frameSize} (RFC 9113 section 4.3).

    @param end: the block ends the stream (C{END_STREAM}).
    """
    flags = END_STREAM if end else 0
    if len(block) <= frameSize:
        return frameHeader(len(block), HEADERS, flags | END_HEADERS, streamID) + block
    parts = [frameHeader(frameSize, HEADERS, flags, streamID), block[:frameSize]]
    at = frameSize
    while at < len(block):
        piece = block[at : at + frameSize]
        at += len(piece)
        last = END_HEADERS if at >= len(block) else 0
        parts.append(frameHeader(len(piece), CONTINUATION, last, streamID))
        parts.append(piece)
    return b"".join(parts)


__all__ = [
    "ACK",
    "CONTINUATION",
    "DATA",
    "DEFAULT_FRAME_SIZE",
    "DEFAULT_TABLE_SIZE",
    "DEFAULT_WINDOW",
    "ENABLE_CONNECT_PROTOCOL",
    "ENABLE_PUSH",
    "END_HEADERS",
    "END_STREAM",
    "GOAWAY",
    "HEADER",
    "HEADERS",
    "HEADER_TABLE_SIZE",
    "INITIAL_WINDOW_SIZE",
    "MAX_CONCURRENT_STREAMS",
    "MAX_FRAME_SIZE",
    "MAX_FRAME_SIZE_LIMIT",
    "MAX_HEADER_LIST_SIZE",
    "MAX_WINDOW",
    "PADDED",
    "PING",
    "PREFACE",
    "PRIORITY",
    "PRIORITY_FLAG",
    "PUSH_PROMISE",
    "RST_STREAM",
    "SETTINGS",
    "SETTING",
    "SETTINGS_ACK",
    "WINDOW_UPDATE",
    "ErrorCode",
    "frameHeader",
    "goAwayFrame",
    "headersFrames",
    "pingFrame",
    "resetFrame",
    "settingsFrame",
    "windowUpdateFrame",
]
