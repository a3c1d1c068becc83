"""
Whole-process tests of the logs: C{--access-log-format}, C{--log-format json}
and reopening on C{SIGUSR1}, through C{python -m twsgi} and real sockets.
"""

from __future__ import annotations

import json
import os
import signal

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.logs import makeWarnings
from tests.helpers.server import LOOPBACK, fetch, logLines, raw, start
from twsgi.config.resolve import inertSettings, resolveSources
from twsgi.testing import ServerProcess


class LoggingProcessTests(SynchronousTestCase):
    """
    Tests of a running server's logs.
    """

    def startLogging(self, *args: str) -> tuple[ServerProcess, str]:
        """
        Start C{tests.apps.opsapp:app} with its access log at a new path, and
        C{args}.

        @return: the server and the access log's path.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        path = os.path.join(directory, "access.log")
        args = ("--app", "tests.apps.opsapp:app", "--endpoint", LOOPBACK, *args)
        return start(self, [*args, "--access-log", path], checkout=True), path

    def test_jsonLogsAndReopen(self) -> None:
        """
        The server log is JSON lines; the access log is JSON lines with the
        request's text as the client sent it in UTF-8 (a byte that is not
        UTF-8 as C{\\xNN}); after the file is moved away, SIGUSR1 makes
        the server write to a new file at the same path.
        """
        server, path = self.startLogging(
            "--access-log-format", "json", "--log-format", "json", "--threads", "1:2"
        )
        port = server.port
        response = raw(
            port,
            b'GET /q"x?a=%22\\ HTTP/1.1\r\nHost: x\r\n'
            b'User-Agent: ua"\xc3\xbc\x85\xff\r\nConnection: close\r\n\r\n',
        )
        self.assertTrue(response.startswith(b"HTTP/1.1 200 "), response)
        fetch("127.0.0.1", port, "POST", "/echo", body=b"12345")
        # Each record is written once its response is sent, which the client
        # may see first: moved away before that, it would be in the new file.
        logLines(path, 2)
        os.rename(path, path + ".1")
        server.signal(signal.SIGUSR1)
        server.waitFor("reopened 1 log file")
        fetch("127.0.0.1", port, path="/after")
        with open(path + ".1") as f:
            first = [json.loads(line) for line in f]
        second = [json.loads(line) for line in logLines(path, 1)]
        self.assertEqual([r["target"] for r in first], ['/q"x?a=%22\\', "/echo"])
        self.assertEqual(first[0]["user_agent"], 'ua"\u00fc\\x85\\xff')
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

    def test_jsonWithWorkers(self) -> None:
        """
        With C{--workers 2}, the supervisor's lines are JSON too, like its
        workers'.
        """
        server, path = self.startLogging("--workers", "2", "--log-format", "json")
        fetch("127.0.0.1", server.port, path="/")
        server.stop()
        serverLines = [line for line in server.rawLines if line.strip()]
        self.assertTrue(any("supervising 2 workers" in line for line in serverLines))
        for line in serverLines:
            self.assertIn("message", json.loads(line))

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


class UnknownVariableTests(SynchronousTestCase):
    """
    A C{TWSGI_*} variable that is no setting (a typo) is not silently
    ignored.
    """

    def test_warned(self) -> None:
        """
        One warning names each unknown variable, with the setting it probably
        meant; known variables and the supervisor's own ones are not named.
        """
        self.assertEqual(
            makeWarnings(
                self,
                environ={
                    "TWSGI_THREDS": "4",
                    "TWSGI_NOPE": "1",
                    "TWSGI_THREADS": "2:4",
                    "TWSGI_WORKER_SETTINGS": "{}",
                },
            ),
            [
                "ignoring $TWSGI_NOPE: no such setting",
                "ignoring $TWSGI_THREDS: no such setting (did you mean "
                "$TWSGI_THREADS?)",
            ],
        )


class InertSettingTests(SynchronousTestCase):
    """
    A setting given a value that nothing uses says so, naming its source.
    """

    def test_rotateWithoutFile(self) -> None:
        """
        C{--access-log-rotate} with the access log on standard output (the
        default) or off is named.
        """
        self.assertEqual(
            makeWarnings(self, "--access-log", "-", "--access-log-rotate", "10M"),
            [
                "--access-log-rotate (from the command line) has no effect: the "
                "access log goes to standard output, not to a file "
                "(--access-log PATH)"
            ],
        )
        self.assertEqual(
            makeWarnings(
                self,
                "--access-log",
                "none",
                environ={"TWSGI_ACCESS_LOG_ROTATE": "daily"},
            ),
            [
                "--access-log-rotate (from $TWSGI_ACCESS_LOG_ROTATE) has no "
                "effect: the access log is off (--access-log none)"
            ],
        )

    def test_readyQueueLimitWithoutHealth(self) -> None:
        """
        C{--ready-queue-limit} without any listener answering the health
        paths is named; with one, nothing is.
        """
        self.assertEqual(
            makeWarnings(self, "--ready-queue-limit", "5"),
            [
                "--ready-queue-limit (from the command line) has no effect: no "
                "listener answers the health paths (add --health-endpoint, "
                "--metrics-endpoint or --health-on-app)"
            ],
        )
        self.assertEqual(
            makeWarnings(self, "--ready-queue-limit", "5", "--health-on-app"), []
        )
        self.assertEqual(
            makeWarnings(self, "--ready-queue-limit", "none", "--health-on-app"), []
        )
        self.assertEqual(makeWarnings(self), [])

    def test_readyQueueLimitAboveMaxPending(self) -> None:
        """
        A C{--ready-queue-limit} of C{--max-pending} or more is named: the
        backlog never passes it, as requests are refused first.  Below it,
        or with C{--max-pending 0} (no bound), nothing is.
        """
        self.assertEqual(
            makeWarnings(
                self,
                "--health-on-app",
                "--ready-queue-limit",
                "8",
                "--max-pending",
                "8",
            ),
            [
                "--ready-queue-limit (from the command line) 8 has no effect: "
                "--max-pending (from the command line) 8 refuses requests "
                "before more than 8 wait (leave it out, and readiness reports "
                "503 while requests are refused)"
            ],
        )
        for limit, maxPending in [("7", "8"), ("8", "0")]:
            self.assertEqual(
                makeWarnings(
                    self,
                    "--health-on-app",
                    "--ready-queue-limit",
                    limit,
                    "--max-pending",
                    maxPending,
                ),
                [],
            )

    def test_missingPythonpath(self) -> None:
        """
        A C{--pythonpath} entry that is no directory (read from C{--chdir}
        when relative) is named with the directory it stands for.
        """
        here = os.getcwd()
        config, sources = resolveSources(
            {"pythonpath": ["no-such-dir", here], "chdir": "/"}, {}
        )
        self.assertEqual(
            inertSettings(config, sources),
            [
                "--pythonpath (from the command line) 'no-such-dir' has no "
                "effect: '/no-such-dir' is not a directory"
            ],
        )

    def test_recyclingWithoutWorkers(self) -> None:
        """
        A setting that replaces workers (C{--max-requests} and the others),
        given without C{--workers}, is named; with C{--workers} given at
        all, even as 1, nothing is.
        """
        self.assertEqual(
            makeWarnings(
                self,
                "--max-requests",
                "1000",
                "--worker-lifetime",
                "3600",
                environ={
                    "TWSGI_MAX_REQUESTS_JITTER": "50",
                    "TWSGI_MAX_WORKER_MEMORY": "512",
                },
            ),
            [
                f"{flag} has no effect: it replaces worker processes, and "
                "without --workers one process serves by itself (--workers 1 "
                "runs one worker under a supervisor)"
                for flag in [
                    "--max-requests (from the command line)",
                    "--max-requests-jitter (from $TWSGI_MAX_REQUESTS_JITTER)",
                    "--max-worker-memory (from $TWSGI_MAX_WORKER_MEMORY)",
                    "--worker-lifetime (from the command line)",
                ]
            ],
        )
        for given in [{"workers": "1"}, {"workers": "2"}]:
            config, sources = resolveSources({**given, "max_requests": "1000"}, {})
            self.assertEqual(inertSettings(config, sources), [])

    def test_recycleAction(self) -> None:
        """
        C{--request-timeout-action recycle} is named without
        C{--request-timeout}, and without C{--workers}: stuck requests are
        then only logged.
        """
        self.assertEqual(
            makeWarnings(self, "--request-timeout-action", "recycle"),
            [
                "--request-timeout-action (from the command line) has no "
                "effect: no --request-timeout is set"
            ],
        )
        self.assertEqual(
            makeWarnings(
                self, "--request-timeout-action", "recycle", "--request-timeout", "5"
            ),
            [
                "--request-timeout-action (from the command line) has no "
                "effect: recycle needs a supervisor (--workers N, 1 or more); "
                "stuck requests are only logged"
            ],
        )


class LogFormatElsewhereTests(SynchronousTestCase):
    """
    C{--log-format json} is applied by C{twsgi}, C{python -m twsgi} and
    C{twist}; under C{twistd}, which set up its log already, it says so.
    """

    def test_twistd(self) -> None:
        """
        Under C{twistd}, one warning says how to get JSON lines there.
        """
        self.assertEqual(
            makeWarnings(self, "--log-format", "json", main=False),
            [
                "--log-format json cannot be applied under twistd, which opened "
                "its log before twsgi read its settings: pass twistd --logger "
                "twsgi.logs.serverlog.jsonLogObserver"
            ],
        )

    def test_main(self) -> None:
        """
        Under C{twsgi} and C{python -m twsgi}, no warning.
        """
        self.assertEqual(makeWarnings(self, "--log-format", "json"), [])

    def test_twistdLogger(self) -> None:
        """
        Under C{twistd --logger twsgi.logs.serverlog.jsonLogObserver}, as
        the warning advises, the log is JSON lines already: no warning.
        Another logger still gets it.
        """
        self.assertEqual(
            makeWarnings(
                self,
                "--log-format",
                "json",
                twistd=["-n", "--logger", "twsgi.logs.serverlog.jsonLogObserver"],
            ),
            [],
        )
        self.assertEqual(
            len(
                makeWarnings(
                    self,
                    "--log-format",
                    "json",
                    twistd=["-n", "--logger", "twisted.logger.textFileLogObserver"],
                )
            ),
            1,
        )
