# -*- test-case-name: tests.metrics.test_prometheus -*-
"""
Prometheus metrics (the C{metrics} extra: C{prometheus-client}).

C{--metrics-endpoint ENDPOINT} opens an admin listener that answers
C{/metrics} (and the health paths) on the I/O thread.  What it reports:

  - C{twsgi_requests_total{status_class="2xx",protocol="HTTP/2.0"}}, the
    latency histogram
    C{twsgi_request_duration_seconds}, and body bytes in and out
    (C{twsgi_request_body_bytes_total}, C{twsgi_response_body_bytes_total}),
    all from the access records of the application listeners;
  - C{twsgi_requests_stuck_total}, requests that ran past
    C{--request-timeout};
  - C{twsgi_requests_in_flight}, counted as requests enter and leave the
    application listeners;
  - the WSGI pool's C{twsgi_threadpool_threads{state}} (busy, idle),
    C{twsgi_threadpool_queue_depth} and C{twsgi_threadpool_max_threads};
    C{twsgi_open_connections}; and C{twsgi_draining} (1 while the server
    drains).

In one process, each service has its own registry, so several services (or
tests) in one process do not mix their figures, and the live figures are
read at each scrape.

With C{--workers N}, the supervisor gives its workers one directory for
C{prometheus-client}'s multiprocess mode (L{MetricsDirectory}): each worker
writes its figures there, and whichever worker answers a scrape reports the
sum over every worker.  Counters and the histogram of workers that have
exited stay in the sum, so totals never go backwards across reloads,
recycling or crashes; the live figures are gauges summed over the live
workers only, which each worker refreshes every
L{Metrics.refreshInterval} seconds and right before it answers a scrape.
C{twsgi_workers{state}} counts the live workers, and
C{twsgi_worker_threads_busy{pid}} and C{twsgi_worker_requests_in_flight{pid}}
break the live figures down by worker.
"""

from __future__ import annotations

import fcntl
import glob
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

import attrs
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from twsgi.http.h2frames import ErrorCode
from twsgi.logs.accesslog import AccessRecord, headerless
from twsgi.logs.clock import Clock, DelayedCall
from twsgi.logs.periodic import repeating
from twsgi.wsgi.pool import poolStats

if TYPE_CHECKING:
    from prometheus_client import Gauge
    from prometheus_client.core import Metric

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"

# In a directory the supervisor made: scrapes hold this file's lock shared,
# the supervisor holds it exclusively while it folds an exited worker's
# files into the "retired" ones.
_LOCK = "twsgi.lock"
_SUMMED = ("counter", "histogram", "summary")
_RETIRED = "retired"
# The I/O thread never waits for the lock: who finds it taken tries again
# this many times, this many seconds apart, then gives up.
_LOCK_TRIES = 20
_LOCK_RETRY = 0.05

_log = Logger(namespace="twsgi")


class _LockBusy(Exception):
    """
    Another process holds the lock of the shared directory.
    """


class MetricsUnavailable(Exception):
    """
    C{prometheus-client} is not installed.
    """


def _prometheus() -> ModuleType:
    try:
        import prometheus_client
    except ImportError:
        raise MetricsUnavailable(
            "metrics need prometheus-client: pip install 'twsgi[metrics]'"
        )
    return prometheus_client


class Measured(Protocol):
    """
    What the metrics read of a service (a L{twsgi.TwsgiService}): its
    thread pool and its reactor; its C{sites} (or C{ports}),
    C{adminDescriptions}, C{draining} and C{retiring} if it has them.
    """

    @property
    def threadpool(self) -> object: ...

    @property
    def reactor(self) -> Clock: ...


def _sites(service: object) -> list[Any]:
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


@attrs.frozen
class LiveFigures:
    """
    What a service's pool, listeners and drain look like now.

    @ivar busy: WSGI threads running a request.
    @ivar idle: WSGI threads waiting for one.
    @ivar queued: requests waiting for a thread.
    @ivar maxThreads: the most threads the pool may have.
    @ivar connections: open connections on the application listeners.
    @ivar draining: the service drains before it stops (or, a worker,
        retires).
    """

    busy: int
    idle: int
    queued: int
    maxThreads: int
    connections: int
    draining: bool

    @classmethod
    def read(cls, service: Measured) -> LiveFigures:
        """
        Read them from C{service}.  Called in the I/O thread.
        """
        stats = poolStats(service.threadpool)
        admin = set(getattr(service, "adminDescriptions", ()))
        return cls(
            busy=stats.busy,
            idle=stats.idle,
            queued=stats.backlog,
            maxThreads=stats.maximum,
            connections=sum(
                _count(site.connections)
                for site in _sites(service)
                if getattr(site, "listener", None) not in admin
            ),
            # A retiring worker leaves readiness alone but drains all the same.
            draining=bool(
                getattr(service, "draining", False)
                or getattr(service, "retiring", False)
            ),
        )


_PROTOCOLS = frozenset({"HTTP/1.0", "HTTP/1.1", "HTTP/2.0"})
"""
The values of the C{protocol} label.  A refused request's protocol is what
its client wrote as its version, anything: as a label value it would make
a new series for each, which the registry keeps for ever.
"""

_HELP = {
    "twsgi_requests_in_flight": "Requests received and not yet finished.",
    "twsgi_threadpool_threads": "WSGI threads, by state.",
    "twsgi_threadpool_queue_depth": "Requests waiting for a WSGI thread.",
    "twsgi_threadpool_max_threads": "The most WSGI threads the pool may have.",
    "twsgi_open_connections": "Open client connections on the application listeners.",
    "twsgi_draining": "1 while the server drains before it stops, else 0.",
    "twsgi_workers": "Live worker processes, by state (serving, draining).",
    "twsgi_worker_threads_busy": "WSGI threads running a request, by worker.",
    "twsgi_worker_requests_in_flight": "Requests in flight, by worker.",
}


class _LiveCollector:
    """
    The figures read at each scrape, in one process.  Called in the I/O
    thread.
    """

    def __init__(self, metrics: Metrics, service: Measured) -> None:
        self.metrics = metrics
        self.service = service

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        def gauge(name: str, value: float) -> Metric:
            return GaugeMetricFamily(name, _HELP[name], value=value)

        figures = LiveFigures.read(self.service)
        yield gauge("twsgi_requests_in_flight", self.metrics.inFlight)
        threads = GaugeMetricFamily(
            "twsgi_threadpool_threads",
            _HELP["twsgi_threadpool_threads"],
            labels=["state"],
        )
        threads.add_metric(["busy"], figures.busy)
        threads.add_metric(["idle"], figures.idle)
        yield threads
        yield gauge("twsgi_threadpool_queue_depth", figures.queued)
        yield gauge("twsgi_threadpool_max_threads", figures.maxThreads)
        yield gauge("twsgi_open_connections", figures.connections)
        yield gauge("twsgi_draining", 1 if figures.draining else 0)


@contextmanager
def _locked(directory: str, exclusive: bool) -> Iterator[None]:
    """
    Hold the lock of a directory the supervisor made (a directory without
    the lock file is not locked).  Called in the I/O thread, which must not
    wait: another process may hold the lock for long (a worker stopped
    mid-scrape with SIGSTOP).

    @raise _LockBusy: if another process holds it.
    """
    path = os.path.join(directory, _LOCK)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT if exclusive else os.O_RDONLY, 0o600)
    except FileNotFoundError:
        fd = -1
    try:
        if fd >= 0:
            mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
            except BlockingIOError:
                raise _LockBusy(directory) from None
        yield
    finally:
        if fd >= 0:
            os.close(fd)


def _written(path: str) -> bool:
    """
    Whether C{path} holds a multiprocess file's header.  C{prometheus-client}
    creates the file before it sizes it, and reading it in between fails
    the whole scrape; a worker killed then leaves it empty for good
    (prometheus/client_python#1199).
    """
    try:
        return os.stat(path).st_size >= 8
    except FileNotFoundError:
        return False


class _SharedCollector:
    """
    Every worker's figures, from the shared directory, read under its lock
    so that a scrape never sees an exited worker's counts twice or not at
    all.  Called in the I/O thread.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def collect(self) -> list[Metric]:
        from prometheus_client.multiprocess import MultiProcessCollector

        with _locked(self.directory, exclusive=False):
            files = glob.glob(os.path.join(self.directory, "*.db"))
            written = [path for path in files if _written(path)]
            return list(MultiProcessCollector.merge(written, accumulate=True))


class _SharedGauges:
    """
    The live figures as gauges in C{prometheus-client}'s multiprocess
    files, which this worker writes and every worker reads.  A C{live*}
    gauge counts only processes not yet marked dead (the supervisor marks a
    worker dead when it exits).  Called in the I/O thread.
    """

    def __init__(self, prometheus: ModuleType) -> None:
        def gauge(name: str, mode: str, labels: tuple[str, ...] = ()) -> Gauge:
            return prometheus.Gauge(
                name, _HELP[name], labels, registry=None, multiprocess_mode=mode
            )

        # Summed over the live workers: the server's totals.
        self.inFlight = gauge("twsgi_requests_in_flight", "livesum")
        self.threads = gauge("twsgi_threadpool_threads", "livesum", ("state",))
        self.queued = gauge("twsgi_threadpool_queue_depth", "livesum")
        self.maxThreads = gauge("twsgi_threadpool_max_threads", "livesum")
        self.connections = gauge("twsgi_open_connections", "livesum")
        self.workers = gauge("twsgi_workers", "livesum", ("state",))
        # The server drains when every live worker does; one worker draining
        # during a reload shows in twsgi_workers{state="draining"}.
        self.draining = gauge("twsgi_draining", "livemin")
        # One series per live worker (a pid label), to spot an unbalanced
        # or stuck one.
        self.workerBusy = gauge("twsgi_worker_threads_busy", "liveall")
        self.workerInFlight = gauge("twsgi_worker_requests_in_flight", "liveall")

    def update(self, figures: LiveFigures, inFlight: int) -> None:
        """
        Write this worker's figures.
        """
        self.workerBusy.set(figures.busy)
        self.workerInFlight.set(inFlight)
        self.threads.labels("busy").set(figures.busy)
        self.threads.labels("idle").set(figures.idle)
        self.queued.set(figures.queued)
        self.maxThreads.set(figures.maxThreads)
        self.connections.set(figures.connections)
        self.workers.labels("serving").set(0 if figures.draining else 1)
        self.workers.labels("draining").set(1 if figures.draining else 0)
        self.draining.set(1 if figures.draining else 0)


class Metrics:
    """
    The metrics of one L{TwsgiService}.

    @ivar registry: what C{/metrics} renders: in one process, this service's
        own C{CollectorRegistry}; in multiprocess mode, one that collects the
        shared directory.
    @ivar inFlight: requests in the application listeners now (this
        process's).
    @ivar directory: the multiprocess directory, or C{None} in one process.
    @ivar refreshInterval: seconds between two refreshes of the live gauges
        in multiprocess mode.
    """

    refreshInterval = 1.0

    def __init__(
        self,
        service: Measured,
        directory: str | None = None,
        clock: Clock | None = None,
        processId: Callable[[], int] = os.getpid,
    ) -> None:
        """
        @param service: the L{TwsgiService} whose figures these are.
        @param directory: the multiprocess directory, when
            C{prometheus-client} runs in multiprocess mode (see
            L{multiprocessDirectory}); C{None} for one process.
        @param clock: when to refresh the live gauges in multiprocess mode;
            by default the service's reactor.
        @param processId: this process's id, for marking it dead in the
            directory when it stops.
        @raise MetricsUnavailable: without C{prometheus-client}.
        """
        prometheus = _prometheus()
        self.service = service
        self.directory = directory
        self.clock: Clock | None = (
            clock if clock is not None else getattr(service, "reactor", None)
        )
        self.inFlight = 0
        self._processId = processId
        self.registry = prometheus.CollectorRegistry()
        # In multiprocess mode the counters go to the shared directory, read
        # back through _SharedCollector, not to this registry.
        own = self.registry if directory is None else None
        self.requests = prometheus.Counter(
            "twsgi_requests",
            "Finished requests, by status class and protocol.",
            ["status_class", "protocol"],
            registry=own,
        )
        self.duration = prometheus.Histogram(
            "twsgi_request_duration_seconds",
            "Seconds from the request's head received to the end of its response.",
            registry=own,
        )
        self.received = prometheus.Counter(
            "twsgi_request_body_bytes", "Request body bytes read.", registry=own
        )
        self.sent = prometheus.Counter(
            "twsgi_response_body_bytes", "Response body bytes sent.", registry=own
        )
        self.stuck = prometheus.Counter(
            "twsgi_requests_stuck",
            "Requests whose application call ran past --request-timeout.",
            registry=own,
        )
        self.refused = prometheus.Counter(
            "twsgi_requests_refused",
            "Requests answered 503 because --max-pending requests already "
            "waited for a WSGI thread.",
            registry=own,
        )
        self.backoffs = prometheus.Counter(
            "twsgi_accept_backoffs",
            "Times a listener stopped accepting for 0.1 s because the process "
            "was out of file descriptors.",
            registry=own,
        )
        self.streamResets = prometheus.Counter(
            "twsgi_http2_stream_resets",
            "HTTP/2 streams reset (RST_STREAM), by who reset them (server or "
            "client) and the error code.",
            ["by", "code"],
            registry=own,
        )
        self.pauses = prometheus.Counter(
            "twsgi_accept_pauses",
            "Times a worker stopped accepting connections because every "
            "WSGI thread it may have was busy (--workers).",
            registry=own,
        )
        self._gauges: _SharedGauges | None = None
        self._loop: LoopingCall | None = None
        if directory is None:
            self.registry.register(_LiveCollector(self, service))
        else:
            self.registry.register(_SharedCollector(directory))
            self._gauges = _SharedGauges(prometheus)
            self._loop = repeating(
                self.refresh,
                clock if clock is not None else service.reactor,
                "writing the live metrics",
            )

    @headerless
    def observe(self, record: AccessRecord) -> None:
        """
        An access-log observer: count one finished request.  Called in the
        I/O thread.
        """
        protocol = record.protocol if record.protocol in _PROTOCOLS else "unknown"
        self.requests.labels(f"{record.status // 100}xx", protocol).inc()
        self.duration.observe(record.duration)
        self.received.inc(record.bytesReceived)
        self.sent.inc(record.bytesSent)

    def requestStuck(self) -> None:
        """
        A request ran past C{--request-timeout}.  Called in the I/O thread.
        """
        self.stuck.inc()

    def acceptBackedOff(self) -> None:
        """
        A listener stopped accepting for a moment, out of file descriptors.
        Called in the I/O thread.
        """
        self.backoffs.inc()

    def streamReset(self, byClient: bool, code: int) -> None:
        """
        An HTTP/2 stream was reset by the client (C{byClient}) or by the
        server, with the error C{code}: counted under the code's name
        (C{unknown} for a code RFC 9113 does not define, which only a client
        sends).  Called in the I/O thread.
        """
        try:
            name = ErrorCode(code).name
        except ValueError:
            name = "unknown"
        self.streamResets.labels("client" if byClient else "server", name).inc()

    def acceptPaused(self) -> None:
        """
        A worker stopped accepting until one of its WSGI threads is free.
        Called in the I/O thread.
        """
        self.pauses.inc()

    def requestRefused(self) -> None:
        """
        A request was answered 503 for C{--max-pending}.  Called in the I/O
        thread.
        """
        self.refused.inc()

    def _inFlightChanged(self, delta: int) -> None:
        self.inFlight += delta
        if self._gauges is not None:
            self._gauges.inFlight.set(self.inFlight)

    def refresh(self) -> None:
        """
        In multiprocess mode, write this process's live figures to the
        shared directory.  Called in the I/O thread.
        """
        if self._gauges is not None:
            self._gauges.update(LiveFigures.read(self.service), self.inFlight)

    def start(self, _: object = None) -> None:
        """
        In multiprocess mode, write the live figures now and every
        L{refreshInterval} seconds.  A lifecycle hook: called in the I/O
        thread when the service has started.
        """
        if self._loop is not None and not self._loop.running:
            self._gauges.inFlight.set(self.inFlight)  # type: ignore[union-attr]
            self._loop.start(self.refreshInterval, now=True)

    def stop(self, _: object = None) -> None:
        """
        In multiprocess mode, stop refreshing, and take this process's live
        gauges out of the sums (its counters stay).  A lifecycle hook:
        called in the I/O thread once the service has stopped.
        """
        if self._loop is None:
            return
        if self._loop.running:
            self._loop.stop()
        from prometheus_client.multiprocess import mark_process_dead

        mark_process_dead(self._processId(), self.directory)

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


def multiprocessDirectory(inWorker: bool) -> str | None:
    """
    The shared directory, if this process is a worker of a supervisor that
    runs C{prometheus-client} in multiprocess mode (C{PROMETHEUS_MULTIPROC_DIR}
    was set when C{prometheus-client} was imported); else C{None}.

    A single process keeps its own registry even with
    C{PROMETHEUS_MULTIPROC_DIR} set: nobody would take a crashed run's live
    gauges out of a directory's sums.

    @param inWorker: whether this process is a worker of a supervisor.

    @raise MetricsUnavailable: without C{prometheus-client}.
    """
    _prometheus()
    from prometheus_client import values

    if not inWorker:
        return None
    if not getattr(values.ValueClass, "_multiprocess", False):
        return None
    return os.environ.get(MULTIPROC_DIR)


@attrs.define
class MetricsDirectory:
    """
    In a supervisor: the directory its workers share their metrics in.
    Called in the I/O thread.

    @ivar path: the directory.
    @ivar owned: made by L{prepare} (so removed by L{close}), rather than
        given by the operator in C{PROMETHEUS_MULTIPROC_DIR}.
    """

    path: str
    owned: bool
    _retries: dict[int, DelayedCall] = attrs.field(factory=dict, init=False)

    @classmethod
    def prepare(cls, environ: Mapping[str, str]) -> MetricsDirectory:
        """
        The operator's C{PROMETHEUS_MULTIPROC_DIR} if set (it may hold the
        application's own multiprocess metrics too), else a new private
        directory.

        @raise MetricsUnavailable: without C{prometheus-client}.
        @raise ValueError: if C{PROMETHEUS_MULTIPROC_DIR} is not a
            directory.
        """
        _prometheus()
        given = environ.get(MULTIPROC_DIR)
        if given:
            if not os.path.isdir(given):
                raise ValueError(f"{MULTIPROC_DIR} {given!r} is not a directory")
            return cls(given, owned=False)
        path = tempfile.mkdtemp(prefix="twsgi-metrics-")
        open(os.path.join(path, _LOCK), "wb").close()
        return cls(path, owned=True)

    def environment(self) -> dict[str, str]:
        """
        What a worker's environment needs to write its metrics here.
        """
        return {MULTIPROC_DIR: self.path}

    def workerEnded(self, pid: int, clock: Clock | None = None) -> None:
        """
        Worker C{pid} exited: take its live gauges out of the sums and, in a
        directory made here, fold its counters and histograms into the
        C{retired} files, so that a server that recycles its workers often
        keeps a few files to read at each scrape rather than two more per
        worker it ever ran.  (An operator's directory may have readers that
        do not take our lock, so it is left as C{prometheus-client} does.)

        @param clock: when to try the fold again while a scrape holds the
            lock; without one, or after L{_LOCK_TRIES} tries, the files are
            left as they are (scrapes still count them).
        """
        from prometheus_client.multiprocess import mark_process_dead

        mark_process_dead(pid, self.path)
        if self.owned:
            self._fold(pid, clock, _LOCK_TRIES)

    def _fold(self, pid: int, clock: Clock | None, tries: int) -> None:
        self._retries.pop(pid, None)
        try:
            self._foldNow(pid)
        except _LockBusy:
            if clock is not None and tries > 1:
                self._retries[pid] = clock.callLater(
                    _LOCK_RETRY, self._fold, pid, clock, tries - 1
                )
            else:
                _log.warn(
                    "metrics: the shared directory stayed locked; the files "
                    "of exited worker {pid} are left unfolded",
                    pid=pid,
                )

    def _foldNow(self, pid: int) -> None:
        from prometheus_client.mmap_dict import MmapedDict

        with _locked(self.path, exclusive=True):
            for kind in _SUMMED:
                exited = os.path.join(self.path, f"{kind}_{pid}.db")
                if not _written(exited):
                    if os.path.exists(exited):
                        os.unlink(exited)
                    continue
                retired = MmapedDict(os.path.join(self.path, f"{kind}_{_RETIRED}.db"))
                try:
                    for (
                        key,
                        value,
                        timestamp,
                        _,
                    ) in MmapedDict.read_all_values_from_file(exited):
                        total, _ = retired.read_value(key)
                        retired.write_value(key, total + value, timestamp)
                finally:
                    retired.close()
                os.unlink(exited)

    def close(self) -> None:
        """
        Every worker has exited: remove the directory if it was made here.
        """
        for retry in self._retries.values():
            if retry.active():
                retry.cancel()
        self._retries.clear()
        if self.owned:
            shutil.rmtree(self.path, ignore_errors=True)


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
        self._counted: dict[Callable[[Any], None], Callable[[Any], None]] = {}

    def render(self, request: Request) -> bytes | int:
        metrics = self.metrics
        metrics._inFlightChanged(1)

        def done(result: object) -> None:
            metrics._inFlightChanged(-1)

        request.notifyFinish().addBoth(done)
        return self.wrapped.render(request)

    def exchangeTarget(self, path: bytes) -> Callable[[Any], None] | None:
        """
        The wrapped root's hot path for C{path} (see
        L{twsgi.server.routes.exchangeTarget}), counted from dispatch until
        the exchange's C{whenEnded} (its response finished or its client
        left).  Called in the I/O thread.
        """
        inner = getattr(self.wrapped, "exchangeTarget", None)
        target: Callable[[Any], None] | None = (
            inner(path) if inner is not None else None
        )
        if target is None:
            return None
        counted = self._counted.get(target)
        if counted is None:
            counted = self._counted[target] = self._count(target)
        return counted

    def _count(self, target: Callable[[Any], None]) -> Callable[[Any], None]:
        metrics = self.metrics

        def done() -> None:
            metrics._inFlightChanged(-1)

        def counted(exchange: Any) -> None:
            metrics._inFlightChanged(1)
            exchange.whenEnded(done)
            target(exchange)

        return counted


class _MetricsResource(Resource):
    """
    C{/metrics} in the Prometheus text format.  Rendered in the I/O thread.
    """

    isLeaf = True

    def __init__(self, metrics: Metrics) -> None:
        Resource.__init__(self)
        self.metrics = metrics

    def render_GET(self, request: Request) -> bytes | int:
        try:
            return self._answer(request)
        except _LockBusy:
            gone: list[bool] = []
            request.notifyFinish().addErrback(lambda reason: gone.append(True))
            self._retry(request, _LOCK_TRIES - 1, gone)
            return NOT_DONE_YET

    def _answer(self, request: Request) -> bytes:
        """
        The figures, as C{request}'s body.

        @raise _LockBusy: if the shared directory is locked.
        """
        prometheus = _prometheus()
        # In multiprocess mode, this worker's own live figures are fresh;
        # the others' are at most one refresh interval old.
        self.metrics.refresh()
        body: bytes = prometheus.generate_latest(self.metrics.registry)
        request.setHeader(b"content-type", prometheus.CONTENT_TYPE_LATEST.encode())
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"content-length", b"%d" % len(body))
        return b"" if request.method == b"HEAD" else body

    def _retry(self, request: Request, tries: int, gone: list[bool]) -> None:
        """
        Answer C{request} on a later reactor turn, when the shared
        directory's lock is free, or with a 503 after C{tries} more tries;
        or not at all once C{gone} holds something (the client went away).
        """

        def again() -> None:
            if gone:
                # The client went away.
                return
            try:
                body = self._answer(request)
            except _LockBusy:
                if tries > 1:
                    self._retry(request, tries - 1, gone)
                    return
                _log.warn("metrics: the shared directory stayed locked; answered 503")
                body = b"metrics busy, try again\n"
                request.setResponseCode(503)
                request.setHeader(b"content-type", b"text/plain; charset=utf-8")
                request.setHeader(b"retry-after", b"1")
                request.setHeader(b"content-length", b"%d" % len(body))
                if request.method == b"HEAD":
                    body = b""
            request.write(body)
            request.finish()

        clock = self.metrics.clock
        # Only the shared directory is ever locked, and its metrics have a
        # clock (they refresh on it).
        assert clock is not None
        clock.callLater(_LOCK_RETRY, again)

    render_HEAD = render_GET


__all__ = [
    "LiveFigures",
    "Metrics",
    "MetricsDirectory",
    "MetricsUnavailable",
    "multiprocessDirectory",
]
