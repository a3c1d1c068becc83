"""
Tests for L{twsgi.server.tls}: HTTPS listeners, TLS 1.2 as the minimum, client
certificates (mTLS), startup errors and UNIX socket permissions.
"""

from __future__ import annotations

import os
import socket
import ssl as stdlibssl
import stat
import subprocess
from typing import Any

from cryptography.hazmat.primitives import serialization
from twisted.internet import defer, ssl, threads
from twisted.internet.endpoints import (
    TCP4ClientEndpoint,
    serverFromString,
    wrapClientTLS,
)
from twisted.internet.protocol import Factory
from twisted.internet.task import deferLater
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.python.filepath import FilePath
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.helpers.certs import (
    makeCertificates,
    makeIntermediateCertificate,
    makeServerCertificate,
    makeTLSDirectory,
)
from tests.helpers.rawhttp import LoopbackServer, exchange
from tests.helpers.server import temporaryDirectory
from twsgi.cli.options import makeService
from twsgi.config.model import ServerConfig
from twsgi.http.limits import Limits
from twsgi.lifecycle.service import TwsgiService
from twsgi.logs.limited import BURST
from twsgi.server.listeners import buildEndpoint
from twsgi.server.tls import PROFILES, TLSProfile, defaultUnixMode
from twsgi.testing import parseResponses

GET = b"GET /t HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def encryptedKeys(certs: str) -> dict[str, bytes]:
    """
    The server key of L{makeCertificates}' directory C{certs} encrypted with
    a passphrase, in PKCS#8 and in the older PEM encryption
    (C{Proc-Type: 4,ENCRYPTED}), by the name of each form.
    """
    key = serialization.load_pem_private_key(
        FilePath(certs).child("server.key").getContent(), None
    )
    encryption = serialization.BestAvailableEncryption(b"passphrase")
    return {
        form: key.private_bytes(serialization.Encoding.PEM, format, encryption)
        for form, format in [
            ("pkcs8", serialization.PrivateFormat.PKCS8),
            ("traditional", serialization.PrivateFormat.TraditionalOpenSSL),
        ]
    }


class StartupErrorTests(SynchronousTestCase):
    """
    A TLS listener's certificate problems are one line at startup.
    """

    def setUp(self) -> None:
        self.certs = makeCertificates(self.mktemp())

    def path(self, name: str) -> str:
        return os.path.join(self.certs, name)

    def test_missingFile(self) -> None:
        """
        A missing key file is named, in one line.
        """
        error = self.assertRaises(
            ValueError,
            buildEndpoint,
            None,
            f"ssl:0:privateKey={self.path('nope.key')}:certKey={self.path('server.pem')}",
        )
        self.assertIn("nope.key", str(error))
        self.assertIn("No such file", str(error))
        self.assertNotIn("\n", str(error))

    def test_mismatchedKey(self) -> None:
        """
        A key that does not belong to the certificate is refused at
        startup.
        """
        from twisted.internet import reactor

        error = self.assertRaises(
            ValueError,
            buildEndpoint,
            reactor,
            f"ssl:0:privateKey={self.path('client.key')}:certKey={self.path('server.pem')}",
        )
        self.assertIn("bad certificate or key", str(error))
        self.assertNotIn("\n", str(error))

    def test_missingBlock(self) -> None:
        """
        A key file given without C{certKey=}, a certificate file given as
        C{privateKey=}, or a C{certKey=} file without a certificate names the
        file and what it lacks, not OpenSSL's "no start line".
        """
        key, cert = self.path("server.key"), self.path("server.pem")
        table = {
            f"ssl:0:privateKey={key}": f"privateKey={key} holds no certificate "
            "in PEM format (give the certificate's file as certKey=)",
            f"ssl:0:privateKey={cert}": f"privateKey={cert} holds no private key "
            "in PEM format",
            f"ssl:0:privateKey={cert}:certKey={cert}": f"privateKey={cert} holds "
            "no private key in PEM format",
            f"ssl:0:privateKey={key}:certKey={key}": f"certKey={key} holds no "
            "certificate in PEM format",
        }
        for description, expected in table.items():
            error = self.assertRaises(ValueError, buildEndpoint, None, description)
            self.assertEqual(str(error), expected, description)

    def test_encryptedKey(self) -> None:
        """
        A key encrypted with a passphrase is refused in one line saying so,
        before OpenSSL asks for the passphrase (on the terminal) and fails in
        its own words.
        """
        for form, pem in encryptedKeys(self.certs).items():
            key = self.path(form + ".key")
            FilePath(key).setContent(pem)
            error = self.assertRaises(
                ValueError,
                buildEndpoint,
                None,
                f"ssl:0:privateKey={key}:certKey={self.path('server.pem')}",
            )
            self.assertEqual(
                str(error),
                f"privateKey={key} holds an encrypted private key (twsgi asks "
                "for no passphrase): give it the key decrypted, readable by "
                "twsgi only (openssl pkey -in KEY -out KEY.decrypted)",
                form,
            )

    def test_clientCAWithoutCertificate(self) -> None:
        """
        A C{client-ca} file without a certificate (a key given by mistake)
        is named with what it lacks, not OpenSSL's "no start line".
        """
        key = self.path("ca.key")
        error = self.assertRaises(
            ValueError,
            buildEndpoint,
            None,
            f"ssl:0:privateKey={self.path('server.key')}"
            f":certKey={self.path('server.pem')}",
            key,
        )
        self.assertEqual(
            str(error), f"client-ca={key} holds no certificate in PEM format"
        )

    def test_combinedFile(self) -> None:
        """
        One file with the key and the certificate, with CRLF line ends, is
        enough: C{certKey=} defaults to C{privateKey=}.
        """
        combined = FilePath(self.mktemp())
        content = (
            FilePath(self.path("server.key")).getContent()
            + FilePath(self.path("server.pem")).getContent()
        )
        combined.setContent(content.replace(b"\n", b"\r\n"))
        from twisted.internet.testing import MemoryReactor

        buildEndpoint(MemoryReactor(), f"ssl:0:privateKey={combined.path}")

    def test_commandLine(self) -> None:
        """
        From the command line, the error ends the process with one line
        naming the endpoint, not a traceback.
        """
        error = self.assertRaises(
            SystemExit,
            makeService,
            {
                "app": "twsgi.example:app",
                "endpoint": [
                    f"ssl:0:privateKey=/nonexistent.key:certKey={self.path('server.pem')}"
                ],
                "access_log": "none",
            },
        )
        text = str(error.code)
        self.assertTrue(text.startswith("twsgi: --endpoint"), text)
        self.assertIn("/nonexistent.key", text)
        self.assertNotIn("\n", text)

    def test_clientCaNeedsTLS(self) -> None:
        """
        C{client-ca=} on a plain TCP listener is refused.
        """
        config = ServerConfig(
            endpoint=(f"tcp:0;client-ca={self.path('ca.pem')}",), access_log="none"
        )
        self.assertRaises(ValueError, TwsgiService, config, lambda e, s: [], None)


FFDHE2048 = b"""-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
"""
"""
The RFC 7919 group ffdhe2048, in PEM.
"""


class SSLArgumentTests(SynchronousTestCase):
    """
    The arguments of an C{ssl:} endpoint string, read by twsgi, are
    Twisted's; a bad one is one line at startup.
    """

    def setUp(self) -> None:
        self.certs = makeCertificates(self.mktemp())
        key = os.path.join(self.certs, "server.key")
        cert = os.path.join(self.certs, "server.pem")
        self.base = f"ssl:0:privateKey={key}:certKey={cert}"

    def refused(self, description: str) -> str:
        from twisted.internet.testing import MemoryReactor

        from twsgi.lifecycle.build import EndpointError, endpointFromString

        with self.assertRaises(EndpointError) as caught:
            endpointFromString(MemoryReactor(), description, parse=buildEndpoint)
        text = str(caught.exception)
        self.assertNotIn("\n", text)
        return text

    def test_refused(self) -> None:
        """
        An unknown option, a missing DH parameters file or one without DH
        parameters, a chain file without certificates, an unknown method and
        a method that cannot serve TLS 1.2 (a listener that would fail every
        handshake) are each named.
        """
        table = {
            ":foo=1": "unknown option 'foo'",
            ":dhParameters=/nonexistent/dh.pem": "/nonexistent/dh.pem",
            f":dhParameters={self.certs}/ca.pem": f"dhParameters={self.certs}/ca.pem "
            "holds no Diffie-Hellman parameters in PEM format",
            f":extraCertChain={self.certs}/server.key": "holds no certificate",
            ":sslmethod=NOPE": "sslmethod=NOPE is no method",
        }
        for method in ("TLSv1_METHOD", "TLSv1_1_METHOD", "TLS_CLIENT_METHOD"):
            table[f":sslmethod={method}"] = (
                f"sslmethod={method} cannot serve TLS 1.2 or 1.3 (the TLS "
                "profile's versions): use one of TLS_METHOD, TLS_SERVER_METHOD, "
                "SSLv23_METHOD, TLSv1_2_METHOD, or leave it out"
            )
        for suffix, expected in table.items():
            self.assertIn(expected, self.refused(self.base + suffix), suffix)

    def test_options(self) -> None:
        """
        The options of the string (chain, method, DH parameters, interface
        and backlog) are used: the listener listens on that TCP port with
        TLS around each connection, its context built.
        """
        from twisted.internet.testing import MemoryReactor
        from twisted.protocols.tls import TLSMemoryBIOFactory

        path = FilePath(self.mktemp())
        path.setContent(FFDHE2048)
        reactor = MemoryReactor()
        listener = buildEndpoint(
            reactor,
            f"{self.base}:extraCertChain={self.certs}/ca.pem"
            f":sslmethod=TLS_METHOD:dhParameters={path.path}"
            r":interface=\:\:1:backlog=7",
        )
        listener.listen(Factory())
        [(port, factory, backlog, interface)] = reactor.tcpServers
        self.assertEqual((port, backlog, interface), (0, 7, "::1"))
        self.assertIsInstance(factory, TLSMemoryBIOFactory)

    def test_clientCaNeedsSSL(self) -> None:
        """
        C{client-ca=} is refused on a listener that is no C{ssl:} one, also
        behind C{haproxy:}.
        """
        error = self.assertRaises(
            ValueError, buildEndpoint, None, "haproxy:tcp:0", self.certs + "/ca.pem"
        )
        self.assertEqual(str(error), "client-ca= needs an ssl: endpoint")


class TLSDirectoryTests(SynchronousTestCase):
    """
    A C{tls:} listener's directory of PEM files is checked at startup, as
    an C{ssl:} listener's files are.
    """

    def setUp(self) -> None:
        self.certs = makeCertificates(self.mktemp())
        self.directory = FilePath(self.mktemp())
        self.directory.makedirs()

    def write(self, name: str, *parts: str) -> None:
        self.directory.child(name).setContent(
            b"".join(FilePath(self.certs).child(part).getContent() for part in parts)
        )

    def refused(self, description: str) -> str:
        from twisted.internet import reactor

        error = self.assertRaises(ValueError, buildEndpoint, reactor, description)
        self.assertNotIn("\n", str(error))
        return str(error)

    def test_valid(self) -> None:
        """
        A directory holding a certificate and its key builds an endpoint.
        """
        from twisted.internet import reactor

        self.write("localhost.pem", "server.key", "server.pem")
        self.assertIsNotNone(
            buildEndpoint(reactor, f"tls:{self.directory.path}:port=0")
        )

    def test_missing(self) -> None:
        """
        A directory that does not exist is named, in one line.
        """
        text = self.refused("tls:/nonexistent/twsgi-certs:port=0")
        self.assertIn("/nonexistent/twsgi-certs", text)

    def test_noDirectory(self) -> None:
        """
        A C{tls:} listener that names no directory is refused in one line
        saying so, without reading the current directory (which may be
        large) in its place, even where that holds a certificate.
        """
        self.write("localhost.pem", "server.key", "server.pem")
        self.addCleanup(os.chdir, os.getcwd())
        os.chdir(self.directory.path)
        for description in ("tls:port=0", "tls:", "haproxy:tls:port=0"):
            self.assertIn("names no directory of PEM files", self.refused(description))

    def test_empty(self) -> None:
        """
        A directory without any certificate is refused.
        """
        text = self.refused(f"tls:{self.directory.path}:port=0")
        self.assertIn(self.directory.path, text)
        self.assertIn("no certificate", text)

    def test_mismatchedKey(self) -> None:
        """
        A key that belongs to no certificate of the directory leaves it
        without a usable certificate: refused.
        """
        self.write("localhost.pem", "client.key", "server.pem")
        self.assertIn("no certificate", self.refused(f"tls:{self.directory.path}"))

    def test_unusableFile(self) -> None:
        """
        A C{.pem} file that holds something else than certificates and keys
        (the Diffie-Hellman parameters some servers keep beside them) is
        refused in one line naming that file.
        """
        self.write("localhost.pem", "server.key", "server.pem")
        os.mkdir(os.path.join(self.directory.path, "extra"))
        self.directory.child("extra").child("dhparams.pem").setContent(
            b"-----BEGIN DH PARAMETERS-----\nMIIBCAKCAQEA\n"
            b"-----END DH PARAMETERS-----\n"
        )
        text = self.refused(f"tls:{self.directory.path}:port=0")
        self.assertIn(f"tls:{self.directory.path}: extra/dhparams.pem: ", text)

    def test_encryptedKey(self) -> None:
        """
        An encrypted key in the directory is refused in one line naming its
        file, as on an C{ssl:} listener.
        """
        for form, pem in encryptedKeys(self.certs).items():
            self.directory.child("localhost.pem").setContent(
                pem + FilePath(self.certs).child("server.pem").getContent()
            )
            self.assertEqual(
                self.refused(f"tls:{self.directory.path}:port=0"),
                f"tls:{self.directory.path}: localhost.pem holds an encrypted "
                "private key (twsgi asks for no passphrase): give it the key "
                "decrypted, readable by twsgi only (openssl pkey -in KEY -out "
                "KEY.decrypted)",
                form,
            )

    def test_unpairedWarned(self) -> None:
        """
        A certificate with a DNS name whose key is not in the directory (it
        is not served: its name gets the first certificate), and a key that
        belongs to no certificate there (a renewal that wrote a new key
        beside the old certificate), are each named in a warning, as
        Twisted's own C{tls:} endpoint warned of an unused key.
        """
        from twisted.internet import reactor

        self.write("localhost.pem", "server.key", "server.pem")
        self.write("renewed.pem", "client.pem")
        self.write("stray.pem", "stranger.key")
        with capturedLogs() as events:
            buildEndpoint(reactor, f"tls:{self.directory.path}:port=0")
        lines = [formatEvent(e) for e in events if e.get("log_level") == LogLevel.warn]
        self.assertEqual(
            lines,
            [
                f"tls:{self.directory.path}: renewed.pem holds the certificate "
                "of localhost without its private key: not served",
                f"tls:{self.directory.path}: stray.pem holds a private key of "
                "no certificate there: not used",
            ],
        )

    def test_workers(self) -> None:
        """
        With C{--workers}, the supervisor checks the directory too, so that
        a directory without a certificate is one line there as well.
        """
        error = self.assertRaises(
            SystemExit,
            makeService,
            {
                "app": "twsgi.example:app",
                "endpoint": [f"tls:{self.directory.path}:port=0"],
                "workers": "2",
                "access_log": "none",
            },
        )
        text = str(error.code)
        self.assertIn("no certificate", text)
        self.assertNotIn("\n", text)

    def test_checkConfigWorkers(self) -> None:
        """
        C{--check-config} with C{--workers} accepts a C{tls:} or
        C{haproxy:tls:} listener, whose socket the workers share as they
        share an C{ssl:} one's.
        """
        self.write("localhost.pem", "server.key", "server.pem")
        for description in (
            f"tls:{self.directory.path}:port=0",
            f"haproxy:tls:{self.directory.path}:port=0",
        ):
            error = self.assertRaises(
                SystemExit,
                makeService,
                {
                    "app": "twsgi.example:app",
                    "endpoint": [description],
                    "workers": "2",
                    "access_log": "none",
                    "check_config": True,
                },
            )
            self.assertEqual(error.code, 0)

    def test_selfSignedRoot(self) -> None:
        """
        A root CA (a certificate that issued itself) beside the server
        certificate is refused with a line naming its file, instead of
        Twisted's chain-building looping forever at startup.
        """
        self.write("localhost.pem", "server.key", "server.pem", "ca.pem")
        text = self.refused(f"haproxy:tls:{self.directory.path}:port=0")
        self.assertIn("localhost.pem", text)
        self.assertIn("CN=twsgi test CA", text)


class UnixModeTests(SynchronousTestCase):
    """
    C{unix:} listeners default to mode 0660.
    """

    def test_default(self) -> None:
        """
        A C{unix:} endpoint string without a mode gets 660; one with a mode
        keeps it; others are left alone.
        """
        self.assertEqual(
            defaultUnixMode("unix:/run/a.sock"), "unix:/run/a.sock:mode=660"
        )
        self.assertEqual(
            defaultUnixMode("unix:/run/a.sock:mode=600"), "unix:/run/a.sock:mode=600"
        )
        self.assertEqual(defaultUnixMode("tcp:80"), "tcp:80")

    def test_haproxy(self) -> None:
        """
        A C{unix:} listener behind the PROXY protocol (C{haproxy:unix:}) gets
        660 as well: whoever can connect to it can claim any client address.
        """
        self.assertEqual(
            defaultUnixMode("haproxy:unix:/run/a.sock"),
            "haproxy:unix:/run/a.sock:mode=660",
        )
        self.assertEqual(
            defaultUnixMode("haproxy:unix:/run/a.sock:mode=600"),
            "haproxy:unix:/run/a.sock:mode=600",
        )
        self.assertEqual(defaultUnixMode("haproxy:tcp:80"), "haproxy:tcp:80")


class UnixSocketTests(TestCase):
    """
    The socket file itself.
    """

    @defer.inlineCallbacks
    def test_socketMode(self) -> Any:
        """
        The socket file of a C{unix:} listener is readable and writable by
        its owner and group only.
        """
        from twisted.internet import reactor

        server = LoopbackServer(reactor)
        self.addCleanup(server.stop)
        # Not under _trial_temp, whose paths can pass AF_UNIX's 108 bytes.
        path = str(temporaryDirectory(self) / "s.sock")
        port = yield buildEndpoint(reactor, f"unix:{path}").listen(server.site)
        self.addCleanup(port.stopListening)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o660)


class TLSServerCase(TestCase):
    """
    A L{LoopbackServer}'s site and the test certificates, for TLS listeners
    on real sockets.
    """

    timeout = 30

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor = reactor
        self.certs = makeCertificates(self.mktemp())
        self.server = LoopbackServer(reactor)
        self.addCleanup(self.server.stop)

    def path(self, name: str) -> str:
        return os.path.join(self.certs, name)


class HTTPSTests(TLSServerCase):
    """
    HTTPS over real sockets, with and without client certificates.
    """

    @defer.inlineCallbacks
    def listen(self, clientCA: str | None = None) -> Any:
        description = (
            f"ssl:0:interface=127.0.0.1:privateKey={self.path('server.key')}"
            f":certKey={self.path('server.pem')}"
        )
        port = yield buildEndpoint(self.reactor, description, clientCA).listen(
            self.server.site
        )
        self.addCleanup(port.stopListening)
        return port.getHost().port

    def client(
        self,
        port: int,
        certificate: str | None = None,
        protocols: list[bytes] | None = None,
    ) -> Any:
        authority = ssl.Certificate.loadPEM(FilePath(self.path("ca.pem")).getContent())
        clientCertificate = None
        if certificate is not None:
            clientCertificate = ssl.PrivateCertificate.loadPEM(
                FilePath(self.path(certificate + ".pem")).getContent()
                + FilePath(self.path(certificate + ".key")).getContent()
            )
        options = ssl.optionsForClientTLS(
            "localhost",
            trustRoot=authority,
            clientCertificate=clientCertificate,
            acceptableProtocols=protocols,
        )
        return wrapClientTLS(
            options, TCP4ClientEndpoint(self.reactor, "127.0.0.1", port)
        )

    @defer.inlineCallbacks
    def test_https(self) -> Any:
        """
        An C{ssl:} listener serves HTTPS: C{wsgi.url_scheme} is C{https},
        and without client certificates C{SSL_CLIENT_VERIFY} is C{NONE}.
        """
        port = yield self.listen()
        data, closed = yield exchange(
            self.reactor, port, GET, endpoint=self.client(port)
        )
        self.assertEqual([r.code for r in parseResponses(data)], [200])
        seen = self.server.app.seen[0]
        self.assertEqual(seen["wsgi.url_scheme"], "https")
        self.assertEqual(seen["SSL_CLIENT_VERIFY"], "NONE")
        self.assertNotIn("SSL_CLIENT_S_DN", seen)

    @defer.inlineCallbacks
    def test_alpnHTTP10(self) -> Any:
        """
        A client that offers only C{http/1.0} in ALPN (C{curl --http1.0}) is
        served, as nginx serves it, instead of failing the handshake.
        """
        port = yield self.listen()
        data, closed = yield exchange(
            self.reactor,
            port,
            b"GET /t HTTP/1.0\r\nHost: localhost\r\n\r\n",
            endpoint=self.client(port, protocols=[b"http/1.0"]),
        )
        self.assertEqual([r.code for r in parseResponses(data)], [200])
        self.assertEqual(self.server.app.seen[0]["SERVER_PROTOCOL"], "HTTP/1.0")

    @defer.inlineCallbacks
    def test_mutualTLS(self) -> Any:
        """
        With C{client-ca}, a client certificate signed by that CA is
        required, and its subject and issuer are in the environ.
        """
        port = yield self.listen(self.path("ca.pem"))
        data, closed = yield exchange(
            self.reactor, port, GET, endpoint=self.client(port, "client")
        )
        self.assertEqual([r.code for r in parseResponses(data)], [200])
        seen = self.server.app.seen[0]
        self.assertEqual(seen["SSL_CLIENT_S_DN"], "CN=client,O=twsgi tests")
        self.assertEqual(seen["SSL_CLIENT_I_DN"], "CN=twsgi test CA,O=twsgi tests")
        self.assertEqual(seen["SSL_CLIENT_VERIFY"], "SUCCESS")
        self.assertEqual(seen["wsgi.url_scheme"], "https")

    @defer.inlineCallbacks
    def test_fullChain(self) -> Any:
        """
        The certificates after the first of the C{certKey=} file (certbot's
        C{fullchain.pem}, as nginx's C{ssl_certificate} reads it) are sent
        as its chain, so a client that trusts only the root CA verifies the
        server's certificate.
        """
        makeIntermediateCertificate(self.certs, "leaf")
        description = (
            f"ssl:0:interface=127.0.0.1:privateKey={self.path('leaf.key')}"
            f":certKey={self.path('leaf-fullchain.pem')}"
        )
        port = yield buildEndpoint(self.reactor, description).listen(self.server.site)
        self.addCleanup(port.stopListening)
        port = port.getHost().port
        data, closed = yield exchange(
            self.reactor, port, GET, endpoint=self.client(port)
        )
        self.assertEqual([r.code for r in parseResponses(data)], [200])

    @defer.inlineCallbacks
    def test_clientCABundle(self) -> Any:
        """
        A C{client-ca} file of several CAs (a new CA beside the one it
        replaces), with CRLF line ends, trusts each of them, not only the
        first.
        """
        other = FilePath(makeCertificates(self.mktemp())).child("ca.pem")
        bundle = FilePath(self.mktemp())
        bundle.setContent(
            (other.getContent() + FilePath(self.path("ca.pem")).getContent()).replace(
                b"\n", b"\r\n"
            )
        )
        port = yield self.listen(bundle.path)
        data, closed = yield exchange(
            self.reactor, port, GET, endpoint=self.client(port, "client")
        )
        self.assertEqual([r.code for r in parseResponses(data)], [200])
        self.assertEqual(self.server.app.seen[0]["SSL_CLIENT_VERIFY"], "SUCCESS")

    @defer.inlineCallbacks
    def test_mutualTLSRefused(self) -> Any:
        """
        A client with a certificate from another CA, or with none, never
        reaches the application.
        """
        port = yield self.listen(self.path("ca.pem"))
        for certificate in ("stranger", None):
            try:
                data, closed = yield exchange(
                    self.reactor, port, GET, endpoint=self.client(port, certificate)
                )
            except Exception:
                data = b""
            self.assertEqual(data, b"", certificate)
        self.assertEqual(self.server.app.seen, [])
        self.flushLoggedErrors()

    @defer.inlineCallbacks
    def test_rejectedThenMore(self) -> Any:
        """
        A request rejected over TLS closes the connection with TLS's own
        close (C{close_notify}), not a TCP half-close under it: the client
        that sends more bytes after the answer meets no truncated stream,
        and the server logs no error (Twisted's TLS layer used to raise
        C{AttributeError} on those bytes).
        """
        port = yield self.listen()

        def talk() -> bytes:
            context = stdlibssl.create_default_context(cafile=self.path("ca.pem"))
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                with context.wrap_socket(
                    raw, server_hostname="localhost", suppress_ragged_eofs=False
                ) as tls:
                    tls.sendall(b"GET / HTTP/1.1\nHost: localhost\r\n\r\n")
                    answer = b""
                    while not answer.endswith(b"line ending\n"):
                        answer += tls.recv(1000)
                    try:
                        tls.sendall(b"more bytes after the answer\r\n")
                    except OSError:
                        pass
                    while True:
                        data = tls.recv(1000)
                        if not data:
                            return answer
                        answer += data

        answer = yield threads.deferToThread(talk)
        self.assertEqual([r.code for r in parseResponses(answer)], [400])
        self.assertEqual(self.server.app.seen, [])

    @defer.inlineCallbacks
    def test_minimumVersion(self) -> Any:
        """
        TLS 1.2 is accepted and anything older is refused.
        """
        port = yield self.listen()
        version = yield handshake(port, stdlibssl.TLSVersion.TLSv1_2)
        self.assertEqual(version, "TLSv1.2")
        for old in (stdlibssl.TLSVersion.TLSv1, stdlibssl.TLSVersion.TLSv1_1):
            yield self.assertFailure(handshake(port, old), stdlibssl.SSLError, OSError)


def handshake(port: int, maximum: stdlibssl.TLSVersion) -> Any:
    """
    In a thread: a TLS handshake with C{port}, offering every version up to
    C{maximum}; fire with the version chosen.
    """

    def talk() -> str:
        context = stdlibssl.SSLContext(stdlibssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = stdlibssl.CERT_NONE
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.minimum_version = stdlibssl.TLSVersion.MINIMUM_SUPPORTED
        context.maximum_version = maximum
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with context.wrap_socket(raw) as tls:
                return str(tls.version())

    return threads.deferToThread(talk)


class TLSFailureLogTests(TLSServerCase):
    """
    A connection that OpenSSL ends (a plain-HTTP request on a TLS port, a
    failed handshake) leaves one line in the server log, rate-limited.
    """

    listen = HTTPSTests.listen
    client = HTTPSTests.client

    @defer.inlineCallbacks
    def failures(self, port: int, *clients: Any) -> Any:
        """
        Run each client (a callable that takes the port and returns a
        L{Deferred}, whose failure is ignored) in turn; return the server
        log lines about failed TLS connections.
        """
        with capturedLogs() as events:
            for client in clients:
                try:
                    yield client(port)
                except Exception:
                    pass
            # The server may see the end of the last connection after the
            # client did.
            for _ in range(50):
                yield deferLater(self.reactor, 0.02)
        return [
            formatEvent(event)
            for event in events
            if "TLS connection from" in formatEvent(event)
            or "were not logged" in formatEvent(event)
        ]

    def plainHTTP(self, port: int) -> Any:
        return exchange(self.reactor, port, GET)

    @defer.inlineCallbacks
    def test_plainHTTP(self) -> Any:
        """
        A plain-HTTP request on an C{ssl:} port is named as such, with the
        client's address and the listener.
        """
        self.server.site.listener = "ssl:8443:privateKey=k.pem"
        port = yield self.listen()
        [line] = yield self.failures(port, self.plainHTTP)
        self.assertIn(
            "TLS connection from 127.0.0.1 failed on ssl:8443:privateKey=k.pem: ", line
        )
        self.assertIn("a plain-HTTP request on a TLS port", line)
        self.assertEqual(self.server.app.seen, [])

    @defer.inlineCallbacks
    def test_listenerField(self) -> Any:
        """
        The line's event names the listener in a field of its own,
        C{listener} (a field of C{--log-format json}), as its text does.
        """
        self.server.site.listener = "ssl:8443:privateKey=k.pem"
        port = yield self.listen()
        with capturedLogs() as events:
            yield self.failures(port, self.plainHTTP)
        [event] = [e for e in events if "why" in e]
        self.assertEqual(event["listener"], "ssl:8443:privateKey=k.pem")
        self.assertEqual(event["peer"], "127.0.0.1")
        self.assertNotIn("on", event)

    @defer.inlineCallbacks
    def test_handshake(self) -> Any:
        """
        A client with no TLS version in common, and under C{client-ca=}
        one whose certificate is refused or missing, each leave a line with
        OpenSSL's reason.
        """
        port = yield self.listen()
        [line] = yield self.failures(
            port, lambda port: handshake(port, stdlibssl.TLSVersion.TLSv1_1)
        )
        self.assertIn("TLS connection from 127.0.0.1", line)
        self.assertIn("failed: TLS error: unsupported protocol", line)
        port = yield self.listen(self.path("ca.pem"))
        lines = yield self.failures(
            port,
            lambda port: exchange(
                self.reactor, port, GET, endpoint=self.client(port, "stranger")
            ),
            lambda port: exchange(self.reactor, port, GET, endpoint=self.client(port)),
        )
        self.assertEqual(len(lines), 2, lines)
        self.assertIn("certificate verify failed", lines[0])
        self.assertIn("peer did not return a certificate", lines[1])
        self.flushLoggedErrors()

    @defer.inlineCallbacks
    def test_noTLSNoLine(self) -> Any:
        """
        A connection closed before it sent a byte (a load balancer's TCP
        check) and a good one leave no line.
        """
        port = yield self.listen()

        def connectAndClose(port: int) -> Any:
            def talk() -> None:
                socket.create_connection(("127.0.0.1", port), timeout=5).close()

            return threads.deferToThread(talk)

        lines = yield self.failures(
            port,
            connectAndClose,
            lambda port: exchange(self.reactor, port, GET, endpoint=self.client(port)),
        )
        self.assertEqual(lines, [])
        self.assertEqual(len(self.server.app.seen), 1)

    @defer.inlineCallbacks
    def test_flood(self) -> Any:
        """
        Of many failed connections in a minute, only the first L{BURST} are
        logged.
        """
        port = yield self.listen()
        lines = yield self.failures(port, *[self.plainHTTP] * (BURST + 5))
        self.assertEqual(len(lines), BURST)


def alpn(port: int, protocols: list[str]) -> Any:
    """
    In a thread: a TLS handshake with C{port}, offering C{protocols} in
    ALPN; fire with the protocol chosen, or fail with the client's
    L{ssl.SSLError}.
    """

    def talk() -> str | None:
        context = stdlibssl.SSLContext(stdlibssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = stdlibssl.CERT_NONE
        context.set_alpn_protocols(protocols)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                return tls.selected_alpn_protocol()

    return threads.deferToThread(talk)


class ALPNTests(TLSServerCase):
    """
    A client that offers in ALPN none of the protocols its listener speaks
    fails the handshake with the C{no_application_protocol} alert (RFC 7301
    3.2), as with nginx, and the server log says what it offered; the
    others get the listener's most preferred protocol of theirs.
    """

    failures = TLSFailureLogTests.failures

    @defer.inlineCallbacks
    def listen(
        self, description: str, tls: TLSProfile = PROFILES["intermediate"]
    ) -> Any:
        port = yield buildEndpoint(self.reactor, description, tls=tls).listen(
            self.server.site
        )
        self.addCleanup(port.stopListening)
        return port.getHost().port

    def ssl(self) -> str:
        return (
            f"ssl:0:interface=127.0.0.1:privateKey={self.path('server.key')}"
            f":certKey={self.path('server.pem')}"
        )

    @defer.inlineCallbacks
    def assertRefused(self, port: int, offered: list[str]) -> Any:
        """
        A client offering C{offered} gets the alert; return the server
        log line.
        """
        refusals: list[Exception] = []

        def client(port: int) -> Any:
            d = alpn(port, offered)
            d.addErrback(lambda f: refusals.append(f.value))
            return d

        [line] = yield self.failures(port, client)
        [refusal] = refusals
        self.assertIsInstance(refusal, stdlibssl.SSLError)
        self.assertIn("alert no application protocol", str(refusal))
        return line

    @defer.inlineCallbacks
    def test_noneInCommon(self) -> Any:
        """
        On an C{ssl:} listener, the line names the client, what it offered
        (escaped) and what the listener speaks; a client offering one of
        them among others gets it.
        """
        port = yield self.listen(self.ssl())
        line = yield self.assertRefused(port, ["spdy/3", "x\nlog"])
        self.assertIn("TLS connection from 127.0.0.1 failed", line)
        self.assertIn(
            "no application protocol in common (the client offered spdy/3, "
            "x\\nlog; this listener speaks h2, http/1.1, http/1.0)",
            line,
        )
        self.assertNotIn("internal error", line)
        chosen = yield alpn(port, ["spdy/3", "http/1.1", "h2"])
        self.assertEqual(chosen, "h2")
        self.flushLoggedErrors()

    @defer.inlineCallbacks
    def test_sni(self) -> Any:
        """
        On a C{tls:} listener, whichever certificate the client's server
        name picks.
        """
        directory = makeTLSDirectory(self.certs, self.mktemp())
        port = yield self.listen(f"tls:{directory}:port=0:interface=127.0.0.1")
        yield self.assertRefused(port, ["spdy/3"])
        chosen = yield alpn(port, ["http/1.1"])
        self.assertEqual(chosen, "http/1.1")
        self.flushLoggedErrors()

    @defer.inlineCallbacks
    def test_withoutHTTP2(self) -> Any:
        """
        A listener without HTTP/2 (C{--no-http2}) refuses a client that
        offers only C{h2}, and serves one that offers C{http/1.1} too over
        HTTP/1.1, also with a profile of its own.
        """
        off = TLSProfile(http2=False)
        port = yield self.listen(self.ssl(), off)
        line = yield self.assertRefused(port, ["h2"])
        self.assertIn("this listener speaks http/1.1, http/1.0)", line)
        chosen = yield alpn(port, ["h2", "http/1.1"])
        self.assertEqual(chosen, "http/1.1")
        port = yield self.listen(self.ssl() + ":profile=modern", off)
        chosen = yield alpn(port, ["h2", "http/1.1"])
        self.assertEqual(chosen, "http/1.1")
        self.flushLoggedErrors()


PROXY_V1 = b"PROXY TCP4 203.0.113.7 192.0.2.1 40000 443\r\n"
"""
A PROXY protocol header (version 1, as C{curl --haproxy-protocol} sends it)
naming the client 203.0.113.7.
"""


def curl(port: int, *options: str) -> Any:
    """
    In a thread: C{curl http://} to C{port}, with C{options}; fire with its
    exit status and what it printed (the response head and body).
    """

    def run() -> tuple[int, str]:
        done = subprocess.run(
            ["curl", "-sS", "-i", "--max-time", "10", *options],
            capture_output=True,
            timeout=20,
        )
        return done.returncode, (done.stdout + done.stderr).decode("latin-1")

    return threads.deferToThread(run)


class PlainHTTPTests(TLSServerCase):
    """
    A plain-HTTP request on a TLS port (C{ssl:}, C{tls:}, and after the
    PROXY header on C{haproxy:ssl:} and C{haproxy:tls:}) gets a cleartext
    C{400 Bad Request} saying to use C{https://}, then the connection
    closes; the server log keeps its line.
    """

    failures = TLSFailureLogTests.failures

    def assertAnswered(self, data: bytes, closed: bool) -> None:
        [response] = parseResponses(data)
        self.assertEqual((response.code, response.reason), (400, b"Bad Request"))
        self.assertEqual(response.header(b"connection"), b"close")
        self.assertIn(b"https://", response.body)
        self.assertTrue(closed)

    @defer.inlineCallbacks
    def answered(self, port: int, preamble: bytes = b"") -> Any:
        """
        Send a plain-HTTP request after C{preamble}; check the answer, and
        return the server log lines about failed TLS connections.
        """
        answers = []

        def client(port: int) -> Any:
            d = exchange(self.reactor, port, preamble + GET)
            d.addCallback(answers.append)
            return d

        lines = yield self.failures(port, client)
        [(data, closed)] = answers
        self.assertAnswered(data, closed)
        self.assertEqual(self.server.app.seen, [])
        # The listener counts the connection closed (its gate, its drain).
        self.assertFalse(self.server.site.connections)
        return lines

    @defer.inlineCallbacks
    def test_ssl(self) -> Any:
        """
        On an C{ssl:} port, a raw socket and C{curl http://} get the
        answer, and the log line names the client.
        """
        port = yield HTTPSTests.listen(self)  # type: ignore[arg-type]
        [line] = yield self.answered(port)
        self.assertIn("TLS connection from 127.0.0.1 failed", line)
        self.assertIn("a plain-HTTP request on a TLS port", line)
        status, output = yield curl(port, f"http://127.0.0.1:{port}/t")
        self.assertEqual(status, 0, output)
        self.assertTrue(output.startswith("HTTP/1.1 400 Bad Request\r\n"), output)
        self.assertIn("https://", output)
        https = yield exchange(
            self.reactor,
            port,
            GET,
            endpoint=HTTPSTests.client(self, port),  # type: ignore[arg-type]
        )
        self.assertEqual([r.code for r in parseResponses(https[0])], [200])

    @defer.inlineCallbacks
    def test_tls(self) -> Any:
        """
        On a C{tls:} port too.
        """
        port = yield SNITests.listen(self)  # type: ignore[arg-type]
        [line] = yield self.answered(port)
        self.assertIn("a plain-HTTP request on a TLS port", line)
        status, output = yield curl(port, f"http://127.0.0.1:{port}/t")
        self.assertTrue(output.startswith("HTTP/1.1 400 Bad Request\r\n"), output)

    @defer.inlineCallbacks
    def test_proxied(self) -> Any:
        """
        On C{haproxy:ssl:} and C{haproxy:tls:}, a plain-HTTP request after
        the PROXY header gets the answer (C{curl --haproxy-protocol
        http://} too), and the log line names the client the header names.
        """
        for kind in ("ssl", "tls"):
            port = yield ProxiedTLSTests.listen(self, kind)  # type: ignore[arg-type]
            [line] = yield self.answered(port, PROXY_V1)
            self.assertIn("TLS connection from 203.0.113.7 failed", line)
            status, output = yield curl(
                port, "--haproxy-protocol", f"http://127.0.0.1:{port}/t"
            )
            self.assertEqual(status, 0, output)
            self.assertTrue(
                output.startswith("HTTP/1.1 400 Bad Request\r\n"), (kind, output)
            )


class SNITests(TLSServerCase):
    """
    A C{tls:} listener serves a directory of PEM files, a certificate for
    each server name (SNI), all with the listener's TLS profile and session
    resumption.
    """

    @defer.inlineCallbacks
    def listen(self, options: str = "") -> Any:
        makeServerCertificate(self.certs, "other", ("other.test", "*.wild.test"))
        directory = makeTLSDirectory(
            self.certs,
            self.mktemp(),
            (("1-localhost.pem", "server"), ("2-other.pem", "other")),
        )
        description = f"tls:{directory}:port=0:interface=127.0.0.1{options}"
        port = yield buildEndpoint(self.reactor, description).listen(self.server.site)
        self.addCleanup(port.stopListening)
        return port.getHost().port

    def context(
        self, maximum: stdlibssl.TLSVersion | None = None, ciphers: str | None = None
    ) -> stdlibssl.SSLContext:
        """
        A client context that trusts the test CA and checks no name.
        """
        context = stdlibssl.create_default_context(cafile=self.path("ca.pem"))
        context.check_hostname = False
        if maximum is not None:
            context.maximum_version = maximum
        if ciphers is not None:
            context.set_ciphers(ciphers)
        return context

    def get(
        self,
        port: int,
        name: str | None,
        context: stdlibssl.SSLContext | None = None,
        session: stdlibssl.SSLSession | None = None,
    ) -> Any:
        """
        In a thread: C{GET} over TLS, sending the server name C{name}; fire
        with the common name of the server's certificate, the TLS version,
        whether the session was resumed, the session and the answer.
        """
        context = context or self.context()

        def talk() -> tuple[str, str | None, bool, Any, bytes]:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                with context.wrap_socket(
                    raw, server_hostname=name, session=session
                ) as tls:
                    tls.sendall(GET)
                    answer = b""
                    while data := tls.recv(65536):
                        answer += data
                    certificate = tls.getpeercert()
                    assert certificate is not None
                    subject = dict(part[0] for part in certificate["subject"])
                    return (
                        subject["commonName"],
                        tls.version(),
                        tls.session_reused,
                        tls.session,
                        answer,
                    )

        return threads.deferToThread(talk)

    @defer.inlineCallbacks
    def test_serverName(self) -> Any:
        """
        The server name picks the certificate with that DNS name, or a
        wildcard one, in any case and with or without the trailing dot of a
        fully qualified name; no name, or a name no certificate has, gets the
        first file's certificate.
        """
        port = yield self.listen()
        for name, expected in [
            ("localhost", "server"),
            ("other.test", "other"),
            ("Other.TEST.", "other"),
            ("a.wild.test", "other"),
            ("a.wild.test.", "other"),
            ("nope.test", "server"),
            (None, "server"),
        ]:
            subject, _, _, _, answer = yield self.get(port, name)
            self.assertEqual(subject, expected, name)
            self.assertEqual([r.code for r in parseResponses(answer)], [200])

    @defer.inlineCallbacks
    def test_profile(self) -> Any:
        """
        Every name's certificate follows the TLS profile: Mozilla's
        "intermediate" refuses a TLS 1.2 CBC cipher; C{minimum=TLSv1.3}
        refuses TLS 1.2.
        """
        port = yield self.listen()
        cbc = self.context(stdlibssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-SHA256")
        for name in ("localhost", "other.test"):
            yield self.assertFailure(self.get(port, name, cbc), stdlibssl.SSLError)
        port = yield self.listen(":minimum=TLSv1.3")
        for name in ("localhost", "other.test"):
            yield self.assertFailure(
                self.get(port, name, self.context(stdlibssl.TLSVersion.TLSv1_2)),
                stdlibssl.SSLError,
            )
            _, version, _, _, _ = yield self.get(port, name)
            self.assertEqual(version, "TLSv1.3")

    @defer.inlineCallbacks
    def test_resumption(self) -> Any:
        """
        A TLS 1.2 session is resumed, for the first certificate's name and
        for another one.
        """
        port = yield self.listen()
        context = self.context(stdlibssl.TLSVersion.TLSv1_2)
        for name in ("localhost", "other.test"):
            _, _, reused, session, _ = yield self.get(port, name, context)
            self.assertFalse(reused)
            _, _, reused, _, answer = yield self.get(port, name, context, session)
            self.assertTrue(reused, name)
            self.assertEqual([r.code for r in parseResponses(answer)], [200])


def idleClose(port: int, preamble: bytes, cafile: str) -> tuple[bytes, list[str]]:
    """
    In a thread: send C{preamble} in clear, then one keep-alive request
    over TLS, and stay idle until the server closes; answer its
    C{close_notify} by closing our side (as HAProxy and browsers do).
    Return the status line, and how the server ended the connection, in
    order: C{close_notify}, then C{FIN} or C{RST}.
    """
    context = stdlibssl.create_default_context(cafile=cafile)
    incoming, outgoing = stdlibssl.MemoryBIO(), stdlibssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    seen: list[str] = []
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(preamble)
        while True:
            try:
                tls.do_handshake()
                break
            except stdlibssl.SSLWantReadError:
                raw.sendall(outgoing.read())
                incoming.write(raw.recv(65536) or b"")
        tls.write(b"GET /idle HTTP/1.1\r\nHost: localhost\r\n\r\n")
        raw.sendall(outgoing.read())
        while True:
            try:
                data = raw.recv(65536)
            except ConnectionResetError:
                seen.append("RST")
                break
            if not data:
                seen.append("FIN")
                break
            incoming.write(data)
            try:
                while chunk := tls.read(65536):
                    answer += chunk
            except stdlibssl.SSLWantReadError:
                continue
            # Python reads the peer's close_notify as the end: b"".
            seen.append("close_notify")
            raw.shutdown(socket.SHUT_WR)
    return answer.split(b"\r\n", 1)[0], seen


class ProxiedTLSTests(TLSServerCase):
    """
    C{haproxy:ssl:} and C{haproxy:tls:} listeners read the PROXY header in
    clear before the TLS handshake, as HAProxy (C{ssl send-proxy}), nginx,
    AWS NLB and C{curl --haproxy-protocol} send it, and offer the site's
    protocols (HTTP/2) in ALPN.
    """

    @defer.inlineCallbacks
    def listen(self, kind: str = "ssl", clientCA: str | None = None) -> Any:
        if kind == "ssl":
            description = (
                f"haproxy:ssl:0:interface=127.0.0.1:privateKey={self.path('server.key')}"
                f":certKey={self.path('server.pem')}"
            )
        else:
            directory = makeTLSDirectory(self.certs, self.mktemp())
            description = f"haproxy:tls:{directory}:port=0:interface=127.0.0.1"
        port = yield buildEndpoint(self.reactor, description, clientCA).listen(
            self.server.site
        )
        self.addCleanup(port.stopListening)
        return port.getHost().port

    def h2(self, port: int, **kwargs: Any) -> Any:
        """
        In a thread: connect with the PROXY header before TLS, offering
        C{h2} and C{http/1.1}; return the protocol ALPN chose and the
        status of C{GET /h2} if it chose C{h2}.
        """
        from tests.helpers import h2client

        def talk() -> tuple[str | None, int | None]:
            client = h2client.connect(port, self.certs, preamble=PROXY_V1, **kwargs)
            try:
                if client.alpn != "h2":
                    return client.alpn, None
                return client.alpn, client.answer(client.request("GET", "/h2")).status
            finally:
                client.close()

        return threads.deferToThread(talk)

    def http11(self, port: int, preamble: bytes) -> Any:
        """
        In a thread: connect, send C{preamble} in clear, then speak
        HTTP/1.1 over TLS; return what came back.
        """

        def talk() -> bytes:
            context = stdlibssl.create_default_context(cafile=self.path("ca.pem"))
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                raw.sendall(preamble)
                with context.wrap_socket(raw, server_hostname="localhost") as tls:
                    tls.sendall(GET)
                    answer = b""
                    while data := tls.recv(65536):
                        answer += data
                    return answer

        return threads.deferToThread(talk)

    @defer.inlineCallbacks
    def test_sslHeaderBeforeHandshake(self) -> Any:
        """
        On C{haproxy:ssl:}, the application sees the client the header
        names, over HTTPS.
        """
        port = yield self.listen()
        answer = yield self.http11(port, PROXY_V1)
        self.assertEqual([r.code for r in parseResponses(answer)], [200])
        [seen] = self.server.app.seen
        self.assertEqual(seen["REMOTE_ADDR"], "203.0.113.7")
        self.assertEqual(seen["wsgi.url_scheme"], "https")
        self.assertEqual(seen["SSL_CLIENT_VERIFY"], "NONE")

    @defer.inlineCallbacks
    def test_sslHTTP2(self) -> Any:
        """
        On C{haproxy:ssl:}, ALPN offers the site's protocols: a client that
        asks for C{h2} gets HTTP/2.
        """
        port = yield self.listen()
        alpn, status = yield self.h2(port)
        self.assertEqual((alpn, status), ("h2", 200))
        [seen] = self.server.app.seen
        self.assertEqual(seen["REMOTE_ADDR"], "203.0.113.7")
        # The spelling (HTTP/2 or HTTP/2.0) is the HTTP/2 tests' business.
        self.assertTrue(seen["SERVER_PROTOCOL"].startswith("HTTP/2"), seen)

    @defer.inlineCallbacks
    def test_sslClientCertificate(self) -> Any:
        """
        C{client-ca=} on C{haproxy:ssl:} still requires a client
        certificate signed by that CA, and names it in the environ.
        """
        port = yield self.listen(clientCA=self.path("ca.pem"))
        for stranger in ("stranger", None):
            # The handshake fails, or (TLS 1.3) the server's alert closes
            # the connection before an answer (the client's AssertionError).
            yield self.assertFailure(
                self.h2(port, clientCertificate=stranger),
                stdlibssl.SSLError,
                OSError,
                AssertionError,
            )
        self.assertEqual(self.server.app.seen, [])
        alpn, status = yield self.h2(port, clientCertificate="client")
        self.assertEqual((alpn, status), ("h2", 200))
        [seen] = self.server.app.seen
        self.assertEqual(seen["SSL_CLIENT_VERIFY"], "SUCCESS")
        self.assertEqual(seen["SSL_CLIENT_S_DN"], "CN=client,O=twsgi tests")
        self.assertEqual(seen["REMOTE_ADDR"], "203.0.113.7")

    @defer.inlineCallbacks
    def test_tlsHeaderBeforeHandshake(self) -> Any:
        """
        On C{haproxy:tls:} (Twisted's SNI endpoint), the header comes
        before the handshake too, and ALPN offers HTTP/2.
        """
        port = yield self.listen("tls")
        answer = yield self.http11(port, PROXY_V1)
        self.assertEqual([r.code for r in parseResponses(answer)], [200])
        alpn, status = yield self.h2(port)
        self.assertEqual((alpn, status), ("h2", 200))
        self.assertEqual(
            [(s["REMOTE_ADDR"], s["wsgi.url_scheme"]) for s in self.server.app.seen],
            [("203.0.113.7", "https")] * 2,
        )

    @defer.inlineCallbacks
    def test_idleClose(self) -> Any:
        """
        The keep-alive timeout closes an idle C{haproxy:ssl:} connection as
        it closes an C{ssl:} one: TLS's C{close_notify}, then, once the
        client closed its side, a FIN, not a reset.
        """
        self.server.site.limits = Limits(keepAliveTimeout=0.5)
        proxied = yield self.listen()
        plain = yield HTTPSTests.listen(self)  # type: ignore[arg-type]
        for port, preamble in ((plain, b""), (proxied, PROXY_V1)):
            status, seen = yield threads.deferToThread(
                idleClose, port, preamble, self.path("ca.pem")
            )
            self.assertEqual(status, b"HTTP/1.1 200 OK")
            self.assertEqual(seen, ["close_notify", "FIN"], preamble)

    @defer.inlineCallbacks
    def test_noHeader(self) -> Any:
        """
        A TLS handshake without a PROXY header before it never reaches the
        application, and the server log says why.
        """
        port = yield self.listen()
        with capturedLogs() as events:
            try:
                answer = yield self.http11(port, b"")
            except (stdlibssl.SSLError, OSError):
                answer = b""
        self.assertEqual(answer, b"")
        self.assertEqual(self.server.app.seen, [])
        self.assertTrue(
            any("a TLS handshake came first" in formatEvent(e) for e in events),
            events,
        )


del serverFromString


class HTTPClientTests(TestCase):
    """
    A L{TwsgiService} on an C{ssl:} endpoint, asked by the standard
    library's HTTPS client, which verifies the certificate.
    """

    timeout = 30

    @defer.inlineCallbacks
    def serve(self) -> Any:
        """
        Serve the validated test application over TLS; return the port and a
        client context that trusts the test CA.
        """
        from tests.apps import wsgiapps
        from tests.helpers import server as _server

        certs = makeCertificates(str(_server.temporaryDirectory(self) / "certs"))
        key, certificate = (
            os.path.join(certs, n) for n in ("server.key", "server.pem")
        )
        server = yield _server.serve(
            self,
            wsgiapps.app,
            [f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={certificate}"],
        )
        context = stdlibssl.create_default_context(cafile=os.path.join(certs, "ca.pem"))
        return server.addresses[0][1].port, context

    def fetch(self, port: int, *args: Any, **kwargs: Any) -> Any:
        from tests.helpers import server as _server

        return threads.deferToThread(_server.fetch, "localhost", port, *args, **kwargs)

    @defer.inlineCallbacks
    def test_urlScheme(self) -> Any:
        """
        The application sees C{wsgi.url_scheme} C{https} and the real port.
        """
        import json

        port, context = yield self.serve()
        status, _, body = yield self.fetch(port, "GET", "/environ", context=context)
        self.assertEqual(status, 200)
        facts = json.loads(body)
        self.assertEqual(facts["wsgi.url_scheme"], "https")
        self.assertEqual(facts["SERVER_PORT"], str(port))

    @defer.inlineCallbacks
    def test_chunkedPost(self) -> Any:
        """
        A chunked POST over TLS reaches the application whole.
        """
        import json

        port, context = yield self.serve()
        pieces = [bytes([i]) * 5000 for i in range(40)]
        status, _, body = yield self.fetch(
            port, "POST", "/echo", body=iter(pieces), context=context
        )
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["length"], 200_000)
        self.assertEqual(json.loads(body)["transferEncoding"], "chunked")
