"""
Tests for the hooks: access-log observers and lifecycle callables, from the
command line (C{module:attr}) and from the API.
"""

from __future__ import annotations

from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from tests.apps import hookfixtures
from tests.helpers.service import cliService
from twsgi import AccessRecord, AppLoadError, ConfigError, ServerConfig, TwsgiService
from twsgi.example import app
from twsgi.logs.limited import PERIOD
from twsgi.testing import MemoryServer, SynchronousReactor, SynchronousThreadPool

_CONFIG = ServerConfig(endpoint=("tcp:8000",), access_log="none")


class AccessObserverTests(SynchronousTestCase):
    def setUp(self) -> None:
        hookfixtures.calls.clear()

    def test_commandLine(self) -> None:
        """
        C{--access-log-observer module:attr} receives the frozen access record
        of every request, with peer, listener, request id, user agent and
        referer.
        """
        service = cliService(access_log_observer=["tests.apps.hookfixtures:record"])
        server = MemoryServer(site=service.makeSite("tcp:8000"))
        server.request(
            b"GET",
            b"/x?y=1",
            headers=[
                (b"User-Agent", b"probe/1"),
                (b"Referer", b"http://r/"),
                (b"X-Request-ID", b"abc-123"),
            ],
            peer=("10.0.0.9", 5555),
        )
        [(kind, record)] = hookfixtures.calls
        self.assertEqual(kind, "record")
        self.assertIsInstance(record, AccessRecord)
        self.assertEqual(
            (record.method, record.target, record.status, record.bytesSent),
            ("GET", "/x?y=1", 200, 18),
        )
        self.assertEqual((record.remoteAddr, record.remotePort), ("10.0.0.9", 5555))
        self.assertEqual(record.listener, "tcp:8000")
        self.assertEqual(record.requestId, "abc-123")
        self.assertEqual((record.userAgent, record.referer), ("probe/1", "http://r/"))
        self.assertGreaterEqual(record.duration, 0.0)
        self.assertRaises(AttributeError, setattr, record, "status", 500)

    def test_generatedRequestId(self) -> None:
        """
        Without C{X-Request-ID}, each record gets a generated request id.
        """
        server = MemoryServer(app)
        server.request()
        server.request()
        first, second = (r.requestId for r in server.records)
        self.assertTrue(first)
        self.assertNotEqual(first, second)

    def test_api(self) -> None:
        """
        Observers given to L{TwsgiService} or added with
        L{TwsgiService.addAccessObserver} receive records; one that raises is
        logged and the others still run.
        """
        seen: list[str] = []

        def broken(record: AccessRecord) -> None:
            raise RuntimeError("observer bug")

        service = TwsgiService(
            _CONFIG,
            app,
            SynchronousReactor(),
            observers=[broken, lambda r: seen.append("given")],
        )
        service.resource.threadpool = SynchronousThreadPool()
        service.addAccessObserver(lambda r: seen.append("added"))
        server = MemoryServer(site=service.makeSite("tcp:8000"))
        self.assertEqual(server.request().code, 200)
        self.assertEqual(seen, ["given", "added"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_failingObserverThrottled(self) -> None:
        """
        An observer that raises for every request has its first failure
        logged with its traceback, and then at most one every L{PERIOD}
        seconds, saying how many failed since: the log does not get a
        traceback for every request.
        """

        def broken(record: AccessRecord) -> None:
            raise RuntimeError("observer bug")

        reactor = SynchronousReactor()
        service = TwsgiService(_CONFIG, app, reactor, observers=[broken])
        service.resource.threadpool = SynchronousThreadPool()
        server = MemoryServer(site=service.makeSite("tcp:8000"))
        with capturedLogs() as events:
            for _ in range(5):
                self.assertEqual(server.request().code, 200)
            reactor.advance(PERIOD)
            self.assertEqual(server.request().code, 200)
        failures = [formatEvent(e) for e in events if "log_failure" in e]
        self.assertEqual(
            failures,
            [
                f"access-log observer {broken!r} raised",
                f"access-log observer {broken!r} raised 5 times since it was "
                "last logged (at most one traceback every 60 s); the last time",
            ],
        )
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 2)

    def test_badReference(self) -> None:
        """
        A malformed or unloadable observer reference is a one-line error that
        names the option.
        """
        self.assertRaises(ConfigError, cliService, access_log_observer=["nocolon"])
        error = self.assertRaises(
            AppLoadError,
            cliService,
            access_log_observer=["tests.apps.hookfixtures:nope"],
        )
        self.assertIn("--access-log-observer", str(error))
        error = self.assertRaises(
            AppLoadError,
            cliService,
            access_log_observer=["tests.apps.hookfixtures:notCallable"],
        )
        self.assertIn("not callable", str(error))


class LifecycleHookTests(SynchronousTestCase):
    def setUp(self) -> None:
        hookfixtures.calls.clear()

    def test_commandLineInOrder(self) -> None:
        """
        C{--on-start} runs once the service listens; C{--on-drain} when the
        stop begins, and the stop waits for its L{Deferred} before
        C{--on-stop} runs; each receives the service.
        """
        service = cliService(
            on_start=["tests.apps.hookfixtures:started"],
            on_drain=["tests.apps.hookfixtures:draining"],
            on_stop=["tests.apps.hookfixtures:stopped"],
        )
        service.startService()
        self.successResultOf(service.whenListening)
        self.assertEqual(hookfixtures.calls, [("start", service)])
        d = service.stopService()
        self.assertEqual([c[0] for c in hookfixtures.calls], ["start", "drain"])
        self.assertNoResult(d)
        service.reactor.advance(1.0)
        self.assertEqual(
            [c[0] for c in hookfixtures.calls], ["start", "drain", "drained", "stop"]
        )
        self.assertTrue(self.successResultOf(d).drained)
        self.assertTrue(all(c[1] is service for c in hookfixtures.calls))

    def test_api(self) -> None:
        """
        Lifecycle hooks given to L{TwsgiService} run in the order given.
        """
        order: list[str] = []
        service = TwsgiService(
            _CONFIG,
            app,
            SynchronousReactor(),
            onStart=[lambda s: order.append("s1"), lambda s: order.append("s2")],
            onStop=[lambda s: order.append("t1"), lambda s: order.append("t2")],
        )
        service.threadpool = SynchronousThreadPool()
        service.startService()
        self.successResultOf(service.stopService())
        self.assertEqual(order, ["s1", "s2", "t1", "t2"])

    def test_badHook(self) -> None:
        """
        An unloadable lifecycle hook is a one-line error naming its option.
        """
        error = self.assertRaises(
            AppLoadError, cliService, on_drain=["tests.apps.hookfixtures:missing"]
        )
        self.assertIn("--on-drain", str(error))


class SignalOwnershipTests(SynchronousTestCase):
    def test_onlyTheProcessEntryPointHandlesSignals(self) -> None:
        """
        L{makeService} (the C{twistd}/C{python -m twsgi} entry point) makes
        the service handle SIGTERM and SIGINT; L{serviceFromConfig}, which
        tests and embedders call, and L{TwsgiService} do not.
        """
        from twsgi.cli.options import makeService

        reactor = SynchronousReactor()
        given = {"app": "twsgi.example:app", "access_log": "none"}
        self.assertTrue(makeService(given, reactor).handleSignals)
        self.assertFalse(cliService().handleSignals)
        self.assertFalse(TwsgiService(_CONFIG, app, reactor).handleSignals)
