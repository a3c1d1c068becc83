# -*- test-case-name: tests.process.test_affinity -*-
"""
C{--cpu-affinity}: a twsgi process kept on one CPU, on Linux.

A worker's I/O thread hands each request to a WSGI thread, which sends the
response.  Where the kernel runs the two threads on different CPUs, each
hand-over wakes the other CPU, which on a virtual machine whose idle CPUs
halt costs tens of microseconds; on one CPU it costs a few.  The GIL lets
one of the threads run Python at a time anyway, so a worker loses little
by keeping to one CPU: what it loses is running C code that lets the GIL
go (TLS, compression) beside its Python code.  As nginx's
C{worker_cpu_affinity} and uWSGI's C{cpu-affinity}, it is off unless an
operator asks: a pinned process cannot be moved off a CPU that something
else keeps busy.
"""

from __future__ import annotations

import os
from collections.abc import Sequence, Set

from twsgi.config.resolve import ConfigError
from twsgi.config.settings import cpuList


def allowedCpus() -> frozenset[int]:
    """
    The CPUs this process may run on.

    @raise ConfigError: if the platform cannot pin a process to a CPU.
    """
    if not hasattr(os, "sched_setaffinity"):
        raise ConfigError("--cpu-affinity needs Linux (os.sched_setaffinity)")
    return frozenset(os.sched_getaffinity(0))


def cpusFor(spec: str, allowed: Set[int]) -> tuple[int, ...]:
    """
    The CPUs that C{--cpu-affinity spec} hands out in turn: C{auto}, every
    CPU of C{allowed} in order; or the CPUs of a list such as C{0-3,6}, each
    of which must be in C{allowed}.

    @raise ConfigError: if the list names a CPU not in C{allowed}.
    """
    if spec == "auto":
        return tuple(sorted(allowed))
    cpus = cpuList(spec)
    for cpu in cpus:
        if cpu not in allowed:
            raise ConfigError(
                f"--cpu-affinity {spec!r}: CPU {cpu} is not one this process may "
                f"run on ({describe(sorted(allowed))})"
            )
    return cpus


def describe(cpus: Sequence[int]) -> str:
    """
    C{cpus} as a list such as C{0-3,6}.
    """
    parts: list[str] = []
    start = previous = None
    for cpu in [*cpus, None]:
        if previous is not None and cpu == previous + 1:
            previous = cpu
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = cpu
    return ",".join(parts)


def pinProcess(cpu: int, tasks: str = "/proc/self/task") -> None:
    """
    Keep every thread of this process on C{cpu}; a thread started later
    inherits that from the thread that starts it.  A thread started while
    this runs is pinned too: the threads are listed again until no new one
    appears.

    @param tasks: the directory that lists this process's threads.
    @raise ConfigError: if the kernel refuses.
    """
    pinned: set[int] = set()
    while True:
        threads = {int(name) for name in os.listdir(tasks)} - pinned
        if not threads:
            return
        for thread in threads:
            try:
                os.sched_setaffinity(thread, {cpu})
            except ProcessLookupError:
                # It ended meanwhile.
                pass
            except OSError as e:
                raise ConfigError(f"--cpu-affinity: CPU {cpu}: {e.strerror}")
        pinned |= threads


def leastUsed(cpus: Sequence[int], used: Sequence[int | None]) -> int:
    """
    The CPU of C{cpus} that fewest of the CPUs C{used} by running workers
    are, the first of them in C{cpus} on a tie.
    """
    return min(cpus, key=lambda cpu: (used.count(cpu), cpus.index(cpu)))


__all__ = ["allowedCpus", "cpusFor", "describe", "leastUsed", "pinProcess"]
