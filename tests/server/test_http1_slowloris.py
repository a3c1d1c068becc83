"""
A bounded slowloris check on loopback: a twsgi process with 1,000
connections that never finish their headers still serves ordinary clients,
and their p99 latency stays within 3 times the unloaded figure.
"""

from __future__ import annotations

import resource
import socket
import time

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.server import start

SLOW = 1000
SAMPLES = 100
REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def _once(port: int) -> float:
    """
    One request on a new connection; its latency in seconds.
    """
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(REQUEST)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    if not data.startswith(b"HTTP/1.1 200 "):
        raise AssertionError(f"not served: {data[:100]!r}")
    return time.perf_counter() - started


def _p99(port: int, samples: int = SAMPLES) -> float:
    latencies = sorted(_once(port) for _ in range(samples))
    return latencies[int(len(latencies) * 0.99) - 1]


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class SlowlorisTests(SynchronousTestCase):
    """
    Slow-header connections do not starve ordinary clients.
    """

    def test_thousandSlowConnections(self) -> None:
        """
        With 1,000 connections each holding a header section open, ordinary
        requests are served with a p99 latency within 3 times (plus 5 ms of
        scheduler noise) the unloaded p99, and the slow connections stay
        cheap in memory.
        """
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < SLOW + 200:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, SLOW + 500), hard))
        server = start(
            self,
            [
                "--app",
                "twsgi.example:app",
                "--endpoint",
                # A backlog for the burst of slow connections.
                "tcp:0:interface=127.0.0.1:backlog=1024",
                "--access-log",
                "none",
                "--header-timeout",
                "60",
            ],
            checkout=True,
        )
        port = server.port
        _p99(port, 20)  # warm up
        unloaded = _p99(port)
        before = _rss(server.process.pid)
        slow = []
        self.addCleanup(lambda: [s.close() for s in slow])
        for i in range(SLOW):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\nX-Slow-%d: " % i)
            slow.append(s)
        # Every slow connection is accepted and parsed before measuring.
        _once(port)
        time.sleep(0.5)
        perConnection = (_rss(server.process.pid) - before) / SLOW
        loaded = _p99(port)
        print(
            f"\nslowloris: unloaded p99 {unloaded * 1000:.1f} ms, with {SLOW} slow "
            f"connections {loaded * 1000:.1f} ms; RSS per idle connection "
            f"{perConnection / 1024:.1f} KiB"
        )
        self.assertLess(loaded, 3 * unloaded + 0.005)
        self.assertLess(perConnection, 64 * 1024)
        # The slow connections are all still open, waiting.
        for s in slow[:: SLOW // 10]:
            s.setblocking(False)
            with self.assertRaises(BlockingIOError):
                s.recv(1)
