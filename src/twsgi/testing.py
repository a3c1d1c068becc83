# -*- test-case-name: tests.test_testing -*-
"""
Test your WSGI application (and twsgi itself) the way twsgi tests itself.

Three helpers, from fastest to most isolated:

L{MemoryServer} runs an application through the real twsgi L{Site} and
bridge, with a synchronous thread pool and an in-memory transport, in the
manner of C{treq.testing.StubTreq}.  No socket, no thread, no reactor::

    from twsgi.testing import MemoryServer

    def test_hello(self):
        server = MemoryServer(myapp)
        response = server.request(b"GET", b"/hello")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.body, b"Hello!")
        self.assertEqual(server.records[0].status, 200)

L{startServer} starts a real server on C{127.0.0.1}, port 0, in the reactor
of a trial L{TestCase}, and stops it (gracefully) when the test is cleaned
up::

    from twsgi.testing import startServer

    class AppTests(TestCase):
        @inlineCallbacks
        def test_real(self):
            service = yield startServer(self, myapp)
            url = serverURL(service)   # "http://127.0.0.1:54321"
            ...

L{spawnServer} runs C{python -m twsgi} in a subprocess and returns it with
its real address, for tests that want process isolation or signals::

    server = spawnServer(["--app", "myapp:app"])
    try:
        ...  # talk to server.url
    finally:
        server.stop()          # SIGTERM, then wait (bounded)
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs
from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionAborted, ConnectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import eventFromJSON, formatEvent
from twisted.python.failure import Failure

from twsgi.config.model import ServerConfig
from twsgi.lifecycle.embed import embeddedService
from twsgi.lifecycle.service import TwsgiService
from twsgi.logs.accesslog import AccessRecord
from twsgi.server.site import TwsgiSite
from twsgi.wsgi.bridge import WSGIResource


class SynchronousThreadPool:
    """
    A thread pool that runs work at once, in the calling thread.
    """

    def callInThread(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        f(*args, **kwargs)

    def callInThreadWithCallback(
        self, onResult: Any, f: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> None:
        try:
            result = f(*args, **kwargs)
        except BaseException as e:
            onResult(False, e)
        else:
            onResult(True, result)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


class SynchronousReactor(MemoryReactorClock):
    """
    A L{MemoryReactorClock} (so also a L{task.Clock}) whose
    C{callFromThread} calls at once: with a L{SynchronousThreadPool}, the
    bridge runs start to end in one call.  Being a memory reactor, it also
    takes the C{listenTCP} and C{callWhenRunning} calls of a service built on
    it (for example by L{TwsgiService.makeSite}) without a socket.
    """

    def callFromThread(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        f(*args, **kwargs)


class MemoryTransport(StringTransport):
    """
    A L{StringTransport} that tells its protocol when it is closed or
    aborted, as a real transport would.

    @ivar aborted: C{True} once C{abortConnection} was called.
    """

    aborted = False
    protocol: Any = None

    def loseConnection(self) -> None:
        self.disconnecting = True
        self._lost(ConnectionDone("closed"))

    def abortConnection(self) -> None:
        self.aborted = True
        self.disconnecting = True
        self._lost(ConnectionAborted("aborted"))

    def _lost(self, reason: Exception) -> None:
        if self.connected:
            self.connected = False
            if self.protocol is not None:
                self.protocol.connectionLost(Failure(reason))


@attrs.frozen
class MemoryResponse:
    """
    A response received by L{MemoryServer}.

    @ivar code: the status code.
    @ivar reason: the reason phrase.
    @ivar headers: C{(name, value)} pairs, as sent (names lower-cased).
    @ivar body: the body, de-chunked.
    @ivar raw: the bytes the server wrote.
    @ivar closed: C{True} if the server closed or aborted the connection.
    """

    code: int
    reason: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    raw: bytes
    closed: bool

    def header(self, name: bytes) -> bytes | None:
        """
        The first value of header C{name}, or C{None}.
        """
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None


_STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3})(?: ([^\r\n]*))?\r\n")


def _dechunk(data: bytes) -> tuple[bytes, bytes]:
    """
    Decode a chunked body from the start of C{data}.

    @return: the body and the bytes after it.
    @raise ValueError: if the body is malformed or incomplete.
    """
    body = b""
    while True:
        sizeLine, sep, data = data.partition(b"\r\n")
        if not sep:
            raise ValueError("incomplete chunked body")
        size = int(sizeLine.split(b";")[0], 16)
        if size == 0:
            _, sep, data = data.partition(b"\r\n")
            if not sep:
                raise ValueError("incomplete chunked body")
            return body, data
        if len(data) < size + 2:
            raise ValueError("incomplete chunked body")
        body += data[:size]
        data = data[size + 2 :]


def _takeResponse(raw: bytes, closed: bool) -> tuple[MemoryResponse, bytes]:
    """
    Parse the HTTP/1.x response at the start of C{raw}.

    @return: the response (its C{raw} only its own bytes) and the bytes after
        it.
    @raise ValueError: if C{raw} does not start with a complete response.
    """
    match = _STATUS_LINE.match(raw)
    end = raw.find(b"\r\n\r\n", match.end() - 2) if match is not None else -1
    if match is None or end < 0:
        raise ValueError(f"no complete response in {raw[:200]!r}")
    code = int(match.group(1))
    headers = []
    for line in raw[match.end() : end].split(b"\r\n"):
        if line:
            name, _, value = line.partition(b":")
            headers.append((name.strip().lower(), value.strip()))
    names = dict(headers)
    rest = raw[end + 4 :]
    if code < 200:
        body = b""
    elif names.get(b"transfer-encoding", b"").lower() == b"chunked":
        body, rest = _dechunk(rest)
    elif b"content-length" in names:
        length = int(names[b"content-length"])
        body, rest = rest[:length], rest[length:]
    else:
        body, rest = rest, b""
    own = raw[: len(raw) - len(rest)]
    reason = match.group(2) or b""
    return MemoryResponse(code, reason, tuple(headers), body, own, closed), rest


def parseResponse(raw: bytes, closed: bool = False) -> MemoryResponse:
    """
    Parse the first HTTP/1.x response in C{raw} bytes (its C{raw} is all of
    C{raw}).

    @raise ValueError: if C{raw} holds no complete response.
    """
    response, _ = _takeResponse(raw, closed)
    return attrs.evolve(response, raw=raw)


def parseResponses(raw: bytes, closed: bool = False) -> list[MemoryResponse]:
    """
    Parse every HTTP/1.x response in C{raw} bytes, in order, interim (1xx)
    ones included: for example what a connection from
    L{MemoryServer.connect} received for pipelined requests.  A response
    framed by neither C{Content-Length} nor chunked coding takes the rest of
    the bytes.

    @param closed: the last response's C{closed}.
    @raise ValueError: if the bytes are not a sequence of complete responses.
    """
    responses = []
    while raw:
        response, raw = _takeResponse(raw, False)
        responses.append(response)
    if responses and closed:
        responses[-1] = attrs.evolve(responses[-1], closed=True)
    return responses


class MemoryServer:
    """
    Drive a WSGI application through the real twsgi site and bridge, in
    memory, synchronously.

    @ivar site: the L{TwsgiSite}.
    @ivar resource: the L{WSGIResource} (give your own to mount it elsewhere).
    @ivar reactor: the L{SynchronousReactor} (a L{task.Clock}).
    @ivar records: the L{AccessRecord} of every request (finished, refused,
        or whose connection ended first).
    """

    def __init__(
        self,
        application: Callable[..., Any] | None = None,
        resource: Any = None,
        listener: str = "memory",
        observers: Sequence[Callable[[AccessRecord], Any]] = (),
        exposeTracebacks: bool = False,
        reactor: Any = None,
        site: Any = None,
    ) -> None:
        """
        @param application: the WSGI application, at the root.
        @param resource: or any C{twisted.web} resource tree instead (build
            its L{WSGIResource}s with L{SynchronousThreadPool} and
            C{reactor}).
        @param listener: the listener name in access records.
        @param observers: more access-log observers.
        @param exposeTracebacks: show tracebacks in 500 responses.
        @param reactor: the L{SynchronousReactor} to use.
        @param site: or drive this existing site (for example one made by
            L{TwsgiService.makeSite}); its reactor must call from threads at
            once and its thread pool must be synchronous.
        """
        self.records: list[AccessRecord] = []
        if site is not None:
            self.reactor = site.reactor
            self.resource = site.resource
            self.site = site
            site.observers.append(self.records.append)
            site.observers.extend(observers)
            return
        self.reactor = reactor if reactor is not None else SynchronousReactor()
        if resource is None:
            if application is None:
                raise TypeError("give an application, a resource or a site")
            if not callable(application):
                raise TypeError(
                    f"MemoryServer takes the WSGI application itself (a "
                    f"callable), not {application!r}"
                )
            resource = WSGIResource(
                self.reactor,
                SynchronousThreadPool(),
                application,
                exposeTracebacks=exposeTracebacks,
            )
        self.resource = resource
        self.site = TwsgiSite(
            resource,
            self.reactor,
            listener=listener,
            observers=[self.records.append, *observers],
        )

    def connect(
        self, peer: tuple[str, int] = ("127.0.0.1", 40000)
    ) -> tuple[Any, MemoryTransport]:
        """
        Open one in-memory connection.

        @return: the protocol and its L{MemoryTransport}.
        """
        transport = MemoryTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 8000),
            peerAddress=IPv4Address("TCP", *peer),
        )
        protocol = self.site.buildProtocol(transport.getPeer())
        transport.protocol = protocol
        protocol.makeConnection(transport)
        return protocol, transport

    def request(
        self,
        method: bytes = b"GET",
        target: bytes = b"/",
        headers: Iterable[tuple[bytes, bytes]] = (),
        body: bytes = b"",
        peer: tuple[str, int] = ("127.0.0.1", 40000),
    ) -> MemoryResponse:
        """
        Send one HTTP/1.1 request on a new connection and return the response.

        @raise TypeError: if the method, the target, a header name or value,
            or the body is not C{bytes}.
        @raise ValueError: if the server sent no complete response (it
            says if the server cut the response off).
        """
        headers = list(headers)
        _checkBytes(method=method, target=target, body=body)
        for header in headers:
            if not (
                type(header) is tuple
                and len(header) == 2
                and all(isinstance(part, bytes) for part in header)
            ):
                raise TypeError(
                    f"request() takes headers as (name, value) tuples of "
                    f"bytes, not {header!r}"
                )
        names = {name.lower() for name, _ in headers}
        if b"host" not in names:
            headers.insert(0, (b"Host", b"memory"))
        if body and b"content-length" not in names:
            headers.append((b"Content-Length", b"%d" % len(body)))
        raw = b"%s %s HTTP/1.1\r\n" % (method, target)
        raw += b"".join(b"%s: %s\r\n" % header for header in headers)
        raw += b"\r\n" + body
        protocol, transport = self.connect(peer)
        protocol.dataReceived(raw)
        # What the reactor was asked to do at once (a static file or a large
        # wsgi.file_wrapper is sent a chunk at a time) is done now.
        self.reactor.advance(0)
        # A response cut off (the application raised midway, or sent less
        # than its Content-Length) ends with the connection, incomplete.
        cutOff = "the server cut the response off after its head (its log says why)"
        try:
            response = parseResponse(transport.value(), closed=transport.disconnecting)
        except ValueError as e:
            if transport.disconnecting:
                raise ValueError(f"{cutOff}: {e}") from None
            raise
        length = response.header(b"content-length")
        if (
            transport.disconnecting
            and length is not None
            and method != b"HEAD"
            and response.code not in (204, 304)
            and len(response.body) < int(length)
        ):
            raise ValueError(
                f"{cutOff}: {len(response.body)} of {int(length)} body bytes"
            )
        return response


def _checkBytes(**values: object) -> None:
    """
    Raise a L{TypeError} naming the first of C{values} that is not C{bytes}:
    a request goes on the wire as bytes.
    """
    for name, value in values.items():
        if not isinstance(value, bytes):
            raise TypeError(f"request() takes {name} as bytes, not {value!r}")


def serverURL(service: TwsgiService, index: int = 0) -> str:
    """
    The C{http://host:port} URL of a started service's C{index}th listener.
    """
    address = service.addresses[index][1]
    host = address.host
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{address.port}"


def startServer(
    testCase: Any,
    application: Callable[..., Any],
    reactor: Any = None,
    config: ServerConfig | None = None,
    **keywords: Any,
) -> defer.Deferred[TwsgiService]:
    """
    Start a L{TwsgiService} for C{application} on C{127.0.0.1}, port 0, in
    the (global) reactor of a trial L{TestCase}; stop it gracefully in the
    test's cleanup.

    @param config: the settings (default: L{ServerConfig}'s defaults, but
        without an access log and with a graceful timeout of 5 seconds).
    @param keywords: settings that replace the config's, by their
        L{ServerConfig} names (C{threads=(1, 4)}), and keyword arguments of
        L{TwsgiService} (C{observers}, C{onStart}...).
    @return: a L{Deferred} firing with the started service once it listens.
    """
    if reactor is None:
        from twisted.internet import reactor as installed

        reactor = installed
    if config is None:
        config = ServerConfig(
            endpoint=("tcp:0:interface=127.0.0.1",),
            access_log="none",
            graceful_timeout=5.0,
        )
    service = embeddedService(application, (), reactor, config, keywords)
    service.startService()
    testCase.addCleanup(service.stopService)
    return service.whenListening.addCallback(lambda _: service)


def _readable(line: str) -> str:
    """
    A log line as text: events in Twisted's JSON log format are formatted,
    and twsgi's C{--log-format json} lines read as its text lines do.
    """
    text = line.lstrip("\x1e")
    if not text.startswith("{"):
        return line
    try:
        event = json.loads(text)
    except ValueError:
        return line
    if not isinstance(event, dict):
        return line
    if "log_format" in event:
        return formatEvent(eventFromJSON(text))
    message = event.get("message")
    if not isinstance(message, str):
        return line
    where = f"{event.get('namespace', '-')}#{event.get('level', '-')}"
    return f"{event.get('time', '-')} [{where}] {message}"


_LISTENING = re.compile(r"listening on (?:https?://)?(\S+?):(\d+) \((.*)\)\s*$")


def _listener(line: str) -> tuple[str, tuple[str, int]] | None:
    """
    The endpoint description and address of a C{listening on ...} log line.
    """
    match = _LISTENING.search(line)
    if match is None:
        return None
    return match.group(3), (match.group(1).strip("[]"), int(match.group(2)))


@attrs.define
class ServerProcess:
    """
    A twsgi server running in a subprocess.

    @ivar process: the L{subprocess.Popen}.
    @ivar host: the host of its first listener.
    @ivar port: the real port of its first listener.
    @ivar lines: the lines of its log (standard output and error) so far;
        lines in Twisted's JSON log format are formatted as text.
    @ivar rawLines: the same lines as the process wrote them.
    @ivar addresses: C{(host, port)} of every listener logged so far, in
        log order.
    @ivar endpoints: the latest C{(host, port)} logged for each endpoint
        description (a listener that starts again, after a reload for
        example, replaces its earlier address).
    """

    process: subprocess.Popen[bytes]
    host: str = ""
    port: int = 0
    lines: list[str] = attrs.Factory(list)
    rawLines: list[str] = attrs.Factory(list)
    addresses: list[tuple[str, int]] = attrs.Factory(list)
    endpoints: dict[str, tuple[str, int]] = attrs.Factory(dict)
    _reader: threading.Thread | None = None
    _logged: threading.Condition = attrs.Factory(threading.Condition)
    _ended: bool = False

    def __attrs_post_init__(self) -> None:
        # The log is read from the start, in a thread of its own.
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def output(self) -> str:
        """
        The log so far, as one text.
        """
        return "\n".join(self.lines)

    def _read(self) -> None:
        """
        Read the log until the process closes it (called in a thread of its
        own).
        """
        assert self.process.stdout is not None
        for data in self.process.stdout:
            raw = data.decode("utf-8", "replace").rstrip("\n")
            line = _readable(raw)
            listener = _listener(line)
            with self._logged:
                self.rawLines.append(raw)
                self.lines.append(line)
                if listener is not None:
                    description, address = listener
                    self.addresses.append(address)
                    self.endpoints[description] = address
                    if len(self.addresses) == 1:
                        self.host, self.port = address
                self._logged.notify_all()
        with self._logged:
            self._ended = True
            self._logged.notify_all()

    def _waitUntil(self, done: Callable[[], bool], timeout: float) -> bool:
        """
        Wait (at most C{timeout} seconds) until C{done()} is true or the log
        ends; whether C{done()} is true.
        """
        deadline = time.monotonic() + timeout
        with self._logged:
            while not done():
                remaining = deadline - time.monotonic()
                if self._ended or remaining <= 0:
                    return False
                self._logged.wait(remaining)
            return True

    def waitFor(self, pattern: str, timeout: float = 10.0, start: int = 0) -> str:
        """
        Wait (at most C{timeout} seconds) for a line of the log, from index
        C{start} of L{lines} on, that matches the regular expression
        C{pattern}.  Give C{start=len(server.lines)} to wait for a line
        logged after now.

        @return: the first such line.
        @raise RuntimeError: if none comes in time or the process ends
            first; the message holds the log.
        """
        found: list[str] = []
        seen = start

        def matched() -> bool:
            nonlocal seen
            lines = self.lines
            for line in lines[seen:]:
                if re.search(pattern, line):
                    found.append(line)
                    return True
            seen = max(seen, len(lines))
            return False

        if self._waitUntil(matched, timeout):
            return found[0]
        raise RuntimeError(
            f"no line matching {pattern!r} within {timeout}s:\n{self.output}"
        )

    def signal(self, signum: int = signal.SIGTERM) -> None:
        """
        Send C{signum} to the process.
        """
        self.process.send_signal(signum)

    def wait(self, timeout: float = 10.0) -> int:
        """
        Wait (at most C{timeout} seconds) for the exit status; kill the
        process if it does not end in time.

        @raise subprocess.TimeoutExpired: if it had to be killed.
        """
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
            raise
        finally:
            if self._reader is not None:
                self._reader.join(5)

    def stop(self, timeout: float = 10.0) -> int:
        """
        SIGTERM, then L{wait}.
        """
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
        return self.wait(timeout)


def spawnServer(
    args: Sequence[str],
    timeout: float = 20.0,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    command: Sequence[str] | None = None,
    listeners: int = 1,
) -> ServerProcess:
    """
    Run C{python -m twsgi ARGS} (listening on C{127.0.0.1}, port 0, unless
    C{ARGS} name an C{--endpoint}) and wait until it listens.  It finds
    modules as this process does: the directories of C{sys.path} follow
    those of C{PYTHONPATH} in its environment.

    @param command: run this instead of C{python -m twsgi} (for example
        C{twistd -n -y app.tac}); it must log its C{listening on} line.
    @param listeners: wait until this many listeners are logged (C{0}: do
        not wait).
    @raise RuntimeError: if it exits or does not listen within C{timeout}
        seconds (it is killed then); the message says which (with the exit
        status) and holds its output.
    """
    args = list(args)
    environ = dict(os.environ if env is None else env)
    environ.setdefault("PYTHONUNBUFFERED", "1")
    if command is None:
        command = [sys.executable, "-m", "twsgi"]
        if "--endpoint" not in args:
            args += ["--endpoint", "tcp:0:interface=127.0.0.1"]
        # It imports what this process imports, wherever it runs: trial
        # runs tests in _trial_temp, where python -m twsgi alone would not
        # find the application the tests import.
        environ["PYTHONPATH"] = os.pathsep.join(
            [
                *filter(None, [environ.get("PYTHONPATH")]),
                *(os.path.abspath(p) for p in sys.path),
            ]
        )
    process = subprocess.Popen(
        [*command, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=environ,
        cwd=cwd,
    )
    server = ServerProcess(process)
    if not server._waitUntil(lambda: len(server.addresses) >= listeners, timeout):
        try:
            # A process whose output ended is exiting: wait for its status.
            status: int | None = process.wait(5 if server._ended else 0)
        except subprocess.TimeoutExpired:
            status = None
        if status is None:
            process.kill()
            happened = f"did not listen within {timeout}s"
        else:
            happened = f"exited with status {status} before it listened"
        server.wait(5)
        raise RuntimeError(f"the server {happened}:\n{server.output}")
    return server


__all__ = [
    "MemoryResponse",
    "MemoryServer",
    "MemoryTransport",
    "ServerProcess",
    "SynchronousReactor",
    "SynchronousThreadPool",
    "parseResponse",
    "parseResponses",
    "serverURL",
    "spawnServer",
    "startServer",
]
