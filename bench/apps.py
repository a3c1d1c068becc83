"""
The WSGI applications the benchmark serves.

Every server under test loads one of these by name (C{apps:hello},
C{apps.hello} for C{twistd web --wsgi}) with this directory on its path.
They are deliberately trivial, so the figures measure the server and not
the application.  The bodies of the throughput scenarios are built once at
import time; only the 512 MiB stream makes a new chunk each time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

StartResponse = Callable[..., Any]
Environ = dict[str, Any]

HELLO = b"Hello, World!"
KIB = b"x" * 1024
MIB = b"x" * (1024 * 1024)
STREAM_CHUNK_SIZE = 64 * 1024
STREAM_TOTAL = 512 * 1024 * 1024
STREAM_PATH = "/stream"


def hello(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """
    13 bytes in a one-element list: the cost of the server's request path.
    """
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))],
    )
    return [HELLO]


def _kibChunks() -> Iterator[bytes]:
    for _ in range(100):
        yield KIB


def generator(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """
    100 chunks of 1 KiB from a generator, with no Content-Length: the cost
    of moving streamed chunks from the WSGI thread to the socket.
    """
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return _kibChunks()


def onemeg(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """
    One body of 1 MiB in a one-element list: the cost of a large write.
    """
    start_response(
        "200 OK",
        [
            ("Content-Type", "application/octet-stream"),
            ("Content-Length", str(len(MIB))),
        ],
    )
    return [MIB]


def sleep50(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """
    Sleep 50 ms, then answer 13 bytes: an I/O-bound application, whose
    throughput is bounded by threads / 0.05 s.
    """
    time.sleep(0.05)
    return hello(environ, start_response)


def _stream() -> Iterator[bytes]:
    # A new bytes object per chunk, as a real application makes: a server
    # that buffers what the client does not read then holds real memory,
    # not 8,192 references to one shared chunk.
    for _ in range(STREAM_TOTAL // STREAM_CHUNK_SIZE):
        yield b"s" * STREAM_CHUNK_SIZE


def slowreader(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """
    C{GET /stream}: 512 MiB streamed in 64 KiB chunks (for the clients that
    never read); any other path: L{hello} (for the ordinary clients served
    meanwhile).
    """
    if environ.get("PATH_INFO") == STREAM_PATH:
        start_response(
            "200 OK",
            [
                ("Content-Type", "application/octet-stream"),
                ("Content-Length", str(STREAM_TOTAL)),
            ],
        )
        return _stream()
    return hello(environ, start_response)


__all__ = ["hello", "generator", "onemeg", "sleep50", "slowreader"]
