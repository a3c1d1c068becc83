# -*- test-case-name: tests.http.test_parse -*-
"""
Tests for L{twsgi.http.parse.ChunkedDecoder} and L{HeadParser}, fed
directly: the connection-level behaviour is in
L{tests.http.test_parse_corpus}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from twsgi.http.limits import MIB, Limits
from twsgi.http.parse import (
    MEMO_SIZE,
    ChunkedDecoder,
    ChunkState,
    FramingError,
    HeadParser,
)


class ChunkedDecoderTests(SynchronousTestCase):
    """
    L{ChunkedDecoder} decodes a chunked body and says where in it it is.
    """

    def test_states(self) -> None:
        """
        Fed a byte at a time, the decoder goes through the size line, the
        data, the CRLF after it, the last chunk's trailer and the end, each
        a L{ChunkState}.
        """
        decoder = ChunkedDecoder(Limits())
        seen = [decoder.state]
        data = []
        rest = None
        for byte in b"3;x=y\r\nabc\r\n0\r\nX-T: 1\r\n\r\nGET":
            out, rest = decoder.feed(bytes([byte]))
            data += out
            if decoder.state is not seen[-1]:
                seen.append(decoder.state)
            if rest is not None:
                break
        self.assertEqual(
            seen,
            [
                ChunkState.SIZE,
                ChunkState.DATA,
                ChunkState.CRLF,
                ChunkState.SIZE,
                ChunkState.TRAILER,
                ChunkState.DONE,
            ],
        )
        self.assertEqual((b"".join(data), rest, decoder.received), (b"abc", b"", 3))

    def test_restAfterBody(self) -> None:
        """
        Fed a whole body and more at once, the decoder returns the data and
        the bytes after the body.
        """
        decoder = ChunkedDecoder(Limits())
        out, rest = decoder.feed(b"2\r\nab\r\n1\r\nc\r\n0\r\n\r\nGET / ")
        self.assertEqual((b"".join(out), rest), (b"abc", b"GET / "))
        self.assertIs(decoder.state, ChunkState.DONE)

    def test_longWhitespaceInTrailer(self) -> None:
        """
        A trailer field whose value holds a long run of whitespace before its
        last byte is read in time linear in its length, and accepted.
        """
        # Under the regular expression that split field lines before, this
        # took time quadratic in the run (some 0.3 s for 8 KiB on the I/O
        # thread, over an hour for this one).
        decoder = ChunkedDecoder(Limits(maxHeaderField=2 * MIB, maxHeaderBytes=2 * MIB))
        trailer = b"X-T: a" + b" " * MIB + b"b\r\n"
        out, rest = decoder.feed(b"1\r\nz\r\n0\r\n" + trailer + b"\r\nGET")
        self.assertEqual((out, rest), ([b"z"], b"GET"))

    def test_chunkExtensionsBounded(self) -> None:
        """
        Chunk extensions are taken up to 16 KiB in one body, whatever the
        data: past it, however short each line, the body is a 400 (the body
        limit counts chunk data only, so extensions were endless).
        """
        decoder = ChunkedDecoder(Limits())
        chunk = b"1;e=" + b"v" * 1020 + b"\r\nx\r\n"
        out, rest = decoder.feed(chunk * 16)
        self.assertEqual((b"".join(out), rest), (b"x" * 16, None))
        error = self.assertRaises(FramingError, decoder.feed, chunk)
        self.assertEqual(error.status, 400)

    def test_missingCRLF(self) -> None:
        """
        Chunk data not followed by CRLF is a 400.
        """
        decoder = ChunkedDecoder(Limits())
        error = self.assertRaises(FramingError, decoder.feed, b"1\r\naXY")
        self.assertEqual(error.status, 400)


class HeadParserTests(SynchronousTestCase):
    """
    L{HeadParser} reads the request heads of one connection, one after
    another.
    """

    HEAD = b"GET /a HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n"

    def test_longWhitespaceInValue(self) -> None:
        """
        A field whose value holds a long run of whitespace before its last
        byte, read line by line (its head arrived in pieces), is read in
        time linear in its length, with the inner whitespace kept.
        """
        # Under the regular expression that split field lines before, this
        # took time quadratic in the run (some 0.3 s for 8 KiB on the I/O
        # thread, over an hour for this one).
        parser = HeadParser(Limits(maxHeaderField=2 * MIB, maxHeaderBytes=2 * MIB))
        value = b"a" + b" " * MIB + b"b"
        self.assertIsNone(parser.feed(b"GET / HTTP/1.1\r\nHost: h\r\n"))
        result = parser.feed(b"X: " + value + b" \r\n\r\n")
        assert result is not None
        self.assertEqual(result[0].headers, ((b"Host", b"h"), (b"X", value)))

    def test_requestLineRefusedAtOnce(self) -> None:
        """
        A request line is checked as soon as it is complete, not once the
        header section ends: a client that sends a line of HTTP/0.9 or of
        another protocol, and waits, is answered at once.
        """
        for line, status in [
            (b"GET /\r\n", 400),
            (b"*1\r\n", 400),
            (b"GET / HTTP/2.0\r\n", 505),
            (b"GET example.com:80 HTTP/1.1\r\n", 400),
        ]:
            parser = HeadParser(Limits())
            self.assertIsNone(parser.feed(line[:3]))
            error = self.assertRaises(FramingError, parser.feed, line[3:])
            self.assertEqual(error.status, status, line)
            self.assertEqual(parser.requestLine, line[:-2])

    def test_sameHeadAgain(self) -> None:
        """
        A head byte for byte the last one read whole is that same head, with
        the bytes after it, and the parser knows its request line and
        fields as after reading it.
        """
        parser = HeadParser(Limits())
        first = parser.feed(self.HEAD)
        assert first is not None
        parser.next()
        self.assertFalse(parser.started)
        second = parser.feed(self.HEAD + b"body")
        assert second is not None
        self.assertIs(second[0], first[0])
        self.assertEqual(second[1], b"body")
        self.assertEqual(parser.requestLine, b"GET /a HTTP/1.1")
        self.assertEqual(parser.fields, ((b"Host", b"h"), (b"Accept", b"*/*")))

    def test_otherHeadChecked(self) -> None:
        """
        A head that differs from the last one read whole is read and checked
        in full: a bad one is refused, a good one is its own head.
        """
        parser = HeadParser(Limits())
        first = parser.feed(self.HEAD)
        assert first is not None
        parser.next()
        other = parser.feed(self.HEAD.replace(b"/a", b"/b"))
        assert other is not None
        self.assertEqual(other[0].target, b"/b")
        parser.next()
        bad = self.HEAD.replace(b"Accept: */*", b"Host: again")
        error = self.assertRaises(FramingError, parser.feed, bad)
        self.assertEqual(error.status, 400)

    def test_longHeadNotKept(self) -> None:
        """
        A head longer than L{MEMO_SIZE} is read and checked anew each time:
        an idle connection does not hold it.
        """
        parser = HeadParser(Limits())
        long = self.HEAD.replace(b"*/*", b"a" * MEMO_SIZE)
        first = parser.feed(long)
        assert first is not None
        parser.next()
        second = parser.feed(long)
        assert second is not None
        self.assertIsNot(second[0], first[0])
        self.assertEqual(second[0], first[0])
