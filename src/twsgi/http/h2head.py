# -*- test-case-name: tests.server.test_http2 -*-
"""
The pure half of HTTP/2 requests: L{checkBlock} finds the header blocks
RFC 9113 calls malformed, L{checkHead} decides from a stream's decoded
header block whether the request may be served, as L{twsgi.http.parse}
does for HTTP/1.1, and L{HeaderBlockWatch} tells from the bytes a
connection received whether a header block is still arriving.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import attrs

from twsgi.http.abnf import BAD_VALUE, HOST, TARGET, TOKEN
from twsgi.http.h2frames import (
    ACK,
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    HEADERS,
    PING,
    PREFACE,
    RST_STREAM,
    SETTINGS,
)
from twsgi.http.hopbyhop import CONNECTION_SPECIFIC
from twsgi.http.limits import Limits
from twsgi.http.parse import FramingError, checkTarget, parseContentLength

HTTP2 = b"HTTP/2.0"
"""
The protocol of an HTTP/2 request, as access records and C{SERVER_PROTOCOL}
show it (HTTP/1.1 shows C{HTTP/1.1}).
"""


class MalformedBlock(ValueError):
    """
    A header block that RFC 9113 (sections 8.2 and 8.3) calls malformed: a
    stream error C{PROTOCOL_ERROR} (section 8.1.1) resets its stream.  The
    message says why.
    """


_NAME = re.compile(rb":?[\x21-\x39\x3b-\x40\x5b-\x7e]+\Z")
"""
A field name HTTP/2 allows (RFC 9113 section 8.2.1): visible ASCII without
upper case letters, and no colon but the one that starts a pseudo-header
field.
"""

_BAD_VALUE = re.compile(rb"[\x00\n\r]|\A[ \t]|[ \t]\Z")
"""
What a field value may not hold in HTTP/2 (RFC 9113 section 8.2.1): NUL,
CR or LF, or whitespace at either end.
"""

_PSEUDO = frozenset({b":method", b":scheme", b":authority", b":path", b":protocol"})
"""
The pseudo-header fields of a request (RFC 9113 section 8.3.1, and
C{:protocol} of RFC 8441's extended CONNECT).
"""


def checkBlock(headers: Sequence[tuple[bytes, bytes]], trailers: bool = False) -> None:
    """
    Check a decoded request header block (or, with C{trailers}, a trailer
    block) against the rules of RFC 9113 sections 8.2 and 8.3, as the
    C{h2} state machine would with its C{validate_inbound_headers}: field
    names and values, connection-specific fields, C{TE}, the pseudo-header
    fields a request must have (once each, before the others, none in
    trailers), a non-empty C{:path}, and C{:authority} or C{Host} (only one
    C{Host}, the same as C{:authority}).

    @raise MalformedBlock: if it breaks one.
    """
    seen: set[bytes] = set()
    regular = False
    method = authority = host = path = None
    for name, value in headers:
        if not _NAME.match(name):
            raise MalformedBlock(f"invalid field name {name!r}")
        if value and _BAD_VALUE.search(value):
            raise MalformedBlock(f"invalid value of {name!r}")
        if name[0] == 0x3A:
            if trailers:
                raise MalformedBlock(f"pseudo-header field {name!r} in trailers")
            if regular:
                raise MalformedBlock(f"pseudo-header field {name!r} after a field")
            if name not in _PSEUDO:
                raise MalformedBlock(f"unknown pseudo-header field {name!r}")
            if name in seen:
                raise MalformedBlock(f"pseudo-header field {name!r} twice")
            seen.add(name)
            if name == b":method":
                method = value
            elif name == b":path":
                path = value
            elif name == b":authority":
                authority = value
            continue
        regular = True
        if name in CONNECTION_SPECIFIC:
            raise MalformedBlock(f"connection-specific field {name!r}")
        if name == b"te" and value.lower() != b"trailers":
            raise MalformedBlock("TE other than trailers")
        if name == b"host" and not trailers:
            if host is not None:
                raise MalformedBlock("Host twice")
            host = value
    if trailers:
        return
    if method is None:
        raise MalformedBlock("no :method")
    connect = method == b"CONNECT"
    if connect and b":protocol" not in seen:
        if b":scheme" in seen or path is not None:
            raise MalformedBlock("CONNECT with :scheme or :path")
    else:
        if not connect and b":protocol" in seen:
            raise MalformedBlock(":protocol without CONNECT")
        if b":scheme" not in seen or path is None:
            raise MalformedBlock("no :scheme or :path")
    if path is not None and not path:
        raise MalformedBlock("empty :path")
    if authority is None and host is None:
        raise MalformedBlock("no :authority or Host")
    if authority is not None and host is not None and authority != host:
        raise MalformedBlock(":authority and Host differ")


@attrs.frozen
class Http2Head:
    """
    The facts of an HTTP/2 request head that passed every check.

    @ivar method: the C{:method}.
    @ivar path: the C{:path}.
    @ivar contentLength: from C{content-length}, or C{None} without one.
    @ivar fields: the header fields as an HTTP/1.1 request has them (see
        L{requestFields}).
    @ivar expectContinue: whether it asks for C{100 Continue}.
    """

    method: bytes
    path: bytes
    contentLength: int | None
    fields: tuple[tuple[bytes, bytes], ...] = ()
    expectContinue: bool = False


def checkHead(headers: Sequence[tuple[bytes, bytes]], limits: Limits) -> Http2Head:
    """
    Check a decoded HTTP/2 header block against C{limits} and the
    character rules of HTTP/1.1, as L{twsgi.http.parse.HeadParser} checks an
    HTTP/1.1 head.  L{checkBlock} already refused malformed blocks (RFC
    9113 sections 8.2 and 8.3: pseudo header fields, upper case names,
    connection-specific fields).  The rest is checked here with the
    HTTP/1.1 parser's own patterns: C{:method} is a token, C{:path} visible
    bytes, a field name a token, no field value holds a control byte, and
    C{:authority} and C{host} are valid hosts.

    A field is counted as its HTTP/1.1 line would be (C{name: value} and
    CRLF), C{:authority} as C{Host}, the C{cookie} fields as the one
    C{Cookie} line they are joined into, and the request line as C{method
    SP path SP HTTP/2}.

    @raise FramingError: 414 for a long path, 431 for a field, a count or a
        section above the limits, 400 for C{CONNECT}, a bad target (also an
        absolute URI, which HTTP/1.1 takes), a bad character or a bad
        C{content-length}, 413 for a declared body above the limit.
    """
    method = path = b""
    count = total = 0
    lengths: list[bytes] = []
    fields: list[tuple[bytes, bytes]] = []
    oversized = badName = badValue = badHost = expect = cookie = False
    for name, value in headers:
        badValue = badValue or BAD_VALUE.search(value) is not None
        if name == b":method":
            method = value
        elif name == b":path":
            path = value
        if name in (b":authority", b"host"):
            badHost = badHost or not HOST.match(value)
        if name.startswith(b":"):
            if name != b":authority":
                continue
            fields.append((b"host", value))
        else:
            badName = badName or not TOKEN.fullmatch(name)
            fields.append((name, value))
            if name == b"content-length":
                lengths.append(value)
            elif name == b"expect":
                expect = expect or value.lower() == b"100-continue"
        size = len(name) + 2 + len(value) + 2
        oversized = oversized or size > limits.maxHeaderField
        if name == b"cookie":
            if cookie:
                # RFC 9113 section 8.2.3: a crumb of the one Cookie field,
                # which the application sees joined with "; " (as browsers
                # send their cookies, one field each).
                total += len(value) + 2
                continue
            cookie = True
        count += 1
        total += size
    if len(method) + len(path) + len(b"  HTTP/2") > limits.maxRequestLine:
        raise FramingError(414, "request target too long")
    if oversized:
        raise FramingError(431, "header field too large")
    if count > limits.maxHeaderCount:
        raise FramingError(431, "too many header fields")
    if total > limits.maxHeaderBytes:
        raise FramingError(431, "header section too large")
    if not TOKEN.fullmatch(method):
        raise FramingError(400, "invalid :method")
    if not TARGET.match(path):
        raise FramingError(400, "invalid :path")
    if badName:
        raise FramingError(400, "invalid field name")
    if badValue:
        raise FramingError(400, "control byte in a field value")
    if badHost:
        raise FramingError(400, "invalid :authority or Host")
    checkTarget(method, path)
    if path[:1] != b"/" and path != b"*":
        # RFC 9113 section 8.3.1: :path is the path and query of the
        # target (or "*"), never a whole URI: one would name a host other
        # than the :authority a proxy in front routed on, and the
        # application would see that host.
        raise FramingError(400, "a whole URI as :path")
    length = parseContentLength(lengths) if lengths else None
    if length is not None and length > limits.maxBody:
        raise FramingError(413, "request body too large")
    return Http2Head(
        method=method,
        path=path,
        contentLength=length,
        fields=tuple(fields),
        expectContinue=expect,
    )


@attrs.frozen
class PartialHead:
    """
    What the access record of a refused HTTP/2 request shows of its head,
    shaped like the HTTP/1.1 parser's (L{twsgi.http.parse.HeadParser}).

    @ivar requestLine: C{method SP path SP HTTP/2.0}.
    @ivar fields: the header fields, C{:authority} as C{host}.
    """

    requestLine: bytes
    fields: tuple[tuple[bytes, bytes], ...]


def partialHead(headers: Sequence[tuple[bytes, bytes]]) -> PartialHead:
    """
    The L{PartialHead} of a decoded HTTP/2 header block.
    """
    pseudo = {name: value for name, value in headers if name.startswith(b":")}
    line = b"%s %s %s" % (
        pseudo.get(b":method", b""),
        pseudo.get(b":path", b""),
        HTTP2,
    )
    return PartialHead(requestLine=line, fields=requestFields(headers))


def requestFields(
    headers: Sequence[tuple[bytes, bytes]],
) -> tuple[tuple[bytes, bytes], ...]:
    """
    The header fields of a decoded HTTP/2 header block as an HTTP/1.1
    request would have them: without the pseudo-header fields, and
    C{:authority} as C{host}, in the order received.
    """
    return tuple(
        (b"host" if name == b":authority" else name, value)
        for name, value in headers
        if name[:1] != b":" or name == b":authority"
    )


def headerListBound(limits: Limits) -> int:
    """
    The C{SETTINGS_MAX_HEADER_LIST_SIZE} a connection advertises (RFC 9113
    section 6.5.2 counts 32 bytes more per field), a little above the
    limits: a block above the limits gets a 431 (see L{decoderBound} for
    the blocks that end the connection).
    """
    return (
        limits.maxHeaderBytes + limits.maxRequestLine + 32 * (limits.maxHeaderCount + 8)
    )


def decoderBound(limits: Limits) -> int:
    """
    The largest header list the HPACK decoder takes: four times
    L{headerListBound}.  A client that ignores the advertised bound gets
    431 on its stream (L{checkHead}) and keeps its connection; only a block
    beyond this one ends the connection, before it is even decoded, which
    defuses HPACK bombs and bounds what a header block costs.
    """
    return 4 * headerListBound(limits)


_HEADER_FRAMES = (HEADERS, CONTINUATION)

_ANSWERED_FRAMES = (SETTINGS, PING)
"""
The types of SETTINGS and PING frames, which the server answers unless
they are acknowledgements.
"""


class HeaderBlockWatch:
    """
    Follows the frames of an HTTP/2 connection's inbound bytes, only as far
    as their 9-byte frame headers, to tell whether a header block has begun
    to arrive and is not complete: a HEADERS or CONTINUATION frame still
    arriving, or a block whose last frame did not carry C{END_HEADERS}
    (RFC 9113 section 4.3).  The connection times such a block with the
    header timeout, as an HTTP/1.1 head is timed.  Frames are not checked
    here: L{twsgi.http.h2connection} refuses malformed ones.

    It also counts, from the frame headers alone, the frames of the
    published floods, so that a connection can stop one before it
    parses them.

    @ivar answered: the PING and SETTINGS frames (not acknowledgements)
        seen so far: each makes the server send one.
    @ivar empty: the DATA frames without payload or C{END_STREAM}, and the
        CONTINUATION frames without payload or C{END_HEADERS}, seen so far:
        they carry nothing and end nothing.
    @ivar resets: the RST_STREAM frames seen so far: each ends a stream the
        client may have opened in the same breath (Rapid Reset).
    @ivar resetIDs: the streams of the RST_STREAM frames seen since the
        connection last emptied it.
    @ivar blockSize: the payload bytes of the header block still arriving.
    """

    def __init__(self) -> None:
        self._skip = len(PREFACE)
        self._type: int | None = None
        self._head = b""
        self._open = False
        self.answered = 0
        self.empty = 0
        self.resets = 0
        self.resetIDs: tuple[int, ...] = ()
        self.blockSize = 0

    def feed(self, data: bytes, frames: int = -1) -> int:
        """
        Follow C{data}, the next bytes received, or only as far as the end
        of its first C{frames} frames (all of it if C{frames} is negative).

        @return: how many bytes of C{data} were followed: all of it, or up
            to the end of its C{frames}th frame; the rest is to be fed
            later, with what arrives after it.
        """
        at, end = 0, len(data)
        while at < end:
            if self._skip:
                taken = min(self._skip, end - at)
                self._skip -= taken
                at += taken
                continue
            if not frames:
                return at
            wanted = 9 - len(self._head)
            self._head += data[at : at + wanted]
            at += wanted
            if len(self._head) < 9:
                return end
            head, self._head = self._head, b""
            self._type = kind = head[3]
            flags = head[4]
            self._skip = length = int.from_bytes(head[:3], "big")
            frames -= 1
            if kind in _HEADER_FRAMES:
                self.blockSize = self.blockSize + length if self._open else length
                self._open = not flags & END_HEADERS
                if not self._open:
                    self.blockSize = 0
            if kind in _ANSWERED_FRAMES and not flags & ACK:
                self.answered += 1
            elif kind == RST_STREAM:
                self.resets += 1
                # A tuple: a copy of this watch does not share what it adds.
                self.resetIDs += (int.from_bytes(head[5:9], "big") & 0x7FFFFFFF,)
            elif not length and (
                (kind == DATA and not flags & END_STREAM)
                or (kind == CONTINUATION and not flags & END_HEADERS)
            ):
                self.empty += 1
        return at

    @property
    def pending(self) -> bool:
        """
        C{True} while a header block is incomplete.
        """
        head = self._head
        return (
            self._open
            or (self._skip > 0 and self._type in _HEADER_FRAMES)
            or (0 < len(head) and (len(head) < 4 or head[3] in _HEADER_FRAMES))
        )


@attrs.define
class TokenBucket:
    """
    A bucket of C{burst} tokens that refills at C{rate} tokens a second:
    what a client may do at once, and on average after that.

    @ivar tokens: the tokens left.
    @ivar at: when they were counted.
    """

    burst: float
    rate: float
    at: float
    tokens: float = attrs.field()

    @tokens.default
    def _full(self) -> float:
        return self.burst

    def take(self, now: float, count: int = 1) -> bool:
        """
        Take C{count} tokens at time C{now}; C{False} if there are not that
        many left (then none are taken).  A clock that steps back refills
        nothing.
        """
        elapsed = max(0.0, now - self.at)
        self.at = now
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        if self.tokens < count:
            return False
        self.tokens -= count
        return True


__all__ = [
    "HTTP2",
    "PREFACE",
    "TokenBucket",
    "HeaderBlockWatch",
    "Http2Head",
    "MalformedBlock",
    "checkBlock",
    "PartialHead",
    "checkHead",
    "decoderBound",
    "headerListBound",
    "partialHead",
    "requestFields",
]
