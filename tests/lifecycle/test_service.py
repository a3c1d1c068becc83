"""
Tests for L{twsgi.lifecycle.service}: what the service logs about its listeners.
"""

from __future__ import annotations

import errno
import json
import os
import sys
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.error import CannotListenError
from twisted.internet.testing import MemoryReactor
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.server import temporaryDirectory
from twsgi import AccessRecord, TwsgiService
from twsgi.lifecycle.service import (
    PRIVILEGED_PORT_HINT,
    _listenFailure,
    listeningURL,
    logListening,
)
from twsgi.logs.accesslog import formatCombined
from twsgi.logs.formats import formatJSON


class _Port:
    """
    A listening port that only knows its address.
    """

    def __init__(self, address: Any) -> None:
        self.address = address

    def getHost(self) -> Any:
        return self.address


class ListeningURLTests(SynchronousTestCase):
    """
    The "listening on" line names a URL an operator can click.
    """

    def test_http(self) -> None:
        """
        A TCP listener is an C{http://} URL; an IPv6 host is bracketed.
        """
        self.assertEqual(
            listeningURL("tcp:8000", IPv4Address("TCP", "127.0.0.1", 8000)),
            "http://127.0.0.1:8000",
        )
        self.assertEqual(
            listeningURL("tcp6:0:interface=\\:\\:1", IPv6Address("TCP", "::1", 9)),
            "http://[::1]:9",
        )

    def test_https(self) -> None:
        """
        An C{ssl:} or C{tls:} listener, also behind C{haproxy:}, is an
        C{https://} URL.
        """
        address = IPv6Address("TCP", "::1", 8443)
        self.assertEqual(
            listeningURL("ssl:8443:privateKey=k.pem", address), "https://[::1]:8443"
        )
        self.assertEqual(
            listeningURL("haproxy:tls:/etc/certs:port=8443", address),
            "https://[::1]:8443",
        )

    def test_unix(self) -> None:
        """
        A UNIX socket is named by its path, after C{unix:}.
        """
        self.assertEqual(
            listeningURL("unix:/run/app.sock", UNIXAddress(b"/run/app.sock")),
            "unix:/run/app.sock",
        )

    def test_logged(self) -> None:
        """
        L{logListening} logs the URL and the endpoint string, and keeps the
        bare address as a field of the event.
        """
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        address = IPv4Address("TCP", "127.0.0.1", 8000)
        self.assertIs(logListening("tcp:8000", _Port(address)), address)
        [event] = [e for e in events if e.get("log_namespace") == "twsgi"]
        self.assertEqual(
            formatEvent(event), "listening on http://127.0.0.1:8000 (tcp:8000)"
        )
        self.assertEqual(event["url"], "http://127.0.0.1:8000")
        self.assertEqual(event["address"], "127.0.0.1:8000")


class ListenFailureTests(SynchronousTestCase):
    """
    A listener that cannot listen is one line naming it and why.
    """

    def test_privilegedPort(self) -> None:
        """
        Permission denied on a port below 1024 adds what to do about it; on
        another port, or for another error, the line is the error alone.
        """
        denied = OSError(errno.EACCES, "Permission denied")
        self.assertEqual(
            str(_listenFailure("tcp:80", CannotListenError("", 80, denied))),
            f"cannot listen on tcp:80: Permission denied ({PRIVILEGED_PORT_HINT})",
        )
        self.assertIn("CAP_NET_BIND_SERVICE", PRIVILEGED_PORT_HINT)
        self.assertEqual(
            str(_listenFailure("tcp:8080", CannotListenError("", 8080, denied))),
            "cannot listen on tcp:8080: Permission denied",
        )
        inUse = OSError(errno.EADDRINUSE, "Address already in use")
        self.assertEqual(
            str(_listenFailure("tcp:80", CannotListenError("", 80, inUse))),
            "cannot listen on tcp:80: Address already in use",
        )


class AccessLogParameterTests(SynchronousTestCase):
    """
    C{TwsgiService(accessLog=..., accessLogFormat=...)} turns on the
    built-in access log, for C{.tac} files and embedding.
    """

    def test_file(self) -> None:
        """
        A path opens the file, written in the format named.
        """
        path = os.path.join(temporaryDirectory(self), "access.log")
        service = TwsgiService(
            _app, ["tcp:0"], MemoryReactor(), accessLog=path, accessLogFormat="json"
        )
        [observer] = service.observers
        self.addCleanup(observer.file.close)
        self.assertIs(observer.formatter, formatJSON)
        observer(_RECORD)
        observer.file.flush()
        with open(path) as f:
            self.assertEqual(json.loads(f.read())["target"], "/x")

    def test_standardOutputAndNone(self) -> None:
        """
        C{"-"} is standard output, in the Combined Log Format by default;
        C{None} (the default) and C{"none"} turn it off.
        """
        service = TwsgiService(_app, ["tcp:0"], MemoryReactor(), accessLog="-")
        [observer] = service.observers
        self.assertIs(observer.file, sys.stdout)
        self.assertIs(observer.formatter, formatCombined)
        for off in ({}, {"accessLog": "none"}):
            self.assertEqual(
                TwsgiService(_app, ["tcp:0"], MemoryReactor(), **off).observers, []
            )

    def test_badFormat(self) -> None:
        """
        A malformed format is a L{ValueError} naming it.
        """
        error = self.assertRaises(
            ValueError,
            TwsgiService,
            _app,
            ["tcp:0"],
            MemoryReactor(),
            accessLog="-",
            accessLogFormat="jsn",
        )
        self.assertIn("'jsn'", str(error))


def _app(environ: Any, startResponse: Any) -> list[bytes]:
    startResponse("200 OK", [])
    return [b""]


_RECORD = AccessRecord(
    timestamp=0.0,
    method="GET",
    target="/x",
    protocol="HTTP/1.1",
    status=200,
    bytesSent=0,
    duration=0.0,
    remoteAddr="127.0.0.1",
    remotePort=1,
    listener="tcp:0",
    requestId="r",
)


class EndpointsArgumentTests(SynchronousTestCase):
    """
    L{TwsgiService}'s C{endpoints} argument.
    """

    def test_oneString(self) -> None:
        """
        One endpoint string is one endpoint, not the characters of one.
        """
        service = TwsgiService(lambda e, s: [], "tcp:0", MemoryReactor())
        self.assertEqual(service.descriptions, ("tcp:0",))
