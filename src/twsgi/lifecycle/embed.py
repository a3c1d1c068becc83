# -*- test-case-name: tests.lifecycle.test_embed -*-
"""
Embedding helpers: L{serve} runs a WSGI application from a script, like
C{waitress.serve}; L{OrderedMultiService} stops its children one at a time.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
from twisted.application.service import MultiService
from twisted.internet import defer
from twisted.logger import Logger, globalLogBeginner
from twisted.python.failure import Failure

from twsgi.config.model import ServerConfig
from twsgi.lifecycle.drain import DrainResult
from twsgi.lifecycle.service import TwsgiService
from twsgi.lifecycle.signals import ProcessSignals
from twsgi.logs.serverlog import logObserverFactory

_log = Logger(namespace="twsgi")


class OrderedMultiService(MultiService):
    """
    A L{MultiService} that stops its children one at a time, the last added
    first, each once the previous one's stop has finished.

    L{MultiService} stops all its children at once: a service that a WSGI
    application needs (a database pool, a cache, a message queue) would stop
    while twsgi still drains the requests that use it.  Add such services
    first and twsgi last; twsgi then drains completely before they stop.
    """

    def stopService(self) -> defer.Deferred[None]:
        """
        Stop the children in reverse order, one after the other.
        """
        self.running = 0

        @defer.inlineCallbacks
        def stopAll() -> Any:
            for service in reversed(list(self)):
                try:
                    yield defer.maybeDeferred(service.stopService)
                except BaseException:
                    _log.failure("stopping {service!r} failed", service=service)

        return stopAll()  # type: ignore[no-any-return]


def embeddedService(
    application: Callable[..., Any],
    endpoints: Sequence[str],
    reactor: Any,
    config: ServerConfig | None,
    keywords: Mapping[str, Any],
) -> TwsgiService:
    """
    The L{TwsgiService} of L{serve} and L{twsgi.testing.startServer}.

    @param endpoints: endpoint strings; if any, they replace the config's.
    @param config: the settings (default: L{ServerConfig}'s defaults).
    @param keywords: settings (L{ServerConfig} field names, with values of
        their types) that replace the config's, and keyword arguments of
        L{TwsgiService} (C{observers}, C{onStart}...).
    @raise TypeError: for a keyword that is neither, or a setting given as
        text (as on the command line) whose default is not text.
    """
    fields = attrs.fields_dict(ServerConfig)
    settings = {name: value for name, value in keywords.items() if name in fields}
    for name, value in settings.items():
        default = fields[name].default
        if isinstance(value, str) and not isinstance(default, (str, type(None))):
            raise TypeError(
                f"{name}={value!r} is a str; the setting {name} takes a "
                f"{type(default).__name__}, as {default!r} (twsgi.resolveConfig "
                f"reads settings written as on the command line)"
            )
    service = {name: value for name, value in keywords.items() if name not in fields}
    if endpoints:
        settings["endpoint"] = tuple(endpoints)
    config = attrs.evolve(config or ServerConfig(), **settings)
    return TwsgiService(config, application, reactor, **service)


def serve(
    application: Callable[..., Any],
    *endpoints: str | Sequence[str],
    config: ServerConfig | None = None,
    reactor: Any = None,
    log: bool = True,
    **keywords: Any,
) -> DrainResult | None:
    """
    Serve C{application} until SIGTERM or SIGINT, then stop gracefully.
    Blocks while the reactor runs::

        import twsgi
        twsgi.serve(app, "tcp:8000", threads=(4, 16), access_log="-")

    The first SIGTERM or SIGINT drains (see L{TwsgiService.stopService}); a
    second one skips the wait.  SIGUSR1 reopens the access log files; SIGHUP,
    SIGUSR2, SIGTTIN, SIGTTOU and SIGWINCH are logged and ignored (see
    L{twsgi.lifecycle.signals}).  The previous handlers are put back once the reactor
    stopped.

    @param endpoints: Twisted server endpoint strings (default: the
        config's, C{tcp:8000:interface=127.0.0.1}), or lists of them.
    @param config: the settings (default: L{ServerConfig}'s defaults, but
        without an access log).
    @param reactor: the reactor to run (default: the global one).
    @param log: send Twisted's log to standard error as text.
    @param keywords: settings that replace the config's, by their
        L{ServerConfig} names (C{access_log="-"} writes the access log on
        standard output, C{access_log_format="json"} as JSON lines), and
        keyword arguments of L{TwsgiService} (C{observers}, C{onStart}...).
    @return: the L{DrainResult} of the stop.
    @raise SystemExit: with status 1 if an endpoint could not listen or an
        C{onStart} hook failed (the reason is in the log; without C{log},
        in the exception).
    """
    if reactor is None:
        from twisted.internet import reactor as installed

        reactor = installed
    if log:
        globalLogBeginner.beginLoggingTo(
            [logObserverFactory("text")(sys.stderr)],
            redirectStandardIO=False,
        )
    # serve(app, ["tcp:8000", ...]) too.
    listeners = tuple(
        e for item in endpoints for e in ((item,) if isinstance(item, str) else item)
    )
    if config is None:
        config = ServerConfig(access_log="none")
    service = embeddedService(application, listeners, reactor, config, keywords)
    signals = ProcessSignals(reactor, service, exitProcess=False)
    failed: list[Failure] = []

    def listenFailed(failure: Failure) -> None:
        # The service logged it.
        failed.append(failure)
        if reactor.running:
            reactor.stop()

    def start() -> None:
        service.startService()
        service.whenListening.addErrback(listenFailed)

    reactor.callWhenRunning(start)
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    # twsgi's SIGTERM and SIGINT handlers go in once the reactor runs, over
    # the reactor's: putting back what they replaced would leave the stopped
    # reactor's (a Ctrl-C after serve() returned would do nothing).
    stops = (signal.SIGTERM, signal.SIGINT)
    previous = {signum: signal.getsignal(signum) for signum in stops}
    signals.install()
    reactor.run()
    signals.uninstall()
    if threading.current_thread() is threading.main_thread():
        for signum, handler in previous.items():
            if handler is not None:
                signal.signal(signum, handler)
    if failed:
        # As the command line does: the error in the log, exit status 1.
        raise SystemExit(1 if log else f"twsgi: {failed[0].value}")
    return service.drainResult


__all__ = ["OrderedMultiService", "embeddedService", "serve"]
