# -*- test-case-name: tests.logs.test_formats -*-
"""
Pure: the formats of access-log lines.

C{--access-log-format} names one of:

  - C{combined}: the Combined Log Format followed by the duration in
    microseconds (L{twsgi.logs.accesslog.formatCombined});
  - C{json}: one JSON object per line, made from typed fields with
    L{json.dumps}, so that nothing a client sends can break a line;
  - a template in gunicorn's syntax, C{%(atom)s}, with gunicorn's atoms and
    more (see L{ATOMS}), so a gunicorn C{access_log_format} can be pasted as
    it is.  Every text value is escaped with
    L{twsgi.logs.accesslog.escape}: a quote or a newline in a header cannot forge
    a field or a line.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import time
from collections.abc import Callable

from twsgi.logs.accesslog import (
    _NOT_UTF8,
    AccessRecord,
    _clfTime,
    escape,
    formatCombined,
    headerless,
    requestLine,
    wireText,
)

Formatter = Callable[[AccessRecord], str]


def _path(record: AccessRecord) -> str:
    return record.target.split("?", 1)[0]


def _query(record: AccessRecord) -> str:
    parts = record.target.split("?", 1)
    return parts[1] if len(parts) == 2 else ""


def _header(headers: tuple[tuple[str, str], ...], name: str) -> str:
    values = [value for key, value in headers if key.lower() == name]
    return ", ".join(values)


def _environ(record: AccessRecord, name: str) -> str:
    """
    The WSGI environ's value for C{name}, matched without regard to case as
    gunicorn does (C{{remote_user}e} is C{REMOTE_USER}).
    """
    for key, value in record.environ:
        if key.lower() == name:
            return value
    return ""


def _user(record: AccessRecord) -> str:
    """
    The user name of HTTP Basic authentication (RFC 7617), or C{"-"}.
    """
    authorization = _header(record.requestHeaders, "authorization")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != "basic":
        return "-"
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True)
    except (binascii.Error, ValueError):
        return "-"
    return decoded.decode("latin-1").partition(":")[0] or "-"


_PID = str(os.getpid())

ATOMS: dict[str, Callable[[AccessRecord], str]] = {
    "h": lambda r: r.remoteAddr or "-",
    "l": lambda r: "-",
    "u": _user,
    "t": lambda r: "[" + _clfTime(r.timestamp) + "]",
    "r": requestLine,
    "m": lambda r: r.method or "-",
    "U": lambda r: _path(r) or "-",
    "q": _query,
    "H": lambda r: r.protocol or "-",
    "s": lambda r: str(r.status),
    "B": lambda r: str(r.bytesSent),
    "b": lambda r: str(r.bytesSent) if r.bytesSent else "-",
    "f": lambda r: r.referer or "-",
    "a": lambda r: r.userAgent or "-",
    "T": lambda r: str(int(r.duration)),
    "M": lambda r: str(int(r.duration * 1000)),
    "D": lambda r: str(int(r.duration * 1_000_000)),
    "L": lambda r: "%.6f" % r.duration,
    "p": lambda r: "<" + _PID + ">",
    # twsgi's own atoms.
    "rid": lambda r: r.requestId,
    "P": lambda r: "-" if r.remotePort is None else str(r.remotePort),
    "I": lambda r: str(r.bytesReceived),
    "listener": lambda r: r.listener,
    "X": lambda r: "X" if r.disconnected else "-",
}
"""
The atoms of a template.  gunicorn's C{h l u t r m U q H s B b f a T M D L p}
and C{{header}i}, C{{header}o} (request and response headers),
C{{variable}e} (a text value of the WSGI environ as the application left it,
C{-} if it has none), plus
C{rid} (the request id), C{P} (the client port), C{I} (request body bytes),
C{listener} (the endpoint the request came in on) and C{X} (C{X} when the
connection ended before the response was complete, as Apache's C{%X}; C{-}
otherwise).
"""

_FROM_REQUEST = frozenset("u r U q f a rid".split())
"""
The atoms whose text comes from the request's bytes: read as UTF-8 (see
L{twsgi.logs.accesslog.wireText}).
"""

_TOKEN = re.compile(r"%\(([^()]*)\)s|%%|%")


class FormatError(ValueError):
    """
    An access-log template is malformed; C{str()} says where.
    """


def compileTemplate(template: str) -> Formatter:
    """
    Turn a gunicorn-style template into a formatter.

    @raise FormatError: on an unknown atom or a C{%} that is not C{%%} or
        C{%(atom)s}.
    """
    parts: list[Callable[[AccessRecord], str]] = []
    # Header atoms, and %(u)s (from Authorization), read the headers;
    # {variable}e atoms read the environ.
    withHeaders = withEnviron = False
    position = 0
    for match in _TOKEN.finditer(template):
        literal = template[position : match.start()]
        if literal:
            parts.append(_constant(literal))
        position = match.end()
        token = match.group(0)
        if token == "%%":
            parts.append(_constant("%"))
            continue
        atom = match.group(1)
        if atom is None:
            raise FormatError(
                f"{template!r}: a lone '%' at offset {match.start()} "
                "(write %% for a percent sign, or %(atom)s)"
            )
        parts.append(_atom(template, atom))
        if atom.startswith("{") and atom.endswith("}e"):
            withEnviron = True
        else:
            withHeaders = withHeaders or atom == "u" or atom.startswith("{")
    literal = template[position:]
    if literal:
        parts.append(_constant(literal))

    def format(record: AccessRecord) -> str:
        return "".join([part(record) for part in parts])

    format.readsEnviron = withEnviron  # type: ignore[attr-defined]
    return format if withHeaders else headerless(format)


def _constant(text: str) -> Callable[[AccessRecord], str]:
    return lambda record: text


def _atom(template: str, atom: str) -> Callable[[AccessRecord], str]:
    if atom.startswith("{") and atom[-1:] in ("i", "o", "e") and atom[-2:-1] == "}":
        name = atom[1:-2].lower()
        if not name:
            raise FormatError(f"{template!r}: empty name in %({atom})s")
        if atom.endswith("i"):
            return lambda r: escape(wireText(_header(r.requestHeaders, name))) or "-"
        if atom.endswith("e"):
            return lambda r: escape(_environ(r, name)) or "-"
        return lambda r: escape(wireText(_header(r.responseHeaders, name))) or "-"
    getter = ATOMS.get(atom)
    if getter is None:
        raise FormatError(
            f"{template!r}: unknown atom %({atom})s (known: "
            + " ".join(ATOMS)
            + " {header}i {header}o {variable}e)"
        )
    if atom in _FROM_REQUEST:
        return lambda r: escape(wireText(getter(r)))
    return lambda r: escape(getter(r))


def _isoTime(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp)) + (
        ".%06dZ" % int((timestamp % 1) * 1_000_000)
    )


# What str.splitlines() would split a line at, that json.dumps leaves as it
# is with ensure_ascii=False; each written as its JSON escape.
_LINE_BREAKS = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def _jsonText(text: str) -> str:
    """
    Text from a request for a JSON field: the UTF-8 the client sent, a byte
    that is not UTF-8 as C{\\xNN}.
    """
    if text.isascii():
        return text
    return wireText(text).translate(_NOT_UTF8)


def jsonFields(record: AccessRecord) -> dict[str, object]:
    """
    The typed fields of one JSON access-log line.
    """
    return {
        "time": _isoTime(record.timestamp),
        "remote_addr": record.remoteAddr,
        "remote_port": record.remotePort,
        "method": record.method,
        "target": _jsonText(record.target),
        "path": _jsonText(_path(record)),
        "query": _jsonText(_query(record)),
        "protocol": record.protocol,
        "status": record.status,
        "bytes_sent": record.bytesSent,
        "bytes_received": record.bytesReceived,
        "duration": round(record.duration, 6),
        "referer": _jsonText(record.referer),
        "user_agent": _jsonText(record.userAgent),
        "request_id": _jsonText(record.requestId),
        "listener": record.listener,
        "disconnected": record.disconnected,
        "cut_off": record.cutOff,
    }


@headerless
def formatJSON(record: AccessRecord) -> str:
    """
    One JSON object, on one line whatever the request held, in UTF-8.
    """
    line = json.dumps(jsonFields(record), ensure_ascii=False, separators=(",", ":"))
    return line if line.isascii() else line.translate(_LINE_BREAKS)


NAMED_FORMATS: dict[str, Formatter] = {
    "combined": formatCombined,
    "json": formatJSON,
}


def parseAccessLogFormat(value: str) -> str:
    """
    Check the C{--access-log-format} setting: C{combined}, C{json}, or a
    template.  Returns the text; L{formatterFor} builds the formatter.

    @raise ValueError: if it is none of those.
    """
    if not value:
        raise ValueError("must not be empty (combined, json or a template)")
    formatterFor(value)
    return value


def formatterFor(value: str) -> Formatter:
    """
    The formatter for a C{--access-log-format} setting.

    @raise FormatError: if the template is malformed.
    """
    named = NAMED_FORMATS.get(value.lower())
    if named is not None:
        return named
    if "%" not in value:
        raise FormatError(
            f"{value!r} is not 'combined', 'json', or a template with %(atom)s atoms"
        )
    return compileTemplate(value)


__all__ = [
    "ATOMS",
    "FormatError",
    "Formatter",
    "compileTemplate",
    "formatJSON",
    "formatterFor",
    "jsonFields",
    "parseAccessLogFormat",
]
