# -*- test-case-name: tests.logs.test_accesslog -*-
"""
Access records and the observers that receive them.

An L{AccessRecord} is a frozen value made once per request, on the I/O
thread, when its response finished, or when its connection (or HTTP/2
stream) ended first; every access-log observer (any callable taking one
record) receives it.  The built-in Combined Log Format writer is one such
observer.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

import attrs


@attrs.frozen
class AccessRecord:
    """
    What happened to one request.

    @ivar timestamp: when the request started, in seconds since the epoch.
    @ivar method: the request method.
    @ivar target: the raw request-target.
    @ivar protocol: e.g. C{"HTTP/1.1"}.
    @ivar status: the response status code; for a response cut off before
        its status line was sent, L{CLIENT_CLOSED} (499, as nginx logs it)
        when the client went away, 503 when the graceful stop's deadline cut
        it off, 500 when the application failed.
    @ivar bytesSent: body bytes sent (written to the connection, up to the
        moment it ended for a response cut off).  For HTTP/2: handed to the
        stream, which flow control may still hold back.
    @ivar duration: seconds from the arrival of the request's head (for a
        request refused while its head arrived, see
        L{twsgi.server.site.rejectionRecord}) to the end of the response,
        or to the moment its connection ended.
    @ivar remoteAddr: the client address.
    @ivar remotePort: the client port, or C{None}.
    @ivar listener: the endpoint description the request arrived on.
    @ivar requestId: from C{X-Request-ID}, or generated.
    @ivar userAgent: the C{User-Agent} header, or C{""}.
    @ivar referer: the C{Referer} header, or C{""}.
    @ivar bytesReceived: request body bytes read.
    @ivar requestHeaders: the request headers as C{(name, value)} text pairs
        (latin-1), for templates' C{%({name}i)s}; empty when every observer
        is marked L{headerless} (decoding every header of every request
        costs the I/O thread).
    @ivar responseHeaders: the response headers, likewise, for
        C{%({name}o)s}.
    @ivar disconnected: C{True} if the connection (or the HTTP/2 stream)
        ended before the response was complete.
    @ivar cutOff: why the server itself ended it: C{"drain"} (the graceful
        stop's deadline), C{"error"} (the application failed after its
        status line was sent) or C{"send-timeout"} (the client read none of the
        response for C{--send-timeout}); C{""} when the client went
        away, or for a complete response.
    @ivar environ: the text values of the WSGI environ as the application
        left it, for C{{variable}e} template atoms; empty unless an observer
        reads it (see L{readsEnviron}), or the application never ran.
    """

    timestamp: float
    method: str
    target: str
    protocol: str
    status: int
    bytesSent: int
    duration: float
    remoteAddr: str
    remotePort: int | None
    listener: str
    requestId: str
    userAgent: str = ""
    referer: str = ""
    bytesReceived: int = 0
    requestHeaders: tuple[tuple[str, str], ...] = ()
    responseHeaders: tuple[tuple[str, str], ...] = ()
    disconnected: bool = False
    cutOff: str = ""
    environ: tuple[tuple[str, str], ...] = ()


_T = TypeVar("_T")


def headerless(observer: _T) -> _T:
    """
    Mark an access-log observer, or a formatter, that never reads a record's
    C{requestHeaders} and C{responseHeaders}: while every observer of a
    site is so marked, its records leave them empty.  Returns C{observer}.
    A method is marked for every instance.
    """
    observer.readsHeaders = False  # type: ignore[attr-defined]
    return observer


def readsHeaders(observer: object) -> bool:
    """
    Whether C{observer} (an access-log observer or formatter) may read a
    record's headers: C{True} unless it is marked L{headerless}.
    """
    return getattr(observer, "readsHeaders", True) is not False


def readsEnviron(observer: object) -> bool:
    """
    Whether C{observer} (an access-log observer or formatter) reads a
    record's C{environ}: only if it says so with a true C{readsEnviron}
    attribute (a template with C{{variable}e} atoms does), since copying
    the environ costs every request.
    """
    return getattr(observer, "readsEnviron", False) is True


CLIENT_CLOSED = 499
"""
The status of a request whose client went away before its status line was
sent: nginx's "499 Client Closed Request", which no response carries.
"""

AccessObserver = Callable[[AccessRecord], object]

# The lone surrogates U+DC80-U+DCFF that stand for the bytes of a request
# that are not UTF-8 (see wireText), each written as the byte, \xNN.
_NOT_UTF8 = {0xDC00 + i: f"\\x{i:02x}" for i in range(0x80, 0x100)}

# C0 controls, DEL, and the C1 controls U+0080-U+009F, which some readers
# take as line breaks (U+0085 is NEL; Python's str.splitlines() splits on
# it), as are the line and paragraph separators U+2028 and U+2029 (written
# as their JSON escapes); bytes that are not UTF-8; quotes and backslashes.
_ESCAPES = (
    {i: f"\\x{i:02x}" for i in (*range(0x20), *range(0x7F, 0xA0))}
    | {i: f"\\u{i:04x}" for i in (0x2028, 0x2029)}
    | _NOT_UTF8
    | {ord('"'): '\\"', ord("\\"): "\\\\"}
)


# Any character _ESCAPES maps: most text has none, and a search is far
# cheaper than a translation.
_ESCAPED = re.compile('[\x00-\x1f\x7f-\x9f"\\\\\u2028\u2029\udc80-\udcff]')


def escape(text: str) -> str:
    """
    Escape control characters, quotes and backslashes, so that text from a
    request can never forge or break a log line.
    """
    if _ESCAPED.search(text) is None:
        return text
    return text.translate(_ESCAPES)


def wireText(text: str) -> str:
    """
    Text from a request as the client meant it: the record holds each byte
    as one character (latin-1, as HTTP reads a field); read those bytes as
    UTF-8 instead, so that the bytes C3 BC are one C{ü}.  A byte that is
    not part of valid UTF-8 becomes a lone surrogate (C{surrogateescape}),
    which L{escape} writes as C{\\xNN}.  ASCII text (nearly all of it) is
    returned as it is.  Called in the I/O thread.
    """
    if text.isascii():
        return text
    try:
        raw = text.encode("latin-1")
    except UnicodeEncodeError:
        # Not from the wire (an application's value): already text.
        return text
    return raw.decode("utf-8", "surrogateescape")


def escapeBytes(value: bytes) -> str:
    """
    L{escape} for bytes from a request (its method or target, say) read as
    latin-1, as the server log shows them.  Called in any thread.
    """
    return escape(value.decode("latin-1"))


_MONTHS = (
    "Jan", "Feb", "Mar", "Apr", "May", "Jun",
    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
)  # fmt: skip


_lastTime: tuple[float, str] = (float("nan"), "")
"""
The second (as C{time.gmtime} rounds it: down) last formatted by
L{_clfTime}, and its text: records of one second share it.
"""


def _clfTime(timestamp: float) -> str:
    global _lastTime
    second = timestamp // 1
    last = _lastTime
    if last[0] == second:
        return last[1]
    t = time.gmtime(timestamp)
    text = "%02d/%s/%04d:%02d:%02d:%02d +0000" % (
        t.tm_mday,
        _MONTHS[t.tm_mon - 1],
        t.tm_year,
        t.tm_hour,
        t.tm_min,
        t.tm_sec,
    )
    _lastTime = (second, text)
    return text


def requestLine(record: AccessRecord) -> str:
    """
    The request line of a record, unescaped: C{-} for each part that is not
    known (a request rejected before its request line was read is just
    C{-}).
    """
    if not (record.method or record.target or record.protocol):
        return "-"
    return f"{record.method or '-'} {record.target or '-'} {record.protocol or '-'}"


@headerless
def formatCombined(record: AccessRecord) -> str:
    """
    Format a record in the Combined Log Format, followed by the duration in
    microseconds (Apache's C{%D})::

        127.0.0.1 - - [21/Nov/2026:16:00:00 +0000] "GET / HTTP/1.1" 200 13 "-" "curl/8" 512
    """
    return '%s - - [%s] "%s" %d %s "%s" "%s" %d' % (
        # Unquoted: a space would split the field (the address may come
        # from a proxy header one day).
        escape(record.remoteAddr).replace(" ", "\\x20") or "-",
        _clfTime(record.timestamp),
        escape(wireText(requestLine(record))),
        record.status,
        record.bytesSent or "-",
        escape(wireText(record.referer)) or "-",
        escape(wireText(record.userAgent)) or "-",
        int(record.duration * 1_000_000),
    )


class LineSink(Protocol):
    """
    Where a L{FileAccessLog} writes its lines: a text stream such as
    C{sys.stdout}, or a L{twsgi.logs.files.SharedLogFile}.
    """

    def write(self, data: str, /) -> object: ...

    def flush(self) -> None: ...


@attrs.define
class FileAccessLog:
    """
    An observer that writes one formatted line per record to a text file.

    @ivar file: the open text file or log file.
    @ivar formatter: turns a record into a line (without its newline).
    """

    file: LineSink
    formatter: Callable[[AccessRecord], str] = formatCombined

    @property
    def readsHeaders(self) -> bool:
        """
        Whether its formatter may read a record's headers.
        """
        return readsHeaders(self.formatter)

    @property
    def readsEnviron(self) -> bool:
        """
        Whether its formatter reads a record's C{environ}.
        """
        return readsEnviron(self.formatter)

    def __call__(self, record: AccessRecord) -> None:
        self.file.write(self.formatter(record) + "\n")
        self.file.flush()


def openAccessLog(
    where: str,
    formatter: Callable[[AccessRecord], str] = formatCombined,
    rotate: int | str | None = None,
) -> FileAccessLog | None:
    """
    Open the access log named by the C{--access-log} setting: a path, C{-}
    for standard output, or C{none}.

    @param formatter: makes a line of a record (C{--access-log-format}).
    @param rotate: C{None}, C{"daily"} or a size in bytes
        (C{--access-log-rotate}); a file can be reopened in any case.
    @raise OSError: if the file cannot be opened.
    """
    if where.lower() == "none":
        return None
    if where == "-":
        return FileAccessLog(sys.stdout, formatter)
    from twsgi.logs.files import openLogFile

    return FileAccessLog(openLogFile(where, rotate), formatter)


__all__ = [
    "AccessObserver",
    "AccessRecord",
    "CLIENT_CLOSED",
    "FileAccessLog",
    "LineSink",
    "escape",
    "escapeBytes",
    "formatCombined",
    "headerless",
    "openAccessLog",
    "readsEnviron",
    "readsHeaders",
    "requestLine",
    "wireText",
]
