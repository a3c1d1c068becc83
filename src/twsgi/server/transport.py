# -*- test-case-name: tests.server.test_transport -*-
"""
twsgi's own transport for an accepted stream socket (TCP or UNIX), on
Twisted's public reactor interfaces.

A L{SocketTransport} is an C{IReadWriteDescriptor} that the reactor watches
through C{IReactorFDSet}; to its protocol it is what Twisted's C{tcp.Server}
is (C{ITCPTransport}, C{ISystemHandle}, C{IConsumer}, C{IPushProducer},
C{IHalfCloseableDescriptor}), with one difference: how a write is sent.
Twisted's C{FileDescriptor.write} buffers and asks the reactor to say when
the socket is writable, so each response costs two C{epoll_ctl} calls and a
turn of the reactor before its C{send()}.  Here the writes of one turn of
the reactor (every response the WSGI threads handed over, say) are sent as
soon as that turn is done with its calls, one C{send()} per connection
(L{WriteBatch}); only what the kernel did not take is kept, and waits for
the socket to be writable.

L{serveSocket} hands an accepted socket to a protocol factory on such a
transport: the transport owns the socket object it is given (no copy of the
descriptor).
"""

from __future__ import annotations

import errno
import socket
import struct
import threading
from collections.abc import Iterable
from typing import Any, Protocol, cast

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.internet.interfaces import (
    IConsumer,
    IHalfCloseableDescriptor,
    IHalfCloseableProtocol,
    ILoggingContext,
    IPushProducer,
    IReadWriteDescriptor,
    ISystemHandle,
    ITCPTransport,
)
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from twsgi.logs.clock import CallsLater
from twsgi.wsgi.exchange import PullProducer, PushProducer

_log = Logger(namespace="twsgi")

READ_SIZE = 64 * 1024
"""
The most bytes read from a socket each time it is readable (as many as
Twisted's transports read).
"""

BUFFER_SIZE = 64 * 1024
"""
Bytes left unsent above which a streaming producer is paused (Twisted's
C{FileDescriptor.bufferSize}).
"""

JOIN_LIMIT = 64 * 1024
"""
The most unsent bytes of one write that are copied to be sent together
with the writes after it.
"""

_RETRY = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR, errno.ENOBUFS})
"""
C{send()} and C{recv()} errors that mean "not now": the socket is tried
again when the reactor says it is ready.
"""

Address = IPv4Address | IPv6Address | UNIXAddress


class TransportReactor(CallsLater, Protocol):
    """
    What a L{SocketTransport} needs of its reactor: C{IReactorFDSet}, and
    C{callLater}.
    """

    def addReader(self, reader: Any) -> None: ...

    def addWriter(self, writer: Any) -> None: ...

    def removeReader(self, reader: Any) -> None: ...

    def removeWriter(self, writer: Any) -> None: ...


class StreamProtocol(Protocol):
    """
    What a L{SocketTransport} needs of its protocol (an C{IProtocol}).
    """

    def makeConnection(self, transport: SocketTransport) -> None: ...

    def dataReceived(self, data: bytes) -> None: ...

    def connectionLost(self, reason: Failure) -> None: ...


class HalfCloseable(Protocol):
    """
    A protocol that provides C{IHalfCloseableProtocol}.
    """

    def readConnectionLost(self) -> None: ...

    def writeConnectionLost(self) -> None: ...


class StreamFactory(Protocol):
    """
    What L{serveSocket} needs of a protocol factory (an C{IProtocolFactory}).
    """

    def buildProtocol(self, addr: Address) -> object: ...


def _ipAddress(family: int, name: Any) -> IPv4Address | IPv6Address:
    """
    The Twisted address of an IP socket address, as Twisted gives it (an
    IPv6 host keeps its C{%scope} part).
    """
    if family == socket.AF_INET6:
        host = socket.getnameinfo(name, socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)[
            0
        ]
        return IPv6Address("TCP", host, *name[1:])
    return IPv4Address("TCP", name[0], name[1])


def _asBytes(data: object) -> bytes:
    """
    A copy of bytes-like C{data} (which its writer may change later).

    @raise TypeError: if C{data} is not bytes-like.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"Data must be bytes, not {type(data).__name__}")
    return bytes(data)


class Sender(Protocol):
    """
    What a L{WriteBatch} holds: a transport written to in this turn.
    """

    def sendWritten(self) -> None: ...


class WriteBatch:
    """
    The transports written to in the current turn of the reactor.  The
    first write of a turn asks the reactor for one call at once
    (C{callLater(0)}), which the reactor makes once the turn's other calls
    are done (the responses WSGI threads handed over, the readable
    sockets); it has each transport send all it was given then.  Every
    write of a turn to one connection is then one C{send()}, with no
    C{epoll_ctl} and no wait for writability.  Called in the I/O thread.
    """

    def __init__(self, reactor: TransportReactor) -> None:
        self._callLater = reactor.callLater
        self._written: list[Sender] = []

    def add(self, transport: Sender) -> None:
        """
        C{transport} was written to: have it send at the end of the turn.
        """
        if not self._written:
            self._callLater(0, self.send)
        self._written.append(transport)

    def send(self) -> None:
        """
        Have every transport written to since the last call send.
        """
        written, self._written = self._written, []
        for transport in written:
            try:
                transport.sendWritten()
            except Exception:
                _log.failure(
                    "twsgi: sending on {transport} failed", transport=transport
                )


def _lostBy(error: OSError) -> ConnectionLost:
    """
    The reason a connection ended on a socket error (a reset, a broken
    pipe...), saying which.
    """
    return ConnectionLost(error.strerror or str(error))


@implementer(
    IReadWriteDescriptor,
    IHalfCloseableDescriptor,
    ITCPTransport,
    ISystemHandle,
    IConsumer,
    IPushProducer,
    ILoggingContext,
)
class SocketTransport:
    """
    A connected stream socket's transport (see the module docstring).
    Called in the I/O thread.

    @ivar connected: between the start and the end of the connection.
    @ivar disconnecting: L{loseConnection} was called: the connection ends
        once what is buffered is sent.
    @ivar disconnected: the connection ended.
    @ivar producer: the registered producer, if any.
    @ivar streamingProducer: whether it is a push producer.
    @ivar producerPaused: whether this transport paused it (too much
        unsent).
    @ivar bufferSize: unsent bytes above which a push producer is paused.
    """

    bufferSize = BUFFER_SIZE

    def __init__(
        self,
        reactor: TransportReactor,
        connection: socket.socket,
        protocol: StreamProtocol,
        peer: Address,
        batch: WriteBatch | None = None,
    ) -> None:
        """
        @param connection: the connected socket, which this transport now
            owns (and makes non-blocking).
        @param peer: the address of the other end.
        @param batch: the writes of the turn this transport's are sent
            with (one of its own by default).
        """
        self.reactor = reactor
        self._batch = batch if batch is not None else WriteBatch(reactor)
        self.socket: socket.socket | None = connection
        self.protocol = protocol
        self.family = connection.family
        self.connected = False
        self.disconnecting = False
        self.disconnected = False
        self.producer: PushProducer | PullProducer | None = None
        self.streamingProducer = False
        self.producerPaused = False
        connection.setblocking(False)
        self._fileno = connection.fileno()
        self._send = connection.send
        self._peer = peer
        self._host = socketAddress(connection.family, connection.getsockname())
        self._reading = False
        self._readClosed = False
        self._writing = False
        self._writable = False
        self._aborting = False
        self._closingWrite = False
        self._writeClosed = False
        self._failed: ConnectionLost | None = None
        # Unsent bytes: _head from _offset on, then each of _tail.
        self._head: bytes = b""
        self._offset = 0
        self._tail: list[bytes] = []
        self._unsent = 0
        self._prefix = ""
        # Held by sendFromThread while it sends, and by connectionLost while
        # it closes the socket: the descriptor is never sent on once closed
        # (when the kernel may have given its number to another connection).
        self._closing = threading.Lock()

    def __repr__(self) -> str:
        return f"<{self.logPrefix()}>"

    def start(self) -> None:
        """
        Start reading, and connect the protocol to this transport.
        """
        self.startReading()
        self.connected = self._writable = True
        self.protocol.makeConnection(self)

    # -- IReadWriteDescriptor -----------------------------------------------

    def fileno(self) -> int:
        return self._fileno

    def logPrefix(self) -> str:
        """
        What Twisted logs an event of this connection with: the protocol's
        log prefix (or class name), the peer's port and host, as Twisted's
        TCP transport does.
        """
        if not self._prefix:
            protocol = self.protocol
            if ILoggingContext.providedBy(protocol):
                name = str(cast(Any, protocol).logPrefix())
            else:
                name = type(protocol).__name__
            peer, host = self._peer, self._host
            if isinstance(host, UNIXAddress):
                self._prefix = f"{name},0,{host.name!s}"
            elif not isinstance(peer, UNIXAddress):
                self._prefix = f"{name},{peer.port},{peer.host}"
        return self._prefix

    def doRead(self) -> BaseException | None:
        """
        The socket is readable: read up to L{READ_SIZE} bytes and give them
        to the protocol.

        @return: why the connection ended (the reactor then ends it:
            L{readConnectionLost} on a clean end of input, else
            L{connectionLost}), or C{None}.
        """
        connection = self.socket
        if connection is None or self._aborting:
            return None
        try:
            data = connection.recv(READ_SIZE)
        except OSError as e:
            if e.errno in _RETRY:
                return None
            return _lostBy(e)
        if not data:
            return ConnectionDone("the peer closed the connection")
        self.protocol.dataReceived(data)
        return None

    def doWrite(self) -> BaseException | None:
        """
        The socket is writable: send what is buffered.  Once all of it is
        sent, stop watching for writability and resume a producer, or end
        the connection (or its writing half) as asked.

        @return: why the connection ended, or C{None}.
        """
        if self._aborting or self.socket is None:
            return None
        if self._failed is not None:
            return self._failed
        if self._unsent:
            failed = self._flush()
            if failed is not None:
                return failed
            if self._unsent:
                return None
        self.stopWriting()
        producer = self.producer
        if producer is not None and (not self.streamingProducer or self.producerPaused):
            self.producerPaused = False
            producer.resumeProducing()
        elif self.disconnecting:
            return ConnectionDone("the connection was closed cleanly")
        elif self._closingWrite and not self._writeClosed:
            self._writeClosed = True
            self._writable = False
            self._closeWriteConnection()
        return None

    def readConnectionLost(self, reason: Failure) -> None:
        """
        The peer will send nothing more: tell a half-closeable protocol
        (which may go on writing), else end the connection.
        """
        if not IHalfCloseableProtocol.providedBy(self.protocol):
            self.connectionLost(reason)
            return
        self._readClosed = True
        self.stopReading()
        try:
            cast(HalfCloseable, self.protocol).readConnectionLost()
        except BaseException:
            failure = Failure()
            _log.failure("twsgi: readConnectionLost failed", failure)
            self.connectionLost(failure)

    def writeConnectionLost(self, reason: Failure) -> None:
        """
        Not called: the writing half is closed by L{loseWriteConnection}.
        """
        self.connectionLost(reason)

    def connectionLost(self, reason: Failure) -> None:
        """
        The connection ended (the reactor, an abort, or a close after the
        buffer was sent, says so): stop the producer, close the socket (a
        reset if it was aborted) and tell the protocol, once; a producer
        that fails to stop is logged, and stops neither of the others.
        """
        connection = self.socket
        if connection is None:
            return
        self.disconnected = True
        self.connected = self._writable = False
        self.stopReading()
        self.stopWriting()
        with self._closing:
            self.socket = None
        self._fileno = -1
        self._head, self._offset, self._tail, self._unsent = b"", 0, [], 0
        producer, self.producer = self.producer, None
        if producer is not None:
            try:
                producer.stopProducing()
            except Exception:
                _log.failure("twsgi: stopping {producer} failed", producer=producer)
        try:
            if reason.check(ConnectionAborted):
                connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
            else:
                connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        connection.close()
        self.protocol.connectionLost(reason)

    # -- writing --------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """
        Send C{data} once the current turn of the reactor is done with its
        calls, together with whatever else this turn writes (see
        L{WriteBatch}); a push producer is paused while more than
        L{bufferSize} bytes wait.
        """
        if not self._writable or not data:
            return
        if type(data) is not bytes:
            data = _asBytes(data)
        if self._unsent:
            self._tail.append(data)
        else:
            self._head, self._offset = data, 0
            if not self._writing:
                self._batch.add(self)
        self._unsent += len(data)
        if self._unsent > self.bufferSize:
            self._pauseProducer()

    def writeSequence(self, data: Iterable[bytes]) -> None:
        """
        Send the bytes of C{data}, joined.
        """
        self.write(b"".join(data))

    def sendFromThread(self, data: bytes) -> int | None:
        """
        Send C{data} at once, from a thread other than the I/O thread: one
        C{send()}, if nothing written before is still unsent and the
        connection is open and not closing.  Called in any thread, while
        the I/O thread writes nothing to this transport (the caller's
        protocol sees to that); it may close the transport meanwhile.

        @return: how many bytes of C{data} the kernel took (the caller has
            the rest written the usual way, in the I/O thread), or C{None}
            if nothing was sent, or the connection failed (the I/O thread
            finds out when it next reads or writes).
        """
        with self._closing:
            if (
                self.socket is None
                or self._unsent
                or self._writing
                or not self._writable
                or self.disconnecting
                or self._aborting
                or self._closingWrite
            ):
                return None
            try:
                return self._send(data)
            except OSError:
                return None

    def unsentBytes(self) -> int:
        """
        How many bytes written to this transport the kernel has not taken
        yet.
        """
        return self._unsent

    def sendWritten(self) -> None:
        """
        The turn of the reactor in which this transport was written to is
        done with its calls (L{WriteBatch}): send what it was given, in one
        C{send()} if the kernel takes it all, and resume a push producer
        paused meanwhile if it did.  Only what the kernel does not take, a
        pull producer to ask for more, or a close to make, waits for the
        socket to be writable.
        """
        if self._aborting or self.socket is None or self._failed is not None:
            return
        if self._unsent:
            failed = self._flush()
            if failed is not None:
                self._fail(failed)
                return
        if self._writing:
            return
        producer = self.producer
        if self._unsent or (producer is not None and not self.streamingProducer):
            self.startWriting()
        elif producer is not None and self.producerPaused:
            self.producerPaused = False
            producer.resumeProducing()

    def _pauseProducer(self) -> None:
        """
        More than L{bufferSize} bytes wait: pause a push producer.
        """
        producer = self.producer
        if producer is not None and self.streamingProducer and not self.producerPaused:
            self.producerPaused = True
            # Registered with streaming=True: an IPushProducer.
            cast(PushProducer, producer).pauseProducing()

    def _flush(self) -> ConnectionLost | None:
        """
        Send what is buffered until the kernel takes no more: what is left
        of the first write joined with the later ones, unless more than
        L{JOIN_LIMIT} bytes of it are left (those are sent first, without a
        copy).

        @return: why the connection ended, if it did.
        """
        send = self._send
        while self._unsent:
            if self._tail and len(self._head) - self._offset <= JOIN_LIMIT:
                left = memoryview(self._head)[self._offset :]
                self._head, self._offset = b"".join([left, *self._tail]), 0
                self._tail = []
            head, offset = self._head, self._offset
            try:
                sent = send(memoryview(head)[offset:] if offset else head)
            except OSError as e:
                if e.errno in _RETRY:
                    return None
                self._head, self._offset, self._tail, self._unsent = b"", 0, [], 0
                return _lostBy(e)
            self._offset += sent
            self._unsent -= sent
            if self._offset < len(head):
                return None
        self._head, self._offset = b"", 0
        return None

    def _fail(self, reason: ConnectionLost) -> None:
        """
        A send failed for good (the peer reset the connection...): drop
        what is unsent, and end the connection at the reactor's next look
        (writable at once).
        """
        self._failed = reason
        self._writable = False
        self._head, self._offset, self._tail, self._unsent = b"", 0, [], 0
        self.stopReading()
        self.startWriting()

    # -- ending ---------------------------------------------------------------

    def loseConnection(self) -> None:
        """
        End the connection once what is buffered is sent (and, if a push
        producer this transport paused or a pull producer is registered,
        once it unregisters).
        """
        if not self.connected or self.disconnecting:
            return
        self.stopReading()
        if self._writeClosed:
            self.stopWriting()
            self.connectionLost(Failure(ConnectionDone("the connection was closed")))
            return
        self.disconnecting = True
        self.startWriting()

    def loseWriteConnection(self) -> None:
        """
        Close the writing half (C{shutdown(SHUT_WR)}) once what is buffered
        is sent; a half-closeable protocol is then told
        (C{writeConnectionLost}).
        """
        self._closingWrite = True
        self.startWriting()

    def _closeWriteConnection(self) -> None:
        connection = self.socket
        if connection is not None:
            try:
                connection.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        if IHalfCloseableProtocol.providedBy(self.protocol):
            try:
                cast(HalfCloseable, self.protocol).writeConnectionLost()
            except BaseException:
                failure = Failure()
                _log.failure("twsgi: writeConnectionLost failed", failure)
                self.connectionLost(failure)

    def abortConnection(self) -> None:
        """
        End the connection at once (in the reactor's next turn), dropping
        what is unsent; the peer gets a reset.
        """
        if self.disconnected or self._aborting:
            return
        self._aborting = True
        self._writable = False
        self.stopReading()
        self.stopWriting()
        self.reactor.callLater(0, self.connectionLost, Failure(ConnectionAborted()))

    # -- IConsumer ------------------------------------------------------------

    def registerProducer(
        self, producer: PushProducer | PullProducer, streaming: bool
    ) -> None:
        """
        Register a producer: a push producer is paused while more than
        L{bufferSize} bytes are unsent, and resumed once all are; a pull
        producer is asked for more each time what it wrote is sent.

        @raise RuntimeError: if a producer is registered already.
        """
        if self.producer is not None:
            raise RuntimeError(
                f"Cannot register producer {producer}, because producer "
                f"{self.producer} was never unregistered."
            )
        if self.disconnected:
            producer.stopProducing()
            return
        self.producer = producer
        self.streamingProducer = streaming
        self.producerPaused = False
        if not streaming:
            producer.resumeProducing()

    def unregisterProducer(self) -> None:
        """
        Forget the producer; a connection that was asked to close closes
        once what is buffered is sent.
        """
        self.producer = None
        if self.connected and self.disconnecting:
            self.startWriting()

    # -- IPushProducer: the peer's bytes --------------------------------------

    def pauseProducing(self) -> None:
        """
        Read nothing more until L{resumeProducing}.
        """
        self.stopReading()

    def resumeProducing(self) -> None:
        """
        Read again, unless the connection is closing.
        """
        if self.connected and not self.disconnecting:
            self.startReading()

    def stopProducing(self) -> None:
        self.loseConnection()

    def startReading(self) -> None:
        if self._reading or self._readClosed or self._aborting or self.socket is None:
            return
        self._reading = True
        self.reactor.addReader(self)

    def stopReading(self) -> None:
        if self._reading:
            self._reading = False
            self.reactor.removeReader(self)

    def startWriting(self) -> None:
        if self._writing or self._aborting or self.socket is None:
            return
        self._writing = True
        self.reactor.addWriter(self)

    def stopWriting(self) -> None:
        if self._writing:
            self._writing = False
            self.reactor.removeWriter(self)

    # -- ITCPTransport, ISystemHandle -----------------------------------------

    def getHandle(self) -> socket.socket | None:
        """
        The socket (C{None} once closed).
        """
        return self.socket

    def getPeer(self) -> Address:
        return self._peer

    def getHost(self) -> Address:
        return self._host

    def getTcpNoDelay(self) -> bool:
        return self._option(socket.IPPROTO_TCP, socket.TCP_NODELAY)

    def setTcpNoDelay(self, enabled: bool) -> None:
        """
        Send small writes at once (TCP only; ignored on a UNIX socket).
        """
        if self.family != socket.AF_UNIX:
            self._setOption(socket.IPPROTO_TCP, socket.TCP_NODELAY, enabled)

    def getTcpKeepAlive(self) -> bool:
        return self._option(socket.SOL_SOCKET, socket.SO_KEEPALIVE)

    def setTcpKeepAlive(self, enabled: bool) -> None:
        self._setOption(socket.SOL_SOCKET, socket.SO_KEEPALIVE, enabled)

    def _option(self, level: int, option: int) -> bool:
        connection = self.socket
        if connection is None or self.family == socket.AF_UNIX:
            return False
        return bool(connection.getsockopt(level, option))

    def _setOption(self, level: int, option: int, enabled: bool) -> None:
        connection = self.socket
        if connection is None:
            return
        try:
            connection.setsockopt(level, option, int(enabled))
        except OSError as e:
            _log.warn("twsgi: cannot set a socket option: {error}", error=e)


def socketAddress(family: int, name: Any) -> Address:
    """
    The Twisted address of a socket address, as Twisted's transports and
    ports give it (an IPv6 host keeps its C{%scope} part).
    """
    if family == socket.AF_UNIX:
        return UNIXAddress(name)
    return _ipAddress(family, name)


def peerAddress(connection: socket.socket, name: Any) -> Address:
    """
    The address a protocol factory is given for an accepted socket, as
    Twisted gives it: the peer's (C{name}, as C{accept} gave it) for TCP,
    the socket's own for UNIX.
    """
    if connection.family == socket.AF_UNIX:
        return UNIXAddress(connection.getsockname())
    return _ipAddress(connection.family, name)


def serveSocket(
    reactor: TransportReactor,
    connection: socket.socket,
    factory: StreamFactory,
    batch: WriteBatch | None = None,
    name: Any = None,
) -> SocketTransport | None:
    """
    Serve an accepted socket: build a protocol for it and connect the two
    with a L{SocketTransport}, which owns the socket from then on (and
    sends its writes with C{batch}'s).  If the factory builds no protocol,
    the socket is closed.

    @param name: the peer's address as C{accept} gave it (asked of the
        socket if not given; a peer that reset the connection before it
        was accepted has none to ask).
    @return: the transport, or C{None} without a protocol.
    """
    family = connection.family
    if name is None:
        name = connection.getpeername()
    address = peerAddress(connection, name)
    protocol = factory.buildProtocol(address)
    if protocol is None:
        connection.close()
        return None
    if family == socket.AF_UNIX:
        peer: Address = UNIXAddress(name or None)
    else:
        peer = address
    transport = SocketTransport(
        reactor, connection, cast(StreamProtocol, protocol), peer, batch
    )
    try:
        transport.start()
    except BaseException:
        transport.abortConnection()
        raise
    return transport


__all__ = [
    "BUFFER_SIZE",
    "JOIN_LIMIT",
    "READ_SIZE",
    "SocketTransport",
    "TransportReactor",
    "WriteBatch",
    "peerAddress",
    "serveSocket",
    "socketAddress",
]
