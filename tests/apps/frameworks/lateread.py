"""
What the framework views that read their body after the client left share.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable


def readLate(release: str, read: Callable[[], bytes]) -> None:
    """
    Create the file C{release + ".started"}, wait (at most 10 seconds) until
    the file C{release} exists, then call C{read} and write the length and
    SHA-256 of what it returned to C{release + ".read"}.
    """
    open(release + ".started", "w").close()
    deadline = time.monotonic() + 10
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.01)
    data = read()
    # Written whole, then renamed: the test reads the file as soon as it
    # exists, and would otherwise read it empty.
    with open(release + ".read.part", "w") as f:
        f.write(f"{len(data)} {hashlib.sha256(data).hexdigest()}")
    os.replace(release + ".read.part", release + ".read")
