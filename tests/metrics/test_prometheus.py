"""
Tests for L{twsgi.metrics.prometheus}: what C{/metrics} reports.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
from typing import Any

import attrs
from twisted.internet import defer
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.resource import Resource
from twisted.web.static import Data
from twisted.web.test.requesthelper import DummyRequest

from tests.helpers.bodies import noDescriptorsLeft
from tests.helpers.health import FakePool, FakeService
from tests.helpers.metrics import SpawningReactor, samples, scrape
from tests.helpers.realserver import RealServerMixin, deferLater
from tests.helpers.records import RECORD
from twsgi.cli.options import makeService, serviceFromConfig
from twsgi.config.resolve import ConfigError, resolveConfig
from twsgi.metrics.prometheus import Metrics, MetricsDirectory, multiprocessDirectory
from twsgi.server.ports import BACKOFF
from twsgi.testing import SynchronousReactor


def requestsTotal(
    figures: dict[tuple[str, tuple[tuple[str, str], ...]], float],
    statusClass: str,
    protocol: str = "HTTP/1.1",
) -> float:
    """
    The C{twsgi_requests_total} of C{figures} for one status class and
    protocol.
    """
    return figures[
        (
            "twsgi_requests_total",
            (("protocol", protocol), ("status_class", statusClass)),
        )
    ]


def metricsService(**settings: str) -> tuple[Any, Any]:
    """
    A service (on a L{SynchronousReactor}) with one application listener,
    the metrics on another, and C{settings}; and its config.
    """
    config = resolveConfig(
        {
            "app": "twsgi.example:app",
            "endpoint": ["tcp:0:interface=127.0.0.1"],
            "metrics_endpoint": ["tcp:0:interface=127.0.0.1:backlog=9"],
            **settings,
        }
    )
    return config, serviceFromConfig(config, SynchronousReactor())


class MetricsUnitTests(SynchronousTestCase):
    """
    L{Metrics} counts access records and reads live figures at each scrape.
    """

    def test_protocolLabel(self) -> None:
        """
        Requests count by protocol too: HTTP/2 and HTTP/1.1 requests of the
        same status class are apart.
        """
        metrics = Metrics(FakeService(FakePool()))
        metrics.observe(RECORD)
        metrics.observe(attrs.evolve(RECORD, protocol="HTTP/2.0"))
        metrics.observe(attrs.evolve(RECORD, protocol="HTTP/2.0"))
        figures = scrape(metrics)
        self.assertEqual(
            [
                figures[
                    (
                        "twsgi_requests_total",
                        (("protocol", protocol), ("status_class", "2xx")),
                    )
                ]
                for protocol in ("HTTP/1.1", "HTTP/2.0")
            ],
            [1, 2],
        )

    def test_protocolLabelBounded(self) -> None:
        """
        A protocol twsgi does not serve (what the client of a refused
        request wrote as its version, anything) counts as C{unknown}, as
        one with none does: the label makes no series for each.
        """
        metrics = Metrics(FakeService(FakePool()))
        for protocol in ("FOO1", "HTTP/1.1 x", "HTTP/9.9", ""):
            metrics.observe(attrs.evolve(RECORD, status=400, protocol=protocol))
        figures = scrape(metrics)
        series = [key for key in figures if key[0] == "twsgi_requests_total"]
        self.assertEqual(
            series,
            [
                (
                    "twsgi_requests_total",
                    (("protocol", "unknown"), ("status_class", "4xx")),
                )
            ],
        )
        self.assertEqual(requestsTotal(figures, "4xx", "unknown"), 4)

    def test_records(self) -> None:
        """
        Records count by status class, into the histogram and the byte
        counters.
        """
        metrics = Metrics(FakeService(FakePool()))
        metrics.observe(RECORD)
        metrics.observe(attrs.evolve(RECORD, status=503, duration=2.0, bytesSent=0))
        figures = scrape(metrics)
        self.assertEqual(
            requestsTotal(figures, "2xx"),
            1,
        )
        self.assertEqual(
            requestsTotal(figures, "5xx"),
            1,
        )
        self.assertEqual(figures[("twsgi_request_duration_seconds_count", ())], 2)
        self.assertEqual(
            figures[("twsgi_request_duration_seconds_bucket", (("le", "0.025"),))], 1
        )
        self.assertEqual(figures[("twsgi_response_body_bytes_total", ())], 13)
        self.assertEqual(figures[("twsgi_request_body_bytes_total", ())], 10)

    def test_live(self) -> None:
        """
        Pool figures and the drain state are read when scraped.
        """
        service = FakeService(FakePool(max=8, busy=3, idle=1, backlog=2))
        metrics = Metrics(service)
        figures = scrape(metrics)
        self.assertEqual(figures[("twsgi_threadpool_threads", (("state", "busy"),))], 3)
        self.assertEqual(figures[("twsgi_threadpool_threads", (("state", "idle"),))], 1)
        self.assertEqual(figures[("twsgi_threadpool_queue_depth", ())], 2)
        self.assertEqual(figures[("twsgi_threadpool_max_threads", ())], 8)
        self.assertEqual(figures[("twsgi_draining", ())], 0)
        service.draining = True
        self.assertEqual(scrape(metrics)[("twsgi_draining", ())], 1)

    def test_separateRegistries(self) -> None:
        """
        Two services' metrics do not mix.
        """
        one, two = Metrics(FakeService(FakePool())), Metrics(FakeService(FakePool()))
        one.observe(RECORD)
        self.assertNotIn(
            (
                "twsgi_requests_total",
                (("protocol", "HTTP/1.1"), ("status_class", "2xx")),
            ),
            scrape(two),
        )

    def test_withoutPrometheus(self) -> None:
        """
        Asking for metrics without prometheus-client is a one-line error
        that says what to install.
        """
        saved = sys.modules["prometheus_client"]
        self.addCleanup(sys.modules.__setitem__, "prometheus_client", saved)
        sys.modules["prometheus_client"] = None  # type: ignore[assignment]
        config = resolveConfig(
            {
                "app": "twsgi.example:app",
                "metrics_endpoint": ["tcp:0"],
                "endpoint": ["tcp:1"],
            }
        )
        e = self.assertRaises(
            ConfigError, serviceFromConfig, config, SynchronousReactor()
        )
        self.assertEqual(
            str(e),
            "--metrics-endpoint: metrics need prometheus-client: "
            "pip install 'twsgi[metrics]'",
        )


_release = threading.Event()


def statusApp(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """
    C{/block} waits for the test; C{/NNN} answers status NNN; the body is
    the request body, or C{b"hi"}.
    """
    path = environ["PATH_INFO"]
    if path == "/block":
        _release.wait(30)
    body = environ["wsgi.input"].read() or b"hi"
    status = path[1:] if path[1:].isdigit() else "200"
    start_response(f"{status} X", [("Content-Length", str(len(body)))])
    return [body]


class MetricsEndpointTests(RealServerMixin, TestCase):
    """
    C{--metrics-endpoint} serves C{/metrics} on its own listener.
    """

    timeout = 20

    @defer.inlineCallbacks
    def test_acceptBackoffs(self) -> Any:
        """
        A listener that cannot accept a connection because the process has
        no file descriptor left counts its pause in
        C{twsgi_accept_backoffs_total}, and accepts the connection once
        descriptors are back.
        """
        app, admin = "tcp:0:interface=127.0.0.1", "tcp:0:interface=127.0.0.1:backlog=7"
        service = yield self.startServer(
            {
                "app": "twsgi.example:app",
                "endpoint": [app],
                "metrics_endpoint": [admin],
                "access_log": "none",
            }
        )
        response, body = yield self.request(admin, "/metrics")
        self.assertEqual(samples(body.decode())[("twsgi_accept_backoffs_total", ())], 0)
        client = socket.create_connection(("127.0.0.1", self.ports[app]))
        self.addCleanup(client.close)
        restore = noDescriptorsLeft(self)
        # Until the port met the limit (read in this process: a scrape over
        # a socket needs a descriptor).
        for _ in range(500):
            yield deferLater(BACKOFF / 10)
            if scrape(service.routes.metrics)[("twsgi_accept_backoffs_total", ())]:
                break
        restore()
        client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        client.setblocking(False)
        answer = b""
        for _ in range(250):
            yield deferLater(0.02)
            try:
                answer = client.recv(12)
                break
            except BlockingIOError:
                pass
        self.assertEqual(answer, b"HTTP/1.1 200")
        response, body = yield self.request(admin, "/metrics")
        self.assertEqual(samples(body.decode())[("twsgi_accept_backoffs_total", ())], 1)

    @defer.inlineCallbacks
    def test_scrape(self) -> Any:
        """
        After requests, the scrape counts them by class with their bytes;
        while one blocks its thread, in-flight, busy threads and open
        connections show it; the admin listener's own requests are not
        counted, and it does not serve the application.
        """
        _release.clear()
        self.addCleanup(_release.set)
        app, admin = "tcp:0:interface=127.0.0.1", "tcp:0:interface=127.0.0.1:backlog=7"
        yield self.startServer(
            {
                "app": "tests.metrics.test_prometheus:statusApp",
                "endpoint": [app],
                "metrics_endpoint": [admin],
                "threads": "2:2",
                "access_log": "none",
            }
        )
        for path in ["/200", "/201", "/404", "/500"]:
            response, body = yield self.request(app, path)
        response, body = yield self.request(admin, "/readyz")
        self.assertEqual(response.code, 200)
        response, body = yield self.request(admin, "/200")
        self.assertEqual(response.code, 404)
        blocked = self.request(app, "/block")
        for _ in range(200):
            response, body = yield self.request(admin, "/metrics")
            figures = samples(body.decode())
            # In flight from the moment the I/O thread hands the request
            # over; busy once a WSGI thread has taken it: wait for both.
            if (
                figures[("twsgi_requests_in_flight", ())] == 1
                and figures[("twsgi_threadpool_threads", (("state", "busy"),))] == 1
            ):
                break
            yield deferLater(0.02)
        self.assertEqual(
            response.headers.getRawHeaders(b"content-type")[0][:10], b"text/plain"
        )
        self.assertEqual(
            requestsTotal(figures, "2xx"),
            2,
        )
        self.assertEqual(
            requestsTotal(figures, "4xx"),
            1,
        )
        self.assertEqual(
            requestsTotal(figures, "5xx"),
            1,
        )
        self.assertEqual(figures[("twsgi_request_duration_seconds_count", ())], 4)
        self.assertEqual(figures[("twsgi_response_body_bytes_total", ())], 8)
        self.assertEqual(figures[("twsgi_threadpool_threads", (("state", "busy"),))], 1)
        self.assertEqual(figures[("twsgi_threadpool_max_threads", ())], 2)
        self.assertEqual(figures[("twsgi_open_connections", ())], 1)
        self.assertEqual(figures[("twsgi_draining", ())], 0)
        _release.set()
        yield blocked
        response, body = yield self.request(admin, "/metrics")
        figures = samples(body.decode())
        self.assertEqual(figures[("twsgi_requests_in_flight", ())], 0)
        self.assertEqual(
            requestsTotal(figures, "2xx"),
            3,
        )


class _Sharing:
    """
    C{prometheus-client} in multiprocess mode in this process, over a fresh
    directory, with the process id chosen by the test: each id plays one
    worker.
    """

    def __init__(self, testCase: SynchronousTestCase) -> None:
        from prometheus_client import values

        self.pid = 101
        self.directory = tempfile.mkdtemp()
        testCase.addCleanup(shutil.rmtree, self.directory, True)
        environ = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=self.directory)
        testCase.patch(os, "environ", environ)
        valueClass = values.MultiProcessValue(lambda: self.pid)
        testCase.patch(values, "ValueClass", valueClass)
        testCase.addCleanup(valueClass.close_all_files)

    def metrics(self, pid: int, service: Any, clock: Any = None) -> Metrics:
        """
        The metrics of the worker with process id C{pid}.
        """
        self.pid = pid
        return Metrics(
            service,
            directory=self.directory,
            clock=clock if clock is not None else Clock(),
            processId=lambda: pid,
        )


def renderScrape(
    metrics: Metrics,
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """
    Render C{/metrics} as the admin listener does.
    """
    request = DummyRequest([b"metrics"])
    body = metrics.resource().render(request)
    return samples(body.decode())


class MultiprocessMetricsTests(SynchronousTestCase):
    """
    In multiprocess mode (a worker), C{/metrics} reports the sum over every
    worker sharing the directory.
    """

    def setUp(self) -> None:
        self.sharing = _Sharing(self)

    def test_detected(self) -> None:
        """
        L{multiprocessDirectory} names the directory in a worker whose
        C{prometheus-client} runs in multiprocess mode, and is C{None} in a
        single process or without multiprocess mode.
        """
        self.assertEqual(multiprocessDirectory(True), self.sharing.directory)
        self.assertIsNone(multiprocessDirectory(False))
        from prometheus_client import values

        self.patch(values, "ValueClass", values.MutexValue)
        self.assertIsNone(multiprocessDirectory(True))

    def test_singleProcess(self) -> None:
        """
        A single process keeps its own registry even when
        C{PROMETHEUS_MULTIPROC_DIR} is set.
        """
        _, service = metricsService()
        metrics = service.routes.metrics
        self.assertIsNone(metrics.directory)
        self.assertEqual(service.onStart, [])
        metrics.observe(RECORD)
        figures = renderScrape(metrics)
        self.assertEqual(
            requestsTotal(figures, "2xx"),
            1,
        )
        self.assertIn(("twsgi_open_connections", ()), figures)

    def test_sumOverWorkers(self) -> None:
        """
        Counters and the histogram are summed over every worker, including
        one that has exited; live gauges only over the live workers.
        """
        one = self.sharing.metrics(101, FakeService(FakePool(max=4, busy=1)))
        one.observe(RECORD)
        one.observe(attrs.evolve(RECORD, status=404))
        one.refresh()
        two = self.sharing.metrics(102, FakeService(FakePool(max=8, busy=2, idle=3)))
        two.observe(RECORD)
        figures = renderScrape(two)
        self.assertEqual(
            requestsTotal(figures, "2xx"),
            2,
        )
        self.assertEqual(
            requestsTotal(figures, "4xx"),
            1,
        )
        self.assertEqual(figures[("twsgi_request_duration_seconds_count", ())], 3)
        self.assertEqual(figures[("twsgi_response_body_bytes_total", ())], 39)
        self.assertEqual(figures[("twsgi_threadpool_max_threads", ())], 12)
        self.assertEqual(figures[("twsgi_threadpool_threads", (("state", "busy"),))], 3)
        self.assertEqual(figures[("twsgi_threadpool_threads", (("state", "idle"),))], 3)
        self.assertEqual(figures[("twsgi_workers", (("state", "serving"),))], 2)
        self.assertEqual(
            [
                figures[("twsgi_worker_threads_busy", (("pid", pid),))]
                for pid in ["101", "102"]
            ],
            [1, 2],
        )
        MetricsDirectory(self.sharing.directory, owned=False).workerEnded(101)
        figures = renderScrape(two)
        self.assertEqual(
            requestsTotal(figures, "2xx"),
            2,
        )
        self.assertEqual(figures[("twsgi_request_duration_seconds_count", ())], 3)
        self.assertEqual(figures[("twsgi_threadpool_max_threads", ())], 8)
        self.assertEqual(figures[("twsgi_workers", (("state", "serving"),))], 1)
        self.assertNotIn(("twsgi_worker_threads_busy", (("pid", "101"),)), figures)

    def test_folded(self) -> None:
        """
        In a directory the supervisor made, an exited worker's counters and
        histogram are folded into the C{retired} files, which keep adding
        up; the sums do not change.
        """
        directory = MetricsDirectory(self.sharing.directory, owned=True)
        for pid in [101, 102]:
            metrics = self.sharing.metrics(pid, FakeService(FakePool()))
            metrics.observe(RECORD)
            metrics.requestStuck()
        three = self.sharing.metrics(103, FakeService(FakePool()))
        three.observe(attrs.evolve(RECORD, status=500))

        def summed() -> dict[Any, float]:
            return {
                key: value
                for key, value in renderScrape(three).items()
                if not key[0].startswith("twsgi_worker_")
            }

        before = summed()
        directory.workerEnded(101)
        directory.workerEnded(102)
        self.assertEqual(summed(), before)
        self.assertEqual(before[("twsgi_requests_stuck_total", ())], 2)
        self.assertEqual(
            requestsTotal(before, "2xx"),
            2,
        )
        self.assertEqual(
            sorted(os.listdir(self.sharing.directory)),
            [
                "counter_103.db",
                "counter_retired.db",
                "gauge_liveall_103.db",
                "gauge_livemin_103.db",
                "gauge_livesum_103.db",
                "histogram_103.db",
                "histogram_retired.db",
                "twsgi.lock",
            ],
        )

    def test_emptyFiles(self) -> None:
        """
        A file C{prometheus-client} has created but not yet sized (or that a
        worker killed at that moment left) is skipped by scrapes and removed
        when its worker has ended.
        """
        metrics = self.sharing.metrics(101, FakeService(FakePool()))
        metrics.observe(RECORD)
        for name in ["counter_999.db", "histogram_999.db", "gauge_livesum_999.db"]:
            open(os.path.join(self.sharing.directory, name), "w").close()
        figures = renderScrape(metrics)
        self.assertEqual(
            requestsTotal(figures, "2xx"),
            1,
        )
        MetricsDirectory(self.sharing.directory, owned=True).workerEnded(999)
        self.assertEqual(
            [n for n in os.listdir(self.sharing.directory) if "999" in n], []
        )
        self.assertEqual(renderScrape(metrics), figures)

    def test_draining(self) -> None:
        """
        C{twsgi_draining} is 1 only when every live worker drains; the
        workers that drain are counted apart.
        """
        self.sharing.metrics(101, FakeService(FakePool(), draining=True)).refresh()
        service = FakeService(FakePool())
        two = self.sharing.metrics(102, service)
        figures = renderScrape(two)
        self.assertEqual(figures[("twsgi_draining", ())], 0)
        self.assertEqual(figures[("twsgi_workers", (("state", "draining"),))], 1)
        self.assertEqual(figures[("twsgi_workers", (("state", "serving"),))], 1)
        service.draining = True
        figures = renderScrape(two)
        self.assertEqual(figures[("twsgi_draining", ())], 1)
        self.assertEqual(figures[("twsgi_workers", (("state", "draining"),))], 2)

    def test_refreshLoop(self) -> None:
        """
        Once started, a worker writes its live figures at once and every
        C{refreshInterval} seconds on its clock, until it stops.
        """
        clock = Clock()
        pool = FakePool(max=4, busy=1)
        metrics = self.sharing.metrics(101, FakeService(pool), clock)
        self.assertEqual(scrape(metrics)[("twsgi_threadpool_max_threads", ())], 0)
        metrics.start()
        figures = scrape(metrics)
        self.assertEqual(figures[("twsgi_threadpool_max_threads", ())], 4)
        self.assertEqual(figures[("twsgi_threadpool_threads", (("state", "busy"),))], 1)
        pool.busy = 3
        clock.advance(metrics.refreshInterval / 2)
        figures = scrape(metrics)
        self.assertEqual(figures[("twsgi_threadpool_threads", (("state", "busy"),))], 1)
        clock.advance(metrics.refreshInterval / 2)
        figures = scrape(metrics)
        self.assertEqual(figures[("twsgi_threadpool_threads", (("state", "busy"),))], 3)
        metrics.stop()
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_stopLeavesCounters(self) -> None:
        """
        A worker that stops takes its live gauges out of the sums, and its
        counters stay in them.
        """
        metrics = self.sharing.metrics(101, FakeService(FakePool(max=4)))
        metrics.observe(RECORD)
        metrics.start()
        metrics.stop()
        figures = scrape(metrics)
        self.assertNotIn(("twsgi_threadpool_max_threads", ()), figures)
        self.assertEqual(
            requestsTotal(figures, "2xx"),
            1,
        )

    def test_inFlight(self) -> None:
        """
        Requests in flight are written to the directory as they enter and
        leave.
        """
        metrics = self.sharing.metrics(101, FakeService(FakePool()))
        wrapped = metrics.wrap(Data(b"x", "text/plain"))
        requests = [DummyRequest([b""]) for _ in range(2)]
        for request in requests:
            wrapped.render(request)
        self.assertEqual(scrape(metrics)[("twsgi_requests_in_flight", ())], 2)
        requests[0].finish()
        self.assertEqual(scrape(metrics)[("twsgi_requests_in_flight", ())], 1)

    def test_inFlightHotPath(self) -> None:
        """
        A request on the HTTP/1.1 hot path (an exchange, not a
        C{twisted.web} request) is in flight from its dispatch until its
        exchange ends.
        """
        metrics = self.sharing.metrics(101, FakeService(FakePool()))
        dispatched: list[Any] = []

        class App(Resource):
            def exchangeTarget(self, path: bytes) -> Any:
                return dispatched.append if path == b"/app" else None

        class Exchange:
            def __init__(self) -> None:
                self.ended: list[Any] = []

            def whenEnded(self, callback: Any) -> None:
                self.ended.append(callback)

        wrapped = metrics.wrap(App())
        self.assertIsNone(wrapped.exchangeTarget(b"/other"))  # type: ignore[attr-defined]
        target = wrapped.exchangeTarget(b"/app")  # type: ignore[attr-defined]
        exchange = Exchange()
        target(exchange)
        self.assertEqual(dispatched, [exchange])
        self.assertEqual(scrape(metrics)[("twsgi_requests_in_flight", ())], 1)
        [ended] = exchange.ended
        ended()
        self.assertEqual(scrape(metrics)[("twsgi_requests_in_flight", ())], 0)

    def test_stuck(self) -> None:
        """
        Requests past C{--request-timeout} are counted, summed over workers.
        """
        self.sharing.metrics(101, FakeService(FakePool())).requestStuck()
        two = self.sharing.metrics(102, FakeService(FakePool()))
        two.requestStuck()
        self.assertEqual(scrape(two)[("twsgi_requests_stuck_total", ())], 2)


class MetricsDirectoryTests(SynchronousTestCase):
    """
    L{MetricsDirectory}: the supervisor's side of the shared directory.
    """

    def test_private(self) -> None:
        """
        Without C{PROMETHEUS_MULTIPROC_DIR}, a new directory only its owner
        can read is made, given to workers, and removed on close.
        """
        directory = MetricsDirectory.prepare({})
        self.addCleanup(shutil.rmtree, directory.path, True)
        self.assertTrue(directory.owned)
        self.assertEqual(os.stat(directory.path).st_mode & 0o777, 0o700)
        self.assertEqual(
            directory.environment(), {"PROMETHEUS_MULTIPROC_DIR": directory.path}
        )
        directory.close()
        self.assertFalse(os.path.exists(directory.path))

    def test_operators(self) -> None:
        """
        The operator's C{PROMETHEUS_MULTIPROC_DIR} is used and never removed.
        """
        path = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, path, True)
        directory = MetricsDirectory.prepare({"PROMETHEUS_MULTIPROC_DIR": path})
        self.assertEqual((directory.path, directory.owned), (path, False))
        directory.close()
        self.assertTrue(os.path.isdir(path))

    def test_notADirectory(self) -> None:
        """
        A C{PROMETHEUS_MULTIPROC_DIR} that is not a directory is refused.
        """
        e = self.assertRaises(
            ValueError,
            MetricsDirectory.prepare,
            {"PROMETHEUS_MULTIPROC_DIR": "/nonexistent/twsgi"},
        )
        self.assertEqual(
            str(e), "PROMETHEUS_MULTIPROC_DIR '/nonexistent/twsgi' is not a directory"
        )

    def test_workerEnded(self) -> None:
        """
        In the operator's directory, a worker that ended loses its live gauge
        files, and keeps its counter, histogram and other gauge files.
        """
        path = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, path, True)
        names = [
            "counter_7.db",
            "histogram_7.db",
            "gauge_livesum_7.db",
            "gauge_livemin_7.db",
            "gauge_all_7.db",
            "gauge_livesum_8.db",
        ]
        for name in names:
            open(os.path.join(path, name), "w").close()
        MetricsDirectory(path, owned=False).workerEnded(7)
        self.assertEqual(
            sorted(os.listdir(path)),
            ["counter_7.db", "gauge_all_7.db", "gauge_livesum_8.db", "histogram_7.db"],
        )


def neverBlock(testCase: SynchronousTestCase) -> None:
    """
    Make a blocking C{flock} in L{twsgi.metrics.prometheus} fail the test when the
    lock is taken, instead of hanging it.
    """
    import fcntl

    from twsgi.metrics import prometheus as _metrics

    real = fcntl.flock

    def flock(fd: int, operation: int) -> None:
        if not operation & (fcntl.LOCK_NB | fcntl.LOCK_UN):
            try:
                real(fd, operation | fcntl.LOCK_NB)
            except BlockingIOError:
                testCase.fail("the I/O thread would wait for the metrics lock")
            return
        real(fd, operation)

    testCase.patch(_metrics.fcntl, "flock", flock)


class LockTests(SynchronousTestCase):
    """
    The lock of a directory the supervisor made never makes the I/O thread
    wait: a worker stopped mid-scrape (holding it shared) or a fold (holding
    it exclusively) delays the other side, which tries again on a later
    reactor turn, a bounded number of times.
    """

    def setUp(self) -> None:
        import fcntl

        self.sharing = _Sharing(self)
        path = os.path.join(self.sharing.directory, "twsgi.lock")
        self.lockFile = open(path, "wb")
        self.addCleanup(self.lockFile.close)
        self.flock = fcntl.flock
        neverBlock(self)

    def hold(self, exclusive: bool) -> None:
        """
        Take the directory's lock as another process would.
        """
        import fcntl

        self.flock(
            self.lockFile.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        )

    def release(self) -> None:
        import fcntl

        self.flock(self.lockFile.fileno(), fcntl.LOCK_UN)

    def test_scrapeWaitsForFold(self) -> None:
        """
        A scrape while the supervisor folds is answered on a later reactor
        turn, once the lock is free.
        """
        from twisted.web.server import NOT_DONE_YET

        clock = Clock()
        metrics = self.sharing.metrics(101, FakeService(FakePool()), clock)
        metrics.observe(RECORD)
        self.hold(exclusive=True)
        request = DummyRequest([b"metrics"])
        self.assertEqual(metrics.resource().render(request), NOT_DONE_YET)
        clock.advance(0.1)
        self.assertEqual(request.finished, 0)
        self.release()
        clock.advance(0.1)
        self.assertEqual(request.finished, 1)
        figures = samples(b"".join(request.written).decode())
        self.assertEqual(
            requestsTotal(figures, "2xx"),
            1,
        )

    def test_scrapeGivesUp(self) -> None:
        """
        A scrape that cannot take the lock within about a second is
        answered 503, with one log line.
        """
        clock = Clock()
        metrics = self.sharing.metrics(101, FakeService(FakePool()), clock)
        self.hold(exclusive=True)
        request = DummyRequest([b"metrics"])
        metrics.resource().render(request)
        clock.pump([0.1] * 30)
        self.assertEqual((request.finished, request.responseCode), (1, 503))
        self.assertIn(b"busy", b"".join(request.written))

    def test_scrapeClientGone(self) -> None:
        """
        A scrape whose client goes away while it waits for the lock is not
        answered.
        """
        clock = Clock()
        metrics = self.sharing.metrics(101, FakeService(FakePool()), clock)
        self.hold(exclusive=True)
        request = DummyRequest([b"metrics"])
        metrics.resource().render(request)
        request.processingFailed(Failure(ConnectionDone()))
        self.release()
        clock.pump([0.1] * 30)
        self.assertEqual((request.finished, request.written), (0, []))

    def test_foldWaitsForScrape(self) -> None:
        """
        An exited worker's files are folded on a later reactor turn when a
        scrape holds the lock, and left as they are (still counted) if it
        stays held.
        """
        clock = Clock()
        metrics = self.sharing.metrics(101, FakeService(FakePool()))
        metrics.observe(RECORD)
        directory = MetricsDirectory(self.sharing.directory, owned=True)
        self.hold(exclusive=False)
        directory.workerEnded(101, clock)
        self.assertIn("counter_101.db", os.listdir(self.sharing.directory))
        self.release()
        clock.advance(1)
        self.assertNotIn("counter_101.db", os.listdir(self.sharing.directory))
        self.assertIn("counter_retired.db", os.listdir(self.sharing.directory))
        self.hold(exclusive=False)
        two = self.sharing.metrics(102, FakeService(FakePool()))
        two.observe(RECORD)
        directory.workerEnded(102, clock)
        clock.pump([1] * 30)
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertIn("counter_102.db", os.listdir(self.sharing.directory))
        self.release()
        self.assertEqual(
            renderScrape(two)[
                (
                    "twsgi_requests_total",
                    (("protocol", "HTTP/1.1"), ("status_class", "2xx")),
                )
            ],
            2,
        )


class SupervisorDirectoryTests(SynchronousTestCase):
    """
    A supervisor with metrics gives its workers the directory, marks each
    one dead when it ends, and removes the directory when it has stopped.
    """

    def test_lifecycle(self) -> None:
        """
        Every worker's environment names the directory; an ended worker's
        live gauges leave it; a stopped supervisor removes it.
        """
        from twsgi.config.model import ServerConfig
        from twsgi.process.build import supervisorFromConfig

        directory = MetricsDirectory.prepare({})
        self.addCleanup(shutil.rmtree, directory.path, True)
        reactor = SpawningReactor()
        supervisor = supervisorFromConfig(
            ServerConfig(endpoint=("tcp:0:interface=127.0.0.1",), workers=2),
            reactor,
            {},
            handleSignals=False,
            metricsDirectory=directory,
        )
        supervisor.startService()
        self.assertEqual(
            [kw["env"]["PROMETHEUS_MULTIPROC_DIR"] for kw in reactor.spawned],
            [directory.path] * 2,
        )
        first = supervisor.workers[0]
        open(os.path.join(directory.path, "gauge_livesum_1001.db"), "w").close()
        first.ready = True
        supervisor.workerEnded(first, 0, 9)
        self.assertEqual(os.listdir(directory.path), ["twsgi.lock"])
        stopped = supervisor.stopService()
        for worker in list(supervisor.workers):
            supervisor.workerEnded(worker, 0, None)
            worker.whenEnded.callback(0)
        self.successResultOf(stopped)
        self.assertFalse(os.path.exists(directory.path))

    def test_badDirectory(self) -> None:
        """
        With metrics, a C{PROMETHEUS_MULTIPROC_DIR} that is not a directory
        stops C{--workers} at startup with one line.
        """
        self.patch(
            os, "environ", dict(os.environ, PROMETHEUS_MULTIPROC_DIR="/nonexistent/x")
        )
        error = self.assertRaises(
            SystemExit,
            makeService,
            {
                "app": "twsgi.example:app",
                "endpoint": ["tcp:0:interface=127.0.0.1"],
                "metrics_endpoint": ["tcp:0:interface=127.0.0.1:backlog=9"],
                "workers": "2",
            },
            SynchronousReactor(),
        )
        self.assertEqual(
            str(error),
            "twsgi: --metrics-endpoint: PROMETHEUS_MULTIPROC_DIR "
            "'/nonexistent/x' is not a directory",
        )


class StuckMetricTests(SynchronousTestCase):
    """
    The C{--request-timeout} watchdog's stuck requests, the requests
    refused for C{--max-pending} and a worker's pauses in accepting are
    counters.
    """

    def counted(self, setting: str, name: str, count: Any) -> None:
        """
        A service with the metrics and C{setting} (C{"5"}) counts in C{name}
        each call of C{count} (given the service), from 0.
        """
        _, service = metricsService(**{setting: "5"})
        metrics = service.routes.metrics
        self.assertEqual(scrape(metrics)[(name, ())], 0)
        count(service)
        count(service)
        self.assertEqual(scrape(metrics)[(name, ())], 2)

    def test_counted(self) -> None:
        """
        Each request the watchdog reports stuck adds one to
        C{twsgi_requests_stuck_total}, which is 0 before any.
        """
        self.counted(
            "request_timeout",
            "twsgi_requests_stuck_total",
            lambda service: service.resource.watchdog.onStuck(),
        )

    def test_refusedCounted(self) -> None:
        """
        Each request answered 503 because C{--max-pending} requests already
        wait for a thread (see L{twsgi.wsgi.overload.OverloadLog}) adds one
        to C{twsgi_requests_refused_total}, which is 0 before any.
        """
        self.counted(
            "max_pending",
            "twsgi_requests_refused_total",
            lambda service: service.resource.overloadLog.refusing(5, 5),
        )

    def test_pausesCounted(self) -> None:
        """
        Each time the connection gate stops accepting until a WSGI thread is
        free (see L{twsgi.server.ports.ConnectionGate}) adds one to
        C{twsgi_accept_pauses_total}, which is 0 before any.
        """
        self.counted(
            "max_connections",
            "twsgi_accept_pauses_total",
            lambda service: service.gate.onPause(),
        )


class StreamResetMetricTests(SynchronousTestCase):
    """
    The HTTP/2 streams reset on the application listeners are counted in
    C{twsgi_http2_stream_resets_total}, by who reset them and the code.
    """

    def test_counted(self) -> None:
        """
        Each reset an application listener's site is told of adds one under
        C{by} (C{server} or C{client}) and the code's name (C{unknown} for
        a code RFC 9113 does not define); an admin listener's site counts
        none.
        """
        config, service = metricsService()
        metrics = service.routes.metrics
        site = service.makeSite(config.endpoint[0])
        for byClient, code in [
            (False, 7),
            (False, 7),
            (False, 0),
            (True, 8),
            (True, 0x1234),
        ]:
            site.onStreamReset(byClient, code)
        self.assertIsNone(service.makeSite(config.metrics_endpoint[0]).onStreamReset)
        figures = {
            labels: value
            for (name, labels), value in scrape(metrics).items()
            if name == "twsgi_http2_stream_resets_total"
        }
        self.assertEqual(
            figures,
            {
                (("by", "server"), ("code", "REFUSED_STREAM")): 2,
                (("by", "server"), ("code", "NO_ERROR")): 1,
                (("by", "client"), ("code", "CANCEL")): 1,
                (("by", "client"), ("code", "unknown")): 1,
            },
        )


_COUNTING_APP = """
import os
from prometheus_client import Counter

hits = Counter("wapp_hits", "Requests the application saw.")

def app(environ, start_response):
    hits.inc()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"%d" % os.getpid()]
"""


class WorkerMetricsTests(SynchronousTestCase):
    """
    With C{--workers 2}, every scrape reports the sum over the workers, and
    totals survive a crashed worker and a reload.
    """

    def test_aggregated(self) -> None:
        """
        Whichever worker answers, C{/metrics} counts every request served by
        either worker; a worker killed with SIGKILL or replaced on SIGHUP
        leaves its counts in the totals and its live gauges out of the sums;
        the application's own prometheus-client counters are summed too;
        the supervisor removes its directory when it stops.
        """
        from tests.helpers.workers import SupervisedServer

        admin = "tcp:0:interface=127.0.0.1:backlog=9"
        server = SupervisedServer(
            self,
            "--workers",
            "2",
            "--threads",
            "2:5",
            "--metrics-endpoint",
            admin,
            app=_COUNTING_APP,
        )
        server.start(2)
        match = server.waitFor(
            lambda: re.search(
                rb"listening on http://127\.0\.0\.1:(\d+) \("
                + re.escape(admin.encode()),
                server.output(),
            )
        )
        assert isinstance(match, re.Match)
        adminPort = int(match.group(1))

        def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
            # A worker that finishes draining drops the admin connections it
            # has accepted and not answered yet; ask again then.
            for _ in range(5):
                connection = http.client.HTTPConnection(
                    "127.0.0.1", adminPort, timeout=10
                )
                try:
                    connection.request("GET", "/metrics")
                    response = connection.getresponse()
                    self.assertEqual(response.status, 200)
                    return samples(response.read().decode())
                except (http.client.RemoteDisconnected, ConnectionResetError):
                    continue
                finally:
                    connection.close()
            raise AssertionError("five scrapes in a row were dropped")

        def total(figures: dict[Any, float]) -> float:
            return figures.get(
                (
                    "twsgi_requests_total",
                    (("protocol", "HTTP/1.1"), ("status_class", "2xx")),
                ),
                0,
            )

        def workers(figures: dict[Any, float]) -> set[int]:
            return {
                int(dict(labels)["pid"])
                for name, labels in figures
                if name == "twsgi_worker_requests_in_flight"
            }

        served: dict[bytes, int] = {}
        for _ in range(400):
            status, body = server.get()
            self.assertEqual(status, 200)
            served[body] = served.get(body, 0) + 1
            if len(served) == 2 and sum(served.values()) >= 10:
                break
        self.assertEqual(len(served), 2)
        sent = sum(served.values())

        def counted(n: int) -> bool:
            # A worker counts a request once its response is sent (its
            # WSGI thread may send it, and the I/O thread count it right
            # after): the client can ask before.  Never more than n.
            figures = scrape()
            self.assertLessEqual(total(figures), n)
            return total(figures) == n

        server.waitFor(lambda: counted(sent))
        for _ in range(6):
            figures = scrape()
            self.assertEqual(total(figures), sent)
            # The application's own prometheus-client metrics are summed too.
            self.assertEqual(figures[("wapp_hits_total", ())], sent)
            self.assertEqual(
                figures[("twsgi_request_duration_seconds_count", ())], sent
            )
            self.assertEqual(figures[("twsgi_threadpool_max_threads", ())], 10)
            self.assertEqual(workers(figures), server.workerPids())
            self.assertEqual(figures[("twsgi_workers", (("state", "serving"),))], 2)
        with open(f"/proc/{min(server.workerPids())}/environ", "rb") as f:
            environ = dict(
                line.split(b"=", 1) for line in f.read().split(b"\0") if b"=" in line
            )
        directory = environ[b"PROMETHEUS_MULTIPROC_DIR"].decode()
        self.addCleanup(shutil.rmtree, directory, True)
        self.assertTrue(os.path.isdir(directory))
        totals = []

        def replacedAndSummed(gone: set[int]) -> bool:
            # The workers first: once the replacement runs, the supervisor
            # has taken the exited worker out of the live sums.
            pids = server.workerPids()
            figures = scrape()
            totals.append(total(figures))
            if len(pids) != 2 or pids & gone:
                return False
            return figures.get(("twsgi_workers", (("state", "serving"),))) == 2

        victim = min(server.workerPids())
        os.kill(victim, signal.SIGKILL)
        server.waitFor(lambda: replacedAndSummed({victim}))
        figures = scrape()
        self.assertEqual(total(figures), sent)
        self.assertEqual(figures[("twsgi_threadpool_max_threads", ())], 10)
        self.assertEqual(workers(figures), server.workerPids())

        before = server.workerPids()
        server.signal(signal.SIGHUP)
        server.waitFor(lambda: replacedAndSummed(before), timeout=30)
        self.assertEqual(set(totals), {sent})
        # The exited workers' counts were folded into the "retired" files.
        self.assertEqual(
            sorted(name for name in os.listdir(directory) if name[0] in "ch"),
            sorted(
                f"{kind}_{pid}.db"
                for kind in ["counter", "histogram"]
                for pid in [*server.workerPids(), "retired"]
            ),
        )
        self.assertEqual(server.get()[0], 200)
        server.waitFor(lambda: counted(sent + 1))
        for _ in range(3):
            figures = scrape()
            self.assertEqual(total(figures), sent + 1)
            self.assertEqual(figures[("wapp_hits_total", ())], sent + 1)
            self.assertEqual(figures[("twsgi_threadpool_max_threads", ())], 10)
            self.assertEqual(workers(figures), server.workerPids())

        server.signal(signal.SIGTERM)
        self.assertEqual(server.process.wait(20), 0)
        self.assertFalse(os.path.exists(directory))
