"""
Tests for L{twsgi._service}: what the service logs about its listeners.
"""

from __future__ import annotations

import errno
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.error import CannotListenError
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from twsgi._service import (
    PRIVILEGED_PORT_HINT,
    _listenFailure,
    listeningURL,
    logListening,
)


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
