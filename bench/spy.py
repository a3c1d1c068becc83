"""
Where a server spends its time in one benchmark scenario.

C{python3 bench/spy.py onemeg} starts twsgi with the C{onemeg}
application, loads it with wrk as the benchmark does, samples it with py-spy
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


def summarize(raw: str, top: int) -> str:
    """
    The C{top} frames by self and inclusive share of py-spy's collapsed
    stacks (C{--format raw}), idle samples left out.
    """
    selfTime: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    busy = idle = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        if frames[-1].startswith(IDLE_LEAVES):
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
    options = p.parse_args(argv)
    spy = run.VENV / "bin" / "py-spy"
    if not spy.exists():
        subprocess.run(
            [str(run.VENV / "bin" / "pip"), "install", "-q", "py-spy"],
            check=True,
            timeout=600,
        )
    scenario = scenarios[options.scenario]
    server = servers[options.server]
    logDir = Path(tempfile.mkdtemp(prefix="twsgi-profile-"))
    seconds = options.seconds
    with run.started(server, scenario, logDir) as running:
        wrk = subprocess.Popen(
            [
                "wrk",
                f"-t{run.WRK_THREADS}",
                f"-c{scenario.connections}",
                f"-d{round(seconds) + 4}s",
                "--latency",
                running.url(),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(2)
        raw = logDir / "profile.raw"

        def record(secs: float, *output: str) -> None:
            subprocess.run(
                [str(spy), "record", "-d", str(round(secs)), "-r", "200"]
                + ["--pid", str(running.pid), "--subprocesses", "--threads"]
                + list(output),
                capture_output=True,
                timeout=secs + 60,
                check=False,
            )

        record(seconds, "-f", "raw", "-o", str(raw))
        if options.svg:
            # A second, short sample for the picture; the text uses the first.
            record(2, "-o", str(options.svg))
        out, _ = wrk.communicate(timeout=seconds + 60)
    result = run.parseWrkOutput(out)
    print(
        f"{server.title}, {scenario.title}: {result.requestsPerSecond:,.0f} req/s, "
        f"p50 {result.p50Ms} ms, p99 {result.p99Ms} ms (while sampled)"
    )
    print(summarize(raw.read_text() if raw.exists() else "", options.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
