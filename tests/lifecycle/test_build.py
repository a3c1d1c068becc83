"""
Tests for L{twsgi.lifecycle.build}: a L{twsgi.ServerConfig} becomes the
objects of a service.  (The service's own use of it is tested in
L{tests.lifecycle.test_service}.)
"""

from __future__ import annotations

from typing import Any

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from twsgi.config.model import ServerConfig
from twsgi.config.resolve import ConfigError, resolveConfig
from twsgi.http.limits import MIB, Limits
from twsgi.lifecycle.build import adminEndpoints, limitsFromConfig, serviceParts
from twsgi.wsgi.placement import Placement


class LimitsFromConfigTests(SynchronousTestCase):
    """
    Tests for L{limitsFromConfig}.
    """

    def test_settings(self) -> None:
        """
        The limit and timeout settings, from the command line or the
        environment, become the L{Limits} of every listener.
        """
        config = resolveConfig(
            {"max_body_size": "1M", "header_timeout": "3"},
            {
                "TWSGI_KEEPALIVE_TIMEOUT": "2",
                "TWSGI_LIMIT_REQUEST_FIELDS": "7",
                "TWSGI_HTTP2_CONTROL_FRAMES": "50",
                "TWSGI_HTTP2_RESET_RATE": "2.5",
            },
        )
        self.assertEqual(
            limitsFromConfig(config),
            Limits(
                maxBody=MIB,
                headerTimeout=3.0,
                keepAliveTimeout=2.0,
                maxHeaderCount=7,
                controlFrames=50,
                resetRate=2.5,
            ),
        )

    def test_defaults(self) -> None:
        """
        Without settings, the limits are the safe defaults of L{Limits}.
        """
        self.assertEqual(limitsFromConfig(resolveConfig({}, {})), Limits())


class AdminEndpointsTests(SynchronousTestCase):
    """
    Tests for L{adminEndpoints}: a listener given twice is refused.
    """

    def test_optionsDoNotMakeAnotherListener(self) -> None:
        """
        One endpoint given twice is refused whatever twsgi options follow
        it (C{;forwarded-allow-ips=...}): both would listen on one socket.
        """
        config = ServerConfig(
            endpoint=("tcp:8000;forwarded-allow-ips=*", "tcp:8000"),
            health_endpoint=("unix:h.sock", "unix:h.sock;forwarded-allow-ips=*"),
        )
        with self.assertRaises(ConfigError) as caught:
            adminEndpoints(config)
        self.assertIn("'tcp:8000' is given twice", str(caught.exception))

    def test_portZeroWithOptions(self) -> None:
        """
        Port 0 given twice is two listeners on two free ports, also with
        twsgi options after it.
        """
        config = ServerConfig(endpoint=("tcp:0;forwarded-allow-ips=*",) * 2)
        self.assertEqual(adminEndpoints(config), ())


def _app(environ: Any, startResponse: Any) -> list[bytes]:
    startResponse("200 OK", [])
    return [b""]


class ServicePartsTests(SynchronousTestCase):
    """
    Tests for L{serviceParts}: the objects a service runs with.
    """

    def test_settings(self) -> None:
        """
        The thread pool, the connection gate, the WSGI resource and its
        watchdog, the hooks and the stop's timings come from the settings.
        """
        stuck: list[None] = []
        config = ServerConfig(
            app="myapp:app",
            endpoint=("tcp:0",),
            threads=(2, 6),
            max_connections=50,
            max_pending=9,
            request_timeout=4.0,
            expose_tracebacks=True,
            no_http2=True,
            on_start=("tests.apps.hookfixtures:started",),
            on_stop=("tests.apps.hookfixtures:stopped",),
            drain_delay=1.5,
            graceful_timeout=8.0,
            keepalive_grace=0.5,
            access_log="-",
        )
        parts = serviceParts(
            config, _app, MemoryReactorClock(), None, lambda: stuck.append(None)
        )
        watchdog = parts.resource.watchdog
        assert watchdog is not None and parts.gate is not None
        assert watchdog.onStuck is not None
        watchdog.onStuck()
        self.assertEqual(
            (
                parts.listeners.descriptions,
                parts.threads,
                (parts.threadpool.min, parts.threadpool.max),
                parts.threadpool.started,
                parts.gate.maximum,
                parts.resource.maxPending,
                parts.resource.exposeTracebacks,
                watchdog.timeout,
                stuck,
                parts.appName,
                parts.http2,
                [hook.__name__ for hook in (*parts.onStart, *parts.onStop)],
                parts.onDrain,
                (parts.drainDelay, parts.gracefulTimeout, parts.keepAliveGrace),
                parts.accessLogOnStdout,
            ),
            (
                ("tcp:0",),
                (2, 6),
                (2, 6),
                False,
                50,
                9,
                True,
                4.0,
                [None],
                "myapp:app",
                False,
                ["started", "stopped"],
                (),
                (1.5, 8.0, 0.5),
                True,
            ),
        )

    def test_defaults(self) -> None:
        """
        By default there is no connection gate and no watchdog, HTTP/2 is
        offered, and the application is named by its C{repr}.
        """
        parts = serviceParts(
            ServerConfig(), _app, MemoryReactorClock(), None, lambda: None
        )
        self.assertEqual(
            (
                parts.gate,
                parts.resource.watchdog,
                parts.http2,
                parts.appName,
            ),
            (None, None, True, repr(_app)),
        )

    def test_threadPlacement(self) -> None:
        """
        The thread pool wakes a thread for an idle pool on its waker's CPU
        by default (L{Placement.forThisProcess}); with C{--thread-placement
        kernel}, where the kernel likes.
        """
        placements = [
            serviceParts(
                ServerConfig(**given), _app, MemoryReactorClock(), None, lambda: None
            ).threadpool.makePlacement
            for given in ({}, {"thread_placement": "kernel"})
        ]
        self.assertEqual(placements, [Placement.forThisProcess, None])

    def test_workerGatesOnThreads(self) -> None:
        """
        A worker of a supervisor has a connection gate on its thread pool's
        free threads (with C{--max-connections} too, if given); one process
        serving by itself has none.
        """
        for maximum in (0, 7):
            config = ServerConfig(max_connections=maximum)
            parts = serviceParts(
                config, _app, MemoryReactorClock(), None, lambda: None, inWorker=True
            )
            assert parts.gate is not None
            self.assertEqual(
                (parts.gate.threads, parts.gate.maximum), (parts.threadpool, maximum)
            )
