"""
Tests for C{--reload}: the server restarts when a source file changes.
"""

from __future__ import annotations

import os
import time

from twisted.trial.unittest import SynchronousTestCase

from twsgi._reload import startReloader

from .serverprocess import ServerProcess, get

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
        server = ServerProcess(
            [
                "--reload",
                "--app", "reloadapp:app",
                "--pythonpath", directory,
                "--endpoint", "tcp:0:interface=127.0.0.1",
                "--access-log", "none",
            ]
        ).start(timeout=30)  # fmt: skip
        self.addCleanup(server.stop)
        self.assertEqual(get(server.port(), "/")[2], b"one")
        first = server.port()
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
            wait = min(deadline, time.monotonic() + 3)
            while time.monotonic() < wait and server.nextLine(
                wait - time.monotonic(), strict=False
            ):
                pass
            if any("changed; reloading" in line for line in server.lines[seen:]):
                break
        while server.port() == first and time.monotonic() < deadline:
            if server.nextLine(deadline - time.monotonic()) is None:
                break
        self.assertNotEqual(server.port(), first, "".join(server.lines))
        self.assertEqual(get(server.port(), "/")[2], b"two")
