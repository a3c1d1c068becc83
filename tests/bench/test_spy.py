# -*- test-case-name: tests.bench.test_spy -*-
"""
Tests for the pure parts of the profiling script (C{bench/spy.py}): which
frames it counts as idle.

py-spy itself is never run by the test suite.
"""

from __future__ import annotations

import importlib.util
import linecache
import sys
import time
from pathlib import Path
from types import ModuleType

from twisted.trial.unittest import SynchronousTestCase

from twsgi.wsgi.pool import WorkerPool

TIMEOUT = 10.0


def _loadSpy() -> ModuleType:
    """
    Import C{bench/spy.py} by its path (C{bench/} is not a package; spy.py
    imports C{run} from it).
    """
    bench = Path(__file__).resolve().parents[2] / "bench"
    spec = importlib.util.spec_from_file_location("_twsgi_bench_spy", bench / "spy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    sys.path.insert(0, str(bench))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(bench))
    return module


spy = _loadSpy()


class IdleFrameTests(SynchronousTestCase):
    """
    Tests for the frames L{spy.summarize} leaves out as idle.
    """

    def sleepingLine(self) -> int:
        """
        The line a thread of a L{WorkerPool} with nothing to do sleeps at,
        as py-spy sees it: the innermost Python frame of that thread.
        """
        pool = WorkerPool(1, 1, name="spy-test")
        pool.start()
        self.addCleanup(pool.stop, TIMEOUT)
        thread = pool.threads[0]
        deadline = time.monotonic() + TIMEOUT
        while True:
            self.assertLess(time.monotonic(), deadline)
            frame = sys._current_frames().get(thread.ident or 0)
            # In _sleepers: past the acquire before its loop.
            if frame is not None and pool._sleepers:
                line = linecache.getline(frame.f_code.co_filename, frame.f_lineno)
                # Once asleep, the thread stays on that line.
                if frame.f_code.co_name == "_work" and ".acquire()" in line:
                    return frame.f_lineno
            time.sleep(0.001)

    def test_sleepingThreadIsIdle(self) -> None:
        """
        A WSGI thread asleep waiting for a task is left out; a thread
        running the application is counted.
        """
        leaf = f"WorkerPool._work (twsgi/wsgi/pool.py:{self.sleepingLine()})"
        raw = (
            f"process 1;thread (2);Thread.run (threading.py:982);{leaf} 7\n"
            "process 1;thread (3);Thread.run (threading.py:982);"
            "hello (apps.py:35) 3\n"
        )
        self.assertEqual(
            spy.summarize(raw, 5).splitlines()[0], "3 busy samples (7 idle left out)"
        )
