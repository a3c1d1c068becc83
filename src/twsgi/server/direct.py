# -*- test-case-name: tests.server.test_direct -*-
"""
A whole small response sent by the WSGI thread that made it, straight to
the socket of a plain TCP connection: the client gets it without waiting for
the I/O thread to wake up, and the I/O thread neither copies it nor waits for
the socket to be writable.  The I/O thread only finishes the request
afterwards (the access record, the keep-alive timer), in a batch with
others.

Twisted's TCP transport is not thread-safe, and it buffers what it is given.
So a L{DirectSocket} is used only while its transport holds nothing that the
connection wrote: the connection L{closes<DirectSocket.close>} it for good
before it writes anything through the transport (a 100 Continue, an error
response, a streamed response, a resource's response), and a send that the
socket does not take whole closes it too, the rest going through the
transport.  HTTP/1.1 answers one request at a time, so no two responses of a
connection are ever sent at once.

It sends on its own duplicate of the transport's socket (the public
C{getHandle()}), closed under its lock: the transport closes its socket
whenever the connection ends, and a WSGI thread must never send on a file
descriptor number that the kernel may have given to another connection
since.  The transport's own shutdown and C{SO_LINGER} apply to the socket
itself, so closing and aborting work as before once the duplicate goes,
which the connection does as it ends.
"""

from __future__ import annotations

import socket
import threading

from twisted.internet import tcp

DIRECT_SIZE = 64 * 1024
"""
The largest response a WSGI thread sends itself; a larger one goes through
the transport, which sends it as the socket takes it.
"""


class DirectSocket:
    """
    The socket of one plain TCP connection, for sends from WSGI threads.

    @ivar lock: held while the socket is used or closed; whoever sends holds
        it from the check of L{open} to the end of the send.
    """

    def __init__(self, handle: socket.socket) -> None:
        """
        @param handle: the transport's socket; it is duplicated.
        @raise OSError: if it cannot be (no file descriptor left).
        """
        self.lock = threading.Lock()
        self._socket: socket.socket | None = handle.dup()

    @classmethod
    def forTransport(cls, transport: object) -> DirectSocket | None:
        """
        A L{DirectSocket} for C{transport}, or C{None} unless it is a plain
        TCP (or UNIX) server connection of Twisted's, whose writes the socket
        carries as they are.  Called in the I/O thread.
        """
        if not isinstance(transport, tcp.Server):
            return None
        handle = transport.getHandle()
        if not isinstance(handle, socket.socket):
            return None
        try:
            return cls(handle)
        except OSError:
            return None

    @property
    def open(self) -> bool:
        """
        Whether sends may still go to the socket (read under L{lock}).
        """
        return self._socket is not None

    def send(self, data: bytes) -> int:
        """
        Send what the socket takes of C{data} now, without waiting: all of
        it, as a rule.  After a short send (or a failed one, which sends
        nothing), this is closed: the rest must go through the transport.
        Called with L{lock} held, in any thread.

        @return: how many bytes were sent.
        """
        sock = self._socket
        if sock is None:
            return 0
        try:
            sent = sock.send(data)
        except OSError:
            # EAGAIN as well as a connection the client reset: the transport
            # finds out for itself.
            sent = 0
        if sent < len(data):
            self._close()
        return sent

    def close(self) -> None:
        """
        No send goes to the socket any more.  Called in any thread.
        """
        with self.lock:
            self._close()

    def _close(self) -> None:
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()


__all__ = ["DIRECT_SIZE", "DirectSocket"]
