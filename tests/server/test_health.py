"""
Tests for L{twsgi.server.health} and L{twsgi.server.routes}: health, static files and
the routing before the application.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from typing import Any

from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.python.threadpool import ThreadPool
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.bodies import noDescriptorsLeft
from tests.helpers.health import FakePool, FakeService
from twsgi.cli.options import serviceFromConfig
from twsgi.config.resolve import ConfigError, resolveConfig
from twsgi.logs.accesslog import AccessRecord
from twsgi.server.health import (
    FOLLOW_MAX_PENDING,
    PoolStats,
    Readiness,
    healthRoutes,
    parsePathPrefix,
    poolStats,
    readiness,
)
from twsgi.server.routes import Routes, StaticFile, parseStatic
from twsgi.testing import MemoryServer, SynchronousReactor, SynchronousThreadPool
from twsgi.wsgi.bridge import WSGIResource


def hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """
    A WSGI application answering its C{SCRIPT_NAME} and C{PATH_INFO}.
    """
    body = f"app {environ['SCRIPT_NAME']!r} {environ['PATH_INFO']!r}".encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


class CountingThreadPool(SynchronousThreadPool):
    """
    A L{SynchronousThreadPool} that counts the calls it ran.
    """

    ran = 0

    def callInThread(self, f: Any, *args: Any, **kwargs: Any) -> None:
        self.ran += 1
        super().callInThread(f, *args, **kwargs)


def get(server: MemoryServer, path: str, method: str = "GET") -> bytes:
    """
    One request with C{Connection: close}; the response bytes.
    """
    response = server.request(
        method.encode(), path.encode(), headers=[(b"Connection", b"close")]
    )
    return response.raw


class ReadinessTests(SynchronousTestCase):
    """
    Tests for the pure readiness decision.
    """

    def test_table(self) -> None:
        """
        Draining or a backlog above the limit is not ready; otherwise ready.
        """
        stats = PoolStats(busy=4, idle=0, backlog=3, maximum=4)
        self.assertTrue(readiness(False, stats, None).ready)
        self.assertTrue(readiness(False, stats, 3).ready)
        self.assertFalse(readiness(False, stats, 2).ready)
        self.assertIn("3 requests waiting", readiness(False, stats, 2).reason)
        self.assertEqual(readiness(True, stats, None).reason, "draining")

    def test_followMaxPending(self) -> None:
        """
        By default (L{FOLLOW_MAX_PENDING}), the server is not ready once the
        backlog reaches C{--max-pending}, where requests are refused; with
        C{--max-pending 0} (nothing refused), the backlog does not matter;
        neither does it with no limit (C{None}).
        """
        stats = PoolStats(busy=4, idle=0, backlog=3, maximum=4)
        self.assertTrue(readiness(False, stats, FOLLOW_MAX_PENDING, 4).ready)
        refusing = readiness(False, stats, FOLLOW_MAX_PENDING, 3)
        self.assertEqual(
            refusing,
            Readiness(
                False,
                "3 requests waiting for a thread: new ones are refused "
                "(--max-pending 3)",
            ),
        )
        self.assertTrue(readiness(False, stats, FOLLOW_MAX_PENDING, 0).ready)
        self.assertTrue(readiness(False, stats, None, 3).ready)
        self.assertFalse(readiness(False, stats, 2, 3).ready)
        self.assertTrue(readiness(False, stats, 3, 2).ready)
        self.assertEqual(
            readiness(True, stats, FOLLOW_MAX_PENDING, 0).reason, "draining"
        )

    def test_poolStats(self) -> None:
        """
        L{poolStats} reads a plain Twisted thread pool through its public
        attributes: work queued before it starts, then a busy thread.
        """
        pool = ThreadPool(1, 3)
        self.assertEqual(poolStats(pool), PoolStats(0, 0, 0, 3))
        release = threading.Event()
        pool.callInThread(release.wait, 10)
        self.assertEqual(poolStats(pool).backlog, 1)
        pool.start()
        self.addCleanup(pool.stop)
        self.addCleanup(release.set)
        deadline = time.monotonic() + 10
        while poolStats(pool).busy != 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertEqual(poolStats(pool), PoolStats(1, 0, 0, 3))


class HealthRoutesTests(SynchronousTestCase):
    """
    Tests for the health resources served by a dispatcher.
    """

    def setUp(self) -> None:
        self.reactor = SynchronousReactor()
        self.pool = CountingThreadPool()
        self.app = WSGIResource(self.reactor, self.pool, hello)
        self.service = FakeService(FakePool())
        health = healthRoutes(self.service, "/_twsgi", 2)
        self.server = MemoryServer(
            resource=Routes(app=health).appRoot(self.app), reactor=self.reactor
        )

    def test_livez(self) -> None:
        """
        C{PREFIX/livez} answers 200 without the thread pool.
        """
        response = get(self.server, "/_twsgi/livez")
        self.assertTrue(response.startswith(b"HTTP/1.1 200 OK\r\n"), response)
        self.assertIn(b"Cache-Control: no-store", response)
        self.assertTrue(response.endswith(b"\r\n\r\nok\n"))
        self.assertEqual(self.pool.ran, 0)

    def test_readyz(self) -> None:
        """
        C{PREFIX/readyz} turns 503 while draining or over the queue limit.
        """
        self.assertIn(b" 200 ", get(self.server, "/_twsgi/readyz?x=1"))
        self.service.threadpool.backlog = 3
        response = get(self.server, "/_twsgi/readyz")
        self.assertTrue(response.startswith(b"HTTP/1.1 503 "), response)
        self.service.threadpool.backlog = 0
        self.service.draining = True
        response = get(self.server, "/_twsgi/readyz")
        self.assertTrue(response.startswith(b"HTTP/1.1 503 "), response)
        self.assertTrue(response.endswith(b"draining\n"))
        head = get(self.server, "/_twsgi/readyz", method="HEAD")
        self.assertIn(b"Content-Length: 9\r\n", head)
        self.assertTrue(head.endswith(b"\r\n\r\n"), head)
        self.assertEqual(self.pool.ran, 0)

    def test_readyzInWorker(self) -> None:
        """
        In a worker, the connections waiting in the listen backlog count
        with its queue once it has no thread free (it accepts none then):
        with 2 of 4 threads busy they are not asked for; with all 4 busy, 3
        of them are over the limit of 2.
        """
        asked: list[int] = []

        def waitingElsewhere() -> int:
            asked.append(3)
            return 3

        health = healthRoutes(self.service, "/_twsgi", 2, 0, waitingElsewhere)
        server = MemoryServer(
            resource=Routes(app=health).appRoot(self.app), reactor=self.reactor
        )
        self.service.threadpool.busy = 2
        self.assertIn(b" 200 ", get(server, "/_twsgi/readyz"))
        self.assertEqual(asked, [])
        self.service.threadpool.busy = 4
        response = get(server, "/_twsgi/readyz")
        self.assertTrue(response.startswith(b"HTTP/1.1 503 "), response)
        self.assertTrue(
            response.endswith(b"3 requests waiting for a thread (limit 2)\n")
        )
        self.assertEqual(asked, [3])

    def test_otherPathsReachTheApp(self) -> None:
        """
        Other paths, also ones that start like a health path, reach the
        application with an empty C{SCRIPT_NAME} and the whole path.
        """
        for path in ["/livez", "/_twsgi/livez/x", "/_twsgi", "/a/b%2Fc"]:
            response = get(self.server, path)
            self.assertTrue(
                response.endswith(f"app '' {path.replace('%2F', '/')!r}".encode()),
                response,
            )
        self.assertEqual(self.pool.ran, 4)

    def test_adminRoot(self) -> None:
        """
        An admin listener answers its paths and 404 for the rest, never the
        application.
        """
        admin = MemoryServer(
            resource=Routes(admin=healthRoutes(self.service, "", None)).adminRoot(),
            reactor=self.reactor,
        )
        self.assertIn(b" 200 ", get(admin, "/livez"))
        self.assertIn(b" 200 ", get(admin, "/readyz"))
        self.assertIn(b" 404 ", get(admin, "/"))
        self.assertEqual(self.pool.ran, 0)

    def test_withoutRoutes(self) -> None:
        """
        With nothing to dispatch, the application is the root itself.
        """
        self.assertIs(Routes().appRoot(self.app), self.app)


class StaticRangeTests(SynchronousTestCase):
    """
    A static file answers a single range; a C{Range} of several is ignored.
    """

    def setUp(self) -> None:
        directory = self.mktemp()
        os.makedirs(directory)
        self.content = bytes(range(256)) * 1024
        with open(os.path.join(directory, "f.bin"), "wb") as f:
            f.write(self.content)
        reactor = SynchronousReactor()
        app = WSGIResource(reactor, SynchronousThreadPool(), hello)
        routes = Routes(mounts=[(b"/s", StaticFile(directory))])
        self.server = MemoryServer(resource=routes.appRoot(app), reactor=reactor)

    def get(self, ranges: bytes) -> Any:
        return self.server.request(
            b"GET", b"/s/f.bin", [(b"Range", ranges), (b"Connection", b"close")]
        )

    def test_range(self) -> None:
        """
        A single range is answered with 206 and its bytes.
        """
        response = self.get(b"bytes=2-4")
        self.assertEqual((response.code, response.body), (206, b"\x02\x03\x04"))
        self.assertEqual(response.header(b"content-range"), b"bytes 2-4/262144")

    def test_severalRanges(self) -> None:
        """
        Several ranges get the whole file once, with 200: many small ones
        (whose part headers overran the buffer of L{twisted.web.static}'s
        multipart producer, which then raised and never finished the
        response), and the whole file asked for many times over.
        """
        small = b",".join(b"%d-%d" % (n, n) for n in range(0, 1600, 2))
        for ranges in [small, b",".join([b"0-"] * 1000), b"bytes=0-1,8-9"]:
            if not ranges.startswith(b"bytes="):
                ranges = b"bytes=" + ranges
            response = self.get(ranges)
            self.assertEqual(response.code, 200, ranges[:20])
            self.assertEqual(response.body, self.content)


class StaticNotOpenedTests(SynchronousTestCase):
    """
    A static file that cannot be opened is answered, and its error logged
    in one line.
    """

    def test_noDescriptorLeft(self) -> None:
        """
        A static file that cannot be opened because no file descriptor is
        left gets a 503 with C{Retry-After} (the shortage passes) without
        the file's C{ETag}, and one error line naming the request, the file
        and the reason, not a traceback; once descriptors are back, it is
        served again.
        """
        directory = self.mktemp()
        os.makedirs(directory)
        with open(os.path.join(directory, "f.txt"), "wb") as f:
            f.write(b"content")
        reactor = SynchronousReactor()
        app = WSGIResource(reactor, SynchronousThreadPool(), hello)
        routes = Routes(mounts=[(b"/s", StaticFile(directory))])
        records: list[AccessRecord] = []
        server = MemoryServer(
            resource=routes.appRoot(app), reactor=reactor, observers=[records.append]
        )
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        restore = noDescriptorsLeft(self)
        response = server.request(b"GET", b"/s/f.txt")
        restore()
        self.assertEqual(response.code, 503)
        self.assertEqual(response.header(b"retry-after"), b"1")
        self.assertIsNone(response.header(b"etag"))
        self.assertIn(b"The file could not be read.", response.body)
        [line] = [formatEvent(e) for e in events if e["log_level"] >= LogLevel.warn]
        self.assertEqual(
            line,
            "twsgi: GET /s/f.txt: static file "
            f"{os.path.abspath(os.path.join(directory, 'f.txt'))} could not be "
            f"opened: {os.strerror(errno.EMFILE)}",
        )
        response = server.request(b"GET", b"/s/f.txt")
        self.assertEqual((response.code, response.body), (200, b"content"))
        self.assertEqual([record.status for record in records], [503, 200])


class SettingsTests(SynchronousTestCase):
    """
    Tests for the health and static settings.
    """

    def test_parseStatic(self) -> None:
        """
        C{/url=dir} is parsed; other forms are refused.
        """
        self.assertEqual(parseStatic("/static/=./s"), ("/static", "./s"))
        for bad in ["static=./s", "/s", "/=./s", "/s=", "/a b=./s", "/s?x=./s"]:
            self.assertRaises(ValueError, parseStatic, bad)

    def test_parsePathPrefix(self) -> None:
        """
        The prefix is an absolute path, without its trailing slash; one that
        no request target can begin with (a space, a query) is refused.
        """
        self.assertEqual(parsePathPrefix("/_twsgi/"), "/_twsgi")
        self.assertEqual(parsePathPrefix("/a%20b"), "/a%20b")
        self.assertEqual(parsePathPrefix("/"), "")
        for bad in ["_twsgi", "/a b", "/a\tb", "/a?b", "/a#b", "/\u00e9"]:
            self.assertRaises(ValueError, parsePathPrefix, bad)

    def test_missingStaticDirectory(self) -> None:
        """
        A static directory that does not exist is a one-line error.
        """
        config = resolveConfig(
            {"app": "twsgi.example:app", "static": ["/s=/no/such/dir"]}
        )
        e = self.assertRaises(
            ConfigError, serviceFromConfig, config, SynchronousReactor()
        )
        self.assertEqual(str(e), "--static: '/no/such/dir' is not a directory")

    def test_adminIsNotApp(self) -> None:
        """
        One endpoint cannot be both an application and an admin listener;
        on port 0 the error says how to ask for two free ports.
        """
        hint = (
            " (for two free ports, write one of them differently, for example "
            "with port=0)"
        )
        for admin, port, after in [
            ("health_endpoint", "tcp:0", hint),
            ("metrics_endpoint", "tcp:8080", ""),
        ]:
            config = resolveConfig(
                {"app": "twsgi.example:app", "endpoint": [port], admin: [port]}
            )
            e = self.assertRaises(
                ConfigError, serviceFromConfig, config, SynchronousReactor()
            )
            self.assertEqual(
                str(e),
                f"{port!r} is both an application and an admin endpoint{after}",
            )
