"""
Tests for L{twsgi.lifecycle.service}: what the service logs about its listeners.
"""

from __future__ import annotations

import errno
import json
import os
import sys
import tempfile
from typing import Any

from twisted.internet import defer
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.error import CannotListenError
from twisted.internet.testing import MemoryReactor
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.server import temporaryDirectory
from twsgi import (
    AccessRecord,
    AppLoadError,
    ConfigError,
    DrainResult,
    ListenError,
    ServerConfig,
    TwsgiService,
    resolveConfig,
)
from twsgi.lifecycle.service import (
    PRIVILEGED_PORT_HINT,
    _listenFailure,
    listeningURL,
    logListening,
)
from twsgi.logs.accesslog import formatCombined
from twsgi.logs.formats import formatJSON
from twsgi.testing import MemoryServer, SynchronousReactor, SynchronousThreadPool
from twsgi.wsgi.pool import PoolStartError


class _Port:
    """
    A listening port that only knows its address.
    """

    def __init__(self, address: Any) -> None:
        self.address = address

    def getHost(self) -> Any:
        return self.address


class ListeningURLTests(SynchronousTestCase):
    """
    The "listening on" line names a URL an operator can click.
    """

    def test_http(self) -> None:
        """
        A TCP listener is an C{http://} URL; an IPv6 host is bracketed.
        """
        self.assertEqual(
            listeningURL("tcp:8000", IPv4Address("TCP", "127.0.0.1", 8000)),
            "http://127.0.0.1:8000",
        )
        self.assertEqual(
            listeningURL("tcp6:0:interface=\\:\\:1", IPv6Address("TCP", "::1", 9)),
            "http://[::1]:9",
        )

    def test_https(self) -> None:
        """
        An C{ssl:} or C{tls:} listener, also behind C{haproxy:}, is an
        C{https://} URL.
        """
        address = IPv6Address("TCP", "::1", 8443)
        self.assertEqual(
            listeningURL("ssl:8443:privateKey=k.pem", address), "https://[::1]:8443"
        )
        self.assertEqual(
            listeningURL("haproxy:tls:/etc/certs:port=8443", address),
            "https://[::1]:8443",
        )

    def test_unix(self) -> None:
        """
        A UNIX socket is named by its path, after C{unix:}.
        """
        self.assertEqual(
            listeningURL("unix:/run/app.sock", UNIXAddress(b"/run/app.sock")),
            "unix:/run/app.sock",
        )

    def test_logged(self) -> None:
        """
        L{logListening} logs the URL and the endpoint string, and keeps the
        bare address as a field of the event.
        """
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        address = IPv4Address("TCP", "127.0.0.1", 8000)
        self.assertIs(logListening("tcp:8000", _Port(address)), address)
        [event] = [e for e in events if e.get("log_namespace") == "twsgi"]
        self.assertEqual(
            formatEvent(event), "listening on http://127.0.0.1:8000 (tcp:8000)"
        )
        self.assertEqual(event["url"], "http://127.0.0.1:8000")
        self.assertEqual(event["address"], "127.0.0.1:8000")


class ListenFailureTests(SynchronousTestCase):
    """
    A listener that cannot listen is one line naming it and why.
    """

    def test_privilegedPort(self) -> None:
        """
        Permission denied on a port below 1024 adds what to do about it; on
        another port, or for another error, the line is the error alone.
        """
        denied = OSError(errno.EACCES, "Permission denied")
        self.assertEqual(
            str(_listenFailure("tcp:80", CannotListenError("", 80, denied))),
            f"cannot listen on tcp:80: Permission denied ({PRIVILEGED_PORT_HINT})",
        )
        self.assertIn("CAP_NET_BIND_SERVICE", PRIVILEGED_PORT_HINT)
        self.assertEqual(
            str(_listenFailure("tcp:8080", CannotListenError("", 8080, denied))),
            "cannot listen on tcp:8080: Permission denied",
        )
        inUse = OSError(errno.EADDRINUSE, "Address already in use")
        self.assertEqual(
            str(_listenFailure("tcp:80", CannotListenError("", 80, inUse))),
            "cannot listen on tcp:80: Address already in use",
        )

    def test_lockFile(self) -> None:
        """
        A C{unix:} listener whose lock file cannot be made (its directory is
        missing or not writable) names that file and why, not the symlink
        from the process ID to it that the error holds.
        """
        missing = FileNotFoundError(
            errno.ENOENT, "No such file or directory", "1234", None, "/no/w.sock.lock"
        )
        self.assertEqual(
            str(_listenFailure("unix:/no/w.sock", missing)),
            "cannot listen on unix:/no/w.sock: /no/w.sock.lock: "
            "No such file or directory",
        )
        denied = PermissionError(errno.EACCES, "Permission denied", "/ro/w.sock.lock")
        self.assertEqual(
            str(_listenFailure("unix:/ro/w.sock", denied)),
            "cannot listen on unix:/ro/w.sock: /ro/w.sock.lock: Permission denied",
        )

    def test_startFailureRaises(self) -> None:
        """
        With C{startFailureRaises} (set under a daemonizing C{twistd}),
        L{TwsgiService.privilegedStartService} raises the L{ListenError} of
        an endpoint that cannot listen, besides failing C{whenListening};
        without it, it does not raise.
        """
        from tests.helpers.service import cliService

        for raises in (True, False):
            service = cliService()

            class TakenEndpoint:
                def listen(self, factory: Any) -> defer.Deferred[Any]:
                    return defer.fail(CannotListenError("", 80, OSError("in use")))

            service.endpoints = [TakenEndpoint()]
            service.startFailureRaises = raises
            if raises:
                error = self.assertRaises(ListenError, service.privilegedStartService)
                self.assertIn("cannot listen on", str(error))
            else:
                service.privilegedStartService()
            self.failureResultOf(service.whenListening, ListenError)

    def test_noThreadStarts(self) -> None:
        """
        When the system refuses every WSGI thread, L{TwsgiService.startService}
        does what a listener that failed does, with the L{PoolStartError}:
        it fails C{whenListening}, raises only with C{startFailureRaises},
        and listens on nothing; stopping it then tells of no drain.
        """
        from tests.helpers.service import cliService

        class RefusingPool(SynchronousThreadPool):
            def start(self) -> None:
                raise PoolStartError("cannot start a WSGI thread: refused")

        for raises in (True, False):
            service = cliService()
            service.threadpool = service.resource.threadpool = RefusingPool()
            service.startFailureRaises = raises
            if raises:
                error = self.assertRaises(PoolStartError, service.startService)
                self.assertEqual(str(error), "cannot start a WSGI thread: refused")
            else:
                service.startService()
            self.failureResultOf(service.whenListening, PoolStartError)
            self.assertEqual((service.ports, service.unserved), ([], True))
            self.assertEqual(
                self.successResultOf(service.stopService()),
                DrainResult(drained=True, cut=0),
            )


class AccessLogParameterTests(SynchronousTestCase):
    """
    The config's C{access_log} and C{access_log_format} turn on the built-in
    access log, for C{.tac} files and embedding too.
    """

    def test_file(self) -> None:
        """
        A path opens the file, written in the format named.
        """
        path = os.path.join(temporaryDirectory(self), "access.log")
        config = _config(access_log=path, access_log_format="json")
        service = TwsgiService(config, _app, MemoryReactor())
        [observer] = service.observers
        self.addCleanup(observer.file.close)
        self.assertIs(observer.formatter, formatJSON)
        observer(_RECORD)
        observer.file.flush()
        with open(path) as f:
            self.assertEqual(json.loads(f.read())["target"], "/x")

    def test_closedOnLaterError(self) -> None:
        """
        A setting that fails after the access log (a hook or an observer
        that cannot be loaded, a missing static directory) leaves no access
        log file open.
        """
        from twsgi.lifecycle import build
        from twsgi.logs.accesslog import openAccessLog

        directory = temporaryDirectory(self)
        opened: list[Any] = []

        def recordingOpen(*args: Any) -> Any:
            log = openAccessLog(*args)
            opened.append(log.file)
            return log

        self.patch(build, "openAccessLog", recordingOpen)
        path = os.path.join(directory, "access.log")
        missing = os.path.join(directory, "missing")
        for settings, error in (
            ({"on_start": ("tests.apps.hookfixtures:nothing",)}, AppLoadError),
            ({"access_log_observer": ("tests.nothing:x",)}, AppLoadError),
            ({"static": (("/s", missing),)}, ConfigError),
        ):
            config = _config(access_log=path, **settings)
            self.assertRaises(error, TwsgiService, config, _app, MemoryReactor())
        self.assertEqual([f for f in opened if not f.file.closed], [])

    def test_standardOutputAndNone(self) -> None:
        """
        C{"-"} (the default) is standard output, in the Combined Log Format
        by default; C{"none"} turns it off.
        """
        service = TwsgiService(_config(), _app, MemoryReactor())
        [observer] = service.observers
        self.assertIs(observer.file, sys.stdout)
        self.assertIs(observer.formatter, formatCombined)
        off = TwsgiService(_config(access_log="none"), _app, MemoryReactor())
        self.assertEqual(off.observers, [])

    def test_badFormat(self) -> None:
        """
        A malformed format is a L{ConfigError} naming it.
        """
        error = self.assertRaises(
            ConfigError,
            TwsgiService,
            _config(access_log_format="%(nope"),
            _app,
            MemoryReactor(),
        )
        self.assertIn("--access-log-format", str(error))


def _app(environ: Any, startResponse: Any) -> list[bytes]:
    startResponse("200 OK", [])
    return [b""]


def _config(**settings: Any) -> ServerConfig:
    """
    A L{ServerConfig} listening on C{tcp:0}, with C{settings}.
    """
    return ServerConfig(endpoint=("tcp:0",), **settings)


_RECORD = AccessRecord(
    timestamp=0.0,
    method="GET",
    target="/x",
    protocol="HTTP/1.1",
    status=200,
    bytesSent=0,
    duration=0.0,
    remoteAddr="127.0.0.1",
    remotePort=1,
    listener="tcp:0",
    requestId="r",
)


class ConfigTests(SynchronousTestCase):
    """
    L{TwsgiService} takes a L{ServerConfig} whole.
    """

    def test_requestTimeout(self) -> None:
        """
        A service built from a config with C{request_timeout}, as in a
        C{.tac} file, watches its requests from its start to its stop: a
        request that runs past the timeout is logged with its stack.
        """
        reactor = SynchronousReactor()

        def slow(environ: Any, startResponse: Any) -> list[bytes]:
            reactor.advance(3)
            startResponse("200 OK", [])
            return [b"late"]

        service = TwsgiService(
            _config(request_timeout=2.0, access_log="none"), slow, reactor
        )
        service.threadpool = service.resource.threadpool = SynchronousThreadPool()
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        service.startService()
        response = MemoryServer(site=service.sites[0]).request(target=b"/slow")
        self.assertEqual((response.code, response.body), (200, b"late"))
        self.assertEqual(service.resource.watchdog.stuck, 1)
        self.assertIn(
            "request GET /slow has run 3.0 s, past --request-timeout 2",
            [formatEvent(e).split(";")[0] for e in events],
        )
        stopping = service.stopService()
        # The idle keep-alive connection gets its grace (keepalive_grace).
        reactor.advance(1)
        self.successResultOf(stopping)
        self.assertEqual(reactor.getDelayedCalls(), [])

    def test_temporaryDirectoryChosenAtStart(self) -> None:
        """
        A service chooses the directory of request bodies' temporary files
        as it starts (see L{twsgi.server.exchange.chooseTemporaryDirectory}),
        not at a first upload that might come while no file descriptor is
        left.
        """
        self.patch(tempfile, "tempdir", None)
        service = TwsgiService(_config(access_log="none"), _app, SynchronousReactor())
        service.threadpool = service.resource.threadpool = SynchronousThreadPool()
        service.startService()
        self.addCleanup(service.stopService)
        self.assertIsNotNone(tempfile.tempdir)

    def test_multiprocessInWorker(self) -> None:
        """
        The application of a worker of a supervisor (C{inWorker}) sees
        C{wsgi.multiprocess} true, as PEP 3333 asks when another process may
        run it at once; that of a process serving alone sees it false.
        """
        seen: list[object] = []

        def app(environ: Any, startResponse: Any) -> list[bytes]:
            seen.append(environ["wsgi.multiprocess"])
            startResponse("200 OK", [])
            return [b""]

        for inWorker in (True, False):
            service = TwsgiService(
                _config(access_log="none"),
                app,
                SynchronousReactor(),
                inWorker=inWorker,
                byCommand=True,
            )
            service.threadpool = service.resource.threadpool = SynchronousThreadPool()
            MemoryServer(site=service.makeSite("tcp:8000")).request()
        self.assertEqual(seen, [True, False])

    def test_commandSettingsWarn(self) -> None:
        """
        A service made by a C{.tac} file or a program warns, once, about the
        settings only the twsgi command applies (C{--workers},
        C{--reload}...) that its config sets; one made by the twsgi command
        (C{byCommand}), or with none of them set, says nothing of them.
        """
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        config = _config(access_log="none", workers=4, reload=True)
        TwsgiService(config, _app, MemoryReactor())
        TwsgiService(config, _app, MemoryReactor(), byCommand=True)
        TwsgiService(_config(access_log="none"), _app, MemoryReactor())
        self.assertEqual(
            [formatEvent(e) for e in events if "not applied" in formatEvent(e)],
            [
                "--reload, --workers not applied: a TwsgiService made by a .tac "
                "file or a program runs in its own process as it is; only the "
                "twsgi command (twsgi, python -m twsgi, twistd twsgi) applies "
                "them"
            ],
        )

    def test_configFileApplied(self) -> None:
        """
        A config that C{resolveConfig} read from a C{--config} file (named
        by C{TWSGI_CONFIG} too) carries that file's values, so the service
        does not warn that C{--config} was not applied.
        """
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        path = temporaryDirectory(self) / "twsgi.toml"
        path.write_text('threads = "2:4"\naccess_log = "none"\n')
        config = resolveConfig({"endpoint": ["tcp:0"]}, {"TWSGI_CONFIG": str(path)})
        self.assertEqual(config.threads, (2, 4))
        TwsgiService(config, _app, MemoryReactor())
        self.assertEqual(
            [formatEvent(e) for e in events if "not applied" in formatEvent(e)], []
        )

    def test_listeners(self) -> None:
        """
        The application listeners are the config's endpoints, then its
        C{bind} addresses; the admin ones (health, then metrics) follow.
        """
        config = ServerConfig(
            endpoint=("tcp:0",),
            bind=("127.0.0.1:0",),
            health_endpoint=("unix:/tmp/twsgi-test-health",),
            access_log="none",
        )
        service = TwsgiService(config, _app, MemoryReactor())
        self.assertEqual(
            service.descriptions,
            ("tcp:0", "tcp:0:interface=127.0.0.1", "unix:/tmp/twsgi-test-health"),
        )
        self.assertEqual(service.adminDescriptions, ("unix:/tmp/twsgi-test-health",))
        self.assertEqual(len(service.endpoints), 3)

    def test_settings(self) -> None:
        """
        The settings become the service's thread pool, limits, stop timings,
        overload bounds and protocols.
        """
        config = _config(
            threads=(2, 3),
            max_body_size=1000,
            header_timeout=7.0,
            drain_delay=1.5,
            graceful_timeout=9.0,
            keepalive_grace=0.5,
            max_pending=5,
            max_connections=6,
            no_http2=True,
            expose_tracebacks=True,
            app="my.module:app",
            access_log="none",
        )
        service = TwsgiService(config, _app, MemoryReactor())
        self.assertIs(service.config, config)
        self.assertEqual((service.threadpool.min, service.threadpool.max), (2, 3))
        self.assertEqual(
            (service.limits.maxBody, service.limits.headerTimeout), (1000, 7.0)
        )
        self.assertEqual(
            (service.drainDelay, service.gracefulTimeout, service.keepAliveGrace),
            (1.5, 9.0, 0.5),
        )
        self.assertEqual(service.resource.maxPending, 5)
        self.assertIsNotNone(service.gate)
        self.assertFalse(service.http2)
        self.assertTrue(service.resource.exposeTracebacks)
        self.assertEqual(service.appName, "my.module:app")

    def test_hooksAndObservers(self) -> None:
        """
        The config's hooks and access-log observers are loaded by name and
        come first; the callables given to the service follow.
        """
        from tests.apps import hookfixtures

        def given(service: object) -> None:
            pass

        config = _config(
            access_log="none",
            access_log_observer=("tests.apps.hookfixtures:record",),
            on_start=("tests.apps.hookfixtures:started",),
            on_drain=("tests.apps.hookfixtures:draining",),
            on_stop=("tests.apps.hookfixtures:stopped",),
        )
        service = TwsgiService(
            config,
            _app,
            MemoryReactor(),
            observers=[given],
            onStart=[given],
            onDrain=[given],
            onStop=[given],
        )
        self.assertEqual(service.observers, [hookfixtures.record, given])
        self.assertEqual(service.onStart, [hookfixtures.started, given])
        self.assertEqual(service.onDrain, [hookfixtures.draining, given])
        self.assertEqual(service.onStop, [hookfixtures.stopped, given])

    def test_routes(self) -> None:
        """
        The config's health settings become the service's routes.
        """
        config = _config(
            access_log="none",
            health_endpoint=("tcp:0:interface=127.0.0.2",),
            health_path_prefix="/_twsgi",
        )
        service = TwsgiService(config, _app, MemoryReactor())
        self.assertIn(b"/_twsgi/readyz", service.routes.admin)
        self.assertEqual(service.routes.app, {})

    def test_metricsOnMetricsListenersOnly(self) -> None:
        """
        Given both, a C{--health-endpoint} listener answers the health paths
        only, and C{/metrics} is answered on the C{--metrics-endpoint}
        listener alone: an operator may open the one to a load balancer's
        network and not the other.
        """
        config = _config(
            access_log="none",
            health_endpoint=("tcp:8081",),
            metrics_endpoint=("tcp:9100",),
        )
        service = TwsgiService(config, _app, SynchronousReactor())
        health = MemoryServer(site=service.makeSite("tcp:8081"))
        metrics = MemoryServer(site=service.makeSite("tcp:9100"))
        self.assertEqual(
            [health.request(target=path).code for path in (b"/readyz", b"/metrics")],
            [200, 404],
        )
        self.assertEqual(
            [metrics.request(target=path).code for path in (b"/readyz", b"/metrics")],
            [200, 200],
        )
