"""
Hypothesis fuzzing of the strict channel with random and mutated requests.

Each example is fed, in random pieces, to a real L{twsgi.server.site.TwsgiSite}
channel over an in-memory transport with a fake clock; then the clock runs
past every timeout.  The server must never raise, never leave the connection
open past its timeouts, never answer with a 5xx other than 501/505 (which
framing itself gives), and hand the application only well-formed requests,
one per 200 response.
"""

from __future__ import annotations

import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.rawhttp import connect
from twsgi.http.limits import Limits
from twsgi.server.http1 import LINGER
from twsgi.testing import parseResponses

LIMITS = Limits(
    maxRequestLine=200,
    maxHeaderField=200,
    maxHeaderCount=10,
    maxHeaderBytes=600,
    maxBody=100,
    headerTimeout=5,
    keepAliveTimeout=3,
    bodyTimeout=4,
)

SEEDS = [
    b"GET /a?b=c HTTP/1.1\r\nHost: example.com\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
    b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"3;x=y\r\nabc\r\n0\r\nT: v\r\n\r\n",
    b"GET http://a.example:81/x HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n",
    b"OPTIONS * HTTP/1.0\r\n\r\n",
    b"PUT /u HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
]
INTERESTING = [
    b"\r",
    b"\n",
    b"\x00",
    b" ",
    b"\t",
    b":",
    b",",
    b";",
    b"\x7f",
    b"\xff",
    b"0",
    b"a",
]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_ALLOWED = {100, 200, 400, 408, 413, 414, 431, 501, 505}


@st.composite
def mutated(draw: Any) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["insert", "delete", "replace", "duplicate"]))
        at = draw(st.integers(0, len(data)))
        if kind == "insert":
            data[at:at] = draw(
                st.sampled_from(INTERESTING) | st.binary(min_size=1, max_size=3)
            )
        elif kind == "delete" and data:
            del data[at : at + draw(st.integers(1, 3))]
        elif kind == "replace" and at < len(data):
            data[at : at + 1] = draw(st.sampled_from(INTERESTING))
        elif kind == "duplicate":
            lines = data.split(b"\r\n")
            index = draw(st.integers(0, len(lines) - 1))
            lines.insert(index, lines[index])
            data = bytearray(b"\r\n".join(lines))
    return bytes(data)


requests = st.lists(mutated() | st.binary(max_size=200), min_size=1, max_size=3).map(
    b"".join
)


def _wellFormed(seen: dict[str, Any]) -> bool:
    return (
        bool(_TOKEN.match(seen["REQUEST_METHOD"]))
        and seen["SERVER_PROTOCOL"] in ("HTTP/1.0", "HTTP/1.1")
        # RFC 9110 section 5.5: a field value may hold HTAB, and no other
        # control byte.
        and not re.search(
            r"[\x00-\x08\x0a-\x1f\x7f]",
            "".join(str(v) for k, v in seen.items() if k.startswith("HTTP_")),
        )
        and seen["REQUEST_METHOD"] != "CONNECT"
        and len(seen["body"]) <= LIMITS.maxBody
    )


class FuzzTests(SynchronousTestCase):
    """
    Random and mutated requests.
    """

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=requests, cuts=st.lists(st.integers(1, 64), max_size=8))
    def test_neverMisbehaves(self, data: bytes, cuts: list[int]) -> None:
        """
        Whatever arrives, in whatever pieces: no exception, no hang past the
        timeouts, no 5xx but 501/505, and only well-formed requests reach the
        application, one per 200 response.
        """
        protocol, transport, clock, app = connect(LIMITS)
        position = 0
        for cut in cuts:
            protocol.dataReceived(data[position : position + cut])
            position += cut
        protocol.dataReceived(data[position:])
        clock.advance(
            LIMITS.headerTimeout
            + LIMITS.bodyTimeout
            + LIMITS.keepAliveTimeout
            + LINGER
            + 1
        )
        clock.advance(LIMITS.keepAliveTimeout + 1)
        self.assertTrue(transport.disconnecting, f"left open: {data!r}")
        responses = parseResponses(transport.value())
        statuses = [r.code for r in responses]
        self.assertTrue(set(statuses) <= _ALLOWED, (statuses, data))
        self.assertEqual(statuses.count(200), len(app.seen), data)
        for seen in app.seen:
            self.assertTrue(_wellFormed(seen), (seen, data))
        self.assertEqual(self.flushLoggedErrors(), [])
