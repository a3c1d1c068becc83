# -*- test-case-name: tests.process.test_affinity -*-
"""
Tests for L{twsgi.process.affinity} and C{--cpu-affinity}: a process, or
each worker of C{--workers N}, kept on one CPU.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from typing import Any

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.server import LOOPBACK, ROOT, request, run, start
from tests.helpers.workers import SupervisedServer
from twsgi.config.resolve import ConfigError, resolveConfig
from twsgi.config.settings import cpuList
from twsgi.process.affinity import cpusFor, describe, leastUsed, pinProcess
from twsgi.process.build import supervisorFromConfig
from twsgi.process.workers import WORKER_SETTINGS, Supervisor

_LINUX = hasattr(os, "sched_setaffinity")


def _allowed() -> list[int]:
    return sorted(os.sched_getaffinity(0)) if _LINUX else []


def _threadCpus(pid: int) -> set[frozenset[int]]:
    """
    The CPU sets of every thread of process C{pid}.
    """
    tasks = f"/proc/{pid}/task"
    return {frozenset(os.sched_getaffinity(int(tid))) for tid in os.listdir(tasks)}


class CpuListTests(SynchronousTestCase):
    """
    The CPUs an operator names, and those C{--cpu-affinity} hands out.
    """

    def test_cpuList(self) -> None:
        """
        A list is single CPUs and ranges, in the order given, each CPU once.
        """
        self.assertEqual(cpuList("3"), (3,))
        self.assertEqual(cpuList("0-3,6"), (0, 1, 2, 3, 6))
        self.assertEqual(cpuList(" 6, 1-2 ,2"), (6, 1, 2))

    def test_badLists(self) -> None:
        """
        Anything else is a one-line mistake that says what is wrong.
        """
        for text, message in [
            ("", "'' is not 'auto' or a list of CPUs such as 0-3,6"),
            ("all", "'all' is not 'auto' or a list of CPUs such as 0-3,6"),
            ("1,,2", "'1,,2' is not 'auto' or a list of CPUs such as 0-3,6"),
            ("3-1", "'3-1' is not a range of CPUs"),
            ("0,-1", "'0,-1' is not 'auto' or a list of CPUs such as 0-3,6"),
            ("0,5-2", "'5-2' in '0,5-2' is not a range of CPUs"),
        ]:
            with self.assertRaises(ValueError) as caught:
                cpuList(text)
            self.assertIn(message, str(caught.exception))

    def test_setting(self) -> None:
        """
        The setting is off by default, and takes C{auto} or a list.
        """
        self.assertIsNone(resolveConfig({}, {}).cpu_affinity)
        self.assertEqual(
            resolveConfig({"cpu_affinity": "auto"}, {}).cpu_affinity, "auto"
        )
        self.assertEqual(
            resolveConfig({}, {"TWSGI_CPU_AFFINITY": " 0-1 "}).cpu_affinity, "0-1"
        )
        self.assertRaises(ConfigError, resolveConfig, {"cpu_affinity": "first"}, {})

    def test_cpusFor(self) -> None:
        """
        C{auto} is every allowed CPU in order; a list must name allowed CPUs
        only.
        """
        allowed = frozenset({4, 0, 1})
        self.assertEqual(cpusFor("auto", allowed), (0, 1, 4))
        self.assertEqual(cpusFor("4,0", allowed), (4, 0))
        with self.assertRaises(ConfigError) as caught:
            cpusFor("0-2", allowed)
        self.assertEqual(
            str(caught.exception),
            "--cpu-affinity '0-2': CPU 2 is not one this process may run on (0-1,4)",
        )

    def test_describe(self) -> None:
        """
        CPUs are written back as a list with ranges.
        """
        self.assertEqual(describe([0, 1, 2, 3, 6]), "0-3,6")
        self.assertEqual(describe([5]), "5")
        self.assertEqual(describe([1, 3, 4]), "1,3-4")
        self.assertEqual(describe([]), "")

    def test_leastUsed(self) -> None:
        """
        A new worker gets the CPU fewest workers run on, the first in the
        list on a tie.
        """
        self.assertEqual(leastUsed([2, 0], []), 2)
        self.assertEqual(leastUsed([2, 0], [2]), 0)
        self.assertEqual(leastUsed([2, 0], [2, 0]), 2)
        self.assertEqual(leastUsed([2, 0], [0, 0, None]), 2)


class PinProcessTests(SynchronousTestCase):
    """
    L{pinProcess} keeps every thread of a process on one CPU.
    """

    if not _LINUX:
        skip = "--cpu-affinity is for Linux only"

    def test_everyThread(self) -> None:
        """
        The threads running when it is called, and those started later, all
        keep to the CPU; the process's own set is left as it was before.
        """
        cpu = _allowed()[-1]
        script = textwrap.dedent(
            f"""
            import os, threading
            from twsgi.process.affinity import pinProcess
            stop = threading.Event()
            before = threading.Thread(target=stop.wait)
            before.start()
            pinProcess({cpu})
            after = threading.Thread(target=stop.wait)
            after.start()
            print(sorted({{
                tuple(os.sched_getaffinity(int(t)))
                for t in os.listdir("/proc/self/task")
            }}))
            stop.set()
            """
        )
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=30
        )
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.strip(), f"[({cpu},)]")

    def test_threadGone(self) -> None:
        """
        A thread that ends while the threads are pinned is passed over, and
        the others are pinned.
        """
        tasks = self.mktemp()
        os.mkdir(tasks)
        for thread in ("101", "102"):
            open(os.path.join(tasks, thread), "w").close()
        pinned: list[tuple[int, set[int]]] = []

        def setAffinity(thread: int, cpus: set[int]) -> None:
            if thread == 101:
                raise ProcessLookupError(3, "No such process")
            pinned.append((thread, cpus))

        self.patch(os, "sched_setaffinity", setAffinity)
        pinProcess(5, tasks)
        self.assertEqual(pinned, [(102, {5})])

    def test_refused(self) -> None:
        """
        A CPU the kernel refuses is a L{ConfigError} that says why, and
        changes nothing.
        """
        before = os.sched_getaffinity(0)
        tasks = self.mktemp()
        os.mkdir(tasks)
        open(os.path.join(tasks, str(os.getpid())), "w").close()
        with self.assertRaises(ConfigError) as caught:
            pinProcess(1 << 20, tasks)
        self.assertEqual(
            str(caught.exception), "--cpu-affinity: CPU 1048576: Invalid argument"
        )
        self.assertEqual(os.sched_getaffinity(0), before)


class SupervisorCpuTests(SynchronousTestCase):
    """
    The supervisor hands each worker a CPU of C{--cpu-affinity}.
    """

    def test_oneEach(self) -> None:
        """
        Workers take the CPUs in turn; a replacement takes the CPU of the
        worker it replaces, and any other new worker (one started for a
        worker that crashed) the CPU fewest workers run on.  Each is told
        its CPU in its settings.
        """
        reactor = _Spawning()
        supervisor = Supervisor(
            reactor,
            {"cpu_affinity": "auto"},
            descriptions=["tcp:0"],
            count=2,
            cpus=(7, 3),
            handleSignals=False,
        )
        first = supervisor._spawn()
        second = supervisor._spawn()
        third = supervisor._spawn(replaces=first)
        # The first one retired, the second one crashed.
        supervisor.workers.remove(first)
        supervisor.workers.remove(second)
        fourth = supervisor._spawn()
        self.assertEqual([w.cpu for w in (first, second, third, fourth)], [7, 3, 7, 3])
        told = [_workerSettings(env)["cpu_affinity"] for env in reactor.spawned]
        self.assertEqual(told, ["7", "3", "7", "3"])

    def test_off(self) -> None:
        """
        Without C{--cpu-affinity} no worker is given a CPU.
        """
        reactor = _Spawning()
        supervisor = supervisorFromConfig(
            resolveConfig({"app": "x:y", "endpoint": ("tcp:0",)}, {}),
            reactor,
            {},
            handleSignals=False,
        )
        worker = supervisor._spawn()
        self.assertIsNone(worker.cpu)
        self.assertNotIn("cpu_affinity", _workerSettings(reactor.spawned[0]))


class _Spawning(MemoryReactorClock):
    """
    A reactor that records the environment of each process it is asked to
    spawn.
    """

    def __init__(self) -> None:
        super().__init__()
        self.spawned: list[dict[str, str]] = []

    def spawnProcess(self, protocol: Any, *args: Any, **kw: Any) -> None:
        self.spawned.append(kw["env"])


def _workerSettings(env: dict[str, str]) -> dict[str, str]:
    """
    The settings a supervisor passed to a worker in its environment.
    """
    return dict(json.loads(env[WORKER_SETTINGS]))


class CommandTests(SynchronousTestCase):
    """
    C{--cpu-affinity} applied by the twsgi command, with real processes.
    """

    if not _LINUX:
        skip = "--cpu-affinity is for Linux only"

    def test_oneProcess(self) -> None:
        """
        Without C{--workers} the process, every one of its threads, runs on
        the first CPU given, serves, and says so in its log.
        """
        cpu = _allowed()[-1]
        server = start(
            self,
            ["--endpoint", LOOPBACK, "--app", "twsgi.example:app"]
            + ["--cpu-affinity", f"{cpu}"],
        )
        status, _, body = request(server)
        self.assertEqual((status, body), (200, b"Hello from twsgi!\n"))
        self.assertEqual(_threadCpus(server.process.pid), {frozenset({cpu})})
        self.assertIn(f"twsgi runs on CPU {cpu} (--cpu-affinity)", server.output)

    def test_workers(self) -> None:
        """
        With C{--workers 2 --cpu-affinity auto} each worker keeps to a CPU
        of its own (where there are two to run on), the supervisor to none;
        the workers that replace them on SIGHUP take the same CPUs.
        """
        allowed = _allowed()
        server = SupervisedServer(self, "--workers", "2", "--cpu-affinity", "auto")
        server.start(2)

        def cpus() -> list[set[frozenset[int]]]:
            return sorted(
                (_threadCpus(pid) for pid in server.workerPids()),
                key=lambda s: sorted(min(c) for c in s),
            )

        expected = [{frozenset({allowed[0]})}, {frozenset({allowed[1 % len(allowed)]})}]
        self.assertEqual(cpus(), expected)
        self.assertEqual(_threadCpus(server.process.pid), {frozenset(allowed)})
        before = server.workerPids()
        server.signal(signal.SIGHUP)
        server.waitReplaced(before, 2)
        self.assertEqual(cpus(), expected)
        server.signal(signal.SIGTERM)
        self.assertEqual(server.process.wait(20), 0)

    def test_notAllowed(self) -> None:
        """
        A CPU the process may not run on ends it at once with one line and
        status 1, with or without C{--workers}.
        """
        bad = str(max(_allowed()) + 1)
        for extra in ([], ["--workers", "2"]):
            done = run(
                ["--endpoint", LOOPBACK, "--app", "twsgi.example:app"]
                + ["--cpu-affinity", bad, *extra],
                cwd=ROOT,
            )
            self.assertEqual(done.returncode, 1, done.stderr)
            self.assertEqual(
                done.stderr.strip().splitlines()[-1],
                f"twsgi: --cpu-affinity (from the command line): '{bad}': CPU "
                f"{bad} is not one this process may run on ({describe(_allowed())})",
            )
