# -*- test-case-name: tests.test_service -*-
"""
The twsgi service: a thread pool, one listener per endpoint, and an ordered
stop.

L{TwsgiService} is an ordinary L{IService}: a C{.tac} file, another
L{MultiService} or a test can own it.  It never reads the global reactor and
installs no signal handlers of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import CannotListenError
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from ._accesslog import AccessObserver
from ._bridge import WSGIResource
from ._dispatch import Routes
from ._limits import Limits
from ._proxy import DEFAULT_ALLOW_IPS, ProxyPolicy, parseAllowIps, splitListener
from ._site import TwsgiSite

_log = Logger(namespace="twsgi")


class ListenError(Exception):
    """
    An endpoint could not listen; C{str()} is one line naming it.
    """


def describeAddress(address: Any) -> str:
    """
    A short text for a listening address: C{127.0.0.1:8000}, C{[::1]:8000},
    or a UNIX socket path.
    """
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    if host is not None and port is not None:
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    name = getattr(address, "name", None)
    if name is not None:
        return name.decode() if isinstance(name, bytes) else str(name)
    return str(address)


def _listenFailure(description: str, error: BaseException) -> ListenError:
    if isinstance(error, CannotListenError):
        reason = error.socketError
        text = getattr(reason, "strerror", None) or str(reason)
        return ListenError(f"cannot listen on {description}: {text}")
    return ListenError(f"cannot listen on {description}: {error}")


class TwsgiService(Service):
    """
    Serve one WSGI application on one or more endpoints.

    @ivar addresses: once started, C{(description, address)} for every
        listening port, with the real port numbers.
    @ivar resource: the L{WSGIResource}.
    @ivar threadpool: the WSGI thread pool.
    @ivar routes: what the listeners answer on the I/O thread (health,
        metrics, static files); set it before the service starts.
    """

    def __init__(
        self,
        application: Callable[..., Any],
        endpoints: Sequence[str],
        reactor: Any,
        threads: tuple[int, int] = (4, 32),
        observers: Sequence[AccessObserver] = (),
        exposeTracebacks: bool = False,
        appName: str | None = None,
        limits: Limits | None = None,
        adminEndpoints: Sequence[str] = (),
        forwardedAllowIps: str = DEFAULT_ALLOW_IPS,
    ) -> None:
        """
        @param application: the WSGI application.
        @param endpoints: Twisted server endpoint strings.
        @param reactor: the reactor to listen and run on.
        @param threads: the thread pool's C{(min, max)} size.
        @param observers: access-log observers.
        @param exposeTracebacks: show tracebacks in 500 responses.
        @param appName: how the application is named in the log.
        @param limits: the request limits and timeouts of every listener.
        @param adminEndpoints: endpoint strings of admin listeners, which
            answer only what L{routes} gives them (health, metrics), never
            the application, and write no access log.
        @param forwardedAllowIps: the peers whose forwarding headers are
            believed, unless a listener says otherwise with
            C{;forwarded-allow-ips=...} after its endpoint string.
        @raise ValueError: if an endpoint string is malformed.
        """
        self.application = application
        self.reactor = reactor
        self.adminDescriptions = tuple(adminEndpoints)
        self.descriptions = tuple(endpoints) + self.adminDescriptions
        self.routes: Routes = Routes()
        self.policies: dict[str, ProxyPolicy] = {}
        self.endpoints = []
        for description in self.descriptions:
            endpoint, options = splitListener(description)
            allow = options.get("forwarded-allow-ips", forwardedAllowIps)
            self.policies[description] = ProxyPolicy(parseAllowIps(allow))
            self.endpoints.append(serverFromString(reactor, endpoint))
        self.threads = threads
        self.observers = list(observers)
        self.appName = appName or repr(application)
        self.limits = limits if limits is not None else Limits()
        self.threadpool = ThreadPool(threads[0], threads[1], name="twsgi")
        self.resource = WSGIResource(
            application,
            self.threadpool,
            reactor,
            exposeTracebacks=exposeTracebacks,
            appName=self.appName,
        )
        self.ports: list[Any] = []
        self.addresses: list[tuple[str, Any]] = []
        self.whenListening: defer.Deferred[list[tuple[str, Any]]] = defer.Deferred()
        self._listening: defer.Deferred[Any] | None = None

    def makeSite(self, description: str) -> TwsgiSite:
        """
        The site for one listener: an admin listener's answers only
        L{routes}' admin paths; an application listener's answers L{routes}'
        paths and static mounts on the I/O thread, and the rest with the
        application.
        """
        if description in self.adminDescriptions:
            return TwsgiSite(
                self.routes.adminRoot(),
                self.reactor,
                listener=description,
                limits=self.limits,
                proxyPolicy=self.policies.get(description),
            )
        return TwsgiSite(
            self.routes.appRoot(self.resource),
            self.reactor,
            listener=description,
            observers=self.observers,
            limits=self.limits,
            proxyPolicy=self.policies.get(description),
        )

    def privilegedStartService(self) -> None:
        """
        Listen on every endpoint (before C{twistd} drops privileges, so that
        low ports work).  L{whenListening} fires with the addresses, or fails
        with a L{ListenError}.
        """
        if self._listening is not None:
            return
        d = self._listening = defer.gatherResults(
            [
                self._listen(description, endpoint)
                for description, endpoint in zip(
                    self.descriptions, self.endpoints, strict=True
                )
            ],
            consumeErrors=True,
        )

        def listening(ports: list[Any]) -> list[tuple[str, Any]]:
            _log.info(
                "twsgi serving {app} with {low}-{high} threads",
                app=self.appName,
                low=self.threads[0],
                high=self.threads[1],
            )
            return self.addresses

        def failed(failure: Any) -> Any:
            return failure.value.subFailure

        d.addCallbacks(listening, failed)
        d.chainDeferred(self.whenListening)

    def startService(self) -> None:
        """
        Start the thread pool, and listen if that was not done yet.
        """
        Service.startService(self)
        self.threadpool.start()
        self.privilegedStartService()

    @defer.inlineCallbacks
    def _listen(self, description: str, endpoint: Any) -> Any:
        try:
            port = yield endpoint.listen(self.makeSite(description))
        except BaseException as e:
            raise _listenFailure(description, e)
        self.ports.append(port)
        address = port.getHost()
        self.addresses.append((description, address))
        _log.info(
            "listening on {address} ({description})",
            address=describeAddress(address),
            description=description,
        )
        return port

    def stopService(self) -> defer.Deferred[Any]:
        """
        Stop listening, then stop the thread pool.
        """
        Service.stopService(self)
        self._listening = None
        ports, self.ports = self.ports, []
        d = defer.gatherResults(
            [defer.maybeDeferred(port.stopListening) for port in ports],
            consumeErrors=True,
        )
        d.addBoth(lambda _: self.threadpool.stop())
        return d


__all__ = ["ListenError", "TwsgiService", "describeAddress"]
