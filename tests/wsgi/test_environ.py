"""
Tests for L{twsgi.wsgi.environ}: request facts in, a PEP 3333 environ out.
"""

from __future__ import annotations

import io
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.httpstrategies import (
    assertNativeEnviron,
    fieldValues,
    targets,
    tokens,
)
from twsgi.wsgi.environ import RequestFacts, buildEnviron, splitTarget

_INPUT = io.BytesIO(b"")
_ERRORS = object()
_WRAPPER = object()


def environFor(**kwargs: Any) -> dict[str, Any]:
    """
    Build the environ of a request made of C{kwargs} (fields of
    L{RequestFacts}; the method defaults to C{GET} and the target to C{/}).
    """
    kwargs.setdefault("method", b"GET")
    kwargs.setdefault("target", b"/")
    return buildEnviron(RequestFacts(**kwargs), _INPUT, _ERRORS, _WRAPPER)


class CompletenessTests(SynchronousTestCase):
    """
    Every key PEP 3333 asks for is there, with the right value.
    """

    def test_fullRequest(self) -> None:
        """
        A typical request gives every CGI and C{wsgi.*} key PEP 3333 lists,
        plus C{REMOTE_PORT}, C{RAW_URI} and C{REQUEST_URI}.
        """
        body = io.BytesIO(b"hello")
        environ = buildEnviron(
            RequestFacts(
                method=b"POST",
                target=b"/a%20b/c?x=1&y=%20",
                version=b"HTTP/1.1",
                headers=(
                    (b"Host", b"example.com:8080"),
                    (b"Content-Type", b"text/plain"),
                    (b"Content-Length", b"5"),
                    (b"User-Agent", b"test/1"),
                ),
                remoteAddr="10.0.0.1",
                remotePort=4321,
                serverName="127.0.0.1",
                serverPort=8000,
                contentLength=5,
            ),
            body,
            _ERRORS,
            _WRAPPER,
        )
        self.assertEqual(
            environ,
            {
                "REQUEST_METHOD": "POST",
                "SCRIPT_NAME": "",
                "PATH_INFO": "/a b/c",
                "QUERY_STRING": "x=1&y=%20",
                "CONTENT_TYPE": "text/plain",
                "CONTENT_LENGTH": "5",
                "SERVER_NAME": "example.com",
                "SERVER_PORT": "8080",
                "SERVER_PROTOCOL": "HTTP/1.1",
                "HTTP_HOST": "example.com:8080",
                "HTTP_USER_AGENT": "test/1",
                "REMOTE_ADDR": "10.0.0.1",
                "REMOTE_PORT": "4321",
                "RAW_URI": "/a%20b/c?x=1&y=%20",
                "REQUEST_URI": "/a%20b/c?x=1&y=%20",
                "wsgi.version": (1, 0),
                "wsgi.url_scheme": "http",
                "wsgi.input": body,
                "wsgi.errors": _ERRORS,
                "wsgi.multithread": True,
                "wsgi.multiprocess": False,
                "wsgi.run_once": False,
                "wsgi.input_terminated": True,
                "wsgi.file_wrapper": _WRAPPER,
            },
        )

    def test_multiprocess(self) -> None:
        """
        C{wsgi.multiprocess} says what the caller says.
        """
        environ = buildEnviron(
            RequestFacts(method=b"GET", target=b"/"),
            _INPUT,
            _ERRORS,
            _WRAPPER,
            multiprocess=True,
        )
        self.assertIs(environ["wsgi.multiprocess"], True)

    def test_httpsScheme(self) -> None:
        """
        C{wsgi.url_scheme} is the scheme of the listener.
        """
        self.assertEqual(environFor(scheme="https")["wsgi.url_scheme"], "https")

    def test_noRemotePort(self) -> None:
        """
        Without a client port (a UNIX socket) there is no C{REMOTE_PORT}, and
        C{REMOTE_ADDR} is empty.
        """
        environ = environFor()
        self.assertNotIn("REMOTE_PORT", environ)
        self.assertEqual(environ["REMOTE_ADDR"], "")

    def test_extra(self) -> None:
        """
        Extra entries of the facts are added to the environ.
        """
        environ = environFor(extra={"SSL_CLIENT_S_DN": "CN=me"})
        self.assertEqual(environ["SSL_CLIENT_S_DN"], "CN=me")

    def test_http10(self) -> None:
        """
        C{SERVER_PROTOCOL} is the request's version.
        """
        self.assertEqual(environFor(version=b"HTTP/1.0")["SERVER_PROTOCOL"], "HTTP/1.0")


class PathTests(SynchronousTestCase):
    """
    C{PATH_INFO}, C{QUERY_STRING} and C{SCRIPT_NAME}.
    """

    def test_table(self) -> None:
        """
        C{PATH_INFO} is percent-decoded and read as latin-1, C{QUERY_STRING}
        is left as received, and C{RAW_URI} is the target as received.
        """
        table = [
            (b"/", "/", ""),
            (b"/a/b", "/a/b", ""),
            (b"/a?", "/a", ""),
            (b"/a?b=c?d", "/a", "b=c?d"),
            (b"/%41%42", "/AB", ""),
            (b"/%2Fx", "//x", ""),
            (b"/caf%C3%A9", "/caf\xc3\xa9", ""),
            (b"/caf\xc3\xa9", "/caf\xc3\xa9", ""),
            (b"/%zz", "/%zz", ""),
            (b"/a%", "/a%", ""),
            (b"/?q=%C3%A9", "/", "q=%C3%A9"),
            (b"/?q=\xe9", "/", "q=\xe9"),
            (b"*", "*", ""),
        ]
        for target, path, query in table:
            environ = environFor(target=target)
            self.assertEqual(
                (environ["PATH_INFO"], environ["QUERY_STRING"], environ["RAW_URI"]),
                (path, query, target.decode("latin-1")),
                target,
            )

    def test_scriptName(self) -> None:
        """
        The mount point is C{SCRIPT_NAME} and is removed from the front of
        C{PATH_INFO}, only at a segment boundary.
        """
        table = [
            ("/app", b"/app", "/app", ""),
            ("/app", b"/app/", "/app", "/"),
            ("/app", b"/app/x/y?z", "/app", "/x/y"),
            ("/app", b"/ap%70/x", "/app", "/x"),
            ("/app", b"/apple", "/app", "/apple"),
        ]
        for scriptName, target, expectedScript, expectedPath in table:
            environ = environFor(target=target, scriptName=scriptName)
            self.assertEqual(
                (environ["SCRIPT_NAME"], environ["PATH_INFO"]),
                (expectedScript, expectedPath),
                target,
            )

    def test_splitTarget(self) -> None:
        """
        L{splitTarget} finds the authority of the absolute form and the path
        and query of both forms.
        """
        table = [
            (b"/a?b", (None, b"/a", b"b")),
            (b"http://h:1/a?b", (b"h:1", b"/a", b"b")),
            (b"HTTPS://h/a", (b"h", b"/a", b"")),
            (b"http://h", (b"h", b"/", b"")),
            (b"http://h?x=1", (b"h", b"/", b"x=1")),
            (b"http://[::1]:80/p", (b"[::1]:80", b"/p", b"")),
        ]
        for target, expected in table:
            self.assertEqual(splitTarget(target), expected, target)

    def test_absoluteForm(self) -> None:
        """
        An absolute-form target's authority replaces the C{Host} header (RFC
        9112 section 3.2.2), and its path and query are used as usual.
        """
        environ = environFor(
            target=b"http://example.org:81/p%20q?x=1",
            headers=((b"Host", b"other.example"),),
        )
        self.assertEqual(
            (
                environ["HTTP_HOST"],
                environ["SERVER_NAME"],
                environ["SERVER_PORT"],
                environ["PATH_INFO"],
                environ["QUERY_STRING"],
                environ["RAW_URI"],
            ),
            (
                "example.org:81",
                "example.org",
                "81",
                "/p q",
                "x=1",
                "http://example.org:81/p%20q?x=1",
            ),
        )


class ServerNameTests(SynchronousTestCase):
    """
    C{SERVER_NAME} and C{SERVER_PORT} come from C{Host}, else the listener.
    """

    def test_table(self) -> None:
        """
        The host and port of the C{Host} header, including an IPv6 literal,
        with the scheme's default port when it names none.
        """
        table = [
            (b"example.com", "http", ("example.com", "80")),
            (b"example.com", "https", ("example.com", "443")),
            (b"example.com:8000", "http", ("example.com", "8000")),
            (b"[::1]:8000", "http", ("::1", "8000")),
            (b"[::1]", "https", ("::1", "443")),
            (b"127.0.0.1:81", "http", ("127.0.0.1", "81")),
        ]
        for host, scheme, expected in table:
            environ = environFor(headers=((b"Host", host),), scheme=scheme)
            self.assertEqual(
                (environ["SERVER_NAME"], environ["SERVER_PORT"]), expected, host
            )

    def test_noHost(self) -> None:
        """
        Without a C{Host} header (HTTP/1.0), the listener's address is used.
        """
        environ = environFor(serverName="::1", serverPort=8443, version=b"HTTP/1.0")
        self.assertEqual(
            (environ["SERVER_NAME"], environ["SERVER_PORT"]), ("::1", "8443")
        )
        self.assertNotIn("HTTP_HOST", environ)

    def test_hostWithoutName(self) -> None:
        """
        A C{Host} that names a port but no host (C{:8000}, which the
        grammar allows) leaves C{SERVER_NAME} the listener's, never empty
        (PEP 3333), and C{SERVER_PORT} the port it names.
        """
        environ = environFor(headers=((b"Host", b":8000"),), serverName="::1")
        self.assertEqual(
            (environ["SERVER_NAME"], environ["SERVER_PORT"], environ["HTTP_HOST"]),
            ("::1", "8000", ":8000"),
        )

    def test_noHostNoPort(self) -> None:
        """
        Without a C{Host} header and a listener port (a UNIX socket), the
        scheme's default port is used.
        """
        environ = environFor(serverName="localhost", scheme="https")
        self.assertEqual(environ["SERVER_PORT"], "443")


class HeaderTests(SynchronousTestCase):
    """
    Request headers become C{HTTP_*}, C{CONTENT_TYPE} and C{CONTENT_LENGTH}.
    """

    def test_names(self) -> None:
        """
        A header name is upper-cased with dashes as underscores and prefixed
        with C{HTTP_}; C{Content-Type} and C{Content-Length} are not.
        """
        environ = environFor(
            headers=(
                (b"x-request-id", b"abc"),
                (b"Accept-Encoding", b"gzip"),
                (b"content-type", b"application/json"),
                (b"Content-Length", b"999"),
            ),
            contentLength=12,
        )
        self.assertEqual(environ["HTTP_X_REQUEST_ID"], "abc")
        self.assertEqual(environ["HTTP_ACCEPT_ENCODING"], "gzip")
        self.assertEqual(environ["CONTENT_TYPE"], "application/json")
        self.assertEqual(environ["CONTENT_LENGTH"], "12")
        self.assertNotIn("HTTP_CONTENT_TYPE", environ)
        self.assertNotIn("HTTP_CONTENT_LENGTH", environ)

    def test_contentLengthIsTheBodyRead(self) -> None:
        """
        C{CONTENT_LENGTH} is the length of the body the server read (a
        chunked upload has no C{Content-Length} header), and is empty for a
        request with no body and no content type.
        """
        chunked = environFor(
            method=b"POST",
            headers=((b"Transfer-Encoding", b"chunked"),),
            contentLength=7,
        )
        self.assertEqual(chunked["CONTENT_LENGTH"], "7")
        self.assertEqual(environFor()["CONTENT_LENGTH"], "")
        typed = environFor(headers=((b"Content-Type", b"text/plain"),))
        self.assertEqual(typed["CONTENT_LENGTH"], "0")

    def test_underscoreDropped(self) -> None:
        """
        A header whose name contains C{_} is dropped, so C{X_Forwarded_For}
        can never shadow C{X-Forwarded-For}, whatever the order.
        """
        for headers in [
            ((b"X-Forwarded-For", b"1.1.1.1"), (b"X_Forwarded_For", b"6.6.6.6")),
            ((b"X_Forwarded_For", b"6.6.6.6"), (b"X-Forwarded-For", b"1.1.1.1")),
        ]:
            environ = environFor(headers=headers)
            self.assertEqual(environ["HTTP_X_FORWARDED_FOR"], "1.1.1.1")
        alone = environFor(headers=((b"X_Forwarded_For", b"6.6.6.6"),))
        self.assertNotIn("HTTP_X_FORWARDED_FOR", alone)
        self.assertNotIn("6.6.6.6", alone.values())

    def test_underscoreContentType(self) -> None:
        """
        C{Content_Type} does not become C{CONTENT_TYPE}.
        """
        environ = environFor(headers=((b"Content_Type", b"text/evil"),))
        self.assertNotIn("CONTENT_TYPE", environ)

    def test_nonTokenNameDropped(self) -> None:
        """
        A header name that is not an RFC 9110 token is dropped instead of
        becoming a key that is not latin-1 (C{"\\xb5".upper()} is a Greek
        letter).
        """
        environ = environFor(
            headers=((b"X-\xb5", b"1"), (b"X-\xdf", b"2"), (b"X A", b"3"))
        )
        self.assertEqual([k for k in environ if k.startswith("HTTP_")], [])

    def test_repeatedJoined(self) -> None:
        """
        Repeated field lines are joined with C{", "} (RFC 9110 section 5.3),
        in the order received, whatever the case of their names; C{Cookie}
        is joined with C{"; "}.
        """
        environ = environFor(
            headers=(
                (b"Accept", b"text/html"),
                (b"Cookie", b"a=1"),
                (b"accept", b"application/json"),
                (b"cookie", b"b=2"),
                (b"Cookie", b"c=3"),
                (b"X-Other", b"x"),
            )
        )
        self.assertEqual(environ["HTTP_ACCEPT"], "text/html, application/json")
        self.assertEqual(environ["HTTP_COOKIE"], "a=1; b=2; c=3")
        self.assertEqual(environ["HTTP_X_OTHER"], "x")

    def test_obsTextValue(self) -> None:
        """
        A value with obs-text bytes is decoded as latin-1, so that the
        application can recover the bytes.
        """
        environ = environFor(headers=((b"X-Name", b"caf\xc3\xa9 \xff"),))
        self.assertEqual(environ["HTTP_X_NAME"], "caf\xc3\xa9 \xff")
        self.assertEqual(environ["HTTP_X_NAME"].encode("latin-1"), b"caf\xc3\xa9 \xff")


# Header names: tokens with "_" added, so that dropping is exercised.
_names = st.one_of(tokens, tokens.map(lambda t: t + b"_" + t))


class NativeStringPropertyTests(SynchronousTestCase):
    """
    PEP 3333's native-string rules hold for any valid request.
    """

    @settings(
        max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(
        method=tokens,
        target=targets(obsText=True),
        headers=st.lists(st.tuples(_names, fieldValues), max_size=12),
        scriptName=st.sampled_from(["", "/app", "/a b"]),
    )
    def test_nativeStrings(
        self,
        method: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        scriptName: str,
    ) -> None:
        """
        Every key is a C{str}, every string value is a C{str} that encodes
        as latin-1, and the method, target, query and header values encode
        back to the bytes received.
        """
        environ = environFor(
            method=method,
            target=target,
            headers=tuple(headers),
            scriptName=scriptName,
            remoteAddr="::1",
            remotePort=1,
        )
        assertNativeEnviron(self, environ, method, target, headers)
        self.assertEqual(
            environ["QUERY_STRING"].encode("latin-1"), splitTarget(target)[2]
        )
        self.assertTrue(environ["PATH_INFO"] == "" or environ["PATH_INFO"][0] == "/")
