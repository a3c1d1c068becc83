"""
Tests for C{--reload}: the server restarts when a source file changes.
"""

from __future__ import annotations

import os
import time

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.logs import makeWarnings
from tests.helpers.server import LOOPBACK, fetch, start
from twsgi.process.reload import MONITOR_IGNORES, startReloader

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

    def test_restartOnChange(self) -> None:
        """
        After the application's module changes, a new worker serves the new
        code.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        module = os.path.join(directory, "reloadapp.py")
        with open(module, "w") as f:
            f.write(APP.format(body=b"one"))
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
