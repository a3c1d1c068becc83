"""
Real-socket tests of what the reactor answers beside the application: health
while every WSGI thread is busy, and static files.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from twisted.internet import defer, reactor, threads
from twisted.trial.unittest import TestCase

from tests.helpers.rawhttp import exchange
from tests.helpers.realserver import RealServerMixin, deferLater

_release = threading.Event()
_entered = threading.Semaphore(0)


def blockingApp(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """
    Block the WSGI thread until the test releases it (at most 30 seconds).
    """
    _entered.release()
    _release.wait(30)
    start_response("200 OK", [("Content-Length", "4")])
    return [b"done"]


class BusyPoolHealthTests(RealServerMixin, TestCase):
    """
    Health stays answered, on the admin listener and on the application's,
    while the only WSGI thread is blocked.
    """

    timeout = 15

    @defer.inlineCallbacks
    def test_busy(self) -> Any:
        """
        With one thread blocked and one request waiting, C{/livez} answers
        200 and C{/readyz} 503 (queue limit 0), on both listeners; once the
        thread is free, C{/readyz} is 200 again.
        """
        _release.clear()
        yield self.startServer(
            {
                "app": "tests.server.test_health_sockets:blockingApp",
                "endpoint": ["tcp:0:interface=127.0.0.1"],
                "health_endpoint": ["tcp:0:interface=127.0.0.1:backlog=5"],
                "threads": "1:1",
                "ready_queue_limit": "0",
                "health_on_app": True,
                "health_path_prefix": "/_twsgi",
                "access_log": "none",
            }
        )
        # Cleanups run last-added first: free the thread before the drain.
        self.addCleanup(_release.set)
        app, admin = "tcp:0:interface=127.0.0.1", "tcp:0:interface=127.0.0.1:backlog=5"
        first = self.request(app, "/one")
        second = self.request(app, "/two")
        # Wait until the second request is queued behind the first.
        for _ in range(200):
            response, body = yield self.request(admin, "/_twsgi/readyz")
            # Both may wait for a moment, until the thread takes the first.
            if response.code == 503 and body.startswith(b"1 "):
                break
            yield deferLater(0.02)
        self.assertEqual(
            (response.code, body), (503, b"1 requests waiting for a thread (limit 0)\n")
        )
        for description in [admin, app]:
            response, body = yield self.request(description, "/_twsgi/livez")
            self.assertEqual((response.code, body), (200, b"ok\n"))
            response, body = yield self.request(description, "/_twsgi/readyz")
            self.assertEqual(response.code, 503)
        response, body = yield self.request(admin, "/one")
        self.assertEqual(response.code, 404)
        _release.set()
        results = yield defer.gatherResults([first, second])
        self.assertEqual([body for _, body in results], [b"done", b"done"])
        response, body = yield self.request(admin, "/_twsgi/readyz")
        self.assertEqual((response.code, body), (200, b"ready\n"))


class StaticTests(RealServerMixin, TestCase):
    """
    Tests for C{--static} mounts.
    """

    timeout = 30

    @defer.inlineCallbacks
    def setUp(self) -> Any:
        self.directory = self.mktemp()
        os.makedirs(os.path.join(self.directory, "css"))
        with open(os.path.join(self.directory, "css", "site.css"), "wb") as f:
            f.write(b"0123456789")
        self.service = yield self.startServer(
            {
                "app": "tests.server.test_health:hello",
                "endpoint": ["tcp:0:interface=127.0.0.1"],
                "static": [f"/static={self.directory}"],
                "access_log": "none",
            }
        )

    def get(self, path: str, headers: dict[str, str] | None = None) -> Any:
        return self.request("tcp:0:interface=127.0.0.1", path, headers)

    @defer.inlineCallbacks
    def test_file(self) -> Any:
        """
        A file below the mount is served with its type, length, an ETag and
        C{Last-Modified}; C{If-None-Match} with the ETag gets 304 (without
        the C{Content-Length: 0} Twisted gives it); a range gets 206.
        """
        response, body = yield self.get("/static/css/site.css")
        self.assertEqual((response.code, body), (200, b"0123456789"))
        headers = response.headers
        self.assertEqual(headers.getRawHeaders(b"content-type"), [b"text/css"])
        self.assertEqual(headers.getRawHeaders(b"accept-ranges"), [b"bytes"])
        self.assertTrue(headers.getRawHeaders(b"last-modified"))
        (etag,) = headers.getRawHeaders(b"etag")
        response, body = yield self.get(
            "/static/css/site.css", {"If-None-Match": etag.decode()}
        )
        self.assertEqual((response.code, body), (304, b""))
        # RFC 9110 8.6: a 304 may say the 200's length, never another; a
        # client (as Twisted's) hides the header, so the bytes are read.
        raw, _ = yield exchange(
            reactor,
            self.ports["tcp:0:interface=127.0.0.1"],
            b"GET /static/css/site.css HTTP/1.1\r\nHost: h\r\nConnection: close\r\n"
            b"If-None-Match: " + etag + b"\r\n\r\n",
        )
        self.assertTrue(raw.startswith(b"HTTP/1.1 304 "), raw)
        self.assertNotIn(b"content-length", raw.lower())
        response, body = yield self.get("/static/css/site.css", {"Range": "bytes=2-4"})
        self.assertEqual((response.code, body), (206, b"234"))
        self.assertEqual(self.service.poolStats().busy, 0)

    @defer.inlineCallbacks
    def test_noListingNoEscape(self) -> Any:
        """
        Directories are not listed, C{..} does not leave the directory, and
        a missing file, or a path with a NUL byte (no file has one), is a
        404.
        """
        for path in [
            "/static/css/",
            "/static/../x",
            "/static/%2e%2e/x",
            "/static/nope.css",
            "/static/css/site.css%00",
            "/static/css%00/site.css",
        ]:
            response, body = yield self.get(path)
            self.assertEqual(response.code, 404, path)

    @defer.inlineCallbacks
    def test_besideTheApp(self) -> Any:
        """
        Paths outside the mount, and ones that only start with its name, go
        to the application with an empty C{SCRIPT_NAME}.
        """
        response, body = yield self.get("/staticx/y")
        self.assertEqual(body, b"app '' '/staticx/y'")


class OverloadHealthTests(RealServerMixin, TestCase):
    """
    Under C{--max-pending} overload, health is still answered, on the admin
    listener and on the application's.
    """

    timeout = 20

    def bounded(self, d: Any) -> Any:
        """
        Fail, rather than hang, if a health answer takes over 5 seconds.
        """
        return d.addTimeout(5, reactor)

    def occupyThread(self, app: str) -> tuple[Any, Any]:
        """
        Send C{/one} to the listener C{app}, whose only WSGI thread it
        blocks until the test releases it (at the test's end at the latest:
        call this after C{startServer}, so that the release comes before
        the server's stop).

        @return: the request's L{defer.Deferred}, and one that fires once
            the request holds the thread.
        """
        self.addCleanup(_release.set)
        while _entered.acquire(blocking=False):
            pass
        first = self.request(app, "/one")
        entered = threads.deferToThread(_entered.acquire, True, 10)
        entered.addCallback(self.assertTrue)
        return first, entered

    @defer.inlineCallbacks
    def test_overloaded(self) -> Any:
        """
        With the only thread blocked and the queue full, application
        requests get 503 with C{Retry-After} while C{/livez} answers 200 and
        C{/readyz} 503 with the queue length, on both listeners; once the
        thread is free, the queued request completes and readiness is back.
        """
        _release.clear()
        app, admin = "tcp:0:interface=127.0.0.1", "tcp:0:interface=127.0.0.1:backlog=7"
        yield self.startServer(
            {
                "app": "tests.server.test_health_sockets:blockingApp",
                "endpoint": [app],
                "health_endpoint": [admin],
                "threads": "1:1",
                "max_pending": "1",
                "ready_queue_limit": "0",
                "health_on_app": True,
                "health_path_prefix": "/_twsgi",
                "access_log": "none",
            }
        )
        # The second must wait for the thread the first holds, not beside it
        # in the queue (where it would be refused).
        first, entered = self.occupyThread(app)
        yield entered
        second = self.request(app, "/two")
        for _ in range(200):
            response, body = yield self.bounded(self.request(admin, "/_twsgi/readyz"))
            if response.code == 503 and body.startswith(b"1 "):
                break
            yield deferLater(0.02)
        response, body = yield self.request(app, "/three")
        self.assertEqual(response.code, 503)
        self.assertEqual(response.headers.getRawHeaders(b"retry-after"), [b"1"])
        for description in [admin, app]:
            response, body = yield self.bounded(
                self.request(description, "/_twsgi/livez")
            )
            self.assertEqual((response.code, body), (200, b"ok\n"))
            response, body = yield self.bounded(
                self.request(description, "/_twsgi/readyz")
            )
            self.assertEqual(
                (response.code, body),
                (503, b"1 requests waiting for a thread (limit 0)\n"),
            )
        response, body = yield self.request(app, "/four")
        self.assertEqual(response.code, 503)
        _release.set()
        results = yield defer.gatherResults([first, second])
        self.assertEqual([body for _, body in results], [b"done", b"done"])
        response, body = yield self.request(admin, "/_twsgi/readyz")
        self.assertEqual((response.code, body), (200, b"ready\n"))

    @defer.inlineCallbacks
    def test_refusingIsNotReady(self) -> Any:
        """
        Without C{--ready-queue-limit}, C{/readyz} answers 503 while
        C{--max-pending} refuses requests (the only thread blocked, the
        queue full), saying why, and 200 again once the queue drained.
        """
        _release.clear()
        app, admin = "tcp:0:interface=127.0.0.1", "tcp:0:interface=127.0.0.1:backlog=9"
        service = yield self.startServer(
            {
                "app": "tests.server.test_health_sockets:blockingApp",
                "endpoint": [app],
                "health_endpoint": [admin],
                "threads": "1:1",
                "max_pending": "2",
                "access_log": "none",
            }
        )
        first, entered = self.occupyThread(app)
        yield entered
        response, body = yield self.bounded(self.request(admin, "/readyz"))
        self.assertEqual((response.code, body), (200, b"ready\n"))
        queued = [self.request(app, "/two"), self.request(app, "/three")]
        for _ in range(250):
            if service.poolStats().backlog == 2:
                break
            yield deferLater(0.02)
        response, body = yield self.request(app, "/four")
        self.assertEqual(response.code, 503)
        response, body = yield self.bounded(self.request(admin, "/readyz"))
        self.assertEqual(
            (response.code, body),
            (
                503,
                b"2 requests waiting for a thread: new ones are refused "
                b"(--max-pending 2)\n",
            ),
        )
        _release.set()
        results = yield defer.gatherResults([first, *queued])
        self.assertEqual([body for _, body in results], [b"done"] * 3)
        response, body = yield self.request(admin, "/readyz")
        self.assertEqual((response.code, body), (200, b"ready\n"))
