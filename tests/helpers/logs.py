"""
Making the warnings an application logs, for log tests.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.scripts.twistd import ServerOptions
from twisted.trial.unittest import SynchronousTestCase

from twsgi.cli.options import Options, makeService
from twsgi.testing import SynchronousReactor


def makeWarnings(
    testCase: SynchronousTestCase,
    *argv: str,
    main: bool = True,
    environ: dict[str, str] | None = None,
    twistd: Sequence[str] | None = None,
) -> list[str]:
    """
    Make the service of C{tests.apps.opsapp:app} with C{argv} (and C{environ} as
    the process environment), as C{twsgi.cli.main} does when C{main}, as
    C{twistd} does otherwise.

    @param twistd: if given, C{twistd}'s own options (before the plugin's
        name): the plugin's options are then parsed by C{twistd}'s parser,
        as theirs, and C{main} is ignored.
    @return: the warnings logged meanwhile.
    """
    ours = ["--app", "tests.apps.opsapp:app", "--access-log", "none", *argv]
    if twistd is not None:
        runner = ServerOptions()
        runner.parseOptions([*twistd, "twsgi", *ours])
        options = runner.subOptions
        main = False
    else:
        options = Options()
        options.parseOptions(ours)
    if main:
        options.twsgiMain = True
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    testCase.addCleanup(globalLogPublisher.removeObserver, events.append)
    testCase.patch(os, "environ", dict(environ or {}))
    makeService(options, SynchronousReactor())
    return [formatEvent(e) for e in events if e.get("log_level") == LogLevel.warn]
