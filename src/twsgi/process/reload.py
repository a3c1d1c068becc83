# -*- test-case-name: tests.process.test_reload -*-
"""
C{--reload}: run the server in a worker process that C{hupper} restarts when
one of its source files changes (C{hupper} watches every imported module's
file, with C{watchdog} when it is installed).  For development only.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType, ModuleType
from typing import Protocol

from twisted.logger import Logger

from twsgi.lifecycle.signals import Handler
from twsgi.logs.clock import CallsLater

_log = Logger(namespace="twsgi")


class ReloaderProxy(Protocol):
    """
    What C{hupper} gives the serving process: a way to ask for a reload.
    """

    def trigger_reload(self) -> None: ...

    def graceful_shutdown(self) -> None: ...


class Unserved(Protocol):
    """
    A service that knows whether it served nothing (see
    L{twsgi.lifecycle.service.TwsgiService.unserved}).
    """

    unserved: bool


class RunsTriggers(Protocol):
    """
    A reactor's system event triggers.
    """

    def addSystemEventTrigger(
        self, phase: str, eventType: str, callable: Callable[[], object]
    ) -> object: ...


MONITOR_IGNORES = (
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGWINCH,
)
"""
The signals the monitor logs and ignores.  C{hupper} handles SIGHUP (it
restarts the worker), SIGINT and SIGTERM (it stops); any other signal of the
twsgi signal table would end or suspend the monitor, and with it the server.
"""


def _monitorIgnores(signum: int, frame: FrameType | None) -> None:
    # Signal context, in a process that runs no reactor and no logging: one
    # line written straight to standard error.
    name = signal.Signals(signum).name
    os.write(
        2,
        f"twsgi --reload: got {name}: ignored; the reloader restarts the "
        "server on SIGHUP and stops it on SIGINT or SIGTERM\n".encode(),
    )


NEEDS_HUPPER = "--reload needs hupper: pip install 'twsgi[reload]'"
"""
The error of C{--reload} where the C{reload} extra is not installed.
"""


def startReloader(
    argv: list[str],
    hupper: ModuleType | None = None,
    setSignal: Callable[[int, Handler], Handler] = signal.signal,
    directory: str | None = None,
) -> ReloaderProxy:
    """
    In the first process, become the monitor: start a worker running
    C{twsgi.cli.main.main(argv)} and restart it on every change, never
    returning; it logs and ignores the signals of L{MONITOR_IGNORES}.  In
    the worker, return the reloader proxy at once.

    @param directory: the directory twsgi was started in, to which the
        monitor goes back before it starts the worker: the worker applies a
        relative C{--chdir} itself, from there.
    @raise SystemExit: with a one-line message if C{hupper} is missing.
    """
    if hupper is None:
        try:
            import hupper as installed
        except ImportError:
            raise SystemExit(f"twsgi: {NEEDS_HUPPER}")
        hupper = installed
    if not hupper.is_active():
        for signum in MONITOR_IGNORES:
            setSignal(signum, _monitorIgnores)
        if directory is not None:
            os.chdir(directory)
    return hupper.start_reloader(
        "twsgi.cli.main.main",
        worker_kwargs={"argv": list(argv)},
    )


STARTING = 3.0
"""
Seconds after which C{hupper}'s monitor has seen every file the serving
process imported as it started: the process reports them once a second, and
the monitor looks at them once a second.
"""


def sourceTimes() -> dict[str, float]:
    """
    The modification time of the file of each module imported.
    """
    times = {}
    for module in sys.modules.copy().values():
        path = getattr(module, "__file__", None)
        if isinstance(path, str):
            try:
                times[path] = os.stat(path).st_mtime
            except OSError:
                pass
    return times


def reloadIfChangedWhileStarting(
    reactor: CallsLater,
    reloader: ReloaderProxy,
    times: Callable[[], dict[str, float]] = sourceTimes,
) -> None:
    """
    In the serving process, as it starts: ask for a reload if a file it
    imported changes in the next L{STARTING} seconds, before C{hupper}'s
    monitor has seen it.  The monitor takes the first modification time it
    sees as the file's, so it would never reload for a change saved then.
    """
    before = times()

    def check() -> None:
        after = times()
        changed = sorted(p for p, t in before.items() if after.get(p, t) != t)
        if changed:
            _log.info(
                "{path} changed as the server started; reloading", path=changed[0]
            )
            reloader.trigger_reload()

    reactor.callLater(STARTING, check)


def stopIfUnserved(
    reactor: RunsTriggers,
    service: Unserved,
    reloader: ReloaderProxy,
    setSignal: Callable[[int, Handler], Handler] = signal.signal,
    atexit: Callable[[Callable[[], None]], object] = atexit.register,
) -> None:
    """
    In the serving process: if it stops having served nothing (a port in
    use), have the monitor stop too, with the serving process's status,
    instead of waiting for a source file to change, which would not free
    the port.

    The monitor is told at interpreter exit, just before
    L{twsgi.lifecycle.drain.ExitStatus} ends the process: the monitor kills
    a process that has not ended a second after it asked, and this one's
    exit after its reactor stopped can take longer on a busy machine.
    """

    def stop() -> None:
        # The monitor answers with a SIGTERM, which would end this process
        # with that signal, not its own status.
        setSignal(signal.SIGTERM, signal.SIG_IGN)
        reloader.graceful_shutdown()

    def stopped() -> None:
        if service.unserved:
            atexit(stop)

    # Added once the shutdown began, after the trigger of the ExitStatus
    # made when the start failed: this exit handler is registered after
    # its own, and so runs before it.
    reactor.addSystemEventTrigger(
        "during",
        "shutdown",
        lambda: reactor.addSystemEventTrigger("after", "shutdown", stopped),
    )


__all__ = [
    "MONITOR_IGNORES",
    "NEEDS_HUPPER",
    "STARTING",
    "ReloaderProxy",
    "reloadIfChangedWhileStarting",
    "sourceTimes",
    "startReloader",
    "stopIfUnserved",
]
