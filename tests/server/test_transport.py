"""
Tests for L{twsgi.server.transport}: twsgi's own transport for an accepted
stream socket, on a real socket pair and a fake reactor that dispatches
readiness the way Twisted's reactors do.
"""

from __future__ import annotations

import errno
import os
import select
import shutil
import socket
import struct
import tempfile
import threading
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.internet.interfaces import (
    IConsumer,
    IHalfCloseableDescriptor,
    IHalfCloseableProtocol,
    IPushProducer,
    IReadWriteDescriptor,
    ISystemHandle,
    ITCPTransport,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from tests.helpers.rawhttp import RecordingProducer
from twsgi.server.closing import unsentBytes
from twsgi.server.transport import (
    BUFFER_SIZE,
    SocketTransport,
    WriteBatch,
    serveSocket,
)


class FakeReactor(Clock):
    """
    A clock that records the descriptors it watches, and dispatches
    readiness as Twisted's reactors do (L{dispatch}).
    """

    def __init__(self) -> None:
        super().__init__()
        self.readers: set[Any] = set()
        self.writers: set[Any] = set()
        self.writerAdds = 0

    def addReader(self, reader: Any) -> None:
        self.readers.add(reader)

    def addWriter(self, writer: Any) -> None:
        self.writerAdds += 1
        self.writers.add(writer)

    def removeReader(self, reader: Any) -> None:
        self.readers.discard(reader)

    def removeWriter(self, writer: Any) -> None:
        self.writers.discard(writer)

    def dispatch(self, descriptor: Any, read: bool) -> None:
        """
        Call C{doRead} (or C{doWrite}) of C{descriptor}; if it returns why
        the connection ended, end it as C{posixbase} does: a clean end of
        input on a half-closeable descriptor is C{readConnectionLost}, any
        other end C{connectionLost}.
        """
        why = descriptor.doRead() if read else descriptor.doWrite()
        if not why:
            return
        self.removeReader(descriptor)
        if (
            read
            and type(why) is ConnectionDone
            and IHalfCloseableDescriptor.providedBy(descriptor)
        ):
            descriptor.readConnectionLost(Failure(why))
        else:
            self.removeWriter(descriptor)
            descriptor.connectionLost(Failure(why))


class Recorder(Protocol):
    """
    A protocol that records what it receives and how its connection ended.
    """

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.lost: list[Failure] = []

    def dataReceived(self, data: bytes) -> None:
        self.received.append(data)

    def connectionLost(self, reason: Failure | None = None) -> None:
        assert reason is not None
        self.lost.append(reason)


@implementer(IHalfCloseableProtocol)
class HalfCloser(Recorder):
    """
    A L{Recorder} that is told about each half of the connection closing.
    """

    def __init__(self) -> None:
        super().__init__()
        self.halves: list[str] = []

    def readConnectionLost(self) -> None:
        self.halves.append("read")

    def writeConnectionLost(self) -> None:
        self.halves.append("write")


class CountingSocket(socket.socket):
    """
    A socket that counts its C{send} calls.
    """

    sends = 0

    def send(self, data: Any, flags: int = 0) -> int:
        self.sends += 1
        return super().send(data, flags)


def reset(peer: socket.socket) -> None:
    """
    Close C{peer} with a reset (C{SO_LINGER} of 0).
    """
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()


def readAll(peer: socket.socket, size: int) -> bytes:
    """
    Whatever C{peer} has received, up to C{size} bytes, without waiting.
    """
    chunks = []
    timeout = peer.gettimeout()
    peer.setblocking(False)
    try:
        while size > 0:
            try:
                chunk = peer.recv(min(size, 1 << 20))
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            size -= len(chunk)
    finally:
        peer.settimeout(timeout)
    return b"".join(chunks)


def listening(case: SynchronousTestCase) -> socket.socket:
    """
    A TCP socket listening on 127.0.0.1, closed when C{case} ends.
    """
    listener = socket.socket()
    case.addCleanup(listener.close)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    return listener


class TransportTestCase(SynchronousTestCase):
    """
    A L{SocketTransport} on one end of a TCP connection on 127.0.0.1; the
    test holds the other end, C{peer}.
    """

    protocolClass: type[Recorder] = Recorder

    def setUp(self) -> None:
        listener = listening(self)
        self.peer = socket.create_connection(listener.getsockname())
        self.addCleanup(self.peer.close)
        self.peer.settimeout(5)
        accepted, _ = listener.accept()
        self.socket = CountingSocket(fileno=accepted.detach())
        self.reactor = FakeReactor()
        self.protocol = self.protocolClass()
        self.transport = serveSocket(
            self.reactor, self.socket, Factory.forProtocol(lambda: self.protocol)
        )
        assert self.transport is not None
        self.addCleanup(self.transport.connectionLost, Failure(ConnectionDone()))

    def fillBuffers(self) -> None:
        """
        Make the transport's kernel send buffer and the peer's receive
        buffer small, so that a write of a few hundred KiB is not all taken
        at once.
        """
        handle = self.transport.getHandle()
        assert handle is not None
        handle.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        self.peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)

    def drain(self, size: int) -> bytes:
        """
        Read from C{peer}, end the reactor's turn and dispatch the
        transport's writability until C{size} bytes arrived (at most 2000
        rounds of up to 10 ms).
        """
        received = b""
        for _ in range(2_000):
            if len(received) >= size:
                break
            self.reactor.advance(0)
            select.select([self.peer], [], [], 0.01)
            received += readAll(self.peer, size - len(received))
            if self.transport in self.reactor.writers:
                self.reactor.dispatch(self.transport, read=False)
        return received


class WriteTests(TransportTestCase):
    """
    L{SocketTransport.write} sends at the end of the reactor's turn, and
    keeps only what the kernel did not take.
    """

    def test_interfaces(self) -> None:
        """
        The transport is what Twisted's TCP server transport is to its
        protocol and to the reactor.
        """
        for interface in (
            IReadWriteDescriptor,
            IHalfCloseableDescriptor,
            ITCPTransport,
            ISystemHandle,
            IConsumer,
            IPushProducer,
        ):
            self.assertTrue(verifyObject(interface, self.transport), interface)
        self.assertIs(self.protocol.transport, self.transport)
        self.assertEqual(self.reactor.readers, {self.transport})

    def test_oneSendPerTurn(self) -> None:
        """
        The writes of one turn of the reactor are sent together, in one
        C{send()}, once the turn is done with its calls; the kernel takes
        them all, so the reactor is never asked to watch for writability.
        """
        self.transport.write(b"hello")
        self.transport.writeSequence([b", ", b"world"])
        self.assertEqual((self.socket.sends, self.transport.unsentBytes()), (0, 12))
        self.reactor.advance(0)
        self.assertEqual(self.peer.recv(100), b"hello, world")
        self.assertEqual((self.socket.sends, self.transport.unsentBytes()), (1, 0))
        self.assertEqual(self.reactor.writerAdds, 0)
        self.transport.write(b"next turn")
        self.reactor.advance(0)
        self.assertEqual(self.peer.recv(100), b"next turn")
        self.assertEqual((self.socket.sends, self.reactor.writerAdds), (2, 0))

    def test_oneCallPerTurn(self) -> None:
        """
        The transports of one L{WriteBatch} written to in one turn ask the
        reactor for one call between them.
        """
        batch = WriteBatch(self.reactor)
        sent: list[str] = []

        class Sending:
            def __init__(self, name: str) -> None:
                self.name = name

            def sendWritten(self) -> None:
                sent.append(self.name)

        batch.add(Sending("a"))
        batch.add(Sending("b"))
        self.assertEqual(len(self.reactor.getDelayedCalls()), 1)
        self.reactor.advance(0)
        self.assertEqual(sent, ["a", "b"])

    def test_partialThenDrain(self) -> None:
        """
        What the kernel does not take is kept, the reactor watches for
        writability, and later writes queue behind it; once all is sent the
        watch stops, and the peer got every byte in order.
        """
        self.fillBuffers()
        data = bytes(range(256)) * 1024
        self.transport.write(data)
        self.transport.write(b"tail 1,")
        self.transport.writeSequence([b"tail ", b"2"])
        self.reactor.advance(0)
        self.assertIn(self.transport, self.reactor.writers)
        left = self.transport.unsentBytes()
        self.assertTrue(0 < left <= len(data) + 13, left)
        # The close watch counts them (and the kernel's send queue).
        self.assertGreaterEqual(unsentBytes(self.transport), left)
        self.assertEqual(self.drain(len(data) + 13), data + b"tail 1,tail 2")
        self.assertEqual(self.transport.unsentBytes(), 0)
        self.assertEqual(self.reactor.writers, set())

    def test_pushProducer(self) -> None:
        """
        A push producer is paused once more than the buffer size is unsent,
        and resumed once all of it is sent; small writes pause nothing.
        """
        producer = RecordingProducer()
        self.transport.registerProducer(producer, True)
        self.transport.write(b"x" * 100)
        self.assertEqual(producer.calls, [])
        self.fillBuffers()
        self.transport.write(b"y" * (BUFFER_SIZE * 4))
        self.assertEqual(producer.calls, ["pause"])
        self.drain(100 + BUFFER_SIZE * 4)
        self.assertEqual(producer.calls, ["pause", "resume"])

    def test_pushProducerSentInTurn(self) -> None:
        """
        A push producer paused by the writes of one turn is resumed when
        the turn's writes are sent, if the kernel took them all: without
        watching for writability.
        """
        producer = RecordingProducer()
        self.transport.registerProducer(producer, True)
        self.transport.write(b"x" * 100)
        self.transport.write(b"y" * BUFFER_SIZE)
        self.assertEqual(producer.calls, ["pause"])
        self.reactor.advance(0)
        self.assertEqual(self.transport.unsentBytes(), 0)
        self.assertEqual(producer.calls, ["pause", "resume"])
        self.assertEqual(self.reactor.writerAdds, 0)
        self.assertEqual(len(readAll(self.peer, BUFFER_SIZE + 100)), BUFFER_SIZE + 100)

    def test_pullProducer(self) -> None:
        """
        A pull producer is asked for data when it registers, and again each
        time what it wrote was sent.
        """
        transport = self.transport

        class Pull:
            calls = 0

            def resumeProducing(self) -> None:
                self.calls += 1
                transport.write(b"chunk")

            def stopProducing(self) -> None:
                pass

        producer = Pull()
        transport.registerProducer(producer, False)
        self.assertEqual(producer.calls, 1)
        self.reactor.advance(0)
        self.assertIn(transport, self.reactor.writers)
        self.reactor.dispatch(transport, read=False)
        self.assertEqual(producer.calls, 2)
        transport.unregisterProducer()
        self.reactor.advance(0)
        self.assertEqual(producer.calls, 2)
        self.assertEqual(self.reactor.writers, set())
        self.assertEqual(self.peer.recv(100), b"chunkchunk")

    def test_producerStoppedWhenLost(self) -> None:
        """
        A registered producer is stopped when the connection ends, and one
        registered after is stopped at once.
        """
        producer = RecordingProducer()
        self.transport.registerProducer(producer, True)
        self.transport.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(producer.calls, ["stop"])
        late = RecordingProducer()
        self.transport.registerProducer(late, True)
        self.assertEqual(late.calls, ["stop"])

    def test_producerFailsToStop(self) -> None:
        """
        A producer that raises when it is stopped is logged; the socket
        is closed all the same, and the protocol told.
        """

        class Failing(RecordingProducer):
            def stopProducing(self) -> None:
                raise RuntimeError("cannot stop")

        self.transport.registerProducer(Failing(), True)
        self.transport.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(len(self.protocol.lost), 1)
        self.assertEqual(self.socket.fileno(), -1)
        self.assertEqual(self.peer.recv(1), b"")

    def test_pauseReading(self) -> None:
        """
        As a push producer of the peer's bytes, the transport stops and
        starts reading.
        """
        self.transport.pauseProducing()
        self.assertEqual(self.reactor.readers, set())
        self.transport.resumeProducing()
        self.assertEqual(self.reactor.readers, {self.transport})


class EndingTests(TransportTestCase):
    """
    How a L{SocketTransport} ends its connection, and how it is told the
    connection ended.
    """

    def test_read(self) -> None:
        """
        The peer's bytes go to the protocol.
        """
        self.peer.sendall(b"request")
        self.reactor.dispatch(self.transport, read=True)
        self.assertEqual(self.protocol.received, [b"request"])

    def test_loseConnectionAfterFlush(self) -> None:
        """
        L{SocketTransport.loseConnection} stops reading, sends what is
        buffered, and only then closes the socket: the peer gets every byte
        and then the end of the stream; the protocol is told once, with
        L{ConnectionDone}.
        """
        self.fillBuffers()
        data = b"z" * (BUFFER_SIZE * 4)
        self.transport.write(data)
        self.transport.loseConnection()
        self.assertEqual(self.reactor.readers, set())
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(self.protocol.lost, [])
        self.assertEqual(self.drain(len(data)), data)
        self.assertEqual(len(self.protocol.lost), 1)
        self.protocol.lost[0].trap(ConnectionDone)
        self.assertEqual(self.peer.recv(1), b"")
        self.assertEqual(self.transport.fileno(), -1)

    def test_loseConnectionWaitsForPausedProducer(self) -> None:
        """
        A push producer the transport paused is resumed, not cut off, when
        the buffer drains after L{SocketTransport.loseConnection}; the
        connection closes once it unregisters.
        """
        producer = RecordingProducer()
        self.transport.registerProducer(producer, True)
        self.fillBuffers()
        data = b"p" * (BUFFER_SIZE * 4)
        self.transport.write(data)
        self.transport.loseConnection()
        self.drain(len(data))
        self.assertEqual(
            (producer.calls, self.protocol.lost), (["pause", "resume"], [])
        )
        self.transport.unregisterProducer()
        self.reactor.dispatch(self.transport, read=False)
        self.assertEqual(len(self.protocol.lost), 1)

    def test_abort(self) -> None:
        """
        L{SocketTransport.abortConnection} drops what is unsent, watches the
        socket no more, and in the reactor's next turn resets the
        connection; the protocol is told once, with L{ConnectionAborted}.
        """
        self.fillBuffers()
        self.transport.write(b"a" * (BUFFER_SIZE * 4))
        self.transport.abortConnection()
        self.assertEqual((self.reactor.readers, self.reactor.writers), (set(), set()))
        self.transport.write(b"more")
        self.transport.resumeProducing()
        self.assertEqual(self.reactor.readers, set())
        self.transport.loseConnection()
        self.assertEqual(self.reactor.writers, set())
        self.assertEqual(self.protocol.lost, [])
        self.reactor.advance(0)
        self.assertEqual(len(self.protocol.lost), 1)
        self.protocol.lost[0].trap(ConnectionAborted)
        with self.assertRaises(ConnectionResetError):
            for _ in range(1000):
                if not self.peer.recv(1 << 16):
                    break

    def test_resetWhileReading(self) -> None:
        """
        A peer that resets the connection ends it with one
        L{ConnectionLost}, and nothing is logged.
        """
        reset(self.peer)
        self.reactor.dispatch(self.transport, read=True)
        self.assertEqual(len(self.protocol.lost), 1)
        self.protocol.lost[0].trap(ConnectionLost)
        self.assertEqual(self.protocol.received, [])
        self.transport.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(len(self.protocol.lost), 1)

    def test_resetWhileWriting(self) -> None:
        """
        A send to a connection the peer reset does not end it in the
        middle of the reactor's calls: the transport asks to be told it is
        writable, and then ends it with one L{ConnectionLost}.
        """
        reset(self.peer)
        self.transport.write(b"answer")
        self.reactor.advance(0)
        self.assertEqual(self.protocol.lost, [])
        self.assertIn(self.transport, self.reactor.writers)
        self.reactor.dispatch(self.transport, read=False)
        self.assertEqual(len(self.protocol.lost), 1)
        self.protocol.lost[0].trap(ConnectionLost)

    def test_lostOnce(self) -> None:
        """
        L{SocketTransport.connectionLost} tells the protocol once, however
        often it is called (an abort, then the reactor's C{disconnectAll}).
        """
        self.transport.abortConnection()
        self.reactor.advance(0)
        self.transport.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(len(self.protocol.lost), 1)
        self.assertTrue(self.transport.disconnected)
        self.assertFalse(self.transport.connected)

    def test_endOfInput(self) -> None:
        """
        A peer that closes its side ends the connection of a protocol that
        is not half-closeable, with L{ConnectionDone}.
        """
        self.peer.shutdown(socket.SHUT_WR)
        self.reactor.dispatch(self.transport, read=True)
        self.assertEqual(len(self.protocol.lost), 1)
        self.protocol.lost[0].trap(ConnectionDone)


class SendFromThreadTests(TransportTestCase):
    """
    L{SocketTransport.sendFromThread} sends at once, from another thread,
    only while nothing written before waits and the connection is open; and
    never once the socket is closed.
    """

    def inThread(self, data: bytes) -> int | None:
        """
        Call C{sendFromThread(data)} in a thread of its own.
        """
        result: list[int | None] = []
        thread = threading.Thread(
            target=lambda: result.append(self.transport.sendFromThread(data))
        )
        thread.start()
        thread.join(10)
        self.assertEqual(len(result), 1)
        return result[0]

    def test_sends(self) -> None:
        """
        An open connection with nothing unsent sends at once, in one
        C{send()}, without the reactor: it says how many bytes went.
        """
        self.assertEqual(self.inThread(b"response"), 8)
        self.assertEqual(self.peer.recv(100), b"response")
        self.assertEqual(self.socket.sends, 1)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_partial(self) -> None:
        """
        When the kernel takes part of the bytes, that part is sent and
        counted; the caller writes the rest.
        """
        self.fillBuffers()
        data = bytes(range(256)) * 4096
        sent = self.inThread(data)
        assert sent is not None
        self.assertTrue(0 < sent < len(data), sent)
        self.transport.write(data[sent:])
        self.assertEqual(self.drain(len(data)), data)

    def test_notWhileUnsent(self) -> None:
        """
        Nothing is sent while bytes written before wait (in this turn of the
        reactor, or for writability): they would come after.
        """
        self.transport.write(b"first")
        self.assertIsNone(self.inThread(b"second"))
        self.reactor.advance(0)
        self.fillBuffers()
        self.transport.write(b"x" * (BUFFER_SIZE * 4))
        self.reactor.advance(0)
        self.assertIn(self.transport, self.reactor.writers)
        self.assertIsNone(self.inThread(b"second"))
        self.assertEqual(self.socket.sends, 2)

    def test_notWhileClosing(self) -> None:
        """
        Nothing is sent once the connection is closing (cleanly, its writing
        half, or by an abort).
        """
        for close in ("loseConnection", "loseWriteConnection", "abortConnection"):
            self.setUp()
            getattr(self.transport, close)()
            self.assertIsNone(self.inThread(b"late"), close)
            self.assertEqual(self.socket.sends, 0, close)

    def test_notOnceClosed(self) -> None:
        """
        Once the connection is lost, nothing is sent: not even to a new
        socket that the kernel gave the same descriptor number.
        """
        fileno = self.transport.fileno()
        self.transport.connectionLost(Failure(ConnectionDone()))
        listener = listening(self)
        other = socket.create_connection(listener.getsockname())
        self.addCleanup(other.close)
        accepted, _ = listener.accept()
        self.addCleanup(accepted.close)
        self.assertIn(fileno, (listener.fileno(), other.fileno(), accepted.fileno()))
        self.assertIsNone(self.inThread(b"not yours"))
        for sock in (other, accepted):
            sock.setblocking(False)
            with self.assertRaises(BlockingIOError):
                sock.recv(100)

    def test_failed(self) -> None:
        """
        A send that fails (the peer reset the connection) sends nothing and
        says so; the transport finds out in the I/O thread.
        """
        reset(self.peer)
        # The reset arrives at once on the loopback.
        self.assertIsNone(self.inThread(b"to nobody"))
        self.assertEqual(self.protocol.lost, [])


class HalfCloseTests(TransportTestCase):
    """
    A L{SocketTransport} under an C{IHalfCloseableProtocol}.
    """

    protocolClass = HalfCloser

    def test_peerCloses(self) -> None:
        """
        The peer's end of input is the protocol's C{readConnectionLost}:
        the connection stays, reading stops for good, and writes still go
        out.
        """
        self.peer.shutdown(socket.SHUT_WR)
        self.reactor.dispatch(self.transport, read=True)
        assert isinstance(self.protocol, HalfCloser)
        self.assertEqual((self.protocol.halves, self.protocol.lost), (["read"], []))
        self.transport.resumeProducing()
        self.assertEqual(self.reactor.readers, set())
        self.transport.write(b"late answer")
        self.reactor.advance(0)
        self.assertEqual(self.peer.recv(100), b"late answer")

    def test_serverCloses(self) -> None:
        """
        L{SocketTransport.loseWriteConnection} sends what is buffered, then
        ends the peer's input and tells the protocol; the peer can still
        send.
        """
        self.transport.write(b"last words")
        self.transport.loseWriteConnection()
        self.reactor.dispatch(self.transport, read=False)
        assert isinstance(self.protocol, HalfCloser)
        self.assertEqual(self.protocol.halves, ["write"])
        self.assertEqual(self.peer.recv(100), b"last words")
        self.assertEqual(self.peer.recv(100), b"")
        self.transport.write(b"ignored")
        self.peer.sendall(b"still talking")
        self.reactor.dispatch(self.transport, read=True)
        self.assertEqual(self.protocol.received, [b"still talking"])
        self.transport.loseConnection()
        self.assertEqual(len(self.protocol.lost), 1)


class AddressTests(SynchronousTestCase):
    """
    L{serveSocket} gives the addresses Twisted's transports give.
    """

    def serve(
        self, listener: socket.socket, client: socket.socket
    ) -> tuple[SocketTransport, list[Any]]:
        """
        Accept C{client}'s connection on C{listener} and serve it.
        """
        self.addCleanup(client.close)
        accepted, _ = listener.accept()
        built: list[Any] = []

        class Recording(Factory):
            def buildProtocol(self, addr: Any) -> Protocol:
                built.append(addr)
                return Recorder()

        transport = serveSocket(FakeReactor(), accepted, Recording())
        assert transport is not None
        self.addCleanup(transport.connectionLost, Failure(ConnectionDone()))
        return transport, built

    def test_ipv4(self) -> None:
        """
        TCP over IPv4: C{IPv4Address}es; the factory gets the peer's.
        """
        listener = listening(self)
        client = socket.create_connection(listener.getsockname())
        transport, built = self.serve(listener, client)
        peer = IPv4Address("TCP", *client.getsockname())
        self.assertEqual(transport.getPeer(), peer)
        self.assertEqual(built, [peer])
        self.assertEqual(
            transport.getHost(), IPv4Address("TCP", *listener.getsockname())
        )
        transport.setTcpNoDelay(True)
        self.assertTrue(transport.getTcpNoDelay())
        transport.setTcpKeepAlive(True)
        self.assertTrue(transport.getTcpKeepAlive())
        self.assertIn(str(peer.port), transport.logPrefix())

    def test_ipv6(self) -> None:
        """
        TCP over IPv6: C{IPv6Address}es.
        """
        listener = socket.socket(socket.AF_INET6)
        self.addCleanup(listener.close)
        try:
            listener.bind(("::1", 0))
        except OSError:
            raise SkipTest("no IPv6 on this machine")
        listener.listen(1)
        client = socket.create_connection(listener.getsockname()[:2])
        transport, built = self.serve(listener, client)
        peer = transport.getPeer()
        self.assertEqual(peer, IPv6Address("TCP", "::1", client.getsockname()[1]))
        self.assertEqual(built, [peer])
        self.assertEqual(
            transport.getHost(), IPv6Address("TCP", "::1", listener.getsockname()[1])
        )

    def test_unix(self) -> None:
        """
        A UNIX socket: C{UNIXAddress}es, the factory given the socket's own
        (as Twisted gives it), an unnamed peer's C{None}; C{TCP_NODELAY}
        is ignored.
        """
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        path = os.path.join(directory, "s")
        listener = socket.socket(socket.AF_UNIX)
        self.addCleanup(listener.close)
        listener.bind(path)
        listener.listen(1)
        client = socket.socket(socket.AF_UNIX)
        client.connect(path)
        transport, built = self.serve(listener, client)
        self.assertEqual(transport.getHost(), UNIXAddress(path))
        self.assertEqual(transport.getPeer(), UNIXAddress(None))
        self.assertEqual(built, [UNIXAddress(path)])
        transport.setTcpNoDelay(True)
        self.assertFalse(transport.getTcpNoDelay())

    def test_noProtocol(self) -> None:
        """
        A factory that builds no protocol gets the socket closed.
        """
        listener = listening(self)
        client = socket.create_connection(listener.getsockname())
        self.addCleanup(client.close)
        accepted, _ = listener.accept()

        class Refusing(Factory):
            def buildProtocol(self, addr: Any) -> None:
                return None

        self.assertIsNone(serveSocket(FakeReactor(), accepted, Refusing()))
        self.assertEqual(accepted.fileno(), -1)
        client.settimeout(5)
        self.assertEqual(client.recv(1), b"")


class ErrnoTests(SynchronousTestCase):
    """
    Errors that mean "not now" leave the connection be.
    """

    def test_wouldBlock(self) -> None:
        """
        A read with nothing to read (EAGAIN) changes nothing.
        """
        one, other = socket.socketpair()
        self.addCleanup(other.close)
        protocol = Recorder()
        reactor = FakeReactor()
        transport = serveSocket(reactor, one, Factory.forProtocol(lambda: protocol))
        assert transport is not None
        self.addCleanup(transport.connectionLost, Failure(ConnectionDone()))
        self.assertIsNone(transport.doRead())
        self.assertEqual((protocol.received, protocol.lost), ([], []))
        self.assertEqual(errno.EAGAIN, errno.EWOULDBLOCK)
