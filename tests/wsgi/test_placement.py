"""
Tests for L{twsgi.wsgi.placement}, and for how L{twsgi.wsgi.pool.WorkerPool}
uses it: with a recording kernel, and with the real one where this process
may run on more than one CPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Set
from typing import Any

from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from twsgi.wsgi.placement import Placed, Placement, _audit, _running
from twsgi.wsgi.pool import WorkerPool

TIMEOUT = 10.0
CPUS = frozenset({0, 1, 2, 3})


class Kernel:
    """
    A kernel's C{sched_getcpu}, C{sched_setaffinity} and
    C{sched_getaffinity}, recorded.

    @ivar cpu: the CPU the caller runs on.
    @ivar calls: the C{(tid, cpus)} of each C{sched_setaffinity}.
    @ivar affinity: what C{sched_getaffinity} answers, by thread.
    @ivar refuse: raised by the next C{sched_setaffinity}, if set.
    """

    def __init__(self) -> None:
        self.cpu = 2
        self.calls: list[tuple[int, frozenset[int]]] = []
        self.affinity: dict[int, frozenset[int]] = {}
        self.refuse: OSError | None = None

    def currentCpu(self) -> int:
        return self.cpu

    def setAffinity(self, tid: int, cpus: Set[int]) -> None:
        if self.refuse is not None:
            raise self.refuse
        self.calls.append((tid, frozenset(cpus)))

    def getAffinity(self, tid: int) -> Set[int]:
        return self.affinity.get(tid, CPUS)

    def placement(self) -> Placement:
        return Placement(CPUS, self.currentCpu, self.setAffinity, self.getAffinity)


def placed(tid: int) -> Placed:
    thread = Placed()
    thread.tid = tid
    return thread


def logged(testCase: SynchronousTestCase) -> list[dict[str, Any]]:
    """
    The events logged from now on until the test ends.
    """
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    testCase.addCleanup(globalLogPublisher.removeObserver, events.append)
    return events


def warnings(events: list[dict[str, Any]]) -> list[str]:
    return [formatEvent(e) for e in events if e.get("log_level") == LogLevel.warn]


def sleeping(testCase: SynchronousTestCase, pool: WorkerPool) -> None:
    """
    Wait (bounded) until every thread of C{pool} sleeps: a thread that has
    not slept since its last task takes the next without being woken, and
    while it runs its task the pool is not idle.
    """
    deadline = time.monotonic() + TIMEOUT
    while len(pool._sleepers) < len(pool.threads):
        testCase.assertLess(time.monotonic(), deadline)
        time.sleep(0.001)


def occupy(
    testCase: SynchronousTestCase, pool: WorkerPool, answers: bool = False
) -> int:
    """
    Hand C{pool} a task that runs until the test ends (having told the pool
    it L{answered<WorkerPool.answered>} with C{answers}), and wait (bounded)
    until it runs.

    @return: the native id of the thread that runs it.
    """
    release = threading.Event()
    testCase.addCleanup(release.set)
    busy = threading.Event()
    tids: list[int] = []

    def task() -> None:
        tids.append(threading.get_native_id())
        if answers:
            pool.answered()
        busy.set()
        release.wait(TIMEOUT)

    pool.callInThread(task)
    testCase.assertTrue(busy.wait(TIMEOUT))
    return tids[0]


def inPool(testCase: SynchronousTestCase, pool: WorkerPool, f: Any) -> Any:
    """
    Run C{f} in C{pool}, and wait (bounded) for its result.
    """
    done = threading.Event()
    result: list[Any] = []

    def task() -> None:
        result.append(f())
        done.set()

    pool.callInThread(task)
    testCase.assertTrue(done.wait(TIMEOUT))
    return result[0]


def python(script: str) -> tuple[str, str]:
    """
    What a new interpreter that runs C{script} writes: its standard output
    and standard error.
    """
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30
    )
    return done.stdout, done.stderr


class PlacementTests(SynchronousTestCase):
    """
    Tests for L{Placement}, with a recording kernel.
    """

    def test_near(self) -> None:
        """
        C{near} keeps a thread to the caller's CPU, with a system call only
        when that CPU is not the one it is kept to already.
        """
        kernel = Kernel()
        placement = kernel.placement()
        thread = placed(7)
        placement.near(thread)
        placement.near(thread)
        kernel.cpu = 3
        placement.near(thread)
        self.assertEqual((kernel.calls, thread.cpu), ([(7, {2}), (7, {3})], 3))

    def test_spread(self) -> None:
        """
        C{spread} gives every thread kept to a CPU all the CPUs of the
        process, once.
        """
        kernel = Kernel()
        placement = kernel.placement()
        first, second = placed(7), placed(8)
        placement.near(first)
        kernel.cpu = 1
        placement.near(second)
        del kernel.calls[:]
        placement.spread()
        placement.spread()
        self.assertEqual(
            (kernel.calls, first.cpu, second.cpu),
            ([(7, CPUS), (8, CPUS)], None, None),
        )

    def test_spreadGone(self) -> None:
        """
        A kept thread that ended is no refusal: the placement stays on.
        """
        kernel = Kernel()
        placement = kernel.placement()
        placement.near(placed(7))
        kernel.refuse = ProcessLookupError(3, "No such process")
        events = logged(self)
        placement.spread()
        self.assertEqual((placement.on, warnings(events)), (True, []))

    def test_refused(self) -> None:
        """
        Once the kernel refuses a change (a cpuset changed), the placement
        is off, and the log says so once.
        """
        kernel = Kernel()
        placement = kernel.placement()
        thread = placed(7)
        events = logged(self)
        kernel.refuse = OSError(22, "Invalid argument")
        placement.near(thread)
        placement.near(thread)
        kernel.refuse = None
        kernel.cpu = 3
        placement.near(thread)
        self.assertEqual(
            (placement.on, thread.cpu, kernel.calls, warnings(events)),
            (
                False,
                None,
                [],
                [
                    "twsgi: WSGI threads are no longer woken on the CPU of "
                    "the thread that wakes them: Invalid argument"
                ],
            ),
        )

    def test_started(self) -> None:
        """
        A starting pool thread takes every CPU of the process.
        """
        kernel = Kernel()
        kernel.placement().started()
        self.assertEqual(kernel.calls, [(0, CPUS)])

    def test_endedWithNewThread(self) -> None:
        """
        After a task run on a CPU started a thread, a thread kept to that
        CPU, other than a pool thread kept there, takes every CPU of the
        process; others are left as they are.
        """
        kernel = Kernel()
        placement = kernel.placement()
        pool = placed(threading.get_native_id())
        placement.near(pool)
        del kernel.calls[:]
        before = threading.active_count()
        release = threading.Event()
        self.addCleanup(release.set)
        started = [threading.Thread(target=release.wait, args=(TIMEOUT,)) for _ in "ab"]
        for thread in started:
            thread.start()
        new, other = (thread.native_id for thread in started)
        assert new is not None and other is not None
        kernel.affinity = {new: frozenset({2}), other: frozenset({1})}
        placement.ended(2, before)
        self.assertEqual(kernel.calls, [(new, CPUS)])

    def test_endedWithoutNewThread(self) -> None:
        """
        After a task that started no thread, no system call.
        """
        kernel = Kernel()
        kernel.affinity = {threading.get_native_id(): frozenset({2})}
        kernel.placement().ended(2, threading.active_count())
        self.assertEqual(kernel.calls, [])

    def test_oneCpu(self) -> None:
        """
        A process that may run on one CPU only has no placement.
        """
        self.patch(os, "sched_getaffinity", lambda pid: {5})
        self.assertIsNone(Placement.forThisProcess())

    def test_notLinux(self) -> None:
        """
        Where C{os} has no C{sched_setaffinity} (macOS), the pool imports,
        there is no placement, and a pool made to have one runs its tasks.
        """
        script = (
            "import os, threading\n"
            "del os.sched_setaffinity, os.sched_getaffinity\n"
            "from twsgi.wsgi.placement import Placement\n"
            "from twsgi.wsgi.pool import WorkerPool\n"
            "pool = WorkerPool(1, 1, placement=Placement.forThisProcess)\n"
            "pool.start()\n"
            "done = threading.Event()\n"
            "pool.callInThread(done.set)\n"
            "print(done.wait(10), Placement.forThisProcess())\n"
            "pool.stop(10)\n"
        )
        self.assertEqual(python(script), ("True None\n", ""))

    def test_withoutGil(self) -> None:
        """
        Without a GIL (a free-threaded Python), the I/O thread and a woken
        thread would run side by side: there is no placement.
        """
        missing = object()
        original = getattr(sys, "_is_gil_enabled", missing)
        setattr(sys, "_is_gil_enabled", lambda: False)  # noqa: B010
        if original is missing:
            self.addCleanup(delattr, sys, "_is_gil_enabled")
        else:
            self.addCleanup(setattr, sys, "_is_gil_enabled", original)
        self.assertIsNone(Placement.forThisProcess())

    def test_auditHookNeverRaises(self) -> None:
        """
        A failure to let a kept thread go as it starts a process is not
        the process's: the audit hook swallows it, and the thread is no
        longer taken for kept.
        """
        kernel = Kernel()
        placement = kernel.placement()
        thread = placed(threading.get_native_id())
        placement.near(thread)
        placement.running(thread)
        self.addCleanup(placement.ended, 2, threading.active_count())
        kernel.refuse = OSError(22, "Invalid argument")
        self.patch(placement, "_every", lambda: 1 / 0)
        _audit("subprocess.Popen", ())
        _audit("subprocess.Popen", ())
        self.assertEqual((thread.cpu, getattr(_running, "kept", "unset")), (None, None))

    def test_auditHookAtExit(self) -> None:
        """
        The audit hook outlives its module (it cannot be removed): an
        audited operation after the interpreter cleared the module's names
        on its way out (from a finalizer) is not made to fail.
        """
        script = (
            "import os, sys\n"
            "from twsgi.wsgi import placement\n"
            "sys.addaudithook(placement._audit)\n"
            "class Late:\n"
            "    def __del__(self, getframe=sys._getframe, write=os.write):\n"
            "        try:\n"
            "            getframe()\n"
            "        except BaseException as e:\n"
            "            write(1, repr(e).encode())\n"
            "        else:\n"
            "            write(1, b'audited')\n"
            "placement.late = Late()\n"
        )
        self.assertEqual(python(script), ("audited", ""))

    def test_narrowed(self) -> None:
        """
        Every CPU of the process is every CPU it may run on now: once an
        operator narrowed them (C{taskset -a -p}, a smaller cpuset), a
        thread given every CPU keeps within them.
        """
        kernel = Kernel()
        placement = kernel.placement()
        thread = placed(7)
        placement.near(thread)
        del kernel.calls[:]
        kernel.affinity[os.getpid()] = frozenset({1, 2})
        placement.spread()
        placement.started()
        self.assertEqual(kernel.calls, [(7, {1, 2}), (0, {1, 2})])


class PoolPlacementTests(SynchronousTestCase):
    """
    How L{WorkerPool} uses its L{Placement}, with a recording kernel.
    """

    def setUp(self) -> None:
        self.kernel = Kernel()
        self.placement = self.kernel.placement()
        self.pool = WorkerPool(2, 2, name="test", placement=lambda: self.placement)
        self.addCleanup(self.pool.stop, TIMEOUT)
        self.pool.start()
        sleeping(self, self.pool)
        # Each thread took every CPU as it started.
        self.assertEqual(self.kernel.calls, [(0, CPUS), (0, CPUS)])
        self.threads = {thread.native_id for thread in self.pool.threads}
        del self.kernel.calls[:]

    def test_idle(self) -> None:
        """
        A task handed to an idle pool wakes its thread on the caller's CPU.
        """
        tid = inPool(self, self.pool, threading.get_native_id)
        self.assertEqual((self.kernel.calls, tid in self.threads), ([(tid, {2})], True))

    def test_busy(self) -> None:
        """
        A task handed in while a thread is busy with a task that has not
        answered gives the thread kept to a CPU every CPU back.
        """
        busy = occupy(self, self.pool)
        other = inPool(self, self.pool, threading.get_native_id)
        self.assertEqual(self.kernel.calls, [(busy, {2}), (busy, CPUS)])
        self.assertNotEqual(other, busy)

    def test_answered(self) -> None:
        """
        A task handed in while the busy thread has answered its request
        wakes another thread on the caller's CPU too.
        """
        busy = occupy(self, self.pool, answers=True)
        other = inPool(self, self.pool, threading.get_native_id)
        self.assertEqual(self.kernel.calls, [(busy, {2}), (other, {2})])

    def test_stop(self) -> None:
        """
        A pool that stops gives a thread kept to a CPU every CPU, and
        forgets it: once the thread ended, its id may be another thread's,
        of this process or another, which the pool started again must not
        pin.
        """
        kernel = Kernel()
        placement = kernel.placement()
        pool = WorkerPool(1, 1, name="test", placement=lambda: placement)
        self.addCleanup(pool.stop, TIMEOUT)
        pool.start()
        sleeping(self, pool)
        tid = inPool(self, pool, threading.get_native_id)
        pool.stop(TIMEOUT)
        self.assertEqual(kernel.calls[-1], (tid, CPUS))
        pool.start()
        occupy(self, pool)
        del kernel.calls[:]
        pool.callInThread(lambda: None)
        self.assertNotIn(tid, [called for called, _ in kernel.calls])

    def test_answeredElsewhere(self) -> None:
        """
        C{answered} outside a pool thread does nothing: an idle pool stays
        idle.
        """
        self.pool.answered()
        tid = inPool(self, self.pool, threading.get_native_id)
        self.assertEqual(self.kernel.calls, [(tid, {2})])


class RealPlacementTests(SynchronousTestCase):
    """
    A pool with this process's placement, on the real kernel.
    """

    def setUp(self) -> None:
        placement = Placement.forThisProcess()
        if placement is None:
            raise SkipTest("this process may run on one CPU only (or not on Linux)")
        self.cpus = placement.cpus
        self.pool = WorkerPool(1, 2, name="test", placement=lambda: placement)
        self.addCleanup(self.pool.stop, TIMEOUT)
        self.pool.start()
        sleeping(self, self.pool)

    def test_keptThenSpread(self) -> None:
        """
        A thread woken for an idle pool runs kept to one CPU of the
        process; a thread its task starts runs on every CPU of the process
        once the task ended; and a task handed in while the first is busy
        gives it every CPU back.
        """
        release = threading.Event()
        self.addCleanup(release.set)
        started: list[threading.Thread] = []

        def task() -> frozenset[int]:
            kept = frozenset(os.sched_getaffinity(0))
            thread = threading.Thread(target=release.wait, args=(TIMEOUT,))
            thread.start()
            started.append(thread)
            return kept

        kept = inPool(self, self.pool, task)
        self.assertEqual((len(kept), kept <= self.cpus), (1, True))
        # The pool thread has ended its task (ended() ran).
        sleeping(self, self.pool)
        new = started[0].native_id
        assert new is not None
        self.assertEqual(os.sched_getaffinity(new), self.cpus)

        busy = occupy(self, self.pool)
        self.assertEqual(len(os.sched_getaffinity(busy)), 1)
        self.assertEqual(
            inPool(self, self.pool, lambda: frozenset(os.sched_getaffinity(0))),
            self.cpus,
        )
        self.assertEqual(os.sched_getaffinity(busy), self.cpus)

    def test_processStarted(self) -> None:
        """
        A thread kept to a CPU that starts a process takes back every CPU
        of the process first, so that the process runs on all of them.
        """

        def task() -> tuple[frozenset[int], frozenset[int], frozenset[int]]:
            kept = frozenset(os.sched_getaffinity(0))
            child = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "import os; print(sorted(os.sched_getaffinity(0)))",
                ],
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                check=True,
            )
            return (
                kept,
                frozenset(json.loads(child.stdout)),
                frozenset(os.sched_getaffinity(0)),
            )

        kept, child, after = inPool(self, self.pool, task)
        self.assertEqual((len(kept), child, after), (1, self.cpus, self.cpus))

    def test_threadStarted(self) -> None:
        """
        A thread kept to a CPU that starts a thread takes back every CPU of
        the process first, so that the thread starts on all of them, where
        Python audits a thread's start (from 3.12: the event is
        C{_thread.start_joinable_thread} from 3.13); before 3.12 the thread
        starts kept to that CPU (L{Placement.ended} gives it every CPU once
        the task ends).
        """
        release = threading.Event()
        self.addCleanup(release.set)
        running = threading.Event()
        seen: list[frozenset[int]] = []

        def run() -> None:
            seen.append(frozenset(os.sched_getaffinity(0)))
            running.set()
            release.wait(TIMEOUT)

        def task() -> tuple[frozenset[int], list[frozenset[int]], frozenset[int]]:
            kept = frozenset(os.sched_getaffinity(0))
            threading.Thread(target=run).start()
            running.wait(TIMEOUT)
            return kept, seen, frozenset(os.sched_getaffinity(0))

        kept, started, after = inPool(self, self.pool, task)
        every = self.cpus if sys.version_info >= (3, 12) else kept
        self.assertEqual((len(kept), started, after), (1, [every], every))
