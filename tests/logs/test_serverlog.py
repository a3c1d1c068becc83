"""
Tests for L{twsgi.logs.serverlog}: twsgi's JSON lines, C{--log-format} applied
to the runner, and Twisted's legacy port lines left out.
"""

from __future__ import annotations

import io
import json
from typing import Any

from twisted.logger import (
    Logger,
    LogLevel,
    LogPublisher,
    jsonFileLogObserver,
    textFileLogObserver,
)
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from twsgi.logs.serverlog import (
    applyLogFormat,
    eventAsJSON,
    jsonLinesLogObserver,
    jsonLogObserver,
    logObserverFactory,
    parseLogFormat,
    quietPortLines,
)


class JSONLinesTests(SynchronousTestCase):
    """
    Tests for L{jsonLinesLogObserver}.
    """

    def test_event(self) -> None:
        """
        An event is one line with time, level, namespace, the formatted
        message and its own fields, typed when they are JSON values.
        """
        out = io.StringIO()
        log = Logger(namespace="twsgi", observer=jsonLinesLogObserver(out))
        log.warn(
            "listening on {address} ({n})",
            address="127.0.0.1:8000",
            n=3,
            thing=object(),
        )
        lines = out.getvalue().splitlines()
        self.assertEqual(len(lines), 1)
        fields = json.loads(lines[0])
        self.assertEqual(fields["level"], "warn")
        self.assertEqual(fields["namespace"], "twsgi")
        self.assertEqual(fields["message"], "listening on 127.0.0.1:8000 (3)")
        self.assertEqual(fields["address"], "127.0.0.1:8000")
        self.assertEqual(fields["n"], 3)
        self.assertTrue(fields["thing"].startswith("<object"))
        self.assertRegex(fields["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")

    def test_failure(self) -> None:
        """
        A failure's traceback is a field of the same line, not extra lines.
        """
        try:
            raise ZeroDivisionError("boom")
        except ZeroDivisionError:
            failure = Failure()
        line = eventAsJSON(
            {
                "log_format": "app raised\nbadly",
                "log_level": LogLevel.critical,
                "log_namespace": "x",
                "log_time": 0.5,
                "log_failure": failure,
            }
        )
        self.assertEqual(line.count("\n"), 1)
        fields = json.loads(line)
        self.assertIn("ZeroDivisionError", fields["traceback"])
        self.assertEqual(fields["message"], "app raised\nbadly")
        self.assertEqual(fields["time"], "1970-01-01T00:00:00.500000Z")

    def test_twistdFactory(self) -> None:
        """
        C{twistd --logger twsgi.logs.serverlog.jsonLogObserver} gets an observer.
        """
        self.assertTrue(callable(jsonLogObserver()))


class LogFormatSettingTests(SynchronousTestCase):
    """
    Tests for C{--log-format}.
    """

    def test_parse(self) -> None:
        """
        C{text} and C{json} are accepted in any case; nothing else is.
        """
        self.assertEqual(parseLogFormat("JSON"), "json")
        self.assertEqual(parseLogFormat("text"), "text")
        self.assertRaises(ValueError, parseLogFormat, "xml")

    def test_factory(self) -> None:
        """
        L{logObserverFactory} writes twsgi's JSON lines or Twisted's text.
        """
        for logFormat, expected in (("json", '"message":"hello"'), ("text", "] hello")):
            out = io.StringIO()
            observer = logObserverFactory(logFormat)(out)
            observer({"log_format": "hello", "log_time": 0.0, "log_namespace": "x"})
            self.assertIn(expected, out.getvalue())

    def test_noLegacyPortLines(self) -> None:
        """
        Twisted's legacy "<Factory> starting on N" and "(TCP Port N Closed)"
        lines are left out (twsgi logs its own "listening on" line); other
        legacy lines are kept.
        """
        for logFormat in ("text", "json"):
            out = io.StringIO()
            observer = logObserverFactory(logFormat)(out)
            for text in (
                "TwsgiSite starting on 42433",
                "TwsgiSite (TLS) starting on 8443",
                "TwsgiSite starting on '/run/app.sock'",
                "(TCP Port 42433 Closed)",
                "(TLS Port 8443 Closed)",
                "(UNIX Port /run/app.sock Closed)",
                "an application's own line",
            ):
                observer(
                    {
                        "log_format": "{log_text}",
                        "log_text": text,
                        "log_namespace": "log_legacy",
                        "log_time": 0.0,
                    }
                )
            text = out.getvalue()
            self.assertNotIn("starting on", text)
            self.assertNotIn("Closed", text)
            self.assertIn("an application's own line", text)


def _portLine(text: str) -> dict[str, Any]:
    """
    A legacy line as Twisted's listening ports log it.
    """
    return {
        "log_format": "{log_text}",
        "log_text": text,
        "log_namespace": "log_legacy",
        "log_system": "-",
        "log_level": LogLevel.info,
        "log_time": 0.0,
    }


class QuietPortLinesTests(SynchronousTestCase):
    """
    L{quietPortLines} leaves Twisted's legacy port lines out of the log file
    a runner (C{twistd}, a C{.tac} file) already writes to.
    """

    def test_fileObserver(self) -> None:
        """
        A file observer of the publisher no longer writes the port lines, and
        still writes everything else; the probe writes nothing.
        """
        out = io.StringIO()
        publisher = LogPublisher(textFileLogObserver(out))
        quietPortLines(publisher)
        quietPortLines(publisher)
        publisher(_portLine("TwsgiSite starting on 8000"))
        publisher(_portLine("(TCP Port 8000 Closed)"))
        publisher({"log_format": "hello", "log_namespace": "x", "log_time": 0.0})
        self.assertEqual(
            out.getvalue().splitlines(), ["1970-01-01T00:00:00+0000 [x#-] hello"]
        )

    def test_otherObservers(self) -> None:
        """
        An observer that is no file observer (a test's, a log shipper's) is
        left as it is, and sees the port lines.
        """
        events: list[dict[str, Any]] = []
        publisher = LogPublisher(events.append)
        quietPortLines(publisher)
        publisher(_portLine("(TCP Port 8000 Closed)"))
        self.assertEqual(events[-1]["log_text"], "(TCP Port 8000 Closed)")
        publisher.removeObserver(events.append)
        publisher(_portLine("(TCP Port 8000 Closed)"))
        self.assertEqual(len(events), 2)


class ApplyLogFormatTests(SynchronousTestCase):
    """
    L{applyLogFormat} makes C{twist} (and so C{twsgi} and C{python -m
    twsgi}) write what C{--log-format} says.
    """

    def test_twist(self) -> None:
        """
        The runner's observer factory is replaced: text lines by default,
        whatever twist chose for an output that is not a terminal (Twisted's
        internal event JSON).
        """
        for logFormat, expected in (
            ("text", "[x#info] hello"),
            ("json", '"message":"hello"'),
        ):
            runner: dict[str, Any] = {"fileLogObserverFactory": jsonFileLogObserver}
            self.assertTrue(applyLogFormat(runner, logFormat))
            out = io.StringIO()
            runner["fileLogObserverFactory"](out)(
                {
                    "log_format": "hello",
                    "log_namespace": "x",
                    "log_level": LogLevel.info,
                    "log_time": 0.0,
                }
            )
            self.assertIn(expected, out.getvalue())
            self.assertNotIn("log_namespace", out.getvalue())

    def test_observer(self) -> None:
        """
        Given an observer (a worker's pipe to its supervisor), the runner
        logs to it, without the port lines.
        """
        events: list[dict[str, Any]] = []
        runner: dict[str, Any] = {"fileLogObserverFactory": textFileLogObserver}
        self.assertTrue(applyLogFormat(runner, "text", events.append))
        observer = runner["fileLogObserverFactory"](io.StringIO())
        observer(_portLine("(TCP Port 8000 Closed)"))
        observer({"log_format": "hello", "log_time": 0.0})
        self.assertEqual([e["log_format"] for e in events], ["hello"])

    def test_twistd(self) -> None:
        """
        Under C{twistd}, whose options have no observer factory (it made its
        observer already), or with no runner, nothing is applied.
        """
        runner = {"nodaemon": True, "logfile": None}
        self.assertFalse(applyLogFormat(runner, "json"))
        self.assertEqual(runner, {"nodaemon": True, "logfile": None})
        self.assertFalse(applyLogFormat(None, "json"))
