# -*- test-case-name: tests.test_bench_parse -*-
"""
Tests for the wrk-output parser of the benchmark harness (C{bench/run.py}).

Only the pure parser is tested here: the benchmark itself is never run by
the test suite.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase


def _loadHarness():
    """
    Import C{bench/run.py} by its path (C{bench/} is not a package).
    """
    path = Path(__file__).resolve().parent.parent / "bench" / "run.py"
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
