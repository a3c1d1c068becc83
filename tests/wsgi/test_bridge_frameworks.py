"""
Real Flask and Django views that read their request body after the client
left, each served by a C{python -m twsgi} process: the body reads whole, the
server log holds no traceback, and the access log records the request as
the client leaving (499).
"""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import time
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.server import FRAMEWORKS, LOOPBACK, start, temporaryDirectory
from twsgi.testing import ServerProcess


def waitForFile(path: Path, server: ServerProcess, timeout: float = 10.0) -> str:
    """
    Wait (at most C{timeout} seconds) until C{path} exists, and return its
    text.

    @raise AssertionError: if it does not appear in time (with the log of
        C{server}).
    """
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never appeared:\n{server.output}")
        time.sleep(0.01)
    return path.read_text()


class LateReadTests(SynchronousTestCase):
    """
    A view that reads the request body after its client reset the
    connection reads it whole; the server logs no error.
    """

    def check(self, app: str) -> None:
        directory = temporaryDirectory(self)
        release = directory / "release"
        server = start(
            self,
            ["--endpoint", LOOPBACK, "--pythonpath", FRAMEWORKS, "--app", app,
             "--access-log", "-"],
            checkout=True,
        )  # fmt: skip
        # Larger than twisted.web keeps in memory: the body is a file.
        body = os.urandom(200_000)
        client = socket.create_connection((server.host, server.port), timeout=10)
        client.sendall(
            b"POST /late-read HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"X-Release: %s\r\nContent-Length: %d\r\n\r\n%s"
            % (str(release).encode(), len(body), body)
        )
        waitForFile(release.with_suffix(".started"), server)
        # Reset, not closed: a client that is gone, not one that half-closed.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        server.waitFor(r'"POST /late-read HTTP/1\.1" 499 ')
        release.touch()
        self.assertEqual(
            waitForFile(release.with_suffix(".read"), server),
            f"{len(body)} {hashlib.sha256(body).hexdigest()}",
        )
        self.assertEqual(server.stop(), 0)
        output = server.output
        self.assertNotIn("Traceback", output)
        self.assertNotIn("error", output.lower())
        self.assertEqual(output.count('"POST /late-read HTTP/1.1"'), 1, output)

    def test_flask(self) -> None:
        """
        Flask's C{request.data}.
        """
        self.check("flaskops:app")

    def test_django(self) -> None:
        """
        Django's C{request.body}.
        """
        self.check("djangoops.wsgi:application")
