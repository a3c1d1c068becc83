"""
A small blocking HTTP/2 client for the tests, written with C{h2} over the
standard library's C{ssl} (ALPN offers C{h2} and C{http/1.1}).  Every read
is bounded: a server that misbehaves fails the test, it never hangs it.
Run it in a thread (C{deferToThread}) when the server runs in the test's
reactor.
"""

from __future__ import annotations

import os
import socket
import ssl
import time
from typing import Any

import attrs
import h2.config
import h2.connection
import h2.events

GOAWAY = 0x7


@attrs.frozen
class GoAway:
    """
    A GOAWAY frame from the server.
    """

    lastStreamID: int
    errorCode: int


@attrs.define
class Answer:
    """
    What came back on one stream.

    @ivar status: the C{:status}, or C{None} if no head came.
    @ivar headers: the response fields (without C{:status}).
    @ivar body: the response body.
    @ivar reset: the C{RST_STREAM} error code, if the server reset it.
    """

    status: int | None = None
    headers: dict[bytes, bytes] = attrs.Factory(dict)
    body: bytes = b""
    reset: int | None = None
    ended: bool = False


class H2Client:
    """
    One HTTP/2 connection over TLS to 127.0.0.1.

    @ivar alpn: the protocol ALPN chose.
    @ivar goaway: the L{GoAway} the server sent, if any.
    @ivar closed: C{True} once the server closed the connection.
    """

    def __init__(self, sock: Any, alpn: str | None = "h2", timeout: float = 10.0):
        """
        @param sock: a connected socket (or anything with C{sendall},
            C{recv}, C{settimeout} and C{close}).
        @param alpn: the protocol ALPN chose; the connection starts only
            for C{h2}.
        """
        self.sock = sock
        self.timeout = timeout
        self.alpn = alpn
        self.answers: dict[int, Answer] = {}
        self.goaway: GoAway | None = None
        self.closed = False
        self.settings: dict[Any, Any] = {}
        self.pingAcks = 0
        self._buffer = b""
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        if self.alpn == "h2":
            self.conn.initiate_connection()
            self.flush()

    def close(self) -> None:
        self.sock.close()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(
        self,
        method: str,
        path: str,
        headers: list[tuple[str, str]] | None = None,
        body: bytes | None = None,
        end: bool = True,
    ) -> int:
        """
        Open a stream; send C{body} (if any) as one DATA frame; end the
        stream unless C{end} is false.  The stream id.
        """
        streamID = self.conn.get_next_available_stream_id()
        head = [
            (b":method", method.encode()),
            (b":scheme", b"https"),
            (b":authority", b"localhost"),
            (b":path", path.encode()),
        ] + [(k.encode(), v.encode()) for k, v in headers or []]
        self.conn.send_headers(streamID, head, end_stream=end and body is None)
        self.answers[streamID] = Answer()
        if body is not None:
            self.send(streamID, body, end=end)
        self.flush()
        return streamID

    def sendBlock(
        self,
        fields: list[tuple[bytes, bytes]],
        streamID: int | None = None,
        end: bool = True,
    ) -> int:
        """
        Send a header block as it is, unchecked and not normalised (a
        malformed one, as a hostile client would), on a new stream or, as
        trailers, on C{streamID}.  The stream id.
        """
        config = self.conn.config
        config.validate_outbound_headers = config.normalize_outbound_headers = False
        try:
            if streamID is None:
                streamID = self.conn.get_next_available_stream_id()
                self.answers[streamID] = Answer()
            self.conn.send_headers(streamID, fields, end_stream=end)
        finally:
            config.validate_outbound_headers = True
            config.normalize_outbound_headers = True
        self.flush()
        return streamID

    def send(self, streamID: int, data: bytes, end: bool = False) -> None:
        """
        Send DATA on a stream, in frames the server's window allows.
        """
        deadline = time.monotonic() + self.timeout
        while True:
            room = min(
                self.conn.local_flow_control_window(streamID),
                self.conn.max_outbound_frame_size,
            )
            if data and not room:
                # Wait for the server to open the window.
                self.readOnce(deadline)
                continue
            piece, data = data[:room], data[room:]
            self.conn.send_data(streamID, piece, end_stream=end and not data)
            self.flush()
            if not data:
                return

    def readOnce(self, deadline: float) -> None:
        """
        Read what the server sent, once, and handle its events.

        @raise AssertionError: at C{deadline}.
        """
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no answer in time: {self.answers}")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise AssertionError(f"no answer in time: {self.answers}")
        except (ConnectionError, ssl.SSLError):
            data = b""
        if not data:
            self.closed = True
            return
        for event in self.conn.receive_data(self._withoutGoAway(data)):
            answer = self.answers.get(getattr(event, "stream_id", 0) or 0)
            if isinstance(event, h2.events.ResponseReceived) and answer:
                fields = dict(event.headers)
                answer.status = int(fields.pop(b":status"))
                answer.headers = fields
            elif isinstance(event, h2.events.InformationalResponseReceived):
                pass
            elif isinstance(event, h2.events.DataReceived) and answer:
                answer.body += event.data
                self.conn.acknowledge_received_data(
                    event.flow_controlled_length, event.stream_id
                )
            elif isinstance(event, h2.events.StreamEnded) and answer:
                answer.ended = True
            elif isinstance(event, h2.events.StreamReset) and answer:
                answer.reset = event.error_code
                answer.ended = True
            elif isinstance(event, h2.events.PingAckReceived):
                self.pingAcks += 1
            elif isinstance(event, h2.events.RemoteSettingsChanged):
                self.settings.update(
                    {k: v.new_value for k, v in event.changed_settings.items()}
                )
        self.flush()

    def _withoutGoAway(self, data: bytes) -> bytes:
        """
        The whole frames received so far, but GOAWAY, which is recorded in
        L{goaway}: once C{h2} sees one it refuses every later frame, also
        the rest of the streams the server still answers (RFC 9113 section
        6.8 lets it).
        """
        self._buffer += data
        keep = []
        while len(self._buffer) >= 9:
            length = int.from_bytes(self._buffer[:3], "big")
            if len(self._buffer) < 9 + length:
                break
            frame, self._buffer = self._buffer[: 9 + length], self._buffer[9 + length :]
            if frame[3] == GOAWAY:
                self.goaway = GoAway(
                    lastStreamID=int.from_bytes(frame[9:13], "big") & 0x7FFFFFFF,
                    errorCode=int.from_bytes(frame[13:17], "big"),
                )
            else:
                keep.append(frame)
        return b"".join(keep)

    def answer(self, streamID: int, timeout: float | None = None) -> Answer:
        """
        Read until stream C{streamID} ended or was reset.

        @raise AssertionError: if the connection closes first, or after
            C{timeout} seconds.
        """
        deadline = time.monotonic() + (timeout or self.timeout)
        answer = self.answers[streamID]
        while not answer.ended:
            if self.closed:
                raise AssertionError(f"connection closed before stream {streamID}")
            self.readOnce(deadline)
        return answer

    def sync(self, timeout: float | None = None) -> None:
        """
        Send a PING and read until it is acknowledged: the server has then
        handled every frame sent before it.
        """
        deadline = time.monotonic() + (timeout or self.timeout)
        acks = self.pingAcks
        self.conn.ping(b"twsgi-ok")
        self.flush()
        while self.pingAcks == acks:
            if self.closed:
                raise AssertionError("connection closed before the PING ack")
            self.readOnce(deadline)

    def untilClosed(self, timeout: float | None = None) -> None:
        """
        Read until the server closes the connection.

        @raise AssertionError: after C{timeout} seconds.
        """
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self.closed:
            self.readOnce(deadline)


def connect(
    port: int,
    certs: str,
    clientCertificate: str | None = None,
    timeout: float = 10.0,
    protocols: tuple[str, ...] = ("h2", "http/1.1"),
    preamble: bytes = b"",
) -> H2Client:
    """
    A L{H2Client} over TLS to 127.0.0.1 C{port}, trusting the test CA in
    C{certs}, with a client certificate if asked.

    @param preamble: bytes sent in clear before the TLS handshake (a PROXY
        protocol header, as a load balancer sends it).
    """
    context = ssl.create_default_context(cafile=os.path.join(certs, "ca.pem"))
    context.set_alpn_protocols(list(protocols))
    if clientCertificate is not None:
        context.load_cert_chain(
            os.path.join(certs, clientCertificate + ".pem"),
            os.path.join(certs, clientCertificate + ".key"),
        )
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    raw.sendall(preamble)
    sock = context.wrap_socket(raw, server_hostname="localhost")
    return H2Client(sock, sock.selected_alpn_protocol(), timeout)
