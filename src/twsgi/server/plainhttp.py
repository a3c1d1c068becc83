# -*- test-case-name: tests.server.test_plainhttp -*-
"""
A plain-HTTP request on a TLS port, answered in clear as nginx answers it:
C{400 Bad Request} saying to use C{https://}, then the connection closes
(lingering, as after any error response).

The TLS layer of every C{ssl:} and C{tls:} listener (under the PROXY
header on C{haproxy:ssl:} and C{haproxy:tls:}) is L{PlainHTTPAnsweringTLS}:
Twisted's TLS protocol, which looks at a connection's first bytes before
OpenSSL does.  A TLS record starts with a byte that no HTTP method has
(C{0x16}, a handshake), an HTTP request with a method token and a space.
Everything here runs in the I/O thread.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.protocol import connectionDone
from twisted.protocols.tls import BufferingTLSTransport, TLSMemoryBIOFactory
from twisted.python.failure import Failure

from twsgi.http.abnf import TOKEN
from twsgi.http.parse import errorResponse
from twsgi.logs.clock import DelayedCall
from twsgi.server.http1 import LINGER

LONGEST_METHOD = 32
"""
The longest method token read as the start of an HTTP request; longer ones
go to TLS, which refuses them.
"""

PLAIN_HTTP_ANSWER = errorResponse(
    400, "this is an HTTPS port: send the request with https://"
)
"""
The answer to a plain-HTTP request on a TLS port: a complete HTTP/1.1
response, with C{Connection: close}.
"""


class PlainHTTPRequest(Exception):
    """
    A connection to a TLS port opened with a plain-HTTP request.
    """


def opensPlainHTTP(opening: bytes) -> bool | None:
    """
    Whether the first bytes of a connection to a TLS port start an HTTP
    request (a method token, then a space) rather than TLS.  A PROXY
    protocol header (version 1) is not an HTTP request: it goes to TLS,
    which refuses it, as on any port without C{haproxy:}.

    @return: C{None} while too few bytes arrived to tell.
    """
    head = opening[: LONGEST_METHOD + 1]
    space = head.find(b" ")
    if space == -1:
        if head and (len(head) > LONGEST_METHOD or not TOKEN.fullmatch(head)):
            return False
        return None
    method = head[:space]
    return bool(TOKEN.fullmatch(method)) and method != b"PROXY"


class PlainHTTPAnsweringTLS(BufferingTLSTransport):
    """
    Twisted's TLS protocol that holds a connection's first bytes until they
    tell TLS from plain HTTP (L{opensPlainHTTP}).  TLS gets them all; a
    plain-HTTP request gets L{PLAIN_HTTP_ANSWER} in clear, and the listener
    is told (C{tlsFailed} of the factory it wraps, which logs one line).

    @ivar opening: the first bytes, held until they tell; C{None} after.
    @ivar answered: C{True} once a plain-HTTP request was answered: what
        arrives afterwards is dropped.
    """

    opening: bytes | None = b""
    answered = False
    _lingering: DelayedCall | None = None

    def dataReceived(self, data: bytes) -> None:
        """
        Bytes arrived: pass them to TLS once the first ones tell it is TLS.
        """
        if self.opening is None:
            if not self.answered:
                super().dataReceived(data)
            return
        data = self.opening + data
        plain = opensPlainHTTP(data)
        if plain is None:
            self.opening = data
            return
        self.opening = None
        if plain:
            self.answerPlainHTTP()
        else:
            super().dataReceived(data)

    def answerPlainHTTP(self) -> None:
        """
        Answer a plain-HTTP request in clear, then close as after any error
        response (see L{twsgi.server.http1.TwsgiChannel._reject}): our side
        first, with a FIN after the answer, while what still arrives (the
        request's body) is read and dropped, until the client closes too or
        for L{LINGER} seconds, when the connection is aborted.  A full close
        with unread bytes would make the kernel answer them with a reset,
        which can destroy the answer before the client read it.  A
        transport that cannot close one side, or a listener without a
        reactor, closes at once.
        """
        self.answered = True
        wrapped: Any = self.factory.wrappedFactory
        failed = getattr(wrapped, "tlsFailed", None)
        if failed is not None:
            failed(self, PlainHTTPRequest())
        transport: Any = self.transport
        transport.write(PLAIN_HTTP_ANSWER)
        loseWrite = getattr(transport, "loseWriteConnection", None)
        clock = getattr(wrapped, "reactor", None)
        if loseWrite is None or clock is None:
            transport.loseConnection()
            return
        loseWrite()
        self._lingering = clock.callLater(LINGER, transport.abortConnection)

    def loseConnection(self) -> None:
        """
        Close the connection (its HTTP channel's idle timeout, a drain's
        grace), unless it is closing already after a plain-HTTP answer:
        TLS would abort a connection that never finished its handshake,
        and the reset could reach the client before the answer.
        """
        if self.answered:
            return
        super().loseConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        The connection is gone: stop lingering.
        """
        if self._lingering is not None and self._lingering.active():
            self._lingering.cancel()
        self._lingering = None
        super().connectionLost(reason)


class PlainHTTPAnsweringTLSFactory(TLSMemoryBIOFactory):
    """
    Twisted's TLS factory, each connection a L{PlainHTTPAnsweringTLS}.
    """

    protocol = PlainHTTPAnsweringTLS


__all__ = [
    "LONGEST_METHOD",
    "PLAIN_HTTP_ANSWER",
    "PlainHTTPAnsweringTLS",
    "PlainHTTPAnsweringTLSFactory",
    "PlainHTTPRequest",
    "opensPlainHTTP",
]
