"""
Test helpers: request bodies whose temporary file fails, as on a full disk.
"""

from __future__ import annotations

import errno
import io
import os
from typing import Any


class FullFile(io.BytesIO):
    """
    A request body's file on a full disk: every write fails.
    """

    def write(self, data: Any) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
