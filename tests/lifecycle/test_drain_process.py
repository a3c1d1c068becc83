"""
End-to-end proof of the graceful stop with real processes and sockets on
127.0.0.1 (port 0): nothing in flight is lost, late connections are refused
rather than reset, and the exit status says whether everything drained.
"""

from __future__ import annotations

import http.client
import os
import sys
import tempfile
import threading
import time
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from twsgi.lifecycle.drain import EXIT_CUT
from twsgi.testing import ServerProcess, spawnServer

BOUND = 30.0
"""
Seconds within which a stop that a correct server ends in one or two (the
requests' time left, or the graceful timeout of 1 s) must end: an order of
magnitude for a loaded machine, and far below what a wrong one takes (the
graceful timeout of L{LONG} s, or requests of L{LONG} s run to the end).
"""
LONG = 300.0
"""
A graceful timeout, or a request's sleep, that a correct stop never waits
for.
"""

HERE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "apps")


def get(
    server: ServerProcess,
    target: str,
    timeout: float = 10.0,
    headers: dict[str, str] | None = None,
) -> Any:
    """
    One GET on a new connection: the status, or the name of the error.  The
    response's C{Connection} header goes in C{headers["connection"]}.
    """
    connection = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    try:
        connection.request("GET", target)
        response = connection.getresponse()
        response.read()
        if headers is not None:
            headers["connection"] = response.getheader("Connection", "")
        return response.status
    except ConnectionRefusedError:
        return "refused"
    except Exception as e:
        return type(e).__name__
    finally:
        connection.close()


class Load:
    """
    C{count} slow requests in flight, plus a stream of new fast requests,
    each on its own connection; every loop is bounded.
    """

    def __init__(self, server: ServerProcess, count: int, sleep: float) -> None:
        self.server = server
        self.results: list[Any] = [None] * count
        self.connectionHeaders: list[str] = [""] * count
        self.arrivals: list[tuple[float, Any]] = []
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._slow, args=(i, sleep), daemon=True)
            for i in range(count)
        ]
        self.arriving = threading.Thread(target=self._arrive, daemon=True)

    def _slow(self, i: int, sleep: float) -> None:
        headers: dict[str, str] = {}
        self.results[i] = get(
            self.server, f"/?sleep={sleep}", timeout=sleep + 10, headers=headers
        )
        self.connectionHeaders[i] = headers.get("connection", "")

    def _arrive(self) -> None:
        for _ in range(2000):
            if self.stop.is_set():
                return
            self.arrivals.append((time.monotonic(), get(self.server, "/", 5.0)))
            time.sleep(0.01)

    def start(self, startedFile: str, timeout: float = 20.0) -> None:
        self.arriving.start()
        for thread in self.threads:
            thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(startedFile) and os.path.getsize(startedFile) >= len(
                self.threads
            ):
                return
            time.sleep(0.02)
        raise AssertionError(f"requests did not all start:\n{self.server.output}")

    def finish(self) -> None:
        for thread in self.threads:
            thread.join(15)
        time.sleep(0.2)
        self.stop.set()
        self.arriving.join(10)


class DrainProcessMixin:
    """
    The normal drain and the deadline, for any way of running the server.
    """

    def spawn(self, args: list[str], env: dict[str, str]) -> ServerProcess:
        raise NotImplementedError()

    def environment(self) -> tuple[dict[str, str], str]:
        directory = tempfile.mkdtemp()
        started = os.path.join(directory, "started")
        env = dict(os.environ, TWSGI_TEST_STARTED=started)
        return env, started

    def stop(self, server: ServerProcess, load: Load) -> tuple[int, float]:
        """
        SIGTERM; the exit status and the seconds until the drain ended (its
        last line, C{twsgi stopped: ...}, is logged).  The process must then
        end within L{BOUND}.  What Python then takes to tear the interpreter
        down (0.1 s of CPU, but seconds on a loaded machine) is not the
        drain's, so it is not in the seconds.
        """
        self.signalled = time.monotonic()
        server.signal()
        server.waitFor("twsgi stopped: ", timeout=BOUND)
        drained = time.monotonic() - self.signalled
        status = server.wait(BOUND)
        load.finish()
        return status, drained

    def test_normalDrain(self: Any) -> None:
        """
        Requests in flight at SIGTERM all finish with 200, new connections
        are served until the listener closes and refused after it (never
        reset), the drain ends once they are done (not at the graceful
        timeout) and the process exits 0.
        """
        env, started = self.environment()
        server = self.spawn(["--graceful-timeout", str(LONG)], env)
        self.addCleanup(server.stop)
        load = Load(server, self.inFlight, sleep=2.0)
        load.start(started)
        # Mid-request: each has about 1.5 s left, and new ones keep coming.
        time.sleep(0.5)
        status, elapsed = self.stop(server, load)
        self.assertEqual(load.results, [200] * self.inFlight, server.output)
        # Their keep-alive connections close after them, and say so.
        self.assertEqual(load.connectionHeaders, ["close"] * self.inFlight)
        outcomes = {outcome for _, outcome in load.arrivals}
        self.assertLessEqual(outcomes, {200, "refused"}, load.arrivals)
        self.assertIn(200, outcomes)
        after = [
            outcome
            for when, outcome in load.arrivals
            if when > self.signalled + elapsed
        ]
        self.assertTrue(after)
        self.assertEqual(set(after), {"refused"})
        self.assertEqual(status, 0, server.output)
        self.assertLess(elapsed, BOUND)
        self.assertIn("every request drained", server.output)

    def test_deadline(self: Any) -> None:
        """
        With C{--graceful-timeout 1}, requests still running after a second
        are cut off: the process exits after a second (not when the
        requests end), with L{EXIT_CUT}, and the log says how many were cut.
        """
        env, started = self.environment()
        server = self.spawn(["--graceful-timeout", "1"], env)
        self.addCleanup(server.stop)
        load = Load(server, 5, sleep=LONG)
        load.start(started)
        status, elapsed = self.stop(server, load)
        self.assertEqual(status, EXIT_CUT, server.output)
        self.assertGreaterEqual(elapsed, 0.9)
        self.assertLess(elapsed, BOUND)
        self.assertIn("cut off 5 request(s)", server.output)
        self.assertNotIn(200, load.results)


class CommandLineDrainTests(DrainProcessMixin, SynchronousTestCase):
    """
    The graceful stop of C{python -m twsgi}.
    """

    inFlight = 50

    def test_secondSignal(self) -> None:
        """
        A second SIGTERM during the graceful wait cuts it short: the process
        exits at once with L{EXIT_CUT}, long before the timeout.
        """
        env, started = self.environment()
        server = self.spawn(["--graceful-timeout", str(LONG)], env)
        self.addCleanup(server.stop)
        load = Load(server, 3, sleep=LONG)
        load.start(started)
        signalled = time.monotonic()
        server.signal()
        time.sleep(0.3)
        server.signal()
        status = server.wait(BOUND)
        elapsed = time.monotonic() - signalled
        load.finish()
        self.assertEqual(status, EXIT_CUT, server.output)
        self.assertLess(elapsed, BOUND)
        self.assertIn("cut off 3 request(s)", server.output)
        self.assertIn("not waiting any longer", server.output)

    def spawn(self, args: list[str], env: dict[str, str]) -> ServerProcess:
        return spawnServer(
            [
                "--app",
                "drainapp:app",
                "--pythonpath",
                HERE,
                "--threads",
                "60:60",
                "--access-log",
                "none",
                *args,
            ],
            env=env,
        )


TAC = """
import sys
sys.path.insert(0, {here!r})

from twisted.application.service import Application
from twisted.internet import reactor

from twsgi import ServerConfig, TwsgiService
from drainapp import app

application = Application("drain")
config = ServerConfig(
    endpoint=("tcp:0:interface=127.0.0.1",),
    threads=(30, 30),
    graceful_timeout=float({timeout}),
    access_log="none",
)
TwsgiService(config, app, reactor, handleSignals=True).setServiceParent(application)
"""


class TacDrainTests(DrainProcessMixin, SynchronousTestCase):
    """
    The graceful stop of a L{TwsgiService} embedded in a C{.tac} file run by
    C{twistd}: C{stopService()} drains the same way.
    """

    inFlight = 20

    def spawn(self, args: list[str], env: dict[str, str]) -> ServerProcess:
        directory = tempfile.mkdtemp()
        tac = os.path.join(directory, "drain.tac")
        with open(tac, "w") as f:
            f.write(TAC.format(here=HERE, timeout=float(args[1])))
        return spawnServer(
            ["-n", "--logfile", "-", "--pidfile", "", "-y", tac],
            env=env,
            cwd=directory,
            command=[
                sys.executable,
                "-c",
                "from twisted.scripts.twistd import run; run()",
            ],
        )


class DrainDelayProcessTests(SynchronousTestCase):
    def test_drainDelay(self) -> None:
        """
        With C{--drain-delay 3}, for three seconds after SIGTERM C{/readyz}
        answers 503 while the application still answers new connections;
        then the listener closes and the process exits 0.
        """
        server = spawnServer(
            [
                "--app",
                "drainapp:app",
                "--pythonpath",
                HERE,
                "--health-on-app",
                "--drain-delay",
                "3",
                "--access-log",
                "none",
            ]
        )
        self.addCleanup(server.stop)
        self.assertEqual(get(server, "/readyz"), 200)
        signalled = time.monotonic()
        server.signal()
        samples = []
        for _ in range(500):
            if server.process.poll() is not None:
                break
            readyAt = time.monotonic() - signalled
            ready = get(server, "/readyz")
            appAt = time.monotonic() - signalled
            samples.append((readyAt, ready, appAt, get(server, "/")))
            time.sleep(0.02)
        status = server.wait(10)
        elapsed = time.monotonic() - signalled
        self.assertEqual(status, 0, server.output)
        self.assertGreaterEqual(elapsed, 3.0)
        # The signal takes a moment to arrive: from the first 503 on,
        # readiness never recovers, and during the delay the app answers.
        flipped = [i for i, (_, ready, _, _) in enumerate(samples) if ready == 503]
        self.assertTrue(flipped, samples)
        after = samples[flipped[0] :]
        self.assertNotIn(200, {ready for _, ready, _, _ in after}, samples)
        # The delay began after the last ready answer was asked for (or
        # the signal was sent): the application is asked well inside it.
        began = samples[flipped[0] - 1][0] if flipped[0] else 0.0
        during = {app for _, _, appAt, app in after if appAt < began + 2.0}
        self.assertEqual(during, {200}, samples)
        outcomes = {o for _, ready, _, app in samples for o in (ready, app)}
        self.assertLessEqual(outcomes, {200, 503, "refused"}, samples)
