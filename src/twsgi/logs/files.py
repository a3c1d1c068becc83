# -*- test-case-name: tests.logs.test_files -*-
"""
Log files that rotate (C{--access-log-rotate SIZE|daily}, with Twisted's
L{twisted.python.logfile}) and reopen on C{SIGUSR1} (see L{twsgi.lifecycle.signals}),
for C{logrotate}'s C{postrotate} or any tool that moves files under our
feet.
"""

from __future__ import annotations

import os
import re
from typing import Any

from twisted.logger import Logger
from twisted.python.logfile import BaseLogFile, DailyLogFile, LogFile

_log = Logger(namespace="twsgi")

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


class _Shared:
    """
    What makes a Twisted log file safe to share between processes (the
    workers of C{--workers N} all write the same access log): it is opened
    for appending, so that each line lands whole at the end of the file
    whoever else writes it; and a process that finds the file already
    rotated by another reopens it instead of rotating it again.
    """

    path: str
    _file: Any

    def _openFile(self) -> None:
        self.closed = False
        self._file = open(self.path, "ab", 0)

    def _rotatedAway(self) -> bool:
        """
        Whether the file at C{path} is no longer the one this process writes.
        """
        try:
            mine = os.fstat(self._file.fileno())
            there = os.stat(self.path)
        except OSError:
            return True
        return (mine.st_dev, mine.st_ino) != (there.st_dev, there.st_ino)

    def reopen(self) -> None:
        """
        Open the file at C{path} again, then close the one this process had.
        If it cannot be opened, the old one stays in use (Twisted's
        C{reopen} closes it first, and every later write then fails).

        @raise OSError: if the file cannot be opened.
        """
        old = self._file
        self._openFile()
        old.close()

    def rotate(self) -> None:
        if self._rotatedAway():
            self.reopen()  # type: ignore[attr-defined]
        else:
            super().rotate()  # type: ignore[misc]


class SharedLogFile(_Shared, LogFile):
    """
    A L{LogFile} that rotates at its size on disk, which counts every
    process's lines.  Called in the I/O thread.
    """

    def _openFile(self) -> None:
        _Shared._openFile(self)
        self.size = self._file.tell()

    def shouldRotate(self) -> bool:
        if not self.rotateLength:
            return False
        self.size = os.fstat(self._file.fileno()).st_size
        return bool(self.size >= self.rotateLength)


class SharedDailyLogFile(_Shared, DailyLogFile):
    """
    A L{DailyLogFile} that several processes may write.  Called in the I/O
    thread.
    """

    def _openFile(self) -> None:
        _Shared._openFile(self)
        self.lastDate = self.toDate(os.stat(self.path).st_mtime)


def openLogFile(path: str, rotate: int | str | None = None) -> BaseLogFile:
    """
    Open (create, or append to) a log file at C{path}.

    @param rotate: C{None} (never rotate; reopen still works), C{"daily"}, or
        a size in bytes after which the file is renamed C{path.1} (older ones
        shift to C{.2}, C{.3}...).
    @raise OSError: if the file cannot be opened.
    """
    if rotate == "daily":
        return SharedDailyLogFile.fromFullPath(path)
    return SharedLogFile.fromFullPath(path, rotateLength=rotate)


def reopenAll(files: list[Any]) -> None:
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
