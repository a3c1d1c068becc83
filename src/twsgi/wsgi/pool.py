# -*- test-case-name: tests.wsgi.test_pool -*-
"""
The WSGI thread pool: a lean replacement for L{twisted.python.threadpool}.

Twisted's L{ThreadPool} hands every task through a coordinator thread-worker
(C{twisted._threads}), a Python-level L{threading.Condition} and a logging
context; under a load of short requests that costs the I/O thread more than
the rest of the request.  This pool has the same C{start} / C{stop} /
C{callInThread} interface; a task wakes at most one sleeping thread (see
L{WorkerPool}).

Its size grows on demand from C{min} up to C{max} threads; L{WorkerPool.stats}
says how many threads are busy or idle and how many tasks wait, for metrics
and for readiness decisions.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import attrs
from twisted.logger import Logger

from twsgi.wsgi.placement import Placed, Placement

_log = Logger(namespace="twsgi")

_STOP = object()


class CallsFromThread(Protocol):
    """
    A reactor, as far as handing a call from another thread to its I/O
    thread goes (C{IReactorThreads.callFromThread}): how a WSGI thread, or
    any other, gets back to the reactor.
    """

    def callFromThread(self, f: Callable[..., object], /, *args: object) -> None: ...


class PoolStartError(RuntimeError):
    """
    The system refused every thread a L{WorkerPool} tried to start (a
    container's pids limit, systemd's C{TasksMax}): no request could run.
    C{str()} is one line.
    """


@attrs.frozen
class PoolStats:
    """
    A snapshot of the WSGI thread pool.

    @ivar busy: threads running a request.
    @ivar idle: threads waiting for work.
    @ivar backlog: requests waiting for a thread.
    @ivar maximum: the most threads the pool may have.
    """

    busy: int
    idle: int
    backlog: int
    maximum: int


class _Sleeper(Placed):
    """
    A pool thread, as its pool wakes it.

    @ivar lock: the lock it sleeps on, released to wake it.
    """

    __slots__ = ("answered", "lock")

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.lock.acquire()
        self.answered = False


class WorkerPool:
    """
    A thread pool of C{min} to C{max} threads with an unbounded task queue.

    C{callInThread} may be called from any thread; C{start} and C{stop} from
    the thread that owns the pool (the I/O thread, in a server).

    Each idle thread sleeps on a lock of its own.  A task queued while
    threads sleep wakes one of them (the one that fell asleep last, whose
    memory is the warmest), unless one is waking already; a thread that
    takes a task and sees more waiting wakes the next, or starts one when
    none sleeps and the pool is below C{max}.  The I/O thread
    wakes at most one thread however many requests it hands over at once,
    and no thread wakes for nothing.  (Threads sleeping together on one
    C{queue.SimpleQueue} woke two for each task: the taker passes the
    queue's lock on, and the next thread wakes, takes the GIL, finds the
    queue empty and sleeps again.)

    With a L{Placement}, a thread woken while every busy thread has
    L{answered} (an idle pool) is woken on the caller's CPU, and a task
    handed to a busier pool gives every thread kept to a CPU all of them
    again (see L{twsgi.wsgi.placement}).

    @ivar min: threads started by L{start} and kept.
    @ivar max: the most threads ever running.
    @ivar name: the prefix of the threads' names.
    @ivar started: C{True} between L{start} and L{stop}.
    @ivar threads: the live threads.
    @ivar makePlacement: makes the pool's L{Placement} as it starts, or
        C{None}.
    """

    def __init__(
        self,
        minthreads: int = 4,
        maxthreads: int = 32,
        name: str = "twsgi",
        placement: Callable[[], Placement | None] | None = None,
    ):
        """
        @param minthreads: threads started at once and kept.
        @param maxthreads: the most threads ever running.
        @param name: the prefix of the threads' names.
        @param placement: makes, as the pool starts, the L{Placement} that
            wakes a thread for an idle pool on its waker's CPU (such as
            L{Placement.forThisProcess}); C{None}: the kernel places them.
        """
        if not 0 <= minthreads <= maxthreads or maxthreads < 1:
            raise ValueError(f"bad pool size {minthreads}:{maxthreads}")
        self.min = minthreads
        self.max = maxthreads
        self.name = name
        self.started = False
        self.joined = False
        self.threads: list[threading.Thread] = []
        # Everything below changes under _lock only.  A thread is busy (from
        # taking a task until it is done with it), asleep (holding its lock
        # in _sleepers), or between the two (starting, waking, or done with
        # a task), and then looks at _tasks next.
        self._lock = threading.Lock()
        self._tasks: deque[Any] = deque()
        self._sleepers: list[_Sleeper] = []
        self.makePlacement = placement
        self._placement: Placement | None = None
        self._waking = False
        self._busy = 0
        # Busy threads whose task has answered its request (see answered).
        self._answered = 0
        self._current = threading.local()
        self._count = 0
        # Queued tasks that will do nothing (see setAside).
        self._aside = 0
        # Called once a thread is free (see whenFree).
        self._onFree: Callable[[], object] | None = None
        # The system refused the last thread the pool tried to start.
        self._refused = False

    def start(self) -> None:
        """
        Start C{min} threads, and more for tasks already queued.

        @raise PoolStartError: the system refused the first thread (with
            C{min} at least 1, or tasks queued): the pool is not started.
            Once one thread runs, a refused one is only logged (see
            L{_startThread}).
        """
        with self._lock:
            if self.started:
                return
            self.started = True
            self.joined = False
            if self.makePlacement is not None and self._placement is None:
                self._placement = self.makePlacement()
            wanted = min(self.max, max(self.min, len(self._tasks)))
            for _ in range(wanted - len(self.threads)):
                refused = self._startThread(quiet=not self.threads)
                if refused is None:
                    continue
                if not self.threads:
                    self.started = False
                    raise PoolStartError(
                        f"cannot start a WSGI thread: {refused}"
                    ) from None
                # The next would be refused too (a --threads larger than
                # the system allows would try each of them).
                break

    def _startThread(self, quiet: bool = False) -> RuntimeError | None:
        """
        Start a thread, unless the system refuses one (a container's pids
        limit, systemd's C{TasksMax}): then the pool goes on with the
        threads it has, and the tasks wait for one of them as they do at
        C{max}; the log says so once (unless C{quiet}), until a thread
        starts again.  Called under C{_lock}, in any thread (in a pool
        thread, an exception here would lose the task it took).

        @return: the system's refusal, or C{None} once the thread started.
        """
        self._count += 1
        thread = threading.Thread(
            target=self._work, name=f"{self.name}-{self._count}", daemon=True
        )
        try:
            thread.start()
        except RuntimeError as e:
            if quiet:
                return e
            if not self._refused:
                self._refused = True
                _log.warn(
                    "twsgi: cannot start another WSGI thread ({running} of at "
                    "most {maximum} running): {error}",
                    running=len(self.threads),
                    maximum=self.max,
                    error=str(e),
                )
            return e
        self._refused = False
        self.threads.append(thread)
        return None

    def callInThread(self, f: Callable[..., object], *args: Any, **kw: Any) -> None:
        """
        Run C{f(*args, **kw)} in a pool thread: queue it, and wake a
        sleeping thread unless one is waking already, or else start a
        thread if fewer threads than tasks are about to look at the queue
        and the pool is below C{max}.  An exception from C{f} is logged.
        Called in any thread.
        """
        if self.joined:
            return
        with self._lock:
            tasks = self._tasks
            tasks.append((f, args, kw))
            idle = self._busy == self._answered
            if not idle and self._placement is not None:
                self._placement.spread()
            if self._sleepers:
                self._wakeOne(idle)
            else:
                self._growIfShort()

    def _growIfShort(self) -> None:
        """
        Start a thread if more tasks wait than threads are about to look at
        the queue (those neither busy nor asleep), and the pool may grow.  A
        thread started counts as about to look at once, so that a burst of
        tasks does not start a thread for each.  Called under C{_lock}, with
        no thread asleep.
        """
        if (
            self.started
            and len(self._tasks) > len(self.threads) - self._busy
            and len(self.threads) < self.max
        ):
            self._startThread()

    def prewake(self) -> None:
        """
        A task is on its way (the I/O thread is reading a request): if no
        thread is busy or waking and none has a task waiting, wake one now.
        A thread asleep on an idle CPU takes about as long to wake (some
        30 us) as the I/O thread takes to read the request and hand it
        over, so it is awake when the task comes.  A thread that finds no
        task sleeps again.  Called in any thread.
        """
        with self._lock:
            if (
                self._sleepers
                and self._busy == self._answered
                and not (self._tasks or self._waking)
            ):
                self._wakeOne(idle=True)

    def _wakeOne(self, idle: bool = False) -> None:
        """
        Wake the thread that fell asleep last, unless a thread is waking
        already (it wakes the next if it sees more tasks).  Called under
        C{_lock}, with a thread asleep.

        @param idle: every busy thread has L{answered}: wake it on the
            calling thread's CPU (see L{twsgi.wsgi.placement}).
        """
        if not self._waking:
            self._waking = True
            sleeper = self._sleepers.pop()
            if idle and self._placement is not None:
                self._placement.near(sleeper)
            sleeper.lock.release()

    def callInThreadWithCallback(
        self,
        onResult: Callable[[bool, Any], object] | None,
        f: Callable[..., Any],
        *args: Any,
        **kw: Any,
    ) -> None:
        """
        Like L{twisted.python.threadpool.ThreadPool.callInThreadWithCallback}:
        run C{f} in a pool thread, then C{onResult(True, result)} or
        C{onResult(False, failure)} in that same thread.
        """
        from twisted.python.failure import Failure

        def call() -> None:
            try:
                result = f(*args, **kw)
            except BaseException:
                if onResult is None:
                    raise
                onResult(False, Failure())
            else:
                if onResult is not None:
                    onResult(True, result)

        self.callInThread(call)

    def _work(self) -> None:
        """
        A pool thread's loop.  Called in a pool thread.
        """
        lock = self._lock
        tasks = self._tasks
        sleepers = self._sleepers
        sleeper = self._current.sleeper = _Sleeper()
        sleep = sleeper.lock
        placement = self._placement
        if placement is not None:
            placement.started()
        task: Any = None
        woken = done = False
        freed: Callable[[], object] | None = None
        while True:
            with lock:
                if woken:
                    self._waking = False
                if done:
                    self._busy -= 1
                    if sleeper.answered:
                        sleeper.answered = False
                        self._answered -= 1
                    if self._onFree is not None:
                        freed = self._freed()
                task = tasks.popleft() if tasks else None
                if task is None:
                    sleepers.append(sleeper)
                else:
                    self._busy += 1
                    if tasks:
                        # Tasks handed in while this thread woke or started
                        # found it about to look: pass them on.
                        if placement is not None:
                            placement.spread()
                        if sleepers:
                            self._wakeOne()
                        else:
                            self._growIfShort()
            woken = task is None
            done = False
            if freed is not None:
                self._callFreed(freed)
                freed = None
            if woken:
                # Until _wakeOne releases it.
                sleep.acquire()
                continue
            if task is _STOP:
                with lock:
                    self._busy -= 1
                return
            # The task and what it holds are let go of here, not under the
            # lock (a finalizer may hand in a task).
            f, args, kw = task
            task = None
            # Kept to a CPU (see twsgi.wsgi.placement), and how many threads
            # the process had then.
            keptTo = sleeper.cpu
            threadsBefore = 0
            if keptTo is not None and placement is not None:
                threadsBefore = placement.running(sleeper)
            try:
                f(*args, **kw)
            except BaseException:
                _log.failure("a task of the WSGI thread pool raised")
            f = args = kw = None
            if keptTo is not None and placement is not None:
                placement.ended(keptTo, threadsBefore)
            done = True

    def answered(self) -> None:
        """
        The calling pool thread's task has answered its request, and only
        ends it now: until the task returns, a task handed in wakes a thread
        as for an idle pool (L{prewake}, and on the caller's CPU).  Called
        in a pool thread (elsewhere it does nothing).
        """
        sleeper: _Sleeper | None = getattr(self._current, "sleeper", None)
        if sleeper is None:
            return
        with self._lock:
            if not sleeper.answered:
                sleeper.answered = True
                self._answered += 1

    def othersIdle(self) -> bool:
        """
        Whether the calling pool thread runs the only task, and none waits.
        Called in a pool thread, without a lock: the answer may be stale.
        """
        return self._busy <= 1 and not self._tasks

    def free(self) -> int:
        """
        How many more tasks would start at once rather than wait: C{max}
        less the tasks running and those waiting (but for those set aside);
        0 or less when every thread the pool may have is busy or promised
        to a waiting task.  Called in any thread; without C{_lock}, the
        answer may be stale (see L{whenFree}).
        """
        return self.max - self._busy - max(0, len(self._tasks) - self._aside)

    def _freed(self) -> Callable[[], object] | None:
        """
        The L{whenFree} callback to call now, if one waits and a thread is
        free; it no longer waits.  Called under C{_lock}.
        """
        freed = self._onFree
        if freed is not None and self.free() > 0:
            self._onFree = None
            return freed
        return None

    @staticmethod
    def _callFreed(freed: Callable[[], object]) -> None:
        """
        Call a L{whenFree} callback, logging what it raises.
        """
        try:
            freed()
        except BaseException:
            _log.failure("twsgi: a callback of WorkerPool.whenFree raised")

    def whenFree(self, callback: Callable[[], object]) -> bool:
        """
        Call C{callback} once a thread is free (L{free} is above 0): in the
        pool thread that frees itself, as it ends its task (so it must only
        hand a call to another thread, such as C{reactor.callFromThread}).
        One callback waits at a time: a later one replaces it.  Called in
        any thread.

        @return: C{True} if C{callback} waits; C{False} if a thread is free
            now (then it is not called).
        """
        with self._lock:
            if self.free() > 0:
                return False
            self._onFree = callback
            return True

    def setAside(self) -> None:
        """
        One queued task will do nothing when a thread takes it (its request
        lost its client): stop counting it in the backlog.  Its caller calls
        L{takenAside} when a thread takes it.  Called in any thread.
        """
        with self._lock:
            self._aside += 1
            freed = self._freed()
        if freed is not None:
            self._callFreed(freed)

    def takenAside(self) -> None:
        """
        A thread took a task that was L{set aside<setAside>}.  Called in
        any thread.
        """
        with self._lock:
            self._aside -= 1

    def backlog(self) -> int:
        """
        How many tasks wait for a thread, without those set aside.  Called
        in any thread; takes no lock.
        """
        return max(0, len(self._tasks) - self._aside)

    def stats(self) -> PoolStats:
        """
        How many threads are busy and idle, and how many tasks wait.  Called
        in any thread.
        """
        with self._lock:
            threads = len(self.threads)
            busy = min(self._busy, threads)
        return PoolStats(
            busy=busy,
            idle=threads - busy,
            backlog=self.backlog(),
            maximum=self.max,
        )

    def stop(self, timeout: float | None = None) -> None:
        """
        Stop every thread once it has finished its current task and those
        queued before, and wait for them (at most C{timeout} seconds each).
        Tasks handed in afterwards are dropped.
        """
        with self._lock:
            self.joined = True
            self.started = False
            threads, self.threads = self.threads, []
            self._tasks.extend(_STOP for _ in threads)
            if self._placement is not None:
                # Its threads end: their ids may soon be other threads'.
                self._placement.spread()
            if self._sleepers:
                self._wakeOne()
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout)


def poolStats(threadpool: Any) -> PoolStats:
    """
    Read the statistics of a L{twsgi.wsgi.pool.WorkerPool}, or of a
    L{twisted.python.threadpool.ThreadPool} (its public C{working},
    C{waiters}, C{q} and C{max}).  Called in the I/O thread.
    """
    stats = getattr(threadpool, "stats", None)
    if stats is not None:
        return stats()  # type: ignore[no-any-return]
    if not hasattr(threadpool, "q"):
        return PoolStats(0, 0, 0, getattr(threadpool, "max", 0))
    return PoolStats(
        len(threadpool.working),
        len(threadpool.waiters),
        threadpool.q.qsize(),
        threadpool.max,
    )


__all__ = ["CallsFromThread", "PoolStartError", "PoolStats", "WorkerPool", "poolStats"]
