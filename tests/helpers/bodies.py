"""
Test helpers: request bodies whose temporary file fails, as on a full disk,
and a process out of file descriptors (L{noDescriptorsLeft}).
"""

from __future__ import annotations

import errno
import io
import os
import resource
from collections.abc import Callable
from typing import Any

from twisted.trial.unittest import SynchronousTestCase


class FullFile(io.BytesIO):
    """
    A request body's file on a full disk: every write fails.
    """

    def write(self, data: Any) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class FailingFiles:
    """
    The ways a request body's temporary file fails (see L{ways}); the files
    made are kept in C{made}.
    """

    def __init__(self) -> None:
        self.made: list[FullFile] = []

    def full(self, *args: object) -> FullFile:
        """
        A file on a full disk.
        """
        self.made.append(FullFile())
        return self.made[-1]

    def noDescriptor(self, *args: object) -> FullFile:
        """
        No file: no file descriptor is left.
        """
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

    def ways(self) -> list[tuple[Callable[..., FullFile], str, int]]:
        """
        How to make a file that fails, the reason its failure gives, and the
        status that answers its request (507 out of storage, 503 out of
        descriptors).
        """
        return [
            (self.full, os.strerror(errno.ENOSPC), 507),
            (self.noDescriptor, os.strerror(errno.EMFILE), 503),
        ]


def noDescriptorsLeft(case: SynchronousTestCase) -> Callable[[], None]:
    """
    Leave this process no file descriptor to open until C{case} ends or the
    returned function is called (its soft C{RLIMIT_NOFILE} lowered to 1,
    below every descriptor it has open), as a server out of descriptors.

    @return: gives the descriptors back (at once; the test's end does too).
    """
    limits = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1, limits[1]))

    def restore() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, limits)

    case.addCleanup(restore)
    return restore
