# -*- test-case-name: tests.test_reload -*-
"""
C{--reload}: run the server in a worker process that C{hupper} restarts when
one of its source files changes (C{hupper} watches every imported module's
file, with C{watchdog} when it is installed).  For development only.
"""

from __future__ import annotations

from typing import Any


def startReloader(argv: list[str], hupper: Any = None) -> Any:
    """
    In the first process, become the monitor: start a worker running
    C{twsgi._main.main(argv)} and restart it on every change, never
    returning.  In the worker, return the reloader proxy at once.

    @raise SystemExit: with a one-line message if C{hupper} is missing.
    """
    if hupper is None:
        try:
            import hupper as installed
        except ImportError:
            raise SystemExit(
                "twsgi: --reload needs hupper: pip install 'twsgi[reload]'"
            )
        hupper = installed
    return hupper.start_reloader(
        "twsgi._main.main",
        worker_kwargs={"argv": list(argv)},
    )


__all__ = ["startReloader"]
