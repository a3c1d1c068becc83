"""
The command line, run for real: C{twistd -n twsgi}, C{twist twsgi} and
C{python -m twsgi} as subprocesses listening on 127.0.0.1 port 0.
"""

from __future__ import annotations

import json
import os
import platform
import re
import socket
import subprocess
import sys

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

import twisted
import twsgi
from tests.helpers import server as _server
from tests.helpers.certs import makeCertificates
from twsgi.cli.options import Options, commandLine, makeService
from twsgi.config.resolve import resolveConfig
from twsgi.config.settings import SETTINGS
from twsgi.lifecycle.build import EndpointError, endpointFromString
from twsgi.lifecycle.drain import ExitStatus

APP = ["--pythonpath", _server.APPS, "--app"]

_COMBINED = re.compile(
    r"^127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] "
    r'"GET /environ\?q=1 HTTP/1\.1" 200 \d+ "-" "(?P<agent>[^"]*)" (?P<micros>\d+)$',
    re.MULTILINE,
)


def _optionFlags(helpText: str) -> set[str]:
    """
    The long flags listed in a C{--help} text.
    """
    return set(re.findall(r"^\s+(?:-\w, )?--([a-z][a-z0-9-]*)", helpText, re.MULTILINE))


class RunnerTests(SynchronousTestCase):
    """
    The three ways to run twsgi take the same options and serve.
    """

    def test_eachRunnerServes(self) -> None:
        """
        C{twistd -n twsgi}, C{twist twsgi} and C{python -m twsgi} each serve a
        request with the same options.
        """
        for runner in _server.RUNNERS:
            server = _server.start(
                self,
                [*APP, "wsgiapps:app", "--endpoint", _server.LOOPBACK],
                runner=runner,
            )
            status, _, body = _server.request(server, "GET", "/")
            self.assertEqual((status, body), (200, b"hello\n"), runner)
            server.stop()

    def test_helpListsTheSameFlags(self) -> None:
        """
        C{--help} of each runner lists the same flags, one for every setting
        in the settings table.
        """
        expected = {s.flag for s in SETTINGS}
        seen = {}
        for runner in _server.RUNNERS:
            result = _server.run(["--help"], runner=runner)
            self.assertEqual(result.returncode, 0, result.stderr)
            seen[runner] = _optionFlags(result.stdout)
            self.assertTrue(expected <= seen[runner], (runner, result.stdout))
        self.assertEqual(len({frozenset(f) for f in seen.values()}), 1, seen)

    def test_helpUsageLine(self) -> None:
        """
        The usage line of C{python -m twsgi --help} names C{python -m twsgi}
        and nothing of the runner underneath; under C{twistd} it keeps
        C{twistd}'s own.
        """
        result = _server.run(["--help"])
        self.assertEqual(
            result.stdout.splitlines()[0],
            "Usage: python -m twsgi [options] --app MODULE:ATTR",
        )
        result = _server.run(["--help"], runner="twistd")
        first = result.stdout.splitlines()[0]
        self.assertIn("twistd", first)
        self.assertTrue(first.endswith(" twsgi [options] --app MODULE:ATTR"), first)

    def test_helpIntoClosedPipe(self) -> None:
        """
        C{--help}, C{-h}, C{--version} and C{-V} into a pipe whose reader left
        (as with C{| head}) end without a traceback, under every runner.
        """
        # All at once: twelve interpreter starts one after another are slow.
        processes = {}
        for runner, command in _server.RUNNERS.items():
            for flag in ["--help", "-h", "--version", "-V"]:
                process = subprocess.Popen(
                    [*command, flag],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    stdin=subprocess.DEVNULL,
                    env=_server.cleanEnviron(None),
                )
                self.addCleanup(process.kill)
                assert process.stdout is not None
                process.stdout.close()
                processes[runner, flag] = process
        for what, process in processes.items():
            _, stderr = process.communicate(timeout=60)
            self.assertEqual(stderr, b"", what)

    def test_helpShowsDefaultsAndEnvironment(self) -> None:
        """
        The generated help names each setting's environment variable and
        shows the thread pool default as C{MIN:MAX}.
        """
        text = Options().__str__()
        for setting in SETTINGS:
            self.assertIn(setting.envvar, text.replace("\n", " ").replace(" ", ""))
        self.assertIn("[default: 4:32]", " ".join(text.split()))

    def test_versionLine(self) -> None:
        """
        C{--version} and C{-V} print twsgi's own version with Twisted's and
        Python's, in one line, under each runner.
        """
        expected = (
            f"twsgi {twsgi.__version__} (Twisted {twisted.__version__}, "
            f"Python {platform.python_version()})\n"
        )
        for runner in _server.RUNNERS:
            for flag in ("--version", "-V"):
                result = _server.run([flag], runner=runner)
                self.assertEqual(
                    (result.returncode, result.stdout, result.stderr),
                    (0, expected, ""),
                    (runner, flag),
                )

    def test_shortHelp(self) -> None:
        """
        C{-h} prints what C{--help} prints.
        """
        for runner in ("python -m twsgi", "twistd"):
            long = _server.run(["--help"], runner=runner)
            short = _server.run(["-h"], runner=runner)
            self.assertEqual((short.returncode, short.stdout), (0, long.stdout), runner)

    def test_helpShowsMetavars(self) -> None:
        """
        C{--help} shows each valued option with its placeholder from the
        settings table (C{--threads MIN:MAX}), and a switch without one.
        """
        text = Options().__str__()
        for setting in SETTINGS:
            if setting.switch:
                self.assertRegex(text, rf"\n +--{setting.flag}  ")
            else:
                shown = re.escape(f"--{setting.flag} {setting.metavar}")
                self.assertRegex(text, rf"\n +{shown}\s")
        for shown in (
            "--threads MIN:MAX",
            "--static URL=DIR",
            "--endpoint ENDPOINT",
            "--graceful-timeout SECONDS",
        ):
            self.assertIn(shown, text)
        self.assertNotRegex(text, r"--[a-z-]+=")

    def test_helpWidth(self) -> None:
        """
        C{--help} fits the width C{COLUMNS} names, and is 80 wide when
        C{COLUMNS} is no width (Twisted's own usage text fails then).
        """
        for columns, width in [("100", 100), ("abc", 80), ("", 80), ("0", 80)]:
            self.patch(os, "environ", {**os.environ, "COLUMNS": columns})
            lines = Options().__str__().splitlines()
            self.assertLessEqual(max(map(len, lines)), width, columns)
            self.assertGreater(max(map(len, lines)), width - 10, columns)


class ResolvedOptionsTests(SynchronousTestCase):
    """
    What the generated options resolve to, without starting a server.
    """

    def resolve(self, argv: list[str], environ: dict[str, str] | None = None) -> object:
        options = Options()
        options.parseOptions(argv)
        return resolveConfig(options.given, environ or {})

    def test_defaultEndpoint(self) -> None:
        """
        With no C{--endpoint}, twsgi listens on 127.0.0.1 port 8000.
        """
        config = self.resolve(["--app", "m:a"])
        self.assertEqual(config.endpoint, ("tcp:8000:interface=127.0.0.1",))

    def test_endpointRepeated(self) -> None:
        """
        C{--endpoint} may be repeated, and the command line wins over
        C{TWSGI_ENDPOINT}.
        """
        config = self.resolve(
            ["--endpoint", "tcp:1", "--endpoint", "unix:/tmp/s"],
            {"TWSGI_ENDPOINT": "tcp:2"},
        )
        self.assertEqual(config.endpoint, ("tcp:1", "unix:/tmp/s"))

    def test_environment(self) -> None:
        """
        The command-line settings of the core server can be given through
        their C{TWSGI_*} variables; repeated ones are separated by whitespace.
        """
        config = self.resolve(
            [],
            {
                "TWSGI_APP": "m:a",
                "TWSGI_ENDPOINT": "tcp:1\n tcp6:2",
                "TWSGI_THREADS": "2:3",
                "TWSGI_ACCESS_LOG": "none",
                "TWSGI_CHDIR": "/srv",
                "TWSGI_PYTHONPATH": "a b",
                "TWSGI_EXPOSE_TRACEBACKS": "yes",
            },
        )
        self.assertEqual(
            (
                config.app,
                config.endpoint,
                config.threads,
                config.access_log,
                config.chdir,
                config.pythonpath,
                config.expose_tracebacks,
            ),
            ("m:a", ("tcp:1", "tcp6:2"), (2, 3), "none", "/srv", ("a", "b"), True),
        )


class CommandLineTests(SynchronousTestCase):
    """
    L{commandLine} writes settings back as arguments.
    """

    def test_roundTrip(self) -> None:
        """
        Parsed again, the arguments give the same settings: values that
        begin with a dash, repeated options and switches too.
        """
        options = Options()
        options.parseOptions(
            ["--app", "m:a", "--endpoint", "tcp:1", "--endpoint", "-x"]
            + ["--access-log", "-", "--expose-tracebacks", "--threads", "2:3"]
        )
        again = Options()
        again.parseOptions(commandLine(options.given))
        self.assertEqual(again.given, options.given)


class EndpointErrorTests(SynchronousTestCase):
    """
    A malformed endpoint string gets a reason an operator can act on.
    """

    def test_reasons(self) -> None:
        """
        Each kind of mistake is named in words, with the description.
        """
        cases = [
            ("tcp:notaport", "'notaport' is not a port number"),
            (
                "tcp:0:interface=::1",
                "an option is given twice; escape colons in values as \\:",
            ),
            ("tcp:0:bogus=1", "unknown option 'bogus'"),
            ("tcp", "the port (or path) is missing"),
            ("nosuchtype:0", "Unknown endpoint type: 'nosuchtype'"),
            ("ssl:0:privateKey=/nonexistent.pem", "No such file or directory"),
            (
                "systemd:domain=INET:index=0",
                "systemd passed no socket at that index; is the service started "
                "by its .socket unit (LISTEN_FDS, LISTEN_FDNAMES)?",
            ),
        ]
        self.patch(os, "environ", _server.cleanEnviron())
        reactor = MemoryReactorClock()
        for description, reason in cases:
            error = self.assertRaises(
                EndpointError, endpointFromString, reactor, description
            )
            self.assertEqual(
                str(error),
                f"{description!r} is not a valid endpoint string: {reason}",
            )


class ExitStatusTests(SynchronousTestCase):
    """
    A listener that fails ends the process with a non-zero status, also when
    it fails before the reactor runs (as under C{twistd}).
    """

    def test_failBeforeRunning(self) -> None:
        """
        Failing before the reactor runs stops it as soon as it runs, and the
        exit happens at interpreter exit, after the reactor stopped.
        """
        reactor = MemoryReactorClock()
        registered: list[object] = []
        status = ExitStatus(reactor, atexit=registered.append)
        status.fail(reactor)
        self.assertEqual(reactor.whenRunningHooks, [(reactor.stop, (), {})])
        self.assertEqual(registered, [])
        for trigger in reactor.triggers["after"]["shutdown"]:
            trigger[0]()
        self.assertEqual(registered, [status.exit])
        self.assertEqual(status.status, 1)

    def test_cleanStop(self) -> None:
        """
        A reactor stop without a failure changes nothing.
        """
        reactor = MemoryReactorClock()
        registered: list[object] = []
        ExitStatus(reactor, atexit=registered.append)
        for trigger in reactor.triggers["after"]["shutdown"]:
            trigger[0]()
        self.assertEqual(registered, [])


class StartupTests(SynchronousTestCase):
    """
    What a running server logs and does, for real.
    """

    def test_startupLog(self) -> None:
        """
        The startup log names every listener with its real port (IPv4 and
        IPv6, port 0), the application, the thread pool size and the twsgi
        and Twisted versions; both listeners serve.
        """
        server = _server.start(
            self,
            [
                *APP,
                "wsgiapps:app",
                "--endpoint",
                _server.LOOPBACK,
                "--endpoint",
                r"tcp6:0:interface=\:\:1",
                "--threads",
                "2:5",
            ],
            listeners=2,
        )
        hosts = dict(server.addresses)
        self.assertEqual(set(hosts), {"127.0.0.1", "::1"})
        self.assertNotIn(0, hosts.values())
        for index in (0, 1):
            self.assertEqual(_server.request(server, "GET", "/", index=index)[0], 200)
        # The server logs this line before it serves, but the log is read in
        # a thread of this process, which may not have read it yet.
        server.waitFor(r"twsgi serving wsgiapps:app with 2-5 threads")
        log = server.output
        self.assertIn(f"listening on http://127.0.0.1:{hosts['127.0.0.1']} ", log)
        self.assertIn(f"listening on http://[::1]:{hosts['::1']} ", log)
        # Not Twisted's legacy port line next to it.
        self.assertNotIn("starting on", log)
        self.assertIn(f"twsgi {twsgi.__version__}", log)
        self.assertIn(f"Twisted {twisted.__version__}", log)

    def test_bindAndEndpoint(self) -> None:
        """
        C{--bind} in gunicorn's forms, repeated and mixed with
        C{--endpoint}: every listener serves, with the production listen
        backlog (an endpoint's own C{backlog=} wins), the UNIX socket too.
        """
        home = _server.temporaryDirectory(self)
        sock = str(home / "web.sock")
        server = _server.start(
            self,
            [
                *APP,
                "wsgiapps:app",
                # The UNIX socket first: it listens before the TCP ones that
                # the server is waited for.
                "--bind",
                f"unix:{sock}",
                "--bind",
                "127.0.0.1:0",
                "--bind",
                "[::1]:0",
                "--endpoint",
                "tcp:0:interface=127.0.0.1:backlog=7",
            ],
            listeners=3,
        )
        hosts = [host for host, _ in server.addresses]
        self.assertEqual(hosts, ["127.0.0.1", "127.0.0.1", "::1"])
        for index in (0, 1, 2):
            self.assertEqual(_server.request(server, "GET", "/", index=index)[0], 200)
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(10)
            client.connect(sock)
            client.sendall(b"GET / HTTP/1.0\r\n\r\n")
            answer = client.recv(100)
            self.assertTrue(answer.startswith(b"HTTP/1.0 200 OK"), answer)
        ports = [port for _, port in server.addresses]
        self.assertEqual(_server.listenBacklog(ports[0]), 7)
        for port in ports[1:]:
            self.assertEqual(_server.listenBacklog(port), _server.expectedBacklog())
        self.assertEqual(_server.listenBacklog(sock), _server.expectedBacklog())

    def test_commandLineOptions(self) -> None:
        """
        A factory with literal arguments, C{--chdir} (with a relative
        C{--pythonpath} under it) and an access log file in the Combined Log
        Format plus the duration.
        """
        home = _server.temporaryDirectory(self)
        (home / "code").mkdir()
        (home / "code" / "greeter.py").write_text(
            "from wsgiapps import makeApp\napp = makeApp\n"
        )
        accessLog = home / "access.log"
        server = _server.start(
            self,
            [
                "--pythonpath",
                _server.APPS,
                "--chdir",
                str(home),
                "--pythonpath",
                "code",
                "--app",
                "greeter:app('hi', repeat=2)",
                "--access-log",
                str(accessLog),
                "--endpoint",
                _server.LOOPBACK,
            ],
        )
        status, _, body = _server.request(server, "GET", "/environ?q=1")
        self.assertEqual((status, body), (200, b"hihi"))
        server.stop()
        self.assertNotIn("/environ", server.output)
        match = _COMBINED.search(accessLog.read_text())
        self.assertIsNotNone(match, accessLog.read_text())

    def test_environmentOnly(self) -> None:
        """
        The same server configured only through C{TWSGI_*} variables: two
        whitespace-separated endpoints, threads, chdir, pythonpath, the access
        log on standard output, and exposed tracebacks.
        """
        home = _server.temporaryDirectory(self)
        server = _server.start(
            self,
            [],
            listeners=2,
            env={
                "TWSGI_APP": "wsgiapps:app",
                "TWSGI_PYTHONPATH": _server.APPS,
                "TWSGI_ENDPOINT": f"{_server.LOOPBACK}  {_server.LOOPBACK}",
                "TWSGI_THREADS": "3:4",
                "TWSGI_CHDIR": str(home),
                "TWSGI_ACCESS_LOG": "-",
                "TWSGI_EXPOSE_TRACEBACKS": "1",
            },
        )
        status, _, body = _server.request(
            server, "GET", "/environ?q=1", index=1, headers={"User-Agent": "cli-test"}
        )
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["cwd"], str(home))
        status, _, body = _server.request(server, "GET", "/raise")
        self.assertEqual(status, 500)
        self.assertIn(b"the application failed on purpose", body)
        server.stop()
        log = server.output
        self.assertIn("3-4 threads", log)
        match = _COMBINED.search(log)
        self.assertIsNotNone(match, log)
        self.assertEqual(match.group("agent"), "cli-test")

    def test_accessLogNone(self) -> None:
        """
        C{--access-log none} writes no access line.
        """
        server = _server.start(
            self,
            [
                *APP,
                "wsgiapps:app",
                "--access-log",
                "none",
                "--endpoint",
                _server.LOOPBACK,
            ],
        )
        self.assertEqual(_server.request(server, "GET", "/environ?q=1")[0], 200)
        server.stop()
        self.assertNotIn("/environ", server.output)


class MistakeTests(SynchronousTestCase):
    """
    Operator mistakes end the process with one line on standard error and a
    non-zero status, within a bounded time.
    """

    def assertOneLine(
        self,
        args: list[str],
        expected: str,
        runner: str = "python -m twsgi",
        traceback: str | None = None,
        prefix: tuple[str, ...] = (),
        cwd: str | None = None,
        quiet: bool = False,
    ) -> str:
        """
        Run twsgi with C{args}; it must fail with a last stderr line starting
        with C{twsgi:} and containing C{expected}.  Any other stderr line is
        the application's own traceback, ending in C{traceback}, printed
        once.  With C{quiet}, nothing at all goes to standard output.

        @return: the error line.
        """
        result = _server.run(args, runner=runner, prefix=prefix, cwd=cwd)
        if quiet:
            self.assertEqual(result.stdout, "")
        lines = result.stderr.strip().splitlines()
        self.assertNotEqual(result.returncode, 0, result.stderr)
        self.assertTrue(lines, (result.stdout, result.stderr))
        last = lines[-1]
        self.assertTrue(last.startswith("twsgi: "), result.stderr)
        self.assertIn(expected, last)
        if traceback is None:
            self.assertEqual(len(lines), 1, result.stderr)
        else:
            self.assertEqual(result.stderr.count("Traceback (most recent call"), 1)
            self.assertEqual(lines[0], "Traceback (most recent call last):")
            self.assertIn(traceback, lines[-2])
        return last

    def test_missingApp(self) -> None:
        """
        No C{--app} at all, under each runner.
        """
        for runner in _server.RUNNERS:
            self.assertOneLine([], "no application given: use --app", runner=runner)

    def test_usageErrors(self) -> None:
        """
        An unknown flag (with the closest known one) and a stray argument
        (with the C{--app} it probably meant) are one line under each
        runner, not the whole usage text.
        """
        for runner in _server.RUNNERS:
            self.assertOneLine(
                ["--treads", "2"],
                "option --treads not recognized; did you mean --threads?",
                runner=runner,
                quiet=True,
            )
        self.assertOneLine(
            ["myapp:app"],
            "unexpected argument 'myapp:app' (options start with --); "
            "did you mean --app myapp:app?",
            quiet=True,
        )
        self.assertOneLine(["--app"], "option --app requires argument", quiet=True)

    def test_reloadWithoutHupper(self) -> None:
        """
        C{--reload} without C{hupper} (the C{reload} extra) says what to
        install, also from C{--check-config}, which would otherwise find
        all well in a command that cannot start.
        """
        directory = self.mktemp()
        os.makedirs(directory)
        with open(os.path.join(directory, "hupper.py"), "w") as f:
            f.write("raise ImportError('not installed')\n")
        for extra in ([], ["--check-config"]):
            result = _server.run(
                ["--app", "twsgi.example:app", "--reload", *extra],
                env={"PYTHONPATH": os.path.abspath(directory)},
            )
            self.assertEqual(
                (result.returncode, result.stderr),
                (1, "twsgi: --reload needs hupper: pip install 'twsgi[reload]'\n"),
            )

    def test_missingModule(self) -> None:
        """
        A module that cannot be found.
        """
        self.assertOneLine(
            ["--app", "no_such_module_here:app"],
            "no module named 'no_such_module_here'",
        )

    def test_checkConfigWorkersStartingDirectory(self) -> None:
        """
        C{--check-config} with C{--workers} imports the application from
        where the workers would: also from the directory the command was
        started in (a worker, C{python -m twsgi}, has it on its path), with
        a C{--chdir} elsewhere.
        """
        top = os.path.realpath(str(_server.temporaryDirectory(self)))
        name = f"twsgi_started_{id(self)}"
        with open(os.path.join(top, f"{name}.py"), "w") as f:
            f.write("def app(environ, start_response):\n    return []\n")
        os.mkdir(os.path.join(top, "sub"))
        self.addCleanup(sys.modules.pop, name, None)
        self.addCleanup(os.chdir, os.getcwd())
        os.chdir(top)
        self.patch(sys, "path", [p for p in sys.path if p not in ("", top)])
        error = self.assertRaises(
            SystemExit,
            makeService,
            {
                "app": f"{name}:app",
                "chdir": "sub",
                "workers": "2",
                "endpoint": ["tcp:0:interface=127.0.0.1"],
                "access_log": "none",
                "check_config": True,
            },
            MemoryReactorClock(),
        )
        self.assertEqual(error.code, 0)

    def test_checkConfigLeavesNoAccessLog(self) -> None:
        """
        C{--check-config} opens the access log file to check it, but leaves
        no file it made (one made as root could keep the server's user from
        opening it); a file that was there is left as it was.
        """
        directory = _server.temporaryDirectory(self)
        made = directory / "made.log"
        there = directory / "there.log"
        there.write_text("a line\n")
        for path in (made, there):
            error = self.assertRaises(
                SystemExit,
                makeService,
                {
                    "app": "twsgi.example:app",
                    "endpoint": ["tcp:0:interface=127.0.0.1"],
                    "access_log": str(path),
                    "check_config": True,
                },
                MemoryReactorClock(),
            )
            self.assertEqual(error.code, 0)
        self.assertFalse(made.exists())
        self.assertEqual(there.read_text(), "a line\n")

    def test_checkConfigUnderDaemonLeavesNoAccessLog(self) -> None:
        """
        Under a C{twistd} that would daemonize, C{--check-config} leaves no
        C{twistd-access.log} either (the file the access log goes to then).
        """
        directory = _server.temporaryDirectory(self)
        options = Options()
        options.parent = {  # type: ignore[attr-defined]
            "nodaemon": False,
            "logfile": str(directory / "twistd.log"),
        }
        options.parseOptions(
            ["--app", "twsgi.example:app", "--endpoint", "tcp:0", "--check-config"]
        )
        error = self.assertRaises(
            SystemExit, makeService, options, MemoryReactorClock()
        )
        self.assertEqual(error.code, 0)
        self.assertEqual(list(directory.iterdir()), [])

    def test_missingModuleUnderWorkers(self) -> None:
        """
        Under C{--workers}, the supervisor finds that the module is missing
        before it starts a worker, from where the workers would import it
        (C{--chdir}, C{--pythonpath}): the same one line, with every runner.
        """
        directory = _server.temporaryDirectory(self)
        for runner in _server.RUNNERS:
            self.assertOneLine(
                ["--workers", "2", "--app", "no_such_module_here:app"],
                "no module named 'no_such_module_here'",
                runner=runner,
            )
        self.assertOneLine(
            ["--workers", "2", "--chdir", str(directory), "--app", "x:app"],
            f"no module named 'x' (searched from {str(directory)!r}",
        )

    def test_missingAttribute(self) -> None:
        """
        A module without the named attribute.
        """
        self.assertOneLine([*APP, "wsgiapps:nothere"], "has no attribute 'nothere'")

    def test_notCallable(self) -> None:
        """
        An attribute that is not a WSGI application.
        """
        self.assertOneLine(
            [*APP, "wsgiapps:notCallable"], "not a WSGI application (a callable)"
        )

    def test_factoryRaised(self) -> None:
        """
        A factory that raised: its traceback once, then the one line.
        """
        self.assertOneLine(
            [*APP, "wsgiapps:failingFactory('no')"],
            "the factory raised RuntimeError: factory refused: no",
            traceback="RuntimeError: factory refused: no",
        )

    def test_moduleRaised(self) -> None:
        """
        A module that raised while imported: its traceback once, then the one
        line.
        """
        self.assertOneLine(
            [*APP, "brokenapp:app"],
            "importing 'brokenapp' raised RuntimeError",
            traceback="RuntimeError: brokenapp cannot be imported",
        )

    def test_fileName(self) -> None:
        """
        C{foo.py} given for C{foo:app}: the message says what to type.
        """
        self.assertOneLine(["--app", "wsgiapps.py"], "--app wsgiapps:app")

    def test_hostPortEndpoint(self) -> None:
        """
        An endpoint written as C{HOST:PORT} is one line naming the endpoint
        string and the C{--bind} to write, also for C{--check-config}.
        """
        for extra in ([], ["--check-config"]):
            self.assertOneLine(
                [*APP, "wsgiapps:app", "--endpoint", "127.0.0.1:8000", *extra],
                "'127.0.0.1:8000' is not a valid endpoint string: write "
                "'tcp:8000:interface=127.0.0.1' (or --bind 127.0.0.1:8000)",
            )

    def test_listenerGivenTwice(self) -> None:
        """
        One address given twice (the same C{--bind}, or a C{--bind} and the
        C{--endpoint} it means, or one C{--endpoint} written two ways) is one
        line from C{--check-config} too, which said all was well before the
        start failed with "address in use"; port 0 twice is two listeners.
        """
        for args in (
            ["--bind", "127.0.0.1:8000", "--bind", "127.0.0.1:8000"],
            ["--bind", "127.0.0.1:8000", "--endpoint", "tcp:8000:interface=127.0.0.1"],
            [
                *("--endpoint", "tcp:8000:interface=127.0.0.1"),
                *("--endpoint", "tcp:port=8000:interface=127.0.0.1"),
            ],
            ["--health-endpoint", "unix:a.sock", "--metrics-endpoint", "unix:a.sock"],
        ):
            for extra in (["--check-config"], ["--check-config", "--workers", "2"]):
                self.assertOneLine(
                    [*APP, "wsgiapps:app", *args, *extra], "is given twice"
                )
        result = _server.run(
            [*APP, "wsgiapps:app", "--bind", "127.0.0.1:0", "--bind", "127.0.0.1:0"]
            + ["--check-config"]
        )
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_hostPortAdminEndpoint(self) -> None:
        """
        An admin listener written as C{HOST:PORT} gets the endpoint string to
        write, and no C{--bind}, which would listen for the application
        instead; also with C{--workers}.
        """
        for flag in ("--health-endpoint", "--metrics-endpoint"):
            for extra in (["--check-config"], ["--workers", "2"]):
                line = self.assertOneLine(
                    [*APP, "wsgiapps:app", flag, "127.0.0.1:9000", *extra],
                    f"{flag} (from the command line): '127.0.0.1:9000' is not a "
                    "valid endpoint string: write 'tcp:9000:interface=127.0.0.1'",
                )
                self.assertNotIn("--bind", line)

    def test_portOutOfRange(self) -> None:
        """
        A port outside 0-65535 is refused by C{--check-config} and by a
        normal start, in one line, from C{--endpoint} or C{--bind}, also
        with C{--workers}.
        """
        for args in (
            ["--endpoint", "tcp:70000", "--check-config"],
            ["--endpoint", "tcp:70000"],
            ["--endpoint", "tcp:70000", "--workers", "2"],
        ):
            self.assertOneLine(
                [*APP, "wsgiapps:app", *args],
                "--endpoint (from the command line): 'tcp:70000' is not a valid "
                "endpoint string: port 70000 is outside 0-65535",
                quiet=True,
            )
        self.assertOneLine(
            [*APP, "wsgiapps:app", "--bind", "127.0.0.1:70000", "--check-config"],
            "--bind (from the command line): '127.0.0.1:70000': port 70000 is "
            "outside 0-65535",
            quiet=True,
        )

    def test_emptyInterface(self) -> None:
        """
        An empty C{interface=} (an unset variable in C{interface=$HOST}) is
        refused in one line, not taken as every address.
        """
        self.assertOneLine(
            [*APP, "wsgiapps:app", "--endpoint", "tcp:0:interface=", "--check-config"],
            "--endpoint (from the command line): 'tcp:0:interface=' is not a "
            "valid endpoint string: interface= is empty: name an address "
            "(interface=127.0.0.1), or leave interface= out to listen on every "
            "address",
            quiet=True,
        )

    def test_malformedEndpoint(self) -> None:
        """
        A malformed endpoint string is named, with the reason, under each
        runner.
        """
        for runner in _server.RUNNERS:
            self.assertOneLine(
                [*APP, "wsgiapps:app", "--endpoint", "tcp:notaport"],
                "'tcp:notaport' is not a valid endpoint string: "
                "'notaport' is not a port number",
                runner=runner,
            )

    def test_listenerOptionFile(self) -> None:
        """
        A C{;client-ca=} file that cannot be read is named with the whole
        listener it ends, with and without C{--workers} (whose supervisor
        checks it too, before any worker starts).
        """
        certs = makeCertificates(str(_server.temporaryDirectory(self)))
        listener = (
            f"ssl:0:interface=127.0.0.1:privateKey={certs}/server.key"
            f":certKey={certs}/server.pem;client-ca={certs}/missing.pem"
        )
        for extra in ([], ["--workers", "2"]):
            self.assertOneLine(
                [*APP, "wsgiapps:app", "--endpoint", listener, *extra],
                f"--endpoint (from the command line): {listener!r} is not a "
                f"valid endpoint string: client-ca={certs}/missing.pem: "
                f"cannot read {certs}/missing.pem: No such file or directory",
                quiet=True,
            )

    def test_portInUse(self) -> None:
        """
        A port already in use is named, under each runner, and the process
        ends even though its other listener started.
        """
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = f"tcp:{taken.getsockname()[1]}:interface=127.0.0.1"
        for runner in _server.RUNNERS:
            self.assertOneLine(
                [
                    *APP,
                    "wsgiapps:app",
                    "--endpoint",
                    _server.LOOPBACK,
                    "--endpoint",
                    busy,
                ],
                f"cannot listen on {busy}: Address already in use",
                runner=runner,
            )

    def test_permissionDenied(self) -> None:
        """
        Port 80 as an unprivileged user (C{nobody}, when the tests run as
        root) is refused, naming the endpoint.
        """
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
            if int(f.read()) <= 80:
                self.skipTest("any user may bind port 80 on this machine")
        prefix: tuple[str, ...] = ()
        if os.geteuid() == 0:
            prefix = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups")
            probe = subprocess.run(
                [*prefix, sys.executable, "-c", "import twsgi"],
                capture_output=True,
                timeout=60,
                cwd="/",
            )
            if probe.returncode:
                # For example a virtualenv under a directory only root may
                # enter (tox makes .tox mode 0700 when it creates it).
                self.skipTest(
                    "user nobody cannot run this test's Python: "
                    + probe.stderr.decode(errors="replace").strip()[-200:]
                )
        cwd = _server.temporaryDirectory(self)
        cwd.chmod(0o777)
        for runner in _server.RUNNERS:
            self.assertOneLine(
                [*APP, "wsgiapps:app", "--endpoint", "tcp:80:interface=127.0.0.1"],
                "cannot listen on tcp:80:interface=127.0.0.1: Permission denied",
                runner=runner,
                prefix=prefix,
                cwd=str(cwd),
            )


if sys.platform != "linux":  # pragma: no cover
    del MistakeTests.test_permissionDenied
