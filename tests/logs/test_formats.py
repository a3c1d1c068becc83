"""
Tests for L{twsgi.logs.formats}: combined, JSON and template access-log lines.
"""

from __future__ import annotations

import base64
import json

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.records import RECORD
from twsgi.logs.accesslog import formatCombined
from twsgi.logs.formats import (
    ATOMS,
    FormatError,
    compileTemplate,
    formatJSON,
    formatterFor,
    parseAccessLogFormat,
)

GUNICORN_DEFAULT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'


class TemplateTests(SynchronousTestCase):
    """
    Tests for gunicorn-style templates.
    """

    def test_gunicornDefault(self) -> None:
        """
        gunicorn's default template gives the Combined Log Format line.
        """
        line = compileTemplate(GUNICORN_DEFAULT)(RECORD)
        self.assertEqual(
            line,
            '192.0.2.7 - - [14/Nov/2023:22:13:20 +0000] "GET /a/b?x=1&y=2 '
            'HTTP/1.1" 200 13 "http://example.com/" "curl/8.5"',
        )

    def test_everyAtom(self) -> None:
        """
        Each atom renders its field of the record.
        """
        expected = {
            "h": "192.0.2.7",
            "l": "-",
            "u": "-",
            "m": "GET",
            "U": "/a/b",
            "q": "x=1&y=2",
            "H": "HTTP/1.1",
            "s": "200",
            "B": "13",
            "b": "13",
            "T": "0",
            "M": "12",
            "D": "12345",
            "L": "0.012346",
            "rid": "abc123",
            "P": "54321",
            "I": "5",
            "listener": "tcp:8000",
        }
        for atom, value in expected.items():
            self.assertEqual(compileTemplate(f"%({atom})s")(RECORD), value, atom)
        self.assertTrue(set(expected) <= set(ATOMS))

    def test_headers(self) -> None:
        """
        C{{name}i} and C{{name}o} render request and response headers, case
        insensitively, repeated values joined with a comma; absent is C{-}.
        """
        render = compileTemplate(
            "%({x-thing}i)s|%({Content-Type}o)s|%({missing}i)s|%({missing}o)s"
        )
        self.assertEqual(render(RECORD), "one, two|text/plain|-|-")

    def test_environ(self) -> None:
        """
        C{{variable}e} renders a text value of the WSGI environ, its name
        matched without regard to case as gunicorn does, escaped; absent is
        C{-}.  Only such a template reads the environ.
        """
        record = attrs.evolve(
            RECORD,
            environ=(("REMOTE_USER", 'ada"\n'), ("wsgi.url_scheme", "https")),
        )
        render = compileTemplate(
            "%({remote_user}e)s|%({REMOTE_USER}e)s|%({wsgi.url_scheme}e)s|%({nope}e)s"
        )
        self.assertEqual(render(record), r"ada\"\x0a|ada\"\x0a|https|-")
        self.assertTrue(render.readsEnviron)  # type: ignore[attr-defined]
        self.assertFalse(compileTemplate("%(h)s").readsEnviron)  # type: ignore[attr-defined]

    def test_basicUser(self) -> None:
        """
        C{u} is the user name of HTTP Basic authentication.
        """
        token = base64.b64encode(b"alice:secret").decode()
        record = attrs.evolve(
            RECORD, requestHeaders=(("Authorization", "Basic " + token),)
        )
        self.assertEqual(compileTemplate("%(u)s")(record), "alice")
        bad = attrs.evolve(RECORD, requestHeaders=(("Authorization", "Basic !!"),))
        self.assertEqual(compileTemplate("%(u)s")(bad), "-")

    def test_percentAndLiterals(self) -> None:
        """
        C{%%} is a percent sign and text between atoms is kept.
        """
        self.assertEqual(compileTemplate("100%% [%(s)s] end")(RECORD), "100% [200] end")

    def test_escaping(self) -> None:
        """
        Quotes, backslashes and control characters in request text are
        escaped, so a request cannot add a field or a line.
        """
        record = attrs.evolve(
            RECORD,
            userAgent='evil"\n127.0.0.1 - - fake',
            requestHeaders=(("X-A", "a\\b\r\n"),),
        )
        line = compileTemplate('"%(a)s" %({x-a}i)s')(record)
        self.assertEqual(line, '"evil\\"\\x0a127.0.0.1 - - fake" a\\\\b\\x0d\\x0a')
        self.assertNotIn("\n", line)

    def test_utf8(self) -> None:
        """
        Header values and the request line are written as the UTF-8 the
        client sent, bytes that are not UTF-8 as C{\\xNN}, quotes still
        escaped.
        """
        sent = 'ü"'.encode() + b"\x85\xff"
        record = attrs.evolve(
            RECORD,
            target="/" + "é".encode().decode("latin-1"),
            userAgent=sent.decode("latin-1"),
            requestHeaders=(("X-A", sent.decode("latin-1")),),
        )
        line = compileTemplate('"%(r)s" "%(a)s" %({x-a}i)s')(record)
        self.assertEqual(line, '"GET /é HTTP/1.1" "ü\\"\\x85\\xff" ü\\"\\x85\\xff')
        combined = formatCombined(record)
        self.assertIn(' "GET /é HTTP/1.1" ', combined)
        self.assertIn(' "ü\\"\\x85\\xff" ', combined)

    def test_unknownAtom(self) -> None:
        """
        An unknown atom is an error naming it.
        """
        e = self.assertRaises(FormatError, compileTemplate, "%(h)s %(zz)s")
        self.assertIn("%(zz)s", str(e))

    def test_lonePercent(self) -> None:
        """
        A C{%} that is neither C{%%} nor an atom is an error.
        """
        self.assertRaises(FormatError, compileTemplate, "%(h)s 50% %d")

    def test_emptyHeaderName(self) -> None:
        """
        C{%({}i)s} is an error.
        """
        self.assertRaises(FormatError, compileTemplate, "%({}i)s")


class JSONTests(SynchronousTestCase):
    """
    Tests for JSON lines.
    """

    def test_fields(self) -> None:
        """
        A JSON line holds typed fields.
        """
        fields = json.loads(formatJSON(RECORD))
        self.assertEqual(fields["status"], 200)
        self.assertEqual(fields["bytes_sent"], 13)
        self.assertEqual(fields["remote_port"], 54321)
        self.assertEqual(fields["path"], "/a/b")
        self.assertEqual(fields["query"], "x=1&y=2")
        self.assertEqual(fields["time"], "2023-11-14T22:13:20.250000Z")
        self.assertEqual(fields["duration"], 0.012346)
        self.assertEqual(fields["request_id"], "abc123")

    @settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.binary(), st.binary())
    def test_anyRequestBytes(self, target: bytes, agent: bytes) -> None:
        """
        Whatever bytes the request holds, the line is one line of JSON that
        decodes to the UTF-8 the client sent, each byte that is not UTF-8
        written as C{\\xNN}.
        """
        record = attrs.evolve(
            RECORD, target=target.decode("latin-1"), userAgent=agent.decode("latin-1")
        )
        line = formatJSON(record)
        self.assertEqual(line.splitlines(), [line])
        fields = json.loads(line)
        self.assertEqual(
            (fields["target"], fields["user_agent"]),
            (
                target.decode("utf-8", "backslashreplace"),
                agent.decode("utf-8", "backslashreplace"),
            ),
        )

    def test_utf8Written(self) -> None:
        """
        A header the client sent in UTF-8 is written as that text, not as
        its bytes read one by one (C{ü}, not C{Ã¼}); a byte that is not
        UTF-8 is C{\\xNN}.
        """
        agent = "ü\u2028".encode() + b"\xff"
        line = formatJSON(attrs.evolve(RECORD, userAgent=agent.decode("latin-1")))
        self.assertIn('"user_agent":"ü\\u2028\\\\xff"', line)
        self.assertEqual(json.loads(line)["user_agent"], "ü\u2028\\xff")


class SettingTests(SynchronousTestCase):
    """
    Tests for the C{--access-log-format} setting.
    """

    def test_named(self) -> None:
        """
        C{combined} and C{json} name the built-in formats, in any case.
        """
        self.assertIs(formatterFor("combined"), formatCombined)
        self.assertIs(formatterFor("JSON"), formatJSON)

    def test_notATemplate(self) -> None:
        """
        Text with no atom is not taken for a template.
        """
        self.assertRaises(ValueError, parseAccessLogFormat, "jsn")
        self.assertRaises(ValueError, parseAccessLogFormat, "")

    def test_template(self) -> None:
        """
        A valid template is accepted as it is.
        """
        self.assertEqual(parseAccessLogFormat("%(h)s"), "%(h)s")
