"""
Test helpers: a twsgi site on a real loopback socket with an application
that records what it sees, a raw-bytes client, and the corpus decoder.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

from twisted.internet import defer, protocol, task
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IHalfCloseableProtocol, IPushProducer
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from twsgi.http.limits import Limits
from twsgi.server.ports import tcpPort
from twsgi.server.site import TwsgiSite
from twsgi.testing import (
    MemoryServer,
    MemoryTransport,
    SynchronousReactor,
    SynchronousThreadPool,
)
from twsgi.wsgi.bridge import WSGIResource

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: example.com\r\n\r\n"
LAST = b"GET /last HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n"


class RecordingApp:
    """
    A WSGI application that reads the whole body, records the environ and
    answers 200 with a short body.
    """

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def __call__(self, environ: dict[str, Any], startResponse: Any) -> list[bytes]:
        body = environ["wsgi.input"].read()
        record = {k: v for k, v in environ.items() if isinstance(v, str)}
        record["body"] = body.decode("latin-1")
        self.seen.append(record)
        out = b"seen " + environ["PATH_INFO"].encode("latin-1")
        startResponse(
            "200 OK",
            [("Content-Type", "text/plain"), ("Content-Length", str(len(out)))],
        )
        return [out]

    def paths(self) -> list[str]:
        return [record["PATH_INFO"] for record in self.seen]


class LoopbackServer:
    """
    A L{TwsgiSite} listening on 127.0.0.1, port 0, with a real thread pool.
    """

    def __init__(
        self, reactor: Any, app: Any = None, limits: Limits | None = None, **kw: Any
    ) -> None:
        self.reactor = reactor
        self.app = app if app is not None else RecordingApp()
        self.pool = ThreadPool(1, 4, name="twsgi-test")
        self.resource = WSGIResource(reactor, self.pool, self.app)
        self.site = TwsgiSite(self.resource, reactor, limits=limits, **kw)
        self.pool.start()
        self.port = tcpPort(reactor, 0, self.site, interface="127.0.0.1")
        self.portNumber = self.port.getHost().port

    @defer.inlineCallbacks
    def stop(self) -> Any:
        """
        Stop listening, wait (up to 5 s) for open connections to close, and
        stop the pool.
        """
        yield self.port.stopListening()
        for _ in range(500):
            if not self.site.connections:
                break
            yield task.deferLater(self.reactor, 0.01, lambda: None)
        for channel in list(self.site.connections):
            channel.transport.abortConnection()
        yield task.deferLater(self.reactor, 0, lambda: None)
        self.pool.stop()


class _Collect(protocol.Protocol):
    def __init__(self, payload: bytes, finished: defer.Deferred[Any]) -> None:
        self.payload = payload
        self.data = bytearray()
        self.finished = finished

    def connectionMade(self) -> None:
        if self.payload:
            self.transport.write(self.payload)

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Any) -> None:
        self.finished.callback(bytes(self.data))


@defer.inlineCallbacks
def exchange(
    reactor: Any,
    port: int,
    payload: bytes,
    timeout: float = 5.0,
    endpoint: Any = None,
) -> Any:
    """
    Send C{payload} and read until the server closes the connection.

    @return: a Deferred firing with C{(received bytes, closed)}; C{closed}
        is C{False} if the server kept the connection open past C{timeout}.
    """
    finished: defer.Deferred[bytes] = defer.Deferred()
    client = _Collect(payload, finished)
    if endpoint is None:
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port)
    yield endpoint.connect(protocol.Factory.forProtocol(lambda: client))
    timedOut = []

    def expire() -> None:
        timedOut.append(True)
        client.transport.abortConnection()

    call = reactor.callLater(timeout, expire)
    data = yield finished
    if call.active():
        call.cancel()
    return data, not timedOut


def connect(
    limits: Limits | None = None, peer: str = "127.0.0.1", **kw: Any
) -> tuple[Any, StringTransport, Any, RecordingApp]:
    """
    A connected channel of a site with C{limits}, its transport, the fake
    reactor and the recording application.
    """
    reactor = SynchronousReactor()
    app = RecordingApp()
    site = TwsgiSite(
        WSGIResource(reactor, SynchronousThreadPool(), app),
        reactor,
        limits=limits,
        **kw,
    )
    protocol = site.buildProtocol(IPv4Address("TCP", peer, 5000))
    transport = StringTransport(
        peerAddress=(IPv6Address if ":" in peer else IPv4Address)("TCP", peer, 5000)
    )
    protocol.makeConnection(transport)
    return protocol, transport, reactor, app


_ESCAPE = re.compile(rb"\\(r|n|t|\\|x[0-9a-fA-F]{2})")
_ESCAPES = {b"r": b"\r", b"n": b"\n", b"t": b"\t", b"\\": b"\\"}


def decodeCorpus(text: bytes) -> bytes:
    """
    The raw request a corpus file describes: its newlines are dropped, and
    C{\\r}, C{\\n}, C{\\t}, C{\\\\} and C{\\xHH} are the bytes they name.
    """

    def one(match: re.Match[bytes]) -> bytes:
        code = match.group(1)
        if code[:1] == b"x":
            return bytes([int(code[1:], 16)])
        return _ESCAPES[code]

    return _ESCAPE.sub(one, text.replace(b"\n", b""))


_Transport = TypeVar("_Transport", bound=MemoryTransport)


def connectOn(
    server: MemoryServer, transportType: type[_Transport]
) -> tuple[Any, _Transport]:
    """
    Open one in-memory connection to C{server}, as L{MemoryServer.connect}
    does, on a transport of C{transportType} (a L{MemoryTransport}).
    """
    transport = transportType(
        hostAddress=IPv4Address("TCP", "127.0.0.1", 8000),
        peerAddress=IPv4Address("TCP", "127.0.0.1", 40000),
    )
    protocol = server.site.buildProtocol(transport.getPeer())
    transport.protocol = protocol
    protocol.makeConnection(transport)
    return protocol, transport


def halfClose(protocol: Any) -> None:
    """
    The client shuts its side of the connection down (C{shutdown(SHUT_WR)}),
    as a TCP transport reports it: C{readConnectionLost} to a protocol that
    provides L{IHalfCloseableProtocol}, else C{connectionLost}.
    """
    halfCloseable = IHalfCloseableProtocol(protocol, None)
    if halfCloseable is None:
        protocol.connectionLost(Failure(ConnectionDone("the client half-closed")))
    else:
        halfCloseable.readConnectionLost()


@implementer(IPushProducer)
class RecordingProducer:
    """
    A push producer that records what its consumer asked of it.
    """

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pauseProducing(self) -> None:
        self.calls.append("pause")

    def resumeProducing(self) -> None:
        self.calls.append("resume")

    def stopProducing(self) -> None:
        self.calls.append("stop")


class FailingPullProducer:
    """
    A pull producer (as a static file's) that writes C{part} to its request,
    then raises L{OSError}, as a file that cannot be read any more.
    """

    def __init__(self, request: Any, part: bytes) -> None:
        self.request = request
        self.part = part
        self.parts = 0

    def resumeProducing(self) -> None:
        self.parts += 1
        if self.parts > 1:
            raise OSError("input/output error")
        self.request.write(self.part)

    def stopProducing(self) -> None:
        pass
