"""
Tests for the TLS profile of C{ssl:} listeners (L{twsgi.server.tls.TLSProfile}):
Mozilla's "intermediate" by default, checked by sslyze and by OpenSSL's
own client; the per-listener options and the C{--tls-*} settings; session
resumption, and its keys replaced with the workers.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from typing import Any

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.helpers import server as _server
from tests.helpers.certs import makeCertificates, makeTLSDirectory
from tests.helpers.workers import SupervisedServer
from twsgi.cli.options import makeService
from twsgi.server.listeners import buildEndpoint
from twsgi.server.tls import INTERMEDIATE_CIPHERS, PROFILES, TLSProfile

OPENSSL = shutil.which("openssl")


def _sslyze() -> str:
    """
    The sslyze command: C{$SSLYZE}, or C{sslyze} on C{PATH}.
    sslyze pins an older C{cryptography} than pyOpenSSL accepts, so it
    lives in an environment of its own (C{tox} makes one).
    """
    found = os.environ.get("SSLYZE") or shutil.which("sslyze")
    if not found:
        raise SkipTest(
            "sslyze is not installed: put it in a virtualenv of its own and "
            "set SSLYZE to its sslyze (tox does)"
        )
    return found


class ProfileTests(SynchronousTestCase):
    """
    L{TLSProfile.given} and the settings and listener options that use it.
    """

    def test_default(self) -> None:
        """
        The default is Mozilla's "intermediate": TLS 1.2 and up, its
        ciphers, P-256.
        """
        self.assertEqual(
            PROFILES["intermediate"],
            TLSProfile("TLSv1.2", INTERMEDIATE_CIPHERS, "prime256v1"),
        )
        self.assertNotIn("CBC", INTERMEDIATE_CIPHERS)
        self.assertNotIn("SHA:", INTERMEDIATE_CIPHERS + ":")

    def test_given(self) -> None:
        """
        A named profile replaces the whole profile; each named value
        replaces its own.
        """
        self.assertEqual(
            PROFILES["intermediate"].given(profile="modern", curve="secp384r1"),
            TLSProfile("TLSv1.3", INTERMEDIATE_CIPHERS, "secp384r1"),
        )
        self.assertEqual(
            PROFILES["modern"].given(ciphers="ECDHE-RSA-AES128-GCM-SHA256"),
            TLSProfile("TLSv1.3", "ECDHE-RSA-AES128-GCM-SHA256", "prime256v1"),
        )

    def test_badValues(self) -> None:
        """
        A value that is not one of the choices is refused in one line that
        names it.
        """
        for kwargs, words in [
            ({"profile": "old"}, "profile=old"),
            ({"curve": "X448"}, "curve=X448"),
            ({"minimum": "TLSv1.0"}, "minimum=TLSv1.0"),
            ({"ciphers": "NOPE-CIPHER"}, "ciphers=NOPE-CIPHER"),
        ]:
            error = self.assertRaises(
                ValueError, PROFILES["intermediate"].given, **kwargs
            )
            self.assertIn(words, str(error))
            self.assertNotIn("\n", str(error))

    def test_badEndpointOption(self) -> None:
        """
        A bad TLS option of an C{ssl:} endpoint string is one line at
        startup.
        """
        certs = makeCertificates(self.mktemp())
        key, cert = (os.path.join(certs, n) for n in ("server.key", "server.pem"))
        error = self.assertRaises(
            ValueError,
            buildEndpoint,
            None,
            f"ssl:0:privateKey={key}:certKey={cert}:minimum=TLSv1.1",
        )
        self.assertIn("minimum=TLSv1.1 is not one of TLSv1.2, TLSv1.3", str(error))

    def test_badSetting(self) -> None:
        """
        A bad C{--tls-curve} ends the process with one line, not a
        traceback.
        """
        error = self.assertRaises(
            SystemExit,
            makeService,
            {"app": "twsgi.example:app", "tls_curve": "X448", "access_log": "none"},
        )
        text = str(error.code)
        self.assertIn("curve=X448 is not one of", text)
        self.assertNotIn("\n", text)

    def test_supervisorChecks(self) -> None:
        """
        Under C{--workers}, the supervisor checks each C{ssl:} listener with
        the workers' profile: C{sslmethod=} with C{--tls-profile modern} is
        one line at startup.
        """
        certs = makeCertificates(self.mktemp())
        key, cert = (os.path.join(certs, n) for n in ("server.key", "server.pem"))
        error = self.assertRaises(
            SystemExit,
            makeService,
            {
                "app": "twsgi.example:app",
                "workers": 1,
                "tls_profile": "modern",
                "access_log": "none",
                "endpoint": [
                    f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
                    ":sslmethod=TLS_METHOD"
                ],
            },
        )
        text = str(error.code)
        self.assertIn("sslmethod=TLS_METHOD cannot be given with minimum=TLSv1.3", text)
        self.assertNotIn("\n", text)


def listener(certs: str, sni: bool) -> str:
    """
    The endpoint string of an C{ssl:} listener on 127.0.0.1, port 0, with
    the server certificate of L{makeCertificates} in C{certs}; with
    C{sni}, a C{tls:} one whose directory holds that certificate and key.
    """
    key, cert = (os.path.join(certs, n) for n in ("server.key", "server.pem"))
    if not sni:
        return f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
    directory = makeTLSDirectory(certs, os.path.join(certs, "sni"))
    return f"tls:{directory}:port=0:interface=127.0.0.1"


class LiveTests(SynchronousTestCase):
    """
    A C{python -m twsgi} process with an C{ssl:} listener, asked by sslyze
    and by C{openssl s_client}.
    """

    def serve(
        self, *args: str, options: str = "", withRSA: bool = False, sni: bool = False
    ) -> int:
        """
        Start a server on an C{ssl:} listener (a C{tls:} one with C{sni})
        with C{options} after its endpoint string and a certificate for
        localhost; return its port.
        """
        self.certs = makeCertificates(
            str(_server.temporaryDirectory(self) / "certs"), withRSA=withRSA
        )
        process = _server.start(
            self,
            [
                "--app",
                "twsgi.example:app",
                "--access-log",
                "none",
                "--endpoint",
                listener(self.certs, sni) + options,
                *args,
            ],
            checkout=True,
        )
        return process.addresses[0][1]

    def sClient(self, port: int, *args: str) -> str:
        """
        The output of C{openssl s_client} connecting to C{port}.  With
        C{-sess_out FILE} it stays connected until the server's session
        ticket is in C{FILE} (a TLS 1.3 ticket comes after the handshake),
        at most 20 seconds; otherwise it leaves after half a second.
        """
        if OPENSSL is None:
            raise SkipTest("the openssl command is not installed")
        process = subprocess.Popen(
            [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.addCleanup(process.kill)
        time.sleep(0.5)
        if "-sess_out" in args:
            session = args[args.index("-sess_out") + 1]
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not (
                os.path.exists(session) and os.path.getsize(session)
            ):
                time.sleep(0.05)
        output, _ = process.communicate("", timeout=30)
        return output

    def assertCompliant(
        self,
        withRSA: bool,
        *args: str,
        profile: str = "intermediate",
        sni: bool = False,
    ) -> None:
        """
        sslyze finds a server started with C{args} compliant with Mozilla's
        C{profile}.
        """
        sslyze = _sslyze()
        port = self.serve(*args, withRSA=withRSA, sni=sni)
        result = subprocess.run(
            [
                sslyze,
                f"--mozilla_config={profile}",
                "--certinfo_ca_file",
                os.path.join(self.certs, "ca.pem"),
                f"localhost:{port}{{127.0.0.1}}",
            ],
            capture_output=True,
            timeout=300,
            text=True,
        )
        self.assertEqual(result.returncode, 0, result.stdout[-3000:])
        self.assertIn("OK - Compliant", result.stdout)

    def test_sslyzeRSA(self) -> None:
        """
        With an RSA certificate and the default settings, sslyze finds the
        listener compliant with Mozilla's "intermediate" configuration.
        """
        self.assertCompliant(withRSA=True)

    def test_sslyzeECDSA(self) -> None:
        """
        The same with an ECDSA certificate.
        """
        self.assertCompliant(withRSA=False)

    def test_sslyzeModern(self) -> None:
        """
        With C{--tls-profile modern}, sslyze finds the listener compliant
        with Mozilla's "modern" configuration.
        """
        self.assertCompliant(False, "--tls-profile", "modern", profile="modern")

    def test_sslyzeSNI(self) -> None:
        """
        A C{tls:} listener (a directory of certificates, picked by SNI) with
        the default settings is compliant too, with either key type.
        """
        self.assertCompliant(withRSA=False, sni=True)
        self.assertCompliant(withRSA=True, sni=True)

    def test_sslyzeModernSNI(self) -> None:
        """
        A C{tls:} listener follows C{--tls-profile modern} too.
        """
        self.assertCompliant(
            False, "--tls-profile", "modern", profile="modern", sni=True
        )

    def test_outsideProfile(self, sni: bool = False) -> None:
        """
        By default, a TLS 1.2 CBC cipher, a static RSA key exchange and the
        X448 and P-521 curves are refused; an allowed cipher and P-256 are
        not.
        """
        port = self.serve(sni=sni)
        for args in [
            ("-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256"),
            ("-tls1_2", "-cipher", "AES128-GCM-SHA256"),
            ("-groups", "X448"),
            ("-groups", "P-521"),
        ]:
            self.assertIn("Cipher is (NONE)", self.sClient(port, *args), args)
        output = self.sClient(port, "-tls1_2", "-groups", "X25519:P-256")
        self.assertIn("Cipher is ECDHE-ECDSA-", output)
        self.assertIn("Server Temp Key: ECDH, prime256v1", output)

    def test_outsideProfileSNI(self) -> None:
        """
        The same of a C{tls:} listener, for a client that names the server
        (SNI) and for one that does not.
        """
        self.test_outsideProfile(sni=True)
        port = self.serve(sni=True)
        output = self.sClient(port, "-servername", "localhost", "-groups", "X448")
        self.assertIn("Cipher is (NONE)", output)

    def test_listenerOptions(self) -> None:
        """
        C{ciphers=} (separated by commas), C{curve=} and C{minimum=} of an
        C{ssl:} endpoint string set what its listener offers.
        """
        port = self.serve(
            options=(
                ":ciphers=ECDHE-ECDSA-CHACHA20-POLY1305,ECDHE-ECDSA-AES128-GCM-SHA256"
                ":curve=secp384r1"
            )
        )
        output = self.sClient(port, "-tls1_2")
        self.assertIn("Cipher is ECDHE-ECDSA-CHACHA20-POLY1305", output)
        self.assertIn("secp384r1", output)
        refused = self.sClient(
            port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"
        )
        self.assertIn("Cipher is (NONE)", refused)

    def test_modernSetting(self) -> None:
        """
        C{--tls-profile modern} refuses TLS 1.2 and serves TLS 1.3.
        """
        port = self.serve("--tls-profile", "modern")
        self.assertIn("Cipher is (NONE)", self.sClient(port, "-tls1_2"))
        self.assertIn("New, TLSv1.3", self.sClient(port))

    def test_resumption(self, *args: str, sni: bool = False) -> None:
        """
        A TLS 1.2 session is resumed by C{openssl s_client -reconnect}, and a
        TLS 1.3 one from its saved ticket.
        """
        port = self.serve(sni=sni)
        reconnected = self.sClient(port, *args, "-tls1_2", "-reconnect")
        self.assertIn("Reused, TLSv1.2", reconnected)
        session = os.path.join(self.certs, "session")
        self.assertIn("New, TLSv1.3", self.sClient(port, *args, "-sess_out", session))
        self.assertIn("Reused, TLSv1.3", self.sClient(port, *args, "-sess_in", session))

    def test_resumptionSNI(self) -> None:
        """
        The same of a C{tls:} listener, for a client that names the server.
        """
        self.test_resumption("-servername", "localhost", sni=True)


class RotationTests(SynchronousTestCase):
    """
    Under C{--workers}, each worker has ticket keys of its own: a reload
    replaces them.
    """

    def test_reloadRotatesKeys(self) -> None:
        """
        A ticket that the worker resumes is not resumed by the worker that
        replaced it after a SIGHUP.
        """
        certs = makeCertificates(os.path.abspath(self.mktemp()))
        key, cert = (os.path.join(certs, n) for n in ("server.key", "server.pem"))
        server = SupervisedServer(
            self,
            "--workers",
            "1",
            endpoints=(f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}",),
        )
        port = server.start(1)
        client = LiveTests("sClient")
        session = os.path.join(certs, "session")
        self.assertIn("New, TLSv1.3", client.sClient(port, "-sess_out", session))
        self.assertIn("Reused, TLSv1.3", client.sClient(port, "-sess_in", session))
        before = server.workerPids()
        server.signal(signal.SIGHUP)
        server.waitReplaced(before, 1)
        server.waitFor(lambda: server.ready(2))
        after: Any = client.sClient(port, "-sess_in", session)
        self.assertIn("New, TLSv1.3", after)

    def test_tlsWorkers(self) -> None:
        """
        Workers share a C{tls:} listener's socket as they share an C{ssl:}
        one's: each serves it, with the TLS profile.
        """
        certs = makeCertificates(os.path.abspath(self.mktemp()))
        server = SupervisedServer(
            self, "--workers", "2", endpoints=(listener(certs, True),)
        )
        port = server.start(2)
        client = LiveTests("sClient")
        output = client.sClient(port, "-servername", "localhost")
        self.assertIn("New, TLSv1.3", output)
        self.assertIn("subject=O = twsgi tests, CN = server", output)
        self.assertIn("Cipher is (NONE)", client.sClient(port, "-groups", "X448"))
