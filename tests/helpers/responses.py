"""
Parsing the responses an in-memory connection wrote, and ending its
connection from the client's side.
"""

from __future__ import annotations

from typing import Any

import attrs
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure


@attrs.frozen
class Response:
    """
    One parsed HTTP response.
    """

    status: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    chunked: bool

    def header(self, name: bytes) -> list[bytes]:
        """
        All values of the header C{name}.
        """
        return [v for n, v in self.headers if n.lower() == name.lower()]


def parseResponses(data: bytes, method: bytes = b"GET") -> list[Response]:
    """
    Parse the complete responses in C{data}: framed by C{Content-Length} or
    chunked, or, when neither (HTTP/1.0), up to the end of C{data}.
    """
    responses = []
    while data:
        head, separator, data = data.partition(b"\r\n\r\n")
        assert separator, f"incomplete head: {head!r}"
        lines = head.split(b"\r\n")
        headers = tuple(
            (name, value.strip())
            for name, _, value in (line.partition(b":") for line in lines[1:])
        )
        response = Response(lines[0], headers, b"", False)
        code = int(lines[0].split(b" ")[1])
        lengths = response.header(b"content-length")
        chunked = response.header(b"transfer-encoding") == [b"chunked"]
        if method == b"HEAD" or code in (204, 304):
            body = b""
        elif chunked:
            body = b""
            while True:
                size, _, data = data.partition(b"\r\n")
                length = int(size, 16)
                if length == 0:
                    assert data.startswith(b"\r\n"), data
                    data = data[2:]
                    break
                body += data[:length]
                assert data[length : length + 2] == b"\r\n"
                data = data[length + 2 :]
        elif lengths:
            body, data = data[: int(lengths[0])], data[int(lengths[0]) :]
        else:
            body, data = data, b""
        responses.append(attrs.evolve(response, body=body, chunked=chunked))
    return responses


def disconnect(protocol: Any, transport: StringTransport) -> None:
    """
    Lose the connection as a real transport does: stop its producer, then
    tell the protocol.
    """
    if transport.producer is not None:
        transport.producer.stopProducing()
    protocol.connectionLost(Failure(ConnectionDone()))
