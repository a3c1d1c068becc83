"""
Tests for worker processes: L{twsgi.server.inherit} and L{twsgi.process.workers}, and
C{--workers N} end to end with real processes on 127.0.0.1.
"""

from __future__ import annotations

import errno
import fcntl
import http.client
import os
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Sequence
from typing import Any
from unittest import SkipTest

from twisted.internet import endpoints
from twisted.internet.error import CannotListenError
from twisted.internet.protocol import ServerFactory
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import (
    LogEvent,
    Logger,
    LogLevel,
    capturedLogs,
    formatEvent,
    globalLogPublisher,
)
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.server import Site

from tests.helpers import server as _server
from tests.helpers.certs import makeCertificates
from tests.helpers.handshake import connecting, halfOpen, hear, outcome
from tests.helpers.metrics import SpawningReactor
from tests.helpers.workers import SupervisedServer, processState
from twsgi.config.model import ServerConfig
from twsgi.lifecycle.service import ListenError
from twsgi.process import workers as _workers
from twsgi.process.build import supervisorFromConfig
from twsgi.process.workers import (
    REPLACE_RETRY_MAX,
    STEERING_SIGNALS,
    Supervisor,
    SupervisorState,
    WorkerLink,
    _Worker,
    readRSS,
    relayWorkerEvent,
    workerEnvironment,
)
from twsgi.server.inherit import InheritedEndpoint, splitEndpoint
from twsgi.server.listeners import buildEndpoint
from twsgi.server.ports import SETTLE_MAX
from twsgi.server.proxyprotocol import ProxyProtocolFactory


def _config(**settings: Any) -> ServerConfig:
    """
    The config of a supervisor of workers listening on C{tcp:0}, with
    C{settings}.
    """
    return ServerConfig(endpoint=("tcp:0",), **settings)


_BROKEN_APP = "raise RuntimeError('cannot configure the database')\n"

_RECYCLED = re.compile(rb"replacing worker \d+ \(pid \d+\): served \d+ requests")


def _killAll(pids: set[int]) -> None:
    """
    Kill each of C{pids} that is still there.
    """
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


class ServerCleanupTests(SynchronousTestCase):
    """
    A test's server leaves nothing behind when the test ends.
    """

    def test_metricsDirectoryRemoved(self) -> None:
        """
        The cleanup of a server with C{--workers} and C{--metrics-endpoint}
        lets its supervisor remove the metrics directory it made.
        """
        server = SupervisedServer(
            self,
            "--workers",
            "2",
            "--metrics-endpoint",
            "tcp:port=0:interface=127.0.0.1",
        )
        server.start(2)
        worker = min(server.workerPids())
        with open(f"/proc/{worker}/environ", "rb") as f:
            environ = dict(
                entry.partition(b"=")[::2] for entry in f.read().split(b"\0") if entry
            )
        directory = environ[b"PROMETHEUS_MULTIPROC_DIR"].decode()
        self.assertTrue(os.path.isdir(directory))
        server.kill()
        self.assertFalse(os.path.exists(directory))
        self.assertEqual(server.process.returncode, 0)


class _Load:
    """
    A bounded stream of requests from one thread, counting outcomes.
    """

    def __init__(
        self,
        server: SupervisedServer,
        path: str = "/",
        limit: float = 60.0,
        port: int | None = None,
        pause: float = 0.0,
    ) -> None:
        """
        @param port: the port to send to; by default the application's.
        @param pause: seconds between two requests.
        """
        self.server = server
        self.path = path
        self.port = port
        self.pause = pause
        self.ok = 0
        self.failures: list[str] = []
        self.pids: set[bytes] = set()
        self._stop = threading.Event()
        self._limit = limit
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        deadline = time.monotonic() + self._limit
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                status, body = self.server.get(self.path, port=self.port)
            except Exception as e:
                self.failures.append(repr(e))
                continue
            if status == 200:
                self.ok += 1
                self.pids.add(body)
            else:
                self.failures.append(f"status {status}")
            self._stop.wait(self.pause)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self._limit)


class SplitEndpointTests(SynchronousTestCase):
    """
    L{splitEndpoint} separates the listening socket from per-connection layers.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.factory = Site(None)

    def test_tcp(self) -> None:
        """
        A C{tcp:} endpoint is its own socket part and adds no layer.
        """
        socketPart, wrap = splitEndpoint(buildEndpoint(self.reactor, "tcp:0"))
        self.assertIsInstance(socketPart, endpoints.TCP4ServerEndpoint)
        self.assertIs(wrap(self.factory), self.factory)

    def test_haproxy(self) -> None:
        """
        A C{haproxy:} endpoint listens with its inner endpoint and wraps each
        connection in the PROXY protocol.
        """
        socketPart, wrap = splitEndpoint(buildEndpoint(self.reactor, "haproxy:tcp:0"))
        self.assertIsInstance(socketPart, endpoints.TCP4ServerEndpoint)
        wrapped = wrap(self.factory)
        self.assertIsInstance(wrapped, ProxyProtocolFactory)
        self.assertIs(wrapped.wrappedFactory, self.factory)

    def test_unix(self) -> None:
        """
        A C{unix:} endpoint is its own socket part.
        """
        socketPart, wrap = splitEndpoint(
            buildEndpoint(self.reactor, "unix:/tmp/x.sock")
        )
        self.assertIsInstance(socketPart, endpoints.UNIXServerEndpoint)
        self.assertIs(wrap(self.factory), self.factory)

    def test_ssl(self) -> None:
        """
        An C{ssl:} endpoint listens with plain TCP on the same port and
        interface and wraps each connection in TLS, with the options its
        files give.
        """
        certs = makeCertificates(self.mktemp())
        key = os.path.join(certs, "server.key")
        cert = os.path.join(certs, "server.pem")
        socketPart, wrap = splitEndpoint(
            buildEndpoint(
                self.reactor,
                f"ssl:8443:privateKey={key}:certKey={cert}:interface=127.0.0.1",
            )
        )
        socketPart.listen(self.factory)
        [(port, factory, backlog, interface)] = self.reactor.tcpServers
        self.assertEqual((port, factory, interface), (8443, self.factory, "127.0.0.1"))
        self.assertIsInstance(wrap(self.factory), TLSMemoryBIOFactory)

    def test_haproxySSL(self) -> None:
        """
        An C{haproxy:ssl:} endpoint listens with plain TCP and reads the
        PROXY header before TLS: the PROXY layer is outside, and the TLS
        layer wraps the factory itself (so it offers the factory's ALPN
        protocols).
        """
        certs = makeCertificates(self.mktemp())
        key = os.path.join(certs, "server.key")
        cert = os.path.join(certs, "server.pem")
        socketPart, wrap = splitEndpoint(
            buildEndpoint(
                self.reactor, f"haproxy:ssl:8443:privateKey={key}:certKey={cert}"
            )
        )
        self.assertIsInstance(socketPart, endpoints.TCP4ServerEndpoint)
        wrapped = wrap(self.factory)
        self.assertIsInstance(wrapped, ProxyProtocolFactory)
        self.assertIsInstance(wrapped.wrappedFactory, TLSMemoryBIOFactory)
        self.assertIs(wrapped.wrappedFactory.wrappedFactory, self.factory)

    def test_unshareable(self) -> None:
        """
        An endpoint whose socket cannot be shared is refused with a message
        naming what can.
        """
        error = self.assertRaises(ValueError, splitEndpoint, object())
        self.assertIn("tcp:", str(error))
        listener = buildEndpoint(self.reactor, "stdio:")
        error = self.assertRaises(ValueError, splitEndpoint, listener)
        self.assertIn("StandardIOEndpoint endpoints cannot be shared", str(error))


class WorkerLinkTests(SynchronousTestCase):
    """
    L{WorkerLink} tells the supervisor when a worker is ready or wants
    replacing.
    """

    def setUp(self) -> None:
        self.read, self.write = os.pipe()
        self.addCleanup(os.close, self.read)
        self.addCleanup(os.close, self.write)

    def test_watchSupervisor(self) -> None:
        """
        Once this process has another parent (the supervisor is gone), the
        watch stops the worker, once, and says why.
        """
        clock = MemoryReactorClock()
        parents = [100]
        stops: list[None] = []
        link = WorkerLink(self.write)
        with capturedLogs() as events:
            link.watchSupervisor(
                clock, lambda: stops.append(None), getppid=lambda: parents[0]
            )
            clock.advance(5)
            self.assertEqual(stops, [])
            parents[0] = 1
            clock.advance(1)
            clock.advance(5)
        self.assertEqual(stops, [None])
        self.assertIn(
            "twsgi worker: the supervisor (pid 100) is gone; stopping",
            [formatEvent(e) for e in events],
        )

    def test_ready(self) -> None:
        """
        C{ready()} writes one C{ready} line and passes its argument through.
        """
        link = WorkerLink(self.write)
        self.assertEqual(link.ready("x"), "x")
        self.assertEqual(os.read(self.read, 100), b"ready\n")

    def test_maxRequests(self) -> None:
        """
        After C{maxRequests} access records, the worker asks once to retire.
        """
        link = WorkerLink(self.write, maxRequests=3)
        link(None)
        link(None)
        os.set_blocking(self.read, False)
        self.assertRaises(BlockingIOError, os.read, self.read, 100)
        link(None)
        link(None)
        self.assertEqual(os.read(self.read, 100), b"retire served 3 requests\n")

    def test_logRelayed(self) -> None:
        """
        The worker's log observer sends each event up the pipe; the
        supervisor logs it as the worker's: after C{[worker PID]}, with its
        level, namespace, time, fields and traceback, and a C{pid} field.
        """
        link = WorkerLink(self.write)
        try:
            raise ZeroDivisionError("boom")
        except ZeroDivisionError:
            failure = Failure()
        Logger(namespace="app", observer=link.logObserver).failure(
            "{what} failed", failure, LogLevel.error, what="ü thing"
        )
        line = os.read(self.read, 100_000)
        self.assertTrue(line.startswith(b"log ") and line.endswith(b"\n"))
        self.assertEqual(line.count(b"\n"), 1)
        events: list[dict[str, Any]] = []
        relayWorkerEvent(1234, line[4:-1].decode("ascii"), events.append)
        [event] = events
        self.assertEqual(formatEvent(event), "[worker 1234] ü thing failed")
        self.assertEqual(event["pid"], 1234)
        self.assertEqual(event["what"], "ü thing")
        self.assertEqual(event["log_level"], LogLevel.error)
        self.assertEqual(event["log_namespace"], "app")
        self.assertIn("ZeroDivisionError", event["log_failure"].getTraceback())

    def test_logRelayedFormatSpecs(self) -> None:
        """
        The format specifications of a worker's message are applied as in
        one process: C{{seconds:.1f}} and C{{every:g}} give C{1.9} and
        C{10}, not C{1.8818614482879639} and C{10.0} (Twisted's JSON event
        keeps its fields' text without them).
        """
        link = WorkerLink(self.write)
        Logger(namespace="twsgi", observer=link.logObserver).warn(
            "has run {seconds:.1f} s, said at most every {every:g} s",
            seconds=1.8818614482879639,
            every=10.0,
        )
        line = os.read(self.read, 100_000)
        events: list[dict[str, Any]] = []
        relayWorkerEvent(1234, line[4:-1].decode("ascii"), events.append)
        [event] = events
        self.assertEqual(
            formatEvent(event),
            "[worker 1234] has run 1.9 s, said at most every 10 s",
        )
        self.assertEqual(event["seconds"], 1.8818614482879639)

    def test_sayWhileSaying(self) -> None:
        """
        A line said while the same thread writes one (a finalizer that logs,
        run by the garbage collector in the middle of a write) comes whole,
        after it, instead of waiting forever for the lock its thread holds.
        """
        link = WorkerLink(self.write)
        write = os.write
        nested: list[str] = []

        def reentrantWrite(fd: int, data: Any) -> int:
            if not nested:
                nested.append("retire")
                link.retire("nested")
            return write(fd, data)

        self.patch(os, "write", reentrantWrite)
        link.ready()
        self.assertEqual(os.read(self.read, 100), b"ready\nretire nested\n")

    def test_jitter(self) -> None:
        """
        The limit is C{maxRequests} plus at most C{jitter}.
        """
        limits = {WorkerLink(self.write, 100, 10).limit for _ in range(200)}
        self.assertTrue(limits <= set(range(100, 111)), limits)
        self.assertGreater(len(limits), 1)

    def test_environment(self) -> None:
        """
        L{workerEnvironment} reads the inherited descriptors, the pipe and
        the supervisor's settings, and is C{None} outside a worker.
        """
        self.assertIsNone(workerEnvironment({}))
        self.assertEqual(
            workerEnvironment(
                {
                    "TWSGI_WORKER_FDS": "3 4",
                    "TWSGI_WORKER_PIPE": "5",
                    "TWSGI_WORKER_SETTINGS": '{"app": "x:y"}',
                }
            ),
            ([3, 4], 5, {"app": "x:y"}),
        )

    def test_readRSS(self) -> None:
        """
        L{readRSS} reads this process's resident size, and C{None} for a
        process that does not exist.
        """
        rss = readRSS(os.getpid())
        self.assertIsNotNone(rss)
        assert rss is not None
        self.assertGreater(rss, 1024 * 1024)
        self.assertIsNone(readRSS(2**22 + 12345))


class WorkerProcessTests(SynchronousTestCase):
    """
    C{--workers N} with real processes.
    """

    def test_workersShareTheListener(self) -> None:
        """
        Two workers accept on the socket the supervisor bound, and the
        supervisor serves nothing itself.
        """
        server = SupervisedServer(self, "--workers", "2")
        server.start(2)
        seen = set()
        for _ in range(200):
            status, body = server.get()
            self.assertEqual(status, 200)
            seen.add(int(body))
            if len(seen) == 2:
                break
        self.assertEqual(seen, server.workerPids())
        self.assertNotIn(server.process.pid, seen)
        server.signal(signal.SIGTERM)
        self.assertEqual(server.process.wait(20), 0)

    def groupSignal(
        self, signum: int, again: bool = False, seconds: float = 1.5
    ) -> tuple[object, bytes]:
        """
        Send C{signum} to the whole process group of a C{--workers 2} server
        (supervisor and workers alike) while a request runs for C{seconds},
        and again once the stop began if C{again}; return the answer and the
        server's output once it exited.
        """
        app = textwrap.dedent(
            f"""
            import time

            def app(environ, start_response):
                open("started", "w").close()
                time.sleep({seconds})
                start_response("200 OK", [("Content-Type", "text/plain")])
                return [b"finished"]
            """
        )
        server = SupervisedServer(self, "--workers", "2", app=app, newSession=True)
        server.start(2)
        answers: list[object] = []

        def get() -> None:
            try:
                answers.append(server.get())
            except OSError as e:
                answers.append(e)

        client = threading.Thread(target=get)
        client.start()
        server.waitFor(
            lambda: os.path.exists(os.path.join(server.directory, "started"))
        )
        os.killpg(server.process.pid, signum)
        if again:
            server.waitFor(lambda: b"stopping gracefully" in server.output())
            os.killpg(server.process.pid, signum)
        client.join(20)
        output = server.output()
        status = server.process.wait(20)
        self.assertIn(status, (0, 3), output.decode(errors="replace"))
        self.assertEqual(len(answers), 1)
        return answers[0], server.output()

    def test_interruptFromTerminal(self) -> None:
        """
        Ctrl-C in a terminal (SIGINT to the supervisor and every worker, as
        the whole process group gets it) drains: the request in flight is
        answered, and the supervisor exits with 0.
        """
        answer, output = self.groupSignal(signal.SIGINT)
        self.assertEqual(answer, (200, b"finished"), output)
        self.assertNotIn(b"not waiting any longer", output)

    def test_terminateProcessGroup(self) -> None:
        """
        SIGTERM to the whole process group (systemd's default
        C{KillMode=control-group}, C{kill -TERM -PGID}) reaches each worker
        directly and again through the supervisor: the worker takes both as
        one graceful stop, so the request in flight is answered.
        """
        answer, output = self.groupSignal(signal.SIGTERM)
        self.assertEqual(answer, (200, b"finished"), output)
        # (A worker may log "already stopping gracefully" for the second
        # SIGTERM, or never see it: the kernel merges a SIGTERM that comes
        # while another is still pending.)
        self.assertNotIn(b"not waiting any longer", output)

    def test_terminateProcessGroupTwice(self) -> None:
        """
        A second SIGTERM to the whole process group still skips the wait:
        the supervisor passes it on as SIGQUIT, which ends the workers'
        drains at once.
        """
        answer, output = self.groupSignal(signal.SIGTERM, again=True, seconds=20)
        self.assertNotEqual(answer, (200, b"finished"), output)
        self.assertIn(b"got SIGQUIT: not waiting any longer", output)

    def test_crashedWorkerReplaced(self) -> None:
        """
        A worker killed with SIGKILL is replaced, and requests go on being
        served.  (That the first crash is replaced at once, without a
        backoff delay, is L{BackoffTests.test_backoff}'s, on a clock: here
        the bound is only far past what a correct supervisor needs.)
        """
        server = SupervisedServer(self, "--workers", "2")
        server.start(2)
        victim = min(server.workerPids())
        os.kill(victim, signal.SIGKILL)
        server.waitFor(
            lambda: (
                len(server.workerPids() - {victim}) == 2
                and victim not in server.workerPids()
            ),
            timeout=30,
        )
        self.assertEqual(server.get()[0], 200)

    def test_supervisorGone(self) -> None:
        """
        A supervisor that dies at once (SIGKILL, the OOM killer, SIGQUIT's
        default action) leaves no worker serving on unseen: each notices
        within a few seconds, stops accepting, and ends, which frees the
        port.
        """
        server = SupervisedServer(self, "--workers", "2")
        port = server.start(2)
        workers = server.workerPids()
        self.addCleanup(_killAll, workers)
        server.process.kill()
        server.process.wait(5)

        def gone() -> bool:
            # A zombie is gone too (whoever adopted it may not reap it).
            return all(processState(pid) in ("", "Z") for pid in workers)

        server.waitFor(gone, timeout=15)
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))

    def test_supervisorGoneServesQueue(self) -> None:
        """
        A worker whose supervisor is gone refuses new connections in its
        place and accepts and answers those already waiting in the socket's
        queue before it closes its copy (the last one: the kernel would
        reset them), as it does on a stop.
        """
        if not sys.platform.startswith("linux"):
            raise SkipTest("socket filters are Linux's")
        # One connection at a time: the second waits in the queue.
        server = SupervisedServer(self, "--workers", "1", "--max-connections", "1")
        port = server.start(1)
        self.addCleanup(_killAll, server.workerPids())
        result: list[object] = []
        slow = threading.Thread(target=lambda: result.append(server.get("/sleep?3")))
        slow.start()
        self.addCleanup(slow.join, 30)
        server.waitFor(server.sleeping)
        waiting = socket.create_connection(("127.0.0.1", port), timeout=15)
        self.addCleanup(waiting.close)
        waiting.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(select.select([waiting], [], [], 0.3)[0], [])
        server.process.kill()
        server.process.wait(5)
        response = b""
        while chunk := waiting.recv(65536):
            response += chunk
        self.assertTrue(response.startswith(b"HTTP/1.1 200 "), response)
        # A new client is not let into a queue that nobody accepts from:
        # its handshake waits, and is refused once the worker is gone.
        late = connecting(("127.0.0.1", port))
        self.addCleanup(late.close)
        self.assertEqual(outcome(late, 0.5), "waiting")
        self.assertEqual(outcome(late, 15), "refused")
        slow.join(10)
        self.assertEqual(result[0][0], 200)  # type: ignore[index]

    def stopAnswersQueued(self, server: SupervisedServer, port: int) -> None:
        """
        Queue a request on C{port}, stop C{server} with SIGTERM, and check
        that the request is answered and the server exits 0.
        """
        waiting = socket.create_connection(("127.0.0.1", port), timeout=15)
        self.addCleanup(waiting.close)
        waiting.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        server.signal(signal.SIGTERM)
        response = b""
        while chunk := waiting.recv(65536):
            response += chunk
        self.assertTrue(response.startswith(b"HTTP/1.1 200 "), response)
        self.assertEqual(server.process.wait(20), 0)

    def test_stopWhileOnlyWorkerRestarts(self) -> None:
        """
        A stop that comes while the only worker is being replaced (it was
        killed) lets the replacement start, answer the connections that
        waited in the queue meanwhile, and drain, instead of stopping it
        before it served and closing the sockets on them.
        """
        server = SupervisedServer(self, "--workers", "1")
        port = server.start(1)
        [victim] = server.workerPids()
        os.kill(victim, signal.SIGKILL)
        server.waitFor(lambda: b"worker 2 started" in server.output())
        self.addCleanup(_killAll, server.workerPids())
        self.stopAnswersQueued(server, port)

    def test_stopDuringBackoff(self) -> None:
        """
        A stop that comes while the supervisor waits before replacing a
        worker that crashed again and again (no worker runs) starts one,
        which answers the connection waiting in the queue and drains,
        instead of closing the sockets on it.
        """
        server = SupervisedServer(self, "--workers", "1")
        port = server.start(1)
        # The fourth crash in a row is replaced after 1.6 s.
        for crashes in range(1, 5):
            server.waitFor(lambda n=crashes: server.ready(n), timeout=30)
            [victim] = server.waitFor(server.workerPids)  # type: ignore[misc]
            os.kill(victim, signal.SIGKILL)
            server.waitFor(lambda pid=victim: pid not in server.workerPids())
        server.waitFor(lambda: server.output().count(b"died with signal 9") == 4)
        self.stopAnswersQueued(server, port)
        self.assertIn(b"no worker is serving; starting one", server.output())

    def test_brokenAppStopsSupervisor(self) -> None:
        """
        A worker that cannot import the app makes the supervisor exit 1 with
        the error printed once, instead of restarting forever.
        """
        server = SupervisedServer(self, "--workers", "2", app=_BROKEN_APP)
        status = server.process.wait(30)
        output = server.output()
        self.assertEqual(status, 1, output)
        # The error once, though both workers failed the same way: the
        # traceback and the one line of a single process.
        self.assertEqual(output.count(b"Traceback (most recent call last)"), 1, output)
        self.assertEqual(
            output.count(b"'wapp:app': importing 'wapp' raised RuntimeError"), 1, output
        )
        self.assertIn(b"no worker could start", output)
        # (Not b"drain": that may be in the checkout's path, in the traceback.)
        for word in (b"draining", b"drained"):
            self.assertNotIn(word, output)

    def test_reloadReplacesEveryWorker(self) -> None:
        """
        SIGHUP replaces every worker, one by one, with no failed request
        while a steady stream of requests is served.
        """
        server = SupervisedServer(self, "--workers", "2")
        server.start(2)
        before = server.workerPids()
        load = _Load(server)
        try:
            server.waitFor(lambda: load.ok > 20)
            server.signal(signal.SIGHUP)
            server.waitReplaced(before, 2)
            ok = load.ok
            server.waitFor(lambda: load.ok > ok + 20)
        finally:
            load.stop()
        self.assertEqual(load.failures, [])
        self.assertGreater(len(load.pids), 2)

    def test_maxRequests(self) -> None:
        """
        With C{--max-requests 30}, workers are replaced after about 30
        requests each, with no failed request.
        """
        server = SupervisedServer(self, "--workers", "2", "--max-requests", "30")
        server.start(2)
        load = _Load(server)
        try:
            server.waitFor(lambda: len(load.pids) >= 4, timeout=60)
        finally:
            load.stop()
        self.assertEqual(load.failures, [])
        self.assertIn(b"served 30 requests", server.output())

    def test_addAndRemoveWorkers(self) -> None:
        """
        SIGTTIN adds a worker and SIGTTOU removes one.
        """
        server = SupervisedServer(self, "--workers", "2")
        server.start(2)
        server.signal(signal.SIGTTIN)
        server.waitFor(lambda: len(server.workerPids()) == 3)
        server.signal(signal.SIGTTOU)
        server.waitFor(lambda: len(server.workerPids()) == 2)
        self.assertEqual(server.get()[0], 200)

    def test_interpreterFlags(self) -> None:
        """
        Workers run with the options the supervisor's interpreter was given:
        C{python -O -X dev -m twsgi --workers 1} serves from an optimized
        worker in development mode.
        """
        app = textwrap.dedent(
            """
            import sys

            def app(environ, start_response):
                start_response("200 OK", [])
                flags = sys.flags
                return [f"{flags.optimize} {flags.dev_mode}".encode()]
            """
        )
        server = SupervisedServer(
            self, "--workers", "1", app=app, interpreter=("-O", "-X", "dev")
        )
        server.start(1)
        self.assertEqual(server.get(), (200, b"1 True"))


_TRACKING_APP = textwrap.dedent(
    """
    import os, time

    def app(environ, start_response):
        line = "%d %s\\n" % (os.getpid(), environ.get("HTTP_X_REQUEST_ID", "-"))
        fd = os.open("started", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, line.encode())
        os.close(fd)
        time.sleep(0.05)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"%d" % os.getpid()]
    """
)


class ZeroLossTests(SynchronousTestCase):
    """
    Under steady load, reloads, recycling and a killed worker lose nothing
    but the requests that were inside the killed worker.
    """

    def test_zeroLoss(self) -> None:
        """
        Three SIGHUPs, C{--max-requests 200} and one SIGKILLed worker under a
        steady stream of requests from 4 clients: every failed request was
        inside the killed worker (it started there, or it was in flight when
        the worker died, before reaching the application), and every other
        request succeeded.
        """
        server = SupervisedServer(
            self,
            "--workers",
            "2",
            "--max-requests",
            "200",
            "--max-requests-jitter",
            "20",
            app=_TRACKING_APP,
        )
        server.start(2)
        results: dict[str, tuple[float, float, bool]] = {}
        lock = threading.Lock()
        stop = threading.Event()
        deadline = time.monotonic() + 120

        def client(number: int) -> None:
            count = 0
            while not stop.is_set() and time.monotonic() < deadline:
                count += 1
                requestId = f"c{number}-{count}"
                sentAt = time.monotonic()
                connection = http.client.HTTPConnection(
                    "127.0.0.1", server.port, timeout=10
                )
                try:
                    connection.request("GET", "/", headers={"X-Request-ID": requestId})
                    response = connection.getresponse()
                    response.read()
                    ok = response.status == 200
                except (OSError, http.client.HTTPException):
                    ok = False
                finally:
                    connection.close()
                with lock:
                    results[requestId] = (sentAt, time.monotonic(), ok)

        def startedIn() -> dict[str, int]:
            """
            The worker each request started in, from the application's file
            (but for a line it is writing now).
            """
            started: dict[str, int] = {}
            with open(os.path.join(server.directory, "started")) as f:
                for line in f:
                    if line.endswith("\n"):
                        pid, requestId = line.split()
                        started[requestId] = int(pid)
            return started

        threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        try:
            for _ in range(3):
                before = server.workerPids()
                server.signal(signal.SIGHUP)
                server.waitFor(
                    lambda before=before: (
                        len(server.workerPids()) == 2
                        and not (server.workerPids() & before)
                        and server.ready(2)
                    ),
                    timeout=40,
                )
            server.waitFor(lambda: len(results) > 50)
            victim = min(server.workerPids())
            killing = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            killed = time.monotonic()
            server.waitFor(lambda: victim not in server.workerPids())
            server.waitFor(lambda: len(server.workerPids()) == 2)
            server.waitFor(lambda: _RECYCLED.search(server.output()), timeout=60)
            count = len(results)
            # 50 more requests, and the workers that replaced the killed and
            # the recycled one served too: on a busy machine they may be
            # ready only after the others served 50 more.
            server.waitFor(
                lambda: (
                    len(results) > count + 50 and len(set(startedIn().values())) > 8
                ),
                timeout=30,
            )
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)

        started = startedIn()
        failed = {r for r, (_, _, ok) in results.items() if not ok}
        for requestId in failed:
            sentAt, endedAt, _ = results[requestId]
            if requestId in started:
                self.assertEqual(started[requestId], victim, requestId)
            else:
                # In flight across the kill: sent before the worker was
                # dead, ended after it was signalled.
                self.assertLessEqual(sentAt, killed, requestId)
                self.assertGreaterEqual(endedAt, killing, requestId)
        self.assertLessEqual(len(failed), 4)
        self.assertGreater(len(results) - len(failed), 200)
        self.assertGreater(len(set(started.values())), 8)


_STUCK_APP = textwrap.dedent(
    """
    import os, time

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/stuck":
            time.sleep(3)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"%d" % os.getpid()]
    """
)


class RequestTimeoutTests(SynchronousTestCase):
    """
    C{--request-timeout} with C{--request-timeout-action recycle}.
    """

    def test_recycle(self) -> None:
        """
        A request past its deadline has its stack logged, and its worker is
        replaced gracefully: the stuck request still completes, and the
        worker's other requests are not killed.
        """
        server = SupervisedServer(
            self,
            "--workers",
            "2",
            "--request-timeout",
            "1",
            "--request-timeout-action",
            "recycle",
            app=_STUCK_APP,
        )
        server.start(2)
        before = server.workerPids()
        result: list[tuple[int, bytes]] = []
        stuck = threading.Thread(target=lambda: result.append(server.get("/stuck")))
        stuck.start()
        self.addCleanup(stuck.join, 30)
        server.waitFor(lambda: b"past --request-timeout 1" in server.output())
        output = server.output()
        self.assertIn(b"time.sleep(3)", output)
        server.waitFor(
            lambda: b"a request ran past --request-timeout" in server.output()
        )
        stuck.join(30)
        self.assertEqual(result[0][0], 200)
        self.assertIn(int(result[0][1]), before)
        server.waitFor(lambda: len(server.workerPids() - before) == 1)
        self.assertEqual(server.get()[0], 200)


class WorkerEndpointTests(SynchronousTestCase):
    """
    TLS, UNIX sockets, the PROXY protocol and systemd socket activation work
    in worker processes.
    """

    def test_listenBacklog(self) -> None:
        """
        The sockets the supervisor binds for its workers get the production
        listen backlog: TCP, behind C{haproxy:}, and UNIX.
        """
        server = SupervisedServer(
            self,
            "--workers",
            "2",
            endpoints=(
                "tcp:0:interface=127.0.0.1",
                "haproxy:tcp:0:interface=127.0.0.1",
                "unix:{dir}/w.sock",
            ),
        )
        server.start(2)
        # The supervisor's lines and its workers' name the same two ports.
        ports = set(server.listeningPorts())
        self.assertEqual(len(ports), 2, server.output())
        expected = _server.expectedBacklog()
        for where in [*ports, os.path.join(server.directory, "w.sock")]:
            self.assertEqual(_server.listenBacklog(where), expected, where)

    def test_relativeUnixUnderChdir(self) -> None:
        """
        A relative C{unix:} path is in the C{--chdir} directory, as it is
        for one process: the supervisor binds it there, and its workers
        serve it (they could not start).
        """
        # A short path (not under trial's _trial_temp): the test connects
        # to the socket by its absolute path, which AF_UNIX caps at 107
        # bytes.
        elsewhere = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, elsewhere, True)
        server = SupervisedServer(
            self,
            "--workers",
            "1",
            "--chdir",
            elsewhere,
            "--pythonpath",
            "{dir}",
            endpoints=("tcp:0:interface=127.0.0.1", "unix:rel.sock"),
        )
        server.start(1)
        unixSocket = socket.socket(socket.AF_UNIX)
        self.addCleanup(unixSocket.close)
        unixSocket.settimeout(10)
        unixSocket.connect(os.path.join(elsewhere, "rel.sock"))
        unixSocket.sendall(b"GET / HTTP/1.0\r\n\r\n")
        self.assertIn(b"200 OK", _readAll(unixSocket))

    def test_tlsUnixAndProxy(self) -> None:
        """
        Workers serve HTTPS on an C{ssl:} endpoint (the supervisor holds the
        plain socket, each worker adds TLS), require client certificates on
        one with C{;client-ca=}, serve HTTP on a C{unix:} socket of mode
        0660, and take the client address from a PROXY header on a
        C{haproxy:} one, and on a C{haproxy:ssl:} one from a header before
        the TLS handshake.
        """
        app = textwrap.dedent(
            """
            import os

            def app(environ, start_response):
                start_response("200 OK", [("Content-Type", "text/plain")])
                body = "%s %s %d %s" % (
                    environ["wsgi.url_scheme"], environ["REMOTE_ADDR"], os.getpid(),
                    environ.get("SSL_CLIENT_VERIFY", "-"))
                return [body.encode()]
            """
        )
        from tests.helpers.certs import makeCertificates

        certs = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, certs, True)
        makeCertificates(certs)
        server = SupervisedServer(
            self,
            "--workers",
            "2",
            app=app,
            endpoints=(
                f"ssl:0:interface=127.0.0.1:privateKey={certs}/server.key"
                f":certKey={certs}/server.pem",
                "unix:{dir}/app.sock",
                "haproxy:tcp:0:interface=127.0.0.1",
                f"ssl:0:interface=127.0.0.1:privateKey={certs}/server.key"
                f":certKey={certs}/server.pem;client-ca={certs}/ca.pem",
                f"haproxy:ssl:0:interface=127.0.0.1:privateKey={certs}/server.key"
                f":certKey={certs}/server.pem",
            ),
        )
        server.start(2)
        ports = dict(
            (description, int(port))
            for port, description in re.findall(
                rb"listening on https?://127\.0\.0\.1:(\d+) \((.*?)\)", server.output()
            )
        )
        [tlsPort] = [
            p
            for d, p in ports.items()
            if d.startswith(b"ssl:") and b"client-ca" not in d
        ]
        [mtlsPort] = [p for d, p in ports.items() if b"client-ca" in d]
        [proxyPort] = [p for d, p in ports.items() if d.startswith(b"haproxy:tcp:")]
        [proxyTLSPort] = [p for d, p in ports.items() if d.startswith(b"haproxy:ssl:")]

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        https = http.client.HTTPSConnection(
            "127.0.0.1", tlsPort, timeout=10, context=context
        )
        https.request("GET", "/")
        self.assertEqual(
            https.getresponse().read().split()[:2], [b"https", b"127.0.0.1"]
        )
        https.close()

        mutual = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        mutual.check_hostname = False
        mutual.verify_mode = ssl.CERT_NONE
        mutual.load_cert_chain(f"{certs}/client.pem", f"{certs}/client.key")
        https = http.client.HTTPSConnection(
            "127.0.0.1", mtlsPort, timeout=10, context=mutual
        )
        https.request("GET", "/")
        self.assertEqual(https.getresponse().read().split()[3], b"SUCCESS")
        https.close()
        anonymous = http.client.HTTPSConnection(
            "127.0.0.1", mtlsPort, timeout=10, context=context
        )
        with self.assertRaises((ssl.SSLError, OSError, http.client.HTTPException)):
            anonymous.request("GET", "/")
            anonymous.getresponse().read()
        anonymous.close()

        socketPath = os.path.join(server.directory, "app.sock")
        self.assertEqual(os.stat(socketPath).st_mode & 0o777, 0o660)
        unixSocket = socket.socket(socket.AF_UNIX)
        unixSocket.settimeout(10)
        unixSocket.connect(os.path.join(server.directory, "app.sock"))
        unixSocket.sendall(b"GET / HTTP/1.0\r\n\r\n")
        self.assertIn(b"200 OK", _readAll(unixSocket))

        before = server.workerPids()
        server.signal(signal.SIGHUP)
        server.waitFor(
            lambda: (
                len(server.workerPids()) == 2 and not (server.workerPids() & before)
            ),
            timeout=40,
        )
        server.waitFor(lambda: server.output().count(b"left with status") >= 2)
        self.assertEqual(os.stat(socketPath).st_mode & 0o777, 0o660)
        unixSocket = socket.socket(socket.AF_UNIX)
        unixSocket.settimeout(10)
        unixSocket.connect(socketPath)
        unixSocket.sendall(b"GET / HTTP/1.0\r\n\r\n")
        self.assertIn(b"200 OK", _readAll(unixSocket))

        proxied = socket.create_connection(("127.0.0.1", proxyPort), timeout=10)
        proxied.sendall(
            b"PROXY TCP4 203.0.113.7 127.0.0.1 50000 80\r\nGET / HTTP/1.0\r\n\r\n"
        )
        self.assertIn(b"http 203.0.113.7 ", _readAll(proxied))

        proxied = socket.create_connection(("127.0.0.1", proxyTLSPort), timeout=10)
        proxied.sendall(b"PROXY TCP4 203.0.113.8 127.0.0.1 50000 443\r\n")
        proxiedTLS = context.wrap_socket(proxied)
        proxiedTLS.sendall(b"GET / HTTP/1.0\r\n\r\n")
        self.assertIn(b"https 203.0.113.8 ", _readAll(proxiedTLS))

    def test_systemd(self) -> None:
        """
        With systemd socket activation (C{LISTEN_FDS}), the supervisor adopts
        the socket systemd passed and its workers serve on it.
        """
        listener = socket.socket()
        self.addCleanup(listener.close)
        listener.bind(("127.0.0.1", 0))
        listener.listen(50)
        port = listener.getsockname()[1]
        server = SupervisedServer(
            self,
            "--workers",
            "2",
            endpoints=("systemd:domain=INET:index=0",),
            wrap=(sys.executable, "-c", _SYSTEMD, str(listener.fileno())),
            passFds=(listener.fileno(),),
        )
        server.port = port
        server.waitFor(lambda: len(server.workerPids()) == 2 and server.ready(2))
        self.assertEqual(server.get()[0], 200)


# What systemd does before it starts a socket-activated service: the socket
# as descriptor 3, LISTEN_FDS and LISTEN_PID (this very process) set.
_SYSTEMD = (
    "import os, sys; os.dup2(int(sys.argv[1]), 3); "
    "os.environ.update(LISTEN_FDS='1', LISTEN_FDNAMES='app.socket', "
    "LISTEN_PID=str(os.getpid())); "
    "os.execv(sys.argv[2], sys.argv[2:])"
)


class RetireReadinessTests(SynchronousTestCase):
    """
    A worker being replaced leaves readiness alone, while a whole-server
    stop still flips it.
    """

    def test_reloadKeepsReadiness(self) -> None:
        """
        With C{--drain-delay 3}, every C{/readyz} on the admin listener
        answers 200 and every application request succeeds during a SIGHUP
        reload; SIGTERM to the supervisor still makes C{/readyz} answer 503
        during the drain delay, and the server exits 0.
        """
        server = SupervisedServer(
            self,
            "--workers",
            "2",
            "--drain-delay",
            "3",
            "--metrics-endpoint",
            # Not the application's string: a listener is one or the other.
            "tcp:port=0:interface=127.0.0.1",
        )
        server.start(2)
        admin = server.listeningPorts()[1]
        before = server.workerPids()
        load = _Load(server, pause=0.01)
        ready = _Load(server, "/readyz", port=admin, pause=0.02)
        try:
            server.waitFor(lambda: load.ok > 10 and ready.ok > 10)
            server.signal(signal.SIGHUP)
            server.waitReplaced(before, 2)
            checked = ready.ok
            server.waitFor(lambda: ready.ok > checked + 10)
        finally:
            load.stop()
            ready.stop()
        self.assertEqual(ready.failures, [])
        self.assertEqual(load.failures, [])
        self.assertGreater(ready.ok, 30)
        output = server.output()
        self.assertEqual(output.count(b"twsgi worker retiring"), 2)
        self.assertEqual(output.count(b"left with status 0"), 2)

        server.signal(signal.SIGTERM)
        statuses: list[object] = []
        deadline = time.monotonic() + 10
        while 503 not in statuses and time.monotonic() < deadline:
            try:
                statuses.append(server.get("/readyz", timeout=5, port=admin)[0])
            except OSError as e:
                statuses.append(repr(e))
            time.sleep(0.02)
        self.assertIn(503, statuses)
        self.assertEqual(server.process.wait(30), 0)


def _readAll(connection: socket.socket) -> bytes:
    data = b""
    while True:
        chunk = connection.recv(65536)
        if not chunk:
            connection.close()
            return data
        data += chunk


_HOLDING_APP = textwrap.dedent(
    """
    import fcntl, os

    def app(environ, start_response):
        fd = os.open("started", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, b"%d\\n" % os.getpid())
        os.close(fd)
        # Until the test lets go of its lock on the file.
        with open("hold", "rb") as hold:
            fcntl.flock(hold, fcntl.LOCK_SH)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"%d" % os.getpid()]
    """
)


class BalanceTests(SynchronousTestCase):
    """
    A worker accepts only while a WSGI thread of its is free, so that a
    request never waits for a busy worker while another has a thread free.
    """

    def holding(self, *args: str) -> tuple[SupervisedServer, int, Any]:
        """
        Start two workers of one thread each, serving L{_HOLDING_APP} with
        C{args}, and hold the requests they start: the server, its port,
        and the file whose lock holds them (unlock it to let them go).
        """
        server = SupervisedServer(
            self, "--workers", "2", "--threads", "1:1", *args, app=_HOLDING_APP
        )
        port = server.start(2)
        hold = open(os.path.join(server.directory, "hold"), "wb")
        self.addCleanup(hold.close)
        fcntl.flock(hold, fcntl.LOCK_EX)
        return server, port, hold

    def startedIn(self, server: SupervisedServer) -> list[int]:
        """
        The workers that started a request, one entry per request.
        """
        try:
            with open(os.path.join(server.directory, "started")) as f:
                return [int(line) for line in f.read().split()]
        except FileNotFoundError:
            return []

    def request(self, port: int) -> socket.socket:
        """
        Send a request on a new connection to C{port}; the connection.
        """
        connection = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.addCleanup(connection.close)
        connection.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return connection

    def test_busyWorkerLeavesConnections(self) -> None:
        """
        With C{--threads 1:1}, a worker whose thread is busy leaves a new
        connection in the kernel's queue (it does answer its admin
        listener meanwhile), and the other worker takes it: both requests
        run at once, one in each worker.  (Each worker used to accept every
        connection it saw, and queue it for its one thread.)
        """
        server, port, hold = self.holding(
            "--health-endpoint", "tcp:port=0:interface=127.0.0.1"
        )
        admin = server.listeningPorts()[1]
        busy, other = sorted(server.workerPids())
        # Only the busy worker accepts until the other is continued.
        os.kill(other, signal.SIGSTOP)
        self.addCleanup(os.kill, other, signal.SIGCONT)
        connections = []
        for _ in range(2):
            connections.append(self.request(port))
            server.waitFor(lambda: self.startedIn(server))
        self.assertEqual(self.startedIn(server), [busy])
        # The busy worker's reactor ran since the second connection came.
        self.assertEqual(server.get("/livez", port=admin), (200, b"ok\n"))
        os.kill(other, signal.SIGCONT)
        server.waitFor(lambda: len(self.startedIn(server)) == 2)
        self.assertEqual(self.startedIn(server), [busy, other])
        fcntl.flock(hold, fcntl.LOCK_UN)
        answers = [_readAll(connection) for connection in connections]
        self.assertEqual(
            [answer.rpartition(b"\r\n\r\n")[2] for answer in answers],
            [b"%d" % busy, b"%d" % other],
        )

    def test_maxPendingInBacklog(self) -> None:
        """
        Once every worker's threads are busy, new connections wait in the
        listen backlog, and count toward C{--max-pending}: beyond it, a
        worker takes them and answers 503 with C{Retry-After} while the
        threads are still busy (without the count they waited there for a
        thread, however many).  Each worker queues at most one (its own
        bound), so of four, at least two are refused; those queued are
        served once a thread frees.
        """
        server, port, hold = self.holding("--max-pending", "1")
        busy = [self.request(port) for _ in range(2)]
        server.waitFor(lambda: len(self.startedIn(server)) == 2)
        waiting = [self.request(port) for _ in range(4)]
        answered: list[bytes] = []
        deadline = time.monotonic() + 20
        while len(answered) < 2 and time.monotonic() < deadline:
            readable, _, _ = select.select(waiting, [], [], 1)
            for connection in readable:
                waiting.remove(connection)
                answered.append(_readAll(connection))
        self.assertGreaterEqual(len(answered), 2, "no 503 while every thread is busy")
        for answer in answered:
            self.assertTrue(answer.startswith(b"HTTP/1.1 503 "), answer)
            self.assertIn(b"\r\nRetry-After: 1\r\n", answer)
        self.assertEqual(len(self.startedIn(server)), 2)
        fcntl.flock(hold, fcntl.LOCK_UN)
        for connection in busy:
            answer = _readAll(connection)
            self.assertTrue(answer.startswith(b"HTTP/1.1 200 OK"), answer)
        # Each worker counts the backlog it sees when it takes a connection,
        # so a third may be refused after the two read above; the last one
        # taken, with none left waiting, is queued (by a worker whose own
        # queue is empty, or beside the one a worker queued) and served.
        late = [_readAll(connection) for connection in waiting]
        for answer in late:
            self.assertTrue(
                answer.startswith(b"HTTP/1.1 200 OK")
                or answer.startswith(b"HTTP/1.1 503 ")
                and b"\r\nRetry-After: 1\r\n" in answer,
                answer,
            )
        self.assertIn(True, [a.startswith(b"HTTP/1.1 200 OK") for a in late], late)

    def test_readyCountsBacklog(self) -> None:
        """
        A worker with no thread free counts the connections waiting in the
        listen backlog in its readiness: with both workers' threads held
        and two connections waiting there, C{/readyz} (limit 1) is 503 on
        the admin listener, whichever worker answers; 200 once they ran.
        """
        server, port, hold = self.holding(
            "--ready-queue-limit",
            "1",
            "--health-endpoint",
            "tcp:port=0:interface=127.0.0.1",
        )
        admin = server.listeningPorts()[1]
        connections = []
        for count in (1, 2, 2, 2):
            connections.append(self.request(port))
            server.waitFor(lambda: len(self.startedIn(server)) >= count)  # noqa: B023
        status, body = server.get("/readyz", port=admin)
        self.assertEqual(
            (status, body), (503, b"2 requests waiting for a thread (limit 1)\n")
        )
        fcntl.flock(hold, fcntl.LOCK_UN)
        for connection in connections:
            self.assertTrue(_readAll(connection).startswith(b"HTTP/1.1 200 OK"))
        self.assertEqual(server.get("/readyz", port=admin), (200, b"ready\n"))


class RecyclingTests(SynchronousTestCase):
    """
    Workers are retired by age and by memory, each replaced before it drains.
    """

    def test_lifetime(self) -> None:
        """
        With C{--worker-lifetime}, workers are replaced once they are older,
        with no failed request.
        """
        server = SupervisedServer(self, "--workers", "2", "--worker-lifetime", "2")
        before = server.startRecycling(2)
        load = _Load(server)
        try:
            server.waitFor(
                lambda: (
                    not (server.workerPids() & before) and len(server.workerPids()) >= 2
                ),
                timeout=40,
            )
        finally:
            load.stop()
        self.assertIn(b"older than 2 s", server.output())
        self.assertEqual(load.failures, [])

    def test_memory(self) -> None:
        """
        With C{--max-worker-memory}, a worker whose RSS passes the limit is
        replaced (every worker passes 1 MB), with no failed request.
        """
        server = SupervisedServer(self, "--workers", "2", "--max-worker-memory", "1")
        server.startRecycling(2)
        load = _Load(server)
        try:
            server.waitFor(lambda: b"above 1 MB" in server.output(), timeout=40)
            server.waitFor(lambda: server.output().count(b"left with status 0") >= 1)
        finally:
            load.stop()
        self.assertEqual(load.failures, [])

    def test_reopenLogs(self) -> None:
        """
        SIGUSR1 to the supervisor makes every worker reopen its access log:
        after the file is moved away, new lines go to a new file at the
        configured path.
        """
        server = SupervisedServer(
            self, "--workers", "2", "--access-log", "{dir}/access.log"
        )
        server.start(2)
        path = os.path.join(server.directory, "access.log")
        for _ in range(10):
            self.assertEqual(server.get()[0], 200)
        server.waitFor(lambda: os.path.exists(path) and os.path.getsize(path) > 0)
        os.rename(path, path + ".1")
        server.signal(signal.SIGUSR1)
        server.waitFor(lambda: _reopened(server, path), timeout=20)
        self.assertIsNone(server.process.poll())


def _reopened(server: SupervisedServer, path: str) -> bool:
    server.get()
    return os.path.exists(path) and os.path.getsize(path) > 0


class BackoffTests(SynchronousTestCase):
    """
    A worker that keeps crashing is replaced with growing delays.
    """

    def test_backoff(self) -> None:
        """
        The first crash is replaced at once; crashes close together wait
        0.4 s, 0.8 s, ... up to 10 s; after 30 quiet seconds it is at once
        again.
        """
        from twsgi.process.workers import _Worker

        reactor = MemoryReactorClock()
        supervisor = supervisorFromConfig(
            _config(workers=1), reactor, {}, handleSignals=False
        )
        supervisor._everReady = True

        def crash() -> float:
            worker = _Worker(supervisor, 1, 4)
            worker.ready = True
            supervisor.workers.append(worker)
            supervisor.workerEnded(worker, 1, None)
            call = reactor.getDelayedCalls()[-1]
            delay = call.getTime() - reactor.seconds()
            call.cancel()
            return delay

        delays = [crash() for _ in range(8)]
        self.assertEqual(delays[:4], [0.0, 0.4, 0.8, 1.6])
        self.assertEqual(delays[-1], 10)
        reactor.advance(31)
        self.assertEqual(crash(), 0.0)


def _recording(
    reactor: Any, workers: int, raises: bool = False
) -> tuple[Supervisor, list[int]]:
    """
    A supervisor of C{workers} on C{reactor}, without signal handlers, that
    raises its start failures with C{raises}; and the statuses it gives up
    with.
    """
    supervisor = supervisorFromConfig(
        _config(workers=workers), reactor, {}, handleSignals=False
    )
    failures: list[int] = []
    supervisor.onFailure = failures.append
    supervisor.startFailureRaises = raises
    return supervisor, failures


class _FailingSpawns(MemoryReactorClock):
    """
    A reactor whose C{spawnProcess} calls, after the first C{after}, raise
    C{failures} times (as a fork does when the system is out of processes);
    the others record the process protocol.
    """

    def __init__(self, failures: int, after: int = 0) -> None:
        super().__init__()
        self.failures = failures
        self.after = after
        self.spawned: list[Any] = []

    def spawnProcess(self, protocol: Any, *args: Any, **kwargs: Any) -> None:
        if self.failures and len(self.spawned) >= self.after:
            self.failures -= 1
            raise OSError(errno.EAGAIN, "Resource temporarily unavailable")
        self.spawned.append(protocol)


def _refused(running: int, count: int, refused: int) -> str:
    """
    The supervisor's line for the worker processes the system refused while
    C{running} of C{count} workers run.
    """
    return _refusedLine(
        f"{running} of {count} workers run, trying again every 1 s", refused
    )


def _refusedLine(outcome: str, refused: int) -> str:
    return (
        "twsgi: cannot start a worker process (Resource temporarily "
        f"unavailable); {outcome} ({refused} refusal(s), said at most every 60 s)"
    )


def _errors(events: Sequence[LogEvent]) -> list[str]:
    """
    The supervisor's lines about refused worker processes among C{events}.
    """
    return [
        formatEvent(e)
        for e in events
        if e.get("log_level") == LogLevel.error
        and "cannot start a worker process" in formatEvent(e)
    ]


class WorkerCheckTests(SynchronousTestCase):
    """
    The supervisor's periodic worker check (C{--worker-lifetime},
    C{--max-worker-memory}) and its respawning survive a worker that cannot
    be started.
    """

    def test_spawnFailureTriedAgain(self) -> None:
        """
        A replacement that cannot be spawned is logged, and the next check
        (one interval later) replaces the worker after all.
        """
        reactor = _FailingSpawns(1)
        supervisor = supervisorFromConfig(
            _config(workers=1, worker_lifetime=2.0), reactor, {}, handleSignals=False
        )
        old = _Worker(supervisor, 1, 4)
        old.ready = True
        supervisor.workers.append(old)
        supervisor._check.start(supervisor.checkInterval, now=False)
        self.addCleanup(supervisor._check.stop)
        with capturedLogs() as events:
            reactor.advance(3)
        self.assertEqual(reactor.spawned, [])
        self.assertIsNone(old.replacedBy)
        self.assertEqual(
            (_errors(events), self.flushLoggedErrors()),
            (
                [
                    _refusedLine(
                        "worker 1 (pid None) serves on, not replaced (older than "
                        "2 s), until a replacement starts",
                        1,
                    )
                ],
                [],
            ),
        )
        reactor.advance(1)
        self.assertEqual(len(reactor.spawned), 1)
        self.assertIs(old.replacedBy, reactor.spawned[0])

    def test_replacementsRefusedForLong(self) -> None:
        """
        While the system goes on refusing the replacements that the worker
        check asks for every second, the log has one line a minute, not
        one for each worker the check would replace.
        """
        reactor = _FailingSpawns(1000)
        supervisor = supervisorFromConfig(
            _config(workers=2, worker_lifetime=2.0), reactor, {}, handleSignals=False
        )
        for number in (1, 2):
            worker = _Worker(supervisor, number, 4)
            worker.ready = True
            supervisor.workers.append(worker)
        supervisor._check.start(supervisor.checkInterval, now=False)
        self.addCleanup(supervisor._check.stop)
        with capturedLogs() as events:
            reactor.pump([1.0] * 150)
        outcome = (
            "worker 1 (pid None) serves on, not replaced (older than 2 s), until "
            "a replacement starts"
        )
        self.assertEqual(
            [formatEvent(e) for e in events],
            [
                _refusedLine(outcome, 1),
                _refusedLine(outcome, 120),
                _refusedLine(outcome, 120),
            ],
        )

    def test_reloadRefused(self) -> None:
        """
        A reload (SIGHUP) while the system refuses processes leaves each
        worker serving, says so in one line, and ends; each replacement is
        tried again a second later.
        """
        reactor = _FailingSpawns(2)
        supervisor = supervisorFromConfig(
            _config(workers=2), reactor, {}, handleSignals=False
        )
        for number in (1, 2):
            worker = _Worker(supervisor, number, 4)
            worker.ready = True
            supervisor.workers.append(worker)
        with capturedLogs() as events:
            reloaded = supervisor.reload()
        self.assertEqual(
            (
                _errors(events),
                self.successResultOf(reloaded),
                [w.replacedBy for w in supervisor.workers],
            ),
            (
                [
                    _refusedLine(
                        "worker 1 (pid None) serves on, not replaced (reload), "
                        "until a replacement starts",
                        1,
                    )
                ],
                None,
                [None, None],
            ),
        )
        reactor.advance(1)
        self.assertEqual(
            [w.replacedBy for w in supervisor.workers[:2]], reactor.spawned
        )
        # The server was never short of workers: no "run again" line.
        with capturedLogs() as events:
            supervisor.workerEnded(supervisor.workers[0], 1, None)
            reactor.advance(0)
        self.assertNotIn("run again", " ".join(formatEvent(e) for e in events))

    def test_retireRefused(self) -> None:
        """
        A worker that asks to be retired (once) while the system refuses
        its replacement is replaced once the system lets it.
        """
        reactor = _FailingSpawns(3)
        supervisor = supervisorFromConfig(
            _config(workers=1), reactor, {}, handleSignals=False
        )
        worker = _Worker(supervisor, 1, 4)
        worker.ready = True
        supervisor.workers.append(worker)
        with capturedLogs():
            supervisor.workerSaid(worker, "retire a request ran too long")
            reactor.pump([1.0] * 2)
            self.assertIsNone(worker.replacedBy)
            reactor.advance(1)
        self.assertEqual(len(reactor.spawned), 1)
        self.assertIs(worker.replacedBy, reactor.spawned[0])

    def test_respawnCallsShareOneRetry(self) -> None:
        """
        Calls that find the server short of workers while the system
        refuses (a worker's end, SIGTTIN) each try at once, but share one
        try a second after.
        """
        reactor = _FailingSpawns(1000, after=1)
        supervisor, failures = _recording(reactor, 2)
        with capturedLogs():
            supervisor._startWorkers()
            for _ in range(3):
                supervisor._respawn()
            reactor.pump([1.0] * 10)
        self.assertEqual(1000 - reactor.failures, 1 + 3 + 10)

    def test_firstWorkerRefused(self) -> None:
        """
        When the system refuses the first worker process, no request could
        be served: the supervisor gives up with status 1 and the reason in
        one line, which it raises too with C{startFailureRaises}.
        """
        for raises in (False, True):
            reactor = _FailingSpawns(1)
            supervisor, failures = _recording(reactor, 2, raises)
            if raises:
                self.assertRaises(OSError, supervisor._startWorkers)
            else:
                supervisor._startWorkers()
            self.assertEqual(
                (failures, reactor.spawned, supervisor.workersFailed),
                (
                    [1],
                    [],
                    "cannot start a worker process: Resource temporarily unavailable",
                ),
            )

    def test_laterWorkerRefused(self) -> None:
        """
        When the system refuses a worker process once one runs, that is
        logged, and the workers still missing are started a second later.
        """
        reactor = _FailingSpawns(1, after=1)
        supervisor, failures = _recording(reactor, 3)
        with capturedLogs() as events:
            supervisor._startWorkers()
            self.assertEqual(len(reactor.spawned), 1)
            self.assertEqual(_errors(events), [_refused(1, 3, 1)])
            reactor.advance(1)
        self.assertEqual((len(reactor.spawned), failures), (3, []))
        self.assertIn(
            "twsgi: all 3 workers run again",
            [formatEvent(e) for e in events],
        )
        # A refused process uses up no worker number.
        self.assertEqual([w.number for w in supervisor.workers], [1, 2, 3])

    def test_refusedForLong(self) -> None:
        """
        While the system goes on refusing a worker process, the supervisor
        tries again every second and says so in one line a minute, with
        the refusals since the line before, and no traceback.
        """
        reactor = _FailingSpawns(200, after=1)
        supervisor, failures = _recording(reactor, 2)
        with capturedLogs() as events:
            supervisor._startWorkers()
            reactor.pump([1.0] * 150)
        self.assertEqual(
            (_errors(events), failures, self.flushLoggedErrors(), len(reactor.spawned)),
            ([_refused(1, 2, 1), _refused(1, 2, 60), _refused(1, 2, 60)], [], [], 1),
        )

    def test_respawnTriedAgain(self) -> None:
        """
        When the worker that replaces a crashed one cannot be spawned, that
        is logged and tried again a second later: the server is not left a
        worker short.
        """
        reactor = _FailingSpawns(1)
        supervisor = supervisorFromConfig(
            _config(workers=1), reactor, {}, handleSignals=False
        )
        supervisor._everReady = True
        crashed = _Worker(supervisor, 1, 4)
        crashed.ready = True
        supervisor.workers.append(crashed)
        with capturedLogs() as events:
            supervisor.workerEnded(crashed, 1, None)
            reactor.advance(0)
        self.assertEqual(reactor.spawned, [])
        self.assertEqual(_errors(events), [_refused(0, 1, 1)])
        reactor.advance(1)
        self.assertEqual(len(reactor.spawned), 1)
        self.assertEqual(supervisor.workers, reactor.spawned)


class _TakenPorts(MemoryReactorClock):
    """
    A memory reactor on which no TCP port can be listened on.
    """

    def listenTCP(self, port: int, *args: Any, **kwargs: Any) -> Any:
        raise CannotListenError("", port, OSError(errno.EADDRINUSE, "in use"))


class StartFailureTests(SynchronousTestCase):
    """
    A worker that cannot start says why over its pipe; the supervisor logs
    it once.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.supervisor = supervisorFromConfig(
            _config(workers=2), self.reactor, {}, handleSignals=False
        )
        self.failures: list[int] = []
        self.supervisor.onFailure = self.failures.append
        self.events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def worker(self, ready: bool = False) -> _Worker:
        worker = _Worker(self.supervisor, len(self.supervisor.workers) + 1, 4)
        worker.transport = _SignalRecorder()  # type: ignore[assignment]
        worker.ready = ready
        self.supervisor.workers.append(worker)
        return worker

    def logged(self) -> str:
        return "\n".join(formatEvent(event) for event in self.events)

    def test_startFailureRaises(self) -> None:
        """
        With C{startFailureRaises} (set under a daemonizing C{twistd}), an
        endpoint that cannot be bound makes C{privilegedStartService} raise
        its L{ListenError}, after giving up with status 1; without it, it
        does not raise.
        """
        for raises in (True, False):
            reactor = _TakenPorts()
            supervisor, failures = _recording(reactor, 2, raises)
            if raises:
                error = self.assertRaises(
                    ListenError, supervisor.privilegedStartService
                )
                self.assertIn("cannot listen on", str(error))
            else:
                supervisor.privilegedStartService()
            self.assertEqual(failures, [1])
            self.failureResultOf(supervisor.whenListening, ListenError)

    def test_reportedOverThePipe(self) -> None:
        """
        What L{WorkerLink.failed} writes is what the supervisor logs for
        that worker: the one line and the traceback.
        """
        read, write = os.pipe()
        self.addCleanup(os.close, read)
        with os.fdopen(write, "wb", buffering=0) as f:
            WorkerLink(f.fileno()).failed("--app 'x:app': bad", "Traceback\n  boom\n")
        line = os.read(read, 65536)
        self.assertEqual(line.count(b"\n"), 1)
        worker = self.worker()
        worker.childDataReceived(4, line)
        self.supervisor.workerEnded(worker, 1, None)
        self.assertIn(
            "could not start: --app 'x:app': bad\nTraceback\n  boom", self.logged()
        )

    def test_firstFailureStopsWithOne(self) -> None:
        """
        When no worker ever started, the first failure is logged, the
        supervisor gives up with status 1, and the siblings it kills change
        neither the status nor make it a drain that cut requests off.
        """
        first, second = self.worker(), self.worker()
        for worker in (first, second):
            self.supervisor.workerSaid(
                worker, 'failed {"error": "no module", "details": ""}'
            )
        self.supervisor.workerEnded(first, 1, None)
        self.assertEqual(self.failures, [1])
        self.assertIs(self.supervisor.state, SupervisorState.STOPPING)
        d = self.supervisor.stopService()
        self.supervisor.workerEnded(second, 137, signal.SIGKILL)
        second.whenEnded.callback(137)
        first.whenEnded.callback(1)
        self.successResultOf(d)
        self.assertEqual(self.supervisor.exitStatus, 1)
        self.assertIsNone(self.supervisor.drainResult)
        self.assertEqual(self.logged().count("no module"), 1)
        self.assertNotIn("drain", self.logged())

    def test_laterFailureRespawns(self) -> None:
        """
        A worker that cannot start while another serves (a reload of broken
        code) is logged with its error and tried again.
        """
        self.supervisor._everReady = True
        self.worker(ready=True)
        failed = self.worker()
        self.supervisor.workerSaid(
            failed, 'failed {"error": "no module", "details": ""}'
        )
        self.supervisor.workerEnded(failed, 1, None)
        self.assertEqual(self.failures, [])
        self.assertIn("could not start: no module", self.logged())
        self.assertEqual(len(self.reactor.getDelayedCalls()), 1)

    def test_killedWhileStarting(self) -> None:
        """
        A worker killed by a signal before any worker was ready (the OOM
        killer, an operator's SIGKILL) is replaced: it says nothing of the
        others, and the supervisor does not give up.
        """
        killed = self.worker()
        self.worker()
        self.supervisor.workerEnded(killed, 137, signal.SIGKILL)
        self.assertEqual(self.failures, [])
        self.assertIs(self.supervisor.state, SupervisorState.SERVING)
        self.assertIn("died with signal 9", self.logged())
        self.assertEqual(len(self.reactor.getDelayedCalls()), 1)

    def test_crashedWhileStarting(self) -> None:
        """
        A worker that crashes on a signal of its own (SIGSEGV, SIGABRT, a
        C extension failing as it is imported) before any worker was ready
        is an application that cannot start, as one that exits 1: the
        supervisor gives up instead of starting workers that crash alike
        for ever.
        """
        for sig in (signal.SIGSEGV, signal.SIGABRT, signal.SIGILL, signal.SIGBUS):
            self.setUp()
            crashed = self.worker()
            self.worker()
            self.supervisor.workerEnded(crashed, 128 + sig, sig)
            self.assertEqual(self.failures, [1], sig)
            self.assertIn(f"died with signal {sig}", self.logged())
            self.assertIn("no worker could start", self.logged())

    def test_retiredFromOutside(self) -> None:
        """
        A ready worker that drains and leaves with status 0 on a signal the
        supervisor did not send (SIGUSR2 or SIGTERM sent to it) is replaced
        at once, logged as such, not as an error nor counted as a crash.
        """
        self.supervisor._everReady = True
        retired = self.worker(ready=True)
        self.worker(ready=True)
        self.supervisor.workerEnded(retired, 0, None)
        self.assertIn("left on a signal sent to it; replacing it", self.logged())
        self.assertNotIn("died", self.logged())
        self.assertEqual(self.supervisor._crashes, [])
        [call] = self.reactor.getDelayedCalls()
        self.assertEqual(call.getTime(), self.reactor.seconds())

    def reloadingOne(self) -> tuple[SpawningReactor, Supervisor, _Worker, _Worker]:
        """
        A supervisor of one ready worker that a reload is replacing: the
        reactor, the supervisor, the worker and its replacement, starting.
        """
        reactor = SpawningReactor()
        supervisor = supervisorFromConfig(
            _config(workers=1), reactor, {}, handleSignals=False
        )
        supervisor._everReady = True
        old = _Worker(supervisor, 1, 4)
        old.ready = True
        supervisor.workers.append(old)
        supervisor.reload()
        [replacement] = [w for w in supervisor.workers if w.replaces is old]
        return reactor, supervisor, old, replacement

    def test_failedReplacementRetried(self) -> None:
        """
        A worker that a reload of broken code could not replace keeps
        serving, is retried with the backoff, and is replaced by the next
        SIGHUP once the code is fixed: it does not keep its code for good.
        """
        reactor, supervisor, old, broken = self.reloadingOne()
        supervisor.workerSaid(broken, 'failed {"error": "bad code", "details": ""}')
        supervisor.workerEnded(broken, 1, None)
        broken.whenEnded.callback(1)
        self.assertIsNone(old.replacedBy)
        self.assertFalse(old.retiring)
        reactor.advance(1.9)
        self.assertEqual(len(reactor.spawned), 1)
        reactor.advance(0.1)
        [retried] = [w for w in supervisor.workers if w.replaces is old]
        self.assertIsNot(retried, broken)
        supervisor.workerSaid(retried, 'failed {"error": "bad code", "details": ""}')
        supervisor.workerEnded(retried, 1, None)
        retried.whenEnded.callback(1)
        # The next retry waits twice as long.
        reactor.advance(3.9)
        self.assertEqual(len(reactor.spawned), 2)
        supervisor.reload()
        [fixed] = [w for w in supervisor.workers if w.replaces is old]
        supervisor.workerSaid(fixed, "ready")
        self.assertTrue(old.retiring)
        self.assertEqual(len(reactor.spawned), 3)
        # The retry, due now, finds the worker replaced.
        reactor.advance(0.1)
        self.assertEqual(len(reactor.spawned), 3)

    def test_failedReplacementRetriesBounded(self) -> None:
        """
        A reload of code that never starts is retried ever more rarely, at
        most every L{REPLACE_RETRY_MAX} seconds, not every few seconds for
        ever (each try imports the application and logs its traceback).
        """
        reactor, supervisor, old, broken = self.reloadingOne()
        waits = []
        for _ in range(12):
            supervisor.workerEnded(broken, 1, None)
            broken.whenEnded.callback(1)
            before, spawned = reactor.seconds(), len(reactor.spawned)
            while len(reactor.spawned) == spawned:
                reactor.advance(1)
            waits.append(reactor.seconds() - before)
            [broken] = [w for w in supervisor.workers if w.replaces is old]
        self.assertEqual(
            waits, [2, 4, 8, 16, 32, 64, 128, 256, *[REPLACE_RETRY_MAX] * 4]
        )

    def test_failedReplacementOfGoneWorker(self) -> None:
        """
        A worker that ends while the replacement that could not start is
        retried is replaced by the respawn its end asks for, not by the
        retry too: the server keeps C{count} workers, not one more.
        """
        reactor, supervisor, old, broken = self.reloadingOne()
        # An earlier crash: the retry waits for the backoff.
        supervisor._crashes = [reactor.seconds()]
        supervisor.workerEnded(broken, 1, None)
        broken.whenEnded.callback(1)
        # Meanwhile the old worker leaves (a SIGTERM sent to it).
        supervisor.workerEnded(old, 0, None)
        old.whenEnded.callback(0)
        reactor.advance(10)
        self.assertEqual(len(reactor.spawned), 2)
        self.assertEqual(len(supervisor.workers), 1)

    def test_goneWhileReplacementStarts(self) -> None:
        """
        A worker that ends while its replacement starts, and a replacement
        that then cannot start: a worker is still started in its place.
        """
        reactor, supervisor, old, broken = self.reloadingOne()
        supervisor.workerEnded(old, 137, signal.SIGKILL)
        old.whenEnded.callback(137)
        supervisor.workerEnded(broken, 1, None)
        broken.whenEnded.callback(1)
        reactor.advance(10)
        self.assertEqual(len(reactor.spawned), 2)
        [started] = supervisor.workers
        self.assertNotIn(started, (old, broken))


class _SignalRecorder:
    """
    A process transport that records the signals sent to it.
    """

    def __init__(self) -> None:
        self.signals: list[int] = []

    def signalProcess(self, signum: int) -> None:
        self.signals.append(signum)


class RetireSignalTests(SynchronousTestCase):
    """
    The supervisor retires a worker it replaces with SIGUSR2, and stops the
    others with SIGTERM.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.supervisor = supervisorFromConfig(
            _config(workers=2, graceful_timeout=10.0),
            self.reactor,
            {},
            handleSignals=False,
        )

    def worker(self, ready: bool = True) -> tuple[_Worker, list[int]]:
        worker = _Worker(self.supervisor, len(self.supervisor.workers) + 1, 4)
        transport: Any = _SignalRecorder()
        worker.transport = transport
        worker.ready = ready
        self.supervisor.workers.append(worker)
        return worker, transport.signals

    def test_retireWithUSR2(self) -> None:
        """
        A ready worker is retired with SIGUSR2, and killed if it is still
        there after the graceful timeout (plus 5 s).
        """
        worker, signals = self.worker()
        self.supervisor._retire(worker)
        self.assertEqual(signals, [signal.SIGUSR2])
        self.reactor.advance(15)
        self.assertEqual(signals, [signal.SIGUSR2, signal.SIGKILL])

    def test_retireWaitsForReady(self) -> None:
        """
        A worker retired before it said it is ready (SIGTTOU right after a
        start) gets SIGUSR2 once it has, when its handler is installed.
        """
        worker, signals = self.worker(ready=False)
        self.supervisor.removeWorker()
        self.assertEqual(signals, [])
        self.supervisor.workerSaid(worker, "ready")
        self.assertEqual(signals, [signal.SIGUSR2])

    def test_reopenWaitsForReady(self) -> None:
        """
        SIGUSR1 reaches a ready worker at once, and a worker that is still
        starting (whose SIGUSR1 has its default action, which ends it) once
        it said it is ready.
        """
        starting, startingSignals = self.worker(ready=False)
        serving, servingSignals = self.worker()
        self.supervisor.reopenLogs()
        self.assertEqual((startingSignals, servingSignals), ([], [signal.SIGUSR1]))
        self.supervisor.workerSaid(starting, "ready")
        self.assertEqual(startingSignals, [signal.SIGUSR1])

    def reloading(self) -> tuple[SpawningReactor, Supervisor, list[_Worker]]:
        """
        A supervisor of two ready workers that a reload is replacing: the
        replacement of the first has started.

        @return: its reactor, itself, and the first, second and third
            workers.
        """
        reactor = SpawningReactor()
        self.supervisor = supervisorFromConfig(
            _config(workers=2), reactor, {}, handleSignals=False
        )
        first, _ = self.worker()
        second, _ = self.worker()
        self.supervisor.reload()
        [third] = [w for w in self.supervisor.workers if w.replaces is first]
        return reactor, self.supervisor, [first, second, third]

    def test_reloadDuringReload(self) -> None:
        """
        A SIGHUP while a reload replaces the workers (a second deploy) is
        not lost: once that reload is done, another replaces every worker
        again, so that none runs code older than the last SIGHUP.
        """
        reactor, supervisor, (first, second, third) = self.reloading()
        supervisor.reload()
        supervisor.workerSaid(third, "ready")
        [fourth] = [w for w in supervisor.workers if w.replaces is second]
        self.assertEqual(len(reactor.spawned), 2)
        supervisor.workerSaid(fourth, "ready")
        self.assertEqual(len(reactor.spawned), 3)
        self.assertIsNotNone(third.replacedBy)
        supervisor.workerSaid(third.replacedBy, "ready")
        self.assertEqual(len(reactor.spawned), 4)
        self.assertIsNotNone(fourth.replacedBy)
        supervisor.workerSaid(fourth.replacedBy, "ready")
        self.assertEqual(len(reactor.spawned), 4)

    def test_removeDuringReload(self) -> None:
        """
        SIGTTOU during a reload retires a worker that the reload is not
        already replacing: the server ends with one worker fewer, not with
        the count it had (the retirement the reload planned anyway).
        """
        reactor, supervisor, (first, second, third) = self.reloading()
        supervisor.removeWorker()
        self.assertEqual((first.retiring, second.retiring), (False, True))
        supervisor.workerSaid(third, "ready")
        self.assertTrue(first.retiring)
        self.assertEqual(supervisor._live(), [third])
        self.assertEqual(len(reactor.spawned), 1)

    def test_addDuringReload(self) -> None:
        """
        SIGTTIN during a reload starts one worker more at once: a worker
        that the reload is replacing is not counted as one of them, so the
        server ends the reload with one worker more than it had.
        """
        reactor, supervisor, (first, second, third) = self.reloading()
        supervisor.addWorker()
        self.assertEqual(len(reactor.spawned), 2)
        [added] = [w for w in supervisor.workers if w not in (first, second, third)]
        supervisor.workerSaid(added, "ready")
        supervisor.workerSaid(third, "ready")
        [fourth] = [w for w in supervisor.workers if w.replaces is second]
        supervisor.workerSaid(fourth, "ready")
        self.assertEqual((first.retiring, second.retiring), (True, True))
        self.assertEqual(
            [id(w) for w in supervisor._live()], [id(third), id(added), id(fourth)]
        )
        self.assertEqual(len(reactor.spawned), 3)

    def test_stopSparesRetiringWorker(self) -> None:
        """
        Stopping the supervisor sends SIGTERM to the serving workers only: a
        retiring one goes on finishing its requests.  A second stop signal
        (L{Supervisor.skipWait}) reaches every worker as SIGQUIT (a worker
        takes a repeated SIGTERM as the same stop).
        """
        retiring, retiringSignals = self.worker()
        serving, servingSignals = self.worker()
        self.supervisor._retire(retiring)
        d = self.supervisor.stopService()
        self.assertEqual(retiringSignals, [signal.SIGUSR2])
        self.assertEqual(servingSignals, [signal.SIGTERM])
        self.supervisor.skipWait()
        self.assertEqual(retiringSignals, [signal.SIGUSR2, signal.SIGQUIT])
        self.assertEqual(servingSignals, [signal.SIGTERM, signal.SIGQUIT])
        for worker in (retiring, serving):
            worker.whenEnded.callback(0)
        self.successResultOf(d)

    def test_stopStartsAWorkerWhenNoneRuns(self) -> None:
        """
        A stop while no worker runs (the backoff delays the next) starts
        one, and sends it SIGTERM once it is ready, when it has accepted
        the connections waiting; the stop waits for it.
        """
        reactor = SpawningReactor()
        self.supervisor = supervisorFromConfig(
            _config(workers=1), reactor, {}, handleSignals=False
        )
        self.supervisor._ports = [reactor.listenTCP(0, ServerFactory())]
        d = self.supervisor.stopService()
        [worker] = self.supervisor.workers
        transport: Any = _SignalRecorder()
        worker.transport = transport
        self.assertEqual((len(reactor.spawned), transport.signals), (1, []))
        self.supervisor.workerSaid(worker, "ready")
        self.assertEqual(transport.signals, [signal.SIGTERM])
        self.assertNoResult(d)
        self.supervisor.workerEnded(worker, 0, None)
        worker.whenEnded.callback(0)
        self.successResultOf(d)
        self.assertEqual(self.supervisor.exitStatus, 0)

    def test_skipWaitWaitsForReady(self) -> None:
        """
        A second stop signal reaches a worker still starting (the only one:
        it is to answer the queue) as SIGQUIT once it is ready, after its
        SIGTERM: before, SIGQUIT's default action would end it with a core
        dump.
        """
        starting, signals = self.worker(ready=False)
        self.supervisor.stopService()
        self.supervisor.skipWait()
        self.assertEqual(signals, [])
        self.supervisor.workerSaid(starting, "ready")
        self.assertEqual(signals, [signal.SIGTERM, signal.SIGQUIT])

    def test_stopBeforeWorkerRan(self) -> None:
        """
        A worker that our SIGTERM ended with the default action (it came
        before the worker's reactor ran, so it had accepted nothing) does
        not make the stop unclean; a worker that exits non-zero does.  The
        supervisor is stopping until every worker ended, then stopped.
        """
        early, _ = self.worker(ready=False)
        late, _ = self.worker()
        self.assertIs(self.supervisor.state, SupervisorState.SERVING)
        d = self.supervisor.stopService()
        self.assertIs(self.supervisor.state, SupervisorState.STOPPING)
        self.supervisor.workerEnded(early, 128 + signal.SIGTERM, signal.SIGTERM)
        early.whenEnded.callback(128 + signal.SIGTERM)
        self.assertEqual(self.supervisor.exitStatus, 0)
        self.supervisor.workerEnded(late, 3, None)
        self.assertIs(self.supervisor.state, SupervisorState.STOPPING)
        late.whenEnded.callback(3)
        self.successResultOf(d)
        self.assertIs(self.supervisor.state, SupervisorState.STOPPED)
        self.assertEqual(self.supervisor.exitStatus, 3)


class RefuseOnStopTests(SynchronousTestCase):
    """
    The supervisor, the last process to hold the listening sockets, makes
    the kernel refuse new connections when the workers stop accepting, so
    that closing them resets none.
    """

    def supervisor(self, drainDelay: float) -> tuple[Supervisor, list[object]]:
        reactor = MemoryReactorClock()
        supervisor = supervisorFromConfig(
            _config(workers=1, drain_delay=drainDelay),
            reactor,
            {},
            handleSignals=False,
        )
        events: list[object] = []
        self.patch(_workers, "refuseConnections", events.append)
        worker = _Worker(supervisor, 1, 4)
        transport: Any = _SignalRecorder()
        transport.signals = events
        worker.transport = transport
        worker.ready = True
        supervisor.workers.append(worker)
        supervisor._owned = ["port"]
        return supervisor, events

    def test_beforeTheWorkersStop(self) -> None:
        """
        Without a drain delay, the sockets refuse new connections before the
        workers are told to stop: the workers accept every connection that
        completed.
        """
        supervisor, events = self.supervisor(0.0)
        supervisor.stopService()
        self.assertEqual(events, ["port", signal.SIGTERM])

    def test_afterTheDrainDelay(self) -> None:
        """
        With C{--drain-delay}, the sockets refuse new connections when the
        delay is over (the workers accept until then), or at a second stop
        signal; only once.
        """
        for skip in (False, True):
            supervisor, events = self.supervisor(5.0)
            supervisor.stopService()
            self.assertEqual(events, [signal.SIGTERM])
            if skip:
                supervisor.skipWait()
                self.assertEqual(events, [signal.SIGTERM, "port", signal.SIGQUIT])
            else:
                supervisor.reactor.advance(5.0)
                self.assertEqual(events, [signal.SIGTERM, "port"])
            supervisor.reactor.advance(5.0)
            self.assertEqual(events.count("port"), 1)

    def test_killAfterTheWholeDrain(self) -> None:
        """
        A worker still there once its drain delay, the settling of its
        listeners and its graceful timeout have all passed, and 5 s more,
        is killed; not before.
        """
        supervisor, events = self.supervisor(7.0)
        supervisor.stopService()
        supervisor.reactor.advance(7.0 + SETTLE_MAX + supervisor.gracefulTimeout + 4.9)
        self.assertNotIn(signal.SIGKILL, events)
        supervisor.reactor.advance(0.1)
        self.assertIn(signal.SIGKILL, events)

    def test_ownerRefuses(self) -> None:
        """
        A worker's socket inherited from the supervisor is one its owner
        refuses connections on as the workers stop (so the worker waits for
        the handshakes answered before it closes its copy); one systemd
        passed on is not.
        """
        listener = socket.socket()
        self.addCleanup(listener.close)
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        reactor = MemoryReactorClock()
        for description, refuses in [
            ("tcp:0", True),
            ("haproxy:tcp:0", True),
            ("systemd:domain=INET:index=0", False),
            ("haproxy:systemd:domain=INET:index=0", False),
        ]:
            endpoint = InheritedEndpoint(reactor, description, listener.fileno())
            port = self.successResultOf(endpoint.listen(Site(None)))
            self.addCleanup(port.stopListening)
            self.assertEqual(port.ownerRefuses, refuses, description)

    def test_connectionDuringStopRefused(self) -> None:
        """
        A client that connects while the workers drain after SIGTERM (they
        accept no more; the supervisor still holds the socket) is refused
        once the server is gone, never reset; the request in flight is
        answered.
        """
        server = SupervisedServer(self, "--workers", "2")
        server.start(2)
        assert server.port is not None
        result: list[object] = []
        slow = threading.Thread(target=lambda: result.append(server.get("/sleep?2")))
        slow.start()
        self.addCleanup(slow.join, 30)
        server.waitFor(server.sleeping)
        server.signal(signal.SIGTERM)
        server.waitFor(lambda: server.output().count(b"twsgi stopped listening") == 2)
        late = connecting(("127.0.0.1", server.port))
        self.addCleanup(late.close)
        self.assertEqual(server.process.wait(20), 0)
        self.assertEqual(outcome(late, 10), "refused")
        slow.join(10)
        self.assertEqual(result[0][0], 200)  # type: ignore[index]

    def test_halfOpenHandshakeDuringStopServed(self) -> None:
        """
        A client whose handshake the kernel answered just before SIGTERM,
        and which completes it only later (a long round trip: about a
        second, when the kernel sends its answer again), is accepted and
        answered by the worker, which keeps its copy of the socket open
        until no such handshake is left: it is not left in the queue of the
        supervisor's socket, to be dropped when that closes (as it was when
        the worker closed its copy at once).
        """
        if not sys.platform.startswith("linux"):
            raise SkipTest("socket filters are Linux's")
        server = SupervisedServer(self, "--workers", "1")
        server.start(1)
        assert server.port is not None
        client = halfOpen(("127.0.0.1", server.port))
        self.addCleanup(client.close)
        self.assertEqual(outcome(client, 0.05), "waiting")
        server.signal(signal.SIGTERM)
        # The client hears the server's next answer, sent about a second
        # after the first.
        hear(client)
        self.assertEqual(outcome(client, 5), "connected")
        client.setblocking(True)
        client.settimeout(10)
        client.sendall(b"Host: x\r\n\r\n")
        response = b""
        while chunk := client.recv(65536):
            response += chunk
        self.assertTrue(response.startswith(b"HTTP/1.1 200 "), response)
        self.assertIn(b"\r\nconnection: close\r\n", response.lower())
        self.assertEqual(server.process.wait(20), 0)


class RetireStopTests(SynchronousTestCase):
    """
    Stopping the supervisor while a worker retires.
    """

    def test_secondStopCutsRetiringWorker(self) -> None:
        """
        A worker retiring with a long request in flight is not cut off by
        the first SIGTERM to the supervisor; the second one cuts it off, and
        the supervisor exits with status 3 without waiting for the request.
        """
        server = SupervisedServer(
            self, "--workers", "2", "--graceful-timeout", "60", app=_SLOW_APP
        )
        server.start(2)
        before = server.workerPids()
        result: list[object] = []

        def slow() -> None:
            try:
                result.append(server.get("/slow", timeout=90)[0])
            except Exception as e:
                result.append(repr(e))

        client = threading.Thread(target=slow)
        client.start()
        self.addCleanup(client.join, 40)
        server.waitFor(
            lambda: any(
                name.startswith("slow-") for name in os.listdir(server.directory)
            )
        )
        server.signal(signal.SIGHUP)
        # One old worker leaves at once; the other retires with the request.
        server.waitFor(
            lambda: (
                server.output().count(b"twsgi worker retiring") == 2
                and len(server.workerPids() & before) == 1
                and len(server.workerPids()) == 3
            ),
            timeout=40,
        )
        server.signal(signal.SIGTERM)
        server.waitFor(lambda: len(server.workerPids()) == 1)
        self.assertEqual(len(server.workerPids() & before), 1)
        self.assertEqual(result, [])
        server.signal(signal.SIGTERM)
        self.assertEqual(server.process.wait(20), 3)
        client.join(10)
        self.assertEqual(len(result), 1)
        self.assertNotEqual(result[0], 200)


_SLOW_APP = textwrap.dedent(
    """
    import os, time

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/slow":
            open("slow-%d" % os.getpid(), "w").close()
            time.sleep(60)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"%d" % os.getpid()]
    """
)


class KeepAliveSoakTests(SynchronousTestCase):
    """
    Clients that keep their connections alive straight to the workers, with
    no proxy in front and no retry, lose nothing when workers are replaced.
    """

    def test_reloadsAndRecyclesLoseNothing(self) -> None:
        """
        Six C{http.client} clients, each on one keep-alive connection (some
        pausing up to 0.3 s between requests, so that their connection is
        idle when its worker retires), get every answer through three
        SIGHUPs and two C{--max-requests} recycles of C{--workers 2}.
        """
        server = SupervisedServer(
            self, "--workers", "2", "--max-requests", "600", "--threads", "4:4"
        )
        server.start(2)
        assert server.port is not None
        port = server.port
        stop = threading.Event()
        deadline = time.monotonic() + 45
        lock = threading.Lock()
        answered = [0]
        failures: list[str] = []

        def client(pause: float) -> None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                for count in range(20000):
                    if stop.is_set() or time.monotonic() > deadline:
                        return
                    try:
                        connection.request("GET", "/")
                        response = connection.getresponse()
                        body = response.read()
                        if response.status != 200 or not body.isdigit():
                            raise AssertionError(f"{response.status} {body!r}")
                    except Exception as e:
                        with lock:
                            failures.append(f"request {count}: {e!r}")
                        connection.close()
                    else:
                        with lock:
                            answered[0] += 1
                    stop.wait(pause * (count % 4))
            finally:
                connection.close()

        pauses = (0.0, 0.0, 0.0, 0.02, 0.05, 0.1)
        threads = [threading.Thread(target=client, args=(p,)) for p in pauses]
        for thread in threads:
            thread.start()
        try:
            server.waitFor(lambda: answered[0] > 100)
            for _ in range(3):
                before = server.workerPids()
                server.signal(signal.SIGHUP)
                server.waitReplaced(before, 2)
                seen = answered[0]
                server.waitFor(lambda seen=seen: answered[0] > seen + 200)
            recycled = len(_RECYCLED.findall(server.output()))
            server.waitFor(
                lambda: len(_RECYCLED.findall(server.output())) >= recycled + 2,
                timeout=30,
            )
            seen = answered[0]
            server.waitFor(lambda: answered[0] > seen + 200)
        finally:
            stop.set()
            for thread in threads:
                thread.join(15)
        output = server.output().decode(errors="replace")
        self.assertEqual(failures, [], output[-3000:])
        self.assertGreater(answered[0], 1000)
        self.assertEqual(output.count("replacing workers one by one"), 3)


class _MaskRecordingReactor(SpawningReactor):
    """
    A L{SpawningReactor} that records the signal mask each process is
    spawned with.
    """

    def __init__(self) -> None:
        super().__init__()
        self.masks: list[set[int]] = []

    def spawnProcess(self, protocol: Any, executable: str, args: Any, **kw: Any) -> Any:
        self.masks.append(set(signal.pthread_sigmask(signal.SIG_BLOCK, [])))
        return super().spawnProcess(protocol, executable, args, **kw)


class SteeringSignalMaskTests(SynchronousTestCase):
    """
    A worker starts with the signals that steer the supervisor blocked, and
    unblocks them once it ignores them: one that reaches it while its
    Python starts (a signal to the process group, a pkill) cannot end it.
    """

    def test_spawnedBlocked(self) -> None:
        """
        The supervisor spawns a worker with L{STEERING_SIGNALS} blocked, and
        its own mask is as before afterwards.
        """
        before = set(signal.pthread_sigmask(signal.SIG_BLOCK, []))
        reactor = _MaskRecordingReactor()
        supervisor = supervisorFromConfig(
            _config(workers=1), reactor, {}, handleSignals=False
        )
        supervisor._spawn()
        [mask] = reactor.masks
        self.assertLessEqual(set(STEERING_SIGNALS), mask)
        self.assertEqual(set(signal.pthread_sigmask(signal.SIG_BLOCK, [])), before)

    def test_workerUnblocksIgnored(self) -> None:
        """
        In a process started with them blocked and one of them pending,
        L{ignoreSupervisorSignals} ignores them (the pending one is
        dropped, the process lives on) and unblocks them, so that the
        worker's own handlers get them later.
        """
        script = textwrap.dedent(
            """
            import os, signal
            from twsgi.process.workers import STEERING_SIGNALS, ignoreSupervisorSignals
            signal.pthread_sigmask(signal.SIG_BLOCK, STEERING_SIGNALS)
            os.kill(os.getpid(), signal.SIGUSR1)
            ignoreSupervisorSignals()
            got = []
            signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
            os.kill(os.getpid(), signal.SIGUSR1)
            left = set(STEERING_SIGNALS) & set(signal.pthread_sigmask(signal.SIG_BLOCK, []))
            print(len(got), sorted(left))
            """
        )
        out = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        self.assertEqual((out.returncode, out.stdout, out.stderr), (0, "1 []\n", ""))
