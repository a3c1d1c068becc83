"""
Shared settings of the load-balancer integration tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from tests.helpers.server import ROOT

CLIENT = "127.0.0.2"
"""
The load's source address: not the address HAProxy connects from, so the
test can tell the real client from the proxy.
"""


def findProgram(program: str, package: str | None = None) -> str:
    """
    The path of C{program}, installing Debian's C{package} (by default the
    program's name) with C{scripts/ensure-package} first if it is missing:
    CI starts from a clean machine, and a test that needs it must not be
    skipped there.
    """
    path = shutil.which(program, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if path is not None:
        return path
    result = subprocess.run(
        [
            "bash",
            os.path.join(ROOT, "scripts", "ensure-package"),
            package or program,
            program,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{program} is missing and scripts/ensure-package could not install "
            f"it:\n{result.stdout}{result.stderr}"
        )
    return result.stdout.strip().splitlines()[-1]
