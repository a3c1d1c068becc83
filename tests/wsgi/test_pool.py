"""
Tests for L{twsgi.wsgi.pool.WorkerPool}, with real threads and bounded waits.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from twsgi.wsgi.pool import PoolStartError, PoolStats, WorkerPool

TIMEOUT = 10.0


class WorkerPoolTests(SynchronousTestCase):
    """
    Tests for L{WorkerPool}.
    """

    def pool(self, low: int, high: int) -> WorkerPool:
        pool = WorkerPool(low, high, name="test")
        self.addCleanup(pool.stop, TIMEOUT)
        return pool

    def blockers(self, pool: WorkerPool, count: int) -> tuple[threading.Event, Any]:
        """
        Hand C{count} tasks to C{pool} that wait for an event.

        @return: the event, and a callable waiting (bounded) until C{n}
            tasks have started.
        """
        release = threading.Event()
        self.addCleanup(release.set)
        started = threading.Semaphore(0)

        def task() -> None:
            started.release()
            release.wait(TIMEOUT)

        for _ in range(count):
            pool.callInThread(task)

        def waitStarted(n: int) -> None:
            for _ in range(n):
                self.assertTrue(started.acquire(timeout=TIMEOUT))

        return release, waitStarted

    def test_runs(self) -> None:
        """
        C{callInThread} runs the call with its arguments in a thread of the
        pool, not the caller's.
        """
        pool = self.pool(1, 2)
        pool.start()
        done = threading.Event()
        seen: list[Any] = []

        def task(a: int, b: int = 0) -> None:
            seen.append((a, b, threading.current_thread().name))
            done.set()

        pool.callInThread(task, 1, b=2)
        self.assertTrue(done.wait(TIMEOUT))
        self.assertEqual(seen[0][:2], (1, 2))
        self.assertTrue(seen[0][2].startswith("test-"))

    def test_queuedBeforeStart(self) -> None:
        """
        Calls handed in before L{WorkerPool.start} wait for it, and are
        counted as backlog meanwhile.
        """
        pool = self.pool(0, 2)
        done = threading.Event()
        pool.callInThread(done.set)
        self.assertEqual(pool.stats(), PoolStats(busy=0, idle=0, backlog=1, maximum=2))
        self.assertFalse(done.is_set())
        pool.start()
        self.assertTrue(done.wait(TIMEOUT))

    def test_statsAndGrowth(self) -> None:
        """
        The pool grows on demand up to C{max} threads and never beyond; the
        statistics count busy threads and waiting calls.
        """
        pool = self.pool(1, 3)
        pool.start()
        release, waitStarted = self.blockers(pool, 5)
        waitStarted(3)
        self.assertEqual(len(pool.threads), 3)
        self.assertEqual(pool.stats(), PoolStats(busy=3, idle=0, backlog=2, maximum=3))
        release.set()
        waitStarted(2)
        pool.stop(TIMEOUT)
        self.assertEqual(pool.threads, [])

    def test_othersIdle(self) -> None:
        """
        L{WorkerPool.othersIdle} tells a task whether it is the only one
        running, with none waiting.
        """
        pool = self.pool(1, 2)
        pool.start()
        seen: list[bool] = []
        done = threading.Event()

        def alone() -> None:
            seen.append(pool.othersIdle())
            done.set()

        pool.callInThread(alone)
        self.assertTrue(done.wait(TIMEOUT))
        self.waitIdle(pool)
        release, waitStarted = self.blockers(pool, 1)
        waitStarted(1)
        done.clear()
        pool.callInThread(alone)
        self.assertTrue(done.wait(TIMEOUT))
        release.set()
        self.waitIdle(pool)
        # One thread, busy: the task after it waits.
        pool = self.pool(1, 1)
        pool.start()
        release, waitStarted = self.blockers(pool, 1)
        waitStarted(1)
        done.clear()
        pool.callInThread(alone)
        pool.callInThread(lambda: None)
        release.set()
        self.assertTrue(done.wait(TIMEOUT))
        self.assertEqual(seen, [True, False, False])

    def waitIdle(self, pool: WorkerPool) -> None:
        """
        Wait (bounded) until no thread of C{pool} runs a task.
        """
        deadline = time.monotonic() + TIMEOUT
        while pool.stats().busy:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.001)

    def sleepingPool(self, count: int, high: int | None = None) -> WorkerPool:
        """
        A started pool of C{count} threads (at most C{high}, C{count} if not
        given), each of which has run a task and sleeps again.
        """
        pool = self.pool(count, count if high is None else high)
        pool.start()
        release, waitStarted = self.blockers(pool, count)
        waitStarted(count)
        release.set()
        self.waitIdle(pool)
        return pool

    def test_burstWakesEverySleeper(self) -> None:
        """
        Tasks handed in at once while every thread sleeps all run at once:
        the thread woken for the first wakes the next, and so on.
        """
        pool = self.sleepingPool(4)
        release, waitStarted = self.blockers(pool, 4)
        waitStarted(4)
        self.assertEqual(pool.stats(), PoolStats(busy=4, idle=0, backlog=0, maximum=4))
        release.set()

    def test_burstBeyondSleepers(self) -> None:
        """
        More tasks handed in at once than threads sleep all run at once, up
        to C{max}: the last sleeper woken starts a thread for the tasks
        still waiting, and each thread started does the same.  (Else they
        waited for a running task to end, for ever behind responses to
        clients that do not read.)
        """
        pool = self.sleepingPool(2, 6)
        # No pool thread runs Python code until this thread blocks: the
        # tasks are all queued before the first sleeper takes one.
        self.addCleanup(sys.setswitchinterval, sys.getswitchinterval())
        sys.setswitchinterval(TIMEOUT)
        release, waitStarted = self.blockers(pool, 7)
        waitStarted(6)
        self.assertEqual(pool.stats(), PoolStats(busy=6, idle=0, backlog=1, maximum=6))
        release.set()
        waitStarted(1)

    def test_threadStartFails(self) -> None:
        """
        When the system refuses another thread (C{RuntimeError: can't start
        new thread}: a container's pids limit, systemd's TasksMax), the pool
        says so in the log and goes on with the threads it has: the thread
        that tried to grow it runs the task it took, and the task left waits
        for a thread to be free.
        """
        pool = self.sleepingPool(2, 4)
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)

        def refuse(thread: threading.Thread) -> None:
            raise RuntimeError("can't start new thread")

        self.patch(threading.Thread, "start", refuse)
        # As in test_burstBeyondSleepers, the three tasks are queued before
        # a sleeper wakes: the second woken sees the third task waiting and
        # no thread asleep, and tries to start one.
        self.addCleanup(sys.setswitchinterval, sys.getswitchinterval())
        sys.setswitchinterval(TIMEOUT)
        release, waitStarted = self.blockers(pool, 3)
        waitStarted(2)
        self.assertEqual(
            (len(pool.threads), pool.stats()),
            (2, PoolStats(busy=2, idle=0, backlog=1, maximum=4)),
        )
        release.set()
        waitStarted(1)
        self.assertEqual(
            [formatEvent(e) for e in events],
            [
                "twsgi: cannot start another WSGI thread (2 of at most 4 "
                "running): can't start new thread"
            ],
        )

    def test_firstThreadRefused(self) -> None:
        """
        When the system refuses the first thread L{WorkerPool.start} starts,
        no request could ever run: C{start} raises L{PoolStartError} (one
        line, the system's reason), logs nothing itself, and leaves the pool
        not started, so that a later C{start} tries again.
        """
        pool = self.pool(2, 4)
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        started = threading.Thread.start

        def refuse(thread: threading.Thread) -> None:
            raise RuntimeError("can't start new thread")

        self.patch(threading.Thread, "start", refuse)
        error = self.assertRaises(PoolStartError, pool.start)
        self.assertEqual(
            str(error), "cannot start a WSGI thread: can't start new thread"
        )
        self.assertEqual((pool.started, pool.threads, events), (False, [], []))
        self.patch(threading.Thread, "start", started)
        pool.start()
        self.assertEqual((pool.started, len(pool.threads)), (True, 2))

    def test_startRefusedLater(self) -> None:
        """
        When the system refuses a thread while L{WorkerPool.start} starts
        the minimum, once some run (a C{--threads} larger than it allows),
        the pool stops trying at that refusal, with one warning, and goes on
        with the threads it has, instead of trying each thread left in turn.
        """
        pool = self.pool(1000, 1000)
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        tried: list[threading.Thread] = []
        started = threading.Thread.start

        def refuseAfterTwo(thread: threading.Thread) -> None:
            tried.append(thread)
            if len(tried) > 2:
                raise RuntimeError("can't start new thread")
            started(thread)

        self.patch(threading.Thread, "start", refuseAfterTwo)
        pool.start()
        self.assertEqual((len(tried), len(pool.threads)), (3, 2))
        self.assertEqual(
            [formatEvent(e) for e in events],
            [
                "twsgi: cannot start another WSGI thread (2 of at most 1000 "
                "running): can't start new thread"
            ],
        )

    def test_prewake(self) -> None:
        """
        L{WorkerPool.prewake} wakes a sleeping thread of an idle pool ahead
        of a task; the thread goes back to sleep if none comes, and a task
        that comes runs.  A pool with a busy thread wakes none.
        """
        pool = self.sleepingPool(2)
        wakes: list[int] = []
        wakeOne = pool._wakeOne

        def counted(idle: bool = False) -> None:
            if not pool._waking:
                wakes.append(len(pool._sleepers))
            wakeOne(idle)

        pool._wakeOne = counted  # type: ignore[method-assign]
        pool.prewake()
        self.assertEqual(wakes, [2])
        deadline = time.monotonic() + TIMEOUT
        while len(pool._sleepers) < 2:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.001)
        pool.prewake()
        done = threading.Event()
        pool.callInThread(done.set)
        self.assertTrue(done.wait(TIMEOUT))
        self.assertEqual(wakes[:2], [2, 2])
        self.waitIdle(pool)
        release, waitStarted = self.blockers(pool, 1)
        waitStarted(1)
        woken = len(wakes)
        pool.prewake()
        self.assertEqual(len(wakes), woken)
        release.set()
        self.waitIdle(pool)
        # A busy thread that has answered its request counts as idle.
        answered = threading.Event()
        finish = threading.Event()
        self.addCleanup(finish.set)

        def answers() -> None:
            pool.answered()
            answered.set()
            finish.wait(TIMEOUT)

        pool.callInThread(answers)
        self.assertTrue(answered.wait(TIMEOUT))
        woken = len(wakes)
        pool.prewake()
        self.assertEqual(len(wakes), woken + 1)

    def test_lastAsleepServesNext(self) -> None:
        """
        Tasks handed in one after another, each once the last is done, are
        all run by the same thread: the one that fell asleep last is woken,
        and the others sleep on.
        """
        pool = self.sleepingPool(3)
        names: list[str] = []
        for _ in range(6):
            done = threading.Event()

            def task(done: threading.Event = done) -> None:
                names.append(threading.current_thread().name)
                done.set()

            pool.callInThread(task)
            self.assertTrue(done.wait(TIMEOUT))
            self.waitIdle(pool)
        self.assertEqual(len(set(names)), 1, names)

    def test_finalizerHandsIn(self) -> None:
        """
        An object a task held that hands in a task when it is freed (in the
        pool's thread, once the task is done) does so: the pool does not
        hold its lock while it lets go of a task.
        """
        # Stopped only once it is known not to be stuck on its own lock.
        pool = WorkerPool(1, 1, name="test")
        pool.start()
        done = threading.Event()

        class HandsIn:
            def __del__(self) -> None:
                pool.callInThread(done.set)

        pool.callInThread(lambda held: None, HandsIn())
        self.assertTrue(done.wait(TIMEOUT))
        pool.stop(TIMEOUT)

    def test_exceptionLogged(self) -> None:
        """
        A call that raises is logged, and its thread goes on with the next.
        """
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        pool = self.pool(1, 1)
        pool.start()
        done = threading.Event()

        def boom() -> None:
            raise ZeroDivisionError()

        pool.callInThread(boom)
        pool.callInThread(done.set)
        self.assertTrue(done.wait(TIMEOUT))
        failures = [e for e in events if "log_failure" in e]
        self.assertEqual(len(failures), 1)
        self.assertIsInstance(failures[0]["log_failure"].value, ZeroDivisionError)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_withCallback(self) -> None:
        """
        C{callInThreadWithCallback} reports the result or the failure.
        """
        pool = self.pool(1, 1)
        pool.start()
        results: list[tuple[bool, Any]] = []
        done = threading.Event()

        def onResult(ok: bool, result: Any) -> None:
            results.append((ok, result))
            if len(results) == 2:
                done.set()

        pool.callInThreadWithCallback(onResult, lambda: 7)
        pool.callInThreadWithCallback(onResult, lambda: 1 // 0)
        self.assertTrue(done.wait(TIMEOUT))
        self.assertEqual(results[0], (True, 7))
        self.assertFalse(results[1][0])
        self.assertIsInstance(results[1][1].value, ZeroDivisionError)

    def test_stop(self) -> None:
        """
        L{WorkerPool.stop} lets queued calls run, then ends every thread;
        later calls are dropped.
        """
        pool = self.pool(2, 2)
        pool.start()
        threads = list(pool.threads)
        ran: list[int] = []
        for i in range(5):
            pool.callInThread(ran.append, i)
        pool.stop(TIMEOUT)
        self.assertEqual(sorted(ran), [0, 1, 2, 3, 4])
        self.assertFalse(any(t.is_alive() for t in threads))
        pool.callInThread(ran.append, 5)
        self.assertEqual(pool.stats().backlog, 0)

    def test_whenFree(self) -> None:
        """
        L{WorkerPool.free} is C{max} less the tasks running and waiting;
        L{WorkerPool.whenFree} refuses to wait while it is above 0, and
        else calls back once, in the pool thread whose task ends as it rises
        above 0 (not in one that ends its task to take a waiting one).
        """
        pool = self.pool(2, 2)
        pool.start()
        self.assertEqual(pool.free(), 2)
        self.assertFalse(pool.whenFree(self.fail))
        releases = [threading.Event() for _ in range(3)]
        started = threading.Semaphore(0)
        for release in releases:
            self.addCleanup(release.set)

            def task(release: threading.Event = release) -> None:
                started.release()
                release.wait(TIMEOUT)

            pool.callInThread(task)
        for _ in range(2):
            self.assertTrue(started.acquire(timeout=TIMEOUT))
        self.assertEqual(pool.free(), -1)
        called: list[str] = []
        calledOnce = threading.Event()

        def freed() -> None:
            called.append(threading.current_thread().name)
            calledOnce.set()

        self.assertTrue(pool.whenFree(freed))
        releases[0].set()
        # The thread took the waiting task: none is free.
        self.assertTrue(started.acquire(timeout=TIMEOUT))
        self.assertEqual((pool.free(), called), (0, []))
        releases[1].set()
        self.assertTrue(calledOnce.wait(TIMEOUT))
        releases[2].set()
        pool.stop(TIMEOUT)
        self.assertEqual(len(called), 1)
        self.assertTrue(called[0].startswith("test-"))

    def test_whenFreeSetAside(self) -> None:
        """
        A waiting task set aside (its client left) frees its place: a
        L{WorkerPool.whenFree} callback is called then, by the caller of
        L{WorkerPool.setAside}.
        """
        pool = self.pool(0, 2)
        pool.callInThread(lambda: None)
        pool.callInThread(lambda: None)
        called: list[str] = []
        self.assertTrue(pool.whenFree(lambda: called.append("freed")))
        pool.setAside()
        self.assertEqual((pool.free(), called), (1, ["freed"]))

    def test_badSize(self) -> None:
        """
        A minimum above the maximum, or a maximum of 0, is refused.
        """
        self.assertRaises(ValueError, WorkerPool, 3, 2)
        self.assertRaises(ValueError, WorkerPool, 0, 0)
