"""
Where a server spends its time in one benchmark scenario.

C{python3 bench/spy.py onemeg} starts twsgi with the C{onemeg}
application, loads it as the benchmark does (wrk, or h2load for the TLS
scenarios C{h2}, C{h2-h1}, C{h2gen} and C{h2gen-h1}), samples it with py-spy
(installed into C{bench/.venv} when missing) and prints the busiest frames:
by self time and inclusive, over the non-idle samples of every thread.
C{--server} profiles a peer instead (Python servers only), C{--svg} also
writes a flame graph.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import run

IDLE_LEAVES = (
    "Condition.wait (threading.py",
    "EPollReactor.doPoll (twisted/internet/epollreactor.py:227)",
    "select (",
)
"""
Frames where a thread waits for work or for the network: left out of the
percentages, so they are shares of busy time.
"""


def _waitForTask() -> str:
    """
    The frame of a WSGI thread waiting for its next task: C{WorkerPool._work}
    in the last C{sleep.acquire()} of its loop, a C function, so the leaf
    py-spy reports is C{_work} itself, at that line.  Read from this
    checkout's source: the Python running this script need not have twsgi.
    """
    path = run.BENCH.parent / "src" / "twsgi" / "wsgi" / "pool.py"
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if "def _work(" in line)
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i].startswith("    def ")),
        len(lines),
    )
    at = max(i for i in range(start, end) if "sleep.acquire()" in lines[i])
    return f"WorkerPool._work (twsgi/wsgi/pool.py:{at + 1})"


def summarize(raw: str, top: int) -> str:
    """
    The C{top} frames by self and inclusive share of py-spy's collapsed
    stacks (C{--format raw}), idle samples left out.
    """
    selfTime: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    busy = idle = 0
    idleLeaves = (*IDLE_LEAVES, _waitForTask())
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        if frames[-1].startswith(idleLeaves):
            idle += n
            continue
        busy += n
        selfTime[frames[-1]] += n
        for frame in set(frames[1:]):
            inclusive[frame] += n
    if not busy:
        return "no busy samples"
    lines = [f"{busy} busy samples ({idle} idle left out)", "", "self:"]
    lines += [f"{100 * n / busy:5.1f}%  {f}" for f, n in selfTime.most_common(top)]
    lines += ["", "inclusive:"]
    lines += [f"{100 * n / busy:5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """
    Profile one server in one scenario and print where the time goes.
    """
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    scenarios = {s.name: s for s in run.SCENARIOS if not s.memory}
    servers = {s.name: s for s in run.SERVERS if s.name != "granian"}
    p.add_argument("scenario", choices=sorted(scenarios))
    p.add_argument("--server", choices=sorted(servers), default="twsgi")
    p.add_argument("--seconds", type=float, default=8.0, help="sampling time")
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--svg", type=Path, help="also write a flame graph here")
    p.add_argument(
        "--gil",
        action="store_true",
        help="sample only the thread holding the GIL: where the Python work "
        "goes, without the threads that wait for the GIL",
    )
    options = p.parse_args(argv)
    spy = run.VENV / "bin" / "py-spy"
    if not spy.exists():
        subprocess.run(
            [str(run.VENV / "bin" / "pip"), "install", "-q", "py-spy"],
            check=True,
            timeout=600,
        )
    scenario = scenarios[options.scenario]
    if scenario.tls:
        run.ensureCertificates()
    server = servers[options.server]
    logDir = Path(tempfile.mkdtemp(prefix="twsgi-profile-"))
    seconds = options.seconds
    with run.started(server, scenario, logDir) as running:
        # The load as run.py makes it (wrk, or h2load for the TLS scenarios),
        # in a thread while py-spy samples.
        loads: list[run.WrkResult] = []
        load = threading.Thread(
            target=lambda: loads.append(
                run.runLoad(running.url(), scenario, round(seconds) + 4)
            )
        )
        load.start()
        time.sleep(2)
        raw = logDir / "profile.raw"

        def record(secs: float, *output: str) -> None:
            subprocess.run(
                [str(spy), "record", "-d", str(round(secs)), "-r", "200"]
                + ["--pid", str(running.pid), "--subprocesses", "--threads"]
                + (["--gil"] if options.gil else [])
                + list(output),
                capture_output=True,
                timeout=secs + 60,
                check=False,
            )

        record(seconds, "-f", "raw", "-o", str(raw))
        if options.svg:
            # A second, short sample for the picture; the text uses the first.
            record(2, "-o", str(options.svg))
        load.join(timeout=seconds + 60)
    if not loads:
        print("the load generator failed", file=sys.stderr)
        return 1
    result = loads[0]
    latency = (
        f", p50 {result.p50Ms} ms, p99 {result.p99Ms} ms"
        if result.p99Ms is not None
        else ""
    )
    print(
        f"{server.title}, {scenario.title}: {result.requestsPerSecond:,.0f} req/s"
        f"{latency} (while sampled)"
    )
    print(summarize(raw.read_text() if raw.exists() else "", options.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
