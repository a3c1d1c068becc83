"""
Plain WSGI applications; L{app} is wrapped in L{wsgiref.validate.validator},
and any L{wsgiref.validate.WSGIWarning} is turned into an error, so that a
PEP 3333 violation by the server fails the request.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import unquote
from wsgiref.validate import WSGIWarning, validator

warnings.filterwarnings("error", category=WSGIWarning)

StartResponse = Callable[..., Any]

THIS_FILE = os.path.abspath(__file__)
"""
A real file that C{/file} serves through C{wsgi.file_wrapper}.
"""


def _readAll(environ: dict[str, Any]) -> bytes:
    """
    Read the whole request body in blocks, as an app must when there is no
    C{CONTENT_LENGTH} (a chunked body).
    """
    parts = []
    while True:
        block = environ["wsgi.input"].read(8192)
        if not block:
            return b"".join(parts)
        parts.append(block)


def describeBody(body: bytes, environ: dict[str, Any]) -> dict[str, Any]:
    """
    What C{/echo} answers: the length and digest of the body it read, and how
    the body was framed.
    """
    return {
        "length": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
        "transferEncoding": environ.get("HTTP_TRANSFER_ENCODING"),
    }


def _stream() -> Iterator[bytes]:
    for i in range(50):
        yield b"chunk %d\n" % (i,)


def _routes(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    text = [("Content-Type", "text/plain")]
    if path == "/":
        start_response("200 OK", text)
        return [b"hello\n"]
    if path == "/echo":
        body = _readAll(environ)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(describeBody(body, environ)).encode()]
    if path == "/stream":
        start_response("200 OK", text)
        return _stream()
    if path == "/write":
        write = start_response("200 OK", text)
        write(b"written ")
        write(b"by write()\n")
        return [b"then returned\n"]
    if path == "/file":
        # ?/absolute/path serves that file instead of this one.
        name = unquote(environ["QUERY_STRING"]) or THIS_FILE
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](open(name, "rb"), 4096)
    if path == "/environ":
        start_response("200 OK", [("Content-Type", "application/json")])
        keys = (
            "wsgi.url_scheme",
            "REQUEST_METHOD",
            "SERVER_PROTOCOL",
            "REMOTE_ADDR",
            "SERVER_PORT",
            "QUERY_STRING",
        )
        facts = {k: environ.get(k) for k in keys}
        facts["cwd"] = os.getcwd()
        return [json.dumps(facts).encode()]
    if path == "/raise":
        raise RuntimeError("the application failed on purpose")
    start_response("404 Not Found", text)
    return [b"not found\n"]


app = validator(_routes)
"""
The validated application.
"""


def unvalidated(
    environ: dict[str, Any], start_response: StartResponse
) -> Iterable[bytes]:
    """
    The same routes without the validator, so that a C{wsgi.file_wrapper}
    reaches the server as such.
    """
    return _routes(environ, start_response)


def makeApp(greeting: str, repeat: int = 1) -> Callable[..., Iterable[bytes]]:
    """
    An application factory taking literal arguments.
    """

    def greet(
        environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [(greeting * repeat).encode()]

    return greet


def failingFactory(reason: str) -> Callable[..., Any]:
    """
    A factory that raises.
    """
    raise RuntimeError(f"factory refused: {reason}")


notCallable = 42
