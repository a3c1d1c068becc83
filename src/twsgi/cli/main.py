# -*- test-case-name: tests.cli.test_options -*-
"""
C{python -m twsgi} and the C{twsgi} script: run the plugin under Twisted's
C{twist} runner, so the options, logging and signals are exactly those of
C{twist twsgi} (the plugin applies C{--log-format} to both: see
L{twsgi.logs.serverlog.applyLogFormat}).  Beyond C{twist}, this applies
C{--reload}.
"""

from __future__ import annotations

import os
import sys


def _programName(argv0: str) -> str:
    """
    How the user ran us, for the usage line: C{python -m twsgi} or the
    script's name.
    """
    name = os.path.basename(argv0)
    if name == "__main__.py" or not name:
        return "python -m twsgi"
    return name


def main(argv: list[str] | None = None) -> None:
    """
    Run twsgi with C{argv} (default: C{sys.argv[1:]}).

    The steps of L{Twist.main}, with C{--reload} applied once the service
    is made.
    """
    from twisted.application.twist._twist import Twist

    args = sys.argv[1:] if argv is None else argv
    from twsgi.cli.options import Options

    Options.program = _programName(sys.argv[0])  # type: ignore[attr-defined]
    options = Twist.options([sys.argv[0], "twsgi", *args])
    subOptions = options.subOptions
    # This runner applies --reload itself (see below): no warning that it
    # does not apply.
    subOptions.twsgiMain = True
    service = Twist.service(
        plugin=options.plugins[str(options.subCommand)], options=subOptions
    )
    config = getattr(subOptions, "resolved", None)
    if config is not None and config.reload:
        from twsgi.process.reload import startReloader

        startReloader(args)
    Twist.startService(options["reactor"], service)
    Twist.run(options)


__all__ = ["main"]
