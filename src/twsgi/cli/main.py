# -*- test-case-name: tests.cli.test_main -*-
"""
C{python -m twsgi} and the C{twsgi} script: twsgi's own runner.

It does what Twisted's C{twist} does for the plugin, on public API only:
parse the options, build the service (L{twsgi.cli.options.makeService}),
start it, begin logging, run the reactor.  The log goes to standard output
in the format of C{--log-format} (see L{twsgi.logs.serverlog.applyLogFormat}),
the signals are twsgi's (L{twsgi.lifecycle.signals}), and so is the exit
status (L{twsgi.lifecycle.drain.ExitStatus}).  Beyond C{twist twsgi}, this
applies C{--reload}.
"""

from __future__ import annotations

import os
import sys
from typing import Protocol, cast

from twisted.logger import (
    FilteringLogObserver,
    ILogFilterPredicate,
    ILogObserver,
    LogBeginner,
    Logger,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
)
from twisted.python import usage

from twsgi.cli.options import Options, makeService
from twsgi.lifecycle.drain import RunningReactor
from twsgi.logs.clock import CallsLater
from twsgi.logs.serverlog import logObserverFactory

_log = Logger(namespace="twsgi")


def _programName(argv0: str) -> str:
    """
    How the user ran us, for the usage line: C{python -m twsgi} or the
    script's name.
    """
    name = os.path.basename(argv0)
    if name == "__main__.py" or not name:
        return "python -m twsgi"
    return name


class _Reactor(RunningReactor, CallsLater, Protocol):
    """
    What this runner does with the reactor: its triggers, running it, and
    (with C{--reload}) a call later.
    """

    def run(self) -> None: ...


class RunnerOptions(usage.Options):
    """
    The options of this runner, which takes none of its own: the plugin's
    options get them as their C{parent}, as C{twist} gives its own.  The log
    goes to C{logFile}, made by C{fileLogObserverFactory} (which
    L{twsgi.logs.serverlog.applyLogFormat} replaces), at C{logLevel} and
    above.
    """

    def __init__(self) -> None:
        usage.Options.__init__(self)
        self["logFile"] = sys.stdout
        self["fileLogObserverFactory"] = logObserverFactory("text")
        self["logFormat"] = "text"
        self["logLevel"] = LogLevel.info


def beginLogging(
    runner: RunnerOptions, beginner: LogBeginner = globalLogBeginner
) -> None:
    """
    Send the global log (and what was logged until now) to the runner's log
    file, leaving out the events below its level.

    @param beginner: the L{LogBeginner} of the global log.
    """
    observer = runner["fileLogObserverFactory"](runner["logFile"])
    predicate = cast(
        ILogFilterPredicate,
        LogLevelFilterPredicate(defaultLogLevel=runner["logLevel"]),
    )
    filtering = cast(ILogObserver, FilteringLogObserver(observer, [predicate]))
    beginner.beginLoggingTo([filtering])


def main(argv: list[str] | None = None) -> None:
    """
    Run twsgi with C{argv} (default: C{sys.argv[1:]}) until its reactor
    stops.

    A usage error, C{--help}, C{--version}, C{--check-config},
    C{--print-config} and an operator's mistake end the process while the
    options are parsed or the service is built (L{SystemExit}).
    """
    args = sys.argv[1:] if argv is None else argv
    Options.program = _programName(sys.argv[0])  # type: ignore[attr-defined]
    options = Options()
    runner = RunnerOptions()
    # makeService reads the runner's options where twist's would be.
    options.parent = runner
    # This runner applies --reload itself (see below): no warning that it
    # does not apply.
    options.twsgiMain = True  # type: ignore[attr-defined]
    options.parseOptions(args)
    from twisted.internet import reactor as installed

    reactor = cast(_Reactor, installed)
    # Before makeService applies --chdir.
    started = os.getcwd()
    service = makeService(options, reactor)
    if getattr(options, "reloading", False):
        from twsgi.process.reload import (
            reloadIfChangedWhileStarting,
            startReloader,
            stopIfUnserved,
        )

        reloader = startReloader(args, directory=started)
        reloadIfChangedWhileStarting(reactor, reloader)
        stopIfUnserved(reactor, service, reloader)
    service.startService()
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    beginLogging(runner)
    # The line twist's runner writes too: the reactor runs from here on.
    _log.info("Starting reactor...")
    reactor.run()


__all__ = ["RunnerOptions", "beginLogging", "main"]
