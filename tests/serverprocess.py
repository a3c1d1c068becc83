"""
Run C{python -m twsgi} as a child process on port 0 and learn its ports from
its log, for the tests that need a whole server process.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Any

_LISTENING = re.compile(r"listening on (\S+?):(\d+) \(([^)]*)\)")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ServerProcess:
    """
    A C{python -m twsgi} child process.

    @ivar ports: endpoint description to listening port, once started.
    @ivar lines: every line of its output so far.
    """

    def __init__(
        self,
        args: list[str],
        env: dict[str, str] | None = None,
        command: list[str] | None = None,
    ) -> None:
        """
        @param args: the arguments after the command.
        @param env: variables added to this process's environment.
        @param command: what to run (default: C{python -m twsgi}).
        """
        self.args = args
        self.command = command or [sys.executable, "-m", "twsgi"]
        self.env = dict(os.environ, PYTHONPATH=ROOT, **(env or {}))
        self.ports: dict[str, int] = {}
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.process: subprocess.Popen[str] | None = None
        self.ended = False

    def start(self, listeners: int = 1, timeout: float = 30.0) -> ServerProcess:
        """
        Start the process and wait until C{listeners} endpoints listen.
        """
        self.process = subprocess.Popen(
            [*self.command, *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
            cwd=ROOT,
        )
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + timeout
        while len(self.ports) < listeners:
            line = self.nextLine(deadline - time.monotonic())
            if line is None:
                raise AssertionError("twsgi exited early:\n" + "".join(self.lines))
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def nextLine(self, timeout: float, strict: bool = True) -> str | None:
        """
        The next line of output, or C{None} at its end.

        @param strict: if false, return C{""} after C{timeout} seconds
            without a line.
        @raise AssertionError: after C{timeout} seconds without one, if
            C{strict}.
        """
        if self.ended:
            return None
        try:
            line = self._queue.get(timeout=max(0.0, timeout))
        except queue.Empty:
            if not strict:
                return ""
            raise AssertionError("no output from twsgi:\n" + "".join(self.lines))
        if line is None:
            self.ended = True
        else:
            self.lines.append(line)
            match = _LISTENING.search(line)
            if match is not None:
                self.ports[match.group(3)] = int(match.group(2))
        return line

    def waitFor(self, pattern: str, timeout: float = 10.0) -> str:
        """
        Read output until a line matches C{pattern}.
        """
        deadline = time.monotonic() + timeout
        for line in self.lines:
            if re.search(pattern, line):
                return line
        while True:
            line = self.nextLine(deadline - time.monotonic())
            if line is None:
                raise AssertionError(f"{pattern!r} never came:\n" + "".join(self.lines))
            if re.search(pattern, line):
                return line

    def port(self, description: str | None = None) -> int:
        """
        The port of the endpoint C{description}, or of the only one.
        """
        if description is None:
            (port,) = self.ports.values()
            return port
        return self.ports[description]

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def stop(self, timeout: float = 15.0) -> int:
        """
        SIGTERM, then SIGKILL after C{timeout}; the exit status.
        """
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        while self.nextLine(5) is not None:
            pass
        return self.process.returncode


def get(
    port: int,
    path: str,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
    data: bytes | None = None,
    host: str = "127.0.0.1",
) -> tuple[int, dict[str, str], bytes]:
    """
    One HTTP request; the status, headers and body (also for 4xx and 5xx).
    """
    request = urllib.request.Request(
        f"http://{host}:{port}{path}", headers=headers or {}, data=data
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def stopProcess(
    process: subprocess.Popen[Any], signum: int, timeout: float = 10
) -> None:
    """
    Stop a child process with C{signum}, or kill it after C{timeout}.
    """
    if process.poll() is None:
        process.send_signal(signum)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def raw(port: int, request: bytes, timeout: float = 10.0) -> bytes:
    """
    Send raw bytes on a new connection; what comes back until the server
    closes it.
    """
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


__all__ = ["ServerProcess", "get", "raw", "stopProcess"]
