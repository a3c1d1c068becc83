"""
Tests for L{twsgi.logs.accesslog}: access records and the Combined Log Format.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
from typing import Any

import attrs
from twisted.trial.unittest import SynchronousTestCase

from twsgi.logs.accesslog import (
    AccessRecord,
    FileAccessLog,
    escape,
    formatCombined,
    headerless,
    openAccessLog,
    readsEnviron,
    readsHeaders,
)

_RECORD = AccessRecord(
    timestamp=1_795_104_000.25,  # 2026-11-19 16:00:00 UTC
    method="GET",
    target="/a?b=c",
    protocol="HTTP/1.1",
    status=200,
    bytesSent=13,
    duration=0.0125,
    remoteAddr="127.0.0.1",
    remotePort=5555,
    listener="tcp:8000",
    requestId="abc",
    userAgent="curl/8.0",
    referer="http://example.com/",
)

# Combined Log Format plus the duration in microseconds: every quoted field
# holds no bare quote.
_LINE = re.compile(
    r'(?P<host>\S+) - - \[(?P<time>[^\]]+)\] "(?P<request>(?:[^"\\]|\\.)*)" '
    r'(?P<status>\d{3}) (?P<bytes>\d+|-) "(?P<referer>(?:[^"\\]|\\.)*)" '
    r'"(?P<agent>(?:[^"\\]|\\.)*)" (?P<duration>\d+)'
)


class FormatCombinedTests(SynchronousTestCase):
    """
    L{formatCombined} writes one Combined Log Format line with the duration.
    """

    def test_line(self) -> None:
        """
        A record gives the exact expected line.
        """
        self.assertEqual(
            formatCombined(_RECORD),
            '127.0.0.1 - - [19/Nov/2026:16:00:00 +0000] "GET /a?b=c HTTP/1.1" '
            '200 13 "http://example.com/" "curl/8.0" 12500',
        )

    def test_emptyFields(self) -> None:
        """
        No body, no client address, no referer and no user agent give C{-}.
        """
        record = attrs.evolve(
            _RECORD, bytesSent=0, remoteAddr="", referer="", userAgent="", duration=0
        )
        match = _LINE.fullmatch(formatCombined(record))
        assert match is not None
        self.assertEqual(
            match.group("host", "bytes", "referer", "agent", "duration"),
            ("-", "-", "-", "-", "0"),
        )

    def test_noInjection(self) -> None:
        """
        Control characters (C0, DEL and C1, which some readers take as line
        breaks), quotes and backslashes from the request are escaped: the
        line stays one line of the Combined Log Format and the fields do not
        spill into each other.
        """
        hostile = 'x" 200 1 "-" "-" 1\n1.2.3.4 - - [x] "GET / HTTP/1.1\r\t\x00\x1b\x7f\x85\x9f\\'
        record = attrs.evolve(
            _RECORD,
            method=hostile,
            target="/" + hostile,
            protocol=hostile,
            referer=hostile,
            userAgent=hostile,
            remoteAddr=hostile,
        )
        line = formatCombined(record)
        self.assertEqual(line.splitlines(), [line])
        self.assertEqual(
            [c for c in line if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F], []
        )
        match = _LINE.fullmatch(line)
        assert match is not None, line
        self.assertEqual(match.group("status"), "200")
        self.assertEqual(match.group("duration"), "12500")
        self.assertIn('\\"', match.group("agent"))

    def test_lineSeparators(self) -> None:
        """
        The line and paragraph separators U+2028 and U+2029, sent as UTF-8,
        are escaped as in JSON, since C{str.splitlines()} (and log viewers)
        break lines there: a client cannot forge a line in the combined
        format with them.
        """
        forged = '\xe2\x80\xa8127.0.0.1 - - [x] "GET /admin HTTP/1.1" 200\xe2\x80\xa9'
        record = attrs.evolve(_RECORD, target="/" + forged, userAgent=forged)
        line = formatCombined(record)
        self.assertEqual(line.splitlines(), [line])
        self.assertIn(
            '"\\u2028127.0.0.1 - - [x] \\"GET /admin HTTP/1.1\\" 200\\u2029"', line
        )
        self.assertEqual(escape("a\u2028b\u2029"), "a\\u2028b\\u2029")

    def test_escape(self) -> None:
        """
        L{escape} leaves printable text (including latin-1 letters) alone and
        escapes the rest.
        """
        table = [
            ("plain /a?b=c", "plain /a?b=c"),
            ("caf\xe9", "caf\xe9"),
            ("a\nb", "a\\x0ab"),
            ("\r\t\x00", "\\x0d\\x09\\x00"),
            ('"', '\\"'),
            ("\\", "\\\\"),
            ("\x7f\x85\x9f\xa0", "\\x7f\\x85\\x9f\xa0"),
        ]
        for text, expected in table:
            self.assertEqual(escape(text), expected, text)


class FileAccessLogTests(SynchronousTestCase):
    """
    L{FileAccessLog} writes one line per record; L{openAccessLog} opens one.
    """

    def test_writesLines(self) -> None:
        """
        Each record is one formatted line, flushed.
        """
        stream = io.StringIO()
        log = FileAccessLog(stream)
        log(_RECORD)
        log(attrs.evolve(_RECORD, status=404))
        lines = stream.getvalue().splitlines()
        self.assertEqual(len(lines), 2)
        self.assertEqual(lines[0], formatCombined(_RECORD))
        self.assertIn('" 404 ', lines[1])

    def test_customFormatter(self) -> None:
        """
        Any formatter can be used.
        """
        stream = io.StringIO()
        FileAccessLog(stream, formatter=lambda r: r.requestId)(_RECORD)
        self.assertEqual(stream.getvalue(), "abc\n")

    def test_openNone(self) -> None:
        """
        C{none} (in any case) means no access log.
        """
        self.assertIsNone(openAccessLog("none"))
        self.assertIsNone(openAccessLog("NONE"))

    def test_openStdout(self) -> None:
        """
        C{-} means standard output.
        """
        import sys

        log = openAccessLog("-")
        assert log is not None
        self.assertIs(log.file, sys.stdout)

    def temporaryDirectory(self) -> str:
        """
        A new directory, removed after the test.
        """
        directory = tempfile.mkdtemp(prefix="twsgi-test-")
        self.addCleanup(shutil.rmtree, directory, True)
        return directory

    def test_openPath(self) -> None:
        """
        A path is opened for appending, and non-ASCII text is written as
        the UTF-8 the client sent.
        """
        path = os.path.join(self.temporaryDirectory(), "access.log")
        with open(path, "w") as f:
            f.write("old\n")
        log = openAccessLog(path)
        assert log is not None
        self.addCleanup(log.file.close)
        log(attrs.evolve(_RECORD, target="/caf\xc3\xa9"))
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        self.assertEqual(lines[0], "old")
        self.assertIn("/caf\xe9", lines[1])

    def test_openMissingDirectory(self) -> None:
        """
        A path that cannot be opened raises L{OSError}.
        """
        path = os.path.join(self.temporaryDirectory(), "missing", "access.log")
        self.assertRaises(OSError, openAccessLog, path)


class HeaderlessTests(SynchronousTestCase):
    """
    Records leave their headers out only while every observer of the site is
    marked L{headerless}.
    """

    def serve(self, *observers: object) -> list[AccessRecord]:
        """
        Answer one request with headers through a L{MemoryServer} whose only
        observers are C{observers} and a recorder marked like the first of
        them; return what the recorder received.
        """
        from twsgi.testing import MemoryServer

        def app(environ: object, startResponse: Any) -> list[bytes]:
            startResponse("200 OK", [("X-Out", "o")])
            return [b"hi"]

        records: list[AccessRecord] = []

        def recorder(record: AccessRecord) -> None:
            records.append(record)

        if observers and not readsHeaders(observers[0]):
            headerless(recorder)
        server = MemoryServer(app)
        server.site.observers[:] = [recorder, *observers]
        server.request(headers=[(b"X-In", b"i")])
        self.assertEqual(len(records), 1)
        return records

    def test_marks(self) -> None:
        """
        The combined and JSON formats, templates without header atoms and
        the metrics observer never read headers; any other observer may.
        """
        from twsgi.logs.formats import compileTemplate, formatJSON
        from twsgi.metrics.prometheus import Metrics

        self.assertFalse(readsHeaders(formatCombined))
        self.assertFalse(readsHeaders(formatJSON))
        self.assertFalse(readsHeaders(FileAccessLog(io.StringIO())))
        self.assertFalse(readsHeaders(compileTemplate("%(h)s %(r)s %(s)s")))
        self.assertFalse(readsHeaders(Metrics.observe))
        self.assertTrue(readsHeaders(compileTemplate("%({x-in}i)s")))
        self.assertTrue(readsHeaders(compileTemplate("%({x-out}o)s")))
        self.assertTrue(readsHeaders(compileTemplate("%(u)s")))
        self.assertTrue(
            readsHeaders(FileAccessLog(io.StringIO(), compileTemplate("%({a}i)s")))
        )
        self.assertTrue(readsHeaders(lambda record: None))
        self.assertTrue(readsHeaders([].append))

    def test_allHeaderless(self) -> None:
        """
        A site whose observers are all headerless makes records without
        headers, the rest of the record unchanged.
        """
        (record,) = self.serve(FileAccessLog(io.StringIO()))
        self.assertEqual((record.requestHeaders, record.responseHeaders), ((), ()))
        self.assertEqual((record.status, record.bytesSent), (200, 2))

    def test_environ(self) -> None:
        """
        A template with C{{variable}e} atoms gets the environ as the
        application left it (a value it set itself included); records for
        other observers carry no environ.
        """
        from twsgi.logs.formats import compileTemplate
        from twsgi.testing import MemoryServer

        def app(environ: Any, startResponse: Any) -> list[bytes]:
            environ["REMOTE_USER"] = "ada"
            startResponse("200 OK", [])
            return [b"hi"]

        lines = io.StringIO()
        log = FileAccessLog(
            lines, compileTemplate("%({remote_user}e)s %({path_info}e)s %(s)s")
        )
        self.assertTrue(readsEnviron(log))
        self.assertFalse(readsEnviron(FileAccessLog(io.StringIO())))
        self.assertFalse(readsEnviron(lambda record: None))
        server = MemoryServer(app, observers=[log])
        server.request(target=b"/there")
        self.assertEqual(lines.getvalue(), "ada /there 200\n")
        plain = MemoryServer(app)
        plain.request()
        self.assertEqual(plain.records[0].environ, ())

    def test_anyReader(self) -> None:
        """
        One observer that may read headers gets records with every header.
        """
        (record,) = self.serve(FileAccessLog(io.StringIO()), lambda r: None)
        self.assertIn(("X-In", "i"), record.requestHeaders)
        self.assertIn(("X-Out", "o"), record.responseHeaders)
