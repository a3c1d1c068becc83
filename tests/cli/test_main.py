"""
Whole-process tests of the server log under every launcher (C{twistd -n
twsgi}, C{twist twsgi}, C{python -m twsgi}, with and without C{--workers}):
its format, the lines it leaves out, and what a failed start says.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from twisted.logger import LogBeginner, Logger, LogPublisher
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.server import (
    APPS,
    LOOPBACK,
    ROOT,
    RUNNERS,
    TWISTD,
    cleanEnviron,
    fetch,
    freePort,
    run,
    start,
    temporaryDirectory,
)
from twsgi.cli.main import RunnerOptions, beginLogging
from twsgi.logs.serverlog import applyLogFormat

_LEGACY = re.compile(
    r"starting on|Port \S+ Closed|(?:Starting|Stopping) factory"
    r"|log_namespace|__class_uuid__"
)


def _example(*extra: str) -> list[str]:
    """
    The arguments that serve the example application on port 0, without an
    access log (it would share the output), and C{extra}.
    """
    return [
        "--app",
        "twsgi.example:app",
        "--endpoint",
        LOOPBACK,
        "--access-log",
        "none",
        *extra,
    ]


def _assertOneLine(
    testCase: SynchronousTestCase,
    result: subprocess.CompletedProcess[str],
    line: str,
    what: str,
) -> None:
    """
    The command exited 1 with C{line} alone on standard error, and no
    traceback in its output.
    """
    testCase.assertEqual(result.returncode, 1, what)
    testCase.assertEqual(result.stderr, line + "\n", what)
    testCase.assertNotIn("Traceback", result.stdout, what)


def _assertText(testCase: SynchronousTestCase, lines: list[str]) -> None:
    """
    Every line is a text line of the server log: no JSON, none of Twisted's
    internal event JSON or legacy port lines.
    """
    testCase.assertTrue(lines)
    for line in lines:
        testCase.assertRegex(line, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} \[")
        testCase.assertIsNone(_LEGACY.search(line), line)


class RunnerTests(SynchronousTestCase):
    """
    Unit tests of twsgi's own runner, L{twsgi.cli.main}.
    """

    def begin(self, runner: RunnerOptions) -> Logger:
        """
        Begin logging as C{runner} says, for a publisher of this test's own
        instead of the global one (and fake standard streams); return a
        logger that publishes there.
        """
        publisher = LogPublisher()
        stdio = SimpleNamespace(stdout=io.StringIO(), stderr=io.StringIO())
        warnings = SimpleNamespace(showwarning=lambda *args: None)
        beginner = LogBeginner(publisher, io.StringIO(), stdio, warnings)
        log = Logger(namespace="twsgi", observer=publisher)
        log.info("before the beginning")
        beginLogging(runner, beginner)
        return log

    def test_textAtInfo(self) -> None:
        """
        By default the log is text on the runner's file from the info level
        up, with the events logged before it began, as under C{twist}.
        """
        runner = RunnerOptions()
        runner["logFile"] = io.StringIO()
        log = self.begin(runner)
        log.debug("not written")
        log.info("written {n}", n=1)
        lines = runner["logFile"].getvalue().splitlines()
        self.assertEqual(len(lines), 2, lines)
        _assertText(self, lines)
        self.assertTrue(lines[0].endswith("[twsgi#info] before the beginning"))
        self.assertTrue(lines[1].endswith("[twsgi#info] written 1"))

    def test_logFormat(self) -> None:
        """
        The runner's options take C{--log-format}: with C{json}, the log is
        twsgi's JSON lines.
        """
        runner = RunnerOptions()
        runner["logFile"] = io.StringIO()
        self.assertTrue(applyLogFormat(runner, "json"))
        log = self.begin(runner)
        log.warn("careful")
        events = [
            json.loads(line) for line in runner["logFile"].getvalue().splitlines()
        ]
        self.assertEqual(
            [(e["level"], e["message"]) for e in events],
            [("info", "before the beginning"), ("warn", "careful")],
        )


class ServerLogTests(SynchronousTestCase):
    """
    The server log is text (or twsgi's JSON lines with C{--log-format json})
    under every launcher, with its output a pipe, as under systemd.
    """

    def test_textEverywhere(self) -> None:
        """
        Every launcher writes text lines, without Twisted's legacy port
        lines, and names its listener as a URL.
        """
        for runner in RUNNERS:
            server = start(self, _example(), runner=runner)
            self.assertEqual(fetch("127.0.0.1", server.port)[0], 200)
            self.assertEqual(server.stop(), 0)
            lines = [line for line in server.rawLines if line.strip()]
            _assertText(self, lines)
            self.assertTrue(
                any(
                    f"listening on http://127.0.0.1:{server.port} (" in line
                    for line in lines
                ),
                runner,
            )
            self.assertTrue(any("twsgi stopped" in line for line in lines), runner)

    def test_haproxyText(self) -> None:
        """
        A C{haproxy:} listener logs no "Starting factory" or "Stopping
        factory" line of its wrapping factory, under every launcher.
        """
        for runner in RUNNERS:
            server = start(
                self,
                [
                    "--app",
                    "twsgi.example:app",
                    "--endpoint",
                    f"haproxy:{LOOPBACK}",
                    "--access-log",
                    "none",
                ],
                runner=runner,
            )
            with socket.create_connection(server.addresses[0], timeout=10) as client:
                client.sendall(
                    b"PROXY TCP4 192.0.2.1 192.0.2.2 1234 80\r\n"
                    b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                )
                self.assertTrue(client.recv(100).startswith(b"HTTP/1.1 200 "))
            self.assertEqual(server.stop(), 0)
            lines = [line for line in server.rawLines if line.strip()]
            _assertText(self, lines)
            self.assertTrue(any("twsgi stopped" in line for line in lines), runner)

    def test_workersText(self) -> None:
        """
        With C{--workers 2} under C{twistd -n}, the supervisor's and the
        workers' lines are one text log, each worker line after
        C{[worker PID]}.
        """
        server = start(
            self,
            _example("--workers", "2"),
            runner="twistd",
        )
        server.waitFor(r"\[worker \d+\] twsgi serving")
        self.assertEqual(server.stop(), 0)
        lines = [line for line in server.rawLines if line.strip()]
        _assertText(self, lines)
        started = set(re.findall(r"worker \d+ started \(pid (\d+)\)", server.output))
        serving = set(re.findall(r"\[worker (\d+)\] twsgi serving", server.output))
        self.assertEqual(len(started), 2)
        self.assertTrue(serving)
        self.assertLessEqual(serving, started)

    def test_workersJSON(self) -> None:
        """
        With C{--workers 2 --log-format json}, every line is one JSON object,
        and each of a worker carries its C{pid}.
        """
        server = start(
            self,
            _example("--workers", "2", "--log-format", "json"),
        )
        server.waitFor(r"\[worker \d+\] twsgi serving")
        self.assertEqual(server.stop(), 0)
        events = [json.loads(line) for line in server.rawLines if line.strip()]
        serving = [e for e in events if "twsgi serving" in e["message"]]
        self.assertTrue(serving)
        for event in serving:
            self.assertIsInstance(event["pid"], int)
            self.assertNotEqual(event["pid"], server.process.pid)
            self.assertEqual(event["level"], "info")
            self.assertEqual(event["namespace"], "twsgi")


class FailedStartTests(SynchronousTestCase):
    """
    A start that cannot listen says so in one line and exits 1, without a
    story of a drain.
    """

    def test_portInUse(self) -> None:
        """
        Under every launcher, with and without workers: the one line on
        standard error, exit status 1, no drain in the log.
        """
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        endpoint = f"tcp:{taken.getsockname()[1]}:interface=127.0.0.1"
        for runner in RUNNERS:
            for extra in ([], ["--workers", "2"]):
                result = run(
                    ["--app", "twsgi.example:app", "--endpoint", endpoint, *extra],
                    runner=runner,
                )
                what = f"{runner} {extra}: {result.stdout}"
                _assertOneLine(
                    self,
                    result,
                    f"twsgi: cannot listen on {endpoint}: Address already in use",
                    what,
                )
                self.assertNotIn("drain", result.stdout, what)

    def test_noWorkerStarts(self) -> None:
        """
        Under every launcher: when no worker can start (the application's
        attribute is not there, which only a worker finds), the worker's one
        line is on standard error too, as a single process writes it, and
        the status is 1.
        """
        for runner in RUNNERS:
            result = run(
                ["--app", "twsgi.example:nothere", "--endpoint", LOOPBACK]
                + ["--workers", "2"],
                runner=runner,
            )
            _assertOneLine(
                self,
                result,
                "twsgi: --app (from the command line): 'twsgi.example:nothere': "
                "module 'twsgi.example' has no attribute 'nothere'",
                f"{runner}: {result.stdout}",
            )
            self.assertIn("no worker could start", result.stdout)

    def test_onStartHookFails(self) -> None:
        """
        Under every launcher, with and without workers: an C{--on-start}
        hook that raises makes the server exit 1, with its one line on
        standard error and its traceback once in the log (not also on
        standard error, as a critical event is before the log begins).
        """
        for runner in RUNNERS:
            for extra in ([], ["--workers", "1"]):
                result = run(
                    [*_example("--on-start", "tests.apps.hookfixtures:failing")]
                    + extra,
                    runner=runner,
                    cwd=ROOT,
                )
                what = f"{runner} {extra}: {result.stdout} {result.stderr}"
                self.assertEqual(result.returncode, 1, what)
                self.assertEqual(
                    result.stderr,
                    "twsgi: the on-start hook tests.apps.hookfixtures:failing "
                    "failed: RuntimeError: the hook failed on purpose\n",
                    what,
                )
                self.assertEqual(result.stdout.count("Traceback"), 1, what)

    def test_portInUseOneStream(self) -> None:
        """
        With standard error and the log in one stream (a terminal, the
        journal under systemd), a failed start says its error once, and with
        C{--log-format json} that stream is JSON lines only.
        """
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        endpoint = f"tcp:{taken.getsockname()[1]}:interface=127.0.0.1"
        for runner, command in RUNNERS.items():
            for extra in ([], ["--workers", "2"]):
                if runner != "twistd":
                    extra = [*extra, "--log-format", "json"]
                result = subprocess.run(
                    [*command, "--app", "twsgi.example:app", "--endpoint", endpoint]
                    + extra,
                    env=cleanEnviron(),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    text=True,
                    timeout=20,
                )
                what = f"{runner} {extra}: {result.stdout}"
                self.assertEqual(result.returncode, 1, what)
                lines = result.stdout.splitlines()
                said = [line for line in lines if "cannot listen on" in line]
                self.assertEqual(len(said), 1, what)
                if runner != "twistd":
                    for line in lines:
                        self.assertIsInstance(json.loads(line), dict, what)


class DaemonAccessLogTests(SynchronousTestCase):
    """
    C{twistd twsgi} without C{-n} daemonizes, with standard output on
    /dev/null: the access log goes to a file beside twistd's log instead.
    """

    def test_daemonized(self) -> None:
        """
        A request to a daemonized server is in C{NAME-access.log} beside
        twistd's C{--logfile NAME.log}, which says where the access log goes.
        """
        directory = _daemon(
            self,
            lambda port: [
                "twsgi",
                "--app",
                "twsgi.example:app",
                "--endpoint",
                f"tcp:{port}:interface=127.0.0.1",
            ],
            "/?daemon=1",
        )
        access = (directory / "server-access.log").read_text()
        self.assertIn('"GET /?daemon=1 HTTP/1.1" 200 ', access)
        log = (directory / "server.log").read_text()
        self.assertIn(f"the access log goes to {directory / 'server-access.log'}", log)
        self.assertIn("twsgi stopped: every request drained", log)

    def test_daemonizedTacStandardOutput(self) -> None:
        """
        A daemonized C{.tac} file whose L{twsgi.TwsgiService} has
        C{access_log="-"} (standard output, /dev/null once twistd daemonizes)
        says in twistd's log that its access log is lost.
        """
        tac = os.path.join(ROOT, "docs", "examples", "twsgi.tac")
        directory = _daemon(
            self,
            lambda port: ["-y", tac],
            "/",
            lambda port: {"TWSGI_TAC_ENDPOINT": f"tcp:{port}:interface=127.0.0.1"},
        )
        log = (directory / "server.log").read_text()
        self.assertRegex(
            log,
            r"\[twsgi#warn\] the access log goes to standard output, which is "
            r"/dev/null",
        )
        self.assertIn("twsgi stopped: every request drained", log)

    def test_daemonizedWorkersMissingModule(self) -> None:
        """
        C{twistd} as a daemon with C{--workers} and a module that is not
        there exits 1 with the one line, before it becomes a daemon: the
        supervisor looks for the module before it starts a worker.
        """
        directory = temporaryDirectory(self)
        pidfile = directory / "twistd.pid"
        started = _twistd(
            directory,
            [
                "--pidfile",
                str(pidfile),
                "--logfile",
                "server.log",
                "twsgi",
                "--workers",
                "2",
                "--app",
                "no_such_module_here:app",
                "--endpoint",
                "tcp:0:interface=127.0.0.1",
            ],
        )
        self.assertEqual(started.returncode, 1, started.stderr)
        self.assertIn(
            f"'no_such_module_here:app': no module named 'no_such_module_here' "
            f"(searched from {str(directory)!r}",
            started.stderr,
        )
        self.assertFalse(pidfile.exists())

    def test_daemonizedWorkersAppRaises(self) -> None:
        """
        C{twistd} as a daemon with C{--workers} and an application that
        raises while it is imported exits 1 with its traceback and the one
        line, before it becomes a daemon, and leaves no pid file: the
        workers would each fail once the command had exited 0.
        """
        directory = temporaryDirectory(self)
        pidfile = directory / "twistd.pid"
        started = _twistd(
            directory,
            ["--pidfile", str(pidfile), "--logfile", "server.log", "twsgi"]
            + ["--workers", "2", "--pythonpath", APPS, "--app", "brokenapp:app"]
            + ["--endpoint", LOOPBACK],
        )
        self.assertEqual(started.returncode, 1, started.stderr)
        lines = started.stderr.splitlines()
        self.assertEqual(
            (lines[0], started.stderr.count("Traceback"), lines[-1]),
            (
                "Traceback (most recent call last):",
                1,
                "twsgi: --app (from the command line): 'brokenapp:app': "
                "importing 'brokenapp' raised RuntimeError: brokenapp cannot "
                "be imported",
            ),
        )
        self.assertFalse(pidfile.exists())

    def test_daemonizedCannotListen(self) -> None:
        """
        A C{twistd} daemon, with or without C{--workers}, whose endpoint
        cannot listen makes the C{twistd} command exit 1 with the error (it
        listens once detached, but reports through twistd's status pipe),
        and leaves no pid file; the log names the endpoint.
        """
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        endpoint = f"tcp:{taken.getsockname()[1]}:interface=127.0.0.1"
        for extra in ([], ["--workers", "2"]):
            directory = temporaryDirectory(self)
            pidfile = directory / "twistd.pid"
            started = _twistd(
                directory,
                ["--pidfile", str(pidfile), "--logfile", "server.log"]
                + ["twsgi", "--app", "twsgi.example:app", "--endpoint", endpoint]
                + extra,
            )
            what = f"{extra}: {started.stderr}"
            self.assertEqual(started.returncode, 1, what)
            self.assertIn(f"ListenError: cannot listen on {endpoint}", started.stderr)
            _waitFor(lambda pidfile=pidfile: not pidfile.exists())
            log = (directory / "server.log").read_text()
            self.assertIn(f"cannot listen on {endpoint}: Address already in use", log)


class TwistdFilesTests(SynchronousTestCase):
    """
    The files C{twistd} itself writes once twsgi has built its service.
    """

    def test_missingDirectory(self) -> None:
        """
        A C{--pidfile} or C{--logfile} in a directory that is not there is
        one line on standard error and exit status 1, in the foreground and
        as a daemon, not a traceback in the log.
        """
        directory = temporaryDirectory(self)
        missing = str(directory / "missing" / "twistd")
        for flag in ("--pidfile", "--logfile"):
            for foreground in (["-n"], []):
                given = {"--pidfile": "twistd.pid", "--logfile": "server.log"}
                given[flag] = missing
                result = _twistd(
                    directory,
                    [*foreground, *(a for f in given.items() for a in f)]
                    + ["twsgi", *_example()],
                )
                what = f"{flag} {foreground}: {result.stdout} {result.stderr}"
                _assertOneLine(
                    self,
                    result,
                    f"twsgi: twistd {flag} {missing!r}: No such file or directory",
                    what,
                )
                self.assertFalse((directory / "twistd.pid").exists(), what)


def _twistd(
    directory: Any, args: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """
    Run C{twistd ARGS} in C{directory} until the command ends (a daemon
    detaches), with a clean environment plus C{env}.
    """
    return subprocess.run(
        [*TWISTD, *args],
        cwd=directory,
        env=cleanEnviron(env),
        capture_output=True,
        text=True,
        timeout=20,
    )


def _daemon(
    testCase: SynchronousTestCase,
    args: Callable[[int], list[str]],
    path: str,
    env: Callable[[int], dict[str, str]] = lambda port: {},
) -> Any:
    """
    Run C{twistd --logfile server.log ARGS} as a daemon in a new temporary
    directory, on a free port given to C{args} and C{env}; make one request
    for C{path}, which must answer 200, stop it with SIGTERM and wait until it
    is gone.

    @return: the directory.
    """
    directory = temporaryDirectory(testCase)
    pidfile = directory / "twistd.pid"
    port = freePort()
    started = _twistd(
        directory,
        ["--pidfile", str(pidfile), "--logfile", "server.log", *args(port)],
        env(port),
    )
    testCase.assertEqual(started.returncode, 0, started.stderr)
    pid = int(_waitFor(lambda: pidfile.exists() and pidfile.read_text().strip()))
    testCase.addCleanup(_kill, pid)
    testCase.assertEqual(_waitFor(lambda: _status(port, path)), 200)
    os.kill(pid, signal.SIGTERM)
    _waitFor(lambda: not pidfile.exists())
    return directory


def _waitFor(condition: Callable[[], Any], timeout: float = 20.0) -> Any:
    """
    Poll C{condition} until it returns something true (at most C{timeout}
    seconds); return that.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{condition} still false after {timeout}s")
        time.sleep(0.05)


def _status(port: int, path: str) -> int | None:
    """
    The status of one request, or C{None} if nothing answers yet.
    """
    try:
        return fetch("127.0.0.1", port, path=path, timeout=2)[0]
    except OSError:
        return None


def _kill(pid: int) -> None:
    """
    Kill a daemon that is still there.
    """
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
