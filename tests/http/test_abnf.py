"""
Tests for L{twsgi.http.abnf} and L{twsgi.http.hopbyhop}: the shared HTTP
grammar and the hop-by-hop header set, each written once.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

import twsgi
from twsgi.http.abnf import BAD_VALUE, HOST, HOST_NAME, STATUS, TARGET, TOKEN
from twsgi.http.hopbyhop import CONNECTION_SPECIFIC, HOP_BY_HOP


class GrammarTests(SynchronousTestCase):
    """
    The patterns match what their RFCs allow, and nothing else.
    """

    def test_token(self) -> None:
        """
        A token is one or more tchars: no separator, space or control byte.
        """
        for good in (b"GET", b"X-Custom_1", b"!#$%&'*+-.^_`|~"):
            self.assertIsNotNone(TOKEN.fullmatch(good), good)
        for bad in (b"", b"a b", b"a:b", b"a/b", b'"a"', b"a\x00", b"\xe9"):
            self.assertIsNone(TOKEN.fullmatch(bad), bad)

    def test_badValue(self) -> None:
        """
        A field value may hold visible bytes, obs-text, space and tab; any
        other control byte is found.
        """
        self.assertIsNone(BAD_VALUE.search(b"text/html; q=0.9\t\xe9"))
        for byte in [*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F]:
            self.assertIsNotNone(BAD_VALUE.search(b"a" + bytes([byte])), byte)

    def test_target(self) -> None:
        """
        A request target is a run of visible bytes or obs-text.
        """
        self.assertIsNotNone(TARGET.match(b"/a?b=%20\xe9"))
        for bad in (b"", b"/a b", b"/a\x7f"):
            self.assertIsNone(TARGET.match(bad), bad)

    def test_host(self) -> None:
        """
        A Host is a reg-name or a bracketed IP literal, then maybe a port;
        userinfo, a path or a bare IPv6 address are not.
        """
        for good in (b"", b"example.com", b"example.com:8000", b"[::1]:80", b"a%41"):
            self.assertIsNotNone(HOST.match(good), good)
        for bad in (b"u@example.com", b"example.com/x", b"::1", b"a:b:c", b"a b"):
            self.assertIsNone(HOST.match(bad), bad)

    def test_status(self) -> None:
        """
        A status is three digits from 100 to 599, then maybe a space and a
        reason phrase of field-value bytes.
        """
        self.assertEqual(STATUS.fullmatch(b"200 OK").groups(), (b"200", b"OK"))
        self.assertEqual(STATUS.fullmatch(b"204").groups(), (b"204", None))
        for bad in (b"99 X", b"600 X", b"2000", b"200 A\r\nB", b"200OK"):
            self.assertIsNone(STATUS.fullmatch(bad), bad)

    def test_hostName(self) -> None:
        """
        A host name starts and ends with a letter or digit.
        """
        for good in ("localhost", "web.example.com", "10.0.0.1"):
            self.assertIsNotNone(HOST_NAME.match(good), good)
        for bad in ("-a", "a-", "a_b", "a b", "a\n"):
            self.assertIsNone(HOST_NAME.match(bad), bad)


class HopByHopTests(SynchronousTestCase):
    """
    The hop-by-hop set is the connection-specific one plus TE and Trailer.
    """

    def test_sets(self) -> None:
        """
        HTTP/2's connection-specific fields (RFC 9113 section 8.2.2) are
        hop-by-hop, and so are C{TE} and C{Trailer} (RFC 9110 section
        7.6.1), all in lower case.
        """
        self.assertEqual(
            CONNECTION_SPECIFIC,
            {
                b"connection",
                b"keep-alive",
                b"proxy-connection",
                b"transfer-encoding",
                b"upgrade",
            },
        )
        self.assertEqual(HOP_BY_HOP - CONNECTION_SPECIFIC, {b"te", b"trailer"})


class WrittenOnceTests(SynchronousTestCase):
    """
    No other module of twsgi spells out the grammar again.
    """

    def test_writtenOnce(self) -> None:
        """
        The tchar class and the hop-by-hop names appear in the source of
        L{twsgi.http.abnf} and L{twsgi.http.hopbyhop} only.
        """
        root = os.path.dirname(os.path.abspath(twsgi.__file__))
        owners = {
            "!#$%&'*+": os.path.join(root, "http", "abnf.py"),
            'b"proxy-connection"': os.path.join(root, "http", "hopbyhop.py"),
        }
        found: dict[str, list[str]] = {text: [] for text in owners}
        for directory, _, names in os.walk(root):
            for name in names:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(directory, name)
                with open(path, encoding="utf-8") as f:
                    source = f.read()
                for text in owners:
                    if text in source:
                        found[text].append(path)
        self.assertEqual(found, {text: [path] for text, path in owners.items()})
