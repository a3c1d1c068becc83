# -*- test-case-name: tests.lifecycle.test_signals -*-
"""
What each signal does to a twsgi process: one table per kind of process, so
that no signal an operator (or C{logrotate}, or a terminal) sends kills or
suspends a server by surprise.

  - L{Mode.SINGLE}, a process that serves by itself (C{twsgi},
    C{python -m twsgi}, C{twistd twsgi}, C{twist twsgi} without
    C{--workers}, L{twsgi.serve}, a L{twsgi.TwsgiService} given
    C{handleSignals=True}): SIGTERM and SIGINT stop it gracefully
    (L{StopSignals}); SIGUSR1 reopens its log files; SIGHUP,
    SIGTTIN and SIGTTOU, which steer a supervisor, are logged and ignored,
    saying how to get one; SIGUSR2 and SIGWINCH are logged and ignored.
  - L{Mode.SUPERVISOR}, the parent of C{--workers N}: SIGHUP replaces the
    workers, SIGTTIN and SIGTTOU add and remove one, SIGUSR1 is passed on to
    every worker; SIGUSR2 and SIGWINCH are logged and ignored.
  - L{Mode.WORKER}: SIGTERM stops it (once, however often it comes),
    SIGQUIT stops it without waiting, L{twsgi.process.workers.RETIRE_SIGNAL}
    (SIGUSR2) retires it, SIGUSR1 reopens its log files; the signals that
    steer the supervisor stay ignored
    (L{twsgi.process.workers.ignoreSupervisorSignals}).

A handler only hands the signal over to the I/O thread
(C{reactor.callFromThread}), and then calls the handler that was there
before ours if it is a Python callable: C{twistd} with a log file rotates
that file on SIGUSR1 with its own handler, which keeps doing so.  The stop
signals are the exception: they replace the reactor's own handlers, which
would stop the reactor a second time (see L{StopSignals}).
"""

from __future__ import annotations

import contextlib
import enum
import functools
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from types import FrameType
from typing import Any, Protocol

from twisted.logger import Logger

from twsgi.lifecycle.drain import EXIT_CUT, RunningReactor, exitNow
from twsgi.logs.files import reopenAll
from twsgi.wsgi.pool import CallsFromThread

_log = Logger(namespace="twsgi")

RELOAD_HINT = (
    "a reload needs the supervisor: run twsgi with --workers 1 or more "
    "(--workers 1 runs one worker under a supervisor), or restart this process"
)
"""
What a process without a supervisor logs on SIGHUP.
"""

WORKERS_HINT = "adding or removing workers needs the supervisor (--workers N)"
"""
What a process without a supervisor logs on SIGTTIN and SIGTTOU.
"""


Handler = Callable[[int, FrameType | None], object] | int | None
"""
A signal's disposition, as L{signal.signal} takes and returns it: a Python
handler, C{SIG_DFL} or C{SIG_IGN}, or C{None} (set outside Python).
"""


class SignalReactor(RunningReactor, CallsFromThread, Protocol):
    """
    What the stop signals need of the reactor.
    """


class Stopping(Protocol):
    """
    What the stop signals act on: a L{twsgi.TwsgiService}, or a
    L{twsgi.process.workers.Supervisor}.

    @ivar retiring: set when a worker's stop is its retirement.
    """

    retiring: bool

    def stopService(self) -> object: ...

    def skipWait(self) -> None: ...


class Mode(enum.Enum):
    """
    The kinds of twsgi process, each with its own table of signals.
    """

    SINGLE = "single"
    SUPERVISOR = "supervisor"
    WORKER = "worker"


def logFilesOf(service: object) -> list[object]:
    """
    The log files C{service} writes and can reopen: those of its access-log
    observers (L{twsgi.logs.accesslog.FileAccessLog} has a C{file}; standard
    output cannot be reopened).  twsgi opens no other log file: its own log
    goes where the runner sends it (C{twistd --logfile} rotates that file
    on SIGUSR1 itself).
    """
    files = [getattr(o, "file", None) for o in getattr(service, "observers", ())]
    return [f for f in files if hasattr(f, "reopen")]


def ignored(name: str, why: str = "") -> Callable[[], None]:
    """
    The action of a signal that is logged and ignored.

    @param name: the signal's name, C{SIGUSR2} for example.
    @param why: what the operator may want to know instead.
    """

    def log() -> None:
        _log.info(
            "twsgi got {name}: ignored{why}", name=name, why=f"; {why}" if why else ""
        )

    return log


def reopenLogs(service: object) -> None:
    """
    SIGUSR1: reopen every log file C{service} writes, or say that there is
    none.  Called in the I/O thread.
    """
    files = logFilesOf(service)
    if files:
        reopenAll(files)
    else:
        _log.info(
            "twsgi got SIGUSR1: nothing to reopen, twsgi writes no log file "
            "(the access log goes to standard output, or is off)"
        )


def actions(mode: Mode, service: Any) -> dict[int, Callable[[], object]]:
    """
    The signals of C{mode} besides the stop signals, each with what it does
    (in the I/O thread).

    @param service: a L{twsgi.TwsgiService} (single process, worker) or a
        L{twsgi.process.workers.Supervisor}.  (Typed C{Any}: which methods
        are used depends on C{mode}, and the supervisor's layer is above
        this one.)
    """
    if mode is Mode.SUPERVISOR:
        return {
            signal.SIGHUP: service.reload,
            signal.SIGTTIN: service.addWorker,
            signal.SIGTTOU: service.removeWorker,
            signal.SIGUSR1: service.reopenLogs,
            signal.SIGUSR2: ignored("SIGUSR2"),
            signal.SIGWINCH: ignored("SIGWINCH"),
        }
    if mode is Mode.WORKER:
        # The supervisor retires a worker with SIGUSR2 (RETIRE_SIGNAL).
        return {
            signal.SIGUSR1: lambda: reopenLogs(service),
            signal.SIGUSR2: service.retire,
        }
    return {
        signal.SIGHUP: ignored("SIGHUP", RELOAD_HINT),
        signal.SIGTTIN: ignored("SIGTTIN", WORKERS_HINT),
        signal.SIGTTOU: ignored("SIGTTOU", WORKERS_HINT),
        signal.SIGUSR1: lambda: reopenLogs(service),
        signal.SIGUSR2: ignored("SIGUSR2"),
        signal.SIGWINCH: ignored("SIGWINCH"),
    }


@contextlib.contextmanager
def ignoredWhileLoading() -> Iterator[None]:
    """
    Ignore the signals of the table that end or suspend a process by
    default (all but the stop signals) while the application loads: a large
    one takes seconds to import, before the process installs its handlers,
    and a C{logrotate} SIGUSR1 or a SIGHUP would end it then.  Their
    default actions are back afterwards, so that C{twistd}, which installs
    its SIGUSR1 log rotation only over the default action, still does.
    Called in the main thread.
    """
    ignored = []
    if threading.current_thread() is threading.main_thread():
        for signum in actions(Mode.SINGLE, None):
            if signal.getsignal(signum) == signal.SIG_DFL:
                signal.signal(signum, signal.SIG_IGN)
                ignored.append(signum)
    try:
        yield
    finally:
        for signum in ignored:
            signal.signal(signum, signal.SIG_DFL)


class SignalTable:
    """
    Handlers for a set of signals, each of which hands its action over to the
    I/O thread, then (with C{chain}) calls the Python handler it replaced, if
    any.

    @ivar actions: signal number to what it does (called in the I/O thread).
    """

    def __init__(
        self,
        reactor: CallsFromThread,
        actions: Mapping[int, Callable[[], object]],
        setSignal: Callable[[int, Handler], Handler] = signal.signal,
        chain: bool = True,
    ) -> None:
        """
        @param chain: call the Python handler each one replaced, if any.
        """
        self.reactor = reactor
        self.actions = dict(actions)
        self.setSignal = setSignal
        self.chain = chain
        self._previous: dict[int, Handler] = {}

    def install(self) -> None:
        """
        Install the handlers now (they need no running reactor: the reactor
        itself installs handlers for SIGTERM and SIGINT only).  Only the main
        thread can install handlers; elsewhere, this does nothing.  Called in
        the main thread.
        """
        if self._previous or threading.current_thread() is not threading.main_thread():
            return
        for signum in self.actions:
            self._previous[signum] = self.setSignal(signum, self._handler)

    def uninstall(self) -> None:
        """
        Put the previous handlers back.
        """
        for signum, previous in self._previous.items():
            self.setSignal(signum, previous)
        self._previous.clear()

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        # Signal context: only hand over to the I/O thread.
        self.reactor.callFromThread(self.actions[signum])
        previous = self._previous.get(signum)
        if self.chain and callable(previous):
            previous(signum, frame)


class StopSignals:
    """
    SIGTERM and SIGINT handling for a process that runs one service: the
    first signal stops the reactor (which stops the service, in order), a
    second one skips the graceful wait.  After the reactor stopped, the
    process exits with L{EXIT_CUT} if the drain cut requests off.

    A worker handles its stop signals differently (C{repeatSkips=False},
    C{quick=(SIGQUIT,)}): a signal sent to the whole process group
    (systemd's default C{KillMode=control-group}, C{kill -TERM -PGID})
    reaches it directly and again through its supervisor, so a repeated
    SIGTERM changes nothing; the supervisor asks it to stop waiting with
    SIGQUIT, as gunicorn's arbiter does.

    @ivar received: how many stop signals arrived.
    @ivar table: the L{SignalTable} of the stop signals.
    """

    signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)

    def __init__(
        self,
        reactor: SignalReactor,
        service: Stopping,
        exitProcess: bool = True,
        signals: tuple[int, ...] = signals,
        repeatSkips: bool = True,
        quick: tuple[int, ...] = (),
    ) -> None:
        """
        @param reactor: the reactor that runs C{service}.
        @param service: has C{stopService}, C{skipWait} and C{drainResult}.
        @param exitProcess: end the process with L{EXIT_CUT} after the
            reactor stopped, if the drain cut requests off.
        @param signals: the stop signals to handle (a worker leaves SIGINT
            to its supervisor; see L{twsgi.process.workers.ignoreSupervisorSignals}).
        @param repeatSkips: whether a second stop signal skips the wait.
        @param quick: signals that stop without waiting, first or not.
        """
        self.reactor = reactor
        self.service = service
        self.exitProcess = exitProcess
        self.signals = signals + quick
        self.repeatSkips = repeatSkips
        self.quick = quick
        self.received = 0
        self._installed = False
        # The reactor's own handlers are replaced, not called: they would
        # stop the reactor a second time.
        self.table = SignalTable(
            reactor,
            {
                signum: functools.partial(self.signalled, signum)
                for signum in self.signals
            },
            chain=False,
        )

    def install(self) -> None:
        """
        Install the handlers (in the main thread only) and the exit-status
        trigger.  Called in the I/O thread.
        """
        if self._installed or threading.current_thread() is not threading.main_thread():
            return
        self._installed = True
        if self.exitProcess:
            self.reactor.addSystemEventTrigger("after", "shutdown", self.exitStatus)
        # The reactor installs its own handlers as it starts (twist starts
        # services before that): ours go in once it runs.
        self.reactor.callWhenRunning(self.table.install)

    def uninstall(self) -> None:
        """
        Put the previous handlers back.
        """
        self.table.uninstall()

    def signalled(self, signum: int) -> None:
        """
        One stop signal arrived.  Called in the I/O thread.
        """
        self.received += 1
        first = self.received == 1
        name = signal.Signals(signum).name
        if signum in self.quick:
            _log.info("twsgi got {name}: not waiting any longer", name=name)
            self.service.skipWait()
            if first:
                self._stop()
        elif first:
            _log.info("twsgi got {name}: stopping gracefully", name=name)
            self._stop()
        elif self.repeatSkips:
            _log.info("twsgi got {name} again: not waiting any longer", name=name)
            self.service.skipWait()
        else:
            _log.info("twsgi got {name} again: already stopping gracefully", name=name)

    def retire(self) -> None:
        """
        The supervisor replaces this worker: stop like the first stop signal
        does, but with the service in its retiring mode (see
        L{twsgi.lifecycle.service.TwsgiService.retire}).  It counts as the first stop
        signal, so that a later one skips the wait (with C{repeatSkips}; a
        worker's later SIGTERM changes nothing, its SIGQUIT does); a stop
        already under way goes on as it is.  Called in the I/O thread.
        """
        if self.received:
            return
        self.received += 1
        self.service.retiring = True
        self._stop()

    def _stop(self) -> None:
        if self.reactor.running:
            self.reactor.stop()
        else:
            self.service.stopService()

    def exitStatus(self) -> None:
        """
        End the process with L{EXIT_CUT} if the drain cut requests off.
        Called in the I/O thread after the reactor's shutdown.
        """
        result = getattr(self.service, "drainResult", None)
        if result is not None and not result.drained:
            exitNow(EXIT_CUT)


class ProcessSignals:
    """
    Every signal a twsgi process handles: the stop signals
    (L{StopSignals}), and the L{SignalTable} of the others for its L{Mode}.

    @ivar stop: the L{StopSignals}.
    @ivar others: the L{SignalTable} of the other signals.
    """

    def __init__(
        self,
        reactor: SignalReactor,
        service: Any,
        mode: Mode = Mode.SINGLE,
        exitProcess: bool = True,
    ) -> None:
        """
        @param reactor: the reactor that runs C{service}.
        @param service: what the signals act on (see L{actions}).
        @param mode: the kind of process.
        @param exitProcess: see L{StopSignals}.
        """
        if mode is Mode.WORKER:
            # A worker leaves SIGINT to its supervisor (see
            # twsgi.process.workers.ignoreSupervisorSignals), and takes SIGTERM as
            # often as it comes (see StopSignals).
            self.stop = StopSignals(
                reactor,
                service,
                exitProcess,
                signals=(signal.SIGTERM,),
                repeatSkips=False,
                quick=(signal.SIGQUIT,),
            )
        else:
            self.stop = StopSignals(reactor, service, exitProcess)
        self.others = SignalTable(reactor, actions(mode, service))

    def install(self) -> None:
        """
        Install every handler: the stop signals once the reactor runs (it
        installs its own as it starts), the others now.  Called in the main
        thread.
        """
        self.stop.install()
        self.others.install()

    def uninstall(self) -> None:
        """
        Put the previous handlers back.
        """
        self.stop.uninstall()
        self.others.uninstall()


__all__ = [
    "RELOAD_HINT",
    "WORKERS_HINT",
    "Handler",
    "Mode",
    "ProcessSignals",
    "SignalReactor",
    "SignalTable",
    "StopSignals",
    "Stopping",
    "actions",
    "ignored",
    "ignoredWhileLoading",
    "logFilesOf",
    "reopenLogs",
]
