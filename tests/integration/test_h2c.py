"""
HTTP/2 by prior knowledge (cleartext C{h2c}, C{;http2=prior-knowledge}) in
front of real clients: HAProxy with C{proto h2} on its server line, and
h2load (Debian's C{nghttp2-client}) with 100 streams per connection, also
across a SIGHUP reload under C{--workers 2}.  Both programs are installed
by C{scripts/ensure-package} when missing.  And the same option after a TLS
listener, before a client that offers no protocol in ALPN.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import time

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.certs import makeCertificates
from tests.helpers.h2client import H2Client, connect
from tests.helpers.loadbalancers import findProgram
from tests.helpers.server import heldPort, start, stopProcess, temporaryDirectory
from twsgi.testing import ServerProcess

HAPROXY_CONFIG = """\
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s

frontend www
    bind fd@{fd}
    default_backend twsgi

backend twsgi
    server app 127.0.0.1:{port} proto h2
"""


RETIRED = re.compile(r"worker [12] \(pid \d+\) left with status 0")
"""
The supervisor's line for one of the two first workers, once it retired.
"""


def summary(out: str) -> dict[str, int]:
    """
    Read h2load's summary: requests started, done, succeeded, failed and
    errored, and the responses with a 2xx status.
    """
    requests = re.search(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
        r"(\d+) failed, (\d+) errored",
        out,
    )
    codes = re.search(r"status codes: (\d+) 2xx", out)
    if requests is None or codes is None:
        raise AssertionError(f"h2load said:\n{out}")
    names = ("total", "started", "done", "succeeded", "failed", "errored")
    counts = dict(zip(names, map(int, requests.groups()), strict=True))
    counts["2xx"] = int(codes.group(1))
    return counts


def h2load(url: str, *args: str) -> subprocess.Popen[str]:
    """
    Start h2load on C{url}.
    """
    return subprocess.Popen(
        [findProgram("h2load", "nghttp2-client"), *args, url],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


class PriorKnowledgeTests(SynchronousTestCase):
    """
    A cleartext listener with C{;http2=prior-knowledge} behind real HTTP/2
    clients.
    """

    def serve(self, *extra: str) -> ServerProcess:
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.accessLog = os.path.join(self.directory, "access.log")
        return start(
            self,
            [
                "--app", "tests.apps.opsapp:app",
                "--endpoint", "tcp:0:interface=127.0.0.1;http2=prior-knowledge",
                "--access-log", self.accessLog,
                "--access-log-format", "json",
                *extra,
            ],
            checkout=True,
            timeout=60,
        )  # fmt: skip

    def waitForWorkers(self, server: ServerProcess, start: int = 0) -> None:
        """
        Wait until both workers (from line C{start} of the log on) serve.
        """
        line = start
        for _ in range(2):
            found = server.waitFor(r"\[worker \d+\] Starting reactor", 60, line)
            line = server.lines.index(found, line) + 1

    def test_haproxy(self) -> None:
        """
        HAProxy with C{proto h2} serves HTTP/1.1 clients through it: every
        request reaches twsgi over HTTP/2 and is answered.
        """
        haproxy = findProgram("haproxy")
        server = self.serve()
        frontend, fd = heldPort(self)
        config = os.path.join(self.directory, "haproxy.cfg")
        with open(config, "w") as f:
            f.write(HAPROXY_CONFIG.format(fd=fd, port=server.port))
        process = subprocess.Popen(
            [haproxy, "-db", "-f", config],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(fd,),
        )
        self.addCleanup(stopProcess, process, signal.SIGUSR1)
        statuses = []
        deadline = time.monotonic() + 20
        while not statuses and time.monotonic() < deadline:
            try:
                connection = http.client.HTTPConnection(
                    "127.0.0.1", frontend, timeout=10
                )
                for n in range(20):
                    connection.request("GET", f"/?n={n}")
                    response = connection.getresponse()
                    statuses.append((response.status, response.read()))
                connection.close()
            except OSError:
                statuses = []
                time.sleep(0.1)
        self.assertEqual(statuses, [(200, b"hello /\n")] * 20)
        self.assertEqual(server.stop(), 0)
        with open(self.accessLog) as f:
            records = [json.loads(line) for line in f]
        self.assertEqual(len(records), 20)
        self.assertEqual({record["protocol"] for record in records}, {"HTTP/2.0"})

    def test_h2load(self) -> None:
        """
        h2load, opening 100 streams at once on each of its connections before
        it read the server's SETTINGS, sees no stream refused or failed.
        """
        server = self.serve()
        load = h2load(server.url + "/", "-n", "2000", "-c", "4", "-m", "100")
        self.addCleanup(stopProcess, load, signal.SIGTERM)
        counts = summary(load.communicate(timeout=60)[0])
        self.assertEqual(counts["2xx"], 2000, counts)
        self.assertEqual((counts["failed"], counts["errored"]), (0, 0), counts)
        self.assertEqual(server.stop(), 0)

    def test_reload(self) -> None:
        """
        Under C{--workers 2}, a SIGHUP while h2load runs fails no stream:
        both workers are replaced while it runs, each of its connections
        gets the graceful stop (a PING, then the two GOAWAYs), every stream
        is answered 200 (none cut off), h2load counts no request failed, and
        the server exits 0.

        Over HTTP/2, h2load (nghttp2 1.52 to 1.70) never opens a new
        connection: a client whose connection got GOAWAY sends nothing more,
        so the load ends with the reload (C{try_new_connection} is only
        called by its HTTP/1.1 session).  In C{-D} mode it counts failed
        exactly the streams it saw closed without a 2xx or 3xx, among them
        the requests it queued in answer to responses read before the
        GOAWAY and then refused itself: the server's hush (no response
        between its first PING and the first GOAWAY) leaves it none.
        """
        server = self.serve("--workers", "2")
        self.waitForWorkers(server)
        load = h2load(server.url + "/", "-D", "12", "-c", "4", "-m", "20")
        self.addCleanup(stopProcess, load, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while not os.path.getsize(self.accessLog) and time.monotonic() < deadline:
            time.sleep(0.05)
        mark = len(server.lines)
        server.signal(signal.SIGHUP)
        out = load.communicate(timeout=60)[0]
        during = server.lines[mark:]
        counts = summary(out)
        retired = [line for line in during if RETIRED.search(line)]
        self.assertEqual(
            len(retired),
            2,
            f"the reload did not end while h2load ran (load average "
            f"{os.getloadavg()[0]:.1f}):\n" + "\n".join(during),
        )
        self.waitForWorkers(server, start=mark)
        self.assertEqual(server.stop(), 0)
        with open(self.accessLog) as f:
            records = [json.loads(line) for line in f]
        # Only that the load was real: a speed belongs to bench/.
        self.assertGreater(len(records), 100, counts)
        self.assertEqual([r for r in records if r["status"] != 200], [])
        self.assertEqual([r for r in records if r["disconnected"]], [])
        self.assertEqual(counts["2xx"], len(records), counts)
        self.assertEqual(counts["2xx"], counts["succeeded"], counts)
        self.assertEqual((counts["failed"], counts["errored"]), (0, 0), counts)


class TLSPriorKnowledgeTests(SynchronousTestCase):
    """
    C{;http2=prior-knowledge} after an C{ssl:} listener: ALPN chooses the
    protocol as on any TLS listener, and a client that offers no protocol
    in ALPN and opens with the HTTP/2 preface is served HTTP/2 too.
    """

    def serve(self, options: str) -> tuple[int, str]:
        """
        Serve the example application on an C{ssl:} listener followed by
        C{options}; return its port and the directory of its certificates.
        """
        certs = makeCertificates(str(temporaryDirectory(self) / "certs"))
        key, cert = (os.path.join(certs, n) for n in ("server.key", "server.pem"))
        server = start(
            self,
            [
                "--app", "twsgi.example:app",
                "--access-log", "none",
                "--endpoint",
                f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}{options}",
            ],
            checkout=True,
        )  # fmt: skip
        return server.addresses[0][1], certs

    def withoutALPN(self, port: int, certs: str) -> H2Client:
        """
        A TLS connection that offers no ALPN protocol, on which the client
        sent the HTTP/2 preface and its SETTINGS.
        """
        client = connect(port, certs, protocols=())
        self.addCleanup(client.close)
        self.assertIsNone(client.alpn)
        client.conn.initiate_connection()
        client.flush()
        return client

    def test_withoutALPN(self) -> None:
        """
        With C{;http2=prior-knowledge}, the preface without ALPN is served
        HTTP/2.
        """
        client = self.withoutALPN(*self.serve(";http2=prior-knowledge"))
        answer = client.answer(client.request("GET", "/"))
        self.assertEqual((answer.status, answer.body), (200, b"Hello from twsgi!\n"))

    def test_notAsked(self) -> None:
        """
        Without it, that preface is read as an HTTP/1.1 request line, and
        answered 505.
        """
        client = self.withoutALPN(*self.serve(""))
        self.assertTrue(
            client.sock.recv(64).startswith(b"HTTP/1.1 505 HTTP Version Not Supported")
        )
