# -*- test-case-name: tests.cli.test_options -*-
"""
Turning a L{twsgi.config.resolve.ServerConfig} into the objects a service
runs with.
"""

from __future__ import annotations

from typing import Any

from twsgi.config.model import ServerConfig
from twsgi.config.resolve import ConfigError
from twsgi.server.endpoints import appEndpoints, repeatedListener
from twsgi.server.health import healthRoutes
from twsgi.server.routes import Routes, staticMounts


def adminEndpoints(config: ServerConfig) -> tuple[str, ...]:
    """
    The admin listeners a L{ServerConfig} asks for.

    @raise ConfigError: if one is also an application listener.
    """
    admin = tuple(config.health_endpoint) + tuple(config.metrics_endpoint)
    app = appEndpoints(config)
    for description in admin:
        if description in app:
            raise ConfigError(
                f"{description!r} is both an application and an admin endpoint"
            )
    repeated = repeatedListener((*app, *admin))
    if repeated is not None:
        raise ConfigError(
            f"listener {repeated!r} is given twice (by --endpoint, --bind, "
            "--health-endpoint or --metrics-endpoint): the second could not "
            "listen on the address the first holds"
        )
    return admin


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
    health = healthRoutes(service, config.health_path_prefix, config.ready_queue_limit)
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
        admin={**health, b"/metrics": metrics.resource()},
        mounts=mounts,
        wrapApp=metrics.wrap,
        metrics=metrics,
    )


__all__ = ["adminEndpoints", "routesFromConfig"]
