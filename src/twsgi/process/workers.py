# -*- test-case-name: tests.process.test_workers -*-
"""
Worker processes: a supervisor that binds every endpoint once and runs N
workers that inherit the listening sockets.

The supervisor serves nothing itself.  It starts workers, replaces one that
crashes (with backoff if it keeps crashing), retires workers after
C{--max-requests}, above C{--max-worker-memory} or after
C{--worker-lifetime}, and replaces them one by one on SIGHUP.  A replacement
is always accepting before the worker it replaces is asked to drain, and
since the listening sockets stay open in the supervisor, no connection
waiting in the kernel's accept queue is ever lost.

A worker is C{python -m twsgi} started with these environment variables:

  - C{TWSGI_WORKER_FDS}: the inherited listening descriptors, one per
    endpoint, in the order of C{--endpoint};
  - C{TWSGI_WORKER_PIPE}: a descriptor on which the worker writes
    C{ready} once it is listening with its reactor running, C{retire} when
    it wants replacing, and C{failed} with its error when it cannot start
    (the supervisor logs it, so that N workers failing alike print it
    once);
  - C{TWSGI_WORKER_SETTINGS}: the supervisor's command-line settings, as JSON;
  - with metrics, C{PROMETHEUS_MULTIPROC_DIR}: the directory in which the
    workers share their metrics (see L{twsgi.metrics.prometheus.MetricsDirectory}).

The supervisor tells a worker to go in one of two ways.  SIGTERM, when the
whole server stops, runs the full graceful stop (readiness 503 during
C{--drain-delay}, and so on).  L{RETIRE_SIGNAL} (SIGUSR2), when the worker
is being replaced, retires it: the others keep accepting on the same
sockets, so it stops accepting at once on every listener, skips the drain
delay, leaves readiness alone, finishes what it already accepted, and exits
(see L{twsgi.lifecycle.service.TwsgiService.retire}).
"""

from __future__ import annotations

import enum
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from twisted.application.service import Service
from twisted.internet import defer, protocol
from twisted.internet.error import ProcessExitedAlready
from twisted.logger import Logger
from twisted.python.failure import Failure

from twisted import logger
from twsgi.lifecycle.drain import DrainResult
from twsgi.lifecycle.service import _listenFailure, logListening
from twsgi.lifecycle.signals import Mode, ProcessSignals
from twsgi.logs.accesslog import AccessRecord, headerless
from twsgi.logs.clock import Clock, DelayedCall
from twsgi.logs.limited import PERIOD, Throttle
from twsgi.logs.periodic import repeating
from twsgi.logs.serverlog import Observer, quietPortLines
from twsgi.process.affinity import leastUsed
from twsgi.server.forwarded import splitListener
from twsgi.server.inherit import splitEndpoint
from twsgi.server.listeners import buildEndpoint
from twsgi.server.ports import (
    SETTLE_MAX,
    ListeningPort,
    listeningReactor,
    refuseConnections,
)

if TYPE_CHECKING:
    from twsgi.metrics.prometheus import MetricsDirectory

_log = Logger(namespace="twsgi")

WORKER_FDS = "TWSGI_WORKER_FDS"
WORKER_PIPE = "TWSGI_WORKER_PIPE"
WORKER_SETTINGS = "TWSGI_WORKER_SETTINGS"

_FIRST_FD = 3

RETIRE_SIGNAL = "USR2"
"""
The signal (its name without C{SIG}) with which the supervisor retires a
worker it replaces.
"""

REPLACE_RETRY_MAX = 300.0
"""
The longest wait, in seconds, before a worker whose replacement could not
start (a reload of broken code) is given another.
"""

STEERING_SIGNALS = (
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGUSR1,
    getattr(signal, "SIG" + RETIRE_SIGNAL),
)
"""
The signals that steer the supervisor, which a worker ignores (see
L{ignoreSupervisorSignals}) and is started with blocked.
"""


_OWN_FAULTS = frozenset(
    {
        signal.SIGSEGV,
        signal.SIGBUS,
        signal.SIGILL,
        signal.SIGFPE,
        signal.SIGABRT,
        signal.SIGSYS,
    }
)
"""
The signals a process gets for a fault of its own (a C extension that
crashes as it is imported, a wheel built for another CPU, an abort): a
worker that one ends while no worker was ready yet says that the others
would end alike, as one that cannot import the application.  Other signals
(SIGKILL from the OOM killer or an operator) say nothing of the others.
"""


class _NoAccept(protocol.ServerFactory):
    """
    The factory the supervisor listens with; it never accepts, since reading
    is stopped at once.
    """

    noisy = False


def readRSS(pid: int) -> int | None:
    """
    The resident set size of process C{pid} in bytes, or C{None} if unknown.
    """
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class _Worker(protocol.ProcessProtocol):
    """
    The supervisor's view of one worker process.  Called in the I/O thread.

    @ivar ready: the worker said it is listening, its reactor running (and
        so its signal handlers installed).
    @ivar retiring: the worker was asked to drain and leave.
    @ivar replaces: the worker this one was started to take the place of,
        if any.
    @ivar replacedBy: the worker started to take this one's place, if any.
    @ivar cpu: the CPU it keeps to (C{--cpu-affinity}), or C{None}.
    @ivar failure: why the worker could not start, as it said: its one-line
        error, then the application's traceback if there is one.
    @ivar failedReplacements: how many replacements of this worker could
        not start in a row (see L{Supervisor.workerEnded}).
    """

    failedReplacements = 0

    def __init__(self, supervisor: Supervisor, number: int, pipeFd: int) -> None:
        self.supervisor = supervisor
        self.number = number
        self.pipeFd = pipeFd
        self.ready = False
        self.retiring = False
        self.cpu: int | None = None
        self.replaces: _Worker | None = None
        self.replacedBy: _Worker | None = None
        self.startedAt = supervisor.reactor.seconds()
        self.whenEnded: defer.Deferred[int] = defer.Deferred()
        self.whenReady: defer.Deferred[None] = defer.Deferred()
        self._buffer = b""
        self.pid: int | None = None
        self.failure: str | None = None

    def connectionMade(self) -> None:
        self.pid = self.transport.pid  # type: ignore[union-attr]

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        if childFD != self.pipeFd:
            return
        self._buffer += data
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            self.supervisor.workerSaid(self, line.strip().decode("ascii", "replace"))

    def processEnded(self, reason: Failure) -> None:
        code = getattr(reason.value, "exitCode", None)
        sig = getattr(reason.value, "signal", None)
        status = code if code is not None else 128 + (sig or 0)
        self.supervisor.workerEnded(self, status, sig)
        self.whenEnded.callback(status)

    def signal(self, name: str) -> None:
        """
        Send the worker C{SIGname}.  (Twisted's C{signalProcess} knows only
        a few names, so the number is sent.)  A worker already gone is
        ignored.
        """
        try:
            transport: Any = self.transport
            transport.signalProcess(getattr(signal, "SIG" + name))
        except (OSError, ProcessExitedAlready, AttributeError):
            pass

    def signalWhenReady(self, name: str) -> None:
        """
        Send the worker C{SIGname} now if it said it is ready, else once it
        has: until then its handlers are not installed, and a signal such as
        SIGUSR1 would end it.
        """
        if self.ready:
            self.signal(name)
        else:
            self.whenReady.addCallback(lambda _: self.signal(name))


_MESSAGE = "twsgi_message"
"""
The field of a worker's event that holds its message, formatted in the
worker: Twisted's JSON event keeps the text of each field without its format
specification (C{{seconds:.1f}} would give C{1.8818614482879639}).
"""


def relayWorkerEvent(pid: int | None, text: str, observer: Observer) -> None:
    """
    Log an event a worker sent (see L{WorkerLink.logObserver}) as the
    worker's: its message after C{[worker PID]}, its level, namespace, time,
    fields and traceback kept, and a C{pid} field.

    @param text: the event in Twisted's JSON event format.
    @param observer: where the event goes (the supervisor's log).
    """
    try:
        event = logger.eventFromJSON(text)
    except ValueError:
        event = {"log_format": "{line}", "line": text}
    message = event.get(_MESSAGE)
    relayed = {
        key: value
        for key, value in event.items()
        if not key.startswith("log_") and key not in ("message", "format", _MESSAGE)
    }
    relayed.update(
        log_format="[worker {pid}] {message}",
        message=message if isinstance(message, str) else logger.formatEvent(event),
        pid=pid,
        log_level=event.get("log_level", logger.LogLevel.info),
        log_namespace=event.get("log_namespace", "twsgi"),
        log_time=event.get("log_time", time.time()),
    )
    if "log_failure" in event:
        relayed["log_failure"] = event["log_failure"]
    observer(relayed)


class SupervisorState(enum.Enum):
    """
    Where a L{Supervisor} is: serving, stopping (asked to, or it gave up), or
    stopped (every worker ended, the sockets closed).
    """

    SERVING = "serving"
    STOPPING = "stopping"
    STOPPED = "stopped"


class ReloadState(enum.Enum):
    """
    Where a L{Supervisor}'s reload (SIGHUP) is.
    """

    IDLE = "idle"
    """No reload is under way."""
    RUNNING = "running"
    """The workers are being replaced one by one."""
    AGAIN = "again"
    """Running, and another SIGHUP came: every worker is replaced again
    once this reload is over (those already replaced may run older code)."""


class Supervisor(Service):
    """
    Bind every endpoint, run and supervise N worker processes.

    @ivar state: the L{SupervisorState}.
    @ivar workers: the live workers.
    @ivar addresses: C{(description, address)} for every listening socket.
    @ivar exitStatus: 0, or non-zero when workers could not start or did not
        drain cleanly.
    @ivar startFailureRaises: L{privilegedStartService} raises the
        L{ListenError} of an endpoint that cannot be bound besides logging it
        (see L{twsgi.lifecycle.service.TwsgiService.startFailureRaises}).
    @ivar workersFailed: once no worker could start, the one-line error a
        worker said (as a single process writes it), or C{None}.
    """

    checkInterval = 1.0
    listenFailed = False
    startFailureRaises = False
    workersFailed: str | None = None

    def __init__(
        self,
        reactor: Any,
        settings: Mapping[str, Any],
        *,
        descriptions: Sequence[str],
        count: int,
        cpus: Sequence[int] = (),
        maxWorkerMemory: int = 0,
        workerLifetime: float = 0.0,
        gracefulTimeout: float = 30.0,
        drainDelay: float = 0.0,
        onFailure: Callable[[int], None] | None = None,
        handleSignals: bool = True,
        metricsDirectory: MetricsDirectory | None = None,
    ) -> None:
        """
        L{twsgi.process.build.supervisorFromConfig} makes one from the
        settings.

        @param reactor: provides spawnProcess, time and thread-safe calls.
        @param settings: the raw command-line settings, passed on to workers
            (C{workers} is forced to 1 there).
        @param descriptions: the listeners to bind, in the order in which
            the workers inherit their sockets (see
            L{twsgi.lifecycle.build.listenerDescriptions}).
        @param count: how many workers to run.
        @param cpus: with C{--cpu-affinity}, the CPUs to keep workers on,
            one each: a new worker gets the one fewest workers run on, a
            replacement the one of the worker it replaces.
        @param maxWorkerMemory: replace a worker whose resident memory grows
            beyond this many megabytes (0: never).
        @param workerLifetime: replace a worker after this many seconds
            (0: never).
        @param gracefulTimeout: how long the whole server's stop waits for
            the workers' requests.
        @param drainDelay: how long the workers keep accepting once the stop
            began.
        @param onFailure: called with an exit status when the supervisor
            gives up (a worker cannot start).
        @param handleSignals: install the supervisor's signal handlers on
            start (see L{twsgi.lifecycle.signals.Mode.SUPERVISOR}).
        @param metricsDirectory: a L{twsgi.metrics.prometheus.MetricsDirectory} the
            workers share, or C{None} without metrics.
        """
        self.reactor = reactor
        self.descriptions = tuple(descriptions)
        self.count = count
        self.cpus = tuple(cpus)
        self.settings = dict(settings)
        self.settings["workers"] = "1"
        self.maxWorkerMemory = maxWorkerMemory
        self.workerLifetime = workerLifetime
        self.gracefulTimeout = gracefulTimeout
        self.drainDelay = drainDelay
        self.onFailure = onFailure
        self.handleSignals = handleSignals
        self.metricsDirectory = metricsDirectory
        self.signals = ProcessSignals(reactor, self, Mode.SUPERVISOR)
        self.workers: list[_Worker] = []
        self.addresses: list[tuple[str, Any]] = []
        self.exitStatus = 0
        self._ports: list[Any] = []
        self._owned: list[ListeningPort] = []
        self._refusing: DelayedCall | None = None
        self._fds: list[int] = []
        self._numbers = 0
        self._everReady = False
        self._gaveUp = False
        self.state = SupervisorState.SERVING
        self._crashes: list[float] = []
        self._reload = ReloadState.IDLE
        self._check = repeating(self._checkWorkers, reactor, "the worker check")
        # Worker processes the system refused (see _refused), _respawn's
        # next try while it is short of workers, and the workers whose
        # replacement is tried again (see replace).
        self._refusals = Throttle(reactor.seconds, PERIOD)
        self._respawnLater: DelayedCall | None = None
        self._replaceAgain: dict[_Worker, DelayedCall] = {}
        self._cwd = os.getcwd()
        self.whenListening: defer.Deferred[Any] = defer.Deferred()

    @property
    def stopping(self) -> bool:
        """
        Whether a stop began (or is over): no worker is started or replaced
        any more.
        """
        return self.state is not SupervisorState.SERVING

    # -- starting ------------------------------------------------------------

    def privilegedStartService(self) -> None:
        """
        Bind every endpoint; the supervisor never accepts on them.  If one
        cannot be bound, log why, fail L{whenListening} with the
        L{ListenError} (and raise it, with L{startFailureRaises}) and give
        up: the process exits with status 1.
        """
        if self._ports or self.listenFailed:
            return
        if self.handleSignals:
            # Before binding: once it listens, no signal may end it by
            # surprise.
            self.signals.install()
        quietPortLines()
        for description in self.descriptions:
            socketPart, _ = splitEndpoint(
                buildEndpoint(
                    listeningReactor(self.reactor), splitListener(description)[0]
                )
            )
            d = socketPart.listen(_NoAccept())
            failure: list[Any] = []
            d.addCallbacks(
                self._bound,
                failure.append,
                callbackArgs=(description,),
            )
            if failure:
                error = _listenFailure(description, failure[0].value)
                _log.error("{error}", error=str(error))
                self.listenFailed = True
                self.whenListening.errback(error)
                self._giveUp(1)
                if self.startFailureRaises:
                    raise error from None
                return

    def _bound(self, port: Any, description: str) -> None:
        port.stopReading()
        self._ports.append(port)
        if isinstance(port, ListeningPort) and port.owned:
            self._owned.append(port)
        self._fds.append(port.fileno())
        self.addresses.append((description, logListening(description, port)))

    def startService(self) -> None:
        Service.startService(self)
        self.privilegedStartService()
        if self.listenFailed:
            return
        if not self.whenListening.called:
            self.whenListening.callback(self.addresses)
        _log.info("twsgi supervisor starting {count} workers", count=self.count)
        self._startWorkers()

    def _startWorkers(self) -> None:
        """
        Start the first C{count} workers.  If the system refuses the first
        (a pids limit, no memory, an interpreter this user may not run), no
        request could ever be served: give up with status 1, its reason in
        one line (L{workersFailed}; raised with L{startFailureRaises}).  One
        refused later is logged and tried again (see L{_respawn}).
        """
        try:
            self._spawn()
        except OSError as e:
            self.workersFailed = f"cannot start a worker process: {e.strerror or e}"
            _log.critical("twsgi: {error}; stopping", error=self.workersFailed)
            self._giveUp(1)
            if self.startFailureRaises:
                raise
            return
        self._respawn()
        if self.maxWorkerMemory or self.workerLifetime:
            self._check.start(self.checkInterval, now=False)

    def _spawn(self, replaces: _Worker | None = None) -> _Worker:
        pipeFd = _FIRST_FD + len(self._fds)
        worker = _Worker(self, self._numbers + 1, pipeFd)
        settings = self.settings
        if self.cpus:
            if replaces is not None and replaces.cpu is not None:
                worker.cpu = replaces.cpu
            else:
                worker.cpu = leastUsed(self.cpus, [w.cpu for w in self.workers])
            # The worker keeps to the first CPU of its --cpu-affinity.
            settings = {**settings, "cpu_affinity": str(worker.cpu)}
        childFDs: dict[int, Any] = {0: "w", 1: 1, 2: 2, pipeFd: "r"}
        for index, fd in enumerate(self._fds):
            childFDs[_FIRST_FD + index] = fd
        env = dict(os.environ)
        env[WORKER_FDS] = " ".join(
            str(_FIRST_FD + index) for index in range(len(self._fds))
        )
        env[WORKER_PIPE] = str(pipeFd)
        env[WORKER_SETTINGS] = json.dumps(settings)
        if self.metricsDirectory is not None:
            env.update(self.metricsDirectory.environment())
        # The worker starts with the signals that steer the supervisor
        # blocked (a signal mask is inherited through fork and exec), until
        # it ignores them (ignoreSupervisorSignals): one sent to the whole
        # process group, or by a pkill, while its Python starts would end it.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, STEERING_SIGNALS)
        try:
            self.reactor.spawnProcess(
                worker,
                sys.executable,
                [sys.executable, *self._interpreterFlags(), "-m", "twsgi"],
                env=env,
                path=self._cwd,
                childFDs=childFDs,
            )
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        # Only once it runs: a worker whose replacement could not be
        # started is still due for one (the next check tries again), and
        # its number is the next one's.
        self._numbers = worker.number
        worker.replaces = replaces
        if replaces is not None:
            replaces.replacedBy = worker
        self.workers.append(worker)
        _log.info(
            "worker {number} started (pid {pid}{on})",
            number=worker.number,
            pid=worker.pid,
            on="" if worker.cpu is None else f", CPU {worker.cpu}",
        )
        return worker

    def _interpreterFlags(self) -> list[str]:
        """
        The command-line options of this interpreter (C{-O}, C{-X dev},
        C{-W error}, C{-I}, C{-s} and the others) for a worker, which this
        interpreter runs too: a worker runs the application as the supervisor
        was told to, and imports from the path the supervisor checked the
        application against (see L{twsgi.config.apploader.findApp}).
        """
        # What multiprocessing's "spawn" start method passes its children.
        flags = getattr(subprocess, "_args_from_interpreter_flags", None)
        return [] if flags is None else list(flags())

    # -- what workers say and do ---------------------------------------------

    def workerSaid(self, worker: _Worker, line: str) -> None:
        if line == "ready":
            worker.ready = True
            self._everReady = True
            old = worker.replaces
            if old is not None and not old.retiring:
                self._retire(old)
            worker.whenReady.callback(None)
        elif line.startswith("retire"):
            reason = line[len("retire") :].strip() or "it asked to"
            self.replace(worker, reason)
        elif line.startswith("failed "):
            try:
                said = json.loads(line[len("failed ") :])
                failure = "\n".join([said["error"], said["details"].rstrip()])
            except (ValueError, KeyError, TypeError, AttributeError):
                failure = line[len("failed ") :]
            worker.failure = failure.rstrip()
        elif line.startswith("log "):
            relayWorkerEvent(worker.pid, line[len("log ") :], _log.observer)

    def replace(self, worker: _Worker, reason: str) -> None:
        """
        Start a replacement for C{worker}; once it is ready, C{worker} drains
        and leaves.  One that has ended is not replaced (its end started a
        worker in its place).  If the system refuses the process, that is
        logged, C{worker} serves on, and its replacement is tried again a
        check interval later, until one starts (a reload goes on to the
        next worker meanwhile).
        """
        if (
            self.stopping
            or worker.retiring
            or worker.replacedBy is not None
            or worker not in self.workers
            or worker in self._replaceAgain
        ):
            return
        try:
            self._spawn(replaces=worker)
        except OSError as e:
            self._refused(
                e,
                f"worker {worker.number} (pid {worker.pid}) serves on, not "
                f"replaced ({reason}), until a replacement starts",
            )
            self._replaceAgain[worker] = self.reactor.callLater(
                self.checkInterval, self._retryReplace, worker, reason
            )
            return
        _log.info(
            "replacing worker {number} (pid {pid}): {reason}",
            number=worker.number,
            pid=worker.pid,
            reason=reason,
        )

    def _retryReplace(self, worker: _Worker, reason: str) -> None:
        """
        Try again to replace C{worker}, whose replacement the system
        refused (see L{replace}).
        """
        del self._replaceAgain[worker]
        self.replace(worker, reason)

    def _retire(self, worker: _Worker) -> None:
        """
        Retire C{worker} (see L{RETIRE_SIGNAL}); one that has not said it is
        ready yet is retired once it has (its handler is installed by then).
        """
        worker.retiring = True
        worker.signalWhenReady(RETIRE_SIGNAL)
        deadline = self.reactor.callLater(
            self.gracefulTimeout + 5, worker.signal, "KILL"
        )
        worker.whenEnded.addBoth(
            lambda status: deadline.cancel() if deadline.active() else None
        )

    def workerEnded(self, worker: _Worker, status: int, sig: int | None) -> None:
        if worker in self.workers:
            self.workers.remove(worker)
        if self.metricsDirectory is not None and worker.pid is not None:
            self.metricsDirectory.workerEnded(worker.pid, self.reactor)
        replacement = worker.replacedBy
        if worker.retiring or self.stopping:
            if sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
                # Our stop signal ended it with the default action: it came
                # before the worker's reactor ran and installed its handler,
                # so the worker had not accepted a connection yet.
                _log.info(
                    "worker {number} (pid {pid}) stopped before it served",
                    number=worker.number,
                    pid=worker.pid,
                )
                return
            _log.info(
                "worker {number} (pid {pid}) left with status {status}",
                number=worker.number,
                pid=worker.pid,
                status=status,
            )
            if self.stopping and status and not self._gaveUp:
                self.exitStatus = status
            return
        if status == 0 and sig is None and worker.ready:
            # It drained and left on a stop signal that the supervisor did
            # not send (SIGUSR2 or SIGTERM sent to the worker itself): a
            # retirement, not a crash to back off from.
            _log.info(
                "worker {number} (pid {pid}) left on a signal sent to it; replacing it",
                number=worker.number,
                pid=worker.pid,
            )
            self.reactor.callLater(0, self._respawn)
            return
        _log.error(
            "worker {number} (pid {pid}) {what}",
            number=worker.number,
            pid=worker.pid,
            what=(
                f"could not start: {worker.failure}"
                if worker.failure is not None
                else f"died with signal {sig}"
                if sig
                else f"died with status {status}"
            ),
        )
        if not worker.ready and not self._everReady and sig in (None, *_OWN_FAULTS):
            # The others would fail alike: their errors are not logged.  (One
            # killed by a signal while it started, by the OOM killer or an
            # operator, says nothing of the others: it is replaced.)
            _log.critical("twsgi: no worker could start; stopping")
            if worker.failure:
                # (One that failed without saying why, as with a failing
                # --on-start hook, wrote its own line on standard error.)
                self.workersFailed = worker.failure.splitlines()[0]
            self._giveUp(1)
            return
        if replacement is not None:
            return
        now = self.reactor.seconds()
        self._crashes = [t for t in self._crashes if now - t < 30] + [now]
        delay = (
            0.0 if len(self._crashes) <= 1 else min(0.1 * 2 ** len(self._crashes), 10)
        )
        old = worker.replaces
        if not worker.ready and old is not None and old.replacedBy is worker:
            # A replacement that could not start (a reload of broken code):
            # the worker it was to replace still serves, and is due for a
            # replacement again, retried with the backoff (and by the next
            # SIGHUP, --worker-lifetime...), or it would keep its code for
            # good.
            # (One that ended meanwhile waited for this replacement: it
            # gets a new worker instead.)  Each retry waits twice as long
            # as the last (2 s ... REPLACE_RETRY_MAX): the old worker serves
            # meanwhile, and the new code fails alike until it is fixed (a
            # SIGHUP then retries at once), importing the application and
            # logging its traceback each time.
            old.replacedBy = None
            if old in self.workers:
                old.failedReplacements += 1
                self.reactor.callLater(
                    min(2.0**old.failedReplacements, REPLACE_RETRY_MAX),
                    self.replace,
                    old,
                    "its replacement could not start",
                )
                return
        self.reactor.callLater(delay, self._respawn)

    def _respawn(self) -> None:
        """
        Start workers until C{count} are live.  One that a replacement is
        under way for is not counted: it retires once that replacement is
        ready (a SIGTTIN during a reload must not count it).  One that
        cannot be started (the system is out of memory or processes) is
        logged, and the rest tried again a check interval later, instead of
        leaving the server workers short for good.  While the system goes
        on refusing, one line a minute says so.
        """
        while not self.stopping and self.count > (
            running := len([w for w in self._live() if w.replacedBy is None])
        ):
            try:
                self._spawn()
            except Exception as e:
                if isinstance(e, OSError):
                    self._refused(
                        e,
                        f"{running} of {self.count} workers run, trying again "
                        f"every {self.checkInterval:g} s",
                    )
                else:
                    _log.failure(
                        "twsgi: a worker could not be started; trying again in "
                        "{delay:g} s",
                        level=logger.LogLevel.error,
                        delay=self.checkInterval,
                    )
                # One try a check interval, however many calls (a worker's
                # end, SIGTTIN) found the server short meanwhile.
                if self._respawnLater is None or not self._respawnLater.active():
                    self._respawnLater = self.reactor.callLater(
                        self.checkInterval, self._respawn
                    )
                return
        later, self._respawnLater = self._respawnLater, None
        if later is None:
            # It was not short.
            return
        if later.active():
            later.cancel()
        refused = self._refusals.ended()
        if refused is not None:
            _log.info(
                "twsgi: all {count} workers run again{since}",
                count=self.count,
                since=f" ({refused} more refusal(s))" if refused else "",
            )

    def _refused(self, error: OSError, outcome: str) -> None:
        """
        The system refused a worker process: say so, with C{outcome}, at
        once and then at most once a minute while it goes on refusing.
        """
        refused = self._refusals.happened()
        if refused is not None:
            _log.error(
                "twsgi: cannot start a worker process ({error}); {outcome} "
                "({refused} refusal(s), said at most every {every:g} s)",
                error=error.strerror or str(error),
                outcome=outcome,
                refused=refused,
                every=PERIOD,
            )

    def _live(self) -> list[_Worker]:
        return [w for w in self.workers if not w.retiring]

    def _giveUp(self, status: int) -> None:
        """
        The server did not start: stop with C{status}, killing the other
        workers (their ends change nothing).
        """
        self.exitStatus = status
        self._gaveUp = True
        if self.state is SupervisorState.SERVING:
            self.state = SupervisorState.STOPPING
        for worker in list(self.workers):
            worker.signal("KILL")
        if self.onFailure is not None:
            self.onFailure(status)

    def _checkWorkers(self) -> None:
        now = self.reactor.seconds()
        for worker in self._live():
            if not worker.ready or worker.replacedBy is not None:
                continue
            if self.workerLifetime and now - worker.startedAt > self.workerLifetime:
                self.replace(worker, f"older than {self.workerLifetime:g} s")
                continue
            if self.maxWorkerMemory and worker.pid is not None:
                rss = readRSS(worker.pid)
                if rss is not None and rss > self.maxWorkerMemory * 1024 * 1024:
                    self.replace(
                        worker,
                        f"RSS {rss // (1024 * 1024)} MB above "
                        f"{self.maxWorkerMemory} MB",
                    )

    # -- signals -------------------------------------------------------------

    @defer.inlineCallbacks
    def reload(self) -> Any:
        """
        SIGHUP: replace the workers one by one, each new one ready before an
        old one drains.  This reloads the application code and certificates.
        """
        if self.stopping:
            _log.info("twsgi got SIGHUP: ignored; the server is stopping")
            return
        if self._reload is not ReloadState.IDLE:
            # The workers already replaced may run code older than this
            # signal (a second deploy): replace them all again after.
            self._reload = ReloadState.AGAIN
            _log.info("twsgi got SIGHUP: a reload is under way; another will follow it")
            return
        self._reload = ReloadState.RUNNING
        _log.info("twsgi got SIGHUP: reloading, replacing workers one by one")
        try:
            for worker in list(self._live()):
                if worker.retiring or worker.replacedBy is not None:
                    continue
                self.replace(worker, "reload")
                replacement = worker.replacedBy
                if replacement is None:
                    continue
                yield defer.DeferredList(
                    [replacement.whenReady, replacement.whenEnded],
                    fireOnOneCallback=True,
                    consumeErrors=True,
                )
        finally:
            again = self._reload is ReloadState.AGAIN
            self._reload = ReloadState.IDLE
        if again and not self.stopping:
            self.reload()

    def skipWait(self) -> None:
        """
        A second SIGTERM or SIGINT: the workers skip the rest of their
        drain (SIGQUIT: a worker takes a repeated SIGTERM as the same stop,
        see L{twsgi.lifecycle.signals.StopSignals}).  One still starting
        gets it once it is ready: until then SIGQUIT's default action would
        end it with a core dump.
        """
        self._refuse()
        for worker in list(self.workers):
            worker.signalWhenReady("QUIT")

    def _refuse(self) -> None:
        """
        Refuse new connections on every listening socket the supervisor
        owns (not on one systemd owns: it outlives the supervisor).
        """
        if self._refusing is not None and self._refusing.active():
            self._refusing.cancel()
        for port in self._owned:
            refuseConnections(port)
        self._owned = []

    @property
    def drainResult(self) -> DrainResult | None:
        """
        Whether every worker drained, once the supervisor stopped; read by
        L{StopSignals} for the exit status.
        """
        if self.state is not SupervisorState.STOPPED or self._gaveUp:
            # A server that did not start drained nothing.
            return None
        return DrainResult(drained=self.exitStatus == 0, cut=0)

    def addWorker(self) -> None:
        """
        SIGTTIN: one worker more.
        """
        if self.stopping:
            _log.info("twsgi got SIGTTIN: ignored; the server is stopping")
            return
        self.count += 1
        _log.info("twsgi got SIGTTIN: adding a worker, now {count}", count=self.count)
        self._respawn()

    def removeWorker(self) -> None:
        """
        SIGTTOU: one worker fewer (never below one).
        """
        if self.stopping or self.count <= 1:
            why = (
                "the server is stopping" if self.stopping else "one worker is the least"
            )
            _log.info("twsgi got SIGTTOU: ignored; {why}", why=why)
            return
        self.count -= 1
        _log.info("twsgi got SIGTTOU: removing a worker, now {count}", count=self.count)
        # Not one that a reload is replacing: it retires anyway once its
        # replacement is ready, and the count would not go down.
        live = [w for w in self._live() if w.replacedBy is None]
        if live:
            self._retire(live[0])

    def reopenLogs(self) -> None:
        """
        SIGUSR1: ask every worker to reopen its log files (one still
        starting, once it is ready).
        """
        _log.info(
            "twsgi got SIGUSR1: asking {count} worker(s) to reopen their log files",
            count=len(self.workers),
        )
        for worker in self.workers:
            worker.signalWhenReady("USR1")

    # -- stopping ------------------------------------------------------------

    def stopService(self) -> defer.Deferred[Any]:
        """
        Ask every worker to drain, wait for them (killing any still there
        after the graceful timeout), then close the listening sockets.  A
        worker already retiring goes on retiring: a SIGTERM would count as
        its second stop signal and cut its requests off.
        """
        Service.stopService(self)
        self.state = SupervisorState.STOPPING
        if self._check.running:
            self._check.stop()
        # This process holds the listening sockets last: new connections
        # are refused once the workers' drain delay is over, so that none
        # completes after the workers accepted their last one, to be reset
        # when the supervisor closes the socket.  Before the signal, without
        # a delay: the workers then accept all that was completed.
        if self.drainDelay:
            self._refusing = self.reactor.callLater(self.drainDelay, self._refuse)
        else:
            self._refuse()
        if self._ports and not self._gaveUp and not self._live():
            self._spawnToDrain()
        waits = []
        # A worker still starting is stopped at once, unless no other worker
        # accepts: the connections waiting in the queue (since the only
        # worker crashed, say) would then be reset when the sockets close.
        # It starts, accepts them, and drains.
        accepting = any(w.ready and not w.retiring for w in self.workers)
        for worker in list(self.workers):
            if worker.ready or accepting:
                if not (worker.retiring and worker.ready):
                    worker.signal("TERM")
            else:
                worker.signalWhenReady("TERM")
            waits.append(worker.whenEnded)
        # A worker drains for its drain delay, the settling of its
        # listeners and its graceful timeout, one after the other.
        kill = self.reactor.callLater(
            self.drainDelay + SETTLE_MAX + self.gracefulTimeout + 5, self._killAll
        )
        d = defer.DeferredList(waits, consumeErrors=True)

        def done(_: object) -> None:
            if kill.active():
                kill.cancel()
            self._refuse()
            for port in self._ports:
                port.stopListening()
            self._ports = []
            self.state = SupervisorState.STOPPED
            if self.metricsDirectory is not None:
                self.metricsDirectory.close()
            if self.exitStatus and not self._gaveUp:
                _log.error(
                    "twsgi supervisor: a worker did not drain cleanly "
                    "(status {status})",
                    status=self.exitStatus,
                )

        d.addCallback(done)
        return d

    def _spawnToDrain(self) -> None:
        """
        The stop came while no worker accepts (the backoff after repeated
        crashes delays the next one): start one, which the stop then lets
        accept the connections waiting in the queue and drain, as it does a
        worker still starting (closing the sockets would reset them).
        """
        _log.info(
            "twsgi supervisor: no worker is serving; starting one to answer "
            "the connections waiting, then stopping"
        )
        try:
            self._spawn()
        except OSError as e:
            _log.error(
                "twsgi: cannot start a worker process ({error}); the connections "
                "waiting are closed",
                error=e.strerror or str(e),
            )
        except Exception:
            _log.failure(
                "twsgi: a worker could not be started; the connections waiting "
                "are closed",
                level=logger.LogLevel.error,
            )

    def _killAll(self) -> None:
        for worker in list(self.workers):
            _log.error(
                "worker {number} (pid {pid}) did not drain in time; killing it",
                number=worker.number,
                pid=worker.pid,
            )
            worker.signal("KILL")
        self.exitStatus = self.exitStatus or 1


class WorkerLink:
    """
    In a worker: the pipe to the supervisor.  Called in the I/O thread.
    """

    def __init__(self, fd: int, maxRequests: int = 0, jitter: int = 0) -> None:
        self.fd = fd
        self.limit = maxRequests + (
            random.randint(0, jitter) if maxRequests and jitter else 0
        )
        self.requests = 0
        self._retireSent = False
        self._lock = threading.RLock()
        self._pending: list[bytes] = []
        self._writing = False

    def _say(self, line: str) -> None:
        """
        Send one line.  Called in any thread: the lock keeps lines whole.
        A line said while this thread is writing one (an event logged by a
        finalizer that the garbage collector ran in the middle, say) is
        written after it, not into it, and does not wait for itself.
        """
        with self._lock:
            self._pending.append(line.encode("ascii") + b"\n")
            if self._writing:
                return
            self._writing = True
            try:
                while self._pending:
                    data = memoryview(self._pending.pop(0))
                    while data:
                        data = data[os.write(self.fd, data) :]
            except OSError:
                self._pending.clear()
            finally:
                self._writing = False

    def logObserver(self, event: logger.LogEvent) -> None:
        """
        A log observer: send C{event} to the supervisor, which logs it as
        this worker's (see L{relayWorkerEvent}), so that the supervisor and
        its workers write one log, in one format.  Called in any thread.
        """
        message = logger.formatEvent(event)
        self._say("log " + logger.eventAsJSON({**event, _MESSAGE: message}))

    def retire(self, reason: str) -> None:
        """
        Ask the supervisor to replace this worker gracefully.
        """
        if not self._retireSent:
            self._retireSent = True
            self._say(f"retire {reason}")

    def ready(self, _: Any = None) -> Any:
        self._say("ready")
        return _

    def watchSupervisor(
        self,
        clock: Clock,
        stop: Callable[[], object],
        getppid: Callable[[], int] = os.getppid,
    ) -> None:
        """
        Call C{stop} once the supervisor is gone (ended by SIGKILL, the OOM
        killer or SIGQUIT's default action, or crashed): this process then
        has another parent.  An orphan worker would go on serving from its
        inherited socket, unseen, holding the port.  It looks every second.

        @param clock: provides C{callLater}.
        """
        supervisor = getppid()

        def check() -> None:
            if getppid() != supervisor:
                loop.stop()
                _log.warn(
                    "twsgi worker: the supervisor (pid {pid}) is gone; stopping",
                    pid=supervisor,
                )
                stop()

        loop = repeating(check, clock, "the supervisor check")
        loop.start(1.0, now=False)

    def failed(self, error: str, details: str) -> None:
        """
        Tell the supervisor why this worker cannot start, for it to log.

        @param error: the one-line error.
        @param details: the application's traceback, or C{""}.
        """
        self._say("failed " + json.dumps({"error": error, "details": details}))

    @headerless
    def __call__(self, record: AccessRecord) -> None:
        """
        An access-log observer: count requests, and ask to be replaced after
        C{--max-requests} (plus jitter).
        """
        self.requests += 1
        if self.limit and self.requests >= self.limit:
            self.retire(f"served {self.requests} requests")


def ignoreSupervisorSignals() -> None:
    """
    In a worker: the signals that steer the supervisor (which a terminal or
    C{timeout} may send to the whole process group) must not end a worker.
    SIGUSR1 and L{RETIRE_SIGNAL} are ignored until the worker's own handlers
    replace this (see L{twsgi.lifecycle.signals.Mode.WORKER}).  SIGINT
    (Ctrl-C reaches every process of the group) stays ignored: the stop is
    the supervisor's to pass on, as SIGTERM, and a second stop as SIGQUIT
    (see L{twsgi.lifecycle.signals.StopSignals}).
    """
    for signum in STEERING_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    # Blocked by the supervisor until now: one that arrived meanwhile was
    # ignored with the others.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STEERING_SIGNALS)


def workerEnvironment(
    environ: Mapping[str, str],
) -> tuple[list[int], int, dict[str, Any]] | None:
    """
    If this process is a worker, its inherited descriptors, pipe and the
    supervisor's settings; else C{None}.
    """
    if WORKER_FDS not in environ:
        return None
    fds = [int(fd) for fd in environ[WORKER_FDS].split()]
    pipe = int(environ[WORKER_PIPE])
    settings = json.loads(environ.get(WORKER_SETTINGS, "{}"))
    return fds, pipe, settings


__all__ = [
    "REPLACE_RETRY_MAX",
    "RETIRE_SIGNAL",
    "STEERING_SIGNALS",
    "ReloadState",
    "Supervisor",
    "SupervisorState",
    "WorkerLink",
    "ignoreSupervisorSignals",
    "readRSS",
    "relayWorkerEvent",
    "workerEnvironment",
]
