# -*- test-case-name: tests.docs.test_examples -*-
"""
A small WSGI application bundled with twsgi, to try the server with::

    twistd -n twsgi --app twsgi.example:app
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """
    Greet the client, and echo a POSTed body back.
    """
    if environ["REQUEST_METHOD"] == "POST":
        body = environ["wsgi.input"].read()
    else:
        body = b"Hello from twsgi!\n"
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    return [body]


__all__ = ["app"]
