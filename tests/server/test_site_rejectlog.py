"""
Tests for the access records of requests the strict framing layer rejects
(L{twsgi.server.http1.TwsgiChannel} and L{twsgi.server.site.TwsgiSite.requestRejected}).
"""

from __future__ import annotations

import json
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.health import FakePool, FakeService
from tests.helpers.metrics import scrape
from tests.helpers.rawhttp import connect
from twsgi.http.limits import Limits
from twsgi.logs.accesslog import AccessRecord, formatCombined
from twsgi.logs.formats import compileTemplate, formatJSON
from twsgi.metrics.prometheus import Metrics
from twsgi.testing import parseResponses


def rejected(
    data: bytes, limits: Limits | None = None, observers: Any = ()
) -> tuple[list[AccessRecord], Any, Any]:
    """
    Send C{data} on a fresh in-memory connection and return the access
    records, the transport and the recording application.
    """
    records: list[AccessRecord] = []
    protocol, transport, _, app = connect(
        limits, listener="tcp:8000", observers=[records.append, *observers]
    )
    protocol.dataReceived(data)
    return records, transport, app


def slowConnection() -> tuple[Any, Any, list[AccessRecord]]:
    """
    A fresh in-memory connection with a 5 s header timeout, opened at 10 s
    on its clock: its protocol, clock and access records.
    """
    records: list[AccessRecord] = []
    protocol, _, reactor, _ = connect(
        Limits(headerTimeout=5), observers=[records.append]
    )
    reactor.advance(10)
    return protocol, reactor, records


class RejectionRecordTests(SynchronousTestCase):
    """
    A request answered by the framing layer gets exactly one access record,
    with what is known of it.
    """

    def test_badHeader(self) -> None:
        """
        A header section refused with 400 gives one record with the request
        line, the headers received, the peer and the body bytes sent.
        """
        records, transport, app = rejected(
            b"GET /a?b=c HTTP/1.1\r\nHost: x\r\nUser-Agent: probe/1\r\n"
            b"Bad Header: 1\r\n\r\n"
        )
        [response] = parseResponses(transport.value())
        self.assertEqual(response.code, 400)
        self.assertEqual(app.seen, [])
        [record] = records
        self.assertEqual(
            (record.method, record.target, record.protocol, record.status),
            ("GET", "/a?b=c", "HTTP/1.1", 400),
        )
        self.assertEqual((record.remoteAddr, record.remotePort), ("127.0.0.1", 5000))
        self.assertEqual(record.bytesSent, len(response.body))
        self.assertEqual(record.userAgent, "probe/1")
        self.assertEqual(record.listener, "tcp:8000")
        self.assertEqual(record.bytesReceived, 0)
        self.assertTrue(record.requestId)

    def test_unknownRequestLine(self) -> None:
        """
        A request line too long to read (414) leaves the request line
        unknown: empty fields, which every format shows as C{-}.
        """
        records, transport, _ = rejected(
            b"GET /" + b"a" * 200, Limits(maxRequestLine=100)
        )
        [record] = records
        self.assertEqual(record.status, 414)
        self.assertEqual((record.method, record.target, record.protocol), ("", "", ""))
        self.assertIn('"-" 414 ', formatCombined(record))
        self.assertEqual(compileTemplate("%(m)s %(U)s %(H)s %(r)s")(record), "- - - -")
        self.assertEqual(json.loads(formatJSON(record))["status"], 414)

    def test_invalidRequestLineEscaped(self) -> None:
        """
        An invalid request line is logged as far as it splits, escaped like
        every other field: it cannot forge a log line or a field.
        """
        records, _, _ = rejected(b'G"T /\x1b[31m\x85 HTTP/1.1 x\r\n\r\n')
        [record] = records
        self.assertEqual(record.status, 400)
        self.assertEqual(record.method, 'G"T')
        line = formatCombined(record)
        self.assertIn('"G\\"T /\\x1b[31m\\x85 HTTP/1.1 x" 400 ', line)
        self.assertEqual(len(line.splitlines()), 1)

    def test_bodyTooLarge(self) -> None:
        """
        A chunked body refused with 413 partway gives one record with the
        request line and the body bytes read so far.
        """
        records: list[AccessRecord] = []
        protocol, transport, _, app = connect(
            Limits(maxBody=10), observers=[records.append]
        )
        protocol.dataReceived(
            b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n"
        )
        self.assertEqual(records, [])
        protocol.dataReceived(b"10\r\n")
        self.assertEqual(app.seen, [])
        [record] = records
        self.assertEqual(
            (record.method, record.target, record.status), ("POST", "/up", 413)
        )
        self.assertEqual(record.bytesReceived, 5)

    def test_timeout(self) -> None:
        """
        A header section not finished in time (408) is logged once.
        """
        records: list[AccessRecord] = []
        protocol, transport, reactor, _ = connect(
            Limits(headerTimeout=5), observers=[records.append]
        )
        protocol.dataReceived(b"GET /slow HTTP/1.1\r\nHost: x\r\n")
        reactor.advance(6)
        [record] = records
        self.assertEqual((record.status, record.target), (408, "/slow"))
        protocol.dataReceived(b"\r\n")
        reactor.advance(10)
        self.assertEqual(len(records), 1)

    def test_timeoutDuration(self) -> None:
        """
        The record of a 408 for a slow head starts when the head began to
        arrive and lasts the header timeout, not no time at all.
        """
        protocol, reactor, records = slowConnection()
        protocol.dataReceived(b"GET /slow HTTP/1.1\r\n")
        reactor.advance(2)
        protocol.dataReceived(b"Host: x\r\n")
        reactor.advance(3)
        [record] = records
        self.assertEqual(
            (record.status, record.timestamp, record.duration), (408, 10.0, 5.0)
        )

    def test_splitHeadRejectedDuration(self) -> None:
        """
        A head that arrived in several reads and is refused lasts from its
        first read to its refusal.
        """
        protocol, reactor, records = slowConnection()
        protocol.dataReceived(b"GET /bad HTTP/1.1\r\nHost: x\r\n")
        reactor.advance(2)
        protocol.dataReceived(b"Bad Header: 1\r\n\r\n")
        [record] = records
        self.assertEqual(
            (record.status, record.timestamp, record.duration), (400, 10.0, 2.0)
        )

    def test_wholeHeadRejectedAfterSplitOne(self) -> None:
        """
        A head refused in the read it arrived in lasts no time, even after
        an earlier head on the connection came in several reads.
        """
        protocol, reactor, records = slowConnection()
        protocol.dataReceived(b"GET /good HTTP/1.1\r\n")
        reactor.advance(1)
        protocol.dataReceived(b"Host: x\r\n\r\n")
        reactor.advance(3)
        protocol.dataReceived(b"GET /bad HTTP/1.1\r\n\r\n")
        self.assertEqual(
            [(r.target, r.status) for r in records], [("/good", 200), ("/bad", 400)]
        )
        self.assertEqual((records[1].timestamp, records[1].duration), (14.0, 0.0))

    def test_servedThenRejected(self) -> None:
        """
        A good request then a bad one on the same connection give one record
        each, in order.
        """
        records, transport, app = rejected(
            b"GET /good HTTP/1.1\r\nHost: x\r\n\r\nGET /bad HTTP/1.1\r\n\r\n"
        )
        self.assertEqual(app.paths(), ["/good"])
        self.assertEqual(
            [(r.target, r.status) for r in records], [("/good", 200), ("/bad", 400)]
        )

    def test_noObservers(self) -> None:
        """
        A site without observers still rejects (and makes no record).
        """
        protocol, transport, _, _ = connect()
        protocol.dataReceived(b"GET / HTTP/1.1\r\n\r\n")
        self.assertEqual(parseResponses(transport.value())[0].code, 400)

    def test_metrics(self) -> None:
        """
        The metrics observer counts rejected requests by status class.
        """
        metrics = Metrics(FakeService(FakePool()))
        rejected(b"GET / HTTP/1.1\r\n\r\n", observers=[metrics.observe])
        figures = scrape(metrics)
        self.assertEqual(
            figures[
                (
                    "twsgi_requests_total",
                    (("protocol", "HTTP/1.1"), ("status_class", "4xx")),
                )
            ],
            1,
        )
