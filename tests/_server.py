"""
Run the real twsgi server as a subprocess, for the command-line tests.

The server listens on C{tcp:0:interface=127.0.0.1} unless told otherwise; the
real port is read from its startup log line C{listening on HOST:PORT (...)}.
Every wait is bounded, and the process is stopped by its PID.

Kept small and self-contained: C{twsgi.testing} may replace it.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from twisted.internet import defer, threads

APPS = str(Path(__file__).parent / "apps")
"""
The directory of the test applications; give it with C{--pythonpath}.
"""

LOOPBACK = "tcp:0:interface=127.0.0.1"

_LISTENING = re.compile(r"listening on (\[[^\]]+\]|[^\s:]+):(\d+) \((.*)\)\s*$")


def _script(name: str, fallback: Sequence[str]) -> list[str]:
    """
    The command for one of Twisted's console scripts: the one installed next
    to this Python, or C{fallback}.
    """
    script = Path(sys.executable).parent / name
    return [str(script)] if script.exists() else [sys.executable, *fallback]


RUNNERS: Mapping[str, Sequence[str]] = {
    "twistd": [
        *_script("twistd", ["-c", "from twisted.scripts.twistd import run; run()"]),
        "--pidfile=",
        "-n",
        "twsgi",
    ],
    "twist": [*_script("twist", ["-m", "twisted"]), "--log-format=text", "twsgi"],
    "python -m twsgi": [sys.executable, "-m", "twsgi"],
}
"""
The three ways to run twsgi; each takes the same options after it.
"""


def temporaryDirectory(testCase: Any) -> Path:
    """
    A new empty directory outside the source tree (trial's C{mktemp} is
    relative to the working directory, which under pytest is the checkout),
    removed in C{testCase}'s cleanup.
    """
    path = Path(tempfile.mkdtemp(prefix="twsgi-test-")).resolve()
    testCase.addCleanup(shutil.rmtree, path, True)
    return path


def cleanEnviron(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """
    This process's environment without any C{TWSGI_*} or systemd
    C{LISTEN_*} variable, plus C{extra}.
    """
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TWSGI_", "LISTEN_FD", "LISTEN_PID"))
    }
    environ["PYTHONUNBUFFERED"] = "1"
    environ.update(extra or {})
    return environ


def run(
    args: Sequence[str],
    runner: str = "python -m twsgi",
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 20.0,
    prefix: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """
    Run the server to completion (for a mistake that must end it).

    @raise subprocess.TimeoutExpired: if it does not end within C{timeout}
        seconds (it is killed first).
    """
    return subprocess.run(
        [*prefix, *RUNNERS[runner], *args],
        cwd=cwd,
        env=cleanEnviron(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def fetch(
    host: str,
    port: int,
    method: str = "GET",
    path: str = "/",
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    context: ssl.SSLContext | None = None,
    timeout: float = 10.0,
) -> tuple[int, dict[str, str], bytes]:
    """
    Make one request with L{http.client} (blocking) on a new connection.

    @param body: bytes, or an iterable of bytes to send chunked.
    @param context: if given, speak HTTPS with it.
    @return: the status, the headers (lower-case names) and the body.
    """
    connection: http.client.HTTPConnection
    if context is None:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    else:
        connection = http.client.HTTPSConnection(
            host, port, timeout=timeout, context=context
        )
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        content = response.read()
        return (
            response.status,
            {k.lower(): v for k, v in response.getheaders()},
            content,
        )
    finally:
        connection.close()


class Server:
    """
    A running server process.

    @ivar addresses: C{(host, port, description)} of every listener, from
        the startup log, in log order.
    """

    def __init__(self, process: subprocess.Popen[bytes], logPath: Path) -> None:
        self.process = process
        self.logPath = logPath
        self.addresses: list[tuple[str, int, str]] = []

    def log(self) -> str:
        """
        Everything the server wrote so far (standard output and error).
        """
        return self.logPath.read_text(errors="replace")

    def waitListening(self, count: int, timeout: float) -> None:
        """
        Wait until C{count} listeners are logged.

        @raise AssertionError: if the process ends or the time runs out.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in map(_LISTENING.search, self.log().splitlines()) if m]
            if len(found) >= count:
                self.addresses = [
                    (m.group(1).strip("[]"), int(m.group(2)), m.group(3)) for m in found
                ]
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"server did not start listening:\n{self.log()}")

    @property
    def port(self) -> int:
        """
        The port of the first listener.
        """
        return self.addresses[0][1]

    def request(
        self, method: str = "GET", path: str = "/", index: int = 0, **kwargs: Any
    ) -> tuple[int, dict[str, str], bytes]:
        """
        Make one request to listener C{index}; see L{fetch}.
        """
        host, port, _ = self.addresses[index]
        return fetch(host, port, method, path, **kwargs)

    def stop(self, timeout: float = 10.0) -> int:
        """
        Stop the server with SIGTERM (SIGKILL after C{timeout} seconds).

        @return: its exit status.
        """
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        return self.process.returncode


def start(
    testCase: Any,
    args: Sequence[str],
    runner: str = "python -m twsgi",
    listeners: int = 1,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 20.0,
) -> Server:
    """
    Start a server and wait until it listens; C{testCase} stops it in its
    cleanup.  C{--endpoint} is not added: pass L{LOOPBACK} in C{args}.
    """
    logDir = temporaryDirectory(testCase)
    logPath = logDir / "server.log"
    with open(logPath, "wb") as logFile:
        process = subprocess.Popen(
            [*RUNNERS[runner], *args],
            cwd=cwd or str(logDir),
            env=cleanEnviron(env),
            stdout=logFile,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = Server(process, logPath)
    testCase.addCleanup(server.stop)
    server.waitListening(listeners, timeout)
    return server


class InProcess:
    """
    A L{twsgi.TwsgiService} listening in the test's (real) reactor.

    @ivar service: the service.
    @ivar addresses: C{(description, address)} of every listener.
    """

    def __init__(self, service: Any, addresses: list[tuple[str, Any]]) -> None:
        self.service = service
        self.addresses = addresses

    def request(
        self, method: str = "GET", path: str = "/", index: int = 0, **kwargs: Any
    ) -> defer.Deferred[tuple[int, dict[str, str], bytes]]:
        """
        Make one request to listener C{index} from a thread (see L{fetch}), so
        that the reactor stays free to serve it.
        """
        address = self.addresses[index][1]
        return threads.deferToThread(
            fetch, address.host, address.port, method, path, **kwargs
        )


@defer.inlineCallbacks
def serve(
    testCase: Any,
    application: Callable[..., Any],
    endpoints: Sequence[str] = (LOOPBACK,),
    **kwargs: Any,
) -> Any:
    """
    Start a L{twsgi.TwsgiService} for C{application} in the global reactor;
    C{testCase} stops it in its cleanup and waits until every connection it
    accepted is closed, so the reactor is left clean.

    @return: a L{Deferred} firing with an L{InProcess}.
    """
    from twisted.internet import reactor

    from twsgi import TwsgiService

    service = TwsgiService(application, endpoints, reactor, **kwargs)
    lost: list[defer.Deferred[None]] = []
    makeSite = service.makeSite

    def trackingSite(description: str) -> Any:
        site = makeSite(description)
        buildProtocol = site.buildProtocol

        def build(address: Any) -> Any:
            protocol = buildProtocol(address)
            done: defer.Deferred[None] = defer.Deferred()
            lost.append(done)
            connectionLost = protocol.connectionLost

            def connectionLostAndTell(reason: Any) -> None:
                try:
                    connectionLost(reason)
                finally:
                    done.callback(None)

            protocol.connectionLost = connectionLostAndTell
            return protocol

        site.buildProtocol = build
        return site

    service.makeSite = trackingSite  # type: ignore[method-assign]

    @defer.inlineCallbacks
    def stop() -> Any:
        yield service.stopService()
        yield defer.gatherResults(lost)

    service.startService()
    testCase.addCleanup(stop)
    addresses = yield service.whenListening
    return InProcess(service, addresses)


__all__ = [
    "APPS",
    "LOOPBACK",
    "RUNNERS",
    "InProcess",
    "Server",
    "cleanEnviron",
    "fetch",
    "run",
    "serve",
    "start",
    "temporaryDirectory",
]
