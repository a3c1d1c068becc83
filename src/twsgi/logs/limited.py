# -*- test-case-name: tests.logs.test_limited -*-
"""
Server-log lines about what clients do wrong, rate-limited: a client (or a
scanner) that repeats the mistake a thousand times a second must not fill
the log, yet the operator sees the first ones and how many followed.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.logger import Logger

from twsgi.logs.clock import TellsTime

BURST = 10
"""
How many lines a L{LimitedLog} writes in each period.
"""

PERIOD = 60.0
"""
The length of a L{LimitedLog}'s period, in seconds.
"""


class LimitedLog:
    """
    Info lines of one kind, at most C{burst} in each C{period} seconds.  The
    lines past that are counted, not written; the first line written after
    the period comes after one saying how many were left out.  Called in
    the I/O thread.
    """

    def __init__(
        self,
        clock: TellsTime,
        log: Logger,
        what: str,
        burst: int = BURST,
        period: float = PERIOD,
    ) -> None:
        """
        @param clock: what tells the time.
        @param log: where the lines go.
        @param what: what each line reports, in the plural, for the count
            (C{"failed TLS connections"}).
        """
        self._clock = clock
        self._log = log
        self._what = what
        self._burst = burst
        self._period = period
        self._start: float | None = None
        self._written = 0
        self._leftOut = 0

    def info(self, format: str, **kwargs: object) -> bool:
        """
        Write an info line, unless C{burst} were written in this period.

        @return: whether it was written.
        """
        now = self._clock.seconds()
        if self._start is None or now - self._start >= self._period:
            if self._leftOut:
                self._log.info(
                    "twsgi: {count} more {what} were not logged (at most "
                    "{burst} every {period:g} s)",
                    count=self._leftOut,
                    what=self._what,
                    burst=self._burst,
                    period=self._period,
                )
            self._start = now
            self._written = 0
            self._leftOut = 0
        if self._written >= self._burst:
            self._leftOut += 1
            return False
        self._written += 1
        self._log.info(format, **kwargs)
        return True


class Throttle:
    """
    When to say that a condition of the server goes on (a full disk,
    requests refused for overload): at its first occurrence, then at most
    every C{every} seconds while it goes on, with how many times it
    happened since the line before (a line for each would flood the log
    just when the server is in trouble).

    @ivar count: the occurrences since the last line.
    """

    def __init__(self, seconds: Callable[[], float], every: float) -> None:
        """
        @param seconds: the clock, asked at each occurrence.
        @param every: the shortest time, in seconds, between two lines.
        """
        self._seconds = seconds
        self._every = every
        self._quietUntil: float | None = None
        self.count = 0

    def happened(self) -> int | None:
        """
        The condition happened once more.

        @return: if a line is due now, how many times it happened since the
            last line (counting this one), and the count starts again;
            else C{None}.
        """
        self.count += 1
        now = self._seconds()
        if self._quietUntil is not None and now < self._quietUntil:
            return None
        self._quietUntil = now + self._every
        count, self.count = self.count, 0
        return count

    def ended(self) -> int | None:
        """
        The condition is over: the next occurrence is told at once.

        @return: if it had been told, how many times it happened since the
            last line; else C{None}.
        """
        if self._quietUntil is None:
            return None
        self._quietUntil = None
        count, self.count = self.count, 0
        return count


__all__ = ["BURST", "PERIOD", "LimitedLog", "Throttle"]
