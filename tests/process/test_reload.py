"""
Tests for C{--reload}: the server restarts when a source file changes.
"""

from __future__ import annotations

import os
import socket
import time

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.logs import makeWarnings
from tests.helpers.server import LOOPBACK, fetch, run, start
from twsgi.process.reload import (
    MONITOR_IGNORES,
    STARTING,
    reloadIfChangedWhileStarting,
    sourceTimes,
    startReloader,
)
from twsgi.testing import ServerProcess

APP = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [{body!r}]
"""


class _FakeHupper:
    """
    Records the calls of L{startReloader} to C{hupper}.
    """

    def __init__(self, active: bool) -> None:
        self.active = active
        self.calls: list[tuple[str, dict[str, object]]] = []

    def is_active(self) -> bool:
        return self.active

    def start_reloader(self, path: str, **kwargs: object) -> str:
        self.calls.append((path, kwargs))
        return "proxy"


def _installedBy(active: bool) -> set[int]:
    """
    The signals L{startReloader} installs handlers for, where C{hupper} is
    active or not.
    """
    installed: dict[int, object] = {}
    startReloader([], _FakeHupper(active), installed.__setitem__)
    return set(installed)


class ReloadTests(SynchronousTestCase):
    """
    Tests for L{startReloader} and C{--reload}.
    """

    def test_reloaderArguments(self) -> None:
        """
        The worker runs C{twsgi.cli.main.main} with the same arguments.
        """
        hupper = _FakeHupper(active=True)
        self.assertEqual(startReloader(["--app", "a:b"], hupper), "proxy")
        self.assertEqual(
            hupper.calls,
            [("twsgi.cli.main.main", {"worker_kwargs": {"argv": ["--app", "a:b"]}})],
        )

    def test_monitorIgnores(self) -> None:
        """
        The monitor (where C{hupper} is not active yet) handles the signals
        that C{hupper} leaves at their default action, which would end or
        suspend it; the worker leaves them to the server.
        """
        self.assertEqual(_installedBy(active=False), set(MONITOR_IGNORES))
        self.assertEqual(_installedBy(active=True), set())

    def serveOne(self) -> tuple[ServerProcess, str]:
        """
        Serve, with C{--reload}, an application that answers C{one} from a
        module last changed 10 seconds ago; return the server, once it
        answered, and the module's path.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        module = os.path.join(directory, "reloadapp.py")
        with open(module, "w") as f:
            f.write(APP.format(body=b"one"))
        earlier = time.time() - 10
        os.utime(module, (earlier, earlier))
        server = start(
            self,
            [
                "--reload",
                "--app", "reloadapp:app",
                "--pythonpath", directory,
                "--endpoint", LOOPBACK,
                "--access-log", "none",
            ],
            checkout=True,
            timeout=30,
        )  # fmt: skip
        self.assertEqual(fetch(*server.endpoints[LOOPBACK])[2], b"one")
        return server, module

    def test_restartOnChange(self) -> None:
        """
        After the application's module changes, a new worker serves the new
        code.
        """
        server, module = self.serveOne()
        first = server.endpoints[LOOPBACK]
        # hupper watches the module once the worker reports it imported;
        # change it until hupper sees a change (one made before that is not
        # seen), then wait for the new worker.
        deadline = time.monotonic() + 40
        seen = len(server.lines)
        while time.monotonic() < deadline:
            with open(module, "w") as f:
                f.write(APP.format(body=b"two"))
            later = time.time() + 2
            os.utime(module, (later, later))
            try:
                server.waitFor("changed; reloading", timeout=3, start=seen)
            except RuntimeError:
                continue
            break
        server.waitFor("listening on", max(0.0, deadline - time.monotonic()), seen)
        self.assertNotEqual(server.endpoints[LOOPBACK], first, server.output)
        self.assertEqual(fetch(*server.endpoints[LOOPBACK])[2], b"two")

    def test_cannotListen(self) -> None:
        """
        A port in use ends C{--reload} with status 1 and the one line, not
        with a monitor that waits for a source file to change, which would
        not free the port.
        """
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        endpoint = f"tcp:{taken.getsockname()[1]}:interface=127.0.0.1"
        result = run(
            ["--app", "twsgi.example:app", "--reload", "--endpoint", endpoint]
            + ["--access-log", "none"],
            timeout=30,
        )
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn(
            f"twsgi: cannot listen on {endpoint}: Address already in use\n",
            result.stderr,
        )

    def test_changeAsItStarts(self) -> None:
        """
        A change saved as soon as the server first answers (before
        C{hupper}'s monitor has seen the file) restarts it too.
        """
        server, module = self.serveOne()
        seen = len(server.lines)
        with open(module, "w") as f:
            f.write(APP.format(body=b"two"))
        server.waitFor("listening on", 20, seen)
        self.assertEqual(fetch(*server.endpoints[LOOPBACK])[2], b"two")

    def test_relativeChdir(self) -> None:
        """
        A relative C{--chdir} is read from the directory twsgi starts in by
        the process that serves too, as without C{--reload}: the monitor
        changed directory before it started that process.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(directory, "site"))
        with open(os.path.join(directory, "site", "chdirapp.py"), "w") as f:
            f.write(APP.format(body=b"here"))
        server = start(
            self,
            [
                "--reload",
                "--chdir", "site",
                "--pythonpath", ".",
                "--app", "chdirapp:app",
                "--endpoint", LOOPBACK,
                "--access-log", "none",
            ],
            cwd=directory,
            timeout=30,
        )  # fmt: skip
        self.assertEqual(fetch(*server.endpoints[LOOPBACK])[2], b"here")


class _Reloads:
    """
    Counts the reloads asked for.
    """

    def __init__(self) -> None:
        self.count = 0

    def trigger_reload(self) -> None:
        self.count += 1

    def graceful_shutdown(self) -> None:
        raise AssertionError("no shutdown asked for")


class StartingTests(SynchronousTestCase):
    """
    Tests for L{reloadIfChangedWhileStarting}.
    """

    def watch(self, before: dict[str, float], after: dict[str, float]) -> int:
        """
        The reloads asked for when the files' times go from C{before} to
        C{after} in the first L{STARTING} seconds.
        """
        clock, reloads = Clock(), _Reloads()
        times = iter([before, after])
        reloadIfChangedWhileStarting(clock, reloads, lambda: next(times))
        clock.advance(STARTING - 0.1)
        self.assertEqual(reloads.count, 0)
        clock.advance(0.1)
        return reloads.count

    def test_changed(self) -> None:
        """
        A file whose time changed meanwhile asks for one reload, once.
        """
        self.assertEqual(
            self.watch({"a.py": 1.0, "b.py": 2.0}, {"a.py": 1.0, "b.py": 3.0}), 1
        )

    def test_unchanged(self) -> None:
        """
        No file changed, or one went away: no reload.
        """
        self.assertEqual(self.watch({"a.py": 1.0, "b.py": 2.0}, {"a.py": 1.0}), 0)

    def test_sourceTimes(self) -> None:
        """
        L{sourceTimes} has the time of this module's file.
        """
        self.assertEqual(sourceTimes()[__file__], os.stat(__file__).st_mtime)


class ReloadSettingTests(SynchronousTestCase):
    """
    Where C{--reload} cannot apply, the operator is told.
    """

    def test_notWithWorkers(self) -> None:
        """
        C{--reload} with C{--workers} 2 or more is a one-line error: each
        worker would otherwise run a reloader of its own.
        """
        e = self.assertRaises(
            SystemExit, makeWarnings, self, "--reload", "--workers", "2"
        )
        self.assertEqual(
            e.code,
            "twsgi: --reload runs one process: it cannot be combined with --workers 2",
        )

    def test_underTwistd(self) -> None:
        """
        Under C{twistd} or C{twist}, which never reload, one warning says so;
        under C{twsgi}, none.
        """
        self.assertEqual(
            makeWarnings(self, "--reload", main=False),
            [
                "--reload is applied by twsgi and python -m twsgi only: under "
                "twistd or twist, nothing reloads the application"
            ],
        )
        self.assertEqual(makeWarnings(self, "--reload"), [])
