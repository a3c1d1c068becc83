# -*- test-case-name: tests.lifecycle.test_signals -*-
"""
Tests for L{twsgi.lifecycle.signals}: what each signal does in each kind of process,
unit by unit, then sent to real servers under every launcher.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.server import (
    LOOPBACK,
    ROOT,
    TWISTD,
    fetch,
    logLines,
    start,
    temporaryDirectory,
)
from tests.helpers.workers import processState
from twsgi.cli.options import makeService
from twsgi.config.model import ServerConfig
from twsgi.lifecycle.drain import EXIT_CUT, DrainResult
from twsgi.lifecycle.signals import (
    RELOAD_HINT,
    Mode,
    ProcessSignals,
    SignalTable,
    StopSignals,
    actions,
    reopenLogs,
)
from twsgi.logs.files import openLogFile
from twsgi.process.build import supervisorFromConfig
from twsgi.process.workers import Supervisor
from twsgi.testing import ServerProcess, SynchronousReactor


class _Reactor:
    """
    Records what a signal handler hands over to the I/O thread, and stops.
    """

    running = True

    def __init__(self) -> None:
        self.calls: list[Any] = []
        self.stops = 0

    def callFromThread(self, f: Callable[..., Any], *args: Any) -> None:
        self.calls.append((f, args))

    def stop(self) -> None:
        self.stops += 1


class _Signals:
    """
    A fake C{signal.signal}: it records the handlers and returns what was
    there before.
    """

    def __init__(self, before: Any = signal.SIG_DFL) -> None:
        self.handlers: dict[int, Any] = {}
        self.before = before

    def __call__(self, signum: int, handler: Any) -> Any:
        previous = self.handlers.get(signum, self.before)
        self.handlers[signum] = handler
        return previous


def _messages(action: Callable[[], object]) -> list[str]:
    """
    The log lines C{action} writes.
    """
    with capturedLogs() as events:
        action()
    return [formatEvent(event) for event in events]


class SignalTableTests(SynchronousTestCase):
    """
    Tests for L{SignalTable}.
    """

    def test_handsOverAndChains(self) -> None:
        """
        A handler goes in at once, only hands its action over to the I/O
        thread, and then calls the Python handler it replaced (C{twistd}'s
        rotation of its log file on SIGUSR1).
        """
        reactor, rotated = _Reactor(), []
        setSignal = _Signals(before=lambda signum, frame: rotated.append(signum))
        action = lambda: None  # noqa: E731
        table = SignalTable(reactor, {signal.SIGUSR1: action}, setSignal)
        table.install()
        setSignal.handlers[signal.SIGUSR1](signal.SIGUSR1, None)
        self.assertEqual(reactor.calls, [(action, ())])
        self.assertEqual(rotated, [signal.SIGUSR1])

    def test_defaultNotChained(self) -> None:
        """
        A default or ignoring disposition that a handler replaced is not
        called (it is no callable), and L{SignalTable.uninstall} puts it
        back.
        """
        reactor = _Reactor()
        setSignal = _Signals(before=signal.SIG_IGN)
        table = SignalTable(reactor, {signal.SIGHUP: lambda: None}, setSignal)
        table.install()
        table.install()
        setSignal.handlers[signal.SIGHUP](signal.SIGHUP, None)
        self.assertEqual(len(reactor.calls), 1)
        table.uninstall()
        self.assertEqual(setSignal.handlers[signal.SIGHUP], signal.SIG_IGN)

    def test_mainThreadOnly(self) -> None:
        """
        Off the main thread (where Python cannot install handlers),
        L{SignalTable.install} does nothing.
        """
        setSignal = _Signals()
        table = SignalTable(_Reactor(), {signal.SIGHUP: lambda: None}, setSignal)
        thread = threading.Thread(target=table.install)
        thread.start()
        thread.join(10)
        self.assertEqual(setSignal.handlers, {})


class StopSignalsTests(SynchronousTestCase):
    """
    Tests for L{StopSignals}.
    """

    def test_firstStopsSecondSkips(self) -> None:
        """
        The first stop signal stops the reactor; the second skips the wait.
        """
        reactor, service = _Reactor(), _Service()
        signals = StopSignals(reactor, service)
        signals.signalled(signal.SIGTERM)
        self.assertEqual((reactor.stops, service.skips), (1, 0))
        signals.signalled(signal.SIGINT)
        self.assertEqual((reactor.stops, service.skips), (1, 1))

    def test_workerTakesRepeatedTermAsOneStop(self) -> None:
        """
        In a worker (C{repeatSkips=False}), a repeated SIGTERM changes
        nothing; SIGQUIT skips the wait.
        """
        reactor, service = _Reactor(), _Service()
        signals = StopSignals(
            reactor, service, repeatSkips=False, quick=(signal.SIGQUIT,)
        )
        signals.signalled(signal.SIGTERM)
        signals.signalled(signal.SIGTERM)
        self.assertEqual((reactor.stops, service.skips), (1, 0))
        signals.signalled(signal.SIGQUIT)
        self.assertEqual((reactor.stops, service.skips), (1, 1))

    def test_quickFirst(self) -> None:
        """
        A quick signal that comes first stops and skips the wait at once.
        """
        reactor, service = _Reactor(), _Service()
        signals = StopSignals(reactor, service, quick=(signal.SIGQUIT,))
        signals.signalled(signal.SIGQUIT)
        self.assertEqual((reactor.stops, service.skips), (1, 1))

    def test_retireCountsAsFirstStop(self) -> None:
        """
        A retirement stops the reactor with the service in its retiring
        mode, and counts as the first stop signal: the next one skips the
        wait.
        """
        reactor, service = _Reactor(), _Service()
        signals = StopSignals(reactor, service)
        signals.retire()
        self.assertEqual((reactor.stops, service.retiring), (1, True))
        signals.retire()
        self.assertEqual((reactor.stops, service.skips), (1, 0))
        signals.signalled(signal.SIGTERM)
        self.assertEqual((reactor.stops, service.skips), (1, 1))

    def test_retireDuringStopIgnored(self) -> None:
        """
        A retirement asked for once a stop signal arrived leaves that stop
        as it is (readiness still flips).
        """
        reactor, service = _Reactor(), _Service()
        signals = StopSignals(reactor, service)
        signals.signalled(signal.SIGTERM)
        signals.retire()
        self.assertEqual((reactor.stops, service.skips), (1, 0))
        self.assertFalse(service.retiring)

    def test_notRunningStopsService(self) -> None:
        """
        If the reactor is not running, the first signal stops the service.
        """
        reactor, service = _Reactor(), _Service()
        reactor.running = False
        StopSignals(reactor, service).signalled(signal.SIGTERM)
        self.assertEqual(service.stops, 1)

    def test_handlerHandsOver(self) -> None:
        """
        The signal handler itself only hands the signal to the I/O thread.
        """
        reactor, service = _Reactor(), _Service()
        signals = StopSignals(reactor, service)
        signals.table._handler(signal.SIGTERM, None)
        [(action, args)] = reactor.calls
        self.assertEqual(reactor.stops, 0)
        action(*args)
        self.assertEqual(signals.received, 1)

    def test_onlyTheGivenSignals(self) -> None:
        """
        Handlers go in for the given signals only (a worker leaves SIGINT to
        its supervisor), once however often C{install} is called, and
        L{StopSignals.uninstall} puts the previous ones back.
        """
        for signum in StopSignals.signals:
            self.addCleanup(signal.signal, signum, signal.getsignal(signum))
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        reactor = MemoryReactorClock()
        signals = StopSignals(
            reactor, _Service(), exitProcess=False, signals=(signal.SIGTERM,)
        )
        signals.install()
        signals.install()
        self.assertEqual(len(reactor.whenRunningHooks), 1)
        reactor.run()
        self.assertEqual(signal.getsignal(signal.SIGINT), signal.SIG_IGN)
        self.assertEqual(signal.getsignal(signal.SIGTERM), signals.table._handler)
        signals.uninstall()
        self.assertEqual(signal.getsignal(signal.SIGTERM), signal.SIG_DFL)

    def test_exitStatusWhenCut(self) -> None:
        """
        After the reactor stopped, the process exits with L{EXIT_CUT} if the
        drain cut requests off, and is left alone otherwise.
        """
        exits: list[int] = []
        self.patch(__import__("os"), "_exit", exits.append)
        service = _Service()
        signals = StopSignals(_Reactor(), service)
        signals.exitStatus()
        service.drainResult = DrainResult(drained=True, cut=0)
        signals.exitStatus()
        service.drainResult = DrainResult(drained=False, cut=2)
        signals.exitStatus()
        self.assertEqual(exits, [EXIT_CUT])


class _Service:
    """
    A service with access-log observers, which can retire, stop and skip
    the wait of its stop.
    """

    drainResult: DrainResult | None = None
    retiring = False

    def __init__(self, observers: Sequence[Any] = ()) -> None:
        self.observers = list(observers)
        self.retired = 0
        self.skips = 0
        self.stops = 0

    def retire(self) -> None:
        self.retired += 1

    def skipWait(self) -> None:
        self.skips += 1

    def stopService(self) -> None:
        self.stops += 1


class _Observer:
    def __init__(self, file: Any) -> None:
        self.file = file


class ActionTests(SynchronousTestCase):
    """
    Tests for L{actions} and L{reopenLogs}.
    """

    def test_singleProcessNeverStopsOrSuspends(self) -> None:
        """
        A process without a supervisor handles every signal that would
        otherwise end it or suspend it (SIGHUP, SIGUSR1, SIGUSR2, SIGTTIN,
        SIGTTOU) and SIGWINCH: each logs one line and nothing else happens;
        SIGHUP says how to get a supervisor.
        """
        table = actions(Mode.SINGLE, _Service())
        self.assertEqual(
            set(table),
            {
                signal.SIGHUP,
                signal.SIGUSR1,
                signal.SIGUSR2,
                signal.SIGTTIN,
                signal.SIGTTOU,
                signal.SIGWINCH,
            },
        )
        self.assertEqual(
            _messages(table[signal.SIGHUP]),
            [f"twsgi got SIGHUP: ignored; {RELOAD_HINT}"],
        )
        self.assertIn("--workers 1 or more", RELOAD_HINT)
        for signum in (signal.SIGTTIN, signal.SIGTTOU):
            name = signal.Signals(signum).name
            [line] = _messages(table[signum])
            self.assertTrue(line.startswith(f"twsgi got {name}: ignored; "), line)
            self.assertIn("--workers", line)
        for signum in (signal.SIGUSR2, signal.SIGWINCH):
            name = signal.Signals(signum).name
            self.assertEqual(_messages(table[signum]), [f"twsgi got {name}: ignored"])

    def test_nothingToReopen(self) -> None:
        """
        With the access log on standard output (which cannot be reopened),
        SIGUSR1 logs that there is nothing to reopen.
        """
        service = _Service([_Observer(sys.stdout), object()])
        [line] = _messages(lambda: reopenLogs(service))
        self.assertTrue(line.startswith("twsgi got SIGUSR1: nothing to reopen"), line)

    def test_reopenFiles(self) -> None:
        """
        SIGUSR1 reopens the access log files, and says how many: lines
        written after the file was moved away go to a new file at its path.
        """
        path = os.path.join(temporaryDirectory(self), "access.log")
        logFile = openLogFile(path)
        self.addCleanup(logFile.close)
        service = _Service([_Observer(logFile), _Observer(sys.stdout)])
        logFile.write(b"before\n")
        os.rename(path, path + ".1")
        lines = _messages(actions(Mode.SINGLE, service)[signal.SIGUSR1])
        logFile.write(b"after\n")
        self.assertEqual(lines, ["twsgi got SIGUSR1: reopened 1 log file(s)"])
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"after\n")

    def test_worker(self) -> None:
        """
        In a worker, SIGUSR2 retires the service and SIGUSR1 reopens its log
        files; the signals that steer the supervisor are left ignored.
        """
        service = _Service([_Observer(sys.stdout)])
        table = actions(Mode.WORKER, service)
        self.assertEqual(set(table), {signal.SIGUSR1, signal.SIGUSR2})
        table[signal.SIGUSR2]()
        self.assertEqual(service.retired, 1)
        [line] = _messages(table[signal.SIGUSR1])
        self.assertIn("nothing to reopen", line)

    def test_supervisor(self) -> None:
        """
        The supervisor reloads on SIGHUP, adds and removes a worker on
        SIGTTIN and SIGTTOU, passes SIGUSR1 on, and logs and ignores SIGUSR2
        and SIGWINCH.
        """
        supervisor = supervisorFromConfig(
            ServerConfig(endpoint=("tcp:0",), workers=1),
            MemoryReactorClock(),
            {},
            handleSignals=False,
        )
        table = actions(Mode.SUPERVISOR, supervisor)
        self.assertEqual(table[signal.SIGHUP], supervisor.reload)
        self.assertEqual(table[signal.SIGTTIN], supervisor.addWorker)
        self.assertEqual(table[signal.SIGTTOU], supervisor.removeWorker)
        self.assertEqual(table[signal.SIGUSR1], supervisor.reopenLogs)
        for signum in (signal.SIGUSR2, signal.SIGWINCH):
            name = signal.Signals(signum).name
            self.assertEqual(_messages(table[signum]), [f"twsgi got {name}: ignored"])

    def test_supervisorStopping(self) -> None:
        """
        Once the supervisor stops, SIGHUP, SIGTTIN and SIGTTOU are logged
        and ignored (their handlers stay: the default action would end it
        in the middle of its drain).
        """
        supervisor = supervisorFromConfig(
            ServerConfig(endpoint=("tcp:0",), workers=2),
            MemoryReactorClock(),
            {},
            handleSignals=False,
        )
        supervisor.stopService()
        for action in (
            supervisor.reload,
            supervisor.addWorker,
            supervisor.removeWorker,
        ):
            [line] = _messages(action)
            self.assertIn("ignored; the server is stopping", line)
        self.assertEqual((supervisor.count, supervisor.workers), (2, []))

    def test_workerStopsOnTermOnly(self) -> None:
        """
        A worker's stop signal is SIGTERM only (SIGINT reaches it from the
        terminal with its supervisor, which passes the stop on), with
        SIGQUIT to stop waiting; other processes stop on SIGTERM and SIGINT.
        """
        reactor = _Reactor()
        worker = ProcessSignals(reactor, _Service(), Mode.WORKER)
        single = ProcessSignals(reactor, _Service())
        self.assertEqual(worker.stop.signals, (signal.SIGTERM, signal.SIGQUIT))
        self.assertEqual(worker.stop.quick, (signal.SIGQUIT,))
        self.assertEqual(single.stop.signals, (signal.SIGTERM, signal.SIGINT))


class SupervisedTests(SynchronousTestCase):
    """
    C{--workers} given, even as 1, runs a supervisor; not given, one
    process.
    """

    def make(self, environ: dict[str, str] | None = None, **given: Any) -> Any:
        for name, value in (environ or {}).items():
            self.patch(os, "environ", {**os.environ, name: value})
        return makeService(
            {"app": "twsgi.example:app", "access_log": "none", **given},
            SynchronousReactor(),
        )

    def test_workersOneGiven(self) -> None:
        """
        C{--workers 1} on the command line, in C{TWSGI_WORKERS} or in the
        config file runs one worker under a supervisor, so that SIGHUP
        reloads.
        """
        self.assertIsInstance(self.make(workers="1"), Supervisor)
        self.assertIsInstance(self.make({"TWSGI_WORKERS": "1"}), Supervisor)
        config = temporaryDirectory(self) / "twsgi.toml"
        config.write_text("workers = 1\n")
        self.assertIsInstance(self.make(config=str(config)), Supervisor)

    def test_workersNotGiven(self) -> None:
        """
        Without C{--workers}, the process serves by itself.
        """
        self.assertNotIsInstance(self.make(), Supervisor)

    def test_reloadWithWorkersOne(self) -> None:
        """
        C{--reload} (one process) with C{--workers 1} is one line and exit
        status 1.
        """
        error = self.assertRaises(SystemExit, self.make, workers="1", reload=True)
        self.assertIn("--reload runs one process", str(error.code))


# -- real processes ------------------------------------------------------

_PROBE = 10.0


_SINGLE: list[tuple[int, str]] = [
    (signal.SIGUSR1, r"twsgi got SIGUSR1: nothing to reopen"),
    (signal.SIGHUP, r"twsgi got SIGHUP: ignored; a reload needs the supervisor"),
    (signal.SIGUSR2, r"twsgi got SIGUSR2: ignored"),
    (signal.SIGWINCH, r"twsgi got SIGWINCH: ignored"),
    (signal.SIGTTIN, r"twsgi got SIGTTIN: ignored; .*--workers"),
    (signal.SIGTTOU, r"twsgi got SIGTTOU: ignored; .*--workers"),
]
"""
Each signal a single process handles besides the stop signals, and the line
it logs.
"""


def _waitUntil(done: Callable[[], bool], timeout: float = _PROBE) -> None:
    """
    Poll C{done} (a file another process writes) until it is true.

    @raise AssertionError: if it is not within C{timeout} seconds.
    """
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"not done within {timeout}s")
        time.sleep(0.05)


def _waitForPort(log: str) -> int:
    """
    The port of the first C{listening on} line of the log file C{log}.
    """
    found: list[int] = []

    def listening() -> bool:
        if os.path.exists(log):
            with open(log) as f:
                match = re.search(
                    r"listening on (?:http://)?127\.0\.0\.1:(\d+)", f.read()
                )
            if match is not None:
                found.append(int(match.group(1)))
        return bool(found)

    _waitUntil(listening, 20.0)
    return found[0]


class SignalProcessTests(SynchronousTestCase):
    """
    Every signal, sent to a real server under every launcher: it logs its
    line and the server goes on serving; SIGTERM, last, stops it cleanly.
    """

    def probe(
        self, server: ServerProcess, sent: Sequence[tuple[int, str]], pid: int = 0
    ) -> None:
        """
        Send each signal of C{sent} in turn to the server (or to C{pid});
        after each, wait for its line, and check that the process is neither
        gone nor stopped and that the server still answers.
        """
        target = pid or server.process.pid
        for signum, pattern in sent:
            seen = len(server.lines)
            os.kill(target, signum)
            server.waitFor(pattern, timeout=_PROBE, start=seen)
            name = signal.Signals(signum).name
            self.assertNotIn(processState(target), ("", "T", "t", "Z"), f"after {name}")
            answer = fetch(server.host, server.port, timeout=_PROBE)
            self.assertEqual(answer[0], 200, f"after {name}")

    def launch(self, runner: str, *args: str, **kwargs: Any) -> ServerProcess:
        """
        Start the example application under C{runner} with C{args}.
        """
        return start(
            self,
            ["--app", "twsgi.example:app", "--endpoint", LOOPBACK, *args],
            runner=runner,
            **kwargs,
        )

    def test_pythonDashM(self) -> None:
        """
        C{python -m twsgi}.
        """
        server = self.launch("python -m twsgi")
        self.probe(server, _SINGLE)
        self.assertEqual(server.stop(), 0)

    def test_twsgiScript(self) -> None:
        """
        The C{twsgi} script.
        """
        script = os.path.join(os.path.dirname(sys.executable), "twsgi")
        server = self.launch("python -m twsgi", command=[script])
        self.probe(server, _SINGLE)
        self.assertEqual(server.stop(), 0)

    def test_twist(self) -> None:
        """
        C{twist twsgi}.
        """
        server = self.launch("twist")
        self.probe(server, _SINGLE)
        self.assertEqual(server.stop(), 0)

    def test_twistdWithAccessLog(self) -> None:
        """
        C{twistd -n twsgi} with its access log in a file: SIGUSR1 reopens the
        file, which a tool moved away.
        """
        directory = temporaryDirectory(self)
        path = os.path.join(directory, "access.log")
        server = self.launch("twistd", "--access-log", path, cwd=str(directory))
        self.assertEqual(fetch(server.host, server.port)[0], 200)
        # Its record is written once the response is sent, which the client
        # may see first: moved away before that, it would be in the new file.
        logLines(path, 1)
        os.rename(path, path + ".1")
        reopen = (signal.SIGUSR1, r"twsgi got SIGUSR1: reopened 1 log file\(s\)")
        self.probe(server, [reopen, *_SINGLE[1:]])
        self.assertEqual(server.stop(), 0)
        with open(path) as f:
            self.assertEqual(len(f.readlines()), len(_SINGLE))

    def test_twistdLogfile(self) -> None:
        """
        Under C{twistd --logfile}, SIGUSR1 reopens twsgi's access log, and
        twistd still rotates its own log file, as it does without twsgi.
        """
        directory = temporaryDirectory(self)
        access = os.path.join(directory, "access.log")
        log = os.path.join(directory, "twistd.log")
        server = start(
            self,
            [*_APP, "--access-log", access],
            command=[*TWISTD, "--pidfile=", "-n", "--logfile", log, "twsgi"],
            cwd=str(directory),
            listeners=0,
        )
        port = _waitForPort(log)
        self.assertEqual(fetch("127.0.0.1", port)[0], 200)
        os.rename(access, access + ".1")
        server.signal(signal.SIGUSR1)
        _waitUntil(lambda: os.path.exists(log + ".1"))
        self.assertEqual(fetch("127.0.0.1", port)[0], 200)
        _waitUntil(lambda: os.path.exists(access))
        self.assertEqual(server.stop(), 0)
        with open(log + ".1") as f:
            self.assertIn("twsgi got SIGUSR1: reopened 1 log file(s)", f.read())

    def test_supervisorWithOneWorker(self) -> None:
        """
        C{--workers 1}: SIGHUP replaces the worker, SIGTTIN and SIGTTOU add
        and remove one, SIGUSR1 reaches the worker, SIGUSR2 and SIGWINCH are
        logged and ignored.  Sent to a worker itself, the signals that steer
        the supervisor neither end nor stop it.
        """
        server = self.launch("python -m twsgi", "--workers", "1", listeners=2)
        self.probe(
            server,
            [
                (signal.SIGUSR1, r"twsgi got SIGUSR1: nothing to reopen"),
                (signal.SIGHUP, r"worker 1 \(pid \d+\) left with status 0"),
                (signal.SIGUSR2, r"twsgi got SIGUSR2: ignored"),
                (signal.SIGWINCH, r"twsgi got SIGWINCH: ignored"),
                (signal.SIGTTIN, r"twsgi got SIGTTIN: adding a worker, now 2"),
                (signal.SIGTTOU, r"worker \d+ \(pid \d+\) left with status 0"),
            ],
        )
        [worker] = _liveWorkers(server)
        seen = len(server.lines)
        for signum in (
            signal.SIGINT,
            signal.SIGHUP,
            signal.SIGTTIN,
            signal.SIGTTOU,
            signal.SIGWINCH,
        ):
            os.kill(worker, signum)
        self.probe(
            server, [(signal.SIGUSR1, r"twsgi got SIGUSR1: nothing to reopen")], worker
        )
        self.assertEqual(_liveWorkers(server), [worker])
        self.assertNotIn("stopping", "\n".join(server.lines[seen:]))
        self.assertEqual(server.stop(), 0)

    def test_supervisorUnderTwistdAndTwist(self) -> None:
        """
        Under C{twistd -n} and C{twist}, the supervisor of C{--workers 1}
        handles every signal as under C{python -m twsgi}.
        """
        for runner in ("twistd", "twist"):
            server = self.launch(runner, "--workers", "1", listeners=2)
            self.probe(
                server,
                [
                    (signal.SIGUSR1, r"twsgi got SIGUSR1: asking 1 worker"),
                    (signal.SIGUSR2, r"twsgi got SIGUSR2: ignored"),
                    (signal.SIGWINCH, r"twsgi got SIGWINCH: ignored"),
                    (signal.SIGHUP, r"worker 1 \(pid \d+\) left with status 0"),
                    (signal.SIGTTIN, r"twsgi got SIGTTIN: adding a worker, now 2"),
                    (signal.SIGTTOU, r"twsgi got SIGTTOU: removing a worker, now 1"),
                ],
            )
            self.assertEqual(server.stop(), 0, runner)

    def test_reload(self) -> None:
        """
        C{python -m twsgi --reload}: the reloader logs and ignores the
        signals C{hupper} does not handle, and the server goes on.
        """
        server = self.launch("python -m twsgi", "--reload", checkout=True)
        self.probe(
            server,
            [
                (signum, rf"twsgi --reload: got {signum.name}: ignored")
                for signum in (
                    signal.SIGUSR1,
                    signal.SIGUSR2,
                    signal.SIGWINCH,
                    signal.SIGTTIN,
                    signal.SIGTTOU,
                )
            ],
        )
        server.stop()

    def test_serve(self) -> None:
        """
        A script that calls L{twsgi.serve}.
        """
        directory = temporaryDirectory(self)
        script = directory / "serve.py"
        script.write_text(_SERVE_SCRIPT)
        server = start(
            self,
            [str(script)],
            command=[sys.executable],
            cwd=str(directory),
            env={"PYTHONPATH": ROOT},
        )
        self.probe(server, _SINGLE)
        self.assertEqual(server.stop(), 0)
        server.waitFor("serve returned DrainResult")

    def test_tacHandleSignals(self) -> None:
        """
        A L{twsgi.TwsgiService} given C{handleSignals=True} in a C{.tac}
        file under C{twistd -n -y}.
        """
        directory = temporaryDirectory(self)
        tac = directory / "app.tac"
        tac.write_text(_TAC)
        server = start(
            self,
            ["--pidfile=", "-n", "-y", str(tac)],
            command=TWISTD,
            cwd=str(directory),
        )
        self.probe(server, _SINGLE)
        self.assertEqual(server.stop(), 0)


_APP = ["--app", "twsgi.example:app", "--endpoint", LOOPBACK]

_SERVE_SCRIPT = textwrap.dedent(
    f"""
    import twsgi
    from twsgi.example import app

    result = twsgi.serve(app, {LOOPBACK!r})
    print("serve returned", result, flush=True)
    """
)

_TAC = textwrap.dedent(
    f"""
    from twisted.application.service import Application
    from twisted.internet import reactor

    import twsgi
    from twsgi.example import app

    application = Application("twsgi")
    config = twsgi.ServerConfig(endpoint=({LOOPBACK!r},), access_log="none")
    twsgi.TwsgiService(config, app, reactor, handleSignals=True).setServiceParent(
        application
    )
    """
)


_SLOW_APP = """
import os, time
open("importing", "w").close()
deadline = time.monotonic() + 20
while not os.path.exists("go") and time.monotonic() < deadline:
    time.sleep(0.01)
from twsgi.example import app
"""
"""
An application module that takes as long to import as the test wants (until
a file C{go} exists), as a large application's does.
"""


class StartingTests(SynchronousTestCase):
    """
    The signals of the table that arrive while the application loads,
    before the server listens and installs its handlers.
    """

    def loading(self) -> tuple[Any, ServerProcess]:
        """
        A server importing its application until a file C{go} is in its
        directory.

        @return: that directory, and the server.
        """
        directory = temporaryDirectory(self)
        (directory / "slowapp.py").write_text(_SLOW_APP)
        server = start(
            self,
            ["--app", "slowapp:app", "--endpoint", LOOPBACK],
            cwd=str(directory),
            env={"PYTHONPATH": str(directory)},
            listeners=0,
        )
        _waitUntil(lambda: (directory / "importing").exists(), 20.0)
        return directory, server

    def test_whileTheApplicationLoads(self) -> None:
        """
        SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGTTIN and SIGTTOU sent while
        the application is being imported neither end nor stop the process
        (their default actions): it goes on to serve, and stops cleanly.
        """
        directory, server = self.loading()
        for signum, _ in _SINGLE:
            os.kill(server.process.pid, signum)
        # The process sees this file only after a system call returns, by
        # when the kernel has delivered the signals.
        (directory / "go").touch()
        line = server.waitFor(r"listening on http://127\.0\.0\.1:\d+", timeout=20)
        port = int(re.findall(r"127\.0\.0\.1:(\d+)", line)[0])
        self.assertEqual(fetch("127.0.0.1", port)[0], 200)
        self.assertEqual(server.stop(), 0)

    def test_interruptWhileLoading(self) -> None:
        """
        Ctrl-C (SIGINT) while the application is imported ends the process
        with status 130 and one line, not a C{KeyboardInterrupt} traceback.
        """
        directory, server = self.loading()
        server.signal(signal.SIGINT)
        self.assertEqual(server.wait(), 130)
        self.assertNotIn("Traceback", server.output)
        self.assertEqual(
            server.lines[-1:], ["twsgi: interrupted while loading the application"]
        )


def _liveWorkers(server: ServerProcess) -> list[int]:
    """
    The pids of the workers the supervisor started and did not see leave.
    """
    started = re.findall(r"worker \d+ started \(pid (\d+)\)", server.output)
    left = re.findall(r"worker \d+ \(pid (\d+)\) left", server.output)
    return [int(pid) for pid in started if pid not in left]


class DocsExampleTests(SynchronousTestCase):
    """
    The SIGUSR1 example of C{docs/testing.rst} runs as written.
    """

    def test_usr1Example(self) -> None:
        """
        The example that sends SIGUSR1 to a server with a metrics listener
        finds the line it waits for, and stops the server.
        """
        with open(os.path.join(ROOT, "docs", "testing.rst")) as f:
            blocks = f.read().split(".. code-block:: python\n")
        [block] = [b for b in blocks if "server.signal(signal.SIGUSR1)" in b]
        # The block is its indented lines, blank ones included; it runs as
        # written, imports and all.
        lines = []
        for line in block.lstrip("\n").splitlines():
            if line and not line.startswith("   "):
                break
            lines.append(line)
        code = textwrap.dedent("\n".join(lines))
        code = code.replace("myproject.wsgi:application", "twsgi.example:app")
        namespace: dict[str, Any] = {}
        try:
            exec(code, namespace)
        finally:
            server = namespace.get("server")
            if server is not None:
                server.stop()
        self.assertEqual(server.process.returncode, 0)
        self.assertIn(("127.0.0.1", namespace["port"]), server.addresses)
