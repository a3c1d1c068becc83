"""
Tests for L{twsgi.server.endpoints}: C{--bind} shorthands, the default listen
backlog, the port range and the hint for a C{HOST:PORT} endpoint.
"""

from __future__ import annotations

import os

from twisted.internet.protocol import Factory
from twisted.internet.testing import MemoryReactor
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import certs as _certs
from tests.helpers import server as _server
from twsgi.config.resolve import ConfigError, resolveConfig, resolveSources
from twsgi.config.toml import renderConfig
from twsgi.lifecycle.build import EndpointError, appEndpoints, endpointFromString
from twsgi.server.endpoints import (
    DEFAULT_BACKLOG,
    bindEndpoint,
    repeatedListener,
)
from twsgi.server.listeners import buildEndpoint


class BindTests(SynchronousTestCase):
    """
    gunicorn's C{--bind} forms become Twisted endpoint strings.
    """

    def test_forms(self) -> None:
        """
        C{HOST:PORT}, C{[V6]:PORT}, C{:PORT}, C{HOST} alone (port 8000, as
        gunicorn), C{tcp://}, C{unix:PATH} and C{unix://PATH} each become
        the endpoint string that listens there.
        """
        table = {
            "127.0.0.1:8000": "tcp:8000:interface=127.0.0.1",
            " 0.0.0.0:80 ": "tcp:80:interface=0.0.0.0",
            "localhost:8000": "tcp:8000:interface=localhost",
            "localhost": "tcp:8000:interface=localhost",
            ":8000": "tcp:8000",
            "tcp://10.0.0.1:9000": "tcp:9000:interface=10.0.0.1",
            "[::1]:8000": r"tcp6:8000:interface=\:\:1",
            "[::]:80": r"tcp6:80:interface=\:\:",
            "[fe80::1%eth0]:80": r"tcp6:80:interface=fe80\:\:1%eth0",
            "unix:/run/twsgi.sock": "unix:/run/twsgi.sock",
            "unix:///run/twsgi.sock": "unix:/run/twsgi.sock",
            "unix:/tmp/a:b=c": r"unix:/tmp/a\:b\=c",
        }
        for address, expected in table.items():
            self.assertEqual(bindEndpoint(address), expected, address)

    def test_listensWhereItSays(self) -> None:
        """
        The endpoint strings listen on the address and port written, with
        the escaped colons of an IPv6 address and of a path undone.
        """
        reactor = MemoryReactor()
        for address in ("127.0.0.1:8001", "[::1]:8002", ":8003"):
            buildEndpoint(reactor, bindEndpoint(address)).listen(Factory())
        self.assertEqual(
            [(port, interface) for port, _, _, interface in reactor.tcpServers],
            [(8001, "127.0.0.1"), (8002, "::1"), (8003, "")],
        )
        buildEndpoint(reactor, bindEndpoint("unix:/tmp/a:b=c")).listen(Factory())
        self.assertEqual(reactor.unixServers[0][0], "/tmp/a:b=c")

    def test_mistakes(self) -> None:
        """
        A bare port (which gunicorn would take as a host name), a port out
        of range, an IPv6 address without brackets, an endpoint string, a
        URL and other malformed addresses are refused with a message that
        quotes them.
        """
        table = {
            "8000": "write 127.0.0.1:8000",
            "127.0.0.1:70000": "0-65535",
            "127.0.0.1:-1": "0-65535",
            "127.0.0.1:http": "'http' is not a port number",
            "::1:8000": "[::1]:8000",
            "[::1:8000": "]",
            "[nothing]:80": "not an IPv6 address",
            "[::1]8000": "[::1]:8000",
            "my host:80": "not a host name",
            "unix:": "unix:/run/app.sock",
            "fd://3": "systemd:",
            "": "empty",
            "tcp:8000": "an endpoint string: use --endpoint tcp:8000",
            "ssl:8443:privateKey=k.pem": "use --endpoint ssl:8443",
            "tcp6:8000:interface=\\:\\:1": "use --endpoint",
            "systemd:domain=INET:index=0": "use --endpoint",
            "haproxy:tcp:8000": "use --endpoint",
            "http://127.0.0.1:8000": "no scheme: write 127.0.0.1:8000",
            "https://[::1]:8443/": "no scheme: write [::1]:8443",
            "127.0.0.1:8000,[::1]:8000": "one address each: repeat --bind",
        }
        for address, expected in table.items():
            with self.assertRaises(ValueError, msg=address) as caught:
                bindEndpoint(address)
            self.assertIn(expected, str(caught.exception), address)
            self.assertIn(repr(address.strip()), str(caught.exception), address)


class BindSettingTests(SynchronousTestCase):
    """
    C{--bind} as a setting: repeatable, mixed with C{--endpoint}, from the
    command line, the environment or the config file.
    """

    def test_replacesTheDefault(self) -> None:
        """
        C{--bind} alone listens where it says, not also on the default
        endpoint.
        """
        config = resolveConfig({"bind": ["127.0.0.1:9000", "unix:/tmp/s"]})
        self.assertEqual(
            appEndpoints(config), ("tcp:9000:interface=127.0.0.1", "unix:/tmp/s")
        )

    def test_mixedWithEndpoint(self) -> None:
        """
        C{--endpoint} and C{--bind} together listen on both, the endpoints
        first.
        """
        config = resolveConfig({"endpoint": ["tcp6:1"], "bind": [":2"]})
        self.assertEqual(appEndpoints(config), ("tcp6:1", "tcp:2"))

    def test_defaultWithoutEither(self) -> None:
        """
        Without C{--endpoint} or C{--bind}, the default endpoint.
        """
        self.assertEqual(
            appEndpoints(resolveConfig({})), ("tcp:8000:interface=127.0.0.1",)
        )

    def test_environmentAndFile(self) -> None:
        """
        C{TWSGI_BIND} takes whitespace-separated addresses; the config
        file's C{bind} key a list; C{--print-config} writes a file that reads
        back the same.
        """
        config = resolveConfig({}, {"TWSGI_BIND": "[::1]:1 127.0.0.1:2"})
        self.assertEqual(
            appEndpoints(config),
            (r"tcp6:1:interface=\:\:1", "tcp:2:interface=127.0.0.1"),
        )
        directory = _server.temporaryDirectory(self)
        path = os.path.join(directory, "twsgi.toml")
        with open(path, "w") as f:
            f.write('bind = ["127.0.0.1:3", "unix:/tmp/x"]\n')
        config, sources = resolveSources({"config": path})
        self.assertEqual(
            appEndpoints(config), ("tcp:3:interface=127.0.0.1", "unix:/tmp/x")
        )
        with open(path, "w") as f:
            f.write(renderConfig(config, sources))
        self.assertEqual(
            appEndpoints(resolveConfig({"config": path})), appEndpoints(config)
        )

    def test_mistakeNamesTheSource(self) -> None:
        """
        A bad address is one line naming C{--bind} and where it came from.
        """
        with self.assertRaises(ConfigError) as caught:
            resolveConfig({}, {"TWSGI_BIND": "8000"})
        self.assertIn("--bind (from $TWSGI_BIND): '8000'", str(caught.exception))


class BacklogTests(SynchronousTestCase):
    """
    Every listener gets a production listen backlog unless its endpoint
    string names one.
    """

    def backlogs(self, *descriptions: str) -> list[int]:
        reactor = MemoryReactor()
        for description in descriptions:
            buildEndpoint(reactor, description).listen(Factory())
        servers = reactor.tcpServers + reactor.sslServers + reactor.unixServers
        return [
            next(value for value in server[2:] if isinstance(value, int))
            for server in servers
        ]

    def test_default(self) -> None:
        """
        C{tcp:}, C{tcp6:}, C{unix:} and C{haproxy:}-wrapped ones listen with
        L{DEFAULT_BACKLOG}, not Twisted's 50.
        """
        self.assertEqual(DEFAULT_BACKLOG, 2048)
        self.assertEqual(
            self.backlogs("tcp:0", "tcp6:0", "haproxy:tcp:0", "unix:/tmp/twsgi-b"),
            [2048] * 4,
        )

    def test_tls(self) -> None:
        """
        An C{ssl:} listener gets it too: a TCP port whose connections
        speak TLS.
        """
        directory = _certs.makeCertificates(str(_server.temporaryDirectory(self)))
        key = os.path.join(directory, "server.key")
        cert = os.path.join(directory, "server.pem")
        reactor = MemoryReactor()
        buildEndpoint(reactor, f"ssl:0:privateKey={key}:certKey={cert}").listen(
            Factory()
        )
        [(port, factory, backlog, interface)] = reactor.tcpServers
        self.assertIsInstance(factory, TLSMemoryBIOFactory)
        self.assertEqual(backlog, 2048)

    def test_sni(self) -> None:
        """
        A C{tls:} listener (a directory of certificates) gets it too, on
        every address by default, unless it names its own backlog.
        """
        certs = _certs.makeCertificates(str(_server.temporaryDirectory(self)))
        directory = _certs.makeTLSDirectory(certs, os.path.join(certs, "sni"))
        reactor = MemoryReactor()
        for description in (f"tls:{directory}:port=0", f"tls:{directory}:0:9"):
            buildEndpoint(reactor, description).listen(Factory())
        [first, second] = reactor.tcpServers
        self.assertIsInstance(first[1], TLSMemoryBIOFactory)
        self.assertEqual((first[2], first[3]), (2048, "::"))
        self.assertEqual(second[2], 9)

    def test_ownBacklogWins(self) -> None:
        """
        A C{backlog=} of the endpoint string, as a keyword or in its
        position, is kept.
        """
        self.assertEqual(
            self.backlogs(
                "tcp:0:backlog=5",
                "tcp:0:127.0.0.1:6",
                "tcp6:0:7",
                "haproxy:tcp:0:backlog=8",
                "unix:/tmp/twsgi-b:660:9",
            ),
            [5, 6, 7, 8, 9],
        )


class RepeatedListenerTests(SynchronousTestCase):
    """
    Tests for L{repeatedListener}: two endpoint strings that listen on one
    address, however written.
    """

    def test_sameAddressWrittenTwoWays(self) -> None:
        """
        Endpoint strings that give one port, interface or path in other
        words (a keyword or a position, an escape, a C{haproxy:} prefix, an
        C{ssl:} listener's TCP port) are one listener given twice.
        """
        for first, second in (
            ("tcp:8000:interface=127.0.0.1", "tcp:port=8000:interface=127.0.0.1"),
            ("tcp:8000:127.0.0.1", "tcp:8000:interface=127.0.0.1:backlog=5"),
            ("tcp:8000", "haproxy:tcp:8000"),
            ("tcp:8000", "ssl:8000:privateKey=k.pem"),
            ("tcp6:8000:interface=\\:\\:1", "tcp6:8000:50:\\:\\:1"),
            ("unix:/run/a.sock", "unix:address=/run/a.sock:mode=600"),
            ("tls:/etc/a:port=8443", "haproxy:tls:/etc/b:8443"),
        ):
            self.assertEqual(repeatedListener([first, second]), second, first)

    def test_otherAddresses(self) -> None:
        """
        Other ports, interfaces, paths or address families, and port 0
        however written, are no repeat.
        """
        for descriptions in (
            ["tcp:8000", "tcp:8001"],
            ["tcp:8000:interface=127.0.0.1", "tcp:8000:interface=127.0.0.2"],
            ["tcp:8000:interface=127.0.0.1", "tcp6:8000:interface=\\:\\:1"],
            ["unix:/run/a.sock", "unix:/run/b.sock"],
            ["tcp:0", "tcp:port=0", "ssl:0:privateKey=k.pem", "tcp6:0"],
        ):
            self.assertIsNone(repeatedListener(descriptions), descriptions)


class AddressCheckTests(SynchronousTestCase):
    """
    A port outside 0-65535, or an empty C{interface=}, is refused when the
    endpoint string is parsed, not when it listens.
    """

    def refused(self, description: str) -> str:
        """
        The error that C{description}, parsed as a listener, is refused with.
        """
        with self.assertRaises(EndpointError, msg=description) as caught:
            endpointFromString(MemoryReactor(), description, parse=buildEndpoint)
        return str(caught.exception)

    def test_outOfRange(self) -> None:
        """
        C{tcp:}, C{tcp6:}, C{ssl:}, C{tls:} and C{haproxy:} endpoints with a port
        above 65535 or below 0 are malformed, in one line.
        """
        for description in (
            "tcp:70000",
            "tcp:port=65536",
            "tcp6:-1",
            "haproxy:tcp:99999",
            "ssl:70000:privateKey=k.pem",
            "tls:/etc/certs:port=70000",
            "haproxy:tls:/etc/certs:99999",
        ):
            message = self.refused(description)
            self.assertIn("is outside 0-65535", message, description)
            self.assertNotIn("\n", message)

    def test_otherNumbers(self) -> None:
        """
        A port that is no number is named as the port; another option that
        is no number (C{backlog}, a UNIX socket's C{mode}) is not called a
        port.
        """
        table = {
            "tcp:http": "'http' is not a port number",
            "tls:/etc/certs:port=https": "'https' is not a port number",
            "tcp:8000:backlog=abc": "'abc' is not a number",
            "unix:/tmp/x.sock:mode=999": "'999' is not a number",
        }
        for description, expected in table.items():
            message = self.refused(description)
            self.assertIn(expected, message, description)
            if "port" not in expected:
                self.assertNotIn("port", message, description)

    def test_emptyInterface(self) -> None:
        """
        An empty C{interface=} is refused, in one line, rather than taken
        as every address.
        """
        for description in (
            "tcp:0:interface=",
            "tcp6:port=0:interface=",
            "haproxy:tcp:0:interface=",
            "ssl:0:interface=:privateKey=k.pem",
            "tls:/etc/certs:port=0:interface=",
            "tcp:0:interface=:backlog=5",
        ):
            self.assertEqual(
                self.refused(description),
                f"{description!r} is not a valid endpoint string: interface= is "
                "empty: name an address (interface=127.0.0.1), or leave "
                "interface= out to listen on every address",
            )
        # An IPv6 address with its colons unescaped is another mistake.
        self.assertIn(
            "escape colons in values as \\:", self.refused("tcp6:0:interface=::")
        )
        endpointFromString(
            MemoryReactor(), "tcp6:0:interface=\\:\\:", parse=buildEndpoint
        )

    def test_emptyUnixPath(self) -> None:
        """
        A C{unix:} endpoint without a path is refused, in one line, rather
        than bound to an abstract address that Linux picks and no client
        can know.
        """
        for description in (
            "unix:",
            "unix:address=",
            "haproxy:unix:",
            "unix::mode=600",
        ):
            self.assertEqual(
                self.refused(description),
                f"{description!r} is not a valid endpoint string: no socket "
                "path (for example unix:/run/app.sock)",
            )

    def test_inRange(self) -> None:
        """
        Ports 0 and 65535 are fine.
        """
        reactor = MemoryReactor()
        for description in ("tcp:0", "tcp:65535", "tcp6:port=0"):
            endpointFromString(reactor, description, parse=buildEndpoint)


class HostPortHintTests(SynchronousTestCase):
    """
    An endpoint written as C{HOST:PORT} is refused with the form to write.
    """

    def test_hint(self) -> None:
        """
        The message names the endpoint string and the C{--bind} that mean
        what was written.
        """
        reactor = MemoryReactor()
        table = {
            "127.0.0.1:8000": (
                "'tcp:8000:interface=127.0.0.1'",
                "--bind 127.0.0.1:8000",
            ),
            "localhost:8000": (
                "'tcp:8000:interface=localhost'",
                "--bind localhost:8000",
            ),
            ":8000": ("'tcp:8000'", "--bind :8000"),
            "0.0.0.0:80": ("'tcp:80:interface=0.0.0.0'", "--bind 0.0.0.0:80"),
            "web.example.com:80": (
                "'tcp:80:interface=web.example.com'",
                "--bind web.example.com:80",
            ),
            "[::1]:8000": (r"'tcp6:8000:interface=\:\:1'", "--bind [::1]:8000"),
            "8000": ("'tcp:8000:interface=127.0.0.1'", "--bind 127.0.0.1:8000"),
        }
        for description, shown in table.items():
            with self.assertRaises(EndpointError, msg=description) as caught:
                endpointFromString(reactor, description, parse=buildEndpoint)
            message = str(caught.exception)
            for text in shown:
                self.assertIn(text, message, description)
            self.assertNotIn("Unknown endpoint type", message)
            self.assertNotIn("\n", message)

    def test_noHintForAWord(self) -> None:
        """
        A word before the colon may be an endpoint plugin that is not
        installed: Twisted's own message, with no hint.
        """
        with self.assertRaises(EndpointError) as caught:
            endpointFromString(MemoryReactor(), "tor:80", parse=buildEndpoint)
        self.assertIn("Unknown endpoint type: 'tor'", str(caught.exception))
        self.assertNotIn("--bind", str(caught.exception))
