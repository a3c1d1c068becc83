# -*- test-case-name: tests.logs.test_files -*-
"""
Log files that rotate (C{--access-log-rotate SIZE|daily}) and reopen on
C{SIGUSR1} (see L{twsgi.lifecycle.signals}), for C{logrotate}'s
C{postrotate} or any tool that moves files under our feet.  Several
processes may write one file.  twsgi owns this small piece because
L{twisted.python.logfile} has no public way to open a file for appending.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import time
from collections.abc import Iterable
from typing import BinaryIO

from twisted.logger import Logger

from twsgi.logs.limited import Throttle

_log = Logger(namespace="twsgi")

WRITE_ERROR_EVERY = 60.0
"""
The shortest time, in seconds, between two lines saying that a log file
cannot be written (nginx says it at most once a minute too).
"""

_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parseRotate(value: str) -> int | str | None:
    """
    Parse C{--access-log-rotate}: C{none}, C{daily}, or a size such as
    C{10485760}, C{100K}, C{50M}, C{1G} (powers of 1024).

    @return: C{None}, C{"daily"} or the size in bytes.
    @raise ValueError: for anything else.
    """
    lowered = value.strip().lower()
    if lowered in ("none", "never", ""):
        return None
    if lowered == "daily":
        return "daily"
    match = _SIZE.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not 'daily', 'none' or a size like 100M")
    size = int(match.group(1)) * _UNITS[(match.group(2) or "")[:1].lower()]
    if size < 1024:
        raise ValueError(f"{value!r}: rotate at 1K or more")
    return size


class SharedLogFile:
    """
    A log file that several processes may write at once (the workers of
    C{--workers N} all write the same access log), rotated by size or never.

    It is opened for appending and unbuffered, so that each line lands whole
    at the end of the file whoever else writes it.  A process that finds the
    file already rotated by another reopens it instead of rotating it again.
    Rotated files get Twisted's names (C{path.1}, the older ones shifting to
    C{.2}, C{.3}...).  Every method is called in the I/O thread.

    @ivar path: the absolute path of the file.
    @ivar rotateLength: the size on disk (every process's lines counted) at
        which the file rotates, or C{None} for never.
    @ivar defaultMode: the permissions of the file when it was first opened
        (C{None} if it did not exist), given to every file opened later.
    @ivar seconds: the clock (C{time.monotonic}).
    """

    def __init__(self, path: str, rotateLength: int | None = None) -> None:
        self.path = os.path.abspath(path)
        self.directory = os.path.dirname(self.path)
        self.rotateLength = rotateLength
        self.defaultMode: int | None = None
        self.seconds = time.monotonic
        # Lines lost, told in the server log (see write).
        self._losses = Throttle(lambda: self.seconds(), WRITE_ERROR_EVERY)
        with contextlib.suppress(OSError):
            self.defaultMode = stat.S_IMODE(os.stat(self.path).st_mode)
        self.file = self.openFile()

    def openFile(self) -> BinaryIO:
        """
        Open the file at C{path} for appending, creating it with
        L{defaultMode} if it is missing.

        @raise OSError: if it cannot be opened.
        """
        file = open(self.path, "ab", 0)
        if self.defaultMode is not None:
            with contextlib.suppress(OSError):  # /dev/null or not ours
                os.chmod(self.path, self.defaultMode)
        return file

    def write(self, data: str | bytes) -> None:
        """
        Write C{data} (text is encoded as UTF-8), after rotating the file if
        it is due.  If it cannot be written (its disk is full), it is lost:
        the server log says so at the first loss, then at most every
        L{WRITE_ERROR_EVERY} seconds while losses go on, with how many lines
        were lost, and once more when a line is written again.
        """
        try:
            if self.shouldRotate():
                self.rotate()
            self.file.write(data.encode("utf-8") if isinstance(data, str) else data)
        except OSError as error:
            self._notWritten(error)
            return
        lost = self._losses.ended()
        if lost is not None:
            _log.info(
                "twsgi writes {path} again ({lost} more line(s) lost)",
                path=self.path,
                lost=lost,
            )

    def _notWritten(self, error: OSError) -> None:
        """
        A line could not be written: count it, and say so (see L{write}).
        """
        lost = self._losses.happened()
        if lost is None:
            return
        _log.error(
            "twsgi cannot write {path}: {error}; {lost} line(s) lost "
            "(said at most every {every:g} s)",
            path=self.path,
            error=error.strerror or error,
            lost=lost,
            every=WRITE_ERROR_EVERY,
        )

    def flush(self) -> None:
        """
        Nothing to do: the file is unbuffered.
        """

    def close(self) -> None:
        """
        Close the file; it cannot be written any more.
        """
        self.file.close()

    def reopen(self) -> None:
        """
        Open the file at C{path} again, then close the one this process had.
        If it cannot be opened, the old one stays in use.

        @raise OSError: if the file cannot be opened.
        """
        old, self.file = self.file, self.openFile()
        old.close()

    def shouldRotate(self) -> bool:
        """
        Whether the file on disk has reached L{rotateLength}.
        """
        if not self.rotateLength:
            return False
        return os.fstat(self.file.fileno()).st_size >= self.rotateLength

    def rotate(self) -> None:
        """
        Rotate the file, or reopen it if another process already did.  If
        the directory or the file is not writable, go on writing the file.
        """
        if self.rotatedAway():
            self.reopen()
            return
        if not (os.access(self.directory, os.W_OK) and os.access(self.path, os.W_OK)):
            return
        if self.moveAside():
            self.reopen()

    def rotatedAway(self) -> bool:
        """
        Whether the file at C{path} is no longer the one this process writes.
        """
        try:
            mine = os.fstat(self.file.fileno())
            there = os.stat(self.path)
        except OSError:
            return True
        return (mine.st_dev, mine.st_ino) != (there.st_dev, there.st_ino)

    def moveAside(self) -> bool:
        """
        Rename the file to C{path.1}, after shifting C{path.N} to
        C{path.N+1} from the oldest down.

        @return: whether the file was moved (and must be reopened).
        """
        for n in sorted(self.rotatedNumbers(), reverse=True):
            os.rename(f"{self.path}.{n}", f"{self.path}.{n + 1}")
        os.rename(self.path, f"{self.path}.1")
        return True

    def rotatedNumbers(self) -> list[int]:
        """
        The numbers N of the rotated files C{path.N} there are.
        """
        prefix = os.path.basename(self.path) + "."
        return [
            int(name[len(prefix) :])
            for name in os.listdir(self.directory)
            if name.startswith(prefix)
            and name[len(prefix) :].isdigit()
            and int(name[len(prefix) :])
        ]


class SharedDailyLogFile(SharedLogFile):
    """
    A L{SharedLogFile} rotated at the first write of each new day (local
    time), to Twisted's name C{path.YYYY_M_D} of the day it holds.

    @ivar lastDate: the C{(year, month, day)} of the last write, or of the
        file's last change when it was opened.
    """

    lastDate: tuple[int, int, int]

    def openFile(self) -> BinaryIO:
        file = super().openFile()
        self.lastDate = self.toDate(os.fstat(file.fileno()).st_mtime)
        return file

    @staticmethod
    def toDate(when: float | None = None) -> tuple[int, int, int]:
        """
        The local C{(year, month, day)} of C{when}, or of now.
        """
        year, month, day = time.localtime(when)[:3]
        return (year, month, day)

    def write(self, data: str | bytes) -> None:
        super().write(data)
        # max(): the clock may step back to yesterday (NTP).
        self.lastDate = max(self.lastDate, self.toDate())

    def shouldRotate(self) -> bool:
        return self.toDate() > self.lastDate

    def moveAside(self) -> bool:
        """
        Rename the file to C{path.YYYY_M_D} of L{lastDate}, unless a file of
        that name is there already.
        """
        rotated = f"{self.path}.{'_'.join(map(str, self.lastDate))}"
        if os.path.exists(rotated):
            return False
        os.rename(self.path, rotated)
        return True


def openLogFile(path: str, rotate: int | str | None = None) -> SharedLogFile:
    """
    Open (create, or append to) a log file at C{path}.

    @param rotate: C{None} (never rotate; reopen still works), C{"daily"}, or
        a size in bytes after which the file is renamed C{path.1} (older ones
        shift to C{.2}, C{.3}...).
    @raise OSError: if the file cannot be opened.
    """
    if rotate == "daily":
        return SharedDailyLogFile(path)
    if isinstance(rotate, str):
        raise ValueError(f"rotate is a size, 'daily' or None, not {rotate!r}")
    return SharedLogFile(path, rotate)


def reopenAll(files: Iterable[object]) -> None:
    """
    Reopen every log file in C{files} that can be reopened.  Called in the
    I/O thread.
    """
    reopenable = [f for f in files if hasattr(f, "reopen")]
    count = 0
    for f in reopenable:
        try:
            f.reopen()
        except OSError as e:
            _log.error(
                "cannot reopen log file {path}: {error}; still writing to the file "
                "it had",
                path=getattr(f, "path", f),
                error=e.strerror,
            )
        else:
            count += 1
    reopened = f"{count} of {len(reopenable)}" if count < len(reopenable) else count
    _log.info("twsgi got SIGUSR1: reopened {count} log file(s)", count=reopened)


__all__ = [
    "SharedDailyLogFile",
    "SharedLogFile",
    "openLogFile",
    "parseRotate",
    "reopenAll",
]
