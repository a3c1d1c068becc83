# -*- test-case-name: tests.wsgi.test_placement -*-
"""
Where a WSGI thread wakes: on the CPU of the thread that hands a request to
an otherwise idle pool (Linux).

A request that finds the pool idle goes from the I/O thread to a sleeping
WSGI thread.  The kernel wakes a thread on an idle CPU when there is one,
and where idle CPUs halt (a virtual machine), waking another CPU costs tens
of microseconds: on a 2-CPU machine, a quarter of a small request's
latency.  On the CPU that wakes it, it costs a few.  The GIL lets one of the
two threads run Python at a time anyway, so the woken thread loses nothing
by running where the I/O thread runs.

So a thread woken for an idle pool is first kept to the waker's CPU
(C{sched_setaffinity}; only when that CPU changed, so serial requests cost
no system call), and keeps to it while the pool stays idle around it.  It
takes back every CPU of the process as soon as a task is handed to a busier
pool (the threads then run side by side where the kernel likes, as without
this).  A process or thread starts on the CPUs of the thread that starts
it: a kept thread about to start one (the audit events of
C{subprocess.Popen}, C{os.fork}, C{os.posix_spawn}, C{os.system},
C{os.exec*}, C{os.spawn*}, and from Python 3.12 C{threading}) takes back
every CPU first, and once a request run on a kept thread ends with more
threads in the process than it began with, those kept to its CPU are given
every CPU.  A thread the pool starts takes every CPU of the process too.

Off where the platform cannot (not Linux, no C{sched_getcpu}), where the
process may run on one CPU only (C{--cpu-affinity}, C{taskset}), without
a GIL (the two threads would then run side by side), and after the kernel
first refuses a change (a cpuset changed under the process): then the log
says so once.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Set

from twisted.logger import Logger

_log = Logger(namespace="twsgi")

# The audit events (PEP 578) of a process or thread about to start, which
# starts on the CPUs of the thread that starts it.  (threading.Thread.start
# raises _thread.start_new_thread in Python 3.12, _thread.start_joinable_thread
# from 3.13.)
_STARTS = frozenset(
    {
        "_thread.start_joinable_thread",
        "_thread.start_new_thread",
        "os.exec",
        "os.fork",
        "os.forkpty",
        "os.posix_spawn",
        "os.spawn",
        "os.system",
        "subprocess.Popen",
    }
)

# In a pool thread that runs a task kept to a CPU: its placement and
# itself, as "kept".
_running = threading.local()

# The audit hook is added once a process (it cannot be removed).
_hooked: list[bool] = []


def _audit(
    event: str,
    args: tuple[object, ...],
    starts: frozenset[str] = _STARTS,
    running: threading.local = _running,
) -> None:
    """
    The audit hook: a pool thread kept to a CPU that is about to start a
    process or thread takes back every CPU first.  Never raises (that
    would stop the event's operation), not even once the interpreter,
    exiting, set this module's names to C{None} (hence its own C{starts}
    and C{running}).
    """
    if event not in starts:
        return
    kept = getattr(running, "kept", None)
    if kept is None:
        return
    running.kept = None
    try:
        kept[0].letGo(kept[1])
    except BaseException:
        pass


def _currentCpu() -> Callable[[], int] | None:
    """
    The C library's C{sched_getcpu}, or C{None} where there is none.
    """
    if not hasattr(os, "sched_setaffinity"):
        return None
    try:
        import ctypes

        getcpu = ctypes.CDLL(None, use_errno=True).sched_getcpu
    except (ImportError, OSError, AttributeError):
        return None
    getcpu.restype = ctypes.c_int
    getcpu.argtypes = []
    if getcpu() < 0:
        return None
    return getcpu  # type: ignore[no-any-return]


class Placed:
    """
    A pool thread, as its placement knows it.

    @ivar tid: its native thread id.
    @ivar cpu: the CPU it is kept to, or C{None}.
    """

    __slots__ = ("cpu", "tid")

    def __init__(self) -> None:
        """
        The calling thread.
        """
        self.tid = threading.get_native_id()
        self.cpu: int | None = None


class Placement:
    """
    Keeps a WSGI thread woken for an idle pool on its waker's CPU.  Its
    methods are called under the pool's lock, but those a pool thread calls
    for itself: L{started}, L{running}, L{letGo} and L{ended}.

    @ivar cpus: the CPUs of the process when it was made.
    @ivar on: C{False} once the kernel refused.
    """

    def __init__(
        self,
        cpus: Set[int],
        currentCpu: Callable[[], int],
        setAffinity: Callable[[int, Set[int]], None],
        getAffinity: Callable[[int], Set[int]],
    ) -> None:
        self.cpus = frozenset(cpus)
        self._currentCpu = currentCpu
        self._setAffinity = setAffinity
        self._getAffinity = getAffinity
        self._kept: list[Placed] = []
        self.on = True

    @classmethod
    def forThisProcess(cls) -> Placement | None:
        """
        A placement for this process, or C{None} where it has nothing to do
        or cannot (see the module's docstring).
        """
        currentCpu = _currentCpu()
        if currentCpu is None or not getattr(sys, "_is_gil_enabled", lambda: True)():
            return None
        cpus = os.sched_getaffinity(0)
        if len(cpus) < 2:
            return None
        if not _hooked:
            sys.addaudithook(_audit)
            _hooked.append(True)
        return cls(cpus, currentCpu, os.sched_setaffinity, os.sched_getaffinity)

    def near(self, thread: Placed) -> None:
        """
        Keep C{thread}, asleep, to the calling thread's CPU, before the
        caller wakes it for an idle pool.
        """
        if not self.on:
            return
        cpu = self._currentCpu()
        if cpu == thread.cpu:
            return
        try:
            self._setAffinity(thread.tid, {cpu})
        except OSError as e:
            self._refused(e)
            return
        if thread.cpu is None and thread not in self._kept:
            # (It may be there still, let go of by letGo.)
            self._kept.append(thread)
        thread.cpu = cpu

    def spread(self) -> None:
        """
        Give every thread kept to a CPU every CPU of the process again, as
        a task is handed to a busier pool.
        """
        if not self._kept:
            return
        kept, self._kept = self._kept, []
        every = self._every()
        for thread in kept:
            thread.cpu = None
            self._give(thread.tid, every)

    def started(self) -> None:
        """
        A pool thread starts: give it every CPU of the process (a thread
        starts on those of the thread that starts it).  Called in that
        thread.
        """
        self._give(0, self._every())

    def running(self, thread: Placed) -> int:
        """
        C{thread}, kept to a CPU, runs a task now: until L{ended}, a process
        or thread it starts makes it take back every CPU first (L{letGo}).
        Called in that pool thread.

        @return: how many threads the process has now, for L{ended}.
        """
        _running.kept = (self, thread)
        return threading.active_count()

    def letGo(self, thread: Placed) -> None:
        """
        C{thread}, the calling pool thread, runs a task kept to a CPU and
        is about to start a process or thread: it takes back every CPU of
        the process.
        """
        thread.cpu = None
        self._give(0, self._every())

    def ended(self, cpu: int, threadsBefore: int) -> None:
        """
        A pool thread ended a task that it began kept to C{cpu}: if the
        process now has more threads than the C{threadsBefore} it had then,
        give those kept to C{cpu}, but for pool threads, every CPU of the
        process (a thread starts on the CPUs of the thread that starts
        it).  Called in that pool thread.
        """
        _running.kept = None
        if threading.active_count() <= threadsBefore:
            return
        kept = {thread.tid for thread in self._kept}
        every = self._every()
        for thread in threading.enumerate():
            tid = thread.native_id
            if tid is None or tid in kept:
                continue
            try:
                if set(self._getAffinity(tid)) != {cpu}:
                    continue
            except OSError:
                continue
            self._give(tid, every)

    def _every(self) -> Set[int]:
        """
        Every CPU the process may run on now: those of its main thread (the
        I/O thread of a twsgi process, which is never kept to a CPU), which
        follow a C{taskset -a -p} or a cpuset changed since it started; or,
        if they cannot be read, those it had when this placement was made.
        """
        try:
            return self._getAffinity(os.getpid())
        except OSError:
            return self.cpus

    def _give(self, tid: int, every: Set[int]) -> None:
        """
        Let thread C{tid} run on C{every} CPU of the process.
        """
        try:
            self._setAffinity(tid, every)
        except ProcessLookupError:
            # It ended.
            pass
        except OSError as e:
            self._refused(e)

    def _refused(self, error: OSError) -> None:
        """
        The kernel refused a change: stop keeping threads near, and say so
        once.
        """
        if self.on:
            self.on = False
            _log.warn(
                "twsgi: WSGI threads are no longer woken on the CPU of the "
                "thread that wakes them: {error}",
                error=error.strerror or str(error),
            )


__all__ = ["Placed", "Placement"]
