"""
Tests for L{twsgi.logs.limited}.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.logger import Logger, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from twsgi.logs.limited import LimitedLog, Throttle


class LimitedLogTests(SynchronousTestCase):
    """
    L{LimitedLog} writes at most C{burst} lines a period, and then says how
    many it left out.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.log = LimitedLog(
            self.clock, Logger(namespace="twsgi"), "failed things", 3, 60.0
        )

    def lines(self, count: int) -> tuple[list[bool], list[str]]:
        """
        Ask for C{count} lines; what each call returned, and what was
        logged.
        """
        with capturedLogs() as events:
            written = [self.log.info("thing {n} failed", n=n) for n in range(count)]
        return written, [formatEvent(event) for event in events]

    def test_burst(self) -> None:
        """
        The first C{burst} lines of a period are written, the others not.
        """
        written, logged = self.lines(5)
        self.assertEqual(written, [True, True, True, False, False])
        self.assertEqual(logged, ["thing 0 failed", "thing 1 failed", "thing 2 failed"])

    def test_nextPeriod(self) -> None:
        """
        After the period, a line says how many were left out, and lines are
        written again; the period starts again with that line.
        """
        self.lines(5)
        self.clock.advance(59)
        self.assertEqual(self.lines(1), ([False], []))
        self.clock.advance(1)
        written, logged = self.lines(4)
        self.assertEqual(written, [True, True, True, False])
        self.assertEqual(
            logged,
            [
                "twsgi: 3 more failed things were not logged (at most 3 every 60 s)",
                "thing 0 failed",
                "thing 1 failed",
                "thing 2 failed",
            ],
        )

    def test_nothingLeftOut(self) -> None:
        """
        A period in which every line was written is followed by no count.
        """
        self.lines(2)
        self.clock.advance(60)
        self.assertEqual(self.lines(1), ([True], ["thing 0 failed"]))


class ThrottleTests(SynchronousTestCase):
    """
    Tests for L{Throttle}.
    """

    def test_firstThenEvery(self) -> None:
        """
        The first occurrence is told at once; the next ones within C{every}
        seconds are counted, and told with the next line after that.
        """
        clock = Clock()
        throttle = Throttle(clock.seconds, 10.0)
        self.assertEqual(throttle.happened(), 1)
        clock.advance(9.9)
        self.assertEqual([throttle.happened(), throttle.happened()], [None, None])
        clock.advance(0.1)
        self.assertEqual(throttle.happened(), 3)
        self.assertEqual(throttle.happened(), None)

    def test_ended(self) -> None:
        """
        An end tells how many occurrences were not told yet, if the
        condition had been told; the next occurrence is then told at once.
        """
        clock = Clock()
        throttle = Throttle(clock.seconds, 10.0)
        self.assertIsNone(throttle.ended())
        throttle.happened()
        throttle.happened()
        self.assertEqual(throttle.ended(), 1)
        self.assertIsNone(throttle.ended())
        self.assertEqual(throttle.happened(), 1)
