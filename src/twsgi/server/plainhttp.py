# -*- test-case-name: tests.server.test_plainhttp -*-
"""
A plain-HTTP request on a TLS port, answered in clear as nginx answers it:
C{400 Bad Request} saying to use C{https://}, then the connection closes.

The TLS layer of every C{ssl:} and C{tls:} listener (under the PROXY
header on C{haproxy:ssl:} and C{haproxy:tls:}) is L{PlainHTTPAnsweringTLS}:
Twisted's TLS protocol, which looks at a connection's first bytes before
OpenSSL does.  A TLS record starts with a byte that no HTTP method has
(C{0x16}, a handshake), an HTTP request with a method token and a space.
Everything here runs in the I/O thread.
"""

from __future__ import annotations

from typing import Any

from twisted.protocols.tls import BufferingTLSTransport, TLSMemoryBIOFactory

from twsgi.http.abnf import TOKEN
from twsgi.http.parse import errorResponse

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
    """

    opening: bytes | None = b""

    def dataReceived(self, data: bytes) -> None:
        """
        Bytes arrived: pass them to TLS once the first ones tell it is TLS.
        """
        if self.opening is None:
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
        Answer a plain-HTTP request in clear, and close the connection once
        the answer went out.
        """
        wrapped: Any = self.factory.wrappedFactory
        failed = getattr(wrapped, "tlsFailed", None)
        if failed is not None:
            failed(self, PlainHTTPRequest())
        transport: Any = self.transport
        transport.write(PLAIN_HTTP_ANSWER)
        transport.loseConnection()


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
