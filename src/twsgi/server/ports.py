# -*- test-case-name: tests.server.test_ports -*-
"""
Listening ports of twsgi's own, on Twisted's public reactor interfaces.

A L{ListeningPort} is a listening socket made with the standard library and
watched with C{IReactorFDSet.addReader}; each connection it accepts is served
on twsgi's own transport (L{twsgi.server.transport}).  Owning the accept
loop is what lets twsgi bound how many connections it takes at once
(L{ConnectionGate}), accept the kernel's backlog before a socket closes
(L{closeAcceptingBacklog}), back off when the process runs out of file
descriptors, and adopt a socket inherited from a supervisor or from systemd
without changing it.

L{listeningReactor} gives the endpoints Twisted parses (C{tcp:}, C{tcp6:},
C{ssl:}, C{unix:}, C{systemd:} and the wrappers around them) these ports:
it answers the public C{listenTCP}, C{listenSSL}, C{listenUNIX} and
C{adoptStreamPort} calls they make.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import stat
import struct
import sys
from collections.abc import Callable
from typing import Any, Protocol, cast

from twisted.internet import defer
from twisted.internet.abstract import isIPv6Address
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IReadDescriptor,
)
from twisted.internet.posixbase import PosixReactorBase
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.lockfile import FilesystemLock
from zope.interface import implementer

from twsgi.logs.clock import CallsLater, DelayedCall
from twsgi.server.halfopen import freshHandshakes
from twsgi.server.plainhttp import PlainHTTPAnsweringTLSFactory
from twsgi.server.transport import (
    TransportReactor,
    WriteBatch,
    serveSocket,
    socketAddress,
)
from twsgi.wsgi.pool import CallsFromThread

_log = Logger(namespace="twsgi")

ACCEPT_BUDGET = 100
"""
The most connections a port accepts in one reactor turn (as many as
Twisted's own ports start with).
"""

PENDING_BOUND = 100_000
"""
The most connections L{ListeningPort.acceptPending} accepts at once: more
than any kernel backlog holds.
"""

WAITING_POLL = 0.1
"""
How often, in seconds, a L{ConnectionGate} whose pool has no thread free
looks at how many connections wait in its ports' backlogs (see
L{ConnectionGate.maxWaiting}).
"""

BACKOFF = 0.1
"""
How long a port stops accepting once the process is out of file
descriptors (or memory), in seconds.
"""

_GONE = frozenset({errno.ECONNABORTED, errno.EPERM, errno.EPROTO, errno.EINTR})
"""
C{accept()} errors about one connection only (gone before it was accepted,
or dropped by a firewall): the next may be fine.
"""

SETTLE_POLL = 0.02
"""
How long after it began refusing new connections (L{refuseConnections}) a
port first looks for fresh handshakes it answered and their clients have not
completed (L{twsgi.server.halfopen.freshHandshakes}), in seconds; it looks
again twice as long after each look.  It accepts its backlog and closes once
there are none: a handshake answered just before the refusal began completes
within a round trip, and its connection is then accepted, not reset by the
close.
"""

SETTLE_MAX = 2.0
"""
The longest, in seconds, a port that refuses new connections waits for the
fresh handshakes it answered to complete (they are no longer fresh a second
after the kernel answered them, and this is a bound on a machine too busy to
tell).
"""

SETTLE = 0.2
"""
How long a port that refuses new connections waits for the handshakes it
answered to complete, in seconds, where the kernel cannot say which it is
answering (see L{twsgi.server.halfopen.freshHandshakes}).
"""

_SO_ATTACH_FILTER = 26
"""
Linux's C{SO_ATTACH_FILTER} (C{socket} does not name it).
"""

_DROP_SYN = b"".join(
    [
        struct.pack("HBBI", 0x30, 0, 0, 13),  # BPF_LD | BPF_B | BPF_ABS: flags
        struct.pack("HBBI", 0x45, 0, 1, 0x02),  # BPF_JMP | BPF_JSET | BPF_K: SYN?
        struct.pack("HBBI", 0x06, 0, 0, 0),  # BPF_RET | BPF_K: keep no byte
        struct.pack("HBBI", 0x06, 0, 0, 0xFFFFFFFF),  # BPF_RET | BPF_K: keep all
    ]
)
"""
A classic BPF program that drops every TCP segment with the SYN flag (a
socket filter on a TCP socket sees the TCP header at offset 0; its flags
are byte 13) and keeps every other: the last ACK of a handshake the kernel
answered before the filter still completes it.
"""


Address = IPv4Address | IPv6Address | UNIXAddress


class ProtocolFactory(Protocol):
    """
    What a L{ListeningPort} needs of its protocol factory (an
    C{IProtocolFactory}).
    """

    def doStart(self) -> None: ...

    def doStop(self) -> None: ...

    def buildProtocol(self, addr: Any) -> object: ...


class Stoppable(Protocol):
    """
    A listening port, as far as closing it goes.
    """

    def stopListening(self) -> object: ...


def describeAddress(address: Any) -> str:
    """
    A short text for a listening address: C{127.0.0.1:8000}, C{[::1]:8000},
    or a UNIX socket path.
    """
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    if host is not None and port is not None:
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    name = getattr(address, "name", None)
    if name is not None:
        return name.decode() if isinstance(name, bytes) else str(name)
    return str(address)


def _inFilesystem(path: str) -> bool:
    """
    Whether a UNIX socket path names a file (not Linux's abstract namespace).
    """
    return bool(path) and not path.startswith("\0")


@implementer(IListeningPort, IReadDescriptor)
class ListeningPort:
    """
    A listening stream socket: accepts up to L{ACCEPT_BUDGET} connections
    each time it is readable (fewer while a L{ConnectionGate} has less room)
    and serves each on a L{SocketTransport}.

    @ivar socket: the listening socket, C{None} once closed.
    @ivar factory: builds a protocol for each connection.
    @ivar owned: C{True} if this process made the socket; C{False} for one
        it adopted (from a supervisor, or from systemd), which other
        processes hold too: that one is never shut down, and its file (a
        UNIX socket's) never changed or removed.
    @ivar ownerRefuses: C{True} for an adopted socket whose owner (a
        supervisor) refuses new connections on it when this process stops
        (see L{closeAcceptingBacklog}).
    @ivar path: the file of a UNIX socket this port removes once closed.
    @ivar room: set by a L{ConnectionGate}: how many more connections may be
        accepted now.
    @ivar listening: between L{startListening} and L{stopListening}.
    @ivar paused: L{stopReading} was called: nothing is accepted until
        L{startReading}.
    @ivar onOutOfResources: called each time the port stops accepting for
        L{BACKOFF} seconds (the process is out of file descriptors), or
        C{None}.
    """

    def __init__(
        self,
        reactor: TransportReactor,
        listener: socket.socket,
        factory: ProtocolFactory,
        owned: bool = True,
        path: str | None = None,
        lockFile: FilesystemLock | None = None,
        ownerRefuses: bool = False,
    ) -> None:
        self.reactor = reactor
        self.socket: socket.socket | None = listener
        self.family = listener.family
        self.factory = factory
        self.owned = owned
        self.ownerRefuses = ownerRefuses
        self.path = path
        self.lockFile = lockFile
        self.room: Callable[[], int] | None = None
        self.onOutOfResources: Callable[[], None] | None = None
        self.listening = False
        self.paused = False
        self._reading = False
        self._backoff: DelayedCall | None = None
        self._warned = False
        self._host = socketAddress(self.family, listener.getsockname())
        self._batch = WriteBatch(reactor)
        listener.setblocking(False)

    def __repr__(self) -> str:
        return f"<twsgi port {self._host}>"

    # -- IListeningPort -------------------------------------------------------

    def startListening(self) -> None:
        """
        Start accepting (the socket already listens).
        """
        if self.listening or self.socket is None:
            return
        self.listening = True
        self.factory.doStart()
        self._update()

    def stopListening(self) -> defer.Deferred[None]:
        """
        Stop accepting and close the socket, now.  An owned socket is shut
        down (so that a copy some child process holds stops listening too)
        and its UNIX file removed; an adopted one is only closed.
        """
        self._close()
        return defer.succeed(None)

    def getHost(self) -> Address:
        return self._host

    # -- IReadDescriptor ------------------------------------------------------

    def fileno(self) -> int:
        return self.socket.fileno() if self.socket is not None else -1

    def logPrefix(self) -> str:
        return repr(self)

    def doRead(self) -> None:
        """
        The socket is readable: accept up to L{ACCEPT_BUDGET} connections,
        or the room a gate leaves.
        """
        budget = ACCEPT_BUDGET
        if self.room is not None:
            budget = min(budget, self.room())
        self._accept(budget)

    def connectionLost(self, reason: Failure) -> None:
        """
        The reactor gave up on this port (it is shutting down): close it.
        """
        self._close()

    # -- accepting ------------------------------------------------------------

    def stopReading(self) -> None:
        """
        Accept nothing until L{startReading}; connections wait in the
        kernel's backlog.
        """
        self.paused = True
        self._update()

    def startReading(self) -> None:
        """
        Accept again after L{stopReading}.
        """
        self.paused = False
        self._update()

    def acceptPending(self, bound: int = PENDING_BOUND) -> int:
        """
        Accept the connections already waiting in the backlog, at most
        C{bound}, paused or not: all of them before the socket closes, so
        that closing it resets none.

        @return: how many were accepted.
        """
        return self._accept(bound)

    def waiting(self) -> int | None:
        """
        How many connections wait in the kernel's accept queue of this
        port, for this process or any other that shares the socket (Linux:
        a listening TCP socket's C{TCP_INFO}); C{None} where that cannot be
        known (another system, a UNIX socket, a closed port).
        """
        listener = self.socket
        if listener is None or self.family not in (socket.AF_INET, socket.AF_INET6):
            return None
        option = getattr(socket, "TCP_INFO", None)
        if option is None:
            return None
        try:
            info = listener.getsockopt(socket.IPPROTO_TCP, option, 32)
        except OSError:
            return None
        # struct tcp_info: eight one-byte fields, then __u32 rto, ato,
        # snd_mss, rcv_mss, unacked: of a listening socket, the length of
        # its accept queue (tcp_get_info).
        if len(info) < 28:
            return None
        waiting: int = struct.unpack_from("I", info, 24)[0]
        return waiting

    def _update(self) -> None:
        """
        Watch the socket if the port accepts now, else stop watching it.
        """
        want = self.listening and not self.paused and self._backoff is None
        if want and not self._reading:
            self._reading = True
            self.reactor.addReader(self)
        elif not want and self._reading:
            self._reading = False
            self.reactor.removeReader(self)

    def _accept(self, budget: int) -> int:
        """
        Try C{budget} times to accept a connection, until the backlog is
        empty; a connection gone before it was accepted counts as a try.

        @return: how many were accepted.
        """
        accepted = 0
        for _ in range(budget):
            if self.socket is None:
                break
            try:
                connection, name = self.socket.accept()
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno in _GONE:
                    continue
                self._outOfResources(e)
                break
            accepted += 1
            self._warned = False
            self._adopt(connection, name)
        return accepted

    def _adopt(self, connection: socket.socket, name: Any) -> None:
        """
        Serve an accepted connection (from the peer C{name}, as C{accept}
        gave it) on a L{SocketTransport}, which owns the socket from then
        on; if it fails to start, say so, and close it.
        """
        try:
            serveSocket(self.reactor, connection, self.factory, self._batch, name)
        except Exception:
            _log.failure("twsgi: a connection to {port} failed to start", port=self)
            connection.close()

    def _outOfResources(self, error: OSError) -> None:
        """
        Stop accepting for L{BACKOFF} seconds, tell L{onOutOfResources},
        and say why: once, until a connection is accepted again.
        """
        if self._backoff is not None:
            return
        self._backoff = self.reactor.callLater(BACKOFF, self._retry)
        self._update()
        if self.onOutOfResources is not None:
            self.onOutOfResources()
        if self._warned:
            return
        self._warned = True
        _log.warn(
            "twsgi cannot accept connections on {address} ({error}); "
            "retrying in {delay}s",
            address=describeAddress(self._host),
            error=error.strerror or error,
            delay=BACKOFF,
        )

    def _retry(self) -> None:
        self._backoff = None
        self._update()

    def _close(self) -> None:
        listener, self.socket = self.socket, None
        if listener is None:
            return
        wasListening, self.listening = self.listening, False
        if self._backoff is not None:
            if self._backoff.active():
                self._backoff.cancel()
            self._backoff = None
        self._update()
        if self.owned:
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        listener.close()
        if self.path is not None:
            try:
                os.unlink(self.path)
            except OSError:
                pass
        if self.lockFile is not None:
            self.lockFile.unlock()
        if wasListening:
            self.factory.doStop()


def tcpPort(
    reactor: TransportReactor,
    port: int,
    factory: ProtocolFactory,
    backlog: int = 50,
    interface: str = "",
) -> ListeningPort:
    """
    Bind and listen on a TCP port (IPv6 if C{interface} is an IPv6 address),
    as C{IReactorTCP.listenTCP} does, and start accepting.

    @raise CannotListenError: if the port cannot be bound.
    """
    family = socket.AF_INET6 if isIPv6Address(interface) else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            address = socket.getaddrinfo(
                interface, port, family, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST
            )[0][4]
        else:
            address = (interface, port)
        listener.bind(address)
        listener.listen(backlog)
    except OSError as e:
        listener.close()
        raise CannotListenError(interface, port, e)
    listening = ListeningPort(reactor, listener, factory)
    listening.startListening()
    return listening


def unixPort(
    reactor: TransportReactor,
    address: str | bytes,
    factory: ProtocolFactory,
    backlog: int = 50,
    mode: int = 0o666,
    wantPID: int = 0,
) -> ListeningPort:
    """
    Bind and listen on a UNIX socket, as C{IReactorUNIX.listenUNIX} does: with
    C{wantPID}, hold C{PATH.lock} and remove a stale socket left by a
    process that is gone; give the file C{mode}; remove it once closed.

    @raise CannotListenError: if the socket cannot be bound.
    """
    path = os.fsdecode(address)
    lockFile = None
    if wantPID:
        lockFile = FilesystemLock(path + ".lock")
        if not lockFile.lock():
            raise CannotListenError(None, path, "Cannot acquire lock")
        if not lockFile.clean:
            try:
                if stat.S_ISSOCK(os.stat(path).st_mode):
                    os.remove(path)
            except OSError:
                pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(path)
        if _inFilesystem(path):
            os.chmod(path, mode)
        listener.listen(backlog)
    except OSError as e:
        listener.close()
        if lockFile is not None:
            lockFile.unlock()
        raise CannotListenError(None, path, e)
    listening = ListeningPort(
        reactor,
        listener,
        factory,
        path=path if _inFilesystem(path) else None,
        lockFile=lockFile,
    )
    listening.startListening()
    return listening


def adoptedPort(
    reactor: TransportReactor,
    fileno: int,
    factory: ProtocolFactory,
    ownerRefuses: bool = False,
) -> ListeningPort:
    """
    Accept on a listening socket this process inherited (from a supervisor,
    or from systemd), on a copy of its descriptor: the socket keeps its
    backlog, is never shut down, and a UNIX socket's file is left as it is
    (its owner made it).

    @param ownerRefuses: the socket's owner (a supervisor) refuses new
        connections on it when this process stops (see
        L{closeAcceptingBacklog}).
    """
    listener = socket.socket(fileno=os.dup(fileno))
    listening = ListeningPort(
        reactor, listener, factory, owned=False, ownerRefuses=ownerRefuses
    )
    listening.startListening()
    return listening


class ListeningReactor:
    """
    A reactor whose C{listenTCP}, C{listenSSL}, C{listenUNIX} and
    C{adoptStreamPort} (the calls Twisted's server endpoints make) give a
    L{ListeningPort}; everything else is the wrapped reactor's.
    """

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor

    def __getattr__(self, name: str) -> Any:
        return getattr(self.reactor, name)

    def listenTCP(
        self,
        port: int,
        factory: ProtocolFactory,
        backlog: int = 50,
        interface: str = "",
    ) -> ListeningPort:
        return tcpPort(self.reactor, port, factory, backlog, interface)

    def listenSSL(
        self,
        port: int,
        factory: ProtocolFactory,
        contextFactory: Any,
        backlog: int = 50,
        interface: str = "",
    ) -> ListeningPort:
        return self.listenTCP(
            port,
            PlainHTTPAnsweringTLSFactory(
                contextFactory, False, cast(IProtocolFactory, factory)
            ),
            backlog,
            interface,
        )

    def listenUNIX(
        self,
        address: str | bytes,
        factory: ProtocolFactory,
        backlog: int = 50,
        mode: int = 0o666,
        wantPID: int = 0,
    ) -> ListeningPort:
        return unixPort(self.reactor, address, factory, backlog, mode, wantPID)

    def adoptStreamPort(
        self, fileDescriptor: int, addressFamily: int, factory: ProtocolFactory
    ) -> ListeningPort:
        return adoptedPort(self.reactor, fileDescriptor, factory)


def listeningReactor(reactor: Any) -> Any:
    """
    The reactor to build listening endpoints with: one that listens with
    L{ListeningPort}s if C{reactor} watches file descriptors (any POSIX
    reactor); C{reactor} itself otherwise (such as a test's memory reactor).
    """
    if isinstance(reactor, PosixReactorBase):
        return ListeningReactor(reactor)
    return reactor


class ThreadRoom(Protocol):
    """
    What a L{ConnectionGate} needs of a thread pool (a
    L{twsgi.wsgi.pool.WorkerPool}): how many more tasks would start at once,
    and a call once that is above 0 again.
    """

    def free(self) -> int: ...

    def whenFree(self, callback: Callable[[], object]) -> bool: ...


class GateReactor(CallsLater, CallsFromThread, Protocol):
    """
    What a L{ConnectionGate} on threads needs of its reactor: C{callLater},
    and C{callFromThread}.
    """


class ConnectionGate:
    """
    Stop accepting connections on every watched listening port while
    C{maximum} are open, or while the WSGI thread pool C{threads} has no
    thread free for a new request; new connections then wait in the
    kernel's backlog until one closes, or a thread is free.

    A port accepts no more connections each time it is readable than the
    room left (the connections below C{maximum}, the free threads), so that
    the bound is never overshot by one read.  The pool is looked at only
    when a port is readable, never as requests come and go: a port whose
    pool has no free thread pauses then, and the pool calls the gate back
    (from the thread that frees itself, through C{callFromThread}) to
    resume it.  A connection just accepted has not handed its request to
    the pool yet: until a whole turn of the reactor (in which it is read)
    went by without another accepted, it counts as taking a thread
    (L{fresh}), so that a port readable again meanwhile does not take more
    connections than there are threads.

    @ivar maximum: the most connections open at once; 0 for no bound.
    @ivar threads: the pool whose free threads bound the room, or C{None}.
    @ivar open: the connections open now.
    @ivar fresh: the connections accepted since the last whole turn of the
        reactor without one (counted with C{threads} only).
    @ivar busy: the ports paused because the pool had no free thread, and
        wait for one.
    @ivar paused: whether the ports are not accepting.
    @ivar onPause: called each time the ports pause for want of a free
        thread, or C{None}.
    @ivar maxWaiting: with C{threads}, while the pool has no thread free:
        once this many connections wait in a port's backlog (looked at
        every L{WAITING_POLL} seconds), the port accepts those beyond
        C{maxWaiting - 1}, so that their requests meet C{--max-pending}
        (queued, or refused with a 503) and their health checks are
        answered, rather than wait there for a thread of any worker; 0
        never (they wait).
    """

    def __init__(
        self,
        maximum: int = 0,
        threads: ThreadRoom | None = None,
        reactor: GateReactor | None = None,
        maxWaiting: int = 0,
    ) -> None:
        """
        @param reactor: the reactor, for its C{callFromThread} and
            C{callLater}; needed with C{threads}.
        """
        if threads is not None and reactor is None:
            raise ValueError("a gate on threads needs the reactor")
        self.maximum = maximum
        self.threads = threads
        self.open = 0
        self.fresh = 0
        self.busy = False
        self.paused = False
        self.onPause: Callable[[], None] | None = None
        self.maxWaiting = maxWaiting
        self.ports: list[ListeningPort] = []
        self._reactor = reactor
        self._look: DelayedCall | None = None
        # Counts the turns begun since a connection was accepted (see
        # _turn), while some are fresh.
        self._quiet = 0
        self._tick: DelayedCall | None = None

    def watch(self, port: object) -> None:
        """
        Gate a listening port (a L{ListeningPort}; any other is left
        unbounded, with a warning).
        """
        if not isinstance(port, ListeningPort):
            _log.warn(
                "twsgi cannot pause accepting on {port!r}; "
                "--max-connections does not bound it",
                port=port,
            )
            return
        port.room = self.room
        self.ports.append(port)
        if self.paused:
            port.stopReading()

    def room(self) -> int:
        """
        How many more connections may be accepted now; with none left, the
        ports pause.  Called in the I/O thread, as a port is readable.
        """
        room = ACCEPT_BUDGET
        if self.maximum:
            room = self.maximum - self.open
            if room <= 0:
                self._pause()
                return 0
        threads = self.threads
        if threads is not None:
            free = threads.free() - self.fresh
            if free <= 0:
                # Else a thread freed itself since, or fresh connections
                # take the free threads: the port reads again next turn.
                if threads.whenFree(self._threadFreeInThread):
                    self.busy = True
                    self._pause()
                    self._lookLater()
                    if self.onPause is not None:
                        self.onPause()
                return 0
            room = min(room, free)
        return room

    def opened(self) -> None:
        """
        A connection was made.
        """
        self.open += 1
        if self.maximum and self.open >= self.maximum:
            self._pause()
        if self.threads is not None:
            self.fresh += 1
            self._quiet = 0
            if self._tick is None:
                assert self._reactor is not None
                self._tick = self._reactor.callLater(0, self._turn)

    def _turn(self) -> None:
        """
        A turn of the reactor begins while connections are L{fresh}: once a
        whole turn went by without a connection accepted, those accepted
        before were read in it, and what they asked for is in the pool.
        Called in the I/O thread.
        """
        self._quiet += 1
        if self._quiet < 2:
            assert self._reactor is not None
            self._tick = self._reactor.callLater(0, self._turn)
            return
        self._tick = None
        self.fresh = 0

    def closed(self) -> None:
        """
        A connection was lost.
        """
        self.open -= 1
        self._resume()

    def _threadFreeInThread(self) -> None:
        """
        A thread of the pool is free.  Called in that pool thread.
        """
        assert self._reactor is not None
        self._reactor.callFromThread(self._threadFree)

    def _threadFree(self) -> None:
        """
        A thread of the pool is free: accept again, if there is room for
        connections.  Called in the I/O thread.
        """
        self.busy = False
        if self._look is not None:
            self._look.cancel()
            self._look = None
        self._resume()

    def waiting(self) -> int:
        """
        The connections that wait in the backlogs of the watched ports (of
        those whose backlog can be known).  Called in the I/O thread.
        """
        return sum(port.waiting() or 0 for port in self.ports)

    def _lookLater(self) -> None:
        """
        Look at the backlogs in L{WAITING_POLL} seconds, with L{maxWaiting}.
        """
        if self.maxWaiting and self._look is None:
            assert self._reactor is not None
            self._look = self._reactor.callLater(WAITING_POLL, self._lookAtWaiting)

    def _lookAtWaiting(self) -> None:
        """
        While the pool has no thread free: accept what waits in a port's
        backlog beyond L{maxWaiting} less one (within C{maximum}), then
        look again later.  Called in the I/O thread.
        """
        self._look = None
        if not self.busy:
            return
        for port in self.ports:
            waiting = port.waiting()
            if waiting is None or waiting < self.maxWaiting:
                continue
            budget = min(ACCEPT_BUDGET, waiting - self.maxWaiting + 1)
            if self.maximum:
                budget = min(budget, self.maximum - self.open)
            if budget > 0:
                port.acceptPending(budget)
        self._lookLater()

    def _resume(self) -> None:
        if (
            self.paused
            and not self.busy
            and not (self.maximum and self.open >= self.maximum)
        ):
            self.paused = False
            for port in self.ports:
                port.startReading()

    def _pause(self) -> None:
        if not self.paused:
            self.paused = True
            for port in self.ports:
                port.stopReading()


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


def refuseConnections(port: _HasFileno) -> bool:
    """
    Make the kernel drop every packet that would open a new connection to
    the listening TCP socket of C{port} (Linux): a socket filter that drops
    SYNs.  A connection the kernel completed before stays in the accept
    queue, and so does one whose SYN it answered before (its last ACK is
    not dropped: dropping it would leave a client that believes itself
    connected to be reset by the close), while no new one begins; so
    accepting what is queued and then closing the socket resets none: a
    client whose SYN was dropped sends it again a second later, and is then
    refused by the closed port (or served by whoever listens on it then).

    The filter is on the socket, not on this process's descriptor: only
    the last process that holds a listening socket may use this.

    @return: C{True} if the filter is in place; C{False} where it cannot be
        (another system, a UNIX socket, a port without a descriptor).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        listening = socket.socket(fileno=os.dup(port.fileno()))
    except (AttributeError, OSError, TypeError, ValueError):
        return False
    try:
        if listening.family not in (socket.AF_INET, socket.AF_INET6):
            return False
        program = ctypes.create_string_buffer(_DROP_SYN, len(_DROP_SYN))
        listening.setsockopt(
            socket.SOL_SOCKET,
            _SO_ATTACH_FILTER,
            struct.pack("HP", len(_DROP_SYN) // 8, ctypes.addressof(program)),
        )
    except OSError:
        return False
    finally:
        listening.close()
    return True


def closeAcceptingBacklog(
    port: Stoppable, hurry: defer.Deferred[None] | None = None
) -> defer.Deferred[object]:
    """
    Stop listening on C{port} without resetting a connection the kernel
    completed: every one is accepted, and served.

    If this process made the socket (and so holds it last), new connections
    are refused first (L{refuseConnections}); once the handshakes the kernel
    had answered are complete (see L{settled}), the queue is accepted and
    the socket closed.  A socket inherited from a supervisor is refused by
    the supervisor as this process stops (see
    L{twsgi.process.workers.Supervisor.stopService}): this copy waits for
    the handshakes as well before it accepts the queue and closes, so that
    none completes after the last worker closed its copy, to be reset when
    the supervisor closes the socket.  A socket inherited from systemd gets
    no filter (closing this copy does not close it, and a filter would stop
    the other holders' connections too): its queue is accepted and this
    copy closed at once.  A port that is not a L{ListeningPort} only stops
    listening.

    @param hurry: fires when the wait for the handshakes is to end now (a
        second stop signal); it may have fired already.
    """
    if isinstance(port, ListeningPort) and (
        # The owner refuses where this process would (Linux).
        (port.ownerRefuses and sys.platform.startswith("linux"))
        or (port.owned and refuseConnections(port))
    ):
        return settled(port, hurry).addCallback(lambda _: _closeNow(port))
    return _closeNow(port)


def settled(
    port: ListeningPort, hurry: defer.Deferred[None] | None = None
) -> defer.Deferred[None]:
    """
    Fire once no fresh handshake to C{port} that the kernel answered is
    still incomplete (L{freshHandshakes}), looked for L{SETTLE_POLL} seconds
    after the call and then twice as long after each look (the kernel walks
    every socket to answer), for L{SETTLE_MAX} seconds at most; after
    L{SETTLE} seconds where that cannot be known; or once C{hurry} fires.
    A port that is not a TCP port fires at once.  Meanwhile the port
    accepts as before.
    """
    done: defer.Deferred[None] = defer.Deferred()
    host = port.getHost()
    if not isinstance(host, (IPv4Address, IPv6Address)):
        done.callback(None)
        return done
    clock = port.reactor
    waited = 0.0
    call: DelayedCall | None = None

    def hurried(_: object) -> None:
        if not done.called:
            if call is not None and call.active():
                call.cancel()
            done.callback(None)

    def look(delay: float) -> None:
        nonlocal waited, call
        waited += delay
        try:
            left = freshHandshakes(host)
        except Exception:
            _log.failure("twsgi: asking the kernel for unfinished handshakes failed")
            left = None
        rest = (SETTLE if left is None else SETTLE_MAX) - waited
        # Within half a first wait of the bound is at it.
        if left == 0 or rest < SETTLE_POLL / 2:
            done.callback(None)
            return
        delay = min(2 * delay, rest)
        call = clock.callLater(delay, look, delay)

    call = clock.callLater(SETTLE_POLL, look, SETTLE_POLL)
    if hurry is not None:
        hurry.addCallback(hurried)
    return done


def _closeNow(port: Stoppable) -> defer.Deferred[object]:
    """
    Accept the queue of C{port} if it is a L{ListeningPort}, and stop
    listening.
    """
    if isinstance(port, ListeningPort):
        port.acceptPending()
    return defer.maybeDeferred(port.stopListening)


__all__ = [
    "ConnectionGate",
    "GateReactor",
    "ListeningPort",
    "ListeningReactor",
    "ThreadRoom",
    "adoptedPort",
    "closeAcceptingBacklog",
    "describeAddress",
    "listeningReactor",
    "refuseConnections",
    "tcpPort",
    "unixPort",
]
