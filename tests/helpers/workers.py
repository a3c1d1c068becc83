"""
Running a supervisor with workers in a child process, and reading a
process's state.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable

from twisted.trial.unittest import SynchronousTestCase

_APP = textwrap.dedent(
    """
    import os, time

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/sleep":
            open("sleeping", "w").close()
            time.sleep(float(environ["QUERY_STRING"] or "0.2"))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"%d" % os.getpid()]
    """
)


_LISTENING = re.compile(rb"listening on https?://127\.0\.0\.1:(\d+)")


_STARTED = re.compile(rb"worker (\d+) started \(pid (\d+)\)")


class SupervisedServer:
    """
    A C{python -m twsgi --workers N} process on 127.0.0.1, port 0.
    """

    def __init__(
        self,
        testCase: SynchronousTestCase,
        *args: str,
        app: str = _APP,
        endpoints: tuple[str, ...] = ("tcp:0:interface=127.0.0.1",),
        wrap: tuple[str, ...] = (),
        passFds: tuple[int, ...] = (),
        newSession: bool = False,
        interpreter: tuple[str, ...] = (),
    ) -> None:
        """
        @param args: more command-line arguments.
        @param app: the source of C{wapp.py}, whose C{app} is served.
        @param endpoints: the C{--endpoint} values; C{{dir}} in them is this
            server's temporary directory.
        @param wrap: a command that runs the server (it must C{exec} it).
        @param passFds: descriptors the server inherits.
        @param newSession: run the server in a process group of its own, as
            a shell runs a command in a terminal.
        @param interpreter: options for the Python interpreter (C{-O}).
        """
        self.directory = tempfile.mkdtemp()
        testCase.addCleanup(shutil.rmtree, self.directory, True)
        with open(os.path.join(self.directory, "wapp.py"), "w") as f:
            f.write(app)
        self.log = open(os.path.join(self.directory, "log"), "w+b")
        testCase.addCleanup(self.log.close)
        listen = [
            arg
            for endpoint in endpoints
            for arg in ("--endpoint", endpoint.format(dir=self.directory))
        ]
        self.process = subprocess.Popen(
            [
                *wrap,
                sys.executable,
                *interpreter,
                "-m",
                "twsgi",
                "--app",
                "wapp:app",
                *listen,
                "--access-log",
                "none",
                *(arg.format(dir=self.directory) for arg in args),
            ],
            cwd=self.directory,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            pass_fds=passFds,
            start_new_session=newSession,
            # What the server makes in the temporary directory (its metrics
            # directory) goes with this test's, even if it is killed.
            env=dict(os.environ, TMPDIR=self.directory),
        )
        testCase.addCleanup(self.kill)
        self.port: int | None = None

    def output(self) -> bytes:
        with open(self.log.name, "rb") as f:
            return f.read()

    def waitFor(self, condition: Callable[[], object], timeout: float = 15.0) -> object:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = condition()
            if result:
                return result
            time.sleep(0.05)
        raise AssertionError(
            f"timed out; server output:\n{self.output().decode(errors='replace')}"
        )

    def start(self, workers: int) -> int:
        """
        Wait until the supervisor listens and C{workers} workers answer.
        """
        match = self.waitFor(lambda: _LISTENING.search(self.output()))
        assert isinstance(match, re.Match)
        self.port = int(match.group(1))
        self.waitFor(lambda: len(self.workerPids()) == workers and self.ready(workers))
        return self.port

    def startRecycling(self, workers: int) -> set[int]:
        """
        Wait until the supervisor listens and a worker answers; the pids of
        the C{workers} workers it started first, from its log.  With a limit
        every worker soon passes (a 2 s lifetime, 1 MB of memory), the
        first replacement starts as soon as a worker is ready, maybe before
        the others are: on a loaded machine there may never again be
        exactly C{workers} workers, for which L{start} would wait in vain.
        """
        match = self.waitFor(lambda: _LISTENING.search(self.output()))
        assert isinstance(match, re.Match)
        self.port = int(match.group(1))
        self.waitFor(lambda: self.ready(1))
        started = dict(_STARTED.findall(self.output()))
        return {int(started[b"%d" % number]) for number in range(1, workers + 1)}

    def waitReplaced(self, before: set[int], workers: int) -> None:
        """
        Wait until C{workers} workers run and none of C{before} is left.
        """
        self.waitFor(
            lambda: (
                len(self.workerPids()) == workers and not (self.workerPids() & before)
            ),
            timeout=40,
        )

    def sleeping(self) -> bool:
        """
        Whether a request to C{/sleep} reached the default application (it
        makes the file C{sleeping} before it sleeps).
        """
        return os.path.exists(os.path.join(self.directory, "sleeping"))

    def ready(self, workers: int) -> bool:
        return self.output().count(b"twsgi serving wapp:app") >= workers

    def workerPids(self) -> set[int]:
        try:
            with open(
                f"/proc/{self.process.pid}/task/{self.process.pid}/children"
            ) as f:
                return {int(p) for p in f.read().split()}
        except OSError:
            return set()

    def listeningPorts(self) -> list[int]:
        """
        The ports the supervisor listens on, in the order it logged them
        (the application's, then the admin ones).
        """
        return [int(port) for port in _LISTENING.findall(self.output())]

    def get(
        self, path: str = "/", timeout: float = 10.0, port: int | None = None
    ) -> tuple[int, bytes]:
        port = port or self.port
        assert port is not None
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            connection.request("GET", path, headers={"Connection": "close"})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def kill(self) -> None:
        """
        Stop the server: SIGTERM, so that the supervisor cleans up after
        itself (its metrics directory), then SIGKILL to it and its workers
        if it is not gone within a few seconds.
        """
        pids = self.workerPids()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def processState(pid: int) -> str:
    """
    The state letter of process C{pid} (C{T} if it is stopped), or C{""} if
    it is gone.
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""
