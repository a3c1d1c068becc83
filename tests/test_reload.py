"""
Tests for C{--reload}: the server restarts when a source file changes.
"""

from __future__ import annotations

import os
import time

from twisted.trial.unittest import SynchronousTestCase

from twsgi._reload import startReloader

from ._server import LOOPBACK, fetch, start
from .test_opslogging import makeWarnings

APP = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [{body!r}]
"""


class ReloadTests(SynchronousTestCase):
    """
    Tests for L{startReloader} and C{--reload}.
    """

    def test_reloaderArguments(self) -> None:
        """
        The worker runs C{twsgi._main.main} with the same arguments.
        """
        calls = []

        class FakeHupper:
            @staticmethod
            def start_reloader(path: str, **kwargs: object) -> str:
                calls.append((path, kwargs))
                return "proxy"

        self.assertEqual(startReloader(["--app", "a:b"], FakeHupper), "proxy")
        self.assertEqual(
            calls, [("twsgi._main.main", {"worker_kwargs": {"argv": ["--app", "a:b"]}})]
        )

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
