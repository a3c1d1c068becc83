# -*- test-case-name: tests.http.test_limits -*-
"""
The limits and timeouts a listener enforces on each connection, as one
frozen value, and the converters for their settings.
"""

from __future__ import annotations

import re

import attrs

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

_SIZE = re.compile(r"^\s*(\d+)\s*([kKmMgG]?)(?:i?[bB])?\s*$")
_UNITS = {"": 1, "k": KIB, "m": MIB, "g": GIB}


def parseSize(value: str) -> int:
    """
    Parse a byte size: a whole number, optionally with C{K}, C{M} or C{G}
    (powers of 1024), e.g. C{16K}, C{100M}.

    @raise ValueError: if the text is not a size of at least 1 byte.
    """
    match = _SIZE.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not a size (for example 8192, 64K or 100M)")
    size = int(match.group(1)) * _UNITS[match.group(2).lower()]
    if size < 1:
        raise ValueError(f"{value!r} must be at least 1 byte")
    return size


@attrs.frozen
class Limits:
    """
    What one connection may send, and how slowly.

    @ivar maxRequestLine: bytes in the request line; above it, 414.
    @ivar maxHeaderField: bytes in one header field line; above it, 431.
    @ivar maxHeaderCount: header fields in one request; above it, 431.
    @ivar maxHeaderBytes: bytes in the whole header section; above it, 431.
    @ivar maxBody: bytes of request body; above it, 413.  Also the
        request-body bytes one HTTP/2 connection holds across its streams
        beyond which its uploads but the oldest wait (see
        L{twsgi.http.h2budget.BodyBudget}).
    @ivar headerTimeout: seconds from a request's first byte to the end of
        its header section (slowloris); then 408 and close.
    @ivar keepAliveTimeout: seconds an idle connection is kept open, before
        its first request and between requests.
    @ivar bodyTimeout: seconds a request body may go without a byte
        arriving; then 408 and close.
    @ivar sendTimeout: seconds a response may wait for a client that does
        not read it (an HTTP/1.1 connection whose send buffer stays full, an
        HTTP/2 stream whose flow-control window, or whose connection, stays
        blocked); then the connection is aborted, or the stream reset, which
        frees the application's thread.
    @ivar maxStreams: HTTP/2 streams one connection may have open at once
        (its C{SETTINGS_MAX_CONCURRENT_STREAMS}): each may hold a WSGI
        thread or a queue slot, and an upload's spool file.  RFC 9113
        recommends no fewer than 100, so that a client's opening burst is
        not refused.
    @ivar maxRefusedStreams: HTTP/2 streams of one connection the server
        may answer itself (400, 408, 413, 414, 431) before it closes the
        connection with GOAWAY C{ENHANCE_YOUR_CALM}.
    @ivar resetBurst: HTTP/2 stream resets a client may send at once.
    @ivar resetRate: HTTP/2 stream resets a client may send a second, on
        average, beyond C{resetBurst} (Rapid Reset, CVE-2023-44487).
    @ivar controlFrames: HTTP/2 frames the server must answer (PING,
        SETTINGS) a client may send at once, and a tenth of it more a second
        (CVE-2019-9512, CVE-2019-9515).
    @ivar emptyFrames: empty HTTP/2 DATA and CONTINUATION frames (which
        carry nothing and end nothing) a client may send at once, and a
        tenth of it more a second (CVE-2019-9518).
    """

    maxRequestLine: int = 8 * KIB
    maxHeaderField: int = 8 * KIB
    maxHeaderCount: int = 100
    maxHeaderBytes: int = 64 * KIB
    maxBody: int = 1 * GIB
    headerTimeout: float = 20.0
    keepAliveTimeout: float = 15.0
    bodyTimeout: float = 30.0
    sendTimeout: float = 60.0
    maxStreams: int = 100
    maxRefusedStreams: int = 4
    resetBurst: int = 100
    resetRate: float = 33.0
    controlFrames: int = 100
    emptyFrames: int = 100


__all__ = ["GIB", "KIB", "MIB", "Limits", "parseSize"]
