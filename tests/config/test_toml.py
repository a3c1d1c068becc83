"""
Tests for L{twsgi.config.toml} and the C{--config}, C{--check-config} and
C{--print-config} settings.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

import attrs
import tomllib
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.server import ROOT, run
from twsgi.cli.options import makeService
from twsgi.config.resolve import (
    ConfigError,
    inertSettings,
    resolveConfig,
    resolveSources,
)
from twsgi.config.toml import ConfigFileError, parseConfigFile, renderConfig
from twsgi.testing import SynchronousReactor


class ConfigFileTests(SynchronousTestCase):
    """
    Settings from a TOML file.
    """

    def write(self, text: str) -> str:
        path = self.mktemp() + ".toml"
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_schema(self) -> None:
        """
        Keys are setting names or flags; numbers, strings, booleans and
        lists take the forms the command line would.
        """
        path = self.write(
            'app = "twsgi.example:app"\n'
            'endpoint = ["tcp:0", "unix:/tmp/x.sock"]\n'
            "threads = 8\n"
            'access-log-format = "json"\n'
            "expose-tracebacks = true\n"
            'static = "/s=."\n'
            "ready_queue_limit = 0\n"
        )
        config = resolveConfig({"config": path}, {})
        self.assertEqual(config.app, "twsgi.example:app")
        self.assertEqual(config.endpoint, ("tcp:0", "unix:/tmp/x.sock"))
        self.assertEqual(config.threads, (8, 8))
        self.assertEqual(config.access_log_format, "json")
        self.assertTrue(config.expose_tracebacks)
        self.assertEqual(config.static, (("/s", "."),))
        self.assertEqual(config.ready_queue_limit, 0)

    def test_precedence(self) -> None:
        """
        The command line beats C{TWSGI_*}, which beats the file, which beats
        the defaults; C{TWSGI_CONFIG} names the file too.
        """
        path = self.write('threads = "2:3"\napp = "a:b"\naccess_log = "none"\n')
        environ = {"TWSGI_CONFIG": path, "TWSGI_THREADS": "5:6", "TWSGI_APP": "c:d"}
        config, sources = resolveSources({"app": "e:f"}, environ)
        self.assertEqual(
            (config.app, config.threads, config.access_log, config.log_format),
            ("e:f", (5, 6), "none", "text"),
        )
        self.assertEqual(sources["app"], "the command line")
        self.assertEqual(sources["threads"], "$TWSGI_THREADS")
        self.assertEqual(sources["access_log"], f"{path}, key 'access_log'")
        self.assertNotIn("log_format", sources)

    def test_badValue(self) -> None:
        """
        A bad value is one line naming the setting, the file and the key.
        """
        path = self.write('threads = "many"\n')
        e = self.assertRaises(ConfigError, resolveConfig, {"config": path}, {})
        self.assertEqual(
            str(e),
            f"--threads (from {path}, key 'threads'): 'many' is not MIN:MAX or N "
            "(for example 4:32)",
        )

    def test_unknownKey(self) -> None:
        """
        An unknown key is one line naming it and the file, with the setting
        it probably meant, written as the key is (a flag or a name), or else
        the keys there are.
        """
        for key, expected in [
            ("threds", "is not a setting (did you mean 'threads'?)"),
            ("max-body", "is not a setting (did you mean 'max-body-size'?)"),
            ("access_logg", "is not a setting (did you mean 'access_log'?)"),
            ("zzz", "is not a setting (known: app, endpoint, bind, threads,"),
        ]:
            path = self.write(f'app = "a:b"\n{key} = 4\n')
            e = self.assertRaises(ConfigError, resolveConfig, {"config": path}, {})
            self.assertTrue(
                str(e).startswith(f"{path}: key {key!r} {expected}"), str(e)
            )
            self.assertNotIn("\n", str(e))

    def test_wrongShapes(self) -> None:
        """
        A list for a single setting, a table, a boolean for a setting that
        is no switch, or a setting only the command line takes, is refused
        with the key named.
        """
        for text, expected in [
            ('app = ["a:b"]\n', "--app (from P, key 'app'): expected one value"),
            ("[app]\nx = 1\n", "--app (from P, key 'app'): expected one value"),
            ("endpoint = [[1]]\n", "--endpoint (from P, key 'endpoint'): [1]"),
            ('config = "x"\n', "P: key 'config' can only be given"),
            ("print-config = true\n", "P: key 'print-config' can only be given"),
            ('app = "a"\napp-x = 1\n', "P: key 'app-x' is not a setting"),
            (
                "access-log = false\n",
                "--access-log (from P, key 'access-log'): expected PATH|-|none, "
                "not the boolean false",
            ),
            ("endpoint = true\n", "--endpoint (from P, key 'endpoint'): expected"),
        ]:
            data = tomllib.loads(text)
            e = self.assertRaises(ConfigFileError, parseConfigFile, data, "P")
            self.assertTrue(str(e).startswith(expected), (text, str(e)))

    def test_noEndpoint(self) -> None:
        """
        C{endpoint = []} without C{bind} would leave the application
        listening nowhere: it is refused in one line naming the key; with
        C{bind}, as C{--print-config} writes it, it is read.
        """
        path = self.write('app = "a:b"\nendpoint = []\n')
        e = self.assertRaises(ConfigError, resolveConfig, {"config": path}, {})
        self.assertEqual(
            str(e),
            f"--endpoint (from {path}, key 'endpoint'): no endpoint leaves the "
            "application listening nowhere: name one, give bind, or leave the "
            "key out for the default tcp:8000:interface=127.0.0.1",
        )
        path = self.write('endpoint = []\nbind = ["127.0.0.1:9000"]\n')
        config = resolveConfig({"config": path}, {})
        self.assertEqual(config.bind, ("127.0.0.1:9000",))

    def test_givenTwice(self) -> None:
        """
        A setting given by name and by flag is refused.
        """
        e = self.assertRaises(
            ConfigFileError,
            parseConfigFile,
            {"access_log": "-", "access-log": "-"},
            "P",
        )
        self.assertIn("given twice", str(e))

    def test_unreadable(self) -> None:
        """
        A missing file or bad TOML is one line naming the file.
        """
        e = self.assertRaises(
            ConfigError, resolveConfig, {"config": "/no/such.toml"}, {}
        )
        self.assertEqual(str(e), "--config '/no/such.toml': No such file or directory")
        e = self.assertRaises(ConfigError, resolveConfig, {"config": "no.toml"}, {})
        self.assertEqual(
            str(e),
            "--config 'no.toml': No such file or directory (read from "
            f"{os.getcwd()!r}, before any --chdir)",
        )
        path = self.write("app = \n")
        e = self.assertRaises(ConfigError, resolveConfig, {"config": path}, {})
        self.assertTrue(str(e).startswith(f"{path}: not valid TOML: "), str(e))

    def test_notUtf8(self) -> None:
        """
        A file that is not UTF-8 (TOML's encoding) is one line naming the
        file and where the bad byte is.
        """
        path = self.mktemp() + ".toml"
        with open(path, "wb") as f:
            f.write(b'app = "caf\xe9:app"\n')
        e = self.assertRaises(ConfigError, resolveConfig, {"config": path}, {})
        self.assertEqual(
            str(e), f"{path}: not valid TOML: not UTF-8 (byte 0xe9 at offset 10)"
        )

    def test_byteOrderMark(self) -> None:
        """
        A file that begins with a UTF-8 byte order mark (as some Windows
        editors save it), which TOML does not allow, is one line saying so,
        not tomllib's error at line 1, column 1 where nothing shows.
        """
        path = self.mktemp() + ".toml"
        with open(path, "wb") as f:
            f.write(b'\xef\xbb\xbfapp = "m:app"\n')
        e = self.assertRaises(ConfigError, resolveConfig, {"config": path}, {})
        self.assertEqual(
            str(e),
            f"{path}: not valid TOML: it begins with a byte order mark (save it "
            "as UTF-8 without one)",
        )

    def test_printedConfigReadsBack(self) -> None:
        """
        What C{--print-config} prints is a config file giving the same
        settings.
        """
        config, sources = resolveSources(
            {
                "app": 'pkg.mod:make("x\\\\y")',
                "threads": "2:9",
                "static": ["/s=/srv/static", "/m=media"],
                "access_log_rotate": "10M",
                "access_log_format": '%(h)s "%(r)s"',
                "reload": True,
                "ready_queue_limit": "0",
            },
            {},
        )
        text = renderConfig(config, sources)
        self.assertIn('threads = "2:9"  # the command line', text)
        path = self.write(text)
        readBack = resolveConfig({"config": path}, {})
        self.assertEqual(attrs.evolve(readBack, config=None), config)

    def test_noneReadsBack(self) -> None:
        """
        A setting given C{none} away from a default that is something
        (C{--ready-queue-limit none}, default C{max-pending}) prints as
        C{"none"}, not as unset, which would read back as the default.
        """
        config, sources = resolveSources({"ready_queue_limit": "none"}, {})
        text = renderConfig(config, sources)
        self.assertIn('ready_queue_limit = "none"  # the command line', text)
        readBack = resolveConfig({"config": self.write(text)}, {})
        self.assertIsNone(readBack.ready_queue_limit)


class DefaultsReadBackTests(SynchronousTestCase):
    """
    Every setting of the table, at its default, prints and reads back.
    """

    def readBack(self) -> tuple[Any, str, Any, dict[str, str]]:
        """
        The default settings, their printed config file, and what that file
        resolves to, with its sources.
        """
        config, sources = resolveSources({}, {})
        text = renderConfig(config, sources)
        path = self.mktemp() + ".toml"
        with open(path, "w") as f:
            f.write(text)
        readBack, readSources = resolveSources({"config": path}, {})
        return config, text, readBack, readSources

    def test_defaults(self) -> None:
        """
        The printed defaults are a config file giving the defaults.
        """
        config, text, readBack, _ = self.readBack()
        self.assertIn("graceful_timeout = 30.0  # default", text)
        self.assertEqual(attrs.evolve(readBack, config=None), config)

    def test_noWarnings(self) -> None:
        """
        The printed defaults, read back, draw no warning of a setting that
        has no effect: C{ready_queue_limit = "max-pending"}, printed as a
        value, is its default (it drew one, without a health listener).
        """
        _, text, readBack, readSources = self.readBack()
        self.assertIn('ready_queue_limit = "max-pending"  # default', text)
        self.assertIn("ready_queue_limit", readSources)
        self.assertEqual(inertSettings(readBack, readSources), [])

    def test_oneProcessStaysOne(self) -> None:
        """
        The printed defaults do not give C{workers}: a server started with
        them stays one process, where C{workers = 1} would run a supervisor.
        A C{workers} given is printed as it is.
        """
        _, text, readBack, readSources = self.readBack()
        self.assertIn("# workers = 1  # default", text)
        self.assertEqual(readBack.workers, 1)
        self.assertNotIn("workers", readSources)
        given, sources = resolveSources({"workers": "1"}, {})
        self.assertIn("\nworkers = 1  # ", renderConfig(given, sources))


class CommandLineTests(SynchronousTestCase):
    """
    C{--check-config} and C{--print-config} through C{python -m twsgi}.
    """

    def twsgi(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run(args, cwd=ROOT, env={"PYTHONPATH": ROOT, **(env or {})}, timeout=60)

    def test_checkConfig(self) -> None:
        """
        A good config exits 0 and says so; a bad value exits 1 with one line
        naming the key and file; an application that does not load exits 1.
        """
        path = os.path.abspath(self.mktemp()) + ".toml"
        with open(path, "w") as f:
            f.write('app = "tests.apps.opsapp:app"\nendpoint = "tcp:0"\n')
        good = self.twsgi("--config", path, "--check-config")
        self.assertEqual(
            (good.returncode, good.stdout),
            (0, "twsgi: configuration OK (application tests.apps.opsapp:app)\n"),
        )
        with open(path, "w") as f:
            f.write('app = "tests.apps.opsapp:app"\naccess-log-rotate = "weekly"\n')
        bad = self.twsgi("--config", path, "--check-config")
        self.assertEqual(bad.returncode, 1)
        self.assertEqual(
            bad.stderr,
            f"twsgi: --access-log-rotate (from {path}, key 'access-log-rotate'): "
            "'weekly' is not 'daily', 'none' or a size like 100M\n",
        )
        missing = self.twsgi("--app", "tests.nosuchmodule:app", "--check-config")
        self.assertEqual(missing.returncode, 1)
        self.assertIn("tests.nosuchmodule", missing.stderr)

    def test_printConfig(self) -> None:
        """
        C{--print-config} prints every setting with its source and exits 0.
        """
        result = self.twsgi(
            "--print-config", "--threads", "3", env={"TWSGI_APP": "x:y"}
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        lines = result.stdout.splitlines()
        self.assertIn('threads = "3:3"  # the command line', lines)
        self.assertIn('app = "x:y"  # $TWSGI_APP', lines)
        self.assertIn('log_format = "text"  # default', lines)


class LateErrorTests(SynchronousTestCase):
    """
    Settings that can only be checked once resolved (endpoints, static
    directories, the access log file, the application) name their source
    too.
    """

    def failure(
        self, text: str, endpoint: str | None = None, check: bool = True
    ) -> str:
        """
        Make the service of a config file holding C{text} (and C{--endpoint}
        C{endpoint} on the command line); it must fail.

        @return: its one line.
        """
        path = os.path.abspath(self.mktemp()) + ".toml"
        with open(path, "w") as f:
            f.write(text)
        given: dict[str, Any] = {"config": path, "check_config": check}
        if endpoint is not None:
            given["endpoint"] = [endpoint]
        self.patch(os, "environ", {})
        e = self.assertRaises(SystemExit, makeService, given, SynchronousReactor())
        return str(e.code).replace(path, "P")

    def test_fromFile(self) -> None:
        """
        A bad value from the file names the file and key.
        """
        app = 'app = "tests.apps.opsapp:app"\n'
        table = {
            'endpoint = ["nope:1"]': "twsgi: --endpoint (from P, key 'endpoint'): "
            "'nope:1' is not a valid endpoint string: Unknown endpoint type: 'nope'",
            'metrics-endpoint = ["tcp:x"]': "twsgi: --metrics-endpoint (from P, key "
            "'metrics-endpoint'): 'tcp:x' is not a valid endpoint string: "
            "'x' is not a port number",
            'static = ["/s=/no/such/dir"]': "twsgi: --static (from P, key 'static'): "
            "'/no/such/dir' is not a directory",
            'access_log = "/no/such/dir/a.log"': "twsgi: --access-log (from P, key "
            "'access_log'): '/no/such/dir/a.log': No such file or directory",
            'on-start = ["tests.apps.opsapp:nothere"]': "twsgi: --on-start (from P, key "
            "'on-start'): 'tests.apps.opsapp:nothere': module 'tests.apps.opsapp' has no "
            "attribute 'nothere'",
        }
        for text, expected in table.items():
            self.assertEqual(self.failure(app + text), expected)
        self.assertTrue(
            self.failure('app = "tests.nosuchmodule:app"').startswith(
                "twsgi: --app (from P, key 'app'): 'tests.nosuchmodule:app': "
            )
        )

    def test_workers(self) -> None:
        """
        With C{--workers}, the supervisor names the admin listener's own
        flag, not C{--endpoint}.
        """
        self.assertEqual(
            self.failure(
                'app = "tests.apps.opsapp:app"\nworkers = 2\nhealth-endpoint = ["tcp:x"]\n',
                check=False,
            ),
            "twsgi: --health-endpoint (from P, key 'health-endpoint'): "
            "'tcp:x' is not a valid endpoint string: 'x' is not a port number",
        )

    def test_commandLine(self) -> None:
        """
        A bad value from the command line says so, as a bad value found
        while resolving does.
        """
        self.assertEqual(
            self.failure('app = "tests.apps.opsapp:app"\n', endpoint="nope:1"),
            "twsgi: --endpoint (from the command line): 'nope:1' is not a valid "
            "endpoint string: Unknown endpoint type: 'nope'",
        )
