# -*- test-case-name: tests.lifecycle.test_build -*-
"""
The one place where a L{twsgi.config.model.ServerConfig} becomes the objects
a L{twsgi.lifecycle.service.TwsgiService} runs with (L{serviceParts}): its
listeners (endpoint strings, proxy policies, endpoints), limits, thread
pool, connection gate, WSGI resource and request watchdog, lifecycle hooks,
routes (health, metrics, static files) and access observers.  The objects
it makes take plain typed arguments, never the config; the process-level
objects (the supervisor, a worker's link to it) are made in
L{twsgi.process.build}.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import attrs
from twisted.internet.endpoints import serverFromString

from twsgi.config.apploader import AppLoadError, loadApp
from twsgi.config.model import ServerConfig
from twsgi.config.resolve import ConfigError
from twsgi.config.settings import SETTINGS
from twsgi.http.limits import Limits
from twsgi.logs.accesslog import AccessObserver, openAccessLog
from twsgi.logs.formats import formatterFor
from twsgi.server.endpoints import (
    anyFreePort,
    bindEndpoint,
    checkAddress,
    hostPortHint,
    repeatedListener,
)
from twsgi.server.forwarded import (
    ProxyPolicy,
    listenerEndpoint,
    parseAllowIps,
    splitListener,
)
from twsgi.server.health import healthRoutes
from twsgi.server.listeners import buildEndpoint
from twsgi.server.negotiate import priorKnowledge
from twsgi.server.ports import ConnectionGate, listeningReactor
from twsgi.server.routes import Routes, staticMounts
from twsgi.server.tls import PROFILES, TLSProfile
from twsgi.wsgi.bridge import WSGIResource
from twsgi.wsgi.placement import Placement
from twsgi.wsgi.pool import WorkerPool
from twsgi.wsgi.watchdog import RequestWatchdog

EndpointFor = Callable[..., Any]
"""
Makes the endpoint of an endpoint string: C{(reactor, description, parse)}
with C{parse} the default maker (a worker process adopts an inherited socket
instead).
"""


class EndpointError(ValueError):
    """
    An endpoint string is malformed; C{str()} is one line naming it.

    @ivar description: the endpoint string.
    """

    def __init__(self, description: str, message: str) -> None:
        super().__init__(message)
        self.description = description


def _reasonText(description: str, error: BaseException, bind: bool) -> str:
    """
    Say in words why C{serverFromString} refused a description.

    @param bind: see L{hostPortHint}.
    """
    hint = hostPortHint(description, bind)
    if hint is not None:
        return hint
    if isinstance(error, IndexError) and description.startswith("systemd:"):
        return (
            "systemd passed no socket at that index; is the service started "
            "by its .socket unit (LISTEN_FDS, LISTEN_FDNAMES)?"
        )
    if isinstance(error, OSError):
        return error.strerror or str(error)
    text = str(error)
    if "multiple values for argument" in text:
        return "an option is given twice; escape colons in values as \\:"
    if "unexpected keyword argument" in text:
        return "unknown option " + text.rpartition(" ")[2]
    if "missing" in text and "required positional argument" in text:
        return "the port (or path) is missing"
    if text.startswith("invalid literal for int()"):
        try:
            checkAddress(description)
        except ValueError as e:
            return str(e)
        # Not the port: another option, such as backlog= or a mode=.
        return f"{text.rpartition(': ')[2]} is not a number"
    return text or type(error).__name__


def endpointFromString(
    reactor: Any,
    description: str,
    listener: str | None = None,
    parse: Callable[[Any, str], Any] = serverFromString,
    bind: bool = True,
) -> Any:
    """
    Parse one server endpoint string.

    @param listener: the whole listener description the endpoint string
        came from, if it had twsgi options after it.
    @param parse: makes the endpoint (L{serverFromString} by default).
    @param bind: an application listener: a C{HOST:PORT} mistake gets the
        C{--bind} that means it too (see L{hostPortHint}).
    @raise EndpointError: naming the description, if it is malformed.
    """
    try:
        return parse(reactor, description)
    except Exception as e:
        reason = _reasonText(description, e, bind)
        # The listener as the operator wrote it, with any ;client-ca= the
        # reason may be about.
        listener = listener or description
        raise EndpointError(
            listener, f"{listener!r} is not a valid endpoint string: {reason}"
        )


def appEndpoints(config: ServerConfig) -> tuple[str, ...]:
    """
    The application's listeners a L{ServerConfig} asks for: its endpoint
    strings, then its C{--bind} addresses as endpoint strings.
    """
    return (*config.endpoint, *(bindEndpoint(address) for address in config.bind))


def adminEndpoints(config: ServerConfig) -> tuple[str, ...]:
    """
    The admin listeners a L{ServerConfig} asks for.

    @raise ConfigError: if one is also an application listener.
    """
    admin = tuple(config.health_endpoint) + tuple(config.metrics_endpoint)
    app = appEndpoints(config)
    for description in admin:
        if description in app:
            hint = ""
            if anyFreePort(listenerEndpoint(description)):
                # Listeners are told apart by their strings.
                hint = (
                    " (for two free ports, write one of them differently, "
                    "for example with port=0)"
                )
            raise ConfigError(
                f"{description!r} is both an application and an admin endpoint{hint}"
            )
    # Twisted's endpoint strings, not the twsgi options after them, say
    # where a listener listens.
    repeated = repeatedListener(listenerEndpoint(d) for d in (*app, *admin))
    if repeated is not None:
        raise ConfigError(
            f"listener {repeated!r} is given twice (by --endpoint, --bind, "
            "--health-endpoint or --metrics-endpoint): the second could not "
            "listen on the address the first holds"
        )
    return admin


def endpointFlag(config: ServerConfig, description: str) -> str:
    """
    The flag (C{--endpoint}, C{--bind}, C{--health-endpoint}...) that gave
    the listener C{description}, for an error that names it.
    """
    if description in map(bindEndpoint, config.bind):
        return "--bind"
    return next(
        (
            "--" + setting.flag
            for setting in SETTINGS
            if setting.multiple
            and description in (getattr(config, setting.name, None) or ())
        ),
        "--endpoint",
    )


def routesFromConfig(
    service: Any, config: ServerConfig, inWorker: bool = False
) -> Routes:
    """
    The L{Routes} of a service built from a L{ServerConfig}: health on admin
    listeners (and on application listeners with C{--health-on-app}),
    C{/metrics} on the metrics listeners, static mounts.  With metrics, their
    access-log observer joins the service's observers.  C{inWorker} says
    whether this process is a worker of a supervisor (whose metrics are
    shared).

    @raise ConfigError: if a static directory does not exist, or metrics are
        asked for without C{prometheus-client}.
    """
    health = healthRoutes(
        service,
        config.health_path_prefix,
        config.ready_queue_limit,
        config.max_pending,
        service.resource.waitingElsewhere if inWorker else None,
    )
    try:
        mounts = staticMounts(config.static)
    except ValueError as e:
        raise ConfigError(f"--static: {e}")
    if not config.metrics_endpoint:
        return Routes(
            app=health if config.health_on_app else {}, admin=health, mounts=mounts
        )
    from twsgi.metrics.prometheus import (
        Metrics,
        MetricsUnavailable,
        multiprocessDirectory,
    )

    try:
        metrics = Metrics(service, directory=multiprocessDirectory(inWorker))
    except MetricsUnavailable as e:
        raise ConfigError(f"--metrics-endpoint: {e}")
    service.observers.append(metrics.observe)
    if metrics.directory is not None:
        # A worker: its live figures are written to the shared directory
        # while it runs.
        service.onStart.append(metrics.start)
        service.onStop.append(metrics.stop)
    return Routes(
        app=health if config.health_on_app else {},
        admin=health,
        metricsAdmin={b"/metrics": metrics.resource()},
        mounts=mounts,
        wrapApp=metrics.wrap,
        metrics=metrics,
    )


@attrs.frozen
class Listeners:
    """
    The listeners of a service.

    @ivar descriptions: every listener's description (an endpoint string,
        maybe with twsgi's options after it): the application's, then the
        admin ones.
    @ivar admin: the admin listeners' descriptions.
    @ivar policies: each description's L{ProxyPolicy}.
    @ivar endpoints: each description's endpoint, in the same order.
    @ivar metrics: the admin listeners that answer C{/metrics} too
        (C{--metrics-endpoint}); the others answer the health paths only.
    """

    descriptions: tuple[str, ...]
    admin: tuple[str, ...]
    policies: dict[str, ProxyPolicy]
    endpoints: tuple[Any, ...]
    metrics: tuple[str, ...] = ()


def listenerDescriptions(config: ServerConfig) -> tuple[str, ...]:
    """
    Every listener a L{ServerConfig} asks for: the application's, then the
    admin ones (the order in which a service builds their endpoints, and in
    which a worker inherits their sockets).

    @raise ConfigError: as L{adminEndpoints}.
    """
    return appEndpoints(config) + adminEndpoints(config)


def tlsFromConfig(config: ServerConfig) -> TLSProfile:
    """
    The TLS profile of C{ssl:} and C{tls:} listeners that the C{--tls-*}
    settings describe, offering HTTP/2 in ALPN unless C{--no-http2}.
    """
    profile = PROFILES[config.tls_profile].given(
        ciphers=config.tls_ciphers, curve=config.tls_curve, minimum=config.tls_minimum
    )
    return attrs.evolve(profile, http2=not config.no_http2)


def listenersFromConfig(
    config: ServerConfig, reactor: Any, endpointFor: EndpointFor | None = None
) -> Listeners:
    """
    The application's and admin listeners a L{ServerConfig} asks for, with
    their proxy policies (C{--forwarded-allow-ips}, unless a listener says
    otherwise with C{;forwarded-allow-ips=...}) and endpoints (TLS files
    checked at once, C{client-ca=} honoured, C{ssl:} ones with the TLS
    profile of the C{--tls-*} settings unless they name their own, C{unix:}
    sockets 0660).

    @param endpointFor: makes the endpoints instead (see L{EndpointFor}).
    @raise EndpointError: if a description is malformed.
    @raise ConfigError: if an admin listener is also an application one, or
        a listener is given twice.
    """
    admin = adminEndpoints(config)
    descriptions = listenerDescriptions(config)
    tls = tlsFromConfig(config)
    policies = {}
    endpoints = []
    # Twisted's endpoints listen with twsgi's own ports (see server.ports).
    listening = listeningReactor(reactor)
    for description in descriptions:
        try:
            endpoint, options = splitListener(description)
            allow = options.get("forwarded-allow-ips", config.forwarded_allow_ips)
            policies[description] = ProxyPolicy(parseAllowIps(allow))
            priorKnowledge(options)
        except ValueError as e:
            raise EndpointError(description, f"{description!r}: {e}")
        parse = functools.partial(
            buildEndpoint, clientCA=options.get("client-ca"), tls=tls
        )
        if endpointFor is not None:
            parse = functools.partial(endpointFor, parse=parse)
        endpoints.append(
            endpointFromString(
                listening, endpoint, description, parse, bind=description not in admin
            )
        )
    return Listeners(
        descriptions, admin, policies, tuple(endpoints), tuple(config.metrics_endpoint)
    )


def limitsFromConfig(config: ServerConfig) -> Limits:
    """
    The L{Limits} a L{ServerConfig} asks for.
    """
    return Limits(
        maxRequestLine=config.limit_request_line,
        maxHeaderField=config.limit_request_field_size,
        maxHeaderCount=config.limit_request_fields,
        maxHeaderBytes=config.limit_request_headers,
        maxBody=config.max_body_size,
        headerTimeout=config.header_timeout,
        keepAliveTimeout=config.keepalive_timeout,
        bodyTimeout=config.body_timeout,
        sendTimeout=config.send_timeout,
        maxStreams=config.http2_max_streams,
        maxRefusedStreams=config.http2_max_refused_streams,
        resetBurst=config.http2_reset_burst,
        resetRate=config.http2_reset_rate,
        controlFrames=config.http2_control_frames,
        emptyFrames=config.http2_empty_frames,
    )


@attrs.frozen
class ServiceParts:
    """
    What a L{twsgi.lifecycle.service.TwsgiService} runs with, made by
    L{serviceParts} (its routes and access observers are made later, by
    L{routesFromConfig} and L{accessObservers}).

    @ivar listeners: the L{Listeners}.
    @ivar limits: the L{Limits} of every listener.
    @ivar threads: the thread pool's minimum and maximum size.
    @ivar threadpool: the WSGI thread pool (not started).
    @ivar gate: the L{ConnectionGate} of C{--max-connections} and, in a
        worker, of its free threads; or C{None}.
    @ivar resource: the L{WSGIResource} of the application, with its
        request watchdog if C{--request-timeout} asks for one.
    @ivar appName: the application's name in the log.
    @ivar http2: whether listeners offer HTTP/2.
    @ivar onStart: the C{--on-start} hooks, loaded.
    @ivar onDrain: the C{--on-drain} hooks, loaded.
    @ivar onStop: the C{--on-stop} hooks, loaded.
    @ivar drainDelay: see L{twsgi.lifecycle.drain.Drain}.
    @ivar gracefulTimeout: see L{twsgi.lifecycle.drain.Drain}.
    @ivar keepAliveGrace: the seconds an idle connection gets for one more
        request once draining.
    @ivar accessLogOnStdout: whether the access log goes to standard output.
    """

    listeners: Listeners
    limits: Limits
    threads: tuple[int, int]
    threadpool: WorkerPool
    gate: ConnectionGate | None
    resource: WSGIResource
    appName: str
    http2: bool
    onStart: tuple[Callable[..., Any], ...]
    onDrain: tuple[Callable[..., Any], ...]
    onStop: tuple[Callable[..., Any], ...]
    drainDelay: float
    gracefulTimeout: float
    keepAliveGrace: float
    accessLogOnStdout: bool


def serviceParts(
    config: ServerConfig,
    application: Callable[..., Any],
    reactor: Any,
    endpointFor: EndpointFor | None,
    onStuck: Callable[[], None],
    inWorker: bool = False,
) -> ServiceParts:
    """
    The L{ServiceParts} a L{ServerConfig} asks for, serving C{application}
    on C{reactor}.

    @param endpointFor: see L{listenersFromConfig}.
    @param onStuck: called in the I/O thread for each request that runs past
        C{--request-timeout}.
    @param inWorker: this process is a worker of a supervisor: its
        application listeners accept only while a thread is free, so that
        new connections wait in the kernel's queue for whichever worker
        frees a thread first, rather than for a thread of a busy worker
        while another has threads free.
    @raise EndpointError: as L{listenersFromConfig}.
    @raise ConfigError: as L{listenersFromConfig}.
    @raise AppLoadError: if a hook cannot be loaded.
    """
    listeners = listenersFromConfig(config, reactor, endpointFor)
    limits = limitsFromConfig(config)
    appName = config.app or repr(application)
    threadpool = WorkerPool(
        *config.threads,
        name="twsgi",
        placement=(
            Placement.forThisProcess if config.thread_placement == "near" else None
        ),
    )
    gate = None
    if inWorker:
        gate = ConnectionGate(
            config.max_connections, threadpool, reactor, maxWaiting=config.max_pending
        )
    elif config.max_connections:
        gate = ConnectionGate(config.max_connections)
    resource = WSGIResource(
        reactor,
        threadpool,
        application,
        exposeTracebacks=config.expose_tracebacks,
        appName=appName,
    )
    resource.maxPending = config.max_pending
    if inWorker and gate is not None:
        resource.waitingElsewhere = gate.waiting
    if config.request_timeout:
        resource.watchdog = RequestWatchdog(reactor, config.request_timeout, onStuck)
    return ServiceParts(
        listeners=listeners,
        limits=limits,
        threads=config.threads,
        threadpool=threadpool,
        gate=gate,
        resource=resource,
        appName=appName,
        http2=not config.no_http2,
        onStart=tuple(loadCallables("on-start", config.on_start, "service")),
        onDrain=tuple(loadCallables("on-drain", config.on_drain, "service")),
        onStop=tuple(loadCallables("on-stop", config.on_stop, "service")),
        drainDelay=config.drain_delay,
        gracefulTimeout=config.graceful_timeout,
        keepAliveGrace=config.keepalive_grace,
        accessLogOnStdout=config.access_log == "-",
    )


def loadCallables(
    flag: str, specs: Sequence[str], calledWith: str
) -> list[Callable[..., Any]]:
    """
    Load the C{module:attr} callables of a hook setting.

    @param calledWith: the name of the one argument they are called with.
    @raise AppLoadError: naming C{--flag}, if one cannot be loaded.
    """
    loaded = []
    for spec in specs:
        try:
            loaded.append(loadApp(spec, (calledWith,)))
        except AppLoadError as e:
            message = str(e).replace("--app", f"--{flag}", 1)
            message = message.replace(
                "not a WSGI application (a callable)", "not callable"
            )
            raise AppLoadError(message, e.details)
    return loaded


def commandSettings(config: ServerConfig) -> list[str]:
    """
    The flags of the settings in C{config} that only the twsgi command
    applies (L{twsgi.config.settings.Setting.command}) and that are not at
    their default.
    """
    return [
        f"--{setting.flag}"
        for setting in SETTINGS
        if setting.command and getattr(config, setting.name) != setting.default
    ]


def accessObservers(config: ServerConfig) -> list[AccessObserver]:
    """
    The access log a L{ServerConfig} asks for (if any), then its
    C{--access-log-observer} callables.

    @raise ConfigError: if the format is malformed or the file cannot be
        opened.
    @raise AppLoadError: if an observer cannot be loaded.
    """
    try:
        formatter = formatterFor(config.access_log_format)
    except ValueError as e:
        raise ConfigError(f"--access-log-format: {e}")
    # Loaded before the file is opened, which an error would leave open.
    loaded = loadCallables("access-log-observer", config.access_log_observer, "record")
    try:
        accessLog = openAccessLog(
            config.access_log, formatter, config.access_log_rotate
        )
    except OSError as e:
        raise ConfigError(f"--access-log {config.access_log!r}: {e.strerror}")
    return ([accessLog] if accessLog is not None else []) + loaded


__all__ = [
    "EndpointError",
    "EndpointFor",
    "Listeners",
    "ServiceParts",
    "accessObservers",
    "adminEndpoints",
    "appEndpoints",
    "endpointFlag",
    "endpointFromString",
    "limitsFromConfig",
    "listenerDescriptions",
    "listenersFromConfig",
    "loadCallables",
    "routesFromConfig",
    "serviceParts",
    "tlsFromConfig",
]
