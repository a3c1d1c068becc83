# -*- test-case-name: tests.http.test_parse, tests.http.test_parse_corpus -*-
"""
Pure, strict HTTP/1.1 request framing (RFC 9112).

C{twisted.web}'s own parser is lenient where request smuggling lives: it
waits on a bare LF, folds obs-fold lines, accepts a C{Transfer-Encoding}
on HTTP/1.0 and more.  Nothing here does I/O: L{HeadParser} takes bytes and
returns a L{RequestHead} or a L{FramingError}; L{ChunkedDecoder} takes bytes
and returns body data.  L{twsgi.server.http1} carries the decisions out on a
connection.

Every rejection is a L{FramingError} carrying the status to answer with
(400, or 501 for a transfer coding we do not implement, 505 for a version we
do not speak, 414 and 431 for the limits in L{twsgi.http.limits.Limits}).  After
one, the connection is closed and no later byte is parsed.
"""

from __future__ import annotations

import enum
import re

import attrs

from twsgi.http.abnf import BAD_VALUE, HOST, TARGET_CHARS, TCHAR, TOKEN
from twsgi.http.limits import Limits
from twsgi.http.shortage import retryAfterFields

# RFC 9112 section 3: request-line = method SP request-target SP HTTP-version.
# The target is any run of visible bytes (obs-text allowed, as servers do);
# its form is checked below.  HTTP/2's :method and :path are checked with
# TOKEN and TARGET (see twsgi.http.h2head.checkHead).
_REQUEST_LINE = re.compile(
    rb"([" + TCHAR + rb"]+) (" + TARGET_CHARS + rb") (HTTP/[0-9]\.[0-9])\Z"
)

# BAD_VALUE but for CR and LF, over a whole head whose line endings are known
# to be CRLF (HeadParser's one-pass path).
_BAD_HEAD_BYTE = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# RFC 9112 section 7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF;
# chunk-size = 1*HEXDIG, and nothing else before it.
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})(.*)\Z", re.S)
# chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ), ext-val a
# token or a quoted-string: only visible bytes and whitespace.
_CHUNK_EXT = re.compile(rb"(?:[ \t]*;[ \t]*[" + TCHAR + rb"]+"
                        rb"(?:[ \t]*=[ \t]*(?:[" + TCHAR + rb"]+|"
                        rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"))?)*\Z')  # fmt: skip

_MAX_CHUNK_LINE = 4096
# RFC 9112 section 7.1.1: "A server ought to limit the total length of chunk
# extensions received in a request".  The body limit counts chunk data only:
# without this, a client could send endless extensions, 4 KiB of them for
# each byte of data (as in Node.js, CVE-2024-22019, whose bound this is).
_MAX_CHUNK_EXTENSIONS = 16 * 1024
_MAX_LEADING_EMPTY_LINES = 8
_SUPPORTED_VERSIONS = (b"HTTP/1.1", b"HTTP/1.0")

_REASONS = {
    400: b"Bad Request",
    408: b"Request Timeout",
    413: b"Content Too Large",
    414: b"URI Too Long",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    501: b"Not Implemented",
    503: b"Service Unavailable",
    505: b"HTTP Version Not Supported",
    507: b"Insufficient Storage",
}


class FramingError(Exception):
    """
    The request cannot be accepted; answer with C{status} and close.

    @ivar status: the response status code.
    @ivar reason: a short text for the log and the response body.
    @ivar answered: C{False} if no response was sent (an HTTP/2 stream
        reset for a malformed request): its access record shows no bytes
        sent.
    """

    def __init__(self, status: int, reason: str, answered: bool = True) -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason
        self.answered = answered

    def __str__(self) -> str:
        return f"{self.status}: {self.reason}"


def errorBody(status: int, reason: str = "") -> bytes:
    """
    The body of the error response for C{status} and C{reason}.
    """
    phrase = _REASONS.get(status, b"Error")
    body = phrase + (b": " + reason.encode("ascii", "replace") if reason else b"")
    return body + b"\n"


def errorResponse(status: int, reason: str = "") -> bytes:
    """
    The bytes of a complete error response that closes the connection (a
    503 with C{Retry-After}).

    @param status: the status code.
    @param reason: a line of text for the body.
    """
    phrase = _REASONS.get(status, b"Error")
    body = errorBody(status, reason)
    extra = b"".join(b"%s: %s\r\n" % field for field in retryAfterFields(status))
    return (
        b"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n%s\r\n%s"
        % (status, phrase, len(body), extra, body)
    )


@attrs.frozen
class RequestHead:
    """
    A request line and header section that passed every check.

    @ivar method: the method token.
    @ivar target: the request-target, as received.
    @ivar version: C{b"HTTP/1.1"} or C{b"HTTP/1.0"}.
    @ivar headers: C{(name, value)} pairs in the order received; values have
        their surrounding whitespace removed.
    @ivar contentLength: the body length from C{Content-Length}, C{None} for
        a chunked body, 0 when there is no body.
    @ivar persistent: whether the connection may carry another request after
        this one (RFC 9112 section 9.3).
    @ivar expectContinue: whether the client sent C{Expect: 100-continue}.
    """

    method: bytes
    target: bytes
    version: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    contentLength: int | None
    persistent: bool
    expectContinue: bool


MEMO_SIZE = 2048
"""
The longest request head (without its last CRLF CRLF) that L{HeadParser}
remembers to read again without checking it: what most clients send, and
little to keep per idle keep-alive connection.
"""

_NOTHING_READ = RequestHead(b"", b"", b"", (), 0, False, False)
"""
What L{HeadParser} has read whole before its first head: nothing, no head
matches it.
"""


def _splitField(line: bytes) -> tuple[bytes, bytes] | None:
    """
    RFC 9112 section 5: C{field-line = field-name ":" OWS field-value OWS},
    with no whitespace between the name and the colon (section 5.1).

    Split without a regular expression: one whose value part had to give
    back the whitespace after it (C{(.*?)[ \\t]*\\Z}) took time quadratic
    in the length of a line of spaces with a byte after them, on the
    reactor thread.

    @return: the name and the value without the whitespace around it, or
        C{None} if C{line} is no field line.
    """
    name, colon, value = line.partition(b":")
    if not colon or TOKEN.fullmatch(name) is None:
        return None
    return name, value.strip(b" \t")


def checkTarget(method: bytes, target: bytes) -> None:
    """
    RFC 9112 section 3.2: origin-form, absolute-form, or the asterisk form
    for C{OPTIONS}.  C{CONNECT} (the authority form) is not served.  None
    of them has a fragment: a C{#} is refused, not passed on in
    C{PATH_INFO} (nginx routes C{/a#/../admin} as C{/a} and forwards it
    whole).
    """
    if method == b"CONNECT":
        raise FramingError(400, "CONNECT is not served")
    if b"#" in target:
        raise FramingError(400, "a fragment (#) in the request target")
    if target.startswith(b"/"):
        return
    if target == b"*":
        if method != b"OPTIONS":
            raise FramingError(400, "the asterisk form is only for OPTIONS")
        return
    lowered = target[:8].lower()
    if lowered.startswith(b"http://") or lowered.startswith(b"https://"):
        rest = target.split(b"://", 1)[1]
        cut = len(rest)
        for mark in (b"/", b"?"):
            index = rest.find(mark)
            if index != -1:
                cut = min(cut, index)
        authority = rest[:cut]
        # RFC 9110 section 4.2.4: userinfo in an http(s) URI is an error.
        if not authority or b"@" in authority or not HOST.match(authority):
            raise FramingError(400, "invalid authority in the request target")
        return
    raise FramingError(400, "invalid request target")


def parseContentLength(values: list[bytes]) -> int:
    """
    RFC 9112 section 6.3: one C{Content-Length}, one run of digits.
    """
    if len(values) != 1:
        raise FramingError(400, "more than one Content-Length")
    value = values[0]
    if not value.isdigit() or not value.isascii() or len(value) > 18:
        raise FramingError(400, "invalid Content-Length")
    return int(value)


def _checkTransferEncoding(values: list[bytes], version: bytes) -> None:
    """
    RFC 9112 section 6.1 and 6.3: chunked must be the final coding, once.
    """
    if version != b"HTTP/1.1":
        raise FramingError(400, "Transfer-Encoding on HTTP/1.0")
    if len(values) != 1:
        raise FramingError(400, "Transfer-Encoding repeated")
    codings = [c.strip(b" \t").lower() for c in values[0].split(b",")]
    for coding in codings:
        if not TOKEN.fullmatch(coding):
            raise FramingError(400, "invalid Transfer-Encoding")
    if codings[-1] != b"chunked" or codings.count(b"chunked") != 1:
        raise FramingError(400, "chunked is not the final transfer coding")
    if len(codings) > 1:
        raise FramingError(501, "transfer coding not implemented")


def _connectionTokens(values: list[bytes]) -> set[bytes]:
    return {
        token.strip(b" \t").lower() for value in values for token in value.split(b",")
    }


def _checkRequestLine(line: bytes) -> tuple[bytes, bytes, bytes]:
    """
    Check a request line (RFC 9112 section 3): its form, its version, and
    the form of its target (L{checkTarget}).

    @return: the method, the target and the version.
    @raise FramingError: if the line is not acceptable.
    """
    match = _REQUEST_LINE.match(line)
    if match is None:
        raise FramingError(400, "invalid request line")
    method, target, version = match.groups()
    if version not in _SUPPORTED_VERSIONS:
        raise FramingError(505, "only HTTP/1.0 and HTTP/1.1 are served")
    checkTarget(method, target)
    return method, target, version


def interpretHead(requestLine: bytes, fields: list[tuple[bytes, bytes]]) -> RequestHead:
    """
    Check a request line and its field lines (already split and free of bad
    line endings) and decide the message framing.

    @raise FramingError: if the request is not acceptable.
    """
    method, target, version = _checkRequestLine(requestLine)

    byName: dict[bytes, list[bytes]] = {}
    for name, value in fields:
        byName.setdefault(name.lower(), []).append(value)

    # RFC 9112 section 3.2: exactly one valid Host in HTTP/1.1, at most one
    # in HTTP/1.0.
    hosts = byName.get(b"host", ())
    if len(hosts) > 1 or (version == b"HTTP/1.1" and not hosts):
        raise FramingError(400, "HTTP/1.1 needs exactly one Host")
    if hosts and not HOST.match(hosts[0]):
        raise FramingError(400, "invalid Host")

    transferEncoding = byName.get(b"transfer-encoding")
    contentLength = byName.get(b"content-length")
    length: int | None = 0
    if transferEncoding is not None:
        if contentLength is not None:
            raise FramingError(400, "both Content-Length and Transfer-Encoding")
        _checkTransferEncoding(transferEncoding, version)
        length = None
    elif contentLength is not None:
        length = parseContentLength(contentLength)

    connection = byName.get(b"connection")
    if version == b"HTTP/1.1":
        persistent = connection is None or b"close" not in _connectionTokens(connection)
    else:
        # HTTP/1.0 keep-alive is not offered: the response may not carry a
        # length.
        persistent = False
    expect = byName.get(b"expect")
    expectContinue = (
        expect is not None
        and version == b"HTTP/1.1"
        and any(value.lower() == b"100-continue" for value in expect)
    )
    return RequestHead(
        method=method,
        target=target,
        version=version,
        headers=tuple(fields),
        contentLength=length,
        persistent=persistent,
        expectContinue=expectContinue,
    )


class HeadParser:
    """
    Collect one request line and header section, line by line, and check
    each line as soon as it is complete.

    Lines must end in CRLF.  A bare LF or a bare CR is refused as soon as it
    arrives, not when the header section ends, so that a client relying on
    another server's leniency is answered at once.

    One parser reads the requests of one connection, one after another
    (L{next}).  A head that arrives whole and is byte for byte the last one
    read whole (a keep-alive client asking again, as a rule) is the same
    L{RequestHead}, and is not checked again: the checks depend on nothing
    but the bytes and the limits.  Only a head of at most L{MEMO_SIZE} bytes
    is remembered, so that an idle connection holds little.
    """

    _buffer: bytearray
    _position: int
    _requestLine: bytes | None
    _fields: list[tuple[bytes, bytes]]
    _leadingEmpty: int
    _headerBytes: int

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        # The last head read whole (see _whole): its bytes, and what reading
        # them left.
        self._last: tuple[
            bytes, bytes, tuple[tuple[bytes, bytes], ...], int, RequestHead
        ] = (b"", b"", (), 0, _NOTHING_READ)
        self.next()

    def next(self) -> None:
        """
        Forget the request read, to read the next one of the connection.
        """
        self._buffer = bytearray()
        self._position = 0
        self._requestLine = None
        self._fields = []
        self._leadingEmpty = 0
        self._headerBytes = 0

    @property
    def requestLine(self) -> bytes | None:
        """
        The request line, once it was read whole (valid or not), else
        C{None}.
        """
        return self._requestLine

    @property
    def fields(self) -> tuple[tuple[bytes, bytes], ...]:
        """
        The field lines that passed their checks so far.
        """
        return tuple(self._fields)

    @property
    def started(self) -> bool:
        """
        Whether any byte of this request has arrived (empty lines before the
        request line do not count).
        """
        return self._requestLine is not None or len(self._buffer) > self._position

    def feed(self, data: bytes) -> tuple[RequestHead, bytes] | None:
        """
        Take more bytes.

        @return: C{None} if the head is not complete yet, or the head and the
            bytes that followed it.
        @raise FramingError: at the first byte that makes the request bad.
        """
        buffer = self._buffer
        if not buffer and self._requestLine is None:
            whole = self._whole(data)
            if whole is not None:
                return whole
        buffer += data
        limits = self.limits
        while True:
            start = self._position
            end = buffer.find(b"\n", start)
            if end == -1:
                self._checkPartial(buffer, start)
                return None
            if end == start or buffer[end - 1] != 0x0D:
                raise FramingError(400, "bare LF as a line ending")
            line = bytes(buffer[start : end - 1])
            if b"\r" in line:
                raise FramingError(400, "bare CR in the request head")
            self._position = end + 1
            if self._requestLine is None:
                if not line:
                    # RFC 9112 section 2.2: ignore at least one empty line
                    # before the request line.
                    self._leadingEmpty += 1
                    if self._leadingEmpty > _MAX_LEADING_EMPTY_LINES:
                        raise FramingError(400, "empty lines instead of a request")
                    continue
                if len(line) > limits.maxRequestLine:
                    raise FramingError(414, "request line too long")
                self._requestLine = line
                # Refused as soon as it is complete: a client that sent a
                # request line of HTTP/0.9 ("GET /"), or some other
                # protocol's first line, waits for no header section.
                _checkRequestLine(line)
                continue
            if not line:
                head = interpretHead(self._requestLine, self._fields)
                rest = bytes(buffer[self._position :])
                return head, rest
            self._field(line)

    def _whole(self, data: bytes) -> tuple[RequestHead, bytes] | None:
        """
        Read a head that arrived whole in C{data}, the first bytes of this
        request, in one pass: what a client sends as a rule.  Every check of
        the line-by-line path is made; at the first that fails, or when
        C{data} is anything but a plain head (leading empty lines, a bare CR
        or LF, an incomplete head), nothing is kept and C{None} says to take
        the line-by-line path, which answers exactly as it always does.
        """
        end = data.find(b"\r\n\r\n")
        if end <= 0 or data.startswith(b"\r\n"):
            return None
        raw, lastLine, lastFields, lastBytes, known = self._last
        if end == len(raw) and data.startswith(raw):
            self._requestLine = lastLine
            self._fields = list(lastFields)
            self._headerBytes = lastBytes
            return known, data[end + 4 :]
        head = data[:end]
        lines = head.split(b"\r\n")
        crlfs = len(lines) - 1
        if (
            head.count(b"\r") != crlfs
            or head.count(b"\n") != crlfs
            or _BAD_HEAD_BYTE.search(head) is not None
        ):
            return None
        limits = self.limits
        requestLine = lines[0]
        headerBytes = end - len(requestLine)
        if (
            len(requestLine) > limits.maxRequestLine
            or headerBytes > limits.maxHeaderBytes
            or crlfs > limits.maxHeaderCount
        ):
            return None
        fields = []
        maxField = limits.maxHeaderField
        for index in range(1, len(lines)):
            line = lines[index]
            field = _splitField(line)
            if field is None or len(line) > maxField:
                return None
            fields.append(field)
        self._requestLine = requestLine
        self._fields = fields
        self._headerBytes = headerBytes
        known = interpretHead(requestLine, fields)
        if end <= MEMO_SIZE:
            self._last = (head, requestLine, known.headers, headerBytes, known)
        return known, data[end + 4 :]

    def _field(self, line: bytes) -> None:
        limits = self.limits
        self._headerBytes += len(line) + 2
        if self._headerBytes > limits.maxHeaderBytes:
            raise FramingError(431, "header section too large")
        if len(line) > limits.maxHeaderField:
            raise FramingError(431, "header field too large")
        if line[0] in b" \t":
            # RFC 9112 section 5.2: obs-fold, and whitespace before the first
            # field line (section 2.2), are refused.
            raise FramingError(400, "obs-fold or whitespace before a field")
        field = _splitField(line)
        if field is None:
            raise FramingError(400, "invalid field line")
        if BAD_VALUE.search(field[1]):
            raise FramingError(400, "control byte in a field value")
        self._fields.append(field)
        if len(self._fields) > limits.maxHeaderCount:
            raise FramingError(431, "too many header fields")

    def _checkPartial(self, buffer: bytearray, start: int) -> None:
        """
        Check an incomplete line against the limits and for a bare CR.
        """
        partial = len(buffer) - start
        cr = buffer.find(b"\r", start, len(buffer) - 1)
        if cr != -1:
            raise FramingError(400, "bare CR in the request head")
        if self._requestLine is None:
            if partial > self.limits.maxRequestLine + 1:
                raise FramingError(414, "request line too long")
        else:
            if partial > self.limits.maxHeaderField + 1:
                raise FramingError(431, "header field too large")
            if self._headerBytes + partial > self.limits.maxHeaderBytes:
                raise FramingError(431, "header section too large")


def splitRequestLine(line: bytes | None) -> tuple[bytes, bytes, bytes]:
    """
    The method, target and version of a request line, as far as it splits on
    spaces (the version keeps what follows a third space); C{b""} for each
    part that is missing, and all three for an unknown line.  For the
    records of rejected requests, valid or not.
    """
    if not line:
        return b"", b"", b""
    parts = line.split(b" ", 2)
    parts += [b""] * (3 - len(parts))
    return parts[0], parts[1], parts[2]


class ChunkState(enum.Enum):
    """
    Where a L{ChunkedDecoder} is in a chunked body.
    """

    SIZE = enum.auto()
    """A chunk-size line (with its extensions) comes next."""
    DATA = enum.auto()
    """The data of a chunk comes next."""
    CRLF = enum.auto()
    """The CRLF after a chunk's data comes next."""
    TRAILER = enum.auto()
    """After the last chunk: trailer field lines, then an empty line."""
    DONE = enum.auto()
    """The body is complete."""


class ChunkedDecoder:
    """
    A strict decoder of the chunked transfer coding (RFC 9112 section 7.1).

    Trailer fields are checked like header fields and then dropped.

    @ivar state: where the decoder is in the body, a L{ChunkState}.
    @ivar received: the bytes of chunk data announced so far.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._buffer = bytearray()
        self.state = ChunkState.SIZE
        self._remaining = 0
        self._trailerBytes = 0
        self._extensionBytes = 0
        self.received = 0

    def feed(self, data: bytes) -> tuple[list[bytes], bytes | None]:
        """
        Take more bytes of the body.

        @return: the decoded data, and C{None} while the body goes on or the
            bytes after the body once it is complete.
        @raise FramingError: at the first bad byte, or when the decoded body
            exceeds the body limit (413).
        """
        buffer = self._buffer
        buffer += data
        out: list[bytes] = []
        while buffer:
            state = self.state
            if state is ChunkState.DATA:
                take = min(self._remaining, len(buffer))
                out.append(bytes(buffer[:take]))
                del buffer[:take]
                self._remaining -= take
                if self._remaining == 0:
                    self.state = ChunkState.CRLF
                continue
            if state is ChunkState.CRLF:
                if len(buffer) < 2:
                    if buffer[:1] != b"\r":
                        raise FramingError(400, "chunk data not followed by CRLF")
                    break
                if buffer[:2] != b"\r\n":
                    raise FramingError(400, "chunk data not followed by CRLF")
                del buffer[:2]
                self.state = ChunkState.SIZE
                continue
            line = self._line(buffer)
            if line is None:
                break
            if state is ChunkState.SIZE:
                self._size(line)
            else:
                if not line:
                    rest = bytes(buffer)
                    buffer.clear()
                    self.state = ChunkState.DONE
                    return out, rest
                self._trailer(line)
        return out, None

    def _line(self, buffer: bytearray) -> bytes | None:
        end = buffer.find(b"\n")
        limit = (
            _MAX_CHUNK_LINE
            if self.state is ChunkState.SIZE
            else self.limits.maxHeaderField
        )
        if end == -1:
            if len(buffer) > limit:
                raise FramingError(400, "chunk line too long")
            if buffer.find(b"\r", 0, len(buffer) - 1) != -1:
                raise FramingError(400, "bare CR in chunked framing")
            return None
        if end == 0 or buffer[end - 1] != 0x0D:
            raise FramingError(400, "bare LF in chunked framing")
        line = bytes(buffer[: end - 1])
        del buffer[: end + 1]
        if b"\r" in line:
            raise FramingError(400, "bare CR in chunked framing")
        if len(line) > limit:
            raise FramingError(400, "chunk line too long")
        return line

    def _size(self, line: bytes) -> None:
        match = _CHUNK_SIZE.match(line)
        if match is None or not _CHUNK_EXT.match(match.group(2)):
            raise FramingError(400, "invalid chunk size line")
        self._extensionBytes += len(match.group(2))
        if self._extensionBytes > _MAX_CHUNK_EXTENSIONS:
            raise FramingError(400, "chunk extensions too long in total")
        size = int(match.group(1), 16)
        self.received += size
        if self.received > self.limits.maxBody:
            raise FramingError(413, "request body too large")
        if size == 0:
            self.state = ChunkState.TRAILER
        else:
            self._remaining = size
            self.state = ChunkState.DATA

    def _trailer(self, line: bytes) -> None:
        self._trailerBytes += len(line) + 2
        if self._trailerBytes > self.limits.maxHeaderBytes:
            raise FramingError(431, "trailer section too large")
        field = _splitField(line)
        if field is None or BAD_VALUE.search(field[1]):
            raise FramingError(400, "invalid trailer field")


__all__ = [
    "ChunkState",
    "ChunkedDecoder",
    "FramingError",
    "HeadParser",
    "MEMO_SIZE",
    "RequestHead",
    "checkTarget",
    "errorBody",
    "errorResponse",
    "interpretHead",
    "parseContentLength",
    "splitRequestLine",
]
