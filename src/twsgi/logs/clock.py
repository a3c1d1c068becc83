# -*- test-case-name: tests.logs.test_limited,tests.logs.test_periodic,tests.wsgi.test_turns -*-
"""
The reactor's clock, as the pieces of twsgi use it: one L{typing.Protocol}
per capability of Twisted's C{IReactorTime} (and of the C{IDelayedCall} its
C{callLater} returns), and the bigger ones composed of them.  A reactor
provides them all, and so does a L{twisted.internet.task.Clock} (a test's
clock); a module names the smallest one it uses.

They live here, in the lowest layer that uses them (L{twsgi.logs.limited}
reads the time, L{twsgi.logs.periodic} runs a L{LoopingCall} on a clock),
so that every layer above imports them from one place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class DelayedCall(Protocol):
    """
    A call the clock scheduled (C{IDelayedCall}), as far as cancelling it
    goes.
    """

    def active(self) -> bool: ...

    def cancel(self) -> None: ...


class ResettableCall(DelayedCall, Protocol):
    """
    A scheduled call that can also be put off (a connection's timeout).
    """

    def reset(self, secondsFromNow: float) -> None: ...


class TellsTime(Protocol):
    """
    A clock, as far as reading the time goes.
    """

    def seconds(self) -> float:
        """
        The time now.
        """


class CallsLater(Protocol):
    """
    A clock, as far as scheduling calls goes.
    """

    def callLater(
        self, delay: float, callable: Callable[..., object], /, *args: object
    ) -> DelayedCall:
        """
        Call C{callable(*args)} in C{delay} seconds.
        """


class Clock(TellsTime, CallsLater, Protocol):
    """
    The time, and calls later: what a L{LoopingCall} runs on, and what most
    of twsgi's timers need.
    """


class TimeoutClock(Clock, Protocol):
    """
    A clock whose calls can be put off: what the timeouts of a connection run on.
    """

    def callLater(
        self, delay: float, callable: Callable[..., object], /, *args: object
    ) -> ResettableCall: ...


__all__ = [
    "CallsLater",
    "Clock",
    "DelayedCall",
    "TellsTime",
    "ResettableCall",
    "TimeoutClock",
]
