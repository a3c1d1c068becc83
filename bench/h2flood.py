#!/usr/bin/env python3
"""
The p99 latency of an ordinary HTTP/2 client while other connections flood
the same twsgi server (issue 14: "other clients keep their p99 within 3x
unloaded while a flood runs").  Not a test: it times things.

One twsgi (hello app, a cleartext listener with ;http2=prior-knowledge) is
started from this checkout.  For each flood, the measuring client sends
REQUESTS GETs one after the other on one connection, first alone and then
while ATTACKERS threads flood: each opens a connection, sends the flood's
frames until the server closes it (GOAWAY ENHANCE_YOUR_CALM), and opens
the next, for the length of the measurement.  Both p99s come from the
same run.

    .venv/bin/python bench/h2flood.py [--requests 2000] [--attackers 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import h2.config
import h2.connection
import h2.events

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from twsgi.http.h2head import PREFACE  # noqa: E402


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    head = len(payload).to_bytes(3, "big") + bytes([kind, flags])
    return head + stream.to_bytes(4, "big") + payload


BLOCK = b"\x82\x86\x84\x41\x09localhost"  # GET http / localhost
SETTINGS = frame(0x4, 0, 0)


def resets(batch: int, n: int = 500) -> bytes:
    """
    The C{batch}th write of a Rapid Reset flood: C{n} streams, each opened
    and reset at once, with new stream identifiers.
    """
    first = 1 + 2 * n * batch
    return b"".join(
        frame(0x1, 0x5, s, BLOCK) + frame(0x3, 0, s, b"\x00\x00\x00\x08")
        for s in range(first, first + 2 * n, 2)
    )


FLOODS: dict[str, Callable[[int], bytes]] = {
    "ping": lambda batch: frame(0x6, 0, 0, b"12345678") * 2000,
    "settings": lambda batch: frame(0x4, 0, 0, b"\x00\x04\x00\x00\xff\xff") * 2000,
    "empty-data": lambda batch: (
        (frame(0x1, 0x4, 1, BLOCK) if batch == 0 else b"") + frame(0x0, 0, 1) * 4000
    ),
    "continuation": lambda batch: (
        (frame(0x1, 0, 1, BLOCK) if batch == 0 else b"")
        + frame(0x9, 0, 1, b"\x00" * 16000) * 40
    ),
    "rapid-reset": resets,
}


def attack(
    port: int, name: str, seconds: float, counts: multiprocessing.Queue[int]
) -> None:
    """
    Flood connection after connection for C{seconds}, in a process of its
    own (so that the measuring client does not share its interpreter), and
    put how many connections the server closed.
    """
    flood = FLOODS[name]
    closed = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(PREFACE + SETTINGS)
                batch = 0
                while time.monotonic() < deadline:
                    s.sendall(flood(batch))
                    batch += 1
        except OSError:
            closed += 1
    counts.put(closed)


def measure(port: int, requests: int) -> list[float]:
    """
    The latency of C{requests} GETs, one after the other on one connection.
    """
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    s.sendall(conn.data_to_send())
    latencies = []
    head = [
        (":method", "GET"),
        (":scheme", "http"),
        (":authority", "localhost"),
        (":path", "/"),
    ]
    for _ in range(requests):
        stream = conn.get_next_available_stream_id()
        started = time.perf_counter()
        conn.send_headers(stream, head, end_stream=True)
        s.sendall(conn.data_to_send())
        done = False
        while not done:
            data = s.recv(65536)
            if not data:
                raise RuntimeError("the server closed the measuring connection")
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.DataReceived):
                    conn.acknowledge_received_data(
                        event.flow_controlled_length, event.stream_id
                    )
                if (
                    isinstance(event, h2.events.StreamEnded)
                    and event.stream_id == stream
                ):
                    done = True
            s.sendall(conn.data_to_send())
        latencies.append(time.perf_counter() - started)
    s.close()
    return latencies


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--attackers", type=int, default=2)
    parser.add_argument("--floods", default=",".join(FLOODS))
    args = parser.parse_args()
    port = 18000 + os.getpid() % 1000
    server = subprocess.Popen(
        [
            sys.executable, "-m", "twsgi", "--app", "tests.apps.opsapp:app",
            "--endpoint", f"tcp:{port}:interface=127.0.0.1;http2=prior-knowledge",
            "--access-log", "none", "--threads", "4:4",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        measure(port, 200)  # warm up
        print(
            f"{'flood':<14}{'p99 alone':>12}{'p99 flooded':>14}{'ratio':>8}{'flood conns':>13}"
        )
        for name in args.floods.split(","):
            alone = p99(measure(port, args.requests))
            seconds = alone * args.requests * 3 + 5
            counts: multiprocessing.Queue[int] = multiprocessing.Queue()
            attackers = [
                multiprocessing.Process(
                    target=attack, args=(port, name, seconds, counts)
                )
                for _ in range(args.attackers)
            ]
            for process in attackers:
                process.start()
            time.sleep(0.5)
            try:
                flooded = p99(measure(port, args.requests))
            finally:
                closed = sum(counts.get(timeout=seconds + 30) for _ in attackers)
                for process in attackers:
                    process.join(10)
            print(
                f"{name:<14}{alone * 1000:>10.2f}ms{flooded * 1000:>12.2f}ms"
                f"{flooded / alone:>8.2f}{closed:>13}"
            )
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
