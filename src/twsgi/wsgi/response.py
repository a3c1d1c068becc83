# -*- test-case-name: tests.wsgi.test_response -*-
"""
Pure: the PEP 3333 C{start_response} / C{write} / iterable / C{close} rules.

L{ResponseState} is a state machine with no I/O.  The bridge feeds it what
the application does (in a WSGI thread) and carries out what it answers.

The states::

    START --start_response--> STARTED --first body bytes or end--> COMMITTED
      ^                          |  ^                                  |  |
      +--------------------------+  +------------- takeBack -----------+  |
       start_response(exc_info)                                           |
       replaces status and headers           start_response(exc_info) ----+--> re-raise

A committed head is one handed to the server to send; the server takes it
back (L{ResponseState.takeBack}) while none of it went to the client yet,
to answer an error instead (PEP 3333: C{exc_info} replaces the headers
"if the HTTP headers have not been sent yet").

Status and header values are checked when C{start_response} is called, so a
bad one is never sent: RFC 9110 section 5.5 forbids CR, LF and NUL in field
values, and section 5.1 requires a field name to be a token.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import attrs

from twsgi.http.abnf import BAD_VALUE, STATUS, TOKEN
from twsgi.http.hopbyhop import HOP_BY_HOP

__all__ = [
    "NO_BODY_STATUSES",
    "BodyTooLong",
    "ExcInfo",
    "ResponseError",
    "ResponseHead",
    "ResponseState",
    "parseHeaders",
    "parseStatus",
]


ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
"""
The C{exc_info} of C{start_response}: what C{sys.exc_info()} returns while
an exception is handled.
"""


class ResponseError(Exception):
    """
    The application broke a PEP 3333 or HTTP rule; C{str()} says which.
    """


class BodyTooLong(ResponseError):
    """
    A body chunk goes past the application's C{Content-Length}.  None of it
    was accepted.  PEP 3333 lets a server raise this from C{write()}; of an
    iterated body, the server sends the part that fits and stops iterating.

    @ivar fits: the start of the chunk that fits within the length.
    """

    def __init__(self, contentLength: int, fits: bytes) -> None:
        ResponseError.__init__(
            self, f"the body is longer than its Content-Length ({contentLength})"
        )
        self.fits = fits


@attrs.frozen
class ResponseHead:
    """
    What goes on the status line and in the header block.

    @ivar code: the status code.
    @ivar reason: the reason phrase, checked to be free of control bytes.
    @ivar headers: C{(name, value)} pairs as bytes, in the application's
        order, without hop-by-hop fields.
    @ivar contentLength: the application's C{Content-Length}, or C{None}.
    @ivar close: the application asked for C{Connection: close}.
    """

    code: int
    reason: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    contentLength: int | None
    close: bool = False


_NO_START = "the application returned or wrote a body before calling start_response"

# RFC 9110 section 15: these never have content; nor does a response to HEAD.
NO_BODY_STATUSES = frozenset({204, 304}) | frozenset(range(100, 200))


def _native(value: object, what: str) -> bytes:
    """
    Encode a native string as latin-1, as PEP 3333 requires of status and
    header text.  A subclass of C{str} (Django's C{SafeString}) is one.
    """
    if not isinstance(value, str):
        raise ResponseError(f"{what} must be a str, not {type(value).__name__}")
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        raise ResponseError(f"{what} {value!r} is not latin-1")


_CACHE_SIZE = 512
"""
The most status lines, and header fields, whose checked form is kept (see
L{_statuses} and L{_fields}); a full cache is emptied, so values that change
with every response (a cookie, a length) cannot grow it.
"""

_statuses: dict[str, tuple[int, bytes]] = {}
"""
Status strings that passed L{parseStatus}, and its answer: an application
sends the same few again and again.  Read and written by WSGI threads with
single dictionary operations, atomic under the GIL.
"""

_fields: dict[tuple[str, str], tuple[bytes, bytes, bytes]] = {}
"""
Header fields C{(name, value)} that passed the checks of L{parseHeaders},
with their name and value as bytes and their name in lower case.  Used like
L{_statuses}.
"""


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[key] = value


def parseStatus(status: object) -> tuple[int, bytes]:
    """
    Check a WSGI status string: three digits, then a space and a reason
    phrase with no control characters.  A 1xx status is refused: it is an
    interim response (RFC 9110 section 15.2), and a client given one as the
    only answer would wait for the final one forever.

    @raise ResponseError: if it is malformed.
    """
    if type(status) is str:
        known = _statuses.get(status)
        if known is not None:
            return known
    raw = _native(status, "status")
    match = STATUS.fullmatch(raw)
    if match is None:
        raise ResponseError(
            f"status {status!r} is not three digits and a reason phrase "
            "free of control characters"
        )
    code = int(match.group(1))
    if code < 200:
        raise ResponseError(
            f"status {status!r} is an interim (1xx) response, not a final one"
        )
    parsed = code, match.group(2) or b""
    _remember(_statuses, status, parsed)
    return parsed


def parseHeaders(
    headers: object,
) -> tuple[tuple[tuple[bytes, bytes], ...], int | None, bool]:
    """
    Check a WSGI header list.

    @return: the headers as bytes without hop-by-hop fields, the
        C{Content-Length} or C{None}, and whether the application asked for
        C{Connection: close}.
    @raise ResponseError: if a header is malformed.
    """
    if type(headers) is not list:
        raise ResponseError(
            f"response headers must be a list, not {type(headers).__name__}"
        )
    result = []
    contentLength = None
    close = False
    for item in headers:
        if type(item) is not tuple or len(item) != 2:
            raise ResponseError(f"header {item!r} is not a (name, value) tuple")
        known = (
            _fields.get(item) if type(item[0]) is str and type(item[1]) is str else None
        )
        if known is not None:
            name, value, lowered = known
        else:
            name, value, lowered = _checkField(item)
        if lowered in HOP_BY_HOP:
            if lowered == b"connection" and b"close" in value.lower():
                close = True
            continue
        if lowered == b"content-length":
            stripped = value.strip()
            if not stripped.isdigit() or (
                contentLength is not None and int(stripped) != contentLength
            ):
                raise ResponseError(f"Content-Length {item[1]!r} is not valid")
            if contentLength is not None:
                continue  # the same length again: send it once
            contentLength = int(stripped)
        result.append((name, value.strip()))
    return tuple(result), contentLength, close


def _checkField(item: tuple[object, ...]) -> tuple[bytes, bytes, bytes]:
    """
    Check one header field of a WSGI header list: its name and value as
    bytes, and its name in lower case.

    @raise ResponseError: if it is malformed.
    """
    name = _native(item[0], "header name")
    value = _native(item[1], f"value of header {item[0]!r}")
    if not TOKEN.fullmatch(name):
        raise ResponseError(f"header name {item[0]!r} is not an HTTP token")
    if BAD_VALUE.search(value):
        raise ResponseError(
            f"value of header {item[0]!r} contains a control character "
            "(CR, LF and NUL are never sent)"
        )
    checked = name, value, name.lower()
    _remember(_fields, item, checked)
    return checked


class ResponseState:
    """
    One response's progress through PEP 3333's rules.  Called in a WSGI
    thread only.

    @ivar head: the checked status and headers, once C{start_response} was
        called; C{None} before.
    @ivar committed: C{True} once the head was handed to the server to send;
        after that a new status is impossible.
    @ivar bodyAllowed: C{False} for HEAD and for status codes without content.
    @ivar sent: the number of body bytes accepted so far.
    """

    def __init__(self, method: bytes) -> None:
        self._isHead = method == b"HEAD"
        self.head: ResponseHead | None = None
        self.committed = False
        self.bodyAllowed = not self._isHead
        self.sent = 0

    def startResponse(
        self, status: object, headers: object, excInfo: ExcInfo | None = None
    ) -> None:
        """
        Record C{start_response(status, headers, exc_info)}.

        @raise ResponseError: for a second call without C{exc_info}, or for a
            malformed status or header.
        @raise BaseException: C{exc_info}'s exception, when the head was
            already committed (PEP 3333: "start_response must not be called
            with exc_info after headers are sent, unless re-raising").
        """
        if excInfo is not None:
            try:
                if self.committed:
                    raise excInfo[1].with_traceback(excInfo[2])
            finally:
                excInfo = None
        elif self.head is not None:
            raise ResponseError(
                "start_response was called a second time without exc_info"
            )
        code, reason = parseStatus(status)
        parsed, contentLength, close = parseHeaders(headers)
        if code == 204 and contentLength is not None:
            # RFC 9110 section 8.6: never a Content-Length on a 204.
            parsed = tuple(h for h in parsed if h[0].lower() != b"content-length")
            contentLength = None
        self.head = ResponseHead(code, reason, parsed, contentLength, close)
        self.bodyAllowed = not self._isHead and code not in NO_BODY_STATUSES

    def commit(self, length: int | None = None) -> ResponseHead:
        """
        Fix the head: it is about to be sent.

        @param length: the length of the whole body when the server knows it
            (a list or tuple body, or a file); a C{Content-Length} is then
            added if the application gave none.
        @raise ResponseError: if C{start_response} was never called.
        """
        head = self.head
        if head is None:
            raise ResponseError(_NO_START)
        self.committed = True
        if (
            length is not None
            and head.contentLength is None
            and head.code not in NO_BODY_STATUSES
        ):
            head = self.head = attrs.evolve(
                head,
                headers=head.headers + ((b"Content-Length", b"%d" % length),),
                contentLength=length,
            )
        return head

    def takeBack(self) -> None:
        """
        The server took the committed head back before any of it was sent:
        a C{start_response} with C{exc_info} may replace it, and the body
        starts over (none of it was sent either).
        """
        self.committed = False
        self.sent = 0

    def accept(self, data: object) -> bytes:
        """
        Check one body chunk from the iterable or the C{write()} callable and
        return the bytes to send: empty for HEAD and bodiless statuses.

        @raise ResponseError: if C{data} is not bytes.
        @raise BodyTooLong: if C{data} goes past the declared
            C{Content-Length}; then none of it is accepted.
        """
        if type(data) is not bytes:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise ResponseError(
                    f"the body must be bytes, not {type(data).__name__}"
                )
            data = bytes(data)
        head = self.head
        if head is None:
            raise ResponseError(_NO_START)
        if not self.bodyAllowed:
            return b""
        sent = self.sent + len(data)
        if head.contentLength is not None and sent > head.contentLength:
            raise BodyTooLong(
                head.contentLength, data[: head.contentLength - self.sent]
            )
        self.sent = sent
        return data

    def shortfall(self) -> int:
        """
        How many bytes the body fell short of its C{Content-Length}: if not
        0 at the end, the connection must be closed, since the client would
        otherwise wait for bytes that never come.
        """
        head = self.head
        if head is None or head.contentLength is None or not self.bodyAllowed:
            return 0
        return max(0, head.contentLength - self.sent)
