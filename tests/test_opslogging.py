"""
Whole-process tests of the logs: C{--access-log-format}, C{--log-format json}
and reopening on C{SIGUSR1}, through C{python -m twsgi} and real sockets.
"""

from __future__ import annotations

import json
import os
import signal

from twisted.trial.unittest import SynchronousTestCase

from twsgi.testing import ServerProcess

from ._server import LOOPBACK, fetch, raw, start


class LoggingProcessTests(SynchronousTestCase):
    """
    Tests of a running server's logs.
    """

    def startLogging(self, *args: str) -> tuple[ServerProcess, str]:
        """
        Start C{tests.opsapp:app} with its access log at a new path, and
        C{args}.

        @return: the server and the access log's path.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        path = os.path.join(directory, "access.log")
        args = ("--app", "tests.opsapp:app", "--endpoint", LOOPBACK, *args)
        return start(self, [*args, "--access-log", path], checkout=True), path

    def test_jsonLogsAndReopen(self) -> None:
        """
        The server log is JSON lines; the access log is JSON lines with the
        request's text intact; after the file is moved away, SIGUSR1 makes
        the server write to a new file at the same path.
        """
        server, path = self.startLogging(
            "--access-log-format", "json", "--log-format", "json", "--threads", "1:2"
        )
        port = server.port
        response = raw(
            port,
            b'GET /q"x?a=%22\\ HTTP/1.1\r\nHost: x\r\n'
            b'User-Agent: ua"\x85\xff\r\nConnection: close\r\n\r\n',
        )
        self.assertTrue(response.startswith(b"HTTP/1.1 200 "), response)
        fetch("127.0.0.1", port, "POST", "/echo", body=b"12345")
        os.rename(path, path + ".1")
        server.signal(signal.SIGUSR1)
        server.waitFor("reopened 1 log file")
        fetch("127.0.0.1", port, path="/after")
        with open(path + ".1") as f:
            first = [json.loads(line) for line in f]
        with open(path) as f:
            second = [json.loads(line) for line in f]
        self.assertEqual([r["target"] for r in first], ['/q"x?a=%22\\', "/echo"])
        self.assertEqual(first[0]["user_agent"], 'ua"\x85\xff')
        self.assertEqual(first[1]["bytes_received"], 5)
        self.assertEqual(first[1]["method"], "POST")
        self.assertEqual([r["target"] for r in second], ["/after"])
        self.assertEqual(second[0]["remote_addr"], "127.0.0.1")
        server.stop()
        serverLines = [line for line in server.rawLines if line.strip()]
        self.assertTrue(serverLines)
        for line in serverLines:
            fields = json.loads(line)
            self.assertIn("message", fields)

    def test_template(self) -> None:
        """
        A template renders request and response headers; text logs stay
        text.
        """
        server, path = self.startLogging(
            "--access-log-format",
            '%(h)s "%(r)s" %(s)s %(b)s %({x-request-id}i)s %({x-app}o)s %(rid)s',
        )
        fetch("127.0.0.1", server.port, path="/t?x=1", headers={"X-Request-ID": "rq-1"})
        server.stop()
        with open(path) as f:
            lines = f.read().splitlines()
        self.assertEqual(
            lines, ['127.0.0.1 "GET /t?x=1 HTTP/1.1" 200 9 rq-1 opsapp rq-1']
        )
        self.assertTrue(any("[twsgi#info]" in line for line in server.lines))
