"""
Tests for L{twsgi.http.h2head.checkBlock} (the header blocks RFC 9113
sections 8.2 and 8.3 call malformed, which the connection checks itself
instead of C{h2}) and the facts L{twsgi.http.h2head.checkHead} hands out.
"""

from __future__ import annotations

import h2.config
import h2.connection
import h2.exceptions
from hpack import Encoder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from twsgi.http.h2head import MalformedBlock, checkBlock, checkHead, requestFields
from twsgi.http.limits import Limits
from twsgi.http.parse import FramingError

Block = list[tuple[bytes, bytes]]

GOOD: Block = [
    (b":method", b"GET"),
    (b":scheme", b"https"),
    (b":authority", b"localhost"),
    (b":path", b"/"),
]


def _with(*extra: tuple[bytes, bytes]) -> Block:
    return [*GOOD, *extra]


def _without(name: bytes) -> Block:
    return [(n, v) for n, v in GOOD if n != name]


MALFORMED: list[Block] = [
    _with((b"X-Upper", b"v")),
    _with((b"x a", b"v")),
    _with((b"x:a", b"v")),
    _with((b"", b"v")),
    _with((b"x\x7f", b"v")),
    _with((b"x\xe9", b"v")),
    _with((b"x-a", b"a\x00b")),
    _with((b"x-a", b"a\nb")),
    _with((b"x-a", b"a\rb")),
    _with((b"x-a", b" v")),
    _with((b"x-a", b"v\t")),
    _with((b"connection", b"close")),
    _with((b"keep-alive", b"5")),
    _with((b"proxy-connection", b"close")),
    _with((b"transfer-encoding", b"chunked")),
    _with((b"upgrade", b"h2c")),
    _with((b"te", b"gzip")),
    [(b"x-a", b"v"), *GOOD],
    _with((b":path", b"/again")),
    _with((b":status", b"200")),
    _with((b":custom", b"v")),
    _with((b":", b"v")),
    _without(b":method"),
    _without(b":scheme"),
    _without(b":path"),
    _without(b":authority"),
    [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"")]
    + [(b"host", b"localhost")],
    _with((b"host", b"other")),
    _without(b":authority") + [(b"host", b"a"), (b"host", b"a")],
    _with((b":protocol", b"websocket")),
    [(b":method", b"CONNECT"), (b":authority", b"a:443"), (b":path", b"/")],
    [(b":method", b"CONNECT"), (b":authority", b"a:443"), (b":scheme", b"https")],
    [(b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":authority", b"a")],
]
"""
One block for each rule: each is refused by C{h2}'s own checks too.
"""

WELL_FORMED: list[Block] = [
    GOOD,
    _with((b"x-a", b""), (b"x-b", b"a b\tc"), (b"te", b"Trailers")),
    _with((b"host", b"localhost"), (b"cookie", b"a=b")),
    _without(b":authority") + [(b"host", b"localhost")],
    _with((b"x-!#$%&'*+-.^_`|~09", b"\x80\xff visible")),
    [(b":method", b"CONNECT"), (b":authority", b"a:443")],
    [
        (b":method", b"CONNECT"),
        (b":protocol", b"websocket"),
        (b":scheme", b"https"),
        (b":path", b"/chat"),
        (b":authority", b"a"),
    ],
]
"""
Blocks C{h2}'s own checks take.
"""


def _h2Takes(block: Block) -> bool:
    """
    Whether C{h2}'s own checks (C{validate_inbound_headers}) take C{block}
    as the first request of a connection.
    """
    server = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=False, header_encoding=None)
    )
    server.initiate_connection()
    payload = Encoder().encode(block)
    frame = len(payload).to_bytes(3, "big") + b"\x01\x05" + (1).to_bytes(4, "big")
    preface = (
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
    )
    try:
        server.receive_data(preface + frame + payload)
    except h2.exceptions.ProtocolError:
        return False
    return True


class CheckBlockTests(SynchronousTestCase):
    """
    L{checkBlock} refuses what RFC 9113 calls a malformed request, as
    C{h2} did when it checked blocks itself.
    """

    def test_malformed(self) -> None:
        """
        Each rule refuses its block, with a message; C{h2}'s own checks
        refuse the same blocks.
        """
        for block in MALFORMED:
            with self.subTest(block=block):
                with self.assertRaises(MalformedBlock) as caught:
                    checkBlock(block)
                self.assertTrue(str(caught.exception))
                self.assertFalse(_h2Takes(block))

    def test_wellFormed(self) -> None:
        """
        Blocks within the rules pass, as they pass C{h2}'s own checks.
        """
        for block in WELL_FORMED:
            with self.subTest(block=block):
                checkBlock(block)
                self.assertTrue(_h2Takes(block))

    def test_trailers(self) -> None:
        """
        A trailer block may hold no pseudo-header field, and its fields obey
        the same rules; it needs none of a request's pseudo-header fields.
        """
        checkBlock([(b"x-checksum", b"abc")], trailers=True)
        checkBlock([(b"host", b"a"), (b"host", b"b")], trailers=True)
        for block in [
            [(b":path", b"/")],
            [(b"x-a", b"v"), (b":method", b"GET")],
            [(b"X-Upper", b"v")],
            [(b"x-a", b"a\nb")],
            [(b"connection", b"close")],
            [(b"te", b"gzip")],
        ]:
            with self.subTest(block=block):
                self.assertRaises(MalformedBlock, checkBlock, block, trailers=True)

    @settings(
        max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(
        st.lists(
            st.tuples(
                st.sampled_from(
                    [
                        b":method",
                        b":scheme",
                        b":path",
                        b":authority",
                        b":protocol",
                        b":status",
                        b"host",
                        b"te",
                        b"connection",
                        b"x-a",
                        b"X-a",
                        b"x:a",
                        b"",
                    ]
                ),
                st.sampled_from(
                    [b"GET", b"CONNECT", b"https", b"/", b"", b"a", b"b", b"trailers"]
                    + [b" a", b"a\t", b"a\x00", b"a\rb", b"1"]
                ),
            ),
            max_size=8,
        )
    )
    def test_asH2(self, block: Block) -> None:
        """
        Any block is refused exactly when C{h2}'s own checks refuse it.
        """
        try:
            checkBlock(block)
        except MalformedBlock:
            refused = True
        else:
            refused = False
        self.assertEqual(refused, not _h2Takes(block))


class CheckHeadFactsTests(SynchronousTestCase):
    """
    L{checkHead} hands out, with the head's facts, the fields as an
    HTTP/1.1 request has them and whether it asks for C{100 Continue}.
    """

    def test_fields(self) -> None:
        """
        The fields are those of the block, in order, without the
        pseudo-header fields but C{:authority}, which becomes C{host}: what
        L{requestFields} makes of the block.
        """
        block = [
            (b":method", b"POST"),
            (b":scheme", b"https"),
            (b":authority", b"example.com"),
            (b":path", b"/a?b"),
            (b"x-a", b"1"),
            (b"content-length", b"0"),
            (b"x-a", b"2"),
        ]
        head = checkHead(block, Limits())
        self.assertEqual(
            head.fields,
            (
                (b"host", b"example.com"),
                (b"x-a", b"1"),
                (b"content-length", b"0"),
                (b"x-a", b"2"),
            ),
        )
        self.assertEqual(head.fields, requestFields(block))
        self.assertFalse(head.expectContinue)

    def test_absoluteFormPath(self) -> None:
        """
        A C{:path} that is a whole URI (the absolute form HTTP/1.1 takes),
        whose host is not the C{:authority}, gets 400 (RFC 9113 section
        8.3.1); C{*} for C{OPTIONS} and a path are taken.
        """
        for path in [b"http://other.example/p", b"https://localhost/"]:
            block = [(n, path if n == b":path" else v) for n, v in GOOD]
            error = self.assertRaises(FramingError, checkHead, block, Limits())
            self.assertEqual(error.status, 400, path)
        options = [(b":method", b"OPTIONS"), *GOOD[1:3], (b":path", b"*")]
        self.assertEqual(checkHead(options, Limits()).path, b"*")
        self.assertEqual(checkHead(GOOD, Limits()).path, b"/")

    def test_fragmentInPath(self) -> None:
        """
        A C{:path} with a fragment gets 400, as an HTTP/1.1 request target
        with one does: RFC 9113 section 8.3.1 gives it the path and query
        of the target URI only.
        """
        block = [(n, b"/a#/../admin" if n == b":path" else v) for n, v in GOOD]
        error = self.assertRaises(FramingError, checkHead, block, Limits())
        self.assertEqual(
            (error.status, error.reason), (400, "a fragment (#) in the request target")
        )

    def test_cookieCrumbs(self) -> None:
        """
        C{cookie} fields (the crumbs of one C{Cookie}, which browsers send
        one cookie each, RFC 9113 section 8.2.3) count as one field towards
        the field limit, as the one line they are joined into; other fields
        beyond it get 431.
        """
        crumbs = [(b"cookie", b"c%d=1" % n) for n in range(150)]
        head = checkHead(_with(*crumbs), Limits())
        self.assertEqual(head.fields[1:], tuple(crumbs))
        many = [(b"x-%d" % n, b"1") for n in range(150)]
        error = self.assertRaises(FramingError, checkHead, _with(*many), Limits())
        self.assertEqual(error.status, 431)
        limits = Limits(maxHeaderBytes=1024)
        error = self.assertRaises(FramingError, checkHead, _with(*crumbs), limits)
        self.assertEqual(error.status, 431)

    def test_expectContinue(self) -> None:
        """
        C{expect: 100-continue}, in any case, asks for C{100 Continue};
        another expectation does not.
        """
        for value, expected in [
            (b"100-continue", True),
            (b"100-Continue", True),
            (b"something", False),
        ]:
            with self.subTest(value=value):
                head = checkHead(_with((b"expect", value)), Limits())
                self.assertEqual(head.expectContinue, expected)
