"""
The response side over real sockets: what an application sends never splits
a response, and what a client sends never forges an access-log line.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from tests.helpers.rawhttp import LoopbackServer, exchange
from twsgi.logs.formats import formatterFor
from twsgi.testing import parseResponses

BAD_HEADERS = {
    "/crlf-value": ("200 OK", [("X-A", "a\r\nSet-Cookie: evil=1")]),
    "/lf-value": ("200 OK", [("X-A", "a\nX-B: b")]),
    "/nul-value": ("200 OK", [("X-A", "a\x00b")]),
    "/crlf-name": ("200 OK", [("X-A\r\nX-B", "b")]),
    "/crlf-status": ("200 OK\r\nSet-Cookie: evil=1", []),
    "/nul-status": ("200 O\x00K", []),
}


def injectingApp(environ: dict[str, Any], startResponse: Any) -> list[bytes]:
    status, headers = BAD_HEADERS[environ["PATH_INFO"]]
    startResponse(status, headers)
    return [b"body"]


class ResponseSplittingTests(TestCase):
    """
    CR, LF or NUL in a status or header from the application never reach
    the wire.
    """

    timeout = 20

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor = reactor
        self.server = LoopbackServer(reactor, app=injectingApp)
        self.addCleanup(self.server.stop)

    @defer.inlineCallbacks
    def test_injection(self) -> Any:
        """
        Each injecting response becomes a 500, and no injected header or
        stray line is on the wire.
        """
        for path in BAD_HEADERS:
            data, closed = yield exchange(
                self.reactor,
                self.server.portNumber,
                b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                % path.encode(),
            )
            [response] = parseResponses(data)
            self.assertEqual(response.code, 500, path)
            self.assertIsNone(response.header(b"set-cookie"), path)
            self.assertIsNone(response.header(b"x-b"), path)
            self.assertNotIn(b"\x00", data, path)
            self.assertNotIn(b"body", response.body, path)
        self.assertEqual(len(self.flushLoggedErrors()), 0)


class AccessLogInjectionTests(TestCase):
    """
    Request bytes that pass framing but are controls in latin-1 are escaped
    in the access log.
    """

    timeout = 20

    @defer.inlineCallbacks
    def test_escaped(self) -> Any:
        """
        C1 controls (NEL among them), quotes and backslashes in the target,
        user agent and referer are escaped: one request, one log line.
        """
        from twisted.internet import reactor

        lines: list[str] = []
        formatter = formatterFor("combined")
        server = LoopbackServer(
            reactor, observers=[lambda record: lines.append(formatter(record))]
        )
        self.addCleanup(server.stop)
        data, closed = yield exchange(
            reactor,
            server.portNumber,
            b'GET /a\x85b"\\ HTTP/1.1\r\nHost: x\r\nUser-Agent: u\x85"127.0.0.1 - -\r\n'
            b"Referer: r\x9b[2J\r\nConnection: close\r\n\r\n",
        )
        self.assertEqual([r.code for r in parseResponses(data)], [200])
        [line] = lines
        self.assertEqual(len(line.splitlines()), 1)
        self.assertIn('/a\\x85b\\"\\\\', line)
        self.assertIn('u\\x85\\"127.0.0.1', line)
        self.assertIn("r\\x9b[2J", line)
