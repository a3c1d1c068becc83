# -*- test-case-name: tests.http.test_parse -*-
"""
Tests for L{twsgi.http.parse.ChunkedDecoder}, fed directly: the
connection-level behaviour is in L{tests.http.test_parse_corpus}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from twsgi.http.limits import Limits
from twsgi.http.parse import ChunkedDecoder, ChunkState, FramingError


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

    def test_missingCRLF(self) -> None:
        """
        Chunk data not followed by CRLF is a 400.
        """
        decoder = ChunkedDecoder(Limits())
        error = self.assertRaises(FramingError, decoder.feed, b"1\r\naXY")
        self.assertEqual(error.status, 400)
