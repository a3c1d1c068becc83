# -*- test-case-name: tests.http.test_shortage -*-
"""
Pure: what the server answers when it is short of a resource, as it keeps a
request body in a temporary file or opens a static file.  The one mapping
from an L{OSError} to a status, and the C{Retry-After} that every 503 of
twsgi carries (C{--max-pending} refusals too).

=============================== ====== ==========================================
errno                           status why
=============================== ====== ==========================================
EMFILE, ENFILE, ENOMEM, ENOBUFS 503    the process (or the system) is out of file
                                       descriptors or memory: transient overload,
                                       over as connections close; C{Retry-After}
                                       asks the client to come back, and a load
                                       balancer may send the request elsewhere
ENOSPC, EDQUOT, EFBIG           507    no room to store the request body (a full
                                       disk, a quota, the process's file size
                                       limit): RFC 4918 section 11.5 "unable to
                                       store the representation needed to
                                       complete the request"; neither the
                                       client's fault nor an application error,
                                       and without C{Retry-After}: an upload
                                       retried at once fills the disk again
anything else (EIO, EROFS, ...) 500    a fault of the server that waiting does
                                       not mend
=============================== ====== ==========================================

nginx answers 500 to all of these; a 500 tells a load balancer and a client
the request failed for good, where the first two rows are conditions of
this node that pass.
"""

from __future__ import annotations

import errno

RETRY_AFTER = b"1"
"""
The C{Retry-After} of a 503, in seconds.
"""

OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
"""
Errors that mean this process (or the system) is out of file descriptors
or memory for now.
"""

OUT_OF_STORAGE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
"""
Errors that mean a file could not grow: its disk is full, its quota or the
process's file size limit (C{RLIMIT_FSIZE}) reached.
"""


def statusForOSError(error: OSError) -> int:
    """
    The status that answers a request whose body could not be kept, or
    whose static file could not be opened, for C{error} (see the table
    above).
    """
    if error.errno in OUT_OF_RESOURCES:
        return 503
    if error.errno in OUT_OF_STORAGE:
        return 507
    return 500


def retryAfterFields(status: int) -> list[tuple[bytes, bytes]]:
    """
    The C{Retry-After} field an error response of C{status} carries: one
    for a 503 (RFC 9110 section 10.2.3), none otherwise.
    """
    return [(b"Retry-After", RETRY_AFTER)] if status == 503 else []


__all__ = [
    "OUT_OF_RESOURCES",
    "OUT_OF_STORAGE",
    "RETRY_AFTER",
    "retryAfterFields",
    "statusForOSError",
]
