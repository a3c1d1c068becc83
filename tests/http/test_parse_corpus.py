"""
Replay the raw request corpus in C{tests/http/requests/} over real sockets.

Each bad request is sent with a valid request pipelined right behind it: the
server must answer the bad one with its status, close the connection, and
never hand the pipelined request to the application.  Each good request is
followed by a last request asking to close, and both must be served.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from tests.helpers.rawhttp import (
    LAST,
    SMUGGLED,
    LoopbackServer,
    decodeCorpus,
    exchange,
)
from twsgi.http.limits import Limits
from twsgi.testing import parseResponses

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "requests")


def loadCorpus() -> list[tuple[str, int, dict[str, str], bytes]]:
    """
    The corpus entries: C{(name, status, expected environ entries, raw
    request)}.
    """
    entries = []
    with open(os.path.join(CORPUS, "index.txt")) as index:
        for line in index:
            if not line.strip() or line.startswith("#"):
                continue
            name, status, *rest = line.split()
            expected = dict(item.split("=", 1) for item in rest)
            with open(os.path.join(CORPUS, name + ".http"), "rb") as f:
                raw = decodeCorpus(f.read())
            entries.append((name, int(status), expected, raw))
    return entries


class CorpusTests(TestCase):
    """
    The corpus, one test per request.
    """

    timeout = 30

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor = reactor
        # Long timeouts: a request that is not answered at once shows up as
        # a hang in the client, not as a timeout answer.
        limits = Limits(headerTimeout=60, keepAliveTimeout=60, bodyTimeout=60)
        self.records: list[Any] = []
        self.server = LoopbackServer(
            reactor, limits=limits, observers=[self.records.append]
        )
        self.addCleanup(self.server.stop)

    @defer.inlineCallbacks
    def replay(
        self, name: str, status: int, expected: dict[str, str], raw: bytes
    ) -> Any:
        app = self.server.app
        if status >= 400:
            data, closed = yield exchange(
                self.reactor, self.server.portNumber, raw + SMUGGLED
            )
            responses = parseResponses(data)
            self.assertEqual([r.code for r in responses], [status], (name, data))
            self.assertEqual(responses[0].header(b"connection"), b"close")
            self.assertTrue(closed, f"{name}: the connection was left open")
            self.assertEqual(app.seen, [], f"{name}: the application saw a request")
            # Exactly one access record, with the client's address.
            self.assertEqual([r.status for r in self.records], [status], name)
            self.assertEqual(self.records[0].remoteAddr, "127.0.0.1")
            # Alone, with the client still waiting: answered at once, not
            # when some later byte or a timeout arrives.
            data, closed = yield exchange(
                self.reactor, self.server.portNumber, raw, timeout=3.0
            )
            self.assertTrue(closed, f"{name}: not answered at once")
            self.assertEqual([r.code for r in parseResponses(data)], [status], name)
            self.assertEqual(app.seen, [])
            self.assertEqual(len(self.records), 2, name)
            return
        closing = raw.startswith(b"GET / HTTP/1.0")
        payload = raw if closing else raw + LAST
        data, closed = yield exchange(self.reactor, self.server.portNumber, payload)
        responses = parseResponses(data)
        self.assertTrue(closed)
        self.assertEqual(
            [r.code for r in responses], [200] if closing else [200, 200], name
        )
        self.assertEqual(len(app.seen), len(responses))
        self.assertEqual(
            [r.status for r in self.records], [r.code for r in responses], name
        )
        seen = app.seen[0]
        for key, value in expected.items():
            self.assertEqual(seen.get(key), value, (name, key))


def _makeTest(name: str, status: int, expected: dict[str, str], raw: bytes) -> Any:
    def test(self: CorpusTests) -> Any:
        return self.replay(name, status, expected, raw)

    outcome = (
        "is served" if status < 400 else f"gets {status}, closes and smuggles nothing"
    )
    test.__doc__ = f"The corpus request {name!r} {outcome}."
    test.__name__ = "test_" + name.replace("-", "_")
    return test


for _entry in loadCorpus():
    _test = _makeTest(*_entry)
    setattr(CorpusTests, _test.__name__, _test)
del _entry, _test
