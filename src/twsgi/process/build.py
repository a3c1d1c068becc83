# -*- test-case-name: tests.process.test_build -*-
"""
The one place where a L{twsgi.config.model.ServerConfig} becomes the objects
of a twsgi process: the service it runs (L{serviceFromConfig}, after
C{--chdir} and C{--pythonpath} and the application's import), the
supervisor of C{--workers N} (after L{checkApp} and L{checkShared}) and the
metrics directory its workers share, a worker's link to its supervisor and
what it does with a stuck request, and the CPU a process keeps to
(C{--cpu-affinity}).  The objects made here take plain typed arguments,
never the config; the service's own objects are made in
L{twsgi.lifecycle.build}.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from twsgi.config.apploader import findApp, loadApp
from twsgi.config.model import ServerConfig
from twsgi.config.resolve import ConfigError
from twsgi.lifecycle.build import (
    EndpointError,
    EndpointFor,
    appEndpoints,
    endpointFlag,
    endpointFromString,
    listenerDescriptions,
    tlsFromConfig,
)
from twsgi.lifecycle.service import TwsgiService
from twsgi.logs.accesslog import AccessObserver
from twsgi.process.affinity import allowedCpus, cpusFor, pinProcess
from twsgi.process.workers import WORKER_FDS, Supervisor, WorkerLink
from twsgi.server.forwarded import splitListener
from twsgi.server.inherit import splitEndpoint
from twsgi.server.listeners import buildEndpoint

if TYPE_CHECKING:
    from twsgi.metrics.prometheus import MetricsDirectory

_log = Logger(namespace="twsgi")

_NO_APP = (
    "no application given: use --app module:attr (or set TWSGI_APP), "
    "for example --app myapp:app"
)


def changeDirectory(config: ServerConfig) -> None:
    """
    Apply C{--chdir}: relative paths (of C{unix:} sockets, certificates,
    the access log, the application) are then read from there.

    @raise ConfigError: if there is no such directory.
    """
    if config.chdir is not None:
        try:
            os.chdir(config.chdir)
        except OSError as e:
            raise ConfigError(f"--chdir {config.chdir!r}: {e.strerror}")


def fromChdir(config: ServerConfig, path: str = "") -> str:
    """
    C{path} as this process reads it once C{--chdir} applies (before it
    does): a relative one is read from there.
    """
    return os.path.join(os.getcwd(), config.chdir or "", path)


def newAccessLogPath(config: ServerConfig) -> str | None:
    """
    The path of the access log file that C{config} names (read from
    C{--chdir}, as the server opens it), if there is no such file yet: one
    that C{--check-config} will make by opening it, and must remove.
    """
    if config.access_log in ("-", "none"):
        return None
    path = fromChdir(config, config.access_log)
    return None if os.path.lexists(path) else os.path.normpath(path)


def serviceFromConfig(
    config: ServerConfig,
    reactor: Any,
    endpointFor: EndpointFor | None = None,
    observers: Sequence[AccessObserver] = (),
) -> TwsgiService:
    """
    Build the service a L{ServerConfig} describes: change directory, extend
    C{sys.path}, load the application, then make the L{TwsgiService}.

    @param endpointFor: passed on to L{TwsgiService}.
    @param observers: access-log observers besides the configured ones.
    @raise ConfigError: if a setting cannot be used.
    @raise AppLoadError: if the application cannot be loaded.
    """
    if config.app is None:
        raise ConfigError(_NO_APP)
    changeDirectory(config)
    for directory in reversed(config.pythonpath):
        sys.path.insert(0, os.path.abspath(directory))
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    application = loadApp(config.app)
    try:
        return TwsgiService(
            config,
            application,
            reactor,
            observers=observers,
            endpointFor=endpointFor,
            inWorker=WORKER_FDS in os.environ,
            byCommand=True,
        )
    except EndpointError as e:
        raise ConfigError(f"{endpointFlag(config, e.description)} {e}")


def cpusFromConfig(config: ServerConfig) -> tuple[int, ...]:
    """
    The CPUs that C{--cpu-affinity} hands out to processes in turn, or
    C{()} without it.

    @raise ConfigError: if it names a CPU this process may not run on, or
        the platform cannot pin a process.
    """
    if config.cpu_affinity is None:
        return ()
    return cpusFor(config.cpu_affinity, allowedCpus())


def pinFromConfig(config: ServerConfig) -> int | None:
    """
    Apply C{--cpu-affinity} to this process (one serving by itself, or a
    worker, to which its supervisor gave one CPU): keep it on the first CPU
    it names.

    @return: that CPU, or C{None} without C{--cpu-affinity}.
    @raise ConfigError: as L{cpusFromConfig}, or if the kernel refuses.
    """
    cpus = cpusFromConfig(config)
    if not cpus:
        return None
    pinProcess(cpus[0])
    _log.info("twsgi runs on CPU {cpu} (--cpu-affinity)", cpu=cpus[0])
    return cpus[0]


def checkApp(config: ServerConfig) -> None:
    """
    Check in a supervisor what can be known of C{--app} without running the
    application's code (L{findApp}), from where its workers will import it:
    a mistake fails at once, with status 1, and not in every worker after
    C{twistd} has become a daemon.

    @raise ConfigError: if there is no C{--app}.
    @raise AppLoadError: if it is malformed or its package is not found.
    """
    if config.app is None:
        raise ConfigError(_NO_APP)
    directory = os.path.abspath(config.chdir or os.curdir)
    if not os.path.isdir(directory):
        # changeDirectory says so.
        return
    path = [os.path.join(directory, entry) for entry in config.pythonpath]
    # A worker (python -m twsgi) starts here, which puts this on its path.
    findApp(config.app, [*path, directory, os.getcwd(), *sys.path], directory)


def checkShared(config: ServerConfig, reactor: Any) -> None:
    """
    Check that a supervisor can bind every listener of C{--workers N} for
    its workers: a malformed one, or one whose socket cannot be shared
    (C{tls:}), is one line, from a start and from C{--check-config} alike.

    @raise ConfigError: with that line.
    """
    app = appEndpoints(config)
    # The workers' TLS profile, so that an ssl: listener they would refuse
    # is refused here.
    tls = tlsFromConfig(config)
    # Relative certificate paths are read from --chdir, as the supervisor
    # binds them and its workers read them.
    here = os.getcwd()
    changeDirectory(config)
    try:
        for description in listenerDescriptions(config):
            try:
                endpoint, options = splitListener(description)
                # A client-ca= file the workers could not read too.
                parse = functools.partial(
                    buildEndpoint, clientCA=options.get("client-ca"), tls=tls
                )
                splitEndpoint(
                    endpointFromString(
                        reactor,
                        endpoint,
                        description,
                        parse=parse,
                        bind=description in app,
                    )
                )
            except EndpointError as e:
                raise ConfigError(f"{endpointFlag(config, description)} {e}")
            except ValueError as e:
                flag = endpointFlag(config, description)
                raise ConfigError(f"{flag} {description!r}: {e}")
    finally:
        os.chdir(here)


def metricsDirectoryFromConfig(
    config: ServerConfig, environ: Mapping[str, str]
) -> MetricsDirectory | None:
    """
    The directory in which the workers of a supervisor write their metrics,
    prepared (see L{twsgi.metrics.prometheus.MetricsDirectory.prepare}), or
    C{None} without C{--metrics-endpoint}.

    @raise ConfigError: if metrics cannot be served.
    """
    if not config.metrics_endpoint:
        return None
    from twsgi.metrics.prometheus import MetricsDirectory, MetricsUnavailable

    try:
        return MetricsDirectory.prepare(environ)
    except (MetricsUnavailable, ValueError) as e:
        raise ConfigError(f"--metrics-endpoint: {e}")


def supervisorFromConfig(
    config: ServerConfig,
    reactor: Any,
    settings: Mapping[str, Any],
    *,
    onFailure: Callable[[int], None] | None = None,
    handleSignals: bool = True,
    metricsDirectory: MetricsDirectory | None = None,
) -> Supervisor:
    """
    The L{Supervisor} of C{--workers N}: the listeners it binds, how many
    workers it runs, when it replaces one (C{--max-worker-memory},
    C{--worker-lifetime}) and how the whole server stops
    (C{--graceful-timeout}, C{--drain-delay}).

    @param settings: the raw command-line settings, passed on to workers.
    @param onFailure: see L{Supervisor}.
    @param handleSignals: see L{Supervisor}.
    @param metricsDirectory: see L{metricsDirectoryFromConfig}.
    @raise ConfigError: if the listeners conflict (see
        L{twsgi.lifecycle.build.listenerDescriptions}).
    """
    return Supervisor(
        reactor,
        settings,
        descriptions=listenerDescriptions(config),
        count=config.workers,
        cpus=cpusFromConfig(config),
        maxWorkerMemory=config.max_worker_memory,
        workerLifetime=config.worker_lifetime,
        gracefulTimeout=config.graceful_timeout,
        drainDelay=config.drain_delay,
        onFailure=onFailure,
        handleSignals=handleSignals,
        metricsDirectory=metricsDirectory,
    )


def workerLinkFromConfig(config: ServerConfig, fd: int) -> WorkerLink:
    """
    A worker's L{WorkerLink} to its supervisor on the pipe C{fd}, retiring
    the worker after C{--max-requests} (with C{--max-requests-jitter}).
    """
    return WorkerLink(fd, config.max_requests, config.max_requests_jitter)


def watchRequests(
    service: TwsgiService, config: ServerConfig, link: WorkerLink | None
) -> None:
    """
    Apply C{--request-timeout-action recycle} to the watchdog of C{service}
    (which logs and counts stuck requests itself): a stuck request also
    replaces this worker.
    """
    watchdog = service.resource.watchdog
    if watchdog is None or config.request_timeout_action != "recycle":
        return
    if link is None:
        # No supervisor: stuck requests are only logged, as the warning of
        # twsgi.config.resolve.inertSettings says.
        return
    counted = watchdog.onStuck

    def onStuck() -> None:
        if counted is not None:
            counted()
        link.retire("a request ran past --request-timeout")

    watchdog.onStuck = onStuck


__all__ = [
    "changeDirectory",
    "checkApp",
    "checkShared",
    "cpusFromConfig",
    "fromChdir",
    "metricsDirectoryFromConfig",
    "newAccessLogPath",
    "pinFromConfig",
    "serviceFromConfig",
    "supervisorFromConfig",
    "watchRequests",
    "workerLinkFromConfig",
]
