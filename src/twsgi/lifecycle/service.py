# -*- test-case-name: tests.lifecycle.test_service -*-
"""
The twsgi service: a thread pool, one listener per endpoint, and an ordered
stop.

L{TwsgiService} is an ordinary L{IService}: a C{.tac} file, another
L{MultiService} or a test can own it.  It never reads the global reactor and
installs no signal handlers unless asked to (C{handleSignals=True}).  Its
C{stopService} is the graceful stop of L{twsgi.lifecycle.drain}.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.error import CannotListenError
from twisted.logger import Logger

from twsgi.config.model import ServerConfig
from twsgi.lifecycle.build import (
    EndpointFor,
    accessObservers,
    commandSettings,
    routesFromConfig,
    serviceParts,
)
from twsgi.lifecycle.drain import (
    Drain,
    DrainResult,
    ExitStatus,
    runHooks,
    stopThreadPool,
)
from twsgi.lifecycle.signals import ProcessSignals
from twsgi.logs.accesslog import AccessObserver
from twsgi.logs.serverlog import quietPortLines
from twsgi.server.exchange import chooseTemporaryDirectory
from twsgi.server.forwarded import splitListener
from twsgi.server.negotiate import priorKnowledge
from twsgi.server.ports import (
    ListeningPort,
    Stoppable,
    closeAcceptingBacklog,
    describeAddress,
    refuseConnections,
)
from twsgi.server.routes import Routes
from twsgi.server.site import TwsgiSite
from twsgi.server.tls import speaksTLS
from twsgi.server.transport import Address
from twsgi.wsgi.pool import PoolStartError, PoolStats

_log = Logger(namespace="twsgi")


def _onDevNull(fd: int) -> bool:
    """
    Whether the file descriptor C{fd} is open on /dev/null (as standard
    output is once C{twistd} daemonized).
    """
    try:
        opened = os.fstat(fd)
        null = os.stat(os.devnull)
    except OSError:
        return False
    return stat.S_ISCHR(opened.st_mode) and opened.st_rdev == null.st_rdev


class ListenError(Exception):
    """
    An endpoint could not listen; C{str()} is one line naming it.
    """


class Port(Stoppable, Protocol):
    """
    A listening port, as the service uses it (an C{IListeningPort}).
    """

    def getHost(self) -> Address: ...


def listeningURL(description: str, address: object) -> str:
    """
    Where a listener can be reached, as an operator would type it: a URL
    (C{http://127.0.0.1:8000}, C{https://[::1]:8443}) for an address with a
    host and a port, C{unix:PATH} for a UNIX socket.

    @param description: the listener's endpoint string: C{ssl:} and C{tls:}
        ones (also behind C{haproxy:}) speak HTTPS.
    """
    text = describeAddress(address)
    if getattr(address, "port", None) is None:
        return f"unix:{text}" if getattr(address, "name", None) is not None else text
    scheme = "https" if speaksTLS(description) else "http"
    return f"{scheme}://{text}"


def logListening(description: str, port: Port) -> Address:
    """
    Log the real address a listener got (port 0 resolved), as a URL, and
    return it.
    """
    address = port.getHost()
    _log.info(
        "listening on {url} ({description})",
        url=listeningURL(description, address),
        address=describeAddress(address),
        description=description,
    )
    return address


PRIVILEGED_PORT_HINT = (
    "ports below 1024 need root or CAP_NET_BIND_SERVICE; use a port of 1024 "
    "or above behind a proxy, or a systemd: endpoint with socket activation"
)


def _listenFailure(description: str, error: BaseException) -> ListenError:
    """
    The one-line error for an endpoint that could not listen; permission
    denied on a port below 1024 says why.
    """
    if isinstance(error, CannotListenError):
        reason = error.socketError
        text = getattr(reason, "strerror", None) or str(reason)
        port = error.port
        if (
            getattr(reason, "errno", None) == errno.EACCES
            and isinstance(port, int)
            and 0 < port < 1024
        ):
            text += f" ({PRIVILEGED_PORT_HINT})"
        return ListenError(f"cannot listen on {description}: {text}")
    if isinstance(error, OSError) and error.strerror:
        # A unix: listener's lock file (PATH.lock, beside the socket) that
        # cannot be made: name that file, not the symlink's "PID -> PATH".
        path = error.filename2 or error.filename
        text = f"{path}: {error.strerror}" if path else error.strerror
        return ListenError(f"cannot listen on {description}: {text}")
    return ListenError(f"cannot listen on {description}: {error}")


class TwsgiService(Service):
    """
    Serve one WSGI application on one or more endpoints, as a
    L{ServerConfig} says.

    @ivar config: the L{ServerConfig} it was built from.
    @ivar addresses: once started, C{(description, address)} for every
        listening port, with the real port numbers.
    @ivar resource: the L{WSGIResource}.
    @ivar threadpool: the WSGI thread pool.
    @ivar routes: what the listeners answer on the I/O thread (health,
        metrics, static files), as the config says; another may be set
        before the service starts.
    @ivar sites: the L{TwsgiSite} of every listener.
    @ivar drainResult: the L{DrainResult} of the last stop, or C{None}.
    @ivar retiring: the next (or current) stop is a worker's retirement
        (see L{retire}).
    @ivar orphan: the retirement is that of a worker whose supervisor is
        gone (see L{orphaned}).
    @ivar unserved: nothing was served: a listener could not listen
        (L{whenListening} failed), or the system refused every WSGI thread;
        stopping then closes what did start, with no drain.
    @ivar startFailureRaises: L{privilegedStartService} raises the error of
        a start that failed (a listener that cannot listen, an C{onStart}
        hook that failed) besides logging it.  A C{twistd} that daemonizes
        has detached by the time it calls L{privilegedStartService}, and
        reports an exception raised there through its status pipe: the
        C{twistd} command then exits 1 with the error instead of 0.  Set
        by the command line under a daemonizing C{twistd}.
    """

    retiring = False
    orphan = False
    unserved = False
    startFailureRaises = False

    def __init__(
        self,
        config: ServerConfig,
        application: Callable[..., Any],
        reactor: Any,
        *,
        observers: Sequence[AccessObserver] = (),
        onStart: Sequence[Callable[..., object]] = (),
        onDrain: Sequence[Callable[..., object]] = (),
        onStop: Sequence[Callable[..., object]] = (),
        handleSignals: bool = False,
        endpointFor: EndpointFor | None = None,
        inWorker: bool = False,
        byCommand: bool = False,
    ) -> None:
        """
        @param config: the settings; they become the listeners, the
            limits, the thread pool, the WSGI resource, the access log, the
            hooks and the routes in L{twsgi.lifecycle.build}.
        @param application: the WSGI application.
        @param reactor: the reactor to listen and run on.
        @param observers: access-log observers, after the configured ones.
        @param onStart: callables run in order with this service once it
            listens (after those of C{config.on_start}); each may return a
            L{Deferred}.  The first that fails ends the start (see
            L{whenListening}).
        @param onDrain: the same, when a stop begins.
        @param onStop: the same, once the stop is complete.
        @param handleSignals: on start, install the signal handlers of a
            process that runs this service alone (see L{twsgi.lifecycle.signals}):
            the first SIGTERM or SIGINT stops the reactor gracefully, the
            second skips the wait, and the process exits non-zero if the
            stop cut requests off; SIGUSR1 reopens the log files; SIGHUP,
            SIGUSR2, SIGTTIN, SIGTTOU and SIGWINCH are logged and ignored.  A
            listener that cannot listen, or an C{onStart} hook that fails,
            then stops the reactor, and the process exits with status 1.  (Without it, that is logged and
            L{whenListening} fails.)
        @param endpointFor: makes the endpoint for an endpoint string; a
            worker process passes one that adopts an inherited socket.
        @param inWorker: this process is a worker of a supervisor (its
            metrics are shared with the other workers', and the
            application sees C{wsgi.multiprocess} true).
        @param byCommand: the twsgi command made this service, and applies
            the settings of its process itself (C{--workers},
            C{--reload}...); made elsewhere (a C{.tac} file, a program), the
            service warns that those settings have no effect.
        @raise EndpointError: if an endpoint string is malformed.
        @raise ConfigError: if a setting cannot be used (an access log file
            that cannot be opened, a missing static directory...).
        @raise AppLoadError: if a configured hook or observer cannot be
            loaded.
        """
        self.config = config
        self.application = application
        self.reactor = reactor
        parts = serviceParts(
            config, application, reactor, endpointFor, self._requestStuck, inWorker
        )
        listeners = parts.listeners
        self.descriptions = listeners.descriptions
        self.adminDescriptions = listeners.admin
        self._metricsDescriptions = listeners.metrics
        self.policies = listeners.policies
        self.endpoints = list(listeners.endpoints)
        self.threads = parts.threads
        self.observers = list(observers)
        self._accessLogOnStdout = parts.accessLogOnStdout
        self.appName = parts.appName
        self.limits = parts.limits
        self.threadpool = parts.threadpool
        self.gate = parts.gate
        self.resource = parts.resource
        self.resource.multiprocess = inWorker
        self.ports: list[Port] = []
        # Public, and read as IP addresses (.host, .port) by the embedding
        # code that knows its endpoints: an Address union would make every
        # such reader narrow it first.
        self.addresses: list[tuple[str, Any]] = []
        self.whenListening: defer.Deferred[list[tuple[str, Any]]] = defer.Deferred()
        self._listening: defer.Deferred[Any] | None = None
        self.sites: list[TwsgiSite] = []
        self._portSites: list[tuple[Port, TwsgiSite]] = []
        self.onStart = [*parts.onStart, *onStart]
        self.onDrain = [*parts.onDrain, *onDrain]
        self.onStop = [*parts.onStop, *onStop]
        self.handleSignals = handleSignals
        self.http2 = parts.http2
        self.signals: ProcessSignals | None = None
        self.drainDelay = parts.drainDelay
        self.gracefulTimeout = parts.gracefulTimeout
        self.keepAliveGrace = parts.keepAliveGrace
        self.drainResult: DrainResult | None = None
        self._drain: Drain | None = None
        self._skipWait = False
        # Fires on a second stop signal: the listeners stop waiting for the
        # handshakes they answered (see closeAcceptingBacklog).
        self._hurry: defer.Deferred[None] = defer.Deferred()
        self._stopping: defer.Deferred[DrainResult] | None = None
        self.routes: Routes = routesFromConfig(self, config, inWorker)
        metrics = self.routes.metrics
        if metrics is not None:
            # What the metrics count as it happens (see also makeSite and
            # _listen).
            if self.gate is not None:
                self.gate.onPause = metrics.acceptPaused
            self.resource.overloadLog.onRefused = metrics.requestRefused
        # The access log file is opened last, so that no error above leaves
        # it open.
        self.observers[:0] = accessObservers(config)
        ignored = [] if byCommand else commandSettings(config)
        if ignored:
            _log.warn(
                "{flags} not applied: a TwsgiService made by a .tac file or a "
                "program runs in its own process as it is; only the twsgi "
                "command (twsgi, python -m twsgi, twistd twsgi) applies "
                "{these}",
                flags=", ".join(ignored),
                these="it" if len(ignored) == 1 else "them",
            )

    @property
    def draining(self) -> bool:
        """
        C{True} from the moment a stop begins: readiness reports 503.
        """
        return self._drain is not None and self._drain.draining

    @property
    def inFlight(self) -> int:
        """
        Requests in flight on every listener.  Called in the I/O thread.
        """
        return sum(site.connections.inFlight for site in self.sites)

    def addAccessObserver(self, observer: AccessObserver) -> None:
        """
        Send the L{AccessRecord} of every later request to C{observer} too.
        """
        self.observers.append(observer)
        for site in self.sites:
            site.observers.append(observer)

    def poolStats(self) -> PoolStats:
        """
        The thread pool's busy and idle threads and queued requests.  Called
        in any thread.
        """
        return self.threadpool.stats()

    def makeSite(self, description: str) -> TwsgiSite:
        """
        The site for one listener: an admin listener's answers only
        L{routes}' admin paths (and a metrics listener's its metrics paths);
        an application listener's answers L{routes}' paths and static mounts
        on the I/O thread, and the rest with the application.
        """
        if description in self.adminDescriptions:
            return TwsgiSite(
                self.routes.adminRoot(metrics=description in self._metricsDescriptions),
                self.reactor,
                listener=description,
                limits=self.limits,
                proxyPolicy=self.policies.get(description),
                http2=self.http2,
            )
        site = TwsgiSite(
            self.routes.appRoot(self.resource),
            self.reactor,
            listener=description,
            observers=self.observers,
            limits=self.limits,
            proxyPolicy=self.policies.get(description),
            gate=self.gate,
            http2=self.http2,
            http2PriorKnowledge=priorKnowledge(splitListener(description)[1]),
        )
        if self.routes.metrics is not None:
            site.onStreamReset = self.routes.metrics.streamReset
        return site

    def privilegedStartService(self) -> None:
        """
        Listen on every endpoint (before C{twistd} drops privileges, so that
        low ports work), then run the C{onStart} hooks.  L{whenListening}
        fires with the addresses, or fails with a L{ListenError}, or with
        the L{HookFailed} of the first hook that failed; with
        L{startFailureRaises}, that error is raised here too if it is known
        by the time this returns.  The runner's log files leave out
        Twisted's legacy port lines from now on (L{quietPortLines}).
        """
        if self._listening is not None:
            return
        self._installSignals()
        quietPortLines()
        if self._accessLogOnStdout and _onDevNull(1):
            _log.warn(
                "the access log goes to standard output, which is /dev/null "
                "(as under twistd without -n): give access_log (--access-log) a "
                "file path"
            )
        self.sites = []
        d = self._listening = defer.gatherResults(
            [
                self._listen(description, endpoint)
                for description, endpoint in zip(
                    self.descriptions, self.endpoints, strict=True
                )
            ],
            consumeErrors=True,
        )

        def listening(ports: list[Any]) -> Any:
            _log.info(
                "twsgi serving {app} with {low}-{high} threads",
                app=self.appName,
                low=self.threads[0],
                high=self.threads[1],
            )
            started = runHooks(self.onStart, self, mustSucceed=True)
            started.addErrback(startFailed)
            return started.addCallback(lambda _: self.addresses)

        def startFailed(failure: Any) -> Any:
            # An on-start hook failed (it logged why): as a listener that
            # failed, the process ends with status 1, after a graceful stop
            # (the listeners are open), its drain and stop hooks.
            startError.append(failure.value)
            if self.handleSignals:
                self._endProcess()
            return failure

        def failed(failure: Any) -> Any:
            self.unserved = True
            failure = failure.value.subFailure
            _log.error("{error}", error=str(failure.value))
            startError.append(failure.value)
            if self.handleSignals:
                self._endProcess()
            return failure

        startError: list[BaseException] = []
        d.addCallbacks(listening, failed)
        d.chainDeferred(self.whenListening)
        if startError and self.startFailureRaises:
            raise startError[0] from None

    def startService(self) -> None:
        """
        Start the thread pool, choose the directory of request bodies'
        temporary files (L{chooseTemporaryDirectory}), and listen if that
        was not done yet.

        When the system refuses every WSGI thread, the service does what it
        does when a listener fails (see L{privilegedStartService}), with
        the L{PoolStartError}: it logs it, fails L{whenListening} (unless
        it listens already), ends the process with status 1 if it handles
        its signals, and raises it with L{startFailureRaises}.
        """
        Service.startService(self)
        chooseTemporaryDirectory()
        self._drain = None
        self._stopping = None
        self.retiring = False
        self._installSignals()
        try:
            self.threadpool.start()
        except PoolStartError as e:
            # As a listener that failed: one line, L{whenListening} fails
            # (unless twistd listened already), and with the process's
            # signals the process ends with status 1.  Nothing listens.
            self.unserved = True
            _log.error("{error}", error=str(e))
            if self._listening is None:
                self._listening = defer.fail(e)
                self._listening.addErrback(lambda _: None)
                self.whenListening.errback(e)
            if self.handleSignals:
                self._endProcess()
            if self.startFailureRaises:
                raise
            return
        if self.resource.watchdog is not None:
            self.resource.watchdog.start()
        self.privilegedStartService()

    def _requestStuck(self) -> None:
        """
        Count a request that ran past C{request_timeout} in the metrics, if
        they are on.  Called in the I/O thread.
        """
        if self.routes.metrics is not None:
            self.routes.metrics.requestStuck()

    def _endProcess(self) -> None:
        """
        A listener failed in a process that runs this service alone: stop
        the reactor (now, or as soon as it runs), then exit with status 1
        once the runner finished its own shutdown (C{twistd} removes its pid
        file).
        """
        ExitStatus(self.reactor).fail(self.reactor)

    def _installSignals(self) -> None:
        """
        With C{handleSignals}, install the handlers before listening: once
        a server listens, no signal sent to it may end it by surprise.
        """
        if self.handleSignals:
            if self.signals is None:
                self.signals = ProcessSignals(self.reactor, self)
            self.signals.install()

    @defer.inlineCallbacks
    def _listen(self, description: str, endpoint: Any) -> Any:
        site = self.makeSite(description)
        try:
            port = yield endpoint.listen(site)
        except BaseException as e:
            raise _listenFailure(description, e)
        if self._drain is not None:
            # The stop began while this endpoint was still starting to listen.
            yield closeAcceptingBacklog(port, self._hurry)
            return port
        self.sites.append(site)
        self.ports.append(port)
        self._portSites.append((port, site))
        if self.gate is not None and description not in self.adminDescriptions:
            self.gate.watch(port)
        if isinstance(port, ListeningPort) and self.routes.metrics is not None:
            port.onOutOfResources = self.routes.metrics.acceptBackedOff
        self.addresses.append((description, logListening(description, port)))
        return port

    def stopService(self) -> defer.Deferred[DrainResult]:
        """
        Stop gracefully, in order (see L{twsgi.lifecycle.drain}): readiness flips,
        C{onDrain} hooks run, the listeners close after C{drainDelay},
        requests in flight finish or are cut off after C{gracefulTimeout},
        the thread pool stops, C{onStop} hooks run.  Called in the I/O thread.

        @return: a L{Deferred} firing with the L{DrainResult}.
        """
        if self._stopping is not None:
            return self._stopping
        Service.stopService(self)
        self._listening = None
        if self.unserved:
            self._stopping = self._stopUnserved()
            return self._stopping
        retiring = self.retiring
        self._drain = Drain(
            self.reactor,
            lambda: [
                site.connections
                for site in self.sites
                if retiring or not self._admin(site)
            ],
            self._stopAccepting if retiring else self._stopListening,
            lambda: stopThreadPool(self.threadpool, self.reactor),
            drainDelay=0.0 if retiring else self.drainDelay,
            gracefulTimeout=self.gracefulTimeout,
            idleGrace=self.keepAliveGrace,
            readiness=not retiring,
        )
        if self._skipWait:
            self._drain.skipWait()
        # Readiness flips first, synchronously, then the drain hooks run
        # while the drain delay runs.
        self._drain.draining = not retiring
        hooks = runHooks(self.onDrain, self)
        d = self._drain.stop()

        def stopped(result: DrainResult) -> Any:
            self.drainResult = result
            if self.resource.watchdog is not None:
                self.resource.watchdog.stop()
            after = defer.gatherResults([hooks, self._stopAdmin()], consumeErrors=True)
            after.addCallback(lambda _: runHooks(self.onStop, self))
            after.addCallback(lambda _: result)
            return after

        d.addCallback(stopped)
        self._stopping = d
        return d

    @defer.inlineCallbacks
    def _stopUnserved(self) -> Any:
        """
        Stop after a listener failed, or no WSGI thread started: nothing was
        served, so there is no drain to tell of.  Close the listeners that did start, and the
        thread pool.
        """
        ports, self.ports = self.ports, []
        self._portSites = []
        yield defer.gatherResults(
            [defer.maybeDeferred(port.stopListening) for port in ports],
            consumeErrors=True,
        )
        yield stopThreadPool(self.threadpool, self.reactor)
        self.drainResult = DrainResult(drained=True, cut=0)
        return self.drainResult

    def retire(self) -> None:
        """
        Stop as a worker process that its supervisor replaces: the
        supervisor and the other workers hold the same listening sockets, so
        this one stops accepting at once on every listener (admin ones too)
        without accepting their backlog, skips the drain delay, leaves
        readiness alone (nobody reaches it any more), and finishes the
        requests and connections it already accepted under the graceful
        stop's rules.  With signal handling, this stops the reactor as a
        first stop signal would.  Called in the I/O thread.
        """
        if self.signals is not None:
            self.signals.stop.retire()
        elif self._stopping is None:
            self.retiring = True
            self.stopService()

    def orphaned(self) -> None:
        """
        Retire as a worker whose supervisor is gone (SIGKILL, the OOM killer,
        a crash): nobody is left to refuse new connections on the sockets
        it shares with its sibling workers, which are all stopping too, and
        whatever waits in a socket's queue when the last copy closes is
        reset.  So this worker refuses them itself
        (L{refuseConnections}: the filter is on the shared socket), and
        accepts and serves its queue before it closes its copy, as it does
        on a stop (L{closeAcceptingBacklog}).  Called in the I/O thread.
        """
        self.orphan = True
        for port in self.ports:
            if isinstance(port, ListeningPort) and port.ownerRefuses:
                refuseConnections(port)
        self.retire()

    def skipWait(self) -> None:
        """
        End a stop's drain delay, its listeners' wait for the handshakes
        they answered (see L{closeAcceptingBacklog}) and its graceful wait
        now, or as soon as the stop begins.  Called in the I/O thread.
        """
        self._skipWait = True
        if not self._hurry.called:
            self._hurry.callback(None)
        if self._drain is not None:
            self._drain.skipWait()

    def _admin(self, site: TwsgiSite) -> bool:
        return site.listener in self.adminDescriptions

    def _stopListening(self) -> defer.Deferred[Any]:
        """
        Close the application listeners, after accepting their backlog.
        Admin listeners stay open, so that health checks are answered (with
        a 503 for readiness) until the drain is over.
        """
        closing = {
            port: site for port, site in self._portSites if not self._admin(site)
        }
        self.ports = [port for port in self.ports if port not in closing]
        return defer.gatherResults(
            [closeAcceptingBacklog(port, self._hurry) for port in closing],
            consumeErrors=True,
        )

    def _stopAccepting(self) -> defer.Deferred[Any]:
        """
        Stop accepting on every listener still open, now.  (Retiring, the
        backlog is left to the other processes that share the sockets; an
        orphan, whose siblings stop too, accepts it first.)
        """
        ports, self.ports = self.ports, []
        self._portSites = []
        if self.orphan:
            return defer.gatherResults(
                [closeAcceptingBacklog(port, self._hurry) for port in ports],
                consumeErrors=True,
            )
        return defer.gatherResults(
            [defer.maybeDeferred(port.stopListening) for port in ports],
            consumeErrors=True,
        )

    def _stopAdmin(self) -> defer.Deferred[Any]:
        """
        Close the admin listeners and their connections, once drained.
        """
        for site in self.sites:
            if self._admin(site):
                for channel in list(site.connections):
                    channel.transport.loseConnection()
        return self._stopAccepting()


__all__ = [
    "ListenError",
    "TwsgiService",
    "describeAddress",
    "listeningURL",
]
