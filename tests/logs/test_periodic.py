# -*- test-case-name: tests.logs.test_periodic -*-
"""
Tests for L{twsgi.logs.periodic}.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from twsgi.logs.periodic import repeating


class RepeatingTests(SynchronousTestCase):
    """
    L{repeating} keeps calling on schedule when a call raises.
    """

    def setUp(self) -> None:
        self.events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def test_failureLoggedAndLoopGoesOn(self) -> None:
        """
        A call that raises is logged at error level with its traceback and
        what the loop does; the loop keeps running and the next call comes
        one interval later.
        """
        clock = Clock()
        calls: list[float] = []

        def check() -> None:
            calls.append(clock.seconds())
            if len(calls) == 1:
                raise OSError("fork failed")

        loop = repeating(check, clock, "the worker check")
        d = loop.start(1.0, now=False)
        clock.advance(1)
        self.assertTrue(loop.running)
        self.assertNoResult(d)
        clock.advance(1)
        self.assertEqual(calls, [1.0, 2.0])
        errors = [e for e in self.events if e.get("log_level") == LogLevel.error]
        self.assertEqual(len(errors), 1)
        self.assertEqual(errors[0]["what"], "the worker check")
        self.assertIsInstance(errors[0]["log_failure"].value, OSError)
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
        loop.stop()
        self.assertIs(self.successResultOf(d), loop)
