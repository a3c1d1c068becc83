"""
Integration tests: a real L{twsgi.TwsgiService} in the real reactor, on
127.0.0.1 port 0, and a real HTTP client (L{http.client}).

The application is wrapped in L{wsgiref.validate.validator}, with its
warnings turned into errors, so that any PEP 3333 violation by the server
fails the request.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from typing import Any

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from tests.apps import wsgiapps
from tests.helpers import server as _server


def _chunks(total: int, size: int) -> list[bytes]:
    """
    C{total} bytes of varied content, cut into pieces of C{size}.
    """
    data = bytes(i % 251 for i in range(total))
    return [data[i : i + size] for i in range(0, total, size)]


def _described(payload: bytes, transferEncoding: str | None) -> dict[str, object]:
    """
    What C{/echo} must answer for C{payload}.
    """
    return {
        "length": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "transferEncoding": transferEncoding,
    }


class ValidatedAppTests(TestCase):
    """
    A validated application served over a real socket.
    """

    timeout = 30

    @defer.inlineCallbacks
    def test_get(self) -> defer.Generator[object, object, None]:
        """
        A GET is answered with the application's body.
        """
        server = yield _server.serve(self, wsgiapps.app)
        status, headers, body = yield server.request("GET", "/")
        self.assertEqual((status, body), (200, b"hello\n"))
        self.assertEqual(headers["content-type"], "text/plain")

    @defer.inlineCallbacks
    def test_contentLength(self) -> defer.Generator[object, object, None]:
        """
        A one-element list body gets a Content-Length (the unvalidated app:
        the validator hides the list behind its own iterator).
        """
        server = yield _server.serve(self, wsgiapps.unvalidated)
        status, headers, body = yield server.request("GET", "/")
        self.assertEqual((status, body), (200, b"hello\n"))
        self.assertEqual(headers["content-length"], "6")

    @defer.inlineCallbacks
    def test_head(self) -> defer.Generator[object, object, None]:
        """
        A HEAD gets the headers of the GET and no body.
        """
        server = yield _server.serve(self, wsgiapps.app)
        status, headers, body = yield server.request("HEAD", "/")
        self.assertEqual((status, body), (200, b""))
        self.assertEqual(headers["content-type"], "text/plain")

    @defer.inlineCallbacks
    def test_post(self) -> defer.Generator[object, object, None]:
        """
        A POST body with a Content-Length reaches the application whole.
        """
        server = yield _server.serve(self, wsgiapps.app)
        payload = b"x=1&y=2" * 1000
        status, _, body = yield server.request("POST", "/echo", body=payload)
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), _described(payload, None))

    @defer.inlineCallbacks
    def test_chunkedPost(self) -> defer.Generator[object, object, None]:
        """
        A chunked request body (no Content-Length) reaches the application
        whole when it reads until the end.
        """
        server = yield _server.serve(self, wsgiapps.app)
        pieces = _chunks(300_000, 7_001)
        payload = b"".join(pieces)
        # http.client sends an iterable body with Transfer-Encoding: chunked.
        status, _, body = yield server.request("POST", "/echo", body=iter(pieces))
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), _described(payload, "chunked"))

    @defer.inlineCallbacks
    def test_streamedGenerator(self) -> defer.Generator[object, object, None]:
        """
        A generator's chunks all arrive, in order.
        """
        server = yield _server.serve(self, wsgiapps.app)
        status, _, body = yield server.request("GET", "/stream")
        self.assertEqual(status, 200)
        self.assertEqual(body, b"".join(b"chunk %d\n" % (i,) for i in range(50)))

    @defer.inlineCallbacks
    def test_writeCallable(self) -> defer.Generator[object, object, None]:
        """
        Bytes given to the C{write()} callable come before the returned
        iterable's.
        """
        server = yield _server.serve(self, wsgiapps.app)
        status, _, body = yield server.request("GET", "/write")
        self.assertEqual(status, 200)
        self.assertEqual(body, b"written by write()\nthen returned\n")

    @defer.inlineCallbacks
    def test_fileWrapper(self) -> defer.Generator[object, object, None]:
        """
        A real file returned through C{wsgi.file_wrapper} arrives whole, small
        and large (which the server streams from the reactor), both through
        the validator and unwrapped (which the server sees as a file).
        """
        big = _server.temporaryDirectory(self) / "big.bin"
        big.write_bytes(b"".join(_chunks(700_001, 700_001)))
        with open(wsgiapps.THIS_FILE, "rb") as f:
            small = f.read()
        for application in (wsgiapps.app, wsgiapps.unvalidated):
            server = yield _server.serve(self, application)
            status, _, body = yield server.request("GET", "/file")
            self.assertEqual((status, body), (200, small))
            status, _, body = yield server.request("GET", f"/file?{big}")
            self.assertEqual((status, len(body)), (200, 700_001))
            self.assertEqual(body, big.read_bytes())

    @defer.inlineCallbacks
    def test_environOverSocket(self) -> defer.Generator[object, object, None]:
        """
        The environ carries the real client address, the server's real port
        and the query string.
        """
        server = yield _server.serve(self, wsgiapps.app)
        status, _, body = yield server.request("GET", "/environ?a=1&b=%20")
        self.assertEqual(status, 200)
        facts = json.loads(body)
        self.assertEqual(facts["wsgi.url_scheme"], "http")
        self.assertEqual(facts["REMOTE_ADDR"], "127.0.0.1")
        self.assertEqual(facts["SERVER_PORT"], str(server.addresses[0][1].port))
        self.assertEqual(facts["QUERY_STRING"], "a=1&b=%20")
        self.assertEqual(facts["cwd"], os.getcwd())


class ListenerTests(TestCase):
    """
    Several listeners, and IPv6.
    """

    timeout = 30

    @defer.inlineCallbacks
    def test_twoListeners(self) -> defer.Generator[object, object, None]:
        """
        Two endpoints both listen, each on its own real port, and both serve.
        """
        server = yield _server.serve(
            self, wsgiapps.app, [_server.LOOPBACK, _server.LOOPBACK]
        )
        ports = {address.port for _, address in server.addresses}
        self.assertEqual(len(ports), 2)
        for index in (0, 1):
            status, _, body = yield server.request("GET", "/", index=index)
            self.assertEqual((status, body), (200, b"hello\n"))

    @defer.inlineCallbacks
    def test_ipv6(self) -> defer.Generator[object, object, None]:
        """
        A C{tcp6:} endpoint on ::1 port 0 serves, and its real port is known.
        """
        server = yield _server.serve(self, wsgiapps.app, [r"tcp6:0:interface=\:\:1"])
        address = server.addresses[0][1]
        self.assertEqual(address.host, "::1")
        self.assertNotEqual(address.port, 0)
        status, _, body = yield server.request("GET", "/environ")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["REMOTE_ADDR"], "::1")


class ThreadPoolTests(TestCase):
    """
    The WSGI thread pool is bounded by C{--threads MIN:MAX}.
    """

    timeout = 30

    @defer.inlineCallbacks
    def test_bounded(self) -> defer.Generator[object, object, None]:
        """
        Six requests at once against C{threads=(1, 2)} never run more than two
        application calls at a time, and all are answered.
        """
        changed = threading.Condition()
        running = [0]
        most = [0]

        def slow(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            with changed:
                running[0] += 1
                most[0] = max(most[0], running[0])
                changed.notify_all()
                # Hold the thread until another call runs beside it (or a
                # bounded while), so that a third would have had its chance.
                changed.wait_for(lambda: running[0] >= 2, timeout=2)
            time.sleep(0.05)
            with changed:
                running[0] -= 1
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"done"]

        server = yield _server.serve(self, slow, threads=(1, 2))
        answers = yield defer.gatherResults(
            [server.request("GET", "/") for _ in range(6)]
        )
        self.assertEqual([a[0] for a in answers], [200] * 6)
        self.assertEqual(most[0], 2)
