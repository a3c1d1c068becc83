"""
A real load balancer in front: HAProxy on loopback before two twsgi
processes on C{haproxy:} (PROXY protocol) endpoints, with health checks on
C{/readyz}.  Under a steady load each instance in turn gets SIGTERM and is
started again; no request fails, the application sees the real client
address, and the access logs and metrics add up to the requests sent.  With
C{--workers 2}, a SIGHUP reload keeps the instance in rotation throughout.

HAProxy comes from Debian's packages: when it is missing, the test runs
C{scripts/ensure-package}, which installs it (CI starts from a clean
machine).  The configuration is C{docs/deploy/haproxy.cfg}, the one the
deployment guide shows, with the ports filled in.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.loadbalancers import CLIENT
from tests.helpers.server import ROOT, freePort, heldPort, start, stopProcess
from twsgi.testing import ServerProcess

CONFIG = os.path.join(ROOT, "docs", "deploy", "haproxy.cfg")


def findHAProxy() -> str:
    """
    The path of C{haproxy}, installing it first if it is missing.
    """
    path = shutil.which("haproxy", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if path is None:
        result = subprocess.run(
            ["bash", os.path.join(ROOT, "scripts", "ensure-package")],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0:
            raise AssertionError(
                "HAProxy is missing and scripts/ensure-package could not install it:\n"
                + result.stdout
                + result.stderr
            )
        path = result.stdout.strip().splitlines()[-1]
    return path


def haproxyConfig(
    frontend: int, servers: dict[str, tuple[int, int]], stats: str
) -> str:
    """
    The deployment guide's HAProxy configuration with these servers, its
    frontend on the listening socket of file descriptor C{frontend} (see
    L{heldPort}).
    """
    with open(CONFIG) as f:
        text = f.read()
    lines = []
    for line in text.splitlines():
        if line.strip().startswith("server "):
            continue
        lines.append(line)
        if line.strip().startswith("default-server"):
            for name, (port, admin) in servers.items():
                lines.append(f"    server {name} 127.0.0.1:{port} check port {admin}")
    text = "\n".join(lines) + "\n"
    text = text.replace("bind 127.0.0.1:8080", f"bind fd@{frontend}")
    text = text.replace("/run/haproxy/admin.sock", stats)
    return text.replace("daemon\n", "")


def serverStates(stats: str) -> dict[str, str]:
    """
    The state of each server of the backend, from HAProxy's stats socket.
    """
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(stats)
        s.sendall(b"show stat\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    states = {}
    for row in data.decode().splitlines():
        fields = row.split(",")
        if (
            len(fields) > 17
            and fields[0] == "twsgi"
            and fields[1]
            not in (
                "BACKEND",
                "FRONTEND",
            )
        ):
            states[fields[1]] = fields[17]
    return states


class Load:
    """
    A steady load through HAProxy: C{threads} clients on keep-alive
    connections from L{CLIENT}, each sending one request after the other.
    """

    def __init__(self, port: int, threads: int = 3, limit: int = 4000) -> None:
        self.port = port
        self.limit = limit
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.sent = 0
        self.failures: list[str] = []
        self.bodies: dict[bytes, int] = {}
        self.threads = [
            threading.Thread(target=self.run, args=(i,), daemon=True)
            for i in range(threads)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(30)

    def run(self, index: int) -> None:
        connection = None
        for n in range(self.limit):
            if self.stopping.is_set():
                break
            if connection is None:
                connection = http.client.HTTPConnection(
                    "127.0.0.1", self.port, timeout=20, source_address=(CLIENT, 0)
                )
            try:
                connection.request("GET", f"/remote?client={index}&n={n}")
                response = connection.getresponse()
                body = response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as e:
                with self.lock:
                    self.sent += 1
                    self.failures.append(f"client {index} request {n}: {e!r}")
                connection.close()
                connection = None
                continue
            with self.lock:
                self.sent += 1
                if status != 200:
                    self.failures.append(
                        f"client {index} request {n}: {status} {body!r}"
                    )
                self.bodies[body] = self.bodies.get(body, 0) + 1
            if response.getheader("connection", "").lower() == "close":
                connection.close()
                connection = None
            time.sleep(0.002)
        if connection is not None:
            connection.close()


def serverLine(port: int, ca: str, alpn: str) -> str:
    """
    The HAProxy server line of C{docs/load-balancers.rst} for an
    C{haproxy:ssl:} listener, with this port, CA file and ALPN protocol.
    """
    with open(os.path.join(ROOT, "docs", "load-balancers.rst")) as f:
        [line] = [
            line.strip()
            for line in f
            if line.strip().startswith("server app1 127.0.0.1:8443 ssl ")
        ]
    return (
        line.replace("127.0.0.1:8443", f"127.0.0.1:{port}")
        .replace("/etc/haproxy/twsgi-ca.pem", ca)
        .replace("alpn h2", f"alpn {alpn}")
    )


class HAProxyTests(SynchronousTestCase):
    """
    twsgi behind HAProxy.
    """

    def setUp(self) -> None:
        self.haproxy = findHAProxy()
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.servers = {name: (freePort(), freePort()) for name in ("a", "b")}
        self.frontend, self.frontendFD = heldPort(self)
        # A UNIX socket path is short (HAProxy takes at most 97 bytes).
        short = tempfile.mkdtemp(prefix="twsgi-")
        self.addCleanup(shutil.rmtree, short, True)
        self.stats = os.path.join(short, "haproxy.sock")

    def startTwsgi(
        self, name: str, *extra: str, endpoint: str = "haproxy:tcp:{port}"
    ) -> ServerProcess:
        port, admin = self.servers[name]
        return start(
            self,
            [
                "--app", "tests.apps.opsapp:app",
                "--endpoint", endpoint.format(port=port) + ":interface=127.0.0.1",
                "--metrics-endpoint", f"tcp:{admin}:interface=127.0.0.1",
                "--threads", "2:4",
                "--drain-delay", "1.5",
                "--graceful-timeout", "15",
                "--access-log", os.path.join(self.directory, f"{name}.log"),
                "--access-log-format", "json",
                "--on-stop", "tests.apps.haproxyhooks:saveMetrics",
                *extra,
            ],
            env={
                "TWSGI_TEST_METRICS_FILE": os.path.join(
                    self.directory, f"{name}.metrics"
                )
            },
            checkout=True,
            listeners=2,
            timeout=60,
        )  # fmt: skip

    def waitForStates(self, wanted: dict[str, str], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            try:
                states = serverStates(self.stats)
            except OSError:
                states = {}
            if all(states.get(name) == state for name, state in wanted.items()):
                return
            time.sleep(0.05)
        raise AssertionError(f"HAProxy servers are {states}, not {wanted}")

    def startHAProxy(self) -> None:
        """
        Start HAProxy in front of the instances and wait until both are up.
        """
        config = os.path.join(self.directory, "haproxy.cfg")
        with open(config, "w") as f:
            f.write(haproxyConfig(self.frontendFD, self.servers, self.stats))
        check = subprocess.run(
            [self.haproxy, "-c", "-f", config],
            capture_output=True,
            text=True,
            timeout=30,
            pass_fds=(self.frontendFD,),
        )
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        haproxy = subprocess.Popen(
            [self.haproxy, "-db", "-f", config],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(self.frontendFD,),
        )
        self.addCleanup(stopProcess, haproxy, signal.SIGUSR1)
        self.waitForStates({"a": "UP", "b": "UP"})

    def test_rollingRestart(self) -> None:
        """
        Restarting each instance in turn under load loses no request; the
        application sees the client's own address; each instance's access
        log and final metrics together count every request sent.
        """
        twsgi = {name: self.startTwsgi(name) for name in self.servers}
        self.startHAProxy()

        load = Load(self.frontend)
        load.start()
        self.addCleanup(load.stop)
        time.sleep(1)
        for name, other in [("a", "b"), ("b", "a")]:
            twsgi[name].signal(signal.SIGTERM)
            self.waitForStates({name: "DOWN", other: "UP"})
            self.assertEqual(twsgi[name].process.wait(30), 0)
            twsgi[name].stop()
            twsgi[name] = self.startTwsgi(name)
            self.waitForStates({name: "UP", other: "UP"})
            time.sleep(0.5)
        load.stop()
        for server in twsgi.values():
            self.assertEqual(server.stop(), 0)

        self.assertEqual(load.failures, [])
        self.assertGreater(load.sent, 100)
        self.assertEqual(load.bodies, {CLIENT.encode(): load.sent})

        logged = {}
        counted = {}
        for name in self.servers:
            with open(os.path.join(self.directory, f"{name}.log")) as f:
                records = [json.loads(line) for line in f]
            self.assertEqual({r["remote_addr"] for r in records}, {CLIENT})
            self.assertEqual({r["status"] for r in records}, {200})
            logged[name] = len(records)
            with open(os.path.join(self.directory, f"{name}.metrics")) as f:
                lives = [line.split() for line in f]
            # Two lives per instance; everything counted was a 2xx.
            self.assertEqual({cls for cls, _ in lives}, {"2xx"})
            self.assertEqual(len(lives), 2, lives)
            counted[name] = sum(int(count) for _, count in lives)
        self.assertEqual(sum(logged.values()), load.sent)
        self.assertEqual(counted, logged)
        self.assertTrue(all(logged.values()), logged)

    def test_stallStaysUp(self) -> None:
        """
        An instance that stalls for 0.6 s (a long garbage collection, a
        loaded machine; here SIGSTOP) stays in rotation: a slow health check
        is not a failed one.  (A check that timed out after 200 ms took it
        out, and with the other instance restarting HAProxy had no server.)
        """
        twsgi = {name: self.startTwsgi(name) for name in self.servers}
        self.startHAProxy()
        states = set()
        twsgi["a"].signal(signal.SIGSTOP)
        try:
            stalled = time.monotonic() + 0.6
            while time.monotonic() < stalled:
                states.add(serverStates(self.stats).get("a"))
                time.sleep(0.02)
        finally:
            twsgi["a"].signal(signal.SIGCONT)
        # A server taken out needs two good checks to come back.
        after = time.monotonic() + 1
        while time.monotonic() < after:
            states.add(serverStates(self.stats).get("a"))
            time.sleep(0.05)
        self.assertEqual(states, {"UP"})

    def test_reloadWithWorkers(self) -> None:
        """
        With C{--workers 2}, a SIGHUP reload of one instance under load
        never takes it out of rotation (its old workers retire without
        turning readiness 503), and loses no request.
        """
        twsgi = {name: self.startTwsgi(name, "--workers", "2") for name in self.servers}
        self.startHAProxy()
        load = Load(self.frontend)
        load.start()
        self.addCleanup(load.stop)
        time.sleep(0.5)
        seen = len(twsgi["a"].lines)
        twsgi["a"].signal(signal.SIGHUP)
        states = set()
        left = 0
        deadline = time.monotonic() + 40
        settled = None
        while time.monotonic() < deadline:
            lines = twsgi["a"].lines[seen:]
            left = sum("left with status 0" in line for line in lines)
            if left >= 2 and settled is None:
                # Watch a few more health checks after the last one left.
                settled = time.monotonic() + 1
            states.add(serverStates(self.stats).get("a"))
            if settled is not None and time.monotonic() > settled:
                break
            time.sleep(0.05)
        load.stop()
        self.assertEqual(left, 2)
        self.assertEqual(states, {"UP"})
        self.assertEqual(load.failures, [])
        self.assertGreater(load.sent, 50)
        self.assertEqual(load.bodies, {CLIENT.encode(): load.sent})

    def test_sslSendProxy(self) -> None:
        """
        HAProxy with C{ssl send-proxy-v2} on its server line (the one of
        C{docs/load-balancers.rst}, which verifies the certificate) sends
        the PROXY header in clear before the TLS handshake: an
        C{haproxy:ssl:} listener reads it, over HTTP/1.1 and, with C{alpn
        h2}, over HTTP/2, and the application sees the client's own address.
        """
        from tests.helpers.certs import makeCertificates

        certs = makeCertificates(os.path.join(self.directory, "certs"))
        server = self.startTwsgi(
            "a",
            endpoint=(
                f"haproxy:ssl:{{port}}:privateKey={certs}/server.key"
                f":certKey={certs}/server.pem"
            ),
        )
        port, _ = self.servers["a"]
        frontends = {
            "http/1.1": (self.frontend, self.frontendFD),
            "h2": heldPort(self),
        }
        config = os.path.join(self.directory, "haproxy-ssl.cfg")
        with open(config, "w") as f:
            f.write(
                "global\n"
                f"    stats socket {self.stats} mode 600 level admin\n"
                "defaults\n"
                "    mode http\n"
                "    timeout connect 2s\n"
                "    timeout client 30s\n"
                "    timeout server 30s\n"
            )
            for alpn, (_, fd) in frontends.items():
                name = alpn.replace("/", "").replace(".", "")
                f.write(
                    f"frontend www{name}\n"
                    f"    bind fd@{fd}\n"
                    f"    default_backend twsgi{name}\n"
                    f"backend twsgi{name}\n"
                    f"    {serverLine(port, f'{certs}/ca.pem', alpn)}\n"
                )
        haproxy = subprocess.Popen(
            [self.haproxy, "-db", "-f", config],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=[fd for _, fd in frontends.values()],
        )
        self.addCleanup(stopProcess, haproxy, signal.SIGUSR1)
        bodies = {}
        for alpn, (frontend, _) in frontends.items():
            deadline = time.monotonic() + 20
            while True:
                connection = http.client.HTTPConnection(
                    "127.0.0.1", frontend, timeout=10, source_address=(CLIENT, 0)
                )
                try:
                    connection.request("GET", "/remote")
                    response = connection.getresponse()
                    bodies[alpn] = (response.status, response.read())
                    break
                except OSError:
                    # HAProxy is not listening yet.
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
                finally:
                    connection.close()
        self.assertEqual(server.stop(), 0)
        self.assertEqual(bodies, {alpn: (200, CLIENT.encode()) for alpn in frontends})
        with open(os.path.join(self.directory, "a.log")) as f:
            records = [json.loads(line) for line in f]
        # The spelling (HTTP/2 or HTTP/2.0) is the HTTP/2 tests' business.
        self.assertEqual(
            sorted((r["remote_addr"], r["protocol"][:6]) for r in records),
            [(CLIENT, "HTTP/1"), (CLIENT, "HTTP/2")],
        )
