# -*- test-case-name: tests.server.test_ports -*-
"""
Tests for L{twsgi.server.ports}: twsgi's own listening port, the connection
gate, and closing a port without resetting its backlog.
"""

from __future__ import annotations

import errno
import os
import queue
import shutil
import socket
import stat
import struct
import sys
import tempfile
import threading
import time
from typing import Any

from twisted.internet import defer, protocol, ssl
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.error import CannotListenError
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactor, StringTransport
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.helpers.handshake import connecting, halfOpen, hear, outcome
from twsgi.server import halfopen, ports
from twsgi.server.halfopen import freshHandshakes
from twsgi.server.plainhttp import PLAIN_HTTP_ANSWER
from twsgi.server.ports import (
    ACCEPT_BUDGET,
    BACKOFF,
    SETTLE,
    SETTLE_MAX,
    SETTLE_POLL,
    WAITING_POLL,
    ConnectionGate,
    ListeningPort,
    ListeningReactor,
    adoptedPort,
    closeAcceptingBacklog,
    listeningReactor,
    refuseConnections,
    tcpPort,
    unixPort,
)
from twsgi.server.transport import SocketTransport
from twsgi.wsgi.pool import WorkerPool


class FakeReactor(Clock):
    """
    A clock that records the ports it watches in C{readers}, and the
    sockets of the connections served on a L{SocketTransport} in
    C{adopted}.
    """

    def __init__(self) -> None:
        super().__init__()
        self.readers: set[Any] = set()
        self.adopted: list[socket.socket] = []

    def addReader(self, reader: object) -> None:
        if isinstance(reader, SocketTransport):
            handle = reader.getHandle()
            assert handle is not None
            self.adopted.append(handle)
        else:
            self.readers.add(reader)

    def removeReader(self, reader: object) -> None:
        self.readers.discard(reader)

    def addWriter(self, writer: object) -> None:
        pass

    def removeWriter(self, writer: object) -> None:
        pass

    def close(self) -> None:
        for connection in self.adopted:
            connection.close()


class CountingFactory(protocol.ServerFactory):
    """
    A factory that counts its starts and stops.
    """

    protocol = protocol.Protocol
    starts = 0
    stops = 0

    def doStart(self) -> None:
        self.starts += 1

    def doStop(self) -> None:
        self.stops += 1


class FailingFactory(protocol.ServerFactory):
    """
    A factory that fails to build a protocol.
    """

    def buildProtocol(self, addr: Any) -> protocol.Protocol | None:
        raise RuntimeError("no protocol")


class FailingSocket:
    """
    A listening socket whose C{accept} fails with C{error}; C{accepts}
    counts the calls.
    """

    family = socket.AF_INET

    def __init__(self, error: int) -> None:
        self.error = error
        self.accepts = 0

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", 80)

    def setblocking(self, flag: bool) -> None:
        pass

    def fileno(self) -> int:
        return 99

    def accept(self) -> Any:
        self.accepts += 1
        raise OSError(self.error, os.strerror(self.error))

    def shutdown(self, how: int) -> None:
        pass

    def close(self) -> None:
        pass


class PortTestCase(SynchronousTestCase):
    """
    A L{ListeningPort} on a real socket on 127.0.0.1 with a L{FakeReactor}.
    """

    def setUp(self) -> None:
        self.reactor = FakeReactor()
        self.addCleanup(self.reactor.close)
        self.factory = CountingFactory()
        self.port = tcpPort(self.reactor, 0, self.factory, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.address = ("127.0.0.1", self.port.getHost().port)

    def connected(self, count: int) -> list[socket.socket]:
        """
        C{count} clients whose connections the kernel completed.
        """
        clients = []
        for _ in range(count):
            client = connecting(self.address)
            self.addCleanup(client.close)
            self.assertEqual(outcome(client, 5), "connected")
            clients.append(client)
        return clients


class ListeningPortTests(PortTestCase):
    """
    Tests for L{ListeningPort}.
    """

    def test_listens(self) -> None:
        """
        L{tcpPort} binds, listens, starts its factory and watches the
        socket; L{ListeningPort.getHost} is the bound address.
        """
        self.assertEqual(self.reactor.readers, {self.port})
        self.assertEqual(self.factory.starts, 1)
        host = self.port.getHost()
        self.assertIsInstance(host, IPv4Address)
        self.assertEqual(host.host, "127.0.0.1")
        self.assertNotEqual(host.port, 0)
        self.assertTrue(self.port.owned)

    def test_acceptsAndAdopts(self) -> None:
        """
        Readable, the port accepts every waiting connection and serves each
        on a L{SocketTransport}, which owns the accepted socket.
        """
        clients = self.connected(3)
        self.port.doRead()
        self.assertEqual(len(self.reactor.adopted), 3)
        peers = {c.getpeername() for c in self.reactor.adopted}
        self.assertEqual(peers, {c.getsockname() for c in clients})

    def test_resetBeforeAccepted(self) -> None:
        """
        A client that resets its connection before it is accepted (so that
        C{getpeername} fails) is served like any other, with the address
        C{accept} gave, and nothing is logged.
        """
        built: list[Any] = []

        class Recording(protocol.ServerFactory):
            def buildProtocol(self, addr: Any) -> protocol.Protocol:
                built.append(addr)
                return protocol.Protocol()

        self.port.factory = Recording()
        client = socket.create_connection(self.address)
        peer = IPv4Address("TCP", *client.getsockname())
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        self.connected(1)
        self.port.doRead()
        self.assertEqual(built[0], peer)
        self.assertEqual(len(self.reactor.adopted), 2)

    def test_budget(self) -> None:
        """
        One read accepts at most L{ACCEPT_BUDGET} connections, fewer if a
        gate leaves less room; the rest wait for the next read.
        """
        self.assertEqual(ACCEPT_BUDGET, 100)
        self.connected(3)
        self.port.room = lambda: 2
        self.port.doRead()
        self.assertEqual(len(self.reactor.adopted), 2)
        self.port.room = None
        self.port.doRead()
        self.assertEqual(len(self.reactor.adopted), 3)

    def test_pauseAndResume(self) -> None:
        """
        L{ListeningPort.stopReading} and L{ListeningPort.startReading}
        remove and add the reader.
        """
        self.port.stopReading()
        self.assertEqual(self.reactor.readers, set())
        self.port.startReading()
        self.assertEqual(self.reactor.readers, {self.port})

    def test_acceptPending(self) -> None:
        """
        L{ListeningPort.acceptPending} accepts the whole backlog at once,
        even while paused.
        """
        self.connected(3)
        self.port.stopReading()
        self.assertEqual(self.port.acceptPending(), 3)
        self.assertEqual(len(self.reactor.adopted), 3)
        self.assertEqual(self.port.acceptPending(), 0)

    def test_stopListening(self) -> None:
        """
        L{ListeningPort.stopListening} returns a fired L{Deferred}, stops
        watching, stops the factory and closes the socket: new connections
        are refused.
        """
        self.successResultOf(self.port.stopListening())
        self.assertEqual(self.reactor.readers, set())
        self.assertEqual(self.factory.stops, 1)
        self.assertEqual(self.port.fileno(), -1)
        client = connecting(self.address)
        self.addCleanup(client.close)
        self.assertEqual(outcome(client, 5), "refused")
        self.successResultOf(self.port.stopListening())
        self.assertEqual(self.factory.stops, 1)

    def test_startReadingAfterStop(self) -> None:
        """
        A stopped port does not watch its (closed) socket again.
        """
        self.port.stopListening()
        self.port.startReading()
        self.assertEqual(self.reactor.readers, set())

    def test_adoptionFails(self) -> None:
        """
        A connection that fails to start (its factory raises) is logged and
        closed; the port goes on accepting.
        """
        self.port.factory = FailingFactory()
        clients = self.connected(2)
        self.port.doRead()
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 2)
        # The client's request was never read: the close resets it.
        clients[0].settimeout(5)
        self.assertRaises(ConnectionResetError, clients[0].recv, 1)

    def test_cannotListen(self) -> None:
        """
        A port already in use is a L{CannotListenError} naming the port.
        """
        error = self.assertRaises(
            CannotListenError,
            tcpPort,
            self.reactor,
            self.address[1],
            self.factory,
            interface="127.0.0.1",
        )
        self.assertEqual(error.port, self.address[1])
        self.assertEqual(error.socketError.errno, errno.EADDRINUSE)


class OutOfDescriptorsTests(SynchronousTestCase):
    """
    Out of file descriptors, a port stops reading for L{BACKOFF} seconds.
    """

    def test_backoff(self) -> None:
        """
        C{EMFILE} (and C{ENFILE}) stop the reading at once, log one warning
        however often it recurs, and reading resumes after L{BACKOFF}
        seconds.
        """
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        reactor = FakeReactor()
        for code in (errno.EMFILE, errno.ENFILE):
            listener = FailingSocket(code)
            port = ListeningPort(
                reactor,
                listener,  # type: ignore[arg-type]
                CountingFactory(),
            )
            port.startListening()
            port.doRead()
            self.assertEqual((listener.accepts, reactor.readers), (1, set()))
            port.acceptPending()
            reactor.advance(BACKOFF - 0.01)
            self.assertEqual(reactor.readers, set())
            reactor.advance(0.01)
            self.assertEqual(reactor.readers, {port})
            port.doRead()
            reactor.advance(BACKOFF)
            self.assertEqual((listener.accepts, reactor.readers), (3, {port}))
            port.stopReading()
        warnings = [e for e in events if e.get("log_level") == LogLevel.warn]
        self.assertEqual(len(warnings), 2)
        self.assertEqual(
            formatEvent(warnings[0]),
            "twsgi cannot accept connections on 127.0.0.1:80 "
            f"({os.strerror(errno.EMFILE)}); retrying in 0.1s",
        )

    def test_backoffTold(self) -> None:
        """
        Each time the port stops accepting for want of descriptors, and
        only then (not again for a failure while it already waits), it
        calls its C{onOutOfResources}.
        """
        reactor = FakeReactor()
        port = ListeningPort(
            reactor,
            FailingSocket(errno.EMFILE),  # type: ignore[arg-type]
            CountingFactory(),
        )
        told: list[None] = []
        port.onOutOfResources = lambda: told.append(None)
        port.startListening()
        port.doRead()
        port.acceptPending()
        self.assertEqual(len(told), 1)
        reactor.advance(BACKOFF)
        port.doRead()
        self.assertEqual(len(told), 2)
        port.stopListening()

    def test_stoppedWhileBackingOff(self) -> None:
        """
        A port stopped while backing off does not start reading again.
        """
        reactor = FakeReactor()
        port = ListeningPort(
            reactor,
            FailingSocket(errno.EMFILE),  # type: ignore[arg-type]
            CountingFactory(),
        )
        port.startListening()
        port.doRead()
        port.stopListening()
        reactor.advance(BACKOFF)
        self.assertEqual((reactor.readers, reactor.getDelayedCalls()), (set(), []))

    def test_scopedIPv6Host(self) -> None:
        """
        The address of a port on a link-local IPv6 address keeps its scope
        (C{%interface}), its flow label and scope id, as Twisted's ports
        give it.
        """

        class Scoped(FailingSocket):
            family = socket.AF_INET6

            def getsockname(self) -> Any:
                return ("fe80::1", 8000, 0, 1)

        port = ListeningPort(
            FakeReactor(),
            Scoped(errno.EAGAIN),  # type: ignore[arg-type]
            CountingFactory(),
        )
        interface = socket.if_indextoname(1)
        self.assertEqual(
            port.getHost(), IPv6Address("TCP", f"fe80::1%{interface}", 8000, 0, 1)
        )

    def test_connectionGone(self) -> None:
        """
        A connection gone before it was accepted (C{ECONNABORTED}) is
        skipped without a pause.
        """
        reactor = FakeReactor()
        listener = FailingSocket(errno.ECONNABORTED)
        port = ListeningPort(
            reactor,
            listener,  # type: ignore[arg-type]
            CountingFactory(),
        )
        port.startListening()
        port.room = lambda: 3
        port.doRead()
        self.assertEqual((listener.accepts, reactor.readers), (3, {port}))


class UNIXPortTests(SynchronousTestCase):
    """
    L{unixPort} and L{adoptedPort} on UNIX sockets.
    """

    def setUp(self) -> None:
        self.reactor = FakeReactor()
        self.addCleanup(self.reactor.close)
        # Not under _trial_temp: AF_UNIX paths are short.
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, True)
        self.path = os.path.join(directory, "s.sock")

    def test_modeAndUnlink(self) -> None:
        """
        A UNIX port's file gets the mode asked for and is removed once the
        port stops listening.
        """
        port = unixPort(self.reactor, self.path, CountingFactory(), mode=0o640)
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o640)
        self.assertEqual(port.getHost(), UNIXAddress(self.path))
        port.stopListening()
        self.assertFalse(os.path.exists(self.path))

    def test_lockFile(self) -> None:
        """
        With C{wantPID}, a second port on the same path cannot take the lock;
        the first releases it when it stops.
        """
        port = unixPort(self.reactor, self.path, CountingFactory(), wantPID=1)
        error = self.assertRaises(
            CannotListenError,
            unixPort,
            self.reactor,
            self.path,
            CountingFactory(),
            wantPID=1,
        )
        self.assertIn("lock", str(error))
        port.stopListening()
        self.assertFalse(os.path.exists(self.path + ".lock"))

    def test_adoptedLeftAsItIs(self) -> None:
        """
        An adopted UNIX socket keeps its file and its mode, and its other
        holder goes on accepting after the adopted copy closed (no
        shutdown).
        """
        owner = unixPort(self.reactor, self.path, CountingFactory(), mode=0o600)
        self.addCleanup(owner.stopListening)
        owner.stopReading()
        adopted = adoptedPort(self.reactor, owner.fileno(), CountingFactory())
        self.assertFalse(adopted.owned)
        self.assertEqual(adopted.getHost(), UNIXAddress(self.path))
        adopted.stopListening()
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)
        client = socket.socket(socket.AF_UNIX)
        self.addCleanup(client.close)
        client.connect(self.path)
        self.assertEqual(owner.acceptPending(), 1)


class AdoptedTCPTests(PortTestCase):
    """
    L{adoptedPort} on an inherited TCP socket.
    """

    def test_notShutDown(self) -> None:
        """
        Closing an adopted copy leaves the socket listening for its other
        holders, with its backlog intact.
        """
        self.port.stopReading()
        adopted = adoptedPort(self.reactor, self.port.fileno(), CountingFactory())
        self.assertEqual(adopted.getHost(), self.port.getHost())
        self.connected(1)
        adopted.stopListening()
        self.connected(1)
        self.assertEqual(self.port.acceptPending(), 2)


class ListeningReactorTests(SynchronousTestCase):
    """
    L{listeningReactor} gives Twisted's endpoints twsgi's ports.
    """

    def test_memoryReactorUnchanged(self) -> None:
        """
        A reactor that does not watch file descriptors is used as it is.
        """
        reactor = MemoryReactor()
        self.assertIs(listeningReactor(reactor), reactor)

    def test_posixReactorWrapped(self) -> None:
        """
        A POSIX reactor is wrapped; everything but listening is its own.
        """
        from twisted.internet import reactor

        wrapped = listeningReactor(reactor)
        self.assertIsInstance(wrapped, ListeningReactor)
        self.assertEqual(wrapped.callLater, reactor.callLater)

    def test_endpoints(self) -> None:
        """
        C{tcp:}, C{tcp6:} and C{ssl:}-like endpoints built on it listen with
        a L{ListeningPort}; C{listenSSL} adds TLS around the factory.
        """
        from twisted.internet.endpoints import serverFromString

        reactor = FakeReactor()
        wrapped = ListeningReactor(reactor)
        for description in ("tcp:0:interface=127.0.0.1", "tcp6:0:interface=\\:\\:1"):
            try:
                port = self.successResultOf(
                    serverFromString(wrapped, description).listen(CountingFactory())
                )
            except Exception as e:  # pragma: no cover - no IPv6 here
                if "::1" in description:
                    raise SkipTest(f"no IPv6 loopback: {e}")
                raise
            self.assertIsInstance(port, ListeningPort)
            port.stopListening()
        factory = CountingFactory()
        port = wrapped.listenSSL(
            0, factory, ssl.CertificateOptions(), interface="127.0.0.1"
        )
        self.addCleanup(port.stopListening)
        self.assertIsNot(port.factory, factory)
        self.assertIs(port.factory.wrappedFactory, factory)  # type: ignore[attr-defined]
        # A plain-HTTP request on it is answered in clear, as on an ssl:
        # listener twsgi builds itself.
        connection = port.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 0))
        transport = StringTransport()
        connection.makeConnection(transport)
        connection.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(transport.value(), PLAIN_HTTP_ANSWER)
        self.assertTrue(transport.disconnecting)


class SockDiagAnswerTests(SynchronousTestCase):
    """
    L{twsgi.server.halfopen._read} reads the parts of C{sock_diag}'s answer.
    """

    def message(self, state: int, retransmits: int, port: int) -> bytes:
        body = struct.pack(
            "=BBBBHH16s16s",
            2,
            state,
            1,
            retransmits,
            socket.htons(port),
            0,
            b"\x7f\x00\x00\x01" + bytes(12),
            bytes(16),
        ) + bytes(20)
        return struct.pack("=IHHII", 16 + len(body), 20, 2, 1, 0) + body

    def end(self, kind: int = 3, error: int = 0) -> bytes:
        return struct.pack("=IHHIIi", 20, kind, 2, 1, 0, error)

    def test_parts(self) -> None:
        """
        Handshakes in C{SYN_RECV} are read across parts until the end.
        """
        found: list[tuple[int, int, bytes]] = []
        self.assertFalse(
            halfopen._read(self.message(3, 0, 8000) + self.message(1, 0, 8001), found)
        )
        self.assertTrue(halfopen._read(self.message(3, 2, 8000) + self.end(), found))
        address = b"\x7f\x00\x00\x01" + bytes(12)
        self.assertEqual(found, [(0, 8000, address), (2, 8000, address)])

    def test_errors(self) -> None:
        """
        An end or an error that carries an error number, an
        acknowledgement, and a message shorter than it should be are
        errors.
        """
        for data in (
            self.end(3, -2),
            self.end(2, -13),
            self.end(2, 0),
            self.message(3, 0, 8000)[:-8],
            struct.pack("=IHHII", 0, 20, 2, 1, 0),
        ):
            self.assertRaises(OSError, halfopen._read, data, [])


class AdoptStreamPortTests(SynchronousTestCase):
    """
    C{adoptStreamPort}, as a C{systemd:} endpoint calls it.
    """

    def test_unixSocketLeftAlone(self) -> None:
        """
        A UNIX socket systemd passes keeps its mode and its file once the
        port stops: systemd owns them.
        """
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "s.sock")
        owner = socket.socket(socket.AF_UNIX)
        self.addCleanup(owner.close)
        owner.bind(path)
        os.chmod(path, 0o600)
        owner.listen(5)
        reactor = ListeningReactor(FakeReactor())
        port = reactor.adoptStreamPort(
            owner.fileno(), socket.AF_UNIX, CountingFactory()
        )
        self.assertIsInstance(port, ListeningPort)
        self.assertFalse(port.owned)
        port.stopListening()
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)


class ConnectionGateTests(PortTestCase):
    """
    Tests for L{ConnectionGate}.
    """

    def test_pauseAndResume(self) -> None:
        """
        At the maximum every port stops reading; below it, they read again.
        """
        gate = ConnectionGate(2)
        other = tcpPort(self.reactor, 0, CountingFactory(), interface="127.0.0.1")
        self.addCleanup(other.stopListening)
        ports = [self.port, other]
        for port in ports:
            gate.watch(port)
        gate.opened()
        self.assertEqual(self.reactor.readers, set(ports))
        gate.opened()
        self.assertEqual(self.reactor.readers, set())
        gate.closed()
        self.assertEqual(self.reactor.readers, set(ports))

    def test_acceptsNoMoreThanRoom(self) -> None:
        """
        A port never accepts more connections than there is room for, and
        none when there is no room (it pauses).
        """
        gate = ConnectionGate(3)
        gate.watch(self.port)
        gate.opened()
        self.connected(4)
        self.port.doRead()
        self.assertEqual(len(self.reactor.adopted), 2)
        gate.opened()
        gate.opened()
        self.port.doRead()
        self.assertEqual(len(self.reactor.adopted), 2)
        self.assertTrue(gate.paused)
        self.assertEqual(self.reactor.readers, set())

    def test_watchWhilePaused(self) -> None:
        """
        A port watched while the gate is closed starts paused.
        """
        gate = ConnectionGate(1)
        gate.opened()
        gate.watch(self.port)
        self.assertEqual(self.reactor.readers, set())

    def test_otherPortsWarned(self) -> None:
        """
        A port that is not a L{ListeningPort} cannot be bounded: a warning
        says so.
        """
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        gate = ConnectionGate(1)
        gate.watch(object())
        self.assertEqual(gate.ports, [])
        self.assertIn("cannot pause", events[-1]["log_format"])


class FakeThreads:
    """
    A thread pool as a L{ConnectionGate} sees it: C{free} threads, and the
    C{whenFree} callback waiting, if any.
    """

    def __init__(self, free: int) -> None:
        self.threads = free
        self.waiting: Any = None

    def free(self) -> int:
        return self.threads

    def whenFree(self, callback: Any) -> bool:
        if self.threads > 0:
            return False
        self.waiting = callback
        return True


class ThreadGateTests(PortTestCase):
    """
    Tests for L{ConnectionGate} on the free threads of a pool (as in a
    worker of C{--workers}).
    """

    def setUp(self) -> None:
        super().setUp()
        self.fromThread: queue.Queue[Any] = queue.Queue()
        self.reactor.callFromThread = (  # type: ignore[attr-defined]
            lambda f, *args: self.fromThread.put((f, args))
        )

    def runFromThread(self) -> None:
        """
        Run the next call handed to the reactor from a thread (waiting for
        it, bounded).
        """
        f, args = self.fromThread.get(timeout=10)
        f(*args)

    def nextTurn(self) -> None:
        """
        Begin the reactor's next turn: run the calls due, but not those
        they make (a real reactor runs them in the turn after; the clock's
        C{advance} would run them at once).
        """
        due, self.reactor.calls = self.reactor.calls, []
        for call in due:
            call.func(*call.args, **call.kw)

    def accept(self, gate: ConnectionGate) -> int:
        """
        Let the port read, and tell C{gate} of each connection it accepts
        (as the site of the port does): how many it accepted.
        """
        before = len(self.reactor.adopted)
        self.port.doRead()
        accepted = len(self.reactor.adopted) - before
        for _ in range(accepted):
            gate.opened()
        return accepted

    def test_freeThreadsBoundRoom(self) -> None:
        """
        A port accepts no more connections than the pool has free threads,
        and fewer by those accepted that the reactor has not read yet (until
        a turn went by without one); with no free thread it pauses, and
        reads again once the pool says a thread is free.
        """
        threads = FakeThreads(2)
        gate = ConnectionGate(threads=threads, reactor=self.reactor)
        gate.watch(self.port)
        self.connected(5)
        self.assertEqual(self.accept(gate), 2)
        # Not read yet: the free threads are theirs.
        self.assertEqual((self.accept(gate), gate.paused), (0, False))
        self.nextTurn()
        self.assertEqual(self.accept(gate), 0)
        # Their requests went to the pool in the turn that began.
        threads.threads = 0
        self.nextTurn()
        self.assertEqual((gate.fresh, self.accept(gate)), (0, 0))
        self.assertEqual((gate.paused, gate.busy), (True, True))
        self.assertEqual(self.reactor.readers, set())
        threads.threads = 1
        threads.waiting()
        self.assertEqual(self.reactor.readers, set())
        self.runFromThread()
        self.assertEqual((gate.paused, gate.busy), (False, False))
        self.assertEqual(self.reactor.readers, {self.port})
        self.assertEqual(self.accept(gate), 1)

    def test_waitingBeyondMaxWaiting(self) -> None:
        """
        With C{maxWaiting}, a port paused for want of a free thread looks at
        its backlog every L{WAITING_POLL} seconds: once that many
        connections wait there, it accepts those beyond C{maxWaiting} less
        one (their requests then meet C{--max-pending}) and stays paused;
        fewer are left to the kernel's queue, for whichever worker frees a
        thread first.  A free thread ends the looking.
        """
        threads = FakeThreads(0)
        gate = ConnectionGate(threads=threads, reactor=self.reactor, maxWaiting=3)
        gate.watch(self.port)
        self.connected(2)
        self.assertEqual(self.accept(gate), 0)
        self.assertEqual((gate.paused, gate.busy), (True, True))
        self.assertEqual(self.port.waiting(), 2)
        self.assertEqual(gate.waiting(), 2)
        self.reactor.advance(WAITING_POLL)
        self.assertEqual((len(self.reactor.adopted), self.port.waiting()), (0, 2))
        self.connected(2)
        self.reactor.advance(WAITING_POLL)
        # 4 wait: the 2 beyond 3 - 1 are accepted.
        self.assertEqual((len(self.reactor.adopted), self.port.waiting()), (2, 2))
        self.assertEqual(self.reactor.readers, set())
        threads.threads = 1
        threads.waiting()
        self.runFromThread()
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        self.assertEqual(self.reactor.readers, {self.port})

    def test_waitingUnknown(self) -> None:
        """
        Without C{maxWaiting} the gate never looks at the backlog; and a
        port whose backlog cannot be known (a UNIX socket) counts none.
        """
        gate = ConnectionGate(threads=FakeThreads(0), reactor=self.reactor)
        gate.watch(self.port)
        self.connected(3)
        self.assertEqual(self.accept(gate), 0)
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        path = self.mktemp()
        unix = unixPort(self.reactor, path, CountingFactory())
        self.addCleanup(unix.stopListening)
        self.assertIsNone(unix.waiting())

    def test_freedMeanwhile(self) -> None:
        """
        A pool that had no free thread as the gate looked, but has one by
        the time the gate would wait for it, leaves the port reading.
        """

        class FreedMeanwhile(FakeThreads):
            def whenFree(self, callback: Any) -> bool:
                return False

        gate = ConnectionGate(threads=FreedMeanwhile(0), reactor=self.reactor)
        gate.watch(self.port)
        self.connected(1)
        self.assertEqual(self.accept(gate), 0)
        self.assertFalse(gate.paused)
        self.assertEqual(self.reactor.readers, {self.port})

    def test_withMaximum(self) -> None:
        """
        With C{maximum} too, the ports read again only once both a thread is
        free and a connection closed.
        """
        threads = FakeThreads(0)
        gate = ConnectionGate(1, threads, self.reactor)
        gate.watch(self.port)
        self.connected(1)
        self.assertEqual(self.accept(gate), 0)
        gate.opened()
        threads.threads = 1
        threads.waiting()
        self.runFromThread()
        self.assertTrue(gate.paused)
        gate.closed()
        self.assertFalse(gate.paused)
        self.assertEqual(self.reactor.readers, {self.port})

    def test_pausesCounted(self) -> None:
        """
        C{onPause} is called each time the ports pause for want of a free
        thread.
        """
        pauses: list[None] = []
        threads = FakeThreads(0)
        gate = ConnectionGate(threads=threads, reactor=self.reactor)
        gate.onPause = lambda: pauses.append(None)
        gate.watch(self.port)
        self.connected(1)
        self.port.doRead()
        self.assertEqual(pauses, [None])

    def test_realPool(self) -> None:
        """
        On a L{WorkerPool} whose threads are all busy, a port pauses; the
        pool thread that frees itself has the reactor resume it.
        """
        pool = WorkerPool(1, 1, name="test")
        pool.start()
        self.addCleanup(pool.stop, 10)
        release, started = threading.Event(), threading.Event()
        self.addCleanup(release.set)

        def task() -> None:
            started.set()
            release.wait(10)

        pool.callInThread(task)
        self.assertTrue(started.wait(10))
        gate = ConnectionGate(threads=pool, reactor=self.reactor)
        gate.watch(self.port)
        self.connected(1)
        self.assertEqual(self.accept(gate), 0)
        self.assertTrue(gate.paused)
        release.set()
        self.runFromThread()
        self.assertFalse(gate.paused)
        self.assertEqual(self.accept(gate), 1)

    def test_needsReactor(self) -> None:
        """
        A gate on threads without a reactor (to be called back in) is
        refused.
        """
        self.assertRaises(ValueError, ConnectionGate, 0, FakeThreads(1))


class CloseAcceptingBacklogTests(PortTestCase):
    """
    L{refuseConnections} and L{closeAcceptingBacklog} on a real listening
    socket: no connection the kernel completed is reset by the close.
    """

    def setUp(self) -> None:
        if not sys.platform.startswith("linux"):
            raise SkipTest("socket filters are Linux's")
        super().setUp()

    def test_queuedStayNewWait(self) -> None:
        """
        Once L{refuseConnections} is done, a connection completed before
        stays in the queue to be accepted, and a new one is not completed.
        """
        self.connected(1)
        self.assertTrue(refuseConnections(self.port))
        after = connecting(self.address)
        self.addCleanup(after.close)
        self.assertEqual(outcome(after, 0.3), "waiting")
        self.port.doRead()
        self.assertEqual(len(self.reactor.adopted), 1)

    def test_halfOpenCompletes(self) -> None:
        """
        A handshake the server answered before L{refuseConnections} still
        completes after it (only new handshakes are dropped, not their last
        packet) and is accepted: closing the port would otherwise reset it.
        """
        client = halfOpen(self.address)
        self.addCleanup(client.close)
        self.assertEqual(outcome(client, 0.2), "waiting")
        self.assertTrue(refuseConnections(self.port))
        hear(client)
        # The server's answer is sent again about a second later.
        self.assertEqual(outcome(client, 5), "connected")
        self.assertEqual(self.port.acceptPending(), 1)
        self.assertEqual(self.reactor.adopted[0].getpeername(), client.getsockname())

    def test_backlogAcceptedLateRefused(self) -> None:
        """
        L{closeAcceptingBacklog} accepts every connection the kernel
        completed, then closes: a client whose handshake was dropped after
        the refusal began is refused, never reset.
        """
        self.connected(2)
        self.port.stopReading()
        self.assertTrue(refuseConnections(self.port))
        late = connecting(self.address)
        self.addCleanup(late.close)
        closing = closeAcceptingBacklog(self.port)
        self.reactor.advance(SETTLE)
        self.successResultOf(closing)
        self.assertEqual(len(self.reactor.adopted), 2)
        self.assertEqual(self.port.fileno(), -1)
        # The dropped handshake is sent again about a second later.
        self.assertEqual(outcome(late, 5), "refused")

    def advance(self, seconds: float) -> None:
        """
        Move the clock on by C{seconds}, a L{SETTLE_POLL} at a time.
        """
        for _ in range(round(seconds / SETTLE_POLL)):
            self.reactor.advance(SETTLE_POLL)

    def halfOpen(self) -> socket.socket:
        """
        A client whose handshake the server has answered (see
        L{tests.helpers.handshake.halfOpen}).
        """
        client = halfOpen(self.address)
        self.addCleanup(client.close)
        self.assertEqual(outcome(client, 0.05), "waiting")
        return client

    def test_settle(self) -> None:
        """
        L{closeAcceptingBacklog} keeps the socket open, once the refusal
        began, for as long as a fresh handshake the server had answered is
        not complete (a client with a long round trip): it completes
        meanwhile, and its connection is accepted, not reset.
        """
        client = self.halfOpen()
        closing = closeAcceptingBacklog(self.port)
        self.advance(0.5)
        self.assertNoResult(closing)
        hear(client)
        self.assertEqual(outcome(client, 5), "connected")
        self.advance(1.0)
        self.successResultOf(closing)
        self.assertEqual(self.port.fileno(), -1)
        self.assertEqual(len(self.reactor.adopted), 1)

    def test_settleAtOnce(self) -> None:
        """
        With no fresh handshake left half done, L{closeAcceptingBacklog}
        closes the socket L{SETTLE_POLL} seconds after the refusal began.
        """
        self.connected(1)
        closing = closeAcceptingBacklog(self.port)
        self.assertNoResult(closing)
        self.reactor.advance(SETTLE_POLL)
        self.successResultOf(closing)
        self.assertEqual(len(self.reactor.adopted), 1)

    def test_settleLooksLessOften(self) -> None:
        """
        It looks again twice as long after each look.
        """
        looks: list[float] = []

        def fresh(host: object) -> int:
            looks.append(self.reactor.seconds())
            return 1

        self.patch(ports, "freshHandshakes", fresh)
        closing = closeAcceptingBacklog(self.port)
        while not closing.called:
            # To the next call, exactly.
            next = min(call.getTime() for call in self.reactor.getDelayedCalls())
            self.reactor.advance(next - self.reactor.seconds())
        self.assertEqual(
            [round(t, 2) for t in looks], [0.02, 0.06, 0.14, 0.3, 0.62, 1.26, 2.0]
        )

    def closedAfter(self, closing: Any, seconds: float) -> Any:
        """
        C{closing}, once it fired, which is after C{seconds} on the clock
        (to within one L{SETTLE_POLL}), not before.
        """
        self.advance(seconds - SETTLE_POLL)
        self.assertNoResult(closing)
        self.advance(2 * SETTLE_POLL)
        return closing

    def test_settleBounded(self) -> None:
        """
        A fresh handshake that is not completed holds the socket open for
        L{SETTLE_MAX} seconds at most.
        """
        self.halfOpen()
        self.successResultOf(
            self.closedAfter(closeAcceptingBacklog(self.port), SETTLE_MAX)
        )
        self.assertEqual(self.port.fileno(), -1)

    def test_settleHurried(self) -> None:
        """
        The wait for a fresh handshake ends when C{hurry} fires (a second
        stop signal), or at once if it fired before; the queue is accepted
        and the socket closed then.
        """
        self.connected(1)
        self.halfOpen()
        hurry: defer.Deferred[None] = defer.Deferred()
        closing = closeAcceptingBacklog(self.port, hurry)
        self.advance(0.5)
        self.assertNoResult(closing)
        hurry.callback(None)
        self.successResultOf(closing)
        self.assertEqual(self.port.fileno(), -1)
        self.assertEqual(len(self.reactor.adopted), 1)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_settleHurriedBefore(self) -> None:
        """
        A C{hurry} that fired before the close begins leaves no wait.
        """
        self.halfOpen()
        self.successResultOf(closeAcceptingBacklog(self.port, defer.succeed(None)))
        self.assertEqual(self.port.fileno(), -1)

    def test_settleUnknown(self) -> None:
        """
        Where the kernel cannot say which handshakes it answers, the socket
        stays open L{SETTLE} seconds after the refusal began.
        """
        self.patch(ports, "freshHandshakes", lambda host: None)
        self.successResultOf(self.closedAfter(closeAcceptingBacklog(self.port), SETTLE))

    def test_settleFailing(self) -> None:
        """
        If asking the kernel fails unexpectedly, the failure is logged and
        the socket stays open L{SETTLE} seconds, as where it cannot be
        asked.
        """

        def fail(host: object) -> int:
            raise ValueError("unexpected")

        self.patch(ports, "freshHandshakes", fail)
        self.successResultOf(self.closedAfter(closeAcceptingBacklog(self.port), SETTLE))
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 4)

    def test_freshHandshakes(self) -> None:
        """
        L{freshHandshakes} counts the handshakes to one address and port
        (or one port on every address, for a wildcard) that the server
        answered and the client has not completed, while the server has
        not had to answer them again; a socket that is not there too.
        """
        host = self.port.getHost()
        self.assertEqual(freshHandshakes(host), 0)
        self.connected(1)
        for _ in range(2):
            self.halfOpen()
        port = self.address[1]
        self.assertEqual(freshHandshakes(host), 2)
        self.assertEqual(freshHandshakes(IPv4Address("TCP", "0.0.0.0", port)), 2)
        self.assertEqual(freshHandshakes(IPv4Address("TCP", "127.0.0.2", port)), 0)
        other = tcpPort(self.reactor, 0, CountingFactory(), interface="127.0.0.1")
        self.addCleanup(other.stopListening)
        self.assertEqual(freshHandshakes(other.getHost()), 0)
        # The server answers again about a second later: a client that has
        # not completed its handshake by then is not waited for.
        deadline = time.monotonic() + 5
        while freshHandshakes(host) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(freshHandshakes(host), 0)
        self.successResultOf(
            self.closedAfter(closeAcceptingBacklog(self.port), SETTLE_POLL)
        )

    def test_freshHandshakesDualStack(self) -> None:
        """
        On a socket listening on every IPv6 address, L{freshHandshakes}
        counts the IPv4 handshakes it answers too.
        """
        try:
            dual = tcpPort(self.reactor, 0, CountingFactory(), interface="::")
        except CannotListenError as e:
            raise SkipTest(f"no IPv6 here: {e}")
        self.addCleanup(dual.stopListening)
        host = dual.getHost()
        client = halfOpen(("127.0.0.1", host.port))
        self.addCleanup(client.close)
        self.assertEqual(outcome(client, 0.05), "waiting")
        self.assertEqual(freshHandshakes(host), 1)

    def test_inheritedFromSupervisor(self) -> None:
        """
        An adopted socket whose owner refuses new connections as this
        process stops (a supervisor's) gets no filter from this process,
        but waits as an owned one does for the handshakes answered before,
        then accepts its backlog and closes this copy.
        """
        self.port.stopReading()
        adopted = adoptedPort(
            self.reactor, self.port.fileno(), CountingFactory(), ownerRefuses=True
        )
        self.addCleanup(adopted.stopListening)
        client = self.halfOpen()
        closing = closeAcceptingBacklog(adopted)
        self.advance(0.5)
        self.assertNoResult(closing)
        # The owner's refusal.
        self.assertTrue(refuseConnections(self.port))
        hear(client)
        self.assertEqual(outcome(client, 5), "connected")
        self.advance(1.0)
        self.successResultOf(closing)
        self.assertEqual(adopted.fileno(), -1)
        self.assertEqual(len(self.reactor.adopted), 1)

    def test_inheritedSocketLeftOpen(self) -> None:
        """
        An adopted socket (other processes hold it too) gets no filter: its
        backlog is accepted and this copy closed, and the others go on
        completing connections on it.
        """
        self.port.stopReading()
        adopted = adoptedPort(self.reactor, self.port.fileno(), CountingFactory())
        self.connected(1)
        self.successResultOf(closeAcceptingBacklog(adopted))
        self.assertEqual(len(self.reactor.adopted), 1)
        self.connected(1)

    def test_otherPorts(self) -> None:
        """
        Another kind of port only stops listening.
        """
        stopped: list[bool] = []

        class OtherPort:
            def stopListening(self) -> None:
                stopped.append(True)

        self.successResultOf(closeAcceptingBacklog(OtherPort()))
        self.assertEqual(stopped, [True])

    def test_notTCP(self) -> None:
        """
        A port without a TCP socket is left alone.
        """
        self.assertFalse(refuseConnections(object()))  # type: ignore[arg-type]
        unix = socket.socket(socket.AF_UNIX)
        self.addCleanup(unix.close)
        self.assertFalse(refuseConnections(unix))
