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
        # hupper may poll once a second; make the change visible to it.
        time.sleep(1.1)
        with open(module, "w") as f:
            f.write(APP.format(body=b"two"))
        later = time.time() + 2
        os.utime(module, (later, later))
        deadline = time.monotonic() + 30
        while server.port() == first and time.monotonic() < deadline:
            server.nextLine(deadline - time.monotonic())
        self.assertNotEqual(server.port(), first, "".join(server.lines))
        self.assertEqual(get(server.port(), "/")[2], b"two")
