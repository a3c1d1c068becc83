"""
Tests for L{twsgi._serverlog} and the C{--log-format} wiring of
L{twsgi._main}.
"""

from __future__ import annotations

import io
import json

from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from twsgi._main import logObserverFactory
from twsgi._serverlog import (
    eventAsJSON,
    jsonLinesLogObserver,
    jsonLogObserver,
    parseLogFormat,
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
        C{twistd --logger twsgi._serverlog.jsonLogObserver} gets an observer.
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
