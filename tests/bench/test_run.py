# -*- test-case-name: tests.bench.test_run -*-
"""
Tests for the pure parts of the benchmark harness (C{bench/run.py}): the
wrk-output parser, the server CPU time per request, the C{--baseline} server
and the tables and targets built from a result.

The benchmark itself is never run by the test suite.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase


def _loadHarness():
    """
    Import C{bench/run.py} by its path (C{bench/} is not a package).
    """
    path = Path(__file__).resolve().parents[2] / "bench" / "run.py"
    spec = importlib.util.spec_from_file_location("_twsgi_bench_run", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses looks the module up in sys.modules while building classes.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


run = _loadHarness()

CLEAN = """\
Running 1s test @ http://127.0.0.1:18790/
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.61ms    2.19ms  24.15ms   92.46%
    Req/Sec     1.72k   297.41     2.19k    65.00%
  Latency Distribution
     50%    2.07ms
     75%    2.91ms
     90%    4.17ms
     99%   13.15ms
  3443 requests in 1.01s, 447.42KB read
Requests/sec:   3406.85
Transfer/sec:    442.72KB
"""

WITH_ERRORS = """\
Running 10s test @ http://127.0.0.1:8000/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.80s     1.20s    9.90s    70.00%
    Req/Sec     6.50      4.00    20.00     60.00%
  Latency Distribution
     50%  812.00us
     75%    5.01s
     90%    6.00s
     99%    1.50m
  130 requests in 10.05s, 18.00KB read
  Socket errors: connect 1, read 2, write 3, timeout 40
  Non-2xx or 3xx responses: 7
Requests/sec:     12.94
Transfer/sec:      1.79KB
"""

NOTHING_DONE = """\
Running 3s test @ http://127.0.0.1:8000/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     0.00us    0.00us   0.00us    -nan%
    Req/Sec     0.00      0.00     0.00      -nan%
  Latency Distribution
     50%    0.00us
     75%    0.00us
     90%    0.00us
     99%    0.00us
  0 requests in 3.01s, 0.00B read
Requests/sec:      0.00
Transfer/sec:       0.00B
"""


class ParseWrkOutputTests(SynchronousTestCase):
    """
    Tests for L{run.parseWrkOutput}.
    """

    def test_clean(self) -> None:
        """
        Requests/s, the p50 and p99 latencies in milliseconds and the request
        count are read from an error-free run.
        """
        result = run.parseWrkOutput(CLEAN)
        self.assertEqual(
            result,
            run.WrkResult(
                requestsPerSecond=3406.85,
                p50Ms=2.07,
                p99Ms=13.15,
                requests=3443,
                socketErrors=0,
                non2xx=0,
            ),
        )
        self.assertEqual(result.errors, 0)

    def test_unitsAndErrors(self) -> None:
        """
        Latencies in microseconds, seconds and minutes become milliseconds,
        and socket errors and non-2xx/3xx responses are counted.
        """
        result = run.parseWrkOutput(WITH_ERRORS)
        self.assertAlmostEqual(result.p50Ms, 0.812)
        self.assertAlmostEqual(result.p99Ms, 90_000.0)
        self.assertEqual(result.requestsPerSecond, 12.94)
        self.assertEqual(result.requests, 130)
        self.assertEqual(result.socketErrors, 46)
        self.assertEqual(result.non2xx, 7)
        self.assertEqual(result.errors, 53)

    def test_nothingCompleted(self) -> None:
        """
        When no request completed, the latencies are C{None}, not the zeros
        wrk prints.
        """
        result = run.parseWrkOutput(NOTHING_DONE)
        self.assertEqual(result.requestsPerSecond, 0.0)
        self.assertIsNone(result.p50Ms)
        self.assertIsNone(result.p99Ms)
        self.assertEqual(result.requests, 0)

    def test_notWrkOutput(self) -> None:
        """
        Text without a C{Requests/sec} line (wrk failed to run) is refused
        with L{ValueError}.
        """
        self.assertRaises(
            ValueError, run.parseWrkOutput, "unable to connect to 127.0.0.1:1\n"
        )


# /proc/PID/stat of a process whose name holds a space and a parenthesis;
# utime (field 14) is 250 ticks and stime (field 15) 50.
STAT = (
    "4242 (twsgi (w) 1) S 4200 4242 4242 0 -1 4194560 1000 0 0 0 "
    "250 50 3 4 20 0 9 0 12345 1000000 2000 18446744073709551615"
)


def _entry(rps: float, p50: float, cpu: float | None) -> dict[str, object]:
    return {
        "threads": 8,
        "rounds": 1,
        "requestsPerSecond": rps,
        "p50Ms": p50,
        "p99Ms": 2 * p50,
        "cpuPerRequestUs": cpu,
        "errors": 0,
        "allRequestsPerSecond": [rps],
    }


class CpuTimeTests(SynchronousTestCase):
    """
    Tests for the server CPU time per request.
    """

    def test_statCpuSeconds(self) -> None:
        """
        User plus system time are read from fields 14 and 15 of a
        C{/proc/PID/stat} line, after a command name with spaces and
        parentheses, and turned from ticks into seconds.
        """
        self.assertEqual(run.statCpuSeconds(STAT, 100), 3.0)

    def test_treeCpuSeconds(self) -> None:
        """
        The CPU time of a live process tree (this process) is positive and
        does not go backwards.
        """
        first = run.treeCpuSeconds(os.getpid())
        sum(range(200_000))
        self.assertGreater(first, 0)
        self.assertGreaterEqual(run.treeCpuSeconds(os.getpid()), first)

    def test_cpuPerRequest(self) -> None:
        """
        CPU seconds over requests, in microseconds; C{None} when no request
        completed.
        """
        self.assertEqual(run.cpuPerRequestUs(0.5, 10_000), 50.0)
        self.assertIsNone(run.cpuPerRequestUs(0.5, 0))

    def test_summarizeMedian(self) -> None:
        """
        The summary holds the median CPU time per request of the rounds, and
        C{None} for runs saved before it was measured.
        """
        runs = [
            {
                "threads": 8,
                "requestsPerSecond": rps,
                "p50Ms": 1.0,
                "p99Ms": 2.0,
                "socketErrors": 0,
                "non2xx": 0,
                "cpuPerRequestUs": cpu,
            }
            for rps, cpu in [(100.0, 30.0), (110.0, 10.0), (120.0, 20.0)]
        ]
        self.assertEqual(run.summarize(runs)["cpuPerRequestUs"], 20.0)
        for r in runs:
            del r["cpuPerRequestUs"]
        self.assertIsNone(run.summarize(runs)["cpuPerRequestUs"])

    def test_tableColumns(self) -> None:
        """
        The table shows each server's CPU time per request and twsgi's over
        the peer's.
        """
        results = {
            "summary": {
                "hello": {
                    "twsgi": _entry(1000.0, 1.0, 60.0),
                    "gunicorn-sync": _entry(500.0, 2.0, 120.0),
                }
            }
        }
        rows = run.tableRows(results)
        cpu = run.TABLE_HEADER.index("CPU/req")
        versus = run.TABLE_HEADER.index("twsgi/peer CPU/req")
        self.assertEqual([r[cpu] for r in rows], ["60 µs", "120 µs"])
        self.assertEqual([r[versus] for r in rows], ["", "0.50x"])


class BaselineTests(SynchronousTestCase):
    """
    Tests for C{--baseline}: twsgi at an older commit as one more server.
    """

    def test_servedLikeTwsgi(self) -> None:
        """
        The baseline runs twsgi with the same arguments as C{twsgi}, from its
        own virtualenv.
        """
        venv = Path("/nonexistent/baseline/.venv")
        baseline = run.Server(run.BASELINE, "old", "python", venv=venv)
        twsgi = run.SERVERS[0]
        scenario = run.SCENARIOS[0]
        ours = twsgi.command(scenario, 8080)
        theirs = baseline.command(scenario, 8080)
        self.assertEqual(theirs[0], str(venv / "bin" / "python"))
        self.assertEqual(theirs[1:], ours[1:])

    def test_orderNextToTwsgi(self) -> None:
        """
        The baseline takes its turn right after C{twsgi}, or first when
        C{twsgi} is not run; without one the servers stay as they are.
        """
        baseline = run.Server(run.BASELINE, "old", "python")
        twsgi, w2, twistd = run.SERVERS[:3]
        self.assertEqual(
            run.withBaseline([twistd, twsgi, w2], baseline),
            [twistd, twsgi, baseline, w2],
        )
        self.assertEqual(run.withBaseline([twistd], baseline), [baseline, twistd])
        self.assertEqual(run.withBaseline([twistd, twsgi], None), [twistd, twsgi])

    def test_unknownCommit(self) -> None:
        """
        A C{--baseline} that names no commit is refused with
        L{run.BaselineError}, which says which.
        """
        e = self.assertRaises(
            run.BaselineError, run.prepareBaseline, "no-such-ref-of-twsgi"
        )
        self.assertIn("no-such-ref-of-twsgi", str(e))

    def test_titles(self) -> None:
        """
        The table names the baseline by the title saved with the result.
        """
        results = {
            "titles": {run.BASELINE: "twsgi abc (baseline)"},
            "summary": {
                "hello": {
                    "twsgi": _entry(1000.0, 1.0, 60.0),
                    run.BASELINE: _entry(500.0, 2.0, 120.0),
                }
            },
        }
        self.assertEqual(
            [r[1] for r in run.tableRows(results)], ["twsgi", "twsgi abc (baseline)"]
        )


class PinnedTests(SynchronousTestCase):
    """
    Tests for the pinned scenarios: each server on one CPU, wrk on another.
    """

    def test_pinned(self) -> None:
        """
        In a pinned scenario twsgi keeps to the server's CPU with
        C{--cpu-affinity}, every other server (the baseline too, which may
        predate that option) runs under C{taskset} on that CPU, and wrk on
        the other; elsewhere nothing is pinned.
        """
        self.patch(run, "pinnedCpus", lambda: (2, 3))
        pinned = next(s for s in run.SCENARIOS if s.pinned)
        plain = next(s for s in run.SCENARIOS if s.name == "hello1")
        twsgi = run.SERVERS[0]
        baseline = run.Server(run.BASELINE, "old", "python")
        gunicorn = next(s for s in run.SERVERS if s.name == "gunicorn-sync")
        self.assertEqual(twsgi.command(pinned, 80)[-2:], ["--cpu-affinity", "3"])
        self.assertEqual(twsgi.command(pinned, 80)[:-2], twsgi.command(plain, 80))
        for server in (baseline, gunicorn):
            self.assertEqual(
                server.command(pinned, 80),
                ["taskset", "-c", "3", *server.command(plain, 80)],
            )
        commands: list[list[str]] = []

        def fakeRun(command: list[str], **kw: object) -> object:
            commands.append(command)
            raise OSError("not run")

        self.patch(run.subprocess, "run", fakeRun)
        for scenario in (pinned, plain):
            self.assertRaises(OSError, run.runLoad, "http://h/", scenario, 1)
        self.assertEqual(commands[0][:4], ["taskset", "-c", "2", "wrk"])
        self.assertEqual(commands[1][0], "wrk")


class TargetTests(SynchronousTestCase):
    """
    Tests for issue 13's targets in L{run.evaluateTargets}.
    """

    def targets(self, summary: dict[str, object]) -> dict[str, tuple[str, object]]:
        return {t.name: (t.measured, t.met) for t in run.evaluateTargets(summary)}

    def test_againstBaseline(self) -> None:
        """
        With a baseline, hello must reach 1.3x its req/s at 0.75x its CPU per
        request, and no other scenario may lose more than 5% of its req/s.
        """
        summary = {
            "hello": {
                "twsgi": _entry(1300.0, 1.0, 75.0),
                run.BASELINE: _entry(1000.0, 1.0, 100.0),
            },
            "hello1": {
                "twsgi": _entry(940.0, 1.0, 75.0),
                run.BASELINE: _entry(1000.0, 1.0, 100.0),
            },
        }
        targets = self.targets(summary)
        self.assertEqual(targets["hello: twsgi / baseline req/s"], ("1.30x", True))
        self.assertEqual(targets["hello: twsgi / baseline CPU/req"], ("0.75x", True))
        self.assertEqual(targets["hello1: twsgi / baseline req/s"], ("0.94x", False))
        summary["hello"]["twsgi"] = _entry(1200.0, 1.0, 80.0)
        targets = self.targets(summary)
        self.assertEqual(targets["hello: twsgi / baseline req/s"], ("1.20x", False))
        self.assertEqual(targets["hello: twsgi / baseline CPU/req"], ("0.80x", False))

    def test_slowReadersAgainstBaseline(self) -> None:
        """
        In the slow-reader scenario the ordinary clients' req/s is compared.
        """

        def slow(rps: float) -> dict[str, object]:
            ordinary = {
                "requestsPerSecond": rps,
                "requests": 100,
                "socketErrors": 0,
                "non2xx": 0,
            }
            return {"rssGrowthMB": 1.0, "capped": False, "ordinary": ordinary}

        summary = {"slowreader": {"twsgi": slow(960.0), run.BASELINE: slow(1000.0)}}
        self.assertEqual(
            self.targets(summary)["slowreader: twsgi / baseline hello req/s meanwhile"],
            ("0.96x", True),
        )

    def test_p50AtOneConnection(self) -> None:
        """
        At one connection twsgi's p50 must be no worse than gunicorn sync's.
        """
        summary = {
            "hello1": {
                "twsgi": _entry(1000.0, 0.12, 50.0),
                "gunicorn-sync": _entry(1000.0, 0.12, 50.0),
            }
        }
        name = "hello1: twsgi p50 <= gunicorn sync p50"
        self.assertEqual(self.targets(summary)[name][1], True)
        summary["hello1"]["twsgi"] = _entry(1000.0, 0.24, 50.0)
        self.assertEqual(self.targets(summary)[name][1], False)

    def test_p50AtOneConnectionPinned(self) -> None:
        """
        The same holds with every server on one CPU and wrk on another.
        """
        summary = {
            "hello1-pinned": {
                "twsgi": _entry(1000.0, 0.09, 50.0),
                "gunicorn-sync": _entry(1000.0, 0.12, 50.0),
            }
        }
        name = "hello1-pinned: twsgi p50 <= gunicorn sync p50"
        self.assertEqual(self.targets(summary)[name], ("0.090 ms vs 0.120 ms", True))
        summary["hello1-pinned"]["twsgi"] = _entry(1000.0, 0.13, 50.0)
        self.assertEqual(self.targets(summary)[name][1], False)

    def test_timePerRequestAtOneConnection(self) -> None:
        """
        Beside the p50 targets, the time per request as the client sees it
        (1 / req/s, which counts gunicorn sync's reconnect per request).
        """
        summary = {
            scenario: {
                "twsgi": _entry(8000.0, 0.12, 50.0),
                "gunicorn-sync": _entry(6250.0, 0.12, 50.0),
            }
            for scenario in ("hello1", "hello1-pinned")
        }
        for scenario in ("hello1", "hello1-pinned"):
            name = f"{scenario}: twsgi time per request (1 / req/s) <= gunicorn sync's"
            self.assertEqual(self.targets(summary)[name], ("125 µs vs 160 µs", True))
        summary["hello1"]["twsgi"] = _entry(5000.0, 0.12, 50.0)
        name = "hello1: twsgi time per request (1 / req/s) <= gunicorn sync's"
        self.assertEqual(self.targets(summary)[name], ("200 µs vs 160 µs", False))
        del summary["hello1"]["gunicorn-sync"]
        self.assertEqual(self.targets(summary)[name], ("-", None))

    def test_noBaseline(self) -> None:
        """
        Without a baseline in the run there is no baseline target.
        """
        summary = {"hello": {"twsgi": _entry(1000.0, 1.0, 60.0)}}
        self.assertFalse([n for n in self.targets(summary) if "baseline" in n])


H2LOAD = """\
starting benchmark...
spawning thread #0: 16 total client(s). Timing-based test with 0s of warm-up time and 8s of main duration for measurements.
Warm-up phase is over for thread #0.
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 8.00s, 1941.38 req/s, 85.85KB/s
requests: 15531 total, 15540 started, 15531 done, 15520 succeeded, 11 failed, 2 errored, 1 timeout
status codes: 15520 2xx, 0 3xx, 3 4xx, 4 5xx
traffic: 686.82KB (703299) total, 90.14KB (92304) headers (space savings 89.90%), 201.84KB (206679) data
                     min         max         mean         sd        +/- sd
time for request:     2.79ms    120.77ms     41.05ms     18.64ms    70.93%
"""


class H2loadTests(SynchronousTestCase):
    """
    The TLS scenarios: h2load's output, the servers' TLS command lines and
    the HTTP/2 targets.
    """

    def test_parse(self) -> None:
        """
        Requests/s, the requests that succeeded and the errors are read from
        h2load's output; it has no percentiles.
        """
        result = run.parseH2loadOutput(H2LOAD)
        self.assertEqual(
            result,
            run.WrkResult(
                requestsPerSecond=1941.38,
                p50Ms=None,
                p99Ms=None,
                requests=15520,
                socketErrors=14,
                non2xx=7,
            ),
        )
        self.assertRaises(ValueError, run.parseH2loadOutput, "h2load: bad option")

    def test_tlsCommands(self) -> None:
        """
        Only the servers that speak HTTP/2 run the TLS scenarios, each on an
        C{ssl:} listener (granian with C{--http 2}, or C{1} for the HTTP/1.1
        scenario).
        """
        scenarios = {s.name: s for s in run.SCENARIOS}
        servers = {s.name: s for s in run.SERVERS}
        h2, h1 = scenarios["h2"], scenarios["h2-h1"]
        self.assertEqual(
            [s.name for s in run.SERVERS if s.runs(h2)],
            ["twsgi", "twistd-web", "granian"],
        )
        twsgi = servers["twsgi"].command(h2, 8443)
        self.assertIn(
            f"ssl:8443:interface={run.HOST}:privateKey={run.CERTS / 'server.key'}"
            f":certKey={run.CERTS / 'server.pem'}",
            twsgi,
        )
        self.assertIn("--listen", servers["twistd-web"].command(h2, 8443))
        granian = servers["granian"].command(h2, 8443)
        self.assertEqual(granian[granian.index("--http") + 1], "2")
        granian = servers["granian"].command(h1, 8443)
        self.assertEqual(granian[granian.index("--http") + 1], "1")
        self.assertIn(
            f"tcp:8443:interface={run.HOST}",
            servers["twsgi"].command(scenarios["hello"], 8443),
        )

    def test_targets(self) -> None:
        """
        twsgi's HTTP/2 req/s must be at least its HTTP/1.1-over-TLS req/s on
        hello, and 0.8x on the generator.
        """
        summary = {
            "h2": {"twsgi": _entry(1000.0, 1.0, 75.0)},
            "h2-h1": {"twsgi": _entry(1250.0, 1.0, 75.0)},
            "h2gen": {"twsgi": _entry(900.0, 1.0, 75.0)},
            "h2gen-h1": {"twsgi": _entry(1000.0, 1.0, 75.0)},
        }
        targets = {t.name: (t.measured, t.met) for t in run.evaluateTargets(summary)}
        self.assertEqual(
            targets["h2: twsgi HTTP/2 / twsgi HTTP/1.1 over TLS req/s"],
            ("0.80x", False),
        )
        self.assertEqual(
            targets["h2gen: twsgi HTTP/2 / twsgi HTTP/1.1 over TLS req/s"],
            ("0.90x", True),
        )


def _slowlorisRun(aloneP99: float, loadedP99: float | None) -> dict[str, object]:
    """
    One slowloris turn as L{run.measureSlowloris} records it.
    """

    def phase(p99: float | None, errors: int) -> dict[str, object]:
        return {
            "requestsPerSecond": 1000.0 if p99 else 0.0,
            "p50Ms": p99,
            "p99Ms": p99,
            "requests": 1000 if p99 else 0,
            "socketErrors": errors,
            "non2xx": 0,
        }

    return {
        "threads": 8,
        "slow": 1000,
        "slowOpenAfter": 1000,
        "alone": phase(aloneP99, 0),
        "loaded": phase(loadedP99, 0 if loadedP99 else 3),
    }


class SlowlorisTests(SynchronousTestCase):
    """
    The slowloris scenario: its summary, table and target.
    """

    def test_summary(self) -> None:
        """
        The summary holds the median p99 of the rounds alone and with the
        slow connections open, and the errors of all rounds.
        """
        runs = [
            _slowlorisRun(1.0, 2.0),
            _slowlorisRun(3.0, 4.0),
            _slowlorisRun(2.0, 9.0),
        ]
        summary = run.summarizeSlowloris(runs)
        self.assertEqual(summary["alone"]["p99Ms"], 2.0)
        self.assertEqual(summary["loaded"]["p99Ms"], 4.0)
        self.assertEqual(summary["slow"], 1000)
        runs.append(_slowlorisRun(1.0, None))
        self.assertEqual(run.summarizeSlowloris(runs)["loaded"]["errors"], 3)

    def test_target(self) -> None:
        """
        twsgi's p99 with the slow connections must stay within 3 times (plus
        5 ms) its p99 alone, with no error; a turn that served nothing with
        them open misses it.
        """
        name = "slowloris: twsgi p99 with slow connections / alone"

        def target(aloneP99: float, loadedP99: float | None) -> object:
            entry = run.summarizeSlowloris([_slowlorisRun(aloneP99, loadedP99)])
            summary = {"slowloris": {"twsgi": entry}}
            return {t.name: t.met for t in run.evaluateTargets(summary)}[name]

        self.assertTrue(target(2.0, 11.0))
        self.assertFalse(target(2.0, 11.5))
        self.assertFalse(target(2.0, None))
        self.assertIsNone({t.name: t.met for t in run.evaluateTargets({})}[name])

    def test_table(self) -> None:
        """
        The slowloris table has a row per server with both p99s and their
        ratio ("none served" when nothing was), and the scenario stays out of
        the throughput table.
        """
        results = {
            "titles": {},
            "summary": {
                "slowloris": {
                    "twsgi": run.summarizeSlowloris([_slowlorisRun(1.0, 1.5)]),
                    "gunicorn-sync": None,
                }
            },
        }
        rows = run.slowlorisRows(results)
        ratio = run.SLOWLORIS_HEADER.index("with / alone")
        self.assertEqual(rows[0][ratio], "1.50x")
        results["summary"]["slowloris"]["twsgi"] = run.summarizeSlowloris(
            [_slowlorisRun(1.0, None)]
        )
        loaded = run.SLOWLORIS_HEADER.index("p99 with slow")
        self.assertEqual(run.slowlorisRows(results)[0][loaded], "none served")
        self.assertEqual(rows[1][1], "failed")
        self.assertEqual(run.tableRows(results), [])
