"""
Tests for L{twsgi.logs.files}: rotation, reopening and the C{SIGUSR1} handler.
"""

from __future__ import annotations

import errno
import os
from typing import Any

from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.bodies import FullFile
from tests.helpers.records import RECORD
from twsgi.config.settings import SETTINGS_BY_NAME
from twsgi.logs.accesslog import FileAccessLog, formatCombined, openAccessLog
from twsgi.logs.files import (
    WRITE_ERROR_EVERY,
    SharedDailyLogFile,
    SharedLogFile,
    openLogFile,
    parseRotate,
    reopenAll,
)


class ParseRotateTests(SynchronousTestCase):
    """
    Tests for L{parseRotate}.
    """

    def test_values(self) -> None:
        """
        Sizes take K, M and G suffixes (powers of 1024); C{daily} and C{none}
        are words.
        """
        table = {
            "none": None,
            "daily": "daily",
            "DAILY": "daily",
            "4096": 4096,
            "100K": 100 * 1024,
            "50m": 50 * 1024**2,
            "1GiB": 1024**3,
            "2 MB": 2 * 1024**2,
        }
        for text, value in table.items():
            self.assertEqual(parseRotate(text), value, text)

    def test_bad(self) -> None:
        """
        Anything else, or a size under 1K, is refused.
        """
        for text in ["weekly", "-5", "10X", "12", "1.5M"]:
            self.assertRaises(ValueError, parseRotate, text)

    def test_setting(self) -> None:
        """
        The setting uses L{parseRotate}.
        """
        self.assertIs(SETTINGS_BY_NAME["access_log_rotate"].convert, parseRotate)


class LogFileTests(SynchronousTestCase):
    """
    Tests for L{openLogFile} and L{reopenAll}.
    """

    def setUp(self) -> None:
        self.directory = self.mktemp()
        os.makedirs(self.directory)
        self.path = os.path.join(self.directory, "access.log")

    def test_rotateBySize(self) -> None:
        """
        Past the size, the file is renamed C{.1} and a new one started.
        """
        log = openAccessLog(self.path, rotate=1024)
        assert log is not None
        for _ in range(20):
            log(RECORD)
        self.assertTrue(os.path.exists(self.path + ".1"))
        lines = []
        for name in sorted(os.listdir(self.directory), reverse=True):
            with open(os.path.join(self.directory, name)) as f:
                lines.extend(f.read().splitlines())
            if name != "access.log":
                self.assertGreaterEqual(os.path.getsize(f.name), 1024)
        # No line lost or split across files.
        self.assertEqual(lines, [formatCombined(RECORD)] * 20)

    def test_daily(self) -> None:
        """
        C{daily} opens a L{SharedDailyLogFile}, a size a L{SharedLogFile}
        that rotates at that size, and C{None} one that never rotates.
        """
        daily = openLogFile(self.path, "daily")
        self.addCleanup(daily.close)
        self.assertIsInstance(daily, SharedDailyLogFile)
        for rotate in (2048, None):
            f = openLogFile(self.path, rotate)
            self.addCleanup(f.close)
            self.assertEqual((type(f), f.rotateLength), (SharedLogFile, rotate))

    def test_reopen(self) -> None:
        """
        After the file is moved away, reopening starts a new file at the
        path; lines before go to the moved file.
        """
        log = openAccessLog(self.path)
        assert isinstance(log, FileAccessLog)
        log(RECORD)
        os.rename(self.path, self.path + ".old")
        log(RECORD)
        reopenAll([log.file])
        log(RECORD)
        with open(self.path + ".old") as f:
            self.assertEqual(len(f.read().splitlines()), 2)
        with open(self.path) as f:
            self.assertEqual(len(f.read().splitlines()), 1)

    def test_reopenFailure(self) -> None:
        """
        A file that cannot be reopened is logged, and the others are still
        reopened.
        """

        class Broken:
            path = "/nowhere"

            def reopen(self) -> None:
                raise OSError(13, "Permission denied")

        reopened = []

        class Fine:
            def reopen(self) -> None:
                reopened.append(True)

        reopenAll([Broken(), object(), Fine()])
        self.assertEqual(reopened, [True])
        self.assertEqual(len(self.flushLoggedErrors()), 0)

    def test_reopenFailureKeepsWriting(self) -> None:
        """
        A log file that cannot be reopened (its directory was moved away)
        goes on writing to the file it had, is not counted as reopened, and
        is reopened by the next try once its directory is back.
        """
        log = openAccessLog(self.path)
        assert isinstance(log, FileAccessLog)
        log(RECORD)
        moved = self.directory + ".moved"
        os.rename(self.directory, moved)
        with open(self.directory, "w"):
            pass
        with capturedLogs() as events:
            reopenAll([log.file])
        log(RECORD)
        self.assertEqual(
            [formatEvent(e) for e in events][-1:],
            ["twsgi got SIGUSR1: reopened 0 of 1 log file(s)"],
        )
        os.remove(self.directory)
        os.rename(moved, self.directory)
        reopenAll([log.file])
        log(RECORD)
        with open(self.path) as f:
            self.assertEqual(len(f.read().splitlines()), 3)
        os.rename(self.path, self.path + ".old")
        reopenAll([log.file])
        log(RECORD)
        with open(self.path) as f:
            self.assertEqual(len(f.read().splitlines()), 1)


class SharedLogFileTests(SynchronousTestCase):
    """
    Several processes (the workers of C{--workers N}) write one log file:
    each opens it with L{openLogFile}, and no line is lost, overwritten or
    left behind in a file another process rotated.
    """

    def setUp(self) -> None:
        self.directory = self.mktemp()
        os.makedirs(self.directory)
        self.path = os.path.join(self.directory, "access.log")

    def open(self, rotate: int | str | None = None) -> Any:
        f = openLogFile(self.path, rotate)
        self.addCleanup(f.close)
        return f

    def read(self, name: str = "access.log") -> list[str]:
        with open(os.path.join(self.directory, name)) as f:
            return f.read().splitlines()

    def test_diskFull(self) -> None:
        """
        A line that cannot be written (the disk is full) is lost without
        an exception: the server log says so in one error line at the first
        loss, then at most every L{WRITE_ERROR_EVERY} seconds with how many
        were lost, and in one line once a line is written again.
        """
        f = self.open()
        now = [0.0]
        f.seconds = lambda: now[0]
        written = f.file
        f.file = FullFile()
        full = (
            f"twsgi cannot write {f.path}: {os.strerror(errno.ENOSPC)}; "
            "{} line(s) lost (said at most every 60 s)"
        )
        with capturedLogs() as events:
            f.write("lost 1\n")
            f.write("lost 2\n")
            now[0] = WRITE_ERROR_EVERY - 0.1
            f.write("lost 3\n")
            now[0] = WRITE_ERROR_EVERY
            f.write("lost 4\n")
            f.write("lost 5\n")
            f.file = written
            f.write("kept\n")
            f.write("kept too\n")
        self.assertEqual(
            [formatEvent(e) for e in events],
            [
                full.format(1),
                full.format(3),
                f"twsgi writes {f.path} again (1 more line(s) lost)",
            ],
        )
        self.assertEqual(self.read(), ["kept", "kept too"])

    def test_appends(self) -> None:
        """
        Lines written through two opened copies of the file all land, in
        the order written, instead of overwriting each other.
        """
        first, second = self.open(), self.open()
        for i in range(6):
            (first, second)[i % 2].write(f"line {i}\n")
        self.assertEqual(self.read(), [f"line {i}" for i in range(6)])

    def test_rotateBySize(self) -> None:
        """
        With a size, the file rotates when its size on disk (all writers
        together) passes it, and a copy that finds the file rotated by the
        other reopens it instead of rotating again: every line is kept once
        and every rotated file is full.
        """
        first, second = self.open(1024), self.open(1024)
        line = "x" * 99
        for i in range(40):
            (first, second)[i % 2].write(f"{line}{i % 10}\n")
        names = sorted(os.listdir(self.directory), reverse=True)
        self.assertEqual(
            names, ["access.log.3", "access.log.2", "access.log.1", "access.log"]
        )
        lines = [text for name in names for text in self.read(name)]
        self.assertEqual(lines, [f"{line}{i % 10}" for i in range(40)])
        for name in names[:-1]:
            self.assertEqual(
                os.path.getsize(os.path.join(self.directory, name)), 11 * 101
            )

    def test_daily(self) -> None:
        """
        At a new day, the first copy to write rotates the file; the other
        then writes to the new file, not to the rotated one.
        """
        first, second = self.open("daily"), self.open("daily")
        first.write("old\n")
        first.lastDate = second.lastDate = (2000, 1, 1)
        first.write("new 1\n")
        second.write("new 2\n")
        self.assertEqual(self.read("access.log.2000_1_1"), ["old"])
        self.assertEqual(self.read(), ["new 1", "new 2"])

    def test_modeKept(self) -> None:
        """
        A file rotated by size is replaced by one with the permissions the
        first one had.
        """
        with open(self.path, "w"):
            pass
        os.chmod(self.path, 0o600)
        f = self.open(1024)
        for _ in range(3):
            f.write("x" * 600 + "\n")
        self.assertEqual(os.listdir(self.directory).count("access.log.1"), 1)
        self.assertEqual(os.stat(self.path).st_mode & 0o777, 0o600)

    def test_dailyTargetTaken(self) -> None:
        """
        When the day's rotated name is taken already, the file is not
        rotated: lines go on to the file at the path, and nothing is
        overwritten.
        """
        f = self.open("daily")
        f.write("yesterday\n")
        with open(self.path + ".2000_1_1", "w") as taken:
            taken.write("taken\n")
        f.lastDate = (2000, 1, 1)
        f.write("today\n")
        self.assertEqual(self.read("access.log.2000_1_1"), ["taken"])
        self.assertEqual(self.read(), ["yesterday", "today"])
