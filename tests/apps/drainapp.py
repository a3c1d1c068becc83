"""
WSGI applications for the process tests of the graceful stop (loaded by the
server subprocesses with C{--pythonpath tests --app drainapp:app}).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """
    Answer C{ok}, after sleeping C{?sleep=SECONDS}.  A request that sleeps
    first appends one byte to the file named by C{$TWSGI_TEST_STARTED}, so a
    test can tell when all of them are in flight.
    """
    query = parse_qs(environ.get("QUERY_STRING", ""))
    sleep = float(query.get("sleep", ["0"])[0])
    started = os.environ.get("TWSGI_TEST_STARTED")
    if sleep and started:
        with open(started, "ab") as f:
            f.write(b".")
    time.sleep(sleep)
    body = b"ok\n"
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
    )
    return [body]
