# -*- test-case-name: tests.test_docs_examples -*-
"""
The C{.tac} examples of the docs run under C{twistd -n -y} and serve.
"""

from __future__ import annotations

import os
import signal
import sys

from twisted.trial.unittest import SynchronousTestCase

from .serverprocess import ROOT, ServerProcess, get

_TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]
_LOCAL = {"TWSGI_TAC_ENDPOINT": "tcp:0:interface=127.0.0.1"}
# twistd stops the reactor on SIGTERM, then ends itself with that signal.
_STOPPED = -signal.SIGTERM


def _twistd(example: str) -> ServerProcess:
    """
    A C{twistd -n -y docs/examples/<example>} process on port 0.
    """
    path = os.path.join(ROOT, "docs", "examples", example)
    return ServerProcess(["-n", "--pidfile=", "-y", path], _LOCAL, command=_TWISTD)


class TacExampleTests(SynchronousTestCase):
    """
    Tests of C{docs/examples/*.tac}.
    """

    def test_twsgiTac(self) -> None:
        """
        C{twsgi.tac} serves the example application through a
        L{twsgi.TwsgiService}, and stops cleanly on SIGTERM.
        """
        server = _twistd("twsgi.tac").start()
        self.addCleanup(server.stop)
        status, _, body = get(server.port(), "/")
        self.assertEqual((status, body), (200, b"Hello from twsgi!\n"))
        server.waitFor(r"twsgi serving twsgi\.example:app with 4-32 threads")
        self.assertEqual(server.stop(), _STOPPED)
        server.waitFor(r"Server Shut Down\.")

    def test_mountTac(self) -> None:
        """
        C{mount.tac} serves the application below C{/app} with that prefix as
        C{SCRIPT_NAME}, and the rest of the site beside it.
        """
        server = _twistd("mount.tac").start(listeners=0)
        self.addCleanup(server.stop)
        line = server.waitFor(r"Site starting on \d+", timeout=30)
        port = int(line.split("starting on ")[1])
        status, _, body = get(port, "/app/hello/world")
        self.assertEqual(
            (status, body), (200, b"SCRIPT_NAME=/app PATH_INFO=/hello/world\n")
        )
        status, _, body = get(port, "/")
        self.assertEqual((status, body), (200, b"The rest of the site.\n"))
        self.assertEqual(server.stop(), _STOPPED)
        server.waitFor(r"Server Shut Down\.")
