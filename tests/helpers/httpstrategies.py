"""
Hypothesis strategies for valid HTTP requests, and the PEP 3333
native-string check of the environ made from one.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

# RFC 9110 section 5.6.2.
_TCHAR = (
    b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)
# RFC 3986 pchar without pct-encoded, plus "/" between segments.
_PCHAR = (
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@/"
)

tokens = st.binary(min_size=1, max_size=16).map(
    lambda b: bytes(_TCHAR[x % len(_TCHAR)] for x in b)
)
"""
RFC 9110 tokens (methods, field names); C{_} included.
"""

fieldValues = st.lists(
    st.sampled_from([0x09, 0x20, *range(0x21, 0x7F), *range(0x80, 0x100)]),
    max_size=30,
).map(lambda xs: bytes(xs).strip(b" \t"))
"""
RFC 9110 section 5.5 field values: VCHAR, SP, HTAB and obs-text, without
leading or trailing whitespace.
"""

_pieces = st.one_of(
    st.sampled_from([bytes([c]) for c in _PCHAR + b"?"]),
    st.integers(0, 255).map(lambda i: b"%%%02X" % i),
)


@st.composite
def targets(draw: Any, obsText: bool = False) -> bytes:
    """
    An RFC 9112 origin-form or absolute-form request-target.

    @param obsText: also put raw bytes 0x80-0xff in the path, as servers see
        them in practice although RFC 3986 does not allow them.
    """
    path = b"/" + b"".join(draw(st.lists(_pieces, max_size=20))).replace(b"?", b"")
    if obsText and draw(st.booleans()):
        path += bytes(x | 0x80 for x in draw(st.binary(max_size=5)))
    if draw(st.booleans()):
        path += b"?" + b"".join(draw(st.lists(_pieces, max_size=20)))
    if draw(st.booleans()):
        scheme = draw(st.sampled_from([b"http://", b"https://", b"HTTP://"]))
        authority = draw(
            st.sampled_from([b"example.com", b"h:81", b"[::1]:8000", b"127.0.0.1"])
        )
        path = scheme + authority + path
    return path


def assertNativeEnviron(
    case: SynchronousTestCase,
    environ: dict[str, Any],
    method: bytes,
    target: bytes,
    headers: list[tuple[bytes, bytes]],
) -> None:
    """
    Check PEP 3333's native-string rules: every key is a C{str}, every
    string value a C{str} that encodes as latin-1, and the method, target
    and header fields encode back to the bytes received (repeated fields
    joined, names with C{_} dropped).
    """
    for key, value in environ.items():
        case.assertIs(type(key), str)
        if isinstance(value, str):
            case.assertIs(type(value), str, key)
            value.encode("latin-1")
    case.assertEqual(environ["REQUEST_METHOD"].encode("latin-1"), method)
    case.assertEqual(environ["RAW_URI"].encode("latin-1"), target)
    expected: dict[str, list[bytes]] = {}
    for name, value in headers:
        if b"_" in name or name.lower() in (b"content-length", b"host"):
            continue
        key = name.decode("ascii").upper().replace("-", "_")
        key = key if key == "CONTENT_TYPE" else "HTTP_" + key
        expected.setdefault(key, []).append(value)
    for key, values in expected.items():
        joiner = b"; " if key == "HTTP_COOKIE" else b", "
        case.assertEqual(environ[key].encode("latin-1"), joiner.join(values))
    headerKeys = {
        k
        for k in environ
        if k.startswith("HTTP_") and k != "HTTP_HOST" or k == "CONTENT_TYPE"
    }
    case.assertEqual(headerKeys, set(expected))
