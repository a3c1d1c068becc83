# -*- test-case-name: tests.test_metrics -*-
"""
Prometheus metrics (the C{metrics} extra: C{prometheus-client}).

C{--metrics-endpoint ENDPOINT} opens an admin listener that answers
C{/metrics} (and the health paths) on the I/O thread.  What it reports:

  - C{twsgi_requests_total{status_class="2xx"}}, the latency histogram
    C{twsgi_request_duration_seconds}, and body bytes in and out
    (C{twsgi_request_body_bytes_total}, C{twsgi_response_body_bytes_total}),
    all from the access records of the application listeners;
  - C{twsgi_requests_in_flight}, counted as requests enter and leave the
    application listeners;
  - at each scrape: the WSGI pool's C{twsgi_threadpool_threads{state}}
    (busy, idle), C{twsgi_threadpool_queue_depth} and
    C{twsgi_threadpool_max_threads}; C{twsgi_open_connections}; and
    C{twsgi_draining} (1 while the server drains).

Each service has its own registry, so several services (or tests) in one
process do not mix their figures.  With C{--workers}, each worker process
reports its own figures; aggregating them is not done yet.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from twisted.web.resource import Resource

from ._accesslog import AccessRecord
from ._health import poolStats


class MetricsUnavailable(Exception):
    """
    C{prometheus-client} is not installed.
    """


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError:
        raise MetricsUnavailable(
            "metrics need prometheus-client: pip install 'twsgi[metrics]'"
        )
    return prometheus_client


def _sites(service: Any) -> list[Any]:
    """
    The application sites of a service, behind any wrapping factory (the
    C{haproxy:} endpoint wraps them).
    """
    sites = getattr(service, "sites", None)
    if sites is not None:
        return list(sites)
    found = []
    for port in getattr(service, "ports", ()):
        factory = getattr(port, "factory", None)
        while factory is not None and not hasattr(factory, "connections"):
            factory = getattr(factory, "wrappedFactory", None)
        if factory is not None:
            found.append(factory)
    return found


def _count(connections: Any) -> int:
    try:
        return len(connections)
    except TypeError:
        return int(getattr(connections, "count", 0))


class _LiveCollector:
    """
    The figures read at each scrape.  Called in the I/O thread.
    """

    def __init__(self, metrics: Metrics, service: Any) -> None:
        self.metrics = metrics
        self.service = service

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        service = self.service
        yield GaugeMetricFamily(
            "twsgi_requests_in_flight",
            "Requests received and not yet finished.",
            value=self.metrics.inFlight,
        )
        stats = poolStats(service.threadpool)
        threads = GaugeMetricFamily(
            "twsgi_threadpool_threads",
            "WSGI threads, by state.",
            labels=["state"],
        )
        threads.add_metric(["busy"], stats.busy)
        threads.add_metric(["idle"], stats.idle)
        yield threads
        yield GaugeMetricFamily(
            "twsgi_threadpool_queue_depth",
            "Requests waiting for a WSGI thread.",
            value=stats.backlog,
        )
        yield GaugeMetricFamily(
            "twsgi_threadpool_max_threads",
            "The most WSGI threads the pool may have.",
            value=stats.maximum,
        )
        admin = set(getattr(service, "adminDescriptions", ()))
        yield GaugeMetricFamily(
            "twsgi_open_connections",
            "Open client connections on the application listeners.",
            value=sum(
                _count(site.connections)
                for site in _sites(service)
                if getattr(site, "listener", None) not in admin
            ),
        )
        yield GaugeMetricFamily(
            "twsgi_draining",
            "1 while the server drains before it stops, else 0.",
            value=1 if getattr(service, "draining", False) else 0,
        )


class Metrics:
    """
    The metrics of one L{TwsgiService}.

    @ivar registry: its own C{CollectorRegistry}.
    @ivar inFlight: requests in the application listeners now.
    """

    def __init__(self, service: Any) -> None:
        """
        @raise MetricsUnavailable: without C{prometheus-client}.
        """
        prometheus = _prometheus()
        self.registry = prometheus.CollectorRegistry()
        self.requests = prometheus.Counter(
            "twsgi_requests",
            "Finished requests, by status class.",
            ["status_class"],
            registry=self.registry,
        )
        self.duration = prometheus.Histogram(
            "twsgi_request_duration_seconds",
            "Seconds from the request line to the end of the response.",
            registry=self.registry,
        )
        self.received = prometheus.Counter(
            "twsgi_request_body_bytes",
            "Request body bytes read.",
            registry=self.registry,
        )
        self.sent = prometheus.Counter(
            "twsgi_response_body_bytes",
            "Response body bytes sent.",
            registry=self.registry,
        )
        self.inFlight = 0
        self.registry.register(_LiveCollector(self, service))

    def observe(self, record: AccessRecord) -> None:
        """
        An access-log observer: count one finished request.  Called in the
        I/O thread.
        """
        self.requests.labels(f"{record.status // 100}xx").inc()
        self.duration.observe(record.duration)
        self.received.inc(record.bytesReceived)
        self.sent.inc(record.bytesSent)

    def wrap(self, resource: Resource) -> Resource:
        """
        Count the requests in flight through C{resource}.
        """
        return _Counting(self, resource)

    def resource(self) -> Resource:
        """
        The C{/metrics} resource.
        """
        return _MetricsResource(self)


class _Counting(Resource):
    """
    A leaf that counts requests in flight, then renders the wrapped root.
    Called in the I/O thread.
    """

    isLeaf = True

    def __init__(self, metrics: Metrics, wrapped: Resource) -> None:
        Resource.__init__(self)
        self.metrics = metrics
        self.wrapped = wrapped

    def render(self, request: Any) -> Any:
        metrics = self.metrics
        metrics.inFlight += 1

        def done(result: Any) -> None:
            metrics.inFlight -= 1

        request.notifyFinish().addBoth(done)
        return self.wrapped.render(request)


class _MetricsResource(Resource):
    """
    C{/metrics} in the Prometheus text format.  Rendered in the I/O thread.
    """

    isLeaf = True

    def __init__(self, metrics: Metrics) -> None:
        Resource.__init__(self)
        self.metrics = metrics

    def render_GET(self, request: Any) -> bytes:
        prometheus = _prometheus()
        body: bytes = prometheus.generate_latest(self.metrics.registry)
        request.setHeader(b"content-type", prometheus.CONTENT_TYPE_LATEST.encode())
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"content-length", b"%d" % len(body))
        return b"" if request.method == b"HEAD" else body

    render_HEAD = render_GET


__all__ = ["Metrics", "MetricsUnavailable"]
