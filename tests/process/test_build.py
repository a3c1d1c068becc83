"""
Tests for L{twsgi.process.build}: a L{twsgi.ServerConfig} becomes the
objects of a process (the service's own are tested in
L{tests.lifecycle.test_build}; L{serviceFromConfig} in every test that
builds a service from settings).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import Any

import attrs
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.certs import makeCertificates, makeTLSDirectory
from twsgi.config.apploader import AppLoadError
from twsgi.config.model import ServerConfig
from twsgi.config.resolve import ConfigError
from twsgi.lifecycle.service import TwsgiService
from twsgi.process.build import (
    checkApp,
    checkShared,
    metricsDirectoryFromConfig,
    supervisorFromConfig,
    watchRequests,
    workerLinkFromConfig,
)
from twsgi.process.workers import WorkerLink


def _app(environ: Any, startResponse: Any) -> list[bytes]:
    startResponse("200 OK", [])
    return [b""]


class SupervisorFromConfigTests(SynchronousTestCase):
    """
    Tests for L{supervisorFromConfig}.
    """

    def test_settings(self) -> None:
        """
        The supervisor gets its listeners, its count of workers, when it
        replaces one and how it stops from the settings; its workers get
        the raw settings, with one worker each.
        """
        config = ServerConfig(
            endpoint=("tcp:0",),
            bind=("127.0.0.1:0",),
            health_endpoint=("tcp:1",),
            workers=3,
            max_worker_memory=100,
            worker_lifetime=5.0,
            graceful_timeout=7.0,
            drain_delay=2.0,
        )
        supervisor = supervisorFromConfig(
            config, MemoryReactorClock(), {"workers": "3"}, handleSignals=False
        )
        self.assertEqual(
            (
                supervisor.descriptions,
                supervisor.count,
                supervisor.maxWorkerMemory,
                supervisor.workerLifetime,
                supervisor.gracefulTimeout,
                supervisor.drainDelay,
                supervisor.settings,
            ),
            (
                ("tcp:0", "tcp:0:interface=127.0.0.1", "tcp:1"),
                3,
                100,
                5.0,
                7.0,
                2.0,
                {"workers": "1"},
            ),
        )

    def test_conflict(self) -> None:
        """
        A listener that is both an application and an admin one is refused.
        """
        config = ServerConfig(endpoint=("tcp:0",), health_endpoint=("tcp:0",))
        self.assertRaises(
            ConfigError, supervisorFromConfig, config, MemoryReactorClock(), {}
        )


class WorkerLinkFromConfigTests(SynchronousTestCase):
    """
    Tests for L{workerLinkFromConfig}.
    """

    def test_maxRequests(self) -> None:
        """
        The link retires its worker after C{--max-requests}, plus up to
        C{--max-requests-jitter}.
        """
        plain = workerLinkFromConfig(ServerConfig(max_requests=5), 7)
        self.assertEqual((plain.fd, plain.limit), (7, 5))
        limits = {
            workerLinkFromConfig(
                ServerConfig(max_requests=100, max_requests_jitter=3), 7
            ).limit
            for _ in range(200)
        }
        self.assertEqual(limits, {100, 101, 102, 103})

    def test_unlimited(self) -> None:
        """
        Without C{--max-requests}, the link counts nothing.
        """
        link = workerLinkFromConfig(ServerConfig(max_requests_jitter=3), 7)
        self.assertEqual(link.limit, 0)


class MetricsDirectoryFromConfigTests(SynchronousTestCase):
    """
    Tests for L{metricsDirectoryFromConfig}.
    """

    def test_withoutMetrics(self) -> None:
        """
        Without C{--metrics-endpoint} there is no directory, whatever the
        environment says.
        """
        environ = {"PROMETHEUS_MULTIPROC_DIR": "/nonexistent"}
        self.assertIsNone(metricsDirectoryFromConfig(ServerConfig(), environ))

    def test_operatorDirectory(self) -> None:
        """
        With C{--metrics-endpoint}, the operator's C{PROMETHEUS_MULTIPROC_DIR}
        is the directory.
        """
        path = self.mktemp()
        os.mkdir(path)
        config = ServerConfig(metrics_endpoint=("tcp:9100",))
        directory = metricsDirectoryFromConfig(
            config, {"PROMETHEUS_MULTIPROC_DIR": path}
        )
        assert directory is not None
        self.assertEqual(directory.path, path)

    def test_notADirectory(self) -> None:
        """
        A C{PROMETHEUS_MULTIPROC_DIR} that is not a directory is one line
        naming C{--metrics-endpoint}.
        """
        config = ServerConfig(metrics_endpoint=("tcp:9100",))
        error = self.assertRaises(
            ConfigError,
            metricsDirectoryFromConfig,
            config,
            {"PROMETHEUS_MULTIPROC_DIR": self.mktemp()},
        )
        self.assertIn("--metrics-endpoint: PROMETHEUS_MULTIPROC_DIR", str(error))


class CheckAppTests(SynchronousTestCase):
    """
    Tests for L{checkApp}: it looks for C{--app} where a worker imports it
    from.
    """

    def test_startingDirectory(self) -> None:
        """
        A module in the directory the supervisor was started from passes
        with a C{--chdir} elsewhere: a worker starts there (C{python -m
        twsgi}, which puts it on C{sys.path}) and imports it.  A module in
        neither place is refused.
        """
        top = os.path.realpath(tempfile.mkdtemp(prefix="twsgi-test-"))
        self.addCleanup(os.rmdir, top)
        name = f"twsgi_started_{id(self)}"
        module = os.path.join(top, f"{name}.py")
        with open(module, "w") as f:
            f.write("app = None\n")
        self.addCleanup(os.remove, module)
        os.mkdir(os.path.join(top, "sub"))
        self.addCleanup(os.rmdir, os.path.join(top, "sub"))
        self.addCleanup(os.chdir, os.getcwd())
        os.chdir(top)
        self.patch(sys, "path", [p for p in sys.path if p not in ("", top)])
        checkApp(ServerConfig(app=f"{name}:app", chdir="sub"))
        self.assertRaises(
            AppLoadError, checkApp, ServerConfig(app=f"{name}x:app", chdir="sub")
        )


class CheckSharedTests(SynchronousTestCase):
    """
    Tests for L{checkShared}.
    """

    def test_relativeToChdir(self) -> None:
        """
        The certificate files of an C{ssl:} listener and the directory of a
        C{tls:} one, given relative, are read from the C{--chdir}
        directory, where the supervisor binds them and the workers read
        them; the supervisor's own directory is unchanged.
        """
        top = os.path.realpath(tempfile.mkdtemp(prefix="twsgi-test-"))
        self.addCleanup(shutil.rmtree, top, True)
        sub = os.path.join(top, "sub")
        makeCertificates(sub)
        makeTLSDirectory(sub, os.path.join(sub, "certs"))
        self.addCleanup(os.chdir, os.getcwd())
        os.chdir(top)
        config = ServerConfig(
            app="twsgi.example:app",
            chdir="sub",
            workers=2,
            endpoint=(
                "tls:certs:port=0:interface=127.0.0.1",
                "ssl:0:interface=127.0.0.1:privateKey=server.key:certKey=server.pem",
            ),
        )
        checkShared(config, MemoryReactorClock())
        self.assertEqual(os.getcwd(), top)
        error = self.assertRaises(
            ConfigError,
            checkShared,
            attrs.evolve(config, chdir=None),
            MemoryReactorClock(),
        )
        self.assertIn("tls:certs is not a directory", str(error))


class _Link(WorkerLink):
    """
    A L{WorkerLink} that records what it would ask of its supervisor.
    """

    def __init__(self) -> None:
        super().__init__(-1)
        self.retired: list[str] = []

    def retire(self, reason: str) -> None:
        self.retired.append(reason)


class WatchRequestsTests(SynchronousTestCase):
    """
    Tests for L{watchRequests}: C{--request-timeout-action}.
    """

    def service(self, action: str) -> TwsgiService:
        config = ServerConfig(
            endpoint=("tcp:0",),
            access_log="none",
            request_timeout=1.0,
            request_timeout_action=action,
        )
        return TwsgiService(config, _app, MemoryReactorClock())

    def test_recycle(self) -> None:
        """
        With C{recycle}, a stuck request is still counted, and also asks the
        supervisor to replace the worker.
        """
        service = self.service("recycle")
        watchdog = service.resource.watchdog
        assert watchdog is not None
        counted: list[None] = []
        watchdog.onStuck = lambda: counted.append(None)
        link = _Link()
        watchRequests(service, service.config, link)
        assert watchdog.onStuck is not None
        watchdog.onStuck()
        self.assertEqual(
            (counted, link.retired), ([None], ["a request ran past --request-timeout"])
        )

    def test_log(self) -> None:
        """
        With C{log}, a stuck request is only logged and counted.
        """
        service = self.service("log")
        watchdog = service.resource.watchdog
        assert watchdog is not None
        before = watchdog.onStuck
        watchRequests(service, service.config, _Link())
        self.assertIs(watchdog.onStuck, before)

    def test_recycleWithoutSupervisor(self) -> None:
        """
        With C{recycle} but no supervisor, stuck requests are only logged and
        counted (the warning that says so is
        L{twsgi.config.resolve.inertSettings}'s).
        """
        service = self.service("recycle")
        watchdog = service.resource.watchdog
        assert watchdog is not None
        before = watchdog.onStuck
        watchRequests(service, service.config, None)
        self.assertIs(watchdog.onStuck, before)
