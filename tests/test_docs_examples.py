# -*- test-case-name: tests.test_docs_examples -*-
"""
The C{.tac} examples of the docs run under C{twistd -n -y} and serve.
"""

from __future__ import annotations

import os
import signal

from twisted.trial.unittest import SynchronousTestCase

from twsgi.testing import ServerProcess

from ._server import LOOPBACK, ROOT, TWISTD, fetch, start

# twistd stops the reactor on SIGTERM, then ends itself with that signal.
_STOPPED = -signal.SIGTERM


def _twistd(
    testCase: SynchronousTestCase, example: str, listeners: int = 1
) -> ServerProcess:
    """
    A C{twistd -n -y docs/examples/<example>} process on port 0, stopped in
    C{testCase}'s cleanup.
    """
    path = os.path.join(ROOT, "docs", "examples", example)
    return start(
        testCase,
        ["-n", "--pidfile=", "-y", path],
        command=TWISTD,
        env={"TWSGI_TAC_ENDPOINT": LOOPBACK},
        listeners=listeners,
        checkout=True,
    )


class TacExampleTests(SynchronousTestCase):
    """
    Tests of C{docs/examples/*.tac}.
    """

    def test_twsgiTac(self) -> None:
        """
        C{twsgi.tac} serves the example application through a
        L{twsgi.TwsgiService}, and stops cleanly on SIGTERM.
        """
        server = _twistd(self, "twsgi.tac")
        status, _, body = fetch(server.host, server.port)
        self.assertEqual((status, body), (200, b"Hello from twsgi!\n"))
        server.waitFor(r"twsgi serving twsgi\.example:app with 4-32 threads")
        self.assertEqual(server.stop(), _STOPPED)
        server.waitFor(r"Server Shut Down\.")

    def test_mountTac(self) -> None:
        """
        C{mount.tac} serves the application below C{/app} with that prefix as
        C{SCRIPT_NAME}, and the rest of the site beside it.
        """
        server = _twistd(self, "mount.tac", listeners=0)
        line = server.waitFor(r"Site starting on \d+", timeout=30)
        port = int(line.split("starting on ")[1])
        status, _, body = fetch("127.0.0.1", port, path="/app/hello/world")
        self.assertEqual(
            (status, body), (200, b"SCRIPT_NAME=/app PATH_INFO=/hello/world\n")
        )
        status, _, body = fetch("127.0.0.1", port)
        self.assertEqual((status, body), (200, b"The rest of the site.\n"))
        self.assertEqual(server.stop(), _STOPPED)
        server.waitFor(r"Server Shut Down\.")
