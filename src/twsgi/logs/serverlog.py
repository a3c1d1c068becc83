# -*- test-case-name: tests.logs.test_serverlog -*-
"""
The server's own log (C{--log-format json|text}): L{twisted.logger} events
written as text lines, or as one JSON object per line.

Twisted's own C{jsonFileLogObserver} writes a record separator and the raw
event (format strings, not messages), which log collectors do not expect.
L{jsonLinesLogObserver} writes what they do expect: C{time}, C{level},
C{namespace}, C{message}, the event's own typed fields, and C{traceback}
when there is a failure.

Under C{twsgi}, C{python -m twsgi} and C{twist twsgi}, the plugin applies
the setting to the runner's log before it begins (L{applyLogFormat}).
C{twistd} makes its log observer before it asks the plugin for its service:
there the log is twistd's text, and C{--logger
twsgi.logs.serverlog.jsonLogObserver} gives JSON lines.

Twisted's listening ports log legacy lines of their own that nothing can turn
off ("TwsgiSite starting on 8000", "(TCP Port 8000 Closed)"); twsgi logs
"listening on" and "stopped listening" instead.  The observers made here
leave them out, and L{quietPortLines} puts the runner's own log file (that of
C{twistd}, or of a C{.tac} file) behind the same filter.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, MutableMapping
from typing import IO, cast

from twisted.logger import (
    FileLogObserver,
    FilteringLogObserver,
    ILogFilterPredicate,
    ILogObserver,
    LogEvent,
    LogLevel,
    LogPublisher,
    PredicateResult,
    formatEvent,
    globalLogPublisher,
    textFileLogObserver,
)

Observer = Callable[[LogEvent], None]
"""
A log observer: a callable of one L{twisted.logger} event.
"""

# The lines every listening port logs through Twisted's legacy log, whatever
# its factory's noisy flag: "TwsgiSite starting on 8000",
# "(TCP Port 8000 Closed)".  twsgi logs its own "listening on" and "stopped
# listening" lines.
_PORT_NOISE = re.compile(
    r"\S+(?: \(\w+\))? starting on .+|\((?:TCP|TLS|UNIX) Port .+ Closed\)", re.S
)


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def eventAsJSON(event: LogEvent) -> str:
    """
    One L{twisted.logger} event as a JSON line (with its newline).
    """
    logTime = event.get("log_time") or 0.0
    level = event.get("log_level")
    fields: dict[str, object] = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(logTime))
        + ".%06dZ" % int((logTime % 1) * 1_000_000),
        "level": getattr(level, "name", "info"),
        "namespace": event.get("log_namespace", ""),
        "message": formatEvent(event),
    }
    for key, value in event.items():
        if key.startswith("log_") or key in fields or key == "format":
            continue
        fields[key] = _jsonable(value)
    failure = event.get("log_failure")
    if failure is not None:
        try:
            fields["traceback"] = failure.getTraceback()
        except BaseException:
            fields["traceback"] = repr(failure)
    return json.dumps(fields, ensure_ascii=True, separators=(",", ":")) + "\n"


def jsonLinesLogObserver(outFile: IO[str]) -> FileLogObserver:
    """
    An observer writing one JSON object per event per line to C{outFile}.
    """
    return FileLogObserver(outFile, eventAsJSON)


def _notPortNoise(event: LogEvent) -> PredicateResult:
    if event.get("log_namespace") == "log_legacy" and _PORT_NOISE.fullmatch(
        str(event.get("log_text", ""))
    ):
        return PredicateResult.no
    if "log_format" not in event and "log_failure" not in event:
        # Nothing to say (L{quietPortLines}' probe, say).
        return PredicateResult.no
    return PredicateResult.maybe


class _WithoutPortNoise(FilteringLogObserver):
    """
    An observer behind the filter of Twisted's legacy port lines.
    """

    def __init__(self, observer: Observer) -> None:
        # Casts: Twisted types these with its zope interfaces, which mypy
        # does not check structurally; a callable of an event provides both.
        predicates = [cast(ILogFilterPredicate, _notPortNoise)]
        FilteringLogObserver.__init__(self, cast(ILogObserver, observer), predicates)


def _filtered(observer: Observer) -> ILogObserver:
    """
    C{observer} behind the filter of Twisted's legacy port lines, typed as
    the L{ILogObserver} it provides.
    """
    return cast(ILogObserver, _WithoutPortNoise(observer))


def withoutPortNoise(
    factory: Callable[[IO[str]], Observer],
) -> Callable[[IO[str]], ILogObserver]:
    """
    Wrap a file log observer factory so that its observers leave out the
    legacy lines of Twisted's listening ports.
    """

    def make(outFile: IO[str]) -> ILogObserver:
        return _filtered(factory(outFile))

    return make


def logObserverFactory(logFormat: str) -> Callable[[IO[str]], ILogObserver]:
    """
    The file log observer factory for a C{--log-format} setting: twsgi's
    JSON lines or Twisted's text lines, without Twisted's legacy port lines.
    """
    if logFormat == "json":
        return withoutPortNoise(jsonLinesLogObserver)
    return withoutPortNoise(textFileLogObserver)


def jsonLogObserver() -> ILogObserver:
    """
    For C{twistd --logger twsgi.logs.serverlog.jsonLogObserver}: JSON lines on
    standard output.
    """
    return logObserverFactory("json")(sys.stdout)


def applyLogFormat(
    runnerOptions: MutableMapping[str, object] | None,
    logFormat: str,
    observer: Observer | None = None,
) -> bool:
    """
    Make the runner whose options are C{runnerOptions} write the server log
    as C{logFormat} says, if it has not begun logging yet: C{twist} and
    twsgi's own runner (C{twsgi}, C{python -m twsgi}: L{twsgi.cli.main}) make
    their file log observer from their C{fileLogObserverFactory} option once
    the plugin made its service.
    (Left alone, C{twist} writes Twisted's internal event JSON whenever its
    output is not a terminal: under systemd, for one.)

    @param runnerOptions: the runner's options (the parent of the plugin's),
        or C{None}.
    @param observer: if given, the runner logs to this observer instead of
        its file (a worker process sends its log to its supervisor).
    @return: whether the format is applied; C{False} under C{twistd}, which
        made its observer already.
    """
    if runnerOptions is None or "fileLogObserverFactory" not in runnerOptions:
        return False
    if observer is None:
        runnerOptions["fileLogObserverFactory"] = logObserverFactory(logFormat)
    else:
        runnerOptions["fileLogObserverFactory"] = lambda outFile: _filtered(observer)
    runnerOptions["logFormat"] = logFormat
    return True


def quietPortLines(publisher: LogPublisher = globalLogPublisher) -> None:
    """
    Put every file log observer of C{publisher} (the file or standard output
    that C{twistd} writes its log to) behind the filter of Twisted's legacy
    port lines; other observers (a test's, a log shipper's) are left alone.
    Called before listening, once the runner has begun logging.

    A publisher does not list its observers, but L{ILogObserver} documents
    C{log_trace}: each publisher that forwards an event with that key adds
    C{(publisher, observer)} to it.  One probe event, which says nothing and
    so is written by no file observer, finds them.
    """
    trace: list[tuple[object, ILogObserver]] = []
    publisher(
        {
            "log_trace": trace,
            "log_level": LogLevel.debug,
            "log_namespace": __name__,
            "log_time": time.time(),
        }
    )
    for source, observer in trace:
        if source is publisher and isinstance(observer, FileLogObserver):
            publisher.removeObserver(observer)
            publisher.addObserver(_filtered(observer))


def parseLogFormat(value: str) -> str:
    """
    Check C{--log-format}: C{text} or C{json}.
    """
    lowered = value.strip().lower()
    if lowered not in ("text", "json"):
        raise ValueError(f"{value!r} is not 'text' or 'json'")
    return lowered


__all__ = [
    "applyLogFormat",
    "eventAsJSON",
    "jsonLinesLogObserver",
    "jsonLogObserver",
    "logObserverFactory",
    "parseLogFormat",
    "quietPortLines",
    "withoutPortNoise",
]
