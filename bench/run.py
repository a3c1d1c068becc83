"""
The twsgi benchmark: twsgi against C{twistd web --wsgi}, gunicorn (sync and
gthread), waitress and granian, with wrk on 127.0.0.1.

Run C{python3 bench/run.py --help}; C{bench/README.md} says how to read the
result.  Standard library only: the servers run from C{bench/.venv}
(C{bench/setup.sh} makes it), this script may run under any Python 3.10+.

For each scenario the servers take turns (round-robin, C{--rounds} times,
the order rotated every round) so that drift of a shared machine hits them
equally; each turn starts the server afresh, warms it up with a short wrk
run, measures with a longer one and stops the server by its process group.
The median of the rounds is reported, with the CPU time the server's
process tree spent per request.  C{--baseline REF} adds twsgi at an older
commit as one more server of the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
VENV = BENCH / ".venv"
BASELINES = BENCH / ".baseline"
RESULTS = BENCH / "results"
DOCS_PAGE = REPO / "docs" / "benchmarks.rst"

HOST = "127.0.0.1"
CERTS = BENCH / "results" / "certs"
"""
Where the TLS scenarios' self-signed certificate and key are made (by
C{openssl}, once).
"""
H2LOAD_STREAMS = 10
"""
h2load's C{-m}: requests in flight on each connection (HTTP/2 streams, or
HTTP/1.1 requests pipelined with C{--h1}).
"""
TLS_SERVERS = ("twsgi", "twistd-web", "granian", "baseline")
"""
The servers of the TLS scenarios: those that speak HTTP/2 (twsgi, granian,
and C{twistd web} with C{h2} installed) and twsgi at C{--baseline}.
"""
WRK_THREADS = 2
WRK_TIMEOUT = "10s"
STARTUP_TIMEOUT = 20.0
STOP_GRACE = 3.0
RSS_CAP_KB = 3 * 1024 * 1024
"""
A server whose process tree passes this resident size (3 GiB) in the
slow-reader scenario is killed at once and reported as capped.
"""

SLEEP_APP_LIMIT = 1280.0
"""
The most the 50 ms app can do at 64 connections: 64 / 0.05 s.
"""


# --- what is measured -------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Scenario:
    """
    One row group of the table.

    @ivar name: the short name used by C{--scenarios}.
    @ivar title: what the table says.
    @ivar app: the attribute of C{apps.py} every server loads.
    @ivar connections: wrk's C{-c}.
    @ivar threads: the thread count of every server where threads apply.
    @ivar memory: C{True} for the slow-reader memory scenario.
    @ivar slowHeaders: for the slowloris scenario, C{True}: wrk's latency
        alone, then with C{--slowloris-connections} connections open that
        never finish their header section.
    @ivar h2load: C{"h2"} or C{"h1"} for a scenario over TLS loaded by
        h2load (HTTP/2, or HTTP/1.1 with C{--h1}) instead of wrk over
        plain TCP; C{""} for wrk.
    @ivar varied: C{True} to give every request a head of its own (wrk
        runs C{varied.lua}: another path, query, request id and cookie),
        so that nothing a server remembers of a head it saw helps it.
    @ivar pinned: C{True} to run every server on one CPU and wrk on another
        (see L{pinnedCpus}): twsgi with C{--cpu-affinity}, the others (and
        twsgi at C{--baseline}) under C{taskset}.
    """

    name: str
    title: str
    app: str
    connections: int
    threads: int
    memory: bool = False
    slowHeaders: bool = False
    h2load: str = ""
    varied: bool = False
    pinned: bool = False

    @property
    def tls(self) -> bool:
        """
        Whether the servers listen with TLS.
        """
        return bool(self.h2load)


SCENARIOS = (
    Scenario("hello", "hello, 13 bytes, 64 connections", "hello", 64, 8),
    Scenario("hello1", "hello, 13 bytes, 1 connection", "hello", 1, 8),
    Scenario(
        "hello1-pinned",
        "hello, 1 connection, each server on one CPU and wrk on another",
        "hello",
        1,
        8,
        pinned=True,
    ),
    Scenario(
        "hellovaried",
        "hello, 64 connections, every request head different",
        "hello",
        64,
        8,
        varied=True,
    ),
    Scenario("generator", "100 x 1 KiB generator, 16 connections", "generator", 16, 8),
    Scenario("onemeg", "one 1 MiB body, 16 connections", "onemeg", 16, 8),
    Scenario("sleep", "app sleeps 50 ms, 64 connections", "sleep50", 64, 64),
    Scenario(
        "slowreader",
        "clients that never read a 512 MiB stream",
        "slowreader",
        16,
        32,
        memory=True,
    ),
    Scenario(
        "slowloris",
        "hello, 1 connection, alone and with slow-header connections open",
        "hello",
        1,
        8,
        slowHeaders=True,
    ),
    Scenario(
        "h2", "hello over TLS, HTTP/2, 16 x 10 streams", "hello", 16, 8, h2load="h2"
    ),
    Scenario(
        "h2-h1",
        "hello over TLS, HTTP/1.1, 16 x 10 pipelined",
        "hello",
        16,
        8,
        h2load="h1",
    ),
    Scenario(
        "h2gen",
        "100 x 1 KiB generator over TLS, HTTP/2, 16 x 10 streams",
        "generator",
        16,
        8,
        h2load="h2",
    ),
    Scenario(
        "h2gen-h1",
        "100 x 1 KiB generator over TLS, HTTP/1.1, 16 x 10 pipelined",
        "generator",
        16,
        8,
        h2load="h1",
    ),
)


@dataclasses.dataclass(frozen=True)
class Server:
    """
    One server under test.

    @ivar name: the short name used by C{--servers}.
    @ivar title: what the table says.
    @ivar executable: the program in C{bench/.venv/bin} it needs.
    @ivar fixedThreads: the thread count when the server cannot be given one
        on its command line, else C{None}.
    @ivar workers: worker processes (twsgi's C{--workers}).
    @ivar onlyScenarios: the scenarios it runs in, or C{None} for all.
    @ivar venv: the virtualenv it runs from.
    """

    name: str
    title: str
    executable: str
    fixedThreads: int | None = None
    workers: int = 1
    onlyScenarios: tuple[str, ...] | None = None
    venv: Path = VENV

    def runs(self, scenario: Scenario) -> bool:
        """
        Whether this server takes part in C{scenario}.
        """
        if scenario.tls and self.name not in TLS_SERVERS:
            return False
        return self.onlyScenarios is None or scenario.name in self.onlyScenarios

    def threadsFor(self, scenario: Scenario) -> int:
        """
        How many threads this server runs C{scenario} with (1 for sync).
        """
        if self.name == "gunicorn-sync":
            return 1
        return self.fixedThreads or scenario.threads

    def command(self, scenario: Scenario, port: int) -> list[str]:
        """
        The command line that serves C{scenario} on C{HOST:port}, with access
        logs off; in a pinned scenario on the server's CPU of L{pinnedCpus}.
        """
        command = self._command(scenario, port)
        cpus = pinnedCpus() if scenario.pinned else None
        if cpus is None:
            return command
        if self.name.startswith("twsgi"):
            return [*command, "--cpu-affinity", str(cpus[1])]
        return ["taskset", "-c", str(cpus[1]), *command]

    def _command(self, scenario: Scenario, port: int) -> list[str]:
        exe = str(self.venv / "bin" / self.executable)
        app = f"apps:{scenario.app}"
        n = self.threadsFor(scenario)
        listen = f"tcp:{port}:interface={HOST}"
        if scenario.tls:
            listen = (
                f"ssl:{port}:interface={HOST}:privateKey={CERTS / 'server.key'}"
                f":certKey={CERTS / 'server.pem'}"
            )
        if self.name.startswith("twsgi") or self.name == BASELINE:
            return [
                exe,
                "-m",
                "twsgi",
                "--endpoint",
                listen,
                "--app",
                app,
                "--threads",
                f"{n}:{n}",
                "--access-log",
                "none",
                "--pythonpath",
                str(BENCH),
                "--workers",
                str(self.workers),
            ]
        if self.name == "twistd-web":
            # twistd web logs every request to twistd's log, which has no
            # "off": it goes to a file in bench/results.  Never --logfile
            # /dev/null: twistd's LogFile rotates by renaming its file once
            # 1 MB was written, and as root that renamed /dev/null itself.
            # Its thread pool is Twisted's default (5 to 20), not settable.
            RESULTS.mkdir(parents=True, exist_ok=True)
            return [
                exe,
                "-n",
                "--pidfile=",
                "web",
                "--wsgi",
                f"apps.{scenario.app}",
                "--listen",
                listen,
                "--logfile",
                str(RESULTS / "twistd-web.log"),
            ]
        if self.name == "gunicorn-sync":
            return [exe, "-w", "1", "-k", "sync", "-b", f"{HOST}:{port}", app]
        if self.name == "gunicorn-gthread":
            return [
                exe,
                "-w",
                "1",
                "-k",
                "gthread",
                "--threads",
                str(n),
                "-b",
                f"{HOST}:{port}",
                app,
            ]
        if self.name == "waitress":
            return [exe, f"--listen={HOST}:{port}", f"--threads={n}", app]
        if self.name == "granian":
            tls = []
            if scenario.tls:
                tls = [
                    "--http",
                    "2" if scenario.h2load == "h2" else "1",
                    "--ssl-certificate",
                    str(CERTS / "server.pem"),
                    "--ssl-keyfile",
                    str(CERTS / "server.key"),
                ]
            return [
                exe,
                *tls,
                "--interface",
                "wsgi",
                "--workers",
                "1",
                "--blocking-threads",
                str(n),
                "--host",
                HOST,
                "--port",
                str(port),
                "--no-access-log",
                app,
            ]
        raise ValueError(f"unknown server {self.name!r}")


SERVERS = (
    Server("twsgi", "twsgi", "python"),
    # Issue 6's scaling figure: two worker processes against one, on hello.
    Server(
        "twsgi-w2", "twsgi --workers 2", "python", workers=2, onlyScenarios=("hello",)
    ),
    Server("twistd-web", "twistd web --wsgi", "twistd", fixedThreads=20),
    Server("gunicorn-sync", "gunicorn sync -w1", "gunicorn"),
    Server("gunicorn-gthread", "gunicorn gthread -w1", "gunicorn"),
    Server("waitress", "waitress", "waitress-serve"),
    Server("granian", "granian -w1 (Rust)", "granian"),
)

BASELINE = "baseline"
"""
The name of the server that C{--baseline REF} adds: twsgi at commit C{REF}.
"""


# --- wrk's output -----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class WrkResult:
    """
    What one wrk run reports.

    @ivar requestsPerSecond: wrk's C{Requests/sec} (all responses).
    @ivar p50Ms: the median latency in milliseconds, or C{None} when wrk
        completed no request.
    @ivar p99Ms: the 99th percentile latency in milliseconds, or C{None}.
    @ivar requests: the responses completed.
    @ivar socketErrors: connect, read, write and timeout errors added up.
    @ivar non2xx: responses with a status outside 2xx and 3xx.
    """

    requestsPerSecond: float
    p50Ms: float | None
    p99Ms: float | None
    requests: int
    socketErrors: int = 0
    non2xx: int = 0

    @property
    def errors(self) -> int:
        """
        Socket errors plus non-2xx/3xx responses.
        """
        return self.socketErrors + self.non2xx


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_PERCENTILE = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.M)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)\s*$", re.M)
_REQUESTS = re.compile(r"^\s*(\d+) requests in ", re.M)
_SOCKET_ERRORS = re.compile(
    r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"
)
_NON2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


def parseWrkOutput(text: str) -> WrkResult:
    """
    Read a wrk run's standard output (with C{--latency}).

    @param text: everything wrk printed on standard output.
    @return: requests per second, p50 and p99 latency, and the errors.
    @raise ValueError: when C{text} has no C{Requests/sec} line.
    """
    rps = _RPS.search(text)
    if rps is None:
        raise ValueError("no 'Requests/sec:' line in wrk output")
    percentiles = {
        int(m.group(1)): float(m.group(2)) * _UNIT_MS[m.group(3)]
        for m in _PERCENTILE.finditer(text)
    }
    requests = _REQUESTS.search(text)
    if requests is None or int(requests.group(1)) == 0:
        # wrk prints zero latencies when nothing completed: there are none.
        percentiles = {}
    socketErrors = _SOCKET_ERRORS.search(text)
    non2xx = _NON2XX.search(text)
    return WrkResult(
        requestsPerSecond=float(rps.group(1)),
        p50Ms=percentiles.get(50),
        p99Ms=percentiles.get(99),
        requests=int(requests.group(1)) if requests else 0,
        socketErrors=(
            sum(int(g) for g in socketErrors.groups()) if socketErrors else 0
        ),
        non2xx=int(non2xx.group(1)) if non2xx else 0,
    )


def runWrk(
    url: str,
    connections: int,
    seconds: float,
    varied: bool = False,
    pinned: bool = False,
) -> WrkResult:
    """
    Run wrk against C{url} for C{seconds}, bounded by a timeout; with
    C{varied}, each request with a head of its own (C{varied.lua}); with
    C{pinned}, on wrk's CPU of L{pinnedCpus}.
    """
    script = ["-s", str(BENCH / "varied.lua")] if varied else []
    cpus = pinnedCpus() if pinned else None
    cmd = [
        *([] if cpus is None else ["taskset", "-c", str(cpus[0])]),
        "wrk",
        f"-t{min(WRK_THREADS, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        WRK_TIMEOUT,
        "--latency",
        *script,
        url,
    ]
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=seconds + 30, check=False
    )
    return parseWrkOutput(done.stdout)


_H2LOAD_RPS = re.compile(r"^finished in [\d.]+\w+, ([\d.]+) req/s", re.M)
_H2LOAD_REQUESTS = re.compile(
    r"^requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, "
    r"(\d+) errored, (\d+) timeout",
    re.M,
)
_H2LOAD_STATUS = re.compile(
    r"^status codes: \d+ 2xx, \d+ 3xx, (\d+) 4xx, (\d+) 5xx", re.M
)


def parseH2loadOutput(text: str) -> WrkResult:
    """
    Read an h2load run's standard output.  h2load reports no latency
    percentiles: p50 and p99 are C{None}.

    @raise ValueError: when C{text} has no C{finished in} line.
    """
    rps = _H2LOAD_RPS.search(text)
    requests = _H2LOAD_REQUESTS.search(text)
    if rps is None or requests is None:
        raise ValueError("no 'finished in' or 'requests:' line in h2load output")
    status = _H2LOAD_STATUS.search(text)
    succeeded, failed, errored, timedOut = (int(g) for g in requests.groups())
    return WrkResult(
        requestsPerSecond=float(rps.group(1)),
        p50Ms=None,
        p99Ms=None,
        requests=succeeded,
        socketErrors=failed + errored + timedOut,
        non2xx=sum(int(g) for g in status.groups()) if status else 0,
    )


def runH2load(
    url: str, connections: int, seconds: float, h1: bool, requests: int = 0
) -> WrkResult:
    """
    Run h2load against C{url} for C{seconds}, C{H2LOAD_STREAMS} requests in
    flight per connection, over HTTP/2 (or HTTP/1.1 with C{h1}), bounded by
    a timeout.

    @param requests: instead of C{seconds}, this many requests (a probe).
    @raise ValueError: if not one request succeeded.
    """
    cmd = [
        "h2load",
        "-t1",
        f"-c{connections}",
        f"-m{H2LOAD_STREAMS}",
        f"-n{requests}" if requests else f"-D{max(1, round(seconds))}",
        *(["--h1"] if h1 else []),
        url,
    ]
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=seconds + 30, check=False
    )
    result = parseH2loadOutput(done.stdout)
    if requests and result.requests < requests:
        raise ValueError(f"h2load: {requests - result.requests} request(s) failed")
    return result


def runLoad(url: str, scenario: Scenario, seconds: float) -> WrkResult:
    """
    Load C{url} for C{seconds} as C{scenario} says: wrk, or h2load.
    """
    if scenario.h2load:
        return runH2load(url, scenario.connections, seconds, scenario.h2load == "h1")
    return runWrk(
        url, scenario.connections, seconds, scenario.varied, pinned=scenario.pinned
    )


def pinnedCpus() -> tuple[int, int] | None:
    """
    For the pinned scenarios, C{(wrk's CPU, the server's CPU)}: the first
    two this process may run on, or C{None} with fewer than two.
    """
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return (cpus[0], cpus[1]) if len(cpus) >= 2 else None


def ensureCertificates() -> None:
    """
    Make the self-signed certificate of the TLS scenarios, once.
    """
    if (CERTS / "server.pem").exists():
        return
    CERTS.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(CERTS / "server.key"),
            "-out",
            str(CERTS / "server.pem"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )


# --- servers as processes ---------------------------------------------------


def freePort() -> int:
    """
    A TCP port on C{HOST} that nothing listens on right now.
    """
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def statFields(stat: str) -> list[str]:
    """
    The fields of a C{/proc/PID/stat} line after the command name, which may
    hold spaces and parentheses: the first is field 3 of C{proc(5)}, the
    state.
    """
    return stat[stat.rfind(")") + 2 :].split()


def statCpuSeconds(stat: str, ticksPerSecond: int) -> float:
    """
    The CPU time a process has used, user plus system (fields 14 and 15 of
    a C{/proc/PID/stat} line, in clock ticks).
    """
    fields = statFields(stat)
    return (int(fields[11]) + int(fields[12])) / ticksPerSecond


def processTree(pid: int) -> set[int]:
    """
    C{pid} and all its descendants (gunicorn and granian run a worker
    process under their master, twsgi its workers under the supervisor).
    """
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parents[int(entry)] = int(statFields(stat)[1])
    tree = {pid}
    grew = True
    while grew:
        grew = False
        for child, parent in parents.items():
            if parent in tree and child not in tree:
                tree.add(child)
                grew = True
    return tree


def treeCpuSeconds(pid: int) -> float:
    """
    The CPU seconds (user plus system) that C{pid} and its descendants have
    used so far.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for member in processTree(pid):
        with contextlib.suppress(OSError):
            total += statCpuSeconds(Path(f"/proc/{member}/stat").read_text(), ticks)
    return total


def treeRssKb(pid: int) -> int:
    """
    The resident size in KiB of C{pid} and all its descendants.
    """
    total = 0
    for member in processTree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        if match:
            total += int(match.group(1))
    return total


class ServerFailed(Exception):
    """
    A server did not start, or died before it answered.
    """


class RunningServer:
    """
    A server process started in its own process group, so that it and every
    process it forks are stopped by that group's id and nothing else.
    """

    def __init__(self, server: Server, scenario: Scenario, logPath: Path) -> None:
        self.server = server
        self.scenario = scenario
        self.port = freePort()
        self.logPath = logPath
        env = dict(os.environ)
        env["PYTHONPATH"] = str(BENCH)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env.pop("VIRTUAL_ENV", None)
        self._log = logPath.open("ab")
        self.process = subprocess.Popen(
            server.command(scenario, self.port),
            cwd=BENCH,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        """
        The process id of the server's main process.
        """
        return self.process.pid

    def url(self, path: str = "/") -> str:
        """
        The URL of C{path} on this server.
        """
        scheme = "https" if self.scenario.tls else "http"
        return f"{scheme}://{HOST}:{self.port}{path}"

    def waitReady(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """
        Wait until C{GET /} answers 200.

        @raise ServerFailed: when the process exits or C{timeout} passes.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerFailed(
                    f"{self.server.name} exited with {self.process.returncode}; "
                    f"see {self.logPath}"
                )
            if self._answers() and self._allWorkersServing():
                return
            time.sleep(0.1)
        raise ServerFailed(f"{self.server.name} not ready in {timeout}s")

    def _answers(self) -> bool:
        """
        Whether C{GET /} answers 200, asked as the scenario's load asks (an
        HTTP/2-only server does not answer HTTP/1.1).
        """
        if self.scenario.h2load:
            try:
                runH2load(self.url(), 1, 1, self.scenario.h2load == "h1", requests=1)
            except (ValueError, OSError, subprocess.TimeoutExpired):
                return False
            return True
        return _answers200(self.port)

    def _allWorkersServing(self) -> bool:
        """
        Whether every twsgi worker process logged that it serves.
        """
        if self.server.workers <= 1:
            return True
        try:
            log = self.logPath.read_bytes()
        except OSError:
            return False
        return log.count(b"twsgi serving") >= self.server.workers

    def stop(self) -> None:
        """
        SIGTERM the main process, then SIGKILL the whole group after
        C{STOP_GRACE} seconds.
        """
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def kill(self) -> None:
        """
        SIGKILL the server's process group at once, and reap it.
        """
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=STOP_GRACE)
        self._log.close()


def _answers200(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            s.settimeout(2)
            head = s.recv(64)
    except OSError:
        return False
    return head.startswith(b"HTTP/1.") and head[9:12] == b"200"


@contextlib.contextmanager
def started(
    server: Server, scenario: Scenario, logDir: Path
) -> Iterator[RunningServer]:
    """
    Run C{server} with C{scenario}'s application for the C{with} block, and
    stop it, whatever happens.
    """
    running = RunningServer(server, scenario, logDir / f"{server.name}.log")
    try:
        running.waitReady()
        yield running
    finally:
        running.stop()


# --- the scenarios ----------------------------------------------------------


def measureThroughput(
    server: Server, scenario: Scenario, seconds: float, logDir: Path
) -> dict[str, Any]:
    """
    One turn: start C{server}, warm up for 1 s, measure for C{seconds}, stop.
    The CPU time of the server's process tree over the measured run is
    divided by the requests wrk completed.
    """
    with started(server, scenario, logDir) as running:
        runLoad(running.url(), scenario, 1)
        cpuBefore = treeCpuSeconds(running.pid)
        result = runLoad(running.url(), scenario, seconds)
        cpuSeconds = treeCpuSeconds(running.pid) - cpuBefore
    return {
        "threads": server.threadsFor(scenario),
        **dataclasses.asdict(result),
        "cpuSeconds": cpuSeconds,
        "cpuPerRequestUs": cpuPerRequestUs(cpuSeconds, result.requests),
    }


def cpuPerRequestUs(cpuSeconds: float, requests: int) -> float | None:
    """
    Server CPU microseconds per request, or C{None} when none completed.
    """
    return cpuSeconds / requests * 1e6 if requests else None


def measureSlowReaders(
    server: Server,
    scenario: Scenario,
    seconds: float,
    clients: int,
    logDir: Path,
    capKb: int = RSS_CAP_KB,
) -> dict[str, Any]:
    """
    Start C{server}; warm it up; then C{clients} connections ask for the
    512 MiB stream and never read, while wrk asks for hello for C{seconds}.
    The process tree's RSS is sampled all along; past C{capKb} (default
    L{RSS_CAP_KB}) the server is killed.
    """
    from apps import STREAM_PATH  # bench/ is on sys.path

    with started(server, scenario, logDir) as running:
        runWrk(running.url(), scenario.connections, 1)
        time.sleep(0.5)
        before = treeRssKb(running.pid)
        peak = before
        capped = False
        slow: list[socket.socket] = []
        try:
            for _ in range(clients):
                s = socket.create_connection((HOST, running.port), timeout=5)
                s.sendall(f"GET {STREAM_PATH} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
                slow.append(s)
            wrk = subprocess.Popen(
                [
                    "wrk",
                    f"-t{WRK_THREADS}",
                    f"-c{scenario.connections}",
                    f"-d{max(1, round(seconds))}s",
                    "--timeout",
                    WRK_TIMEOUT,
                    "--latency",
                    running.url(),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            deadline = time.monotonic() + seconds + 30
            while wrk.poll() is None and time.monotonic() < deadline:
                rss = treeRssKb(running.pid)
                peak = max(peak, rss)
                if rss > capKb and not capped:
                    capped = True
                    running.kill()
                time.sleep(0.25)
            if wrk.poll() is None:
                wrk.kill()
            out, _ = wrk.communicate(timeout=10)
            after = before if capped else treeRssKb(running.pid)
            peak = max(peak, after)
        finally:
            for s in slow:
                s.close()
    try:
        ordinary = parseWrkOutput(out)
    except ValueError:
        ordinary = WrkResult(0.0, None, None, 0)
    return {
        "threads": server.threadsFor(scenario),
        "clients": clients,
        "rssBeforeMB": before / 1024,
        "rssPeakMB": peak / 1024,
        "rssGrowthMB": (peak - before) / 1024,
        "capped": capped,
        "ordinary": dataclasses.asdict(ordinary),
    }


SLOWLORIS_OPEN_SECONDS = 30.0
"""
The longest the slowloris scenario spends opening its slow connections; a
server that stops accepting (its backlog full) gets fewer.
"""


def raiseFileLimit(needed: int) -> None:
    """
    Raise this process's soft limit on open files to C{needed} (at most the
    hard limit); the servers started afterwards inherit it.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, needed), hard))


def openSlowHeaders(port: int, count: int) -> list[socket.socket]:
    """
    Up to C{count} connections to C{HOST:port}, each with a header section
    begun and never finished; fewer when a connection is refused or does
    not complete within 5 s, or C{SLOWLORIS_OPEN_SECONDS} pass.
    """
    slow: list[socket.socket] = []
    deadline = time.monotonic() + SLOWLORIS_OPEN_SECONDS
    try:
        while len(slow) < count and time.monotonic() < deadline:
            s = socket.create_connection((HOST, port), timeout=5)
            slow.append(s)
            s.sendall(b"GET /slow HTTP/1.1\r\nHost: bench\r\nX-Slow-%d: " % len(slow))
    except OSError:
        pass
    return slow


def stillOpen(slow: Sequence[socket.socket]) -> int:
    """
    How many of C{slow} the server has neither answered nor closed.
    """
    count = 0
    for s in slow:
        s.setblocking(False)
        try:
            s.recv(1)
        except BlockingIOError:
            count += 1
        except OSError:
            pass
    return count


def measureSlowloris(
    server: Server, scenario: Scenario, seconds: float, slowCount: int, logDir: Path
) -> dict[str, Any]:
    """
    One turn: start C{server}, warm up for 1 s, measure hello alone for
    C{seconds}, open C{slowCount} connections that never finish their
    headers, warm up for 1 s again and measure hello for C{seconds} with
    them open, stop.
    """
    raiseFileLimit(slowCount + 256)
    with started(server, scenario, logDir) as running:
        runWrk(running.url(), scenario.connections, 1)
        alone = runWrk(running.url(), scenario.connections, seconds)
        slow = openSlowHeaders(running.port, slowCount)
        try:
            # Warm up again, so that the server has taken in the burst of
            # slow connections before the measured run.
            runWrk(running.url(), scenario.connections, 1)
            loaded = runWrk(running.url(), scenario.connections, seconds)
            openAfter = stillOpen(slow)
        finally:
            for s in slow:
                s.close()
    return {
        "threads": server.threadsFor(scenario),
        "slow": len(slow),
        "slowOpenAfter": openAfter,
        "alone": dataclasses.asdict(alone),
        "loaded": dataclasses.asdict(loaded),
    }


def summarizeSlowloris(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """
    The medians of a server's slowloris rounds, alone and with the slow
    connections open, and the fewest slow connections it took.
    """
    return {
        "threads": runs[0]["threads"],
        "rounds": len(runs),
        "slow": min(r["slow"] for r in runs),
        "slowOpenAfter": min(r["slowOpenAfter"] for r in runs),
        **{
            phase: {
                "requestsPerSecond": median(
                    [r[phase]["requestsPerSecond"] for r in runs]
                ),
                "p99Ms": median([r[phase]["p99Ms"] for r in runs]),
                "requests": sum(r[phase]["requests"] for r in runs),
                "errors": sum(
                    r[phase]["socketErrors"] + r[phase]["non2xx"] for r in runs
                ),
            }
            for phase in ("alone", "loaded")
        },
    }


def rotated(items: Sequence[Server], by: int) -> list[Server]:
    """
    C{items} rotated left by C{by}, so each round starts with another server.
    """
    if not items:
        return []
    by %= len(items)
    return [*items[by:], *items[:by]]


def median(values: Sequence[float | None]) -> float | None:
    """
    The median of the values that are not C{None}, or C{None}.
    """
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarize(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """
    The median requests/s, p50 and p99 of a server's rounds, and its errors.
    """
    return {
        "threads": runs[0]["threads"],
        "rounds": len(runs),
        "requestsPerSecond": median([r["requestsPerSecond"] for r in runs]),
        "p50Ms": median([r["p50Ms"] for r in runs]),
        "p99Ms": median([r["p99Ms"] for r in runs]),
        "cpuPerRequestUs": median([r.get("cpuPerRequestUs") for r in runs]),
        "errors": sum(r["socketErrors"] + r["non2xx"] for r in runs),
        "allRequestsPerSecond": [r["requestsPerSecond"] for r in runs],
    }


# --- targets and ratios (pure) ----------------------------------------------


@dataclasses.dataclass(frozen=True)
class Target:
    """
    One target of issue 4, point 5, and whether this run met it.
    """

    name: str
    goal: str
    measured: str
    met: bool | None


def ratio(a: float | None, b: float | None) -> float | None:
    """
    C{a / b}, or C{None} when either is missing or C{b} is zero.
    """
    if a is None or not b:
        return None
    return a / b


def _rps(summary: dict[str, Any], scenario: str, server: str) -> float | None:
    entry = summary.get(scenario, {}).get(server)
    return entry.get("requestsPerSecond") if entry else None


def evaluateTargets(summary: dict[str, Any]) -> list[Target]:
    """
    Check the run's medians against the targets; a target whose figures
    were not measured (filtered out, or a server failed) has C{met=None}.

    @param summary: scenario name -> server name -> L{summarize}'s value
        (or, for the slow-reader scenario, L{measureSlowReaders}'s).
    """
    targets = []

    def versus(scenario: str, peer: str, goal: float) -> None:
        r = ratio(_rps(summary, scenario, "twsgi"), _rps(summary, scenario, peer))
        targets.append(
            Target(
                f"{scenario}: twsgi / {peer} req/s",
                f">= {goal:.1f}x",
                "-" if r is None else f"{r:.2f}x",
                None if r is None else r >= goal,
            )
        )

    versus("hello", "twistd-web", 1.5)
    versus("hello", "gunicorn-sync", 1.0)
    targets.append(
        _latencyTarget(summary, "hello", "p99", "gunicorn-gthread", "gunicorn gthread")
    )
    w2 = ratio(_rps(summary, "hello", "twsgi-w2"), _rps(summary, "hello", "twsgi"))
    targets.append(
        Target(
            "hello: twsgi --workers 2 / --workers 1 req/s",
            ">= 1.6x",
            "-" if w2 is None else f"{w2:.2f}x",
            None if w2 is None else w2 >= 1.6,
        )
    )
    versus("generator", "gunicorn-sync", 1.5)
    versus("onemeg", "gunicorn-gthread", 1.0)
    sleep = _rps(summary, "sleep", "twsgi")
    targets.append(
        Target(
            "sleep: twsgi req/s (64 threads)",
            f">= {0.9 * SLEEP_APP_LIMIT:.0f} (90% of {SLEEP_APP_LIMIT:.0f})",
            "-" if sleep is None else f"{sleep:.0f}",
            None if sleep is None else sleep >= 0.9 * SLEEP_APP_LIMIT,
        )
    )
    slow = summary.get("slowreader", {}).get("twsgi")
    if slow is None:
        targets.append(Target("slowreader: twsgi RSS growth", "< 30 MB", "-", None))
        targets.append(Target("slowreader: ordinary clients served", "yes", "-", None))
    else:
        growth = slow["rssGrowthMB"]
        targets.append(
            Target(
                "slowreader: twsgi RSS growth",
                "< 30 MB",
                f"{growth:.1f} MB",
                growth < 30 and not slow["capped"],
            )
        )
        ordinary = slow["ordinary"]
        served = ordinary["requests"] > 0 and ordinary["socketErrors"] == 0
        targets.append(
            Target(
                "slowreader: ordinary clients served",
                "yes, no errors",
                f"{ordinary['requestsPerSecond']:.0f} req/s, "
                f"{ordinary['socketErrors'] + ordinary['non2xx']} errors",
                served,
            )
        )
    targets.append(slowlorisTarget(summary))
    for scenario, goal in (("h2", 1.0), ("h2gen", 0.8)):
        h2 = ratio(
            _rps(summary, scenario, "twsgi"), _rps(summary, f"{scenario}-h1", "twsgi")
        )
        targets.append(
            Target(
                f"{scenario}: twsgi HTTP/2 / twsgi HTTP/1.1 over TLS req/s",
                f">= {goal:.1f}x",
                "-" if h2 is None else f"{h2:.2f}x",
                None if h2 is None else h2 >= goal,
            )
        )
    targets += _issue13Targets(summary)
    return targets


SLOWLORIS_GOAL = 3.0
SLOWLORIS_NOISE_MS = 5.0
"""
The slowloris target: twsgi's p99 with the slow connections open at most
C{SLOWLORIS_GOAL} times its p99 alone, plus C{SLOWLORIS_NOISE_MS} of
scheduler noise.
"""


def slowlorisTarget(summary: dict[str, Any]) -> Target:
    """
    With the slow-header connections open, twsgi serves hello with no error
    and a p99 within L{SLOWLORIS_GOAL} times (plus L{SLOWLORIS_NOISE_MS})
    its p99 alone, in the same turn.
    """
    name = "slowloris: twsgi p99 with slow connections / alone"
    goal = f"<= {SLOWLORIS_GOAL:.0f}x + {SLOWLORIS_NOISE_MS:.0f} ms, no errors"
    entry = summary.get("slowloris", {}).get("twsgi")
    alone = entry and entry["alone"]["p99Ms"]
    loaded = entry and entry["loaded"]["p99Ms"]
    if entry is None or alone is None:
        return Target(name, goal, "-", None)
    if loaded is None:
        return Target(name, goal, "nothing served with slow connections", False)
    errors = entry["loaded"]["errors"]
    return Target(
        name,
        goal,
        f"{loaded:.2f} ms vs {alone:.2f} ms ({loaded / alone:.2f}x), "
        f"{entry['slow']} slow, {errors} errors",
        loaded <= SLOWLORIS_GOAL * alone + SLOWLORIS_NOISE_MS and not errors,
    )


def _latencyTarget(
    summary: dict[str, Any],
    scenario: str,
    percentile: str,
    peer: str,
    peerTitle: str,
    digits: int = 2,
) -> Target:
    """
    twsgi's latency percentile (C{"p50"} or C{"p99"}) in C{scenario} is no
    worse than C{peer}'s.
    """
    servers = summary.get(scenario, {})
    ours = (servers.get("twsgi") or {}).get(f"{percentile}Ms")
    theirs = (servers.get(peer) or {}).get(f"{percentile}Ms")
    return Target(
        f"{scenario}: twsgi {percentile} <= {peerTitle} {percentile}",
        "<=",
        "-"
        if ours is None or theirs is None
        else f"{ours:.{digits}f} ms vs {theirs:.{digits}f} ms",
        None if ours is None or theirs is None else ours <= theirs,
    )


def _timePerRequestTarget(summary: dict[str, Any], scenario: str) -> Target:
    """
    At one connection, the time twsgi takes per request as its client sees
    it (1 / req/s) is no longer than gunicorn sync's.  Not one of issue
    13's targets, beside its p50 one: gunicorn's sync worker closes every
    connection after its response, so its client connects again for each
    request, and wrk's latency (from the request's first byte) leaves that
    out; 1 / req/s counts it.
    """
    servers = summary.get(scenario, {})
    ours = (servers.get("twsgi") or {}).get("requestsPerSecond")
    theirs = (servers.get("gunicorn-sync") or {}).get("requestsPerSecond")
    known = bool(ours and theirs)
    return Target(
        f"{scenario}: twsgi time per request (1 / req/s) <= gunicorn sync's",
        "<=",
        f"{1e6 / ours:.0f} µs vs {1e6 / theirs:.0f} µs" if known else "-",
        ours >= theirs if known else None,
    )


def _issue13Targets(summary: dict[str, Any]) -> list[Target]:
    """
    Issue 13's targets: p50 at one connection against gunicorn sync (as
    the kernel places every process, and pinned) and,
    when the run has a C{--baseline}, twsgi against that commit.
    """
    targets = []

    def entry(scenario: str, server: str) -> dict[str, Any]:
        return summary.get(scenario, {}).get(server) or {}

    def figure(scenario: str, server: str, path: str) -> float | None:
        value: Any = entry(scenario, server)
        for key in path.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        return value

    for scenario in ("hello1", "hello1-pinned"):
        targets.append(
            _latencyTarget(
                summary, scenario, "p50", "gunicorn-sync", "gunicorn sync", 3
            )
        )
        targets.append(_timePerRequestTarget(summary, scenario))
    if not any(BASELINE in servers for servers in summary.values()):
        return targets

    def versus(scenario: str, what: str, path: str, goal: float) -> None:
        """
        twsgi's figure at C{path} (C{"a.b"} for a nested one) over the
        baseline's: at least C{goal} for req/s, at most for anything else.
        """
        r = ratio(figure(scenario, "twsgi", path), figure(scenario, BASELINE, path))
        higher = path.endswith("requestsPerSecond")
        targets.append(
            Target(
                f"{scenario}: twsgi / baseline {what}",
                f"{'>=' if higher else '<='} {goal:.2f}x",
                "-" if r is None else f"{r:.2f}x",
                None if r is None else (r >= goal if higher else r <= goal),
            )
        )

    versus("hello", "req/s", "requestsPerSecond", 1.3)
    versus("hello", "CPU/req", "cpuPerRequestUs", 0.75)
    for scenario in SCENARIOS:
        if scenario.name == "hello" or scenario.name not in summary:
            continue
        if scenario.memory:
            versus(
                scenario.name,
                "hello req/s meanwhile",
                "ordinary.requestsPerSecond",
                0.95,
            )
        elif scenario.slowHeaders:
            versus(
                scenario.name,
                "hello req/s with slow connections",
                "loaded.requestsPerSecond",
                0.95,
            )
        else:
            versus(scenario.name, "req/s", "requestsPerSecond", 0.95)
    return targets


# --- rendering ---------------------------------------------------------------


def _fmtRps(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


def _fmtMs(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.2f} ms" if v < 100 else f"{v:,.0f} ms"


def _fmtUs(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f} µs"


def _fmtRatio(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}x"


def _fmtMet(met: bool | None) -> str:
    return {True: "met", False: "MISSED", None: "not measured"}[met]


def _serverTitles(results: dict[str, Any]) -> dict[str, str]:
    """
    What the tables call each server of C{results} (a saved result from
    before titles were saved knows only L{SERVERS}).
    """
    return {s.name: s.title for s in SERVERS} | results.get("titles", {})


def tableRows(results: dict[str, Any]) -> list[list[str]]:
    """
    The throughput table: one row per scenario and server, with the ratio
    of twsgi's req/s to that server's, of their p99s and of their server CPU
    time per request.
    """
    rows = []
    titles = {s.name: s.title for s in SCENARIOS}
    serverTitles = _serverTitles(results)
    for scenario, servers in results["summary"].items():
        if scenario in ("slowreader", "slowloris"):
            continue
        ours = servers.get("twsgi")
        for index, (server, entry) in enumerate(servers.items()):
            title = "" if index else titles[scenario]
            if entry is None:
                rows.append([title, serverTitles[server], "-", "failed"] + ["-"] * 7)
                continue
            isUs = server == "twsgi"
            cpu = entry.get("cpuPerRequestUs")
            rows.append(
                [
                    title,
                    serverTitles[server],
                    str(entry["threads"]),
                    _fmtRps(entry["requestsPerSecond"]),
                    _fmtMs(entry["p50Ms"]),
                    _fmtMs(entry["p99Ms"]),
                    _fmtUs(cpu),
                    str(entry["errors"]),
                    ""
                    if isUs or not ours
                    else _fmtRatio(
                        ratio(ours["requestsPerSecond"], entry["requestsPerSecond"])
                    ),
                    ""
                    if isUs or not ours
                    else _fmtRatio(ratio(ours["p99Ms"], entry["p99Ms"])),
                    ""
                    if isUs or not ours
                    else _fmtRatio(ratio(ours.get("cpuPerRequestUs"), cpu)),
                ]
            )
    return rows


TABLE_HEADER = [
    "scenario",
    "server",
    "threads",
    "req/s",
    "p50",
    "p99",
    "CPU/req",
    "errors",
    "twsgi/peer req/s",
    "twsgi/peer p99",
    "twsgi/peer CPU/req",
]

MEMORY_HEADER = [
    "server",
    "threads",
    "RSS before",
    "RSS peak",
    "growth",
    "hello req/s meanwhile",
    "hello errors",
]


def memoryRows(results: dict[str, Any]) -> list[list[str]]:
    """
    The slow-reader table: RSS growth per server and how ordinary clients
    fared meanwhile.
    """
    rows = []
    serverTitles = _serverTitles(results)
    for server, entry in results["summary"].get("slowreader", {}).items():
        if entry is None:
            rows.append([serverTitles[server], "-", "failed"] + ["-"] * 4)
            continue
        ordinary = entry["ordinary"]
        growth = f"{entry['rssGrowthMB']:,.1f} MB"
        if entry["capped"]:
            growth += " (killed at the cap)"
        rows.append(
            [
                serverTitles[server],
                str(entry["threads"]),
                f"{entry['rssBeforeMB']:,.1f} MB",
                f"{entry['rssPeakMB']:,.1f} MB",
                growth,
                _fmtRps(ordinary["requestsPerSecond"]),
                str(ordinary["socketErrors"] + ordinary["non2xx"]),
            ]
        )
    return rows


SLOWLORIS_HEADER = [
    "server",
    "slow connections",
    "p99 alone",
    "p99 with slow",
    "with / alone",
    "req/s alone",
    "req/s with slow",
    "errors with slow",
    "slow still open",
]


def slowlorisRows(results: dict[str, Any]) -> list[list[str]]:
    """
    The slowloris table: each server's hello p99 alone and with the
    slow-header connections open, in the same turn, and their ratio.
    """
    rows = []
    serverTitles = _serverTitles(results)
    for server, entry in results["summary"].get("slowloris", {}).items():
        if entry is None:
            rows.append([serverTitles[server], "failed"] + ["-"] * 7)
            continue
        alone, loaded = entry["alone"], entry["loaded"]

        def p99(phase: dict[str, Any]) -> str:
            return "none served" if not phase["requests"] else _fmtMs(phase["p99Ms"])

        rows.append(
            [
                serverTitles[server],
                str(entry["slow"]),
                p99(alone),
                p99(loaded),
                _fmtRatio(ratio(loaded["p99Ms"], alone["p99Ms"])),
                _fmtRps(alone["requestsPerSecond"]),
                _fmtRps(loaded["requestsPerSecond"]),
                str(loaded["errors"]),
                str(entry["slowOpenAfter"]),
            ]
        )
    return rows


def targetRows(results: dict[str, Any]) -> list[list[str]]:
    """
    The targets table.
    """
    return [
        [t.name, t.goal, t.measured, _fmtMet(t.met)]
        for t in evaluateTargets(results["summary"])
    ]


TARGET_HEADER = ["target", "goal", "measured", "result"]


def renderText(header: list[str], rows: list[list[str]]) -> str:
    """
    A plain-text table with aligned columns.
    """
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    return "\n".join(lines)


def renderMarkdownTable(header: list[str], rows: list[list[str]]) -> str:
    """
    A Markdown (GitHub) table.
    """
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def renderRstTable(header: list[str], rows: list[list[str]]) -> str:
    """
    A reStructuredText C{list-table} (a sentence when there are no rows: a
    list-table needs a body).
    """
    if not rows:
        return "Not measured in this run."
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        # An empty cell is an escaped space: a bare "-" confuses the parser.
        cells = [cell or "\\ " for cell in row]
        lines.append(f"   * - {cells[0]}")
        lines += [f"     - {cell}" for cell in cells[1:]]
    return "\n".join(lines)


def _machineLines(machine: dict[str, Any]) -> list[str]:
    return [
        f"date: {machine['date']}",
        f"machine: {machine['uname']}",
        f"CPU: {machine['cpu']}, nproc {machine['nproc']}",
        f"load average before / after: {machine['loadBefore']} / "
        f"{machine.get('loadAfter', '-')}",
        f"method: {machine['method']}",
        f"versions: {machine['versions']}",
    ]


def renderMarkdown(results: dict[str, Any]) -> str:
    """
    The whole result as a Markdown document.
    """
    parts = ["# twsgi benchmark", ""]
    parts += [f"- {line}" for line in _machineLines(results["machine"])]
    parts += ["", "## Throughput (median of rounds)", ""]
    parts += [renderMarkdownTable(TABLE_HEADER, tableRows(results)), ""]
    if results["summary"].get("slowreader"):
        parts += ["## Slow readers: memory", ""]
        parts += [renderMarkdownTable(MEMORY_HEADER, memoryRows(results)), ""]
    if results["summary"].get("slowloris"):
        parts += ["## Slowloris: latency with slow-header connections open", ""]
        parts += [renderMarkdownTable(SLOWLORIS_HEADER, slowlorisRows(results)), ""]
    parts += ["## Targets (issues 4 and 13)", ""]
    parts += [renderMarkdownTable(TARGET_HEADER, targetRows(results)), ""]
    return "\n".join(parts)


def renderDocsPage(results: dict[str, Any]) -> str:
    """
    C{docs/benchmarks.rst}: how the benchmark is run and the latest table.
    """
    title = "Benchmarks"
    parts = [
        title,
        "=" * len(title),
        "",
        "twsgi is measured against ``twistd web --wsgi``, gunicorn (sync and",
        "gthread), waitress and granian by the harness in ``bench/`` (see",
        "``bench/README.md``): one process each, on 127.0.0.1, with wrk, the",
        "servers taking turns so that drift of the machine hits them equally.",
        "The machine is small and shared, so read the figures as ratios.",
        "To refresh this page: ``python3 bench/run.py --update-docs``.",
        "",
        "Latest run",
        "----------",
        "",
    ]
    parts += [f"- {line}" for line in _machineLines(results["machine"])]
    parts += ["", "Throughput (median of rounds)", "~" * 29, ""]
    parts += [
        "*twsgi/peer req/s* above 1.00x: twsgi serves more requests per",
        "second than that server.  *twsgi/peer p99* below 1.00x: twsgi's",
        "99th percentile latency is lower.  *errors* counts socket errors,",
        "timeouts and non-2xx/3xx responses over all rounds.  *CPU/req* is",
        "the CPU time of the server's processes over the requests served.",
        "",
    ]
    parts += [renderRstTable(TABLE_HEADER, tableRows(results)), ""]
    if results["summary"].get("slowreader"):
        heading = "Slow readers: memory"
        parts += [heading, "~" * len(heading), ""]
        parts += [
            f"{results['machine']['slowClients']} clients ask for a 512 MiB",
            "streamed response and never read, while wrk asks for hello; the",
            "growth is that of the server's resident size (all its processes).",
            "",
        ]
        parts += [renderRstTable(MEMORY_HEADER, memoryRows(results)), ""]
    if results["summary"].get("slowloris"):
        heading = "Slowloris: latency with slow-header connections open"
        parts += [heading, "~" * len(heading), ""]
        parts += [
            "One wrk connection asks for hello alone, then with",
            f"{results['machine'].get('slowlorisConnections', 1000)} connections"
            " open that never finish",
            "their header section, in the same turn of the same server.",
            "",
        ]
        parts += [renderRstTable(SLOWLORIS_HEADER, slowlorisRows(results)), ""]
    parts += [
        "Targets",
        "~" * 7,
        "",
        "At one connection, *time per request* is 1 / req/s, the time each",
        "request takes as the client sees it: gunicorn's sync worker closes",
        "every connection after its response, so its client connects again",
        "for each request, which wrk's latency (from the request's first byte)",
        "leaves out.  It is shown beside issue 13's p50 target, not as one.",
        "",
    ]
    parts += [renderRstTable(TARGET_HEADER, targetRows(results)), ""]
    return "\n".join(parts)


# --- the run ----------------------------------------------------------------


def _unameA() -> str:
    try:
        done = subprocess.run(
            ["uname", "-a"], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return " ".join(part for part in platform.uname() if part)
    return done.stdout.strip()


def machineFacts() -> dict[str, Any]:
    """
    Date, C{uname -a}, CPU model, CPU count and load of this machine.
    """
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC"
        ),
        "uname": _unameA(),
        "cpu": cpu,
        "nproc": os.cpu_count(),
        "loadBefore": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def serverVersions() -> str:
    """
    The versions of the servers installed in C{bench/.venv}.
    """
    code = (
        "import importlib.metadata as m\n"
        "for p in ('twsgi','Twisted','gunicorn','waitress','granian'):\n"
        "    try: print(p, m.version(p))\n"
        "    except m.PackageNotFoundError: pass\n"
    )
    done = subprocess.run(
        [str(VENV / "bin" / "python"), "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return ", ".join(done.stdout.split("\n")).strip(", ")


class BaselineError(Exception):
    """
    The commit that C{--baseline} names could not be prepared.
    """


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(REPO), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode:
        raise BaselineError(done.stderr.strip() or f"git {args[0]} failed")
    return done.stdout.strip()


def prepareBaseline(ref: str) -> Server:
    """
    twsgi at commit C{ref} as one more server of the run, served the same
    way as C{twsgi}: that commit's tree (C{git archive}) in
    C{bench/.baseline/SHA/tree}, installed with its C{http2} extra into a
    virtualenv of its own (C{bench/.baseline/SHA/.venv}).  Both are made
    once and reused.

    @raise BaselineError: when C{ref} is no commit or its install fails.
    """
    try:
        sha = _git("rev-parse", "--verify", "--short=12", f"{ref}^{{commit}}")
    except BaselineError:
        raise BaselineError(f"--baseline {ref}: no such commit in {REPO}")
    home = BASELINES / sha
    tree, venv, ready = home / "tree", home / ".venv", home / "ready"
    if not ready.exists():
        print(f"baseline: installing twsgi {sha} into {venv}", file=sys.stderr)
        shutil.rmtree(home, ignore_errors=True)
        tree.mkdir(parents=True)
        archive = home / "tree.tar"
        _git("archive", "--output", str(archive), sha)
        steps = [
            ["tar", "-x", "-f", str(archive), "-C", str(tree)],
            [os.environ.get("PYTHON", "python3"), "-m", "venv", str(venv)],
            # With HTTP/2, for the TLS scenarios (pip warns and goes on if
            # that commit has no http2 extra).
            [str(venv / "bin" / "pip"), "install", "-q", "-e", f"{tree}[http2]"],
        ]
        for step in steps:
            done = subprocess.run(
                step, capture_output=True, text=True, timeout=1800, check=False
            )
            if done.returncode:
                raise BaselineError(
                    f"--baseline {ref}: {' '.join(step[:3])} failed:\n"
                    f"{done.stderr.strip()[-2000:]}"
                )
        archive.unlink()
        ready.write_text(f"{ref}\n")
    return Server(BASELINE, f"twsgi {sha} (baseline)", "python", venv=venv)


def availableServers(wanted: Sequence[str]) -> tuple[list[Server], list[str]]:
    """
    The servers of C{wanted} installed in C{bench/.venv}, and a note for
    each one that is not.
    """
    present, notes = [], []
    for server in SERVERS:
        if server.name not in wanted:
            continue
        if (VENV / "bin" / server.executable).exists():
            present.append(server)
        else:
            notes.append(f"{server.name}: not installed in {VENV}, skipped")
    return present, notes


def withBaseline(servers: Sequence[Server], baseline: Server | None) -> list[Server]:
    """
    C{servers} with C{baseline} right after C{twsgi} (first if C{twsgi} is
    not among them), so that the two take their turns next to each other.
    """
    if baseline is None:
        return list(servers)
    names = [s.name for s in servers]
    at = names.index("twsgi") + 1 if "twsgi" in names else 0
    return [*servers[:at], baseline, *servers[at:]]


def runAll(options: argparse.Namespace) -> dict[str, Any]:
    """
    Run the selected scenarios on the selected servers and return the
    raw runs, the medians and the machine facts.
    """
    servers, notes = availableServers(options.servers)
    servers = withBaseline(servers, options.baselineServer)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    scenarios = [s for s in SCENARIOS if s.name in options.scenarios]
    if pinnedCpus() is None and any(s.pinned for s in scenarios):
        print("fewer than 2 CPUs: the pinned scenarios are left out", file=sys.stderr)
        scenarios = [s for s in scenarios if not s.pinned]
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    logDir = RESULTS / f"logs-{stamp}"
    logDir.mkdir(parents=True, exist_ok=True)
    machine = machineFacts()
    machine["versions"] = serverVersions()
    machine["slowClients"] = options.slow_clients
    machine["slowlorisConnections"] = options.slowloris_connections
    machine["method"] = (
        f"wrk -t{WRK_THREADS} -c<connections> -d{options.duration:g}s --latency, "
        f"1 s warm-up, median of {options.rounds} round(s), servers alternating"
        f"; slow readers: one round of {options.slow_seconds:g} s"
        f"; slowloris: wrk -t1 -c1 alone, then with"
        f" {options.slowloris_connections} slow-header connections open"
        f"; TLS scenarios: h2load -t1 -c<connections> -m{H2LOAD_STREAMS}"
        f" -D{options.duration:g} [--h1]"
    )
    pinned = pinnedCpus()
    if pinned is not None and any(s.pinned for s in scenarios):
        machine["method"] += (
            f"; pinned scenarios: wrk under taskset -c {pinned[0]}, every server on"
            f" CPU {pinned[1]} (twsgi with --cpu-affinity {pinned[1]}, the others"
            f" and twsgi at --baseline under taskset -c {pinned[1]})"
        )
    raw: dict[str, dict[str, list[Any]]] = {}
    summary: dict[str, dict[str, Any]] = {}
    for scenario in scenarios:
        raw[scenario.name] = {s.name: [] for s in servers}
        rounds = 1 if scenario.memory else options.rounds
        for round_ in range(rounds):
            for server in rotated(servers, round_):
                if not server.runs(scenario):
                    continue
                label = f"[{scenario.name} {round_ + 1}/{rounds}] {server.name}"
                print(f"{label} ...", end="", flush=True, file=sys.stderr)
                try:
                    if scenario.memory:
                        run = measureSlowReaders(
                            server,
                            scenario,
                            options.slow_seconds,
                            options.slow_clients,
                            logDir,
                            options.rss_cap_mb * 1024,
                        )
                        shown = f"RSS +{run['rssGrowthMB']:.1f} MB"
                    elif scenario.slowHeaders:
                        run = measureSlowloris(
                            server,
                            scenario,
                            options.duration,
                            options.slowloris_connections,
                            logDir,
                        )
                        shown = (
                            f"p99 {_fmtMs(run['alone']['p99Ms'])} alone, "
                            f"{_fmtMs(run['loaded']['p99Ms'])} with "
                            f"{run['slow']} slow connections"
                        )
                    else:
                        run = measureThroughput(
                            server, scenario, options.duration, logDir
                        )
                        shown = (
                            f"{run['requestsPerSecond']:,.0f} req/s, "
                            f"p99 {_fmtMs(run['p99Ms'])}, "
                            f"CPU/req {_fmtUs(run['cpuPerRequestUs'])}"
                        )
                except (ServerFailed, ValueError, subprocess.SubprocessError) as e:
                    print(f" FAILED: {e}", file=sys.stderr)
                    continue
                print(f" {shown}", file=sys.stderr)
                raw[scenario.name][server.name].append(run)
        summary[scenario.name] = {}
        for server in servers:
            if not server.runs(scenario):
                continue
            runs = raw[scenario.name][server.name]
            if not runs:
                summary[scenario.name][server.name] = None
            elif scenario.memory:
                summary[scenario.name][server.name] = runs[0]
            elif scenario.slowHeaders:
                summary[scenario.name][server.name] = summarizeSlowloris(runs)
            else:
                summary[scenario.name][server.name] = summarize(runs)
    machine["loadAfter"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "machine": machine,
        "notes": notes,
        "titles": {s.name: s.title for s in servers},
        "summary": summary,
        "raw": raw,
    }


def setup() -> None:
    """
    Run C{bench/setup.sh}: the virtualenv, the servers, wrk.
    """
    subprocess.run(["bash", str(BENCH / "setup.sh")], check=True, timeout=1800)


def parseArgs(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """
    The command line of C{bench/run.py}.
    """
    p = argparse.ArgumentParser(
        description="Benchmark twsgi against its peers with wrk on 127.0.0.1."
    )
    names = [s.name for s in SCENARIOS]
    servers = [s.name for s in SERVERS]
    p.add_argument(
        "--scenarios",
        default=",".join(names),
        help=f"comma-separated, from {','.join(names)} (default: all)",
    )
    p.add_argument(
        "--servers",
        default=",".join(servers),
        help=f"comma-separated, from {','.join(servers)} (default: all installed)",
    )
    p.add_argument("--rounds", type=int, default=2, help="rounds per scenario")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    p.add_argument("--quick", action="store_true", help="3 s runs, 1 round")
    p.add_argument("--slow-clients", type=int, default=20)
    p.add_argument("--slow-seconds", type=float, default=8.0)
    p.add_argument(
        "--slowloris-connections",
        type=int,
        default=1000,
        help="connections that never finish their headers in the slowloris scenario",
    )
    p.add_argument(
        "--rss-cap-mb",
        type=int,
        default=RSS_CAP_KB // 1024,
        help="kill a server whose RSS passes this in the slow-reader scenario",
    )
    p.add_argument(
        "--baseline",
        metavar="REF",
        help="also run twsgi at commit REF (a tree and venv of its own, "
        "made once in bench/.baseline/)",
    )
    p.add_argument("--setup", action="store_true", help="run bench/setup.sh first")
    p.add_argument("--update-docs", action="store_true", help=f"write {DOCS_PAGE}")
    p.add_argument(
        "--from-json",
        type=Path,
        help="render a saved result instead of running the benchmark",
    )
    options = p.parse_args(argv)
    options.scenarios = _choices(p, "--scenarios", options.scenarios, names)
    options.servers = _choices(p, "--servers", options.servers, servers)
    if options.quick:
        options.duration = min(options.duration, 3.0)
        options.rounds = 1
    if options.rounds < 1 or options.duration < 1 or options.slow_clients < 0:
        p.error("--rounds and --duration must be at least 1")
    if options.slowloris_connections < 0:
        p.error("--slowloris-connections must be at least 0")
    return options


def _choices(
    parser: argparse.ArgumentParser, flag: str, value: str, allowed: list[str]
) -> list[str]:
    chosen = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in allowed]
    if unknown or not chosen:
        parser.error(f"{flag}: choose from {','.join(allowed)}")
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the benchmark, print the tables, write C{bench/results/}.
    """
    options = parseArgs(argv)
    if options.from_json:
        results = json.loads(options.from_json.read_text())
    else:
        if options.setup or not (VENV / "bin" / "python").exists():
            setup()
        if subprocess.run(["which", "wrk"], capture_output=True).returncode:
            print("wrk is missing: run bash bench/setup.sh", file=sys.stderr)
            return 1
        if subprocess.run(["which", "h2load"], capture_output=True).returncode:
            print("h2load is missing: run bash bench/setup.sh", file=sys.stderr)
            return 1
        ensureCertificates()
        options.baselineServer = None
        if options.baseline:
            try:
                options.baselineServer = prepareBaseline(options.baseline)
            except BaselineError as e:
                print(e, file=sys.stderr)
                return 1
        sys.path.insert(0, str(BENCH))
        results = runAll(options)
        RESULTS.mkdir(exist_ok=True)
        stamp = results["machine"]["date"].replace(" ", "-").replace(":", "")
        for name in (f"bench-{stamp}", "latest"):
            (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2))
            (RESULTS / f"{name}.md").write_text(renderMarkdown(results))
    print()
    for line in _machineLines(results["machine"]):
        print(line)
    print()
    print(renderText(TABLE_HEADER, tableRows(results)))
    if results["summary"].get("slowreader"):
        print()
        print(renderText(MEMORY_HEADER, memoryRows(results)))
    if results["summary"].get("slowloris"):
        print()
        print(renderText(SLOWLORIS_HEADER, slowlorisRows(results)))
    print()
    print(renderText(TARGET_HEADER, targetRows(results)))
    if options.update_docs:
        DOCS_PAGE.parent.mkdir(exist_ok=True)
        DOCS_PAGE.write_text(renderDocsPage(results))
        print(f"\nwrote {DOCS_PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
