# -*- test-case-name: tests.test_serverlog -*-
"""
The server's own log (C{--log-format json|text}): L{twisted.logger} events
written as text lines, or as one JSON object per line.

Twisted's own C{jsonFileLogObserver} writes a record separator and the raw
event (format strings, not messages), which log collectors do not expect.
L{jsonLinesLogObserver} writes what they do expect: C{time}, C{level},
C{namespace}, C{message}, the event's own typed fields, and C{traceback}
when there is a failure.

C{twsgi} and C{python -m twsgi} apply the setting themselves (see
L{twsgi._main}).  Under C{twistd}, pass C{--logger twsgi._serverlog.jsonLogObserver};
under C{twist}, its own C{--log-format json} writes Twisted's format.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from typing import IO, Any

from twisted.logger import (
    FileLogObserver,
    FilteringLogObserver,
    PredicateResult,
    formatEvent,
)

# The lines every listening port logs through Twisted's legacy log, whatever
# its factory's noisy flag: "TwsgiSite starting on 8000",
# "(TCP Port 8000 Closed)".  twsgi logs its own "listening on" and "stopped
# listening" lines.
_PORT_NOISE = re.compile(
    r"\S+(?: \(\w+\))? starting on .+|\((?:TCP|TLS|UNIX) Port .+ Closed\)", re.S
)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def eventAsJSON(event: dict[str, Any]) -> str:
    """
    One L{twisted.logger} event as a JSON line (with its newline).
    """
    logTime = event.get("log_time") or 0.0
    level = event.get("log_level")
    fields: dict[str, Any] = {
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


def jsonLinesLogObserver(outFile: IO[Any]) -> FileLogObserver:
    """
    An observer writing one JSON object per event per line to C{outFile}.
    """
    return FileLogObserver(outFile, eventAsJSON)


def jsonLogObserver() -> FileLogObserver:
    """
    For C{twistd --logger twsgi._serverlog.jsonLogObserver}: JSON lines on
    standard output.
    """
    return jsonLinesLogObserver(sys.stdout)


def _notPortNoise(event: dict[str, Any]) -> PredicateResult:
    if event.get("log_namespace") == "log_legacy" and _PORT_NOISE.fullmatch(
        str(event.get("log_text", ""))
    ):
        return PredicateResult.no
    return PredicateResult.maybe


def withoutPortNoise(factory: Callable[..., Any]) -> Callable[[IO[Any]], Any]:
    """
    Wrap a file log observer factory so that its observers leave out the
    legacy lines of Twisted's listening ports.
    """

    predicates: list[Any] = [_notPortNoise]

    def make(outFile: IO[Any]) -> Any:
        return FilteringLogObserver(factory(outFile), predicates)

    return make


def parseLogFormat(value: str) -> str:
    """
    Check C{--log-format}: C{text} or C{json}.
    """
    lowered = value.strip().lower()
    if lowered not in ("text", "json"):
        raise ValueError(f"{value!r} is not 'text' or 'json'")
    return lowered


__all__ = [
    "eventAsJSON",
    "jsonLinesLogObserver",
    "jsonLogObserver",
    "parseLogFormat",
    "withoutPortNoise",
]
