"""
Tests for L{twsgi.wsgi.response}: the pure C{start_response} state machine.
"""

from __future__ import annotations

import sys
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from twsgi.wsgi.response import (
    BodyTooLong,
    ResponseError,
    ResponseHead,
    ResponseState,
    parseHeaders,
    parseStatus,
)


def _excInfo(exception: BaseException) -> Any:
    """
    The C{sys.exc_info()} of C{exception}, raised and caught.
    """
    try:
        raise exception
    except BaseException:
        return sys.exc_info()


class StatusTests(SynchronousTestCase):
    """
    L{parseStatus} accepts three digits and a clean reason phrase only.
    """

    def test_valid(self) -> None:
        """
        Valid statuses give their code and reason bytes.
        """
        table = [
            ("200 OK", (200, b"OK")),
            ("404 Not Found", (404, b"Not Found")),
            ("599 Custom\tReason", (599, b"Custom\tReason")),
            ("200 Caf\xe9", (200, b"Caf\xe9")),
            ("204 ", (204, b"")),
        ]
        for status, expected in table:
            self.assertEqual(parseStatus(status), expected, status)

    def test_invalid(self) -> None:
        """
        A status with a control character, without three digits, with a code
        out of range or not a latin-1 C{str} raises L{ResponseError}.
        """
        for status in [
            "200 OK\n",
            "200 OK\r\nSet-Cookie: a=b",
            "200 O\x00K",
            "200 OK\x7f",
            "20 OK",
            "2000 OK",
            "abc OK",
            "099 Low",
            "600 High",
            "100 Continue",
            "101 Switching Protocols",
            "199 Interim",
            " 200 OK",
            "200\tOK",
            "200 \u2603",
            b"200 OK",
            200,
            None,
        ]:
            self.assertRaises(ResponseError, parseStatus, status)

    def test_messageNamesStatus(self) -> None:
        """
        The error names the bad status in a form safe to log (its C{repr}).
        """
        error = self.assertRaises(ResponseError, parseStatus, "200 OK\r\nX: y")
        self.assertIn(repr("200 OK\r\nX: y"), str(error))
        self.assertNotIn("\n", str(error))


class HeaderTests(SynchronousTestCase):
    """
    L{parseHeaders} checks names and values and takes out framing fields.
    """

    def test_valid(self) -> None:
        """
        Valid headers are returned as bytes, in order, with values stripped.
        """
        self.assertEqual(
            parseHeaders(
                [
                    ("Content-Type", "text/plain"),
                    ("X-Tab", "a\tb"),
                    ("Set-Cookie", "a=1"),
                    ("Set-Cookie", "b=2"),
                    ("X-Latin", "caf\xe9"),
                    ("X-Pad", "  v  "),
                ]
            ),
            (
                (
                    (b"Content-Type", b"text/plain"),
                    (b"X-Tab", b"a\tb"),
                    (b"Set-Cookie", b"a=1"),
                    (b"Set-Cookie", b"b=2"),
                    (b"X-Latin", b"caf\xe9"),
                    (b"X-Pad", b"v"),
                ),
                None,
                False,
            ),
        )

    def test_strSubclasses(self) -> None:
        """
        A status, header name or value of a subclass of C{str} (Django's
        C{SafeString} from C{format_html}, say) is a native string too, and
        is accepted.
        """

        class SafeString(str):
            pass

        self.assertEqual(parseStatus(SafeString("200 OK")), (200, b"OK"))
        self.assertEqual(
            parseHeaders([(SafeString("X-A"), SafeString('attachment; f="a"'))]),
            (((b"X-A", b'attachment; f="a"'),), None, False),
        )

    def test_badNames(self) -> None:
        """
        A header name that is not a token raises L{ResponseError}.
        """
        for name in ["", "X Y", "X:Y", "X\r\nY", "X-\xe9", "(x)", "X\x00"]:
            self.assertRaises(ResponseError, parseHeaders, [(name, "v")])

    def test_badValues(self) -> None:
        """
        A value with CR, LF, NUL or another control character raises
        L{ResponseError}, and the error does not carry a raw CR or LF.
        """
        for value in [
            "a\rb",
            "a\nb",
            "a\r\nSet-Cookie: x",
            "a\x00",
            "\x7f",
            "\x1b[31m",
        ]:
            error = self.assertRaises(ResponseError, parseHeaders, [("X-V", value)])
            self.assertNotIn("\n", str(error))
            self.assertNotIn("\r", str(error))

    def test_badShapes(self) -> None:
        """
        Headers that are not a list of C{(str, str)} tuples, or text that is
        not latin-1, raise L{ResponseError}.
        """
        for headers in [
            (("X", "y"),),
            [["X", "y"]],
            [("X", "y", "z")],
            [(b"X", "y")],
            [("X", b"y")],
            [("X", 1)],
            [("X", "\u2603")],
            None,
        ]:
            self.assertRaises(ResponseError, parseHeaders, headers)

    def test_hopByHop(self) -> None:
        """
        Hop-by-hop fields are removed; C{Connection: close} is noted.
        """
        headers, length, close = parseHeaders(
            [
                ("Connection", "Close"),
                ("Keep-Alive", "timeout=5"),
                ("Transfer-Encoding", "chunked"),
                ("TE", "trailers"),
                ("Trailer", "X"),
                ("Upgrade", "h2c"),
                ("Proxy-Connection", "keep-alive"),
                ("X-Kept", "1"),
            ]
        )
        self.assertEqual((headers, length, close), (((b"X-Kept", b"1"),), None, True))
        self.assertFalse(parseHeaders([("Connection", "keep-alive")])[2])

    def test_contentLength(self) -> None:
        """
        C{Content-Length} is read; a repeated equal one is sent once; a bad or
        conflicting one raises L{ResponseError}.
        """
        self.assertEqual(
            parseHeaders([("Content-Length", " 12 ")]),
            (((b"Content-Length", b"12"),), 12, False),
        )
        self.assertEqual(
            parseHeaders([("Content-Length", "3"), ("content-length", "3")]),
            (((b"Content-Length", b"3"),), 3, False),
        )
        for bad in [
            [("Content-Length", "-1")],
            [("Content-Length", "1.5")],
            [("Content-Length", "")],
            [("Content-Length", "1, 1")],
            [("Content-Length", "\xb2")],
            [("Content-Length", "3"), ("Content-Length", "4")],
        ]:
            self.assertRaises(ResponseError, parseHeaders, bad)


class ResponseStateTests(SynchronousTestCase):
    """
    L{ResponseState} follows PEP 3333's rules for one response.
    """

    def test_startResponse(self) -> None:
        """
        C{start_response} records the head; nothing is committed yet.
        """
        state = ResponseState(b"GET")
        state.startResponse("201 Created", [("Location", "/x")])
        self.assertEqual(
            state.head, ResponseHead(201, b"Created", ((b"Location", b"/x"),), None)
        )
        self.assertFalse(state.committed)
        self.assertTrue(state.bodyAllowed)

    def test_badStatusLeavesNoHead(self) -> None:
        """
        A rejected C{start_response} records nothing, so nothing bad can be
        committed.
        """
        state = ResponseState(b"GET")
        self.assertRaises(ResponseError, state.startResponse, "200 OK\r\n", [])
        self.assertRaises(ResponseError, state.startResponse, "200 OK", [("X", "\n")])
        self.assertIsNone(state.head)
        self.assertRaises(ResponseError, state.commit)

    def test_secondCallWithoutExcInfo(self) -> None:
        """
        A second C{start_response} without C{exc_info} raises
        L{ResponseError} and keeps the first head.
        """
        state = ResponseState(b"GET")
        state.startResponse("200 OK", [])
        self.assertRaises(ResponseError, state.startResponse, "500 Oops", [])
        assert state.head is not None
        self.assertEqual(state.head.code, 200)

    def test_excInfoBeforeCommit(self) -> None:
        """
        C{start_response} with C{exc_info} before the head is committed
        replaces the status and headers.
        """
        state = ResponseState(b"GET")
        state.startResponse("200 OK", [("X-A", "1")])
        state.startResponse(
            "500 Internal Server Error",
            [("X-B", "2")],
            _excInfo(ValueError("x")),
        )
        self.assertEqual(
            state.head,
            ResponseHead(500, b"Internal Server Error", ((b"X-B", b"2"),), None),
        )

    def test_excInfoFirstCall(self) -> None:
        """
        C{exc_info} on the first call is allowed.
        """
        state = ResponseState(b"GET")
        state.startResponse("503 Busy", [], _excInfo(ValueError("x")))
        assert state.head is not None
        self.assertEqual(state.head.code, 503)

    def test_excInfoAfterCommit(self) -> None:
        """
        C{start_response} with C{exc_info} after the head is committed
        re-raises that exception, with its traceback, and the head stays.
        """
        state = ResponseState(b"GET")
        state.startResponse("200 OK", [])
        head = state.commit()
        info = _excInfo(KeyError("boom"))
        raised = self.assertRaises(KeyError, state.startResponse, "500 Oops", [], info)
        self.assertIs(raised, info[1])
        frames = []
        tb = raised.__traceback__
        while tb is not None:
            frames.append(tb.tb_frame)
            tb = tb.tb_next
        self.assertIn(info[2].tb_frame, frames)
        self.assertIs(state.head, head)

    def test_commitAddsLength(self) -> None:
        """
        C{commit(length)} adds C{Content-Length} when the application gave
        none.
        """
        state = ResponseState(b"GET")
        state.startResponse("200 OK", [("Content-Type", "text/plain")])
        head = state.commit(5)
        self.assertEqual(
            head.headers,
            ((b"Content-Type", b"text/plain"), (b"Content-Length", b"5")),
        )
        self.assertEqual(head.contentLength, 5)
        self.assertTrue(state.committed)

    def test_commitKeepsAppLength(self) -> None:
        """
        C{commit(length)} keeps the application's own C{Content-Length}.
        """
        state = ResponseState(b"GET")
        state.startResponse("200 OK", [("Content-Length", "9")])
        head = state.commit(5)
        self.assertEqual(head.headers, ((b"Content-Length", b"9"),))
        self.assertEqual(head.contentLength, 9)

    def test_commitWithoutLength(self) -> None:
        """
        C{commit()} with no length adds no C{Content-Length}.
        """
        state = ResponseState(b"GET")
        state.startResponse("200 OK", [])
        self.assertEqual(state.commit().headers, ())

    def test_commitNoBodyStatus(self) -> None:
        """
        No C{Content-Length} is added to a 204 or 304 response.
        """
        for status in ["204 No Content", "304 Not Modified"]:
            state = ResponseState(b"GET")
            state.startResponse(status, [])
            self.assertEqual(state.commit(0).headers, (), status)

    def test_noContentLengthOn204(self) -> None:
        """
        An application's C{Content-Length} on a 204 is dropped (RFC 9110
        section 8.6); on a 304 it is kept, since it describes the
        representation.
        """
        state = ResponseState(b"GET")
        state.startResponse("204 No Content", [("Content-Length", "0"), ("X", "1")])
        self.assertEqual(state.commit().headers, ((b"X", b"1"),))
        state = ResponseState(b"GET")
        state.startResponse("304 Not Modified", [("Content-Length", "12")])
        self.assertEqual(state.commit().headers, ((b"Content-Length", b"12"),))

    def test_commitHead(self) -> None:
        """
        A HEAD response gets the C{Content-Length} a GET would have.
        """
        state = ResponseState(b"HEAD")
        state.startResponse("200 OK", [])
        self.assertEqual(state.commit(7).headers, ((b"Content-Length", b"7"),))

    def test_commitBeforeStart(self) -> None:
        """
        Committing before C{start_response} raises L{ResponseError}.
        """
        self.assertRaises(ResponseError, ResponseState(b"GET").commit)

    def test_acceptBeforeStart(self) -> None:
        """
        A body chunk before C{start_response} raises L{ResponseError}.
        """
        self.assertRaises(ResponseError, ResponseState(b"GET").accept, b"x")

    def test_accept(self) -> None:
        """
        Body chunks are returned as bytes and counted.
        """
        state = ResponseState(b"GET")
        state.startResponse("200 OK", [])
        self.assertEqual(state.accept(b"ab"), b"ab")
        self.assertEqual(state.accept(bytearray(b"cd")), b"cd")
        self.assertEqual(state.accept(memoryview(b"e")), b"e")
        self.assertEqual(state.sent, 5)

    def test_acceptNotBytes(self) -> None:
        """
        A body chunk that is not bytes raises L{ResponseError}.
        """
        state = ResponseState(b"GET")
        state.startResponse("200 OK", [])
        for chunk in ["text", 1, None, [b"x"]]:
            self.assertRaises(ResponseError, state.accept, chunk)

    def test_noBodyDropped(self) -> None:
        """
        For HEAD, 204 and 304 the body is dropped.
        """
        for method, status in [
            (b"HEAD", "200 OK"),
            (b"GET", "204 No Content"),
            (b"GET", "304 Not Modified"),
        ]:
            state = ResponseState(method)
            state.startResponse(status, [])
            self.assertFalse(state.bodyAllowed)
            self.assertEqual(state.accept(b"body"), b"")
            self.assertEqual(state.shortfall(), 0)

    def test_excInfoAfterTakeBack(self) -> None:
        """
        A committed head the server took back (none of it was sent) is
        replaced by C{start_response} with C{exc_info}, and the new body is
        counted against the new head alone.
        """
        state = ResponseState(b"GET")
        state.startResponse("200 OK", [("Content-Length", "5")])
        state.commit()
        self.assertEqual(state.accept(b"hello"), b"hello")
        state.takeBack()
        self.assertFalse(state.committed)
        state.startResponse(
            "500 Oops", [("Content-Length", "7")], _excInfo(ValueError("x"))
        )
        self.assertEqual(state.accept(b"failed!"), b"failed!")
        self.assertEqual(state.shortfall(), 0)
        assert state.head is not None
        self.assertEqual((state.head.code, state.head.contentLength), (500, 7))

    def test_excInfoChangesBodyAllowed(self) -> None:
        """
        Replacing a 204 head with a 500 one allows a body again.
        """
        state = ResponseState(b"GET")
        state.startResponse("204 No Content", [])
        state.startResponse("500 Oops", [], _excInfo(ValueError()))
        self.assertTrue(state.bodyAllowed)

    def test_tooLong(self) -> None:
        """
        A chunk that goes past its C{Content-Length} raises L{BodyTooLong},
        a L{ResponseError} that holds the part of it that fits; none of the
        chunk is counted as sent.
        """
        state = ResponseState(b"GET")
        state.startResponse("200 OK", [("Content-Length", "3")])
        self.assertEqual(state.accept(b"ab"), b"ab")
        error = self.assertRaises(BodyTooLong, state.accept, b"cd")
        self.assertIsInstance(error, ResponseError)
        self.assertEqual(error.fits, b"c")
        self.assertEqual(state.sent, 2)
        self.assertEqual(state.shortfall(), 1)

    def test_shortfall(self) -> None:
        """
        L{ResponseState.shortfall} is how many declared bytes are missing.
        """
        state = ResponseState(b"GET")
        self.assertEqual(state.shortfall(), 0)
        state.startResponse("200 OK", [("Content-Length", "5")])
        self.assertEqual(state.shortfall(), 5)
        state.accept(b"abc")
        self.assertEqual(state.shortfall(), 2)
        state.accept(b"de")
        self.assertEqual(state.shortfall(), 0)

    def test_shortfallWithoutLength(self) -> None:
        """
        Without a C{Content-Length} nothing can fall short.
        """
        state = ResponseState(b"GET")
        state.startResponse("200 OK", [])
        self.assertEqual(state.shortfall(), 0)


class NeverUnsafePropertyTests(SynchronousTestCase):
    """
    Whatever an application passes to C{start_response}, what is accepted
    is safe to put on the wire.
    """

    @settings(
        max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(
        status=st.text(max_size=12),
        headers=st.lists(
            st.tuples(st.text(max_size=8), st.text(max_size=12)), max_size=4
        ),
    )
    def test_acceptedIsSafe(self, status: str, headers: list[tuple[str, str]]) -> None:
        """
        Either L{ResponseError} is raised, or the status is a final code
        with a reason free of CR, LF and NUL, and every header name is a
        token and every value free of CR, LF and NUL.
        """
        state = ResponseState(b"GET")
        try:
            state.startResponse(status, headers)
        except ResponseError:
            self.assertIsNone(state.head)
            return
        head = state.commit()
        self.assertTrue(200 <= head.code <= 599)
        for text in [head.reason, *(v for _, v in head.headers)]:
            self.assertEqual(set(text) & {0x0D, 0x0A, 0x00}, set(), text)
        for name, _ in head.headers:
            self.assertRegex(name, rb"\A[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")

    @settings(
        max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(
        status=st.sampled_from(["200 OK", "404 Not Found"]),
        name=st.sampled_from(["X-A", "Set-Cookie", "Content-Type"]),
        value=st.text(st.characters(min_codepoint=0, max_codepoint=0xFF), max_size=20),
    )
    def test_latin1Values(self, status: str, name: str, value: str) -> None:
        """
        A latin-1 value is accepted exactly when it has no control character
        other than HTAB, and is then sent as its latin-1 bytes, stripped.
        """
        state = ResponseState(b"GET")
        bad = any(c < " " and c != "\t" or c == "\x7f" for c in value)
        if bad:
            self.assertRaises(
                ResponseError, state.startResponse, status, [(name, value)]
            )
        else:
            state.startResponse(status, [(name, value)])
            assert state.head is not None
            self.assertEqual(
                state.head.headers, ((name.encode(), value.encode("latin-1").strip()),)
            )
