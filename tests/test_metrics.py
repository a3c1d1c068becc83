"""
Tests for L{twsgi._metrics}: what C{/metrics} reports.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import attrs
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase, TestCase

from twsgi._config import ConfigError, resolveConfig
from twsgi._metrics import Metrics
from twsgi._tap import serviceFromConfig

from .inmemory import ImmediateReactor
from .test_accessformat import RECORD
from .test_health import FakePool, FakeService
from .test_health_real import RealServerMixin, deferLater


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """
    The samples of a Prometheus text exposition, by name and labels.
    """
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client import generate_latest

    return samples(generate_latest(metrics.registry).decode())


class MetricsUnitTests(SynchronousTestCase):
    """
    L{Metrics} counts access records and reads live figures at each scrape.
    """

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
            figures[("twsgi_requests_total", (("status_class", "2xx"),))], 1
        )
        self.assertEqual(
            figures[("twsgi_requests_total", (("status_class", "5xx"),))], 1
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
            ("twsgi_requests_total", (("status_class", "2xx"),)), scrape(two)
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
            ConfigError, serviceFromConfig, config, ImmediateReactor()
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
                "app": "tests.test_metrics:statusApp",
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
            figures[("twsgi_requests_total", (("status_class", "2xx"),))], 2
        )
        self.assertEqual(
            figures[("twsgi_requests_total", (("status_class", "4xx"),))], 1
        )
        self.assertEqual(
            figures[("twsgi_requests_total", (("status_class", "5xx"),))], 1
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
            figures[("twsgi_requests_total", (("status_class", "2xx"),))], 3
        )
