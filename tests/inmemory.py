"""
Drive a twsgi site over an in-memory transport, with the WSGI application
run synchronously: for tests of what the reactor answers.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport

from twsgi._bridge import WSGIResource


class ImmediateReactor(MemoryReactorClock):
    """
    A memory reactor whose C{callFromThread} runs the call at once.
    """

    def callFromThread(self, f: Any, *args: Any, **kwargs: Any) -> None:
        f(*args, **kwargs)


class SynchronousThreadPool:
    """
    Runs work at once in the calling thread; counts what it ran.
    """

    def __init__(self) -> None:
        self.ran = 0

    def callInThread(self, f: Any, *args: Any, **kwargs: Any) -> None:
        self.ran += 1
        f(*args, **kwargs)


def wsgiResource(app: Any, reactor: Any) -> tuple[WSGIResource, SynchronousThreadPool]:
    """
    A L{WSGIResource} running C{app} synchronously.
    """
    pool = SynchronousThreadPool()
    return WSGIResource(app, pool, reactor), pool


def request(site: Any, raw: bytes) -> bytes:
    """
    Send C{raw} on a new connection to C{site}; the bytes written back.
    """
    channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
    transport = StringTransport(
        hostAddress=IPv4Address("TCP", "127.0.0.1", 8000),
        peerAddress=IPv4Address("TCP", "127.0.0.1", 40000),
    )
    channel.makeConnection(transport)
    channel.dataReceived(raw)
    # Drive pull producers (static files) as a real transport would.
    for _ in range(10_000):
        producer = transport.producer
        if producer is None or transport.streaming:
            break
        producer.resumeProducing()
    return transport.value()  # type: ignore[no-any-return]


def get(site: Any, path: str, headers: str = "", method: str = "GET") -> bytes:
    """
    One request with C{Connection: close}; the response bytes.
    """
    return request(
        site,
        f"{method} {path} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n".encode(
            "latin-1"
        ),
    )


def hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """
    A WSGI application answering its C{SCRIPT_NAME} and C{PATH_INFO}.
    """
    body = f"app {environ['SCRIPT_NAME']!r} {environ['PATH_INFO']!r}".encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
