"""
A WSGI application for the operations tests: it can block its thread, echo a
body, and report the client address it was given.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """
    C{/sleep?s=N} blocks the thread N seconds (at most 30); C{/remote}
    answers C{REMOTE_ADDR}, C{/scheme} C{wsgi.url_scheme}; a POST is echoed; anything else says hello.
    """
    path = environ["PATH_INFO"]
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if path == "/sleep":
        time.sleep(min(30.0, float(query.get("s", ["1"])[0])))
        body = b"slept\n"
    elif path == "/remote":
        body = environ["REMOTE_ADDR"].encode("latin-1")
    elif path == "/scheme":
        body = environ["wsgi.url_scheme"].encode("latin-1")
    elif environ["REQUEST_METHOD"] == "POST":
        body = environ["wsgi.input"].read()
    else:
        body = b"hello " + path.encode("latin-1") + b"\n"
    start_response(
        "200 OK",
        [
            ("Content-Type", "text/plain"),
            ("X-App", "opsapp"),
            ("Content-Length", str(len(body))),
        ],
    )
    return [body]
