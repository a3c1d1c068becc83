# -*- test-case-name: tests.wsgi.test_environ -*-
"""
Pure: turn the facts of one HTTP request into a PEP 3333 WSGI environ.

Nothing here touches a reactor, a thread or a C{twisted.web} request: the
bridge takes the facts once, on the I/O thread, into a frozen L{RequestFacts},
and L{buildEnviron} runs in a WSGI thread.

PEP 3333, "Unicode Issues": every key and value of the environ that is a
string is a native string, and bytes from the wire are decoded as ISO-8859-1
(latin-1) so that the application can recover them exactly.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import IO, Any, Protocol
from urllib.parse import unquote_to_bytes

import attrs

from twsgi.http.abnf import TCHAR


@attrs.frozen
class RequestFacts:
    """
    What the server knows about one request, taken on the I/O thread.

    @ivar method: the request method as received, e.g. C{b"GET"}.
    @ivar target: the raw request-target, e.g. C{b"/a%20b?x=1"} or an
        absolute-form C{b"http://example.com/a?x=1"} (RFC 9112 section 3.2).
    @ivar version: the HTTP version, e.g. C{b"HTTP/1.1"}.
    @ivar headers: the request headers as C{(name, value)} pairs, in the order
        received; a name may repeat.
    @ivar remoteAddr: the client's address (C{""} when unknown, as on a UNIX
        socket).
    @ivar remotePort: the client's port, or C{None}.
    @ivar serverName: the local address the request arrived on.
    @ivar serverPort: the local port, or C{None}.
    @ivar scheme: C{"http"} or C{"https"}.
    @ivar scriptName: the URL-decoded mount point of the application, C{""}
        at the root; it is removed from the front of C{PATH_INFO}.
    @ivar contentLength: the number of body bytes the server has read and
        will hand to the application through C{wsgi.input}.
    @ivar extra: further environ entries (TLS client certificate details,
        for example), already native strings.
    """

    method: bytes
    target: bytes
    version: bytes = b"HTTP/1.1"
    headers: tuple[tuple[bytes, bytes], ...] = ()
    remoteAddr: str = ""
    remotePort: int | None = None
    serverName: str = "localhost"
    serverPort: int | None = None
    scheme: str = "http"
    scriptName: str = ""
    contentLength: int = 0
    extra: Mapping[str, str] = attrs.field(factory=dict)


# RFC 9110 section 5.3: repeated field lines are combined with ", ".  The
# Cookie field is the exception: RFC 9113 section 8.2.3 and RFC 6265 section
# 5.4 join cookie-pairs with "; ".
_SEPARATORS = {b"cookie": b"; "}

# Request headers that PEP 3333 (via CGI) places without the HTTP_ prefix.
_UNPREFIXED = {b"content-type": "CONTENT_TYPE", b"content-length": None}

_HEADER_KEYS: dict[bytes, str] = {}

# RFC 9110 section 5.6.2: a field name is a token.  "_" is a tchar, but is
# left out here: see L{_headerKey}.
_NAME = re.compile(rb"[" + TCHAR.replace(b"_", b"") + rb"]+")


def _headerKey(name: bytes) -> str | None:
    """
    The environ key for a header name, or C{None} for a name to drop.

    A name containing C{_} is dropped: once dashes become underscores it
    could not be told from the dash form, so C{X_Forwarded_For} could shadow
    C{X-Forwarded-For} (the same rule as nginx's and gunicorn's).  So is a
    name that is not a token, which the HTTP parser should have refused.
    """
    key = _HEADER_KEYS.get(name)
    if key is None:
        if not _NAME.fullmatch(name):
            return None
        lowered = name.lower()
        if lowered in _UNPREFIXED:
            return _UNPREFIXED[lowered]
        key = "HTTP_" + name.upper().replace(b"-", b"_").decode("ascii")
        if len(_HEADER_KEYS) < 1024:
            _HEADER_KEYS[name] = key
    return key


def splitTarget(target: bytes) -> tuple[bytes | None, bytes, bytes]:
    """
    Split a request-target into authority, path and query.

    @return: C{(authority or None, path, query)}; the authority is given only
        for the absolute form (RFC 9112 section 3.2.2), and then takes the
        place of the C{Host} header.
    """
    if target[:1] == b"/":
        # The origin form, as a rule.
        path, _, query = target.partition(b"?")
        return None, path, query
    authority = None
    lowered = target[:8].lower()
    if lowered.startswith(b"http://") or lowered.startswith(b"https://"):
        rest = target.split(b"://", 1)[1]
        slash = rest.find(b"/")
        question = rest.find(b"?")
        cut = min(i for i in (slash, question, len(rest)) if i >= 0)
        authority, target = rest[:cut], rest[cut:]
        if not target.startswith(b"/"):
            target = b"/" + target
    path, _, query = target.partition(b"?")
    return authority, path, query


class ClientDisconnected(OSError):
    """
    The client went away while the request was served: no response will
    reach anyone.

    twsgi hands an application its request only once the whole body has
    arrived, and C{wsgi.input} stays readable after the client leaves, so
    twsgi itself never raises this.  An application, a middleware or a
    framework that reads a body of its own (or streams one) may: if it
    escapes the application (or is the cause of what escapes) after the
    client left, the server logs one line, sends nothing and runs no error
    handling for it.
    """


class ErrorStream(Protocol):
    """
    C{wsgi.errors}: PEP 3333's error output stream, of text.
    """

    def write(self, text: str, /) -> object:
        """
        Write C{text}.
        """

    def writelines(self, lines: Iterable[str], /) -> None:
        """
        Write each of C{lines}.
        """

    def flush(self) -> object:
        """
        Write out what is buffered.
        """


def buildEnviron(
    facts: RequestFacts,
    input: IO[bytes],
    errors: ErrorStream,
    fileWrapper: Callable[..., Iterable[bytes]],
    multiprocess: bool = False,
) -> dict[str, Any]:
    """
    Build the WSGI environ for one request.

    @param facts: the request.
    @param input: the request body, positioned at its start; it holds exactly
        C{facts.contentLength} bytes and then reports end of file, so
        C{wsgi.input_terminated} is true and C{CONTENT_LENGTH} is the real
        length also for a chunked upload.
    @param errors: C{wsgi.errors}.
    @param fileWrapper: C{wsgi.file_wrapper}.
    @param multiprocess: C{wsgi.multiprocess}.
    """
    target = facts.target
    authority, rawPath, query = splitTarget(target)
    path = (
        unquote_to_bytes(rawPath).decode("latin-1")
        if b"%" in rawPath
        else rawPath.decode("latin-1")
    )
    scriptName = facts.scriptName
    if scriptName and (path == scriptName or path.startswith(scriptName + "/")):
        path = path[len(scriptName) :]

    rawTarget = target.decode("latin-1")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": facts.method.decode("latin-1"),
        "SCRIPT_NAME": scriptName,
        "PATH_INFO": path,
        "QUERY_STRING": query.decode("latin-1"),
        "SERVER_PROTOCOL": facts.version.decode("latin-1"),
        "REMOTE_ADDR": facts.remoteAddr,
        "RAW_URI": rawTarget,
        "REQUEST_URI": rawTarget,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": facts.scheme,
        "wsgi.input": input,
        "wsgi.errors": errors,
        "wsgi.multithread": True,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "wsgi.file_wrapper": fileWrapper,
    }
    if facts.remotePort is not None:
        environ["REMOTE_PORT"] = str(facts.remotePort)

    seen: dict[str, bytes] = {}
    known = _HEADER_KEYS.get
    for name, value in facts.headers:
        key = known(name) or _headerKey(name)
        if key is None:
            continue
        if key in seen:
            seen[key] += _SEPARATORS.get(name.lower(), b", ") + value
        else:
            seen[key] = value
    for key, value in seen.items():
        environ[key] = value.decode("latin-1")

    environ["CONTENT_LENGTH"] = (
        str(facts.contentLength)
        if (facts.contentLength or "CONTENT_TYPE" in environ)
        else ""
    )
    if authority is not None:
        environ["HTTP_HOST"] = authority.decode("latin-1")

    host = environ.get("HTTP_HOST")
    defaultPort = "443" if facts.scheme == "https" else "80"
    if host:
        if host.startswith("["):
            name, _, port = host[1:].partition("]")
            port = port[1:]
        elif host.count(":") == 1:
            name, _, port = host.partition(":")
        else:
            name, port = host, ""
        # PEP 3333: SERVER_NAME is never empty ("Host: :8000" names none).
        environ["SERVER_NAME"] = name or facts.serverName
        environ["SERVER_PORT"] = port or defaultPort
    else:
        environ["SERVER_NAME"] = facts.serverName
        environ["SERVER_PORT"] = (
            str(facts.serverPort) if facts.serverPort is not None else defaultPort
        )
    if facts.extra:
        environ.update(facts.extra)
    return environ


__all__ = [
    "ClientDisconnected",
    "ErrorStream",
    "RequestFacts",
    "buildEnviron",
    "splitTarget",
]
