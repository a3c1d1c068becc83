"""
Tests for L{twsgi.wsgi.watchdog}: C{--request-timeout}.
"""

from __future__ import annotations

import gc
import sys
import threading

from twisted.internet.task import Clock
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from twsgi.wsgi.environ import RequestFacts
from twsgi.wsgi.watchdog import RequestWatchdog, currentFrames


class RequestWatchdogTests(SynchronousTestCase):
    """
    L{RequestWatchdog} reports requests that run past the timeout, once each,
    with the stack of the thread serving them.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.stuck: list[None] = []
        self.watchdog = RequestWatchdog(
            self.clock, 5.0, onStuck=lambda: self.stuck.append(None)
        )
        self.events: list[dict] = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)
        self.release = threading.Event()
        self.inside = threading.Event()
        self.facts = RequestFacts(method=b"GET", target=b"/slow?x=1")

    def runInThread(self) -> threading.Thread:
        def stuckInTheApp() -> None:
            self.inside.set()
            self.release.wait(10)

        thread = threading.Thread(
            target=self.watchdog.track, args=(stuckInTheApp, self.facts)
        )
        thread.start()
        self.addCleanup(thread.join, 10)
        self.addCleanup(self.release.set)
        self.assertTrue(self.inside.wait(10))
        return thread

    def errors(self) -> list[dict]:
        return [e for e in self.events if e.get("log_level") == LogLevel.error]

    def test_withinTimeout(self) -> None:
        """
        A request within its deadline is not reported.
        """
        self.runInThread()
        self.watchdog.start()
        self.clock.advance(5.0)
        self.assertEqual((self.watchdog.stuck, self.stuck, self.errors()), (0, [], []))

    def test_pastTimeout(self) -> None:
        """
        A request past its deadline is counted once, C{onStuck} is called,
        and the log names the request and shows the stack of its thread.
        """
        self.runInThread()
        self.watchdog.start()
        self.clock.advance(6.0)
        self.clock.advance(1.0)
        self.clock.advance(1.0)
        self.assertEqual(self.watchdog.stuck, 1)
        self.assertEqual(len(self.stuck), 1)
        [event] = self.errors()
        self.assertEqual(event["target"], "/slow?x=1")
        self.assertIn("stuckInTheApp", event["stack"])
        self.assertIn("self.release.wait(10)", event["stack"])

    def test_finishedRequestForgotten(self) -> None:
        """
        A request that finished before the check is not reported, and the
        watchdog keeps no record of it.
        """
        thread = self.runInThread()
        self.release.set()
        thread.join(10)
        self.watchdog.start()
        self.clock.advance(10.0)
        self.assertEqual(self.watchdog.stuck, 0)
        self.assertEqual(self.watchdog._running, {})

    def test_stop(self) -> None:
        """
        After C{stop()}, nothing is checked.
        """
        self.runInThread()
        self.watchdog.start()
        self.watchdog.stop()
        self.clock.advance(60.0)
        self.assertEqual(self.watchdog.stuck, 0)


class CurrentFramesTests(SynchronousTestCase):
    """
    L{currentFrames} reads every thread's frame with the garbage collector
    off, and leaves the collector as it found it.
    """

    def test_collectorOffWhileReading(self) -> None:
        """
        The collector is off while the frames are read (CPython gh-106883:
        a collection inside C{sys._current_frames} can deadlock), and on
        again afterwards.
        """
        seen: list[bool] = []
        self.patch(
            sys,
            "_current_frames",
            lambda: seen.append(gc.isenabled()) or {threading.get_ident(): None},
        )
        self.assertTrue(gc.isenabled())
        self.assertEqual(currentFrames(), {threading.get_ident(): None})
        self.assertEqual(seen, [False])
        self.assertTrue(gc.isenabled())

    def test_collectorLeftOff(self) -> None:
        """
        A collector that was off stays off, and the real frames include this
        thread's.
        """
        gc.disable()
        self.addCleanup(gc.enable)
        frames = currentFrames()
        self.assertIn(threading.get_ident(), frames)
        self.assertFalse(gc.isenabled())
