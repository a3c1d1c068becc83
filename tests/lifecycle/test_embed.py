"""
Tests for the embedding API: a L{TwsgiService} built from keyword arguments,
mounted under a path, run beside other services, and L{twsgi.serve}.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import tempfile
import threading
from typing import Any

from twisted.application.service import IService, MultiService, Service
from twisted.internet import defer, reactor, task, threads
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.protocol import Factory
from twisted.protocols.wire import Echo
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.resource import Resource
from twisted.web.static import Data

from tests.helpers.server import TWISTD, freePort
from twsgi import OrderedMultiService, ServerConfig, TwsgiService, WSGIResource
from twsgi.lifecycle.embed import embeddedService
from twsgi.testing import (
    MemoryServer,
    SynchronousReactor,
    SynchronousThreadPool,
    serverURL,
    spawnServer,
    startServer,
)

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.join(TESTS, "apps")
EXAMPLES = os.path.join(os.path.dirname(TESTS), "docs", "examples")


def paths(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """
    Answer C{SCRIPT_NAME} and C{PATH_INFO}.
    """
    body = f"{environ['SCRIPT_NAME']}|{environ['PATH_INFO']}".encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


def fetch(url: str, path: str = "/") -> tuple[int, bytes]:
    """
    A blocking GET (run it in a thread).
    """
    host, port = url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


class MountTests(SynchronousTestCase):
    def test_mountedUnderPath(self) -> None:
        """
        A L{WSGIResource} mounted below C{/app} of an existing resource tree
        sees C{/app} as C{SCRIPT_NAME}; its siblings still answer.
        """
        clock = SynchronousReactor()
        root = Resource()
        root.putChild(b"static", Data(b"plain data", "text/plain"))
        root.putChild(b"app", WSGIResource(clock, SynchronousThreadPool(), paths))
        server = MemoryServer(resource=root, reactor=clock)
        self.assertEqual(server.request(target=b"/app/a/b?q=1").body, b"/app|/a/b")
        self.assertEqual(server.request(target=b"/app").body, b"/app|")
        self.assertEqual(server.request(target=b"/static").body, b"plain data")

    def test_nestedMount(self) -> None:
        """
        Below two levels, both are in C{SCRIPT_NAME}.
        """
        clock = SynchronousReactor()
        root, api = Resource(), Resource()
        root.putChild(b"api", api)
        api.putChild(b"v1", WSGIResource(clock, SynchronousThreadPool(), paths))
        server = MemoryServer(resource=root, reactor=clock)
        self.assertEqual(server.request(target=b"/api/v1/x").body, b"/api/v1|/x")


class ServiceAPITests(TestCase):
    @defer.inlineCallbacks
    def test_keywordsAndRealAddress(self) -> Any:
        """
        A service built from keyword arguments is an L{IService}; once it
        listens on port 0 it reports the real address, and serves there.
        """
        service = yield startServer(self, paths, threads=(1, 2), graceful_timeout=2.0)
        self.assertTrue(IService.providedBy(service))
        [(description, address)] = service.addresses
        self.assertEqual(description, "tcp:0:interface=127.0.0.1")
        self.assertNotEqual(address.port, 0)
        url = serverURL(service)
        self.assertEqual(url, f"http://127.0.0.1:{address.port}")
        status, body = yield threads.deferToThread(fetch, url, "/hi")
        self.assertEqual((status, body), (200, b"|/hi"))


class EmbeddedServiceTests(SynchronousTestCase):
    """
    L{embeddedService}, the service of L{twsgi.serve} and
    L{twsgi.testing.startServer}: keyword arguments are settings or the
    service's own.
    """

    def test_settingsAndServiceKeywords(self) -> None:
        """
        Keywords named as L{ServerConfig} fields replace the config's
        settings, endpoint strings replace its endpoints, and the other
        keywords go to L{TwsgiService}.
        """
        base = ServerConfig(access_log="none", threads=(1, 1))
        hooks = [lambda service: None]
        service = embeddedService(
            paths,
            ["tcp:0", "tcp:1"],
            SynchronousReactor(),
            base,
            {"threads": (2, 3), "graceful_timeout": 4.0, "onStart": hooks},
        )
        self.assertEqual(service.config.endpoint, ("tcp:0", "tcp:1"))
        self.assertEqual(service.config.threads, (2, 3))
        self.assertEqual(service.gracefulTimeout, 4.0)
        self.assertEqual(service.config.access_log, "none")
        self.assertEqual(service.onStart, hooks)

    def test_defaults(self) -> None:
        """
        Without a config or endpoints, the defaults of L{ServerConfig} apply.
        """
        service = embeddedService(paths, [], SynchronousReactor(), None, {})
        self.assertEqual(service.config, ServerConfig())

    def test_unknownKeyword(self) -> None:
        """
        A keyword that is neither a setting nor the service's is a
        L{TypeError} naming it (an old camelCase setting name, for one).
        """
        self.assertIn("gracefulTimeout", self.refused({"gracefulTimeout": 5.0}))

    def refused(self, keywords: dict[str, Any]) -> str:
        """
        The message of the L{TypeError} that L{embeddedService} raises for
        C{keywords}.
        """
        error = self.assertRaises(
            TypeError,
            embeddedService,
            paths,
            [],
            SynchronousReactor(),
            ServerConfig(access_log="none"),
            keywords,
        )
        return str(error)

    def test_settingWrittenAsText(self) -> None:
        """
        A setting given as text, as on the command line, where its value is
        a number, a flag or a tuple (C{threads="1:4"},
        C{endpoint="tcp:8000"}) is a L{TypeError} naming the setting, its
        type and L{twsgi.resolveConfig}, rather than an error about
        something the value broke further on.
        """
        for keywords, message in [
            (
                {"threads": "1:4"},
                "threads='1:4' is a str; the setting threads takes a tuple, "
                "as (4, 32) (twsgi.resolveConfig reads settings written as "
                "on the command line)",
            ),
            (
                {"endpoint": "tcp:0"},
                "endpoint='tcp:0' is a str; the setting endpoint takes a "
                "tuple, as ('tcp:8000:interface=127.0.0.1',) "
                "(twsgi.resolveConfig reads settings written as on the "
                "command line)",
            ),
            (
                {"graceful_timeout": "5"},
                "graceful_timeout='5' is a str; the setting graceful_timeout "
                "takes a float, as 30.0 (twsgi.resolveConfig reads settings "
                "written as on the command line)",
            ),
        ]:
            self.assertEqual(self.refused(keywords), message)


class EchoService(Service):
    """
    A TCP echo service on 127.0.0.1, port 0; records when it stopped.
    """

    def __init__(self, stops: list[str]) -> None:
        self.stops = stops
        self.port: Any = None

    @defer.inlineCallbacks
    def startListening(self) -> Any:
        endpoint = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
        self.port = yield endpoint.listen(Factory.forProtocol(Echo))

    def stopService(self) -> Any:
        Service.stopService(self)
        self.stops.append("echo")
        return self.port.stopListening()


class MultiServiceTests(TestCase):
    @defer.inlineCallbacks
    def test_beside(self) -> Any:
        """
        Under an L{OrderedMultiService}, twsgi (added last) drains every
        request in flight, which needs the echo service, before the echo
        service stops; nothing is lost.
        """
        stops: list[str] = []
        echo = EchoService(stops)
        yield echo.startListening()
        release = threading.Event()
        self.addCleanup(release.set)

        def app(environ: Any, start_response: Any) -> list[bytes]:
            release.wait(10)
            with socket.create_connection(
                ("127.0.0.1", echo.port.getHost().port), timeout=5
            ) as s:
                s.sendall(b"ping")
                answer = s.recv(16)
            start_response("200 OK", [("Content-Length", str(len(answer)))])
            return [answer]

        services = OrderedMultiService()
        echo.setServiceParent(services)
        config = ServerConfig(
            endpoint=("tcp:0:interface=127.0.0.1",),
            threads=(5, 5),
            graceful_timeout=10.0,
            access_log="none",
        )
        twsgi = TwsgiService(
            config, app, reactor, onStop=[lambda s: stops.append("twsgi")]
        )
        twsgi.setServiceParent(services)
        services.startService()
        yield twsgi.whenListening
        url = serverURL(twsgi)
        requests = [threads.deferToThread(fetch, url) for _ in range(5)]
        for _ in range(200):
            if twsgi.inFlight == 5:
                break
            yield task.deferLater(reactor, 0.02, lambda: None)
        self.assertEqual(twsgi.inFlight, 5)
        stopped = services.stopService()
        self.assertTrue(twsgi.draining)
        self.assertEqual(stops, [])
        release.set()
        yield stopped
        results = yield defer.gatherResults(requests)
        self.assertEqual(results, [(200, b"ping")] * 5)
        self.assertEqual(stops, ["twsgi", "echo"])
        self.assertTrue(twsgi.drainResult.drained)

    def test_plainMultiServiceStopsAtOnce(self) -> None:
        """
        (Why L{OrderedMultiService} exists.)  A plain L{MultiService} starts
        every child's stop before any has finished.
        """
        order: list[str] = []
        gate: defer.Deferred[None] = defer.Deferred()

        class Slow(Service):
            def stopService(self) -> Any:
                order.append("slow")
                return gate

        class Fast(Service):
            def stopService(self) -> None:
                order.append("fast")

        for parent in (MultiService(), OrderedMultiService()):
            Fast().setServiceParent(parent)
            Slow().setServiceParent(parent)
            parent.startService()
            parent.stopService()
            order.append("|")
        self.assertEqual(order, ["slow", "fast", "|", "slow", "|"])
        gate.callback(None)
        self.assertEqual(order, ["slow", "fast", "|", "slow", "|", "fast"])


class TacExampleTests(SynchronousTestCase):
    def test_multiserviceExampleRuns(self) -> None:
        """
        C{docs/examples/multiservice.tac} runs under C{twistd}: the
        application answers with what the echo service said, and SIGTERM
        stops the process.
        """
        echoPort = freePort()
        env = dict(
            os.environ,
            TWSGI_TAC_ENDPOINT="tcp:0:interface=127.0.0.1",
            TWSGI_TAC_ECHO_PORT=str(echoPort),
        )
        server = spawnServer(
            ["-n", "--logfile", "-", "--pidfile", "", "-y", "multiservice.tac"],
            env=env,
            cwd=EXAMPLES,
            command=TWISTD,
        )
        self.addCleanup(server.stop)
        self.assertEqual(fetch(server.url), (200, b"echo said: ping\n"))
        server.stop()
        self.assertIn("every request drained", server.output)
        # Its access log, as JSON lines.
        self.assertIn('"target":"/","path":"/"', server.output)

    def test_multiserviceExampleLoads(self) -> None:
        """
        C{docs/examples/multiservice.tac} builds an application whose
        services are an echo service, then twsgi, under an
        L{OrderedMultiService}.
        """
        from twisted.application.service import loadApplication

        application = loadApplication(
            os.path.join(EXAMPLES, "multiservice.tac"), "python"
        )
        [ordered] = list(IService(application))
        self.assertIsInstance(ordered, OrderedMultiService)
        children = list(ordered)
        self.assertEqual(len(children), 2)
        self.assertIsInstance(children[1], TwsgiService)


SCRIPT = """
import signal
import sys
sys.path.insert(0, {here!r})
import twsgi
from drainapp import app

names = ("SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGTTIN", "SIGTTOU",
         "SIGWINCH")
before = {{name: signal.getsignal(getattr(signal, name)) for name in names}}
result = twsgi.serve(app, "tcp:0:interface=127.0.0.1", graceful_timeout=5.0)
print("serve returned", result.drained, result.cut, flush=True)
changed = [n for n in names if signal.getsignal(getattr(signal, n)) != before[n]]
print("handlers not put back:", changed, flush=True)
"""


class ServeTests(SynchronousTestCase):
    def test_serveScript(self) -> None:
        """
        L{twsgi.serve} runs the reactor until SIGTERM, drains, and returns
        the L{DrainResult}, with the script's signal handlers put back (not
        the stopped reactor's SIGTERM and SIGINT ones).
        """
        directory = tempfile.mkdtemp()
        script = os.path.join(directory, "serve_script.py")
        with open(script, "w") as f:
            f.write(SCRIPT.format(here=HERE))
        server = spawnServer([], command=[sys.executable, script])
        self.addCleanup(server.stop)
        self.assertEqual(fetch(server.url), (200, b"ok\n"))
        self.assertEqual(server.stop(), 0)
        self.assertIn("serve returned True 0", server.output)
        self.assertIn("handlers not put back: []", server.output)
        self.assertIn("listening on http://127.0.0.1:", server.output)
        self.assertNotIn("starting on", server.output)

    def serveFails(self, endpoint: str, before: str = "") -> str:
        """
        Run a script that runs C{before}, then L{twsgi.serve} on
        C{endpoint}, which must fail: it must end with status 1, print
        nothing, and log one error line on standard error and no drain.

        @return: the error line.
        """
        script = os.path.join(tempfile.mkdtemp(), "serve_fails.py")
        with open(script, "w") as f:
            f.write(
                f"import sys\nsys.path.insert(0, {HERE!r})\n{before}import twsgi\n"
                "from drainapp import app\n"
                f"twsgi.serve(app, [{endpoint!r}])\n"
                "print('serve returned')\n"
            )
        result = subprocess.run(
            [sys.executable, script], capture_output=True, text=True, timeout=30
        )
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(result.stdout, "")
        errors = [line for line in result.stderr.splitlines() if "#error]" in line]
        self.assertEqual(len(errors), 1, result.stderr)
        self.assertNotIn("drain", result.stderr)
        return errors[0]

    def test_serveCannotListen(self) -> None:
        """
        L{twsgi.serve} on a port in use logs one error line on standard
        error and ends the script with status 1; no drain is told of.  (The
        endpoints are given as a list here.)
        """
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        self.assertIn(
            f"cannot listen on tcp:{port}:interface=127.0.0.1: Address already in use",
            self.serveFails(f"tcp:{port}:interface=127.0.0.1"),
        )

    def test_serveNoThread(self) -> None:
        """
        When the system refuses every thread (a container's pids limit,
        systemd's C{TasksMax}; here C{Thread.start} raises as it then does),
        no request could run: L{twsgi.serve} logs one error line and ends
        the script with status 1, at once, without listening or telling of
        a drain (it used to listen and leave every request waiting, and a
        stop waited for good).
        """
        refuse = (
            "import threading\n"
            "def refuse(thread):\n"
            '    raise RuntimeError("can\'t start new thread")\n'
            "threading.Thread.start = refuse\n"
        )
        line = self.serveFails("tcp:0:interface=127.0.0.1", refuse)
        self.assertIn("cannot start a WSGI thread: can't start new thread", line)
