"""
Helpers of the command-line and integration tests, over L{twsgi.testing}:
the three ways to run twsgi (C{twistd -n}, C{twist}, C{python -m twsgi}) as
subprocesses listening on 127.0.0.1 port 0 (in a temporary directory, or in
the checkout for C{tests.*} applications), blocking HTTP and raw-bytes
clients for real sockets, and free ports and a bounded stop for the other
programs a test runs (HAProxy, nginx).  Every wait is bounded; processes are
stopped by their PID.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from twisted.internet import defer, threads
from twisted.trial.unittest import SkipTest

from twsgi.testing import ServerProcess, spawnServer, startServer

ROOT = str(Path(__file__).resolve().parent.parent.parent)
"""
The checkout: a server started with C{checkout=True} runs there, with it on
its C{PYTHONPATH}, so that C{tests.*} applications import.
"""

APPS = str(Path(__file__).parent.parent / "apps")
"""
The directory of the test applications; give it with C{--pythonpath}.
"""

FRAMEWORKS = str(Path(__file__).parent.parent / "apps" / "frameworks")
"""
The directory of the real-framework applications (Flask, Django, Falcon);
give it with C{--pythonpath}.
"""

LOOPBACK = "tcp:0:interface=127.0.0.1"


def _script(name: str, fallback: Sequence[str]) -> list[str]:
    """
    The command for one of Twisted's console scripts: the one installed next
    to this Python, or C{fallback}.
    """
    script = Path(sys.executable).parent / name
    return [str(script)] if script.exists() else [sys.executable, *fallback]


TWISTD = _script("twistd", ["-c", "from twisted.scripts.twistd import run; run()"])

RUNNERS: Mapping[str, Sequence[str]] = {
    "twistd": [*TWISTD, "--pidfile=", "-n", "twsgi"],
    "twist": [*_script("twist", ["-m", "twisted"]), "twsgi"],
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


def request(
    server: ServerProcess,
    method: str = "GET",
    path: str = "/",
    index: int = 0,
    **kwargs: Any,
) -> tuple[int, dict[str, str], bytes]:
    """
    Make one request to listener C{index} of a server process; see L{fetch}.
    """
    host, port = server.addresses[index]
    return fetch(host, port, method, path, **kwargs)


def spawn(
    args: Sequence[str],
    runner: str = "python -m twsgi",
    listeners: int = 1,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 20.0,
    command: Sequence[str] | None = None,
    checkout: bool = False,
) -> ServerProcess:
    """
    Start a server with L{twsgi.testing.spawnServer} under C{runner} (or
    C{command}) in L{cleanEnviron}, and wait until C{listeners} listeners are
    logged.  C{--endpoint} is not added: pass L{LOOPBACK} in C{args}.

    @param checkout: run in L{ROOT}, with it on C{PYTHONPATH}.
    """
    if checkout:
        cwd = ROOT
        env = {"PYTHONPATH": ROOT, **(env or {})}
    return spawnServer(
        args,
        timeout=timeout,
        env=cleanEnviron(env),
        cwd=cwd,
        command=command or RUNNERS[runner],
        listeners=listeners,
    )


def start(
    testCase: Any, args: Sequence[str], cwd: str | None = None, **kwargs: Any
) -> ServerProcess:
    """
    L{spawn} a server (by default in a new temporary directory) that
    C{testCase} stops in its cleanup.
    """
    if cwd is None and not kwargs.get("checkout"):
        cwd = str(temporaryDirectory(testCase))
    server = spawn(args, cwd=cwd, **kwargs)
    testCase.addCleanup(server.stop)
    return server


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


def freePort() -> int:
    """
    A TCP port on 127.0.0.1 that nothing listens on now.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def heldPort(testCase: Any) -> tuple[int, int]:
    """
    A TCP port on 127.0.0.1 held by a listening socket of this process until
    C{testCase} ends, and the socket's file descriptor, inheritable: for a
    program that takes a listening socket (HAProxy's C{bind fd@N}, with
    C{pass_fds}).  Unlike L{freePort}'s, no other process can take the port
    meanwhile.  That matters for HAProxy, which binds with C{SO_REUSEPORT}:
    two of them given the same port (the two test runs of C{scripts/test}
    run side by side) would both listen on it and share its connections.
    """
    s = socket.socket()
    testCase.addCleanup(s.close)
    s.bind(("127.0.0.1", 0))
    s.listen(128)
    s.set_inheritable(True)
    return int(s.getsockname()[1]), s.fileno()


def listenBacklog(where: int | str) -> int:
    """
    The listen backlog the kernel reports for the socket listening on TCP
    port C{where}, or on the UNIX socket path C{where}: C{ss}'s Send-Q
    column of a listening socket.

    @raise SkipTest: without C{ss} (iproute2).
    """
    if shutil.which("ss") is None:
        raise SkipTest("ss (iproute2) is needed to read a listen backlog")
    if isinstance(where, int):
        command = ["ss", "-ltnH", f"sport = :{where}"]
    else:
        command = ["ss", "-lxH", "src", where]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    lines = output.splitlines()
    assert len(lines) == 1, (command, output)
    # [Netid] State Recv-Q Send-Q ...: the Netid column is there for UNIX
    # sockets only.
    fields = lines[0].split()
    return int(fields[fields.index("LISTEN") + 2])


def expectedBacklog() -> int:
    """
    The backlog a twsgi listener should report: its default, as the
    kernel caps it.
    """
    from twsgi.server.endpoints import DEFAULT_BACKLOG

    with open("/proc/sys/net/core/somaxconn") as f:
        return min(DEFAULT_BACKLOG, int(f.read()))


def raw(port: int, request: bytes, timeout: float = 10.0) -> bytes:
    """
    Send raw bytes on a new connection to C{127.0.0.1}; what comes back until
    the server closes it.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def logLines(path: str, count: int, timeout: float = 10.0) -> list[str]:
    """
    The lines of the log file at C{path}, once it has at least C{count}
    whole ones (bounded by C{timeout}): a server writes a request's access
    record once the response is sent, which its client may see first.

    @raise AssertionError: if fewer lines came in time.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(path) as f:
                text = f.read()
        except FileNotFoundError:
            text = ""
        lines = text.splitlines()
        if not text.endswith("\n"):
            lines = lines[:-1]
        if len(lines) >= count:
            return lines
        if time.monotonic() > deadline:
            raise AssertionError(f"{path}: {len(lines)} lines, not {count}")
        time.sleep(0.01)


class InProcess:
    """
    A L{twsgi.TwsgiService} listening in the test's (real) reactor.

    @ivar service: the service.
    """

    def __init__(self, service: Any) -> None:
        self.service = service

    @property
    def addresses(self) -> list[tuple[str, Any]]:
        """
        C{(description, address)} of every listener.
        """
        return self.service.addresses  # type: ignore[no-any-return]

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


def serve(
    testCase: Any,
    application: Callable[..., Any],
    endpoints: Sequence[str] = (LOOPBACK,),
    **kwargs: Any,
) -> defer.Deferred[InProcess]:
    """
    Start a L{twsgi.TwsgiService} for C{application} in the global reactor
    with L{twsgi.testing.startServer}; C{testCase} stops it in its cleanup.

    @return: a L{Deferred} firing with an L{InProcess}.
    """
    started = startServer(testCase, application, endpoint=tuple(endpoints), **kwargs)
    return started.addCallback(InProcess)


__all__ = [
    "APPS",
    "expectedBacklog",
    "listenBacklog",
    "LOOPBACK",
    "ROOT",
    "RUNNERS",
    "TWISTD",
    "InProcess",
    "cleanEnviron",
    "fetch",
    "freePort",
    "raw",
    "request",
    "run",
    "serve",
    "spawn",
    "start",
    "stopProcess",
    "temporaryDirectory",
]
