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

A connection keeps its duplicate from its first request on the hot path to
its end (one made per request would cost the I/O thread two system calls,
each a chance to lose the GIL to the WSGI threads, per request), so each
such connection holds two file descriptors.  So that this never halves how
many connections the process can take, at most L{DUPLICATES_SHARE} of its
file descriptor limit are duplicates (L{Duplicates}); past that, connections
send through their transport as any other.
"""

from __future__ import annotations

import resource
import socket
import threading

from twisted.internet import tcp

DIRECT_SIZE = 64 * 1024
"""
The largest response a WSGI thread sends itself; a larger one goes through
the transport, which sends it as the socket takes it.
"""

DUPLICATES_SHARE = 8
"""
At most one in this many of the process's file descriptors (its soft
C{RLIMIT_NOFILE}) is a L{DirectSocket}'s duplicate.
"""


class Duplicates:
    """
    Counts the duplicate sockets alive, up to a bound.
    """

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self.alive = 0
        self._lock = threading.Lock()

    @classmethod
    def forProcess(cls) -> Duplicates:
        """
        Bounded by L{DUPLICATES_SHARE} of this process's file descriptor
        limit.
        """
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            soft = 1 << 20
        return cls(soft // DUPLICATES_SHARE)

    def take(self) -> bool:
        """
        Count one more, unless the bound is reached.  Called in any thread.
        """
        with self._lock:
            if self.alive >= self.bound:
                return False
            self.alive += 1
            return True

    def give(self) -> None:
        """
        Count one fewer.  Called in any thread.
        """
        with self._lock:
            self.alive -= 1


DUPLICATES = Duplicates.forProcess()
"""
The duplicates of this process.
"""


class DirectSocket:
    """
    The socket of one plain TCP connection, for sends from WSGI threads.

    @ivar lock: held while the socket is used or closed; whoever sends holds
        it from the check of L{open} to the end of the send.
    """

    def __init__(
        self, handle: socket.socket, duplicates: Duplicates | None = None
    ) -> None:
        """
        @param handle: the transport's socket; it is duplicated.
        @param duplicates: counts this duplicate while it is open.
        @raise OSError: if it cannot be (no file descriptor left).
        """
        self.lock = threading.Lock()
        self._socket: socket.socket | None = handle.dup()
        self._duplicates = duplicates

    @classmethod
    def forTransport(
        cls, transport: object, duplicates: Duplicates = DUPLICATES
    ) -> DirectSocket | None:
        """
        A L{DirectSocket} for C{transport}, or C{None} unless it is a plain
        TCP (or UNIX) server connection of Twisted's, whose writes the socket
        carries as they are, and C{duplicates} allows one more.  Called in
        the I/O thread.
        """
        if not isinstance(transport, tcp.Server):
            return None
        handle = transport.getHandle()
        if not isinstance(handle, socket.socket) or not duplicates.take():
            return None
        try:
            return cls(handle, duplicates)
        except OSError:
            duplicates.give()
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
            if self._duplicates is not None:
                self._duplicates.give()


__all__ = [
    "DIRECT_SIZE",
    "DUPLICATES",
    "DUPLICATES_SHARE",
    "DirectSocket",
    "Duplicates",
]
