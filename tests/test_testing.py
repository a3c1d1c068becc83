"""
Tests for L{twsgi.testing}, the public helpers for testing applications.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.server import cleanEnviron, fetch
from twsgi import ServerConfig, TwsgiService
from twsgi.server.routes import Routes, staticMounts
from twsgi.testing import (
    MemoryServer,
    SynchronousReactor,
    SynchronousThreadPool,
    _listener,
    _readable,
    parseResponse,
    parseResponses,
    spawnServer,
)


def streaming(environ: dict[str, Any], start_response: Any) -> Any:
    """
    A streamed body without a Content-Length.
    """
    start_response("201 Created", [("X-Test", "yes")])
    yield b"one,"
    yield b"two"


class MemoryServerTests(SynchronousTestCase):
    def test_streamedBodyChunked(self) -> None:
        """
        A streamed response arrives through the real bridge, chunked, and is
        de-chunked in L{MemoryResponse.body}.
        """
        server = MemoryServer(streaming)
        response = server.request(b"GET", b"/")
        self.assertEqual((response.code, response.reason), (201, b"Created"))
        self.assertEqual(response.header(b"X-TEST"), b"yes")
        self.assertEqual(response.header(b"transfer-encoding"), b"chunked")
        self.assertEqual(response.body, b"one,two")
        self.assertFalse(response.closed)
        self.assertEqual(server.records[0].status, 201)

    def test_postBodyAndClose(self) -> None:
        """
        A request body reaches C{wsgi.input}; C{Connection: close} closes.
        """

        def echo(environ: Any, start_response: Any) -> list[bytes]:
            start_response("200 OK", [])
            return [environ["wsgi.input"].read()]

        server = MemoryServer(echo)
        response = server.request(
            b"POST", b"/", headers=[(b"Connection", b"close")], body=b"payload"
        )
        self.assertEqual(response.body, b"payload")
        self.assertTrue(response.closed)
        self.assertEqual(response.header(b"connection"), b"close")

    def test_applicationError(self) -> None:
        """
        An application that raises gets a 500, logged once.
        """

        def broken(environ: Any, start_response: Any) -> Any:
            raise ValueError("bug")

        response = MemoryServer(broken).request()
        self.assertEqual(response.code, 500)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_cutOffMidResponse(self) -> None:
        """
        A response that the server cut off after its head (the application
        raised midway, or sent less than its C{Content-Length}) makes
        C{request()} raise a L{ValueError} that says the server cut the
        response off.
        """

        def midway(environ: Any, start_response: Any) -> Any:
            start_response("200 OK", [])
            yield b"one"
            raise RuntimeError("midway")

        def short(environ: Any, start_response: Any) -> Any:
            start_response("200 OK", [("Content-Length", "10")])
            return iter([b"abc"])

        for app in (midway, short):
            error = self.assertRaises(ValueError, MemoryServer(app).request)
            self.assertTrue(
                str(error).startswith(
                    "the server cut the response off after its head "
                    "(its log says why): "
                ),
                str(error),
            )
        self.flushLoggedErrors(RuntimeError)

    def test_needsSomethingToServe(self) -> None:
        """
        L{MemoryServer} without an application, resource or site is an error.
        """
        self.assertRaises(TypeError, MemoryServer)

    def test_wrongUse(self) -> None:
        """
        An application that is not callable (its import string, say), or a
        request whose parts are text rather than bytes (or whose headers are
        a dict), is a L{TypeError} that says what L{MemoryServer} takes.
        """
        error = self.assertRaises(TypeError, MemoryServer, "myproject.wsgi:app")
        self.assertEqual(
            str(error),
            "MemoryServer takes the WSGI application itself (a callable), "
            "not 'myproject.wsgi:app'",
        )
        server = MemoryServer(streaming)
        for keywords, message in [
            ({"method": "GET"}, "request() takes method as bytes, not 'GET'"),
            ({"target": "/a"}, "request() takes target as bytes, not '/a'"),
            ({"body": "text"}, "request() takes body as bytes, not 'text'"),
            (
                {"headers": {b"X-A": b"1"}},
                "request() takes headers as (name, value) tuples of bytes, not b'X-A'",
            ),
            (
                {"headers": [("X-A", "1")]},
                "request() takes headers as (name, value) tuples of bytes, "
                "not ('X-A', '1')",
            ),
        ]:
            error = self.assertRaises(TypeError, server.request, **keywords)
            self.assertEqual(str(error), message)
        self.assertEqual(server.records, [])


_CONFIG = ServerConfig(endpoint=("tcp:8123",), access_log="none")


class SynchronousReactorTests(SynchronousTestCase):
    def test_serviceListensInMemory(self) -> None:
        """
        A L{TwsgiService} built on a L{SynchronousReactor} listens in memory,
        and the site it makes serves through L{MemoryServer}.
        """
        reactor = SynchronousReactor()
        service = TwsgiService(_CONFIG, streaming, reactor)
        service.threadpool = service.resource.threadpool = SynchronousThreadPool()
        service.startService()
        self.addCleanup(service.stopService)
        self.assertEqual([port for port, *_ in reactor.tcpServers], [8123])
        self.assertEqual(
            MemoryServer(site=service.makeSite("tcp:8123")).request().body, b"one,two"
        )


class ChunkedFileTests(SynchronousTestCase):
    """
    Responses sent a chunk at a time from the I/O thread (pull producers)
    are sent whole in memory, driven by the L{SynchronousReactor} rather than
    by the global reactor.
    """

    def setUp(self) -> None:
        self.directory = self.mktemp()
        os.mkdir(self.directory)
        self.content = os.urandom(300_000)
        self.path = os.path.join(self.directory, "blob.bin")
        with open(self.path, "wb") as f:
            f.write(self.content)

    def test_fileWrapper(self) -> None:
        """
        A C{wsgi.file_wrapper} over a real file larger than what the bridge
        sends in one write (as Flask's C{send_file} makes) arrives whole.
        """

        def send(environ: Any, start_response: Any) -> Any:
            start_response("200 OK", [("Content-Length", str(len(self.content)))])
            return environ["wsgi.file_wrapper"](open(self.path, "rb"))

        server = MemoryServer(send)
        response = server.request()
        self.assertEqual(response.code, 200)
        self.assertEqual(response.body, self.content)
        self.assertEqual(server.records[0].bytesSent, len(self.content))

    def test_staticMount(self) -> None:
        """
        A C{--static} mount of the service's site serves a file in memory.
        """
        reactor = SynchronousReactor()
        service = TwsgiService(_CONFIG, streaming, reactor)
        service.threadpool = service.resource.threadpool = SynchronousThreadPool()
        service.routes = Routes(mounts=staticMounts([("/static", self.directory)]))
        service.startService()
        self.addCleanup(service.stopService)
        server = MemoryServer(site=service.makeSite("tcp:8123"))
        response = server.request(b"GET", b"/static/blob.bin")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.body, self.content)
        self.assertEqual(server.request().body, b"one,two")


class ParseResponseTests(SynchronousTestCase):
    def test_incomplete(self) -> None:
        """
        Bytes without a complete head are refused with L{ValueError}.
        """
        self.assertRaises(ValueError, parseResponse, b"HTTP/1.1 200 OK\r\n")

    def test_contentLength(self) -> None:
        """
        The body is cut at C{Content-Length}.
        """
        response = parseResponse(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nabEXTRA"
        )
        self.assertEqual((response.code, response.body), (404, b"ab"))

    def test_severalResponses(self) -> None:
        """
        L{parseResponses} splits pipelined responses: an interim one, a
        chunked one and one cut at its C{Content-Length}; the last is marked
        closed if the connection was.
        """
        data = (
            b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\none\r\n3;x=1\r\ntwo\r\n0\r\n\r\n"
            b"HTTP/1.0 404\r\nContent-Length: 2\r\n\r\nno"
        )
        responses = parseResponses(data, closed=True)
        self.assertEqual([r.code for r in responses], [100, 200, 404])
        self.assertEqual([r.body for r in responses], [b"", b"onetwo", b"no"])
        self.assertEqual([r.closed for r in responses], [False, False, True])
        self.assertEqual(b"".join(r.raw for r in responses), data)
        self.assertEqual(responses[2].reason, b"")
        self.assertEqual(parseResponses(b""), [])

    def test_notResponses(self) -> None:
        """
        Bytes that are not a sequence of complete responses are refused.
        """
        for data in [
            b"garbage",
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nextra bytes",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ]:
            self.assertRaises(ValueError, parseResponses, data)

    def test_pipelined(self) -> None:
        """
        Two requests sent at once on one L{MemoryServer.connect} connection
        are answered in order.
        """

        def path(environ: Any, start_response: Any) -> list[bytes]:
            start_response("200 OK", [])
            return [environ["PATH_INFO"].encode()]

        protocol, transport = MemoryServer(path).connect()
        protocol.dataReceived(
            b"GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        responses = parseResponses(transport.value())
        self.assertEqual([r.body for r in responses], [b"/one", b"/two"])


class SynchronousThreadPoolTests(SynchronousTestCase):
    def test_callInThreadWithCallback(self) -> None:
        """
        The callback gets C{(True, result)} or C{(False, exception)} at once.
        """
        results: list[Any] = []
        pool = SynchronousThreadPool()
        pool.callInThreadWithCallback(lambda *a: results.append(a), lambda: 3)
        pool.callInThreadWithCallback(lambda *a: results.append(a), lambda: 1 / 0)
        self.assertEqual(results[0], (True, 3))
        self.assertEqual(results[1][0], False)
        self.assertIsInstance(results[1][1], ZeroDivisionError)


class LogLineTests(SynchronousTestCase):
    def test_address(self) -> None:
        """
        The endpoint description and address are read from a C{listening on}
        line, IPv4 or IPv6, with or without the URL's scheme.
        """
        self.assertEqual(
            _listener("2026 [twsgi#info] listening on 127.0.0.1:8123 (tcp:0)"),
            ("tcp:0", ("127.0.0.1", 8123)),
        )
        self.assertEqual(
            _listener("listening on [::1]:9 (tcp6:0:interface=\\:\\:1)"),
            ("tcp6:0:interface=\\:\\:1", ("::1", 9)),
        )
        self.assertEqual(
            _listener("listening on https://[::1]:9 (ssl:0)"), ("ssl:0", ("::1", 9))
        )
        self.assertEqual(
            _listener("listening on http://127.0.0.1:5 (tcp:0)"),
            ("tcp:0", ("127.0.0.1", 5)),
        )
        self.assertIsNone(_listener("Starting reactor..."))

    def test_jsonLinesFormatted(self) -> None:
        """
        Lines in Twisted's JSON log format are turned into their text.
        """
        line = (
            '\x1e{"log_format": "listening on {address} ({description})", '
            '"address": "127.0.0.1:5", "description": "tcp:0"}'
        )
        self.assertEqual(_readable(line), "listening on 127.0.0.1:5 (tcp:0)")
        self.assertEqual(_readable("{not json"), "{not json")

    def test_twsgiJSONLines(self) -> None:
        """
        Lines of twsgi's C{--log-format json} read like its text lines; JSON
        without a message is left as it is.
        """
        line = (
            '{"time": "T", "level": "info", "namespace": "twsgi", '
            '"message": "listening on 127.0.0.1:5 (tcp:0)", "address": "127.0.0.1:5"}'
        )
        self.assertEqual(
            _readable(line), "T [twsgi#info] listening on 127.0.0.1:5 (tcp:0)"
        )
        self.assertEqual(_listener(_readable(line)), ("tcp:0", ("127.0.0.1", 5)))
        self.assertEqual(_readable('{"other": 1}'), '{"other": 1}')
        self.assertEqual(_readable("[1]"), "[1]")


def fakeServer(*script: str) -> list[str]:
    """
    A command for L{spawnServer} that runs the Python lines C{script}.
    """
    return [sys.executable, "-c", "\n".join(["import sys, time", *script])]


class SpawnServerTests(SynchronousTestCase):
    def test_logLines(self) -> None:
        """
        Listeners are read from text and JSON log lines; L{ServerProcess.endpoints}
        keeps each description's latest address; L{ServerProcess.rawLines}
        keeps the JSON as written; L{ServerProcess.waitFor} finds a line from
        an index on.
        """
        json = (
            '{"log_format": "listening on {a} ({d})", "a": "127.0.0.1:6", "d": "tcp:6"}'
        )
        server = spawnServer(
            [],
            command=fakeServer(
                "print('listening on 127.0.0.1:5 (tcp:0)')",
                f"print({json!r})",
                "print('listening on 127.0.0.1:7 (tcp:0)')",
                "print('ready', flush=True)",
                "time.sleep(30)",
            ),
            listeners=2,
        )
        self.addCleanup(server.stop)
        self.assertEqual(server.waitFor("^ready$"), "ready")
        self.assertEqual((server.host, server.port), ("127.0.0.1", 5))
        self.assertEqual(
            server.addresses, [("127.0.0.1", 5), ("127.0.0.1", 6), ("127.0.0.1", 7)]
        )
        self.assertEqual(
            server.endpoints, {"tcp:0": ("127.0.0.1", 7), "tcp:6": ("127.0.0.1", 6)}
        )
        self.assertEqual(server.rawLines[1], json)
        self.assertEqual(server.lines[1], "listening on 127.0.0.1:6 (tcp:6)")
        self.assertEqual(
            server.waitFor("listening", start=1), "listening on 127.0.0.1:6 (tcp:6)"
        )
        self.assertEqual(server.waitFor(":7", start=1), server.lines[2])
        error = self.assertRaises(RuntimeError, server.waitFor, "never", timeout=0.1)
        self.assertIn("ready", str(error))

    def test_waitForEnd(self) -> None:
        """
        L{ServerProcess.waitFor} gives up when the process ends first.
        """
        server = spawnServer([], command=fakeServer("print('bye')"), listeners=0)
        self.addCleanup(server.stop)
        error = self.assertRaises(RuntimeError, server.waitFor, "never", timeout=60)
        self.assertIn("bye", str(error))
        self.assertEqual(server.wait(), 0)

    def test_noListeners(self) -> None:
        """
        With C{listeners=0}, L{spawnServer} returns without waiting for the
        log.
        """
        server = spawnServer(
            [],
            command=fakeServer("time.sleep(30)", "print('late')"),
            listeners=0,
            timeout=60,
        )
        self.addCleanup(server.stop)
        self.assertIsNone(server.process.poll())
        self.assertEqual(server.lines, [])

    def test_importsAsTheTestDoes(self) -> None:
        """
        The server imports its application from the directories on this
        process's C{sys.path}, whatever directory it runs in: a test runner
        that changed directory (trial runs in C{_trial_temp}) still serves
        the application its tests import.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        with open(os.path.join(directory, "spawnedapp_xyz.py"), "w") as f:
            f.write("from twsgi.example import app\n")
        self.patch(sys, "path", [directory, *sys.path])
        elsewhere = self.mktemp()
        os.makedirs(elsewhere)
        server = spawnServer(
            ["--app", "spawnedapp_xyz:app", "--access-log", "none"],
            env=cleanEnviron(),
            cwd=elsewhere,
        )
        self.addCleanup(server.stop)
        status, _, body = fetch(server.host, server.port)
        self.assertEqual((status, body), (200, b"Hello from twsgi!\n"))

    def test_failureShowsOutput(self) -> None:
        """
        A server that exits instead of listening is reported with its exit
        status and its output (not as one that did not listen in time).
        """
        error = self.assertRaises(
            RuntimeError, spawnServer, ["--app", "nosuchmodule_xyz:app"], timeout=20
        )
        self.assertTrue(
            str(error).startswith(
                "the server exited with status 1 before it listened:\n"
            ),
            str(error),
        )
        self.assertIn("nosuchmodule_xyz", str(error))
