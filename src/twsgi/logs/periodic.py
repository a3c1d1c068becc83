# -*- test-case-name: tests.logs.test_periodic -*-
"""
Periodic checks that outlive a failing call.

A L{LoopingCall} stops for good the first time its function raises, and
fails the L{Deferred} that L{LoopingCall.start} returned, which nobody
waits on: the supervisor's worker recycling (C{--worker-lifetime},
C{--max-worker-memory}), the C{--request-timeout} watchdog or the shared
metrics would end without a word (Twisted logs the failure only when that
L{Deferred} is garbage collected).  L{repeating} logs the failure and keeps
the schedule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger, LogLevel

from twsgi.logs.clock import Clock

_log = Logger(namespace="twsgi")


def repeating(f: Callable[[], object], clock: Clock, what: str) -> LoopingCall:
    """
    A L{LoopingCall} of C{f} on C{clock} that goes on when a call of C{f}
    raises: the error is logged, with its traceback, and the next call comes
    on time.

    @param what: what C{f} does, for the log (C{"the worker check"}).
    """

    def call() -> None:
        try:
            f()
        except Exception:
            _log.failure(
                "twsgi: {what} failed; trying again in the next round",
                level=LogLevel.error,
                what=what,
            )

    loop = LoopingCall(call)
    # LoopingCall calls only seconds and callLater of its clock (and the
    # cancel of a call's result); mypy does not check zope interfaces.
    loop.clock = cast(IReactorTime, clock)
    return loop


__all__ = ["repeating"]
