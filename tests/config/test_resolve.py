"""
Tests for L{twsgi.config.settings}, L{twsgi.config.resolve} and the L{twsgi.cli.options.Options}
generated from them: command line over C{TWSGI_*} over the defaults.
"""

from __future__ import annotations

import os
import typing
from importlib.machinery import SourceFileLoader
from types import ModuleType
from typing import Any

import attrs
from twisted.trial.unittest import SynchronousTestCase

from twsgi.cli.options import Options
from twsgi.config.model import ServerConfig
from twsgi.config.resolve import ConfigError, resolveConfig
from twsgi.config.settings import SETTINGS, SETTINGS_BY_NAME, Setting, parseThreads


def parse(*argv: str) -> dict[str, Any]:
    """
    Parse C{argv} with the generated L{Options} and return what was given.
    """
    options = Options()
    options.parseOptions(list(argv))
    return options.given  # type: ignore[attr-defined, no-any-return]


class SettingsTableTests(SynchronousTestCase):
    """
    The settings table is consistent.
    """

    def test_uniqueNames(self) -> None:
        """
        Names, flags and environment variables are unique.
        """
        for attribute in ["name", "flag", "envvar"]:
            values = [getattr(s, attribute) for s in SETTINGS]
            self.assertEqual(len(values), len(set(values)), attribute)
        self.assertEqual(set(SETTINGS_BY_NAME), {s.name for s in SETTINGS})

    def test_envvar(self) -> None:
        """
        The environment variable is C{TWSGI_} and the upper-cased name.
        """
        self.assertEqual(SETTINGS_BY_NAME["access_log"].envvar, "TWSGI_ACCESS_LOG")

    def test_helpTexts(self) -> None:
        """
        Every setting has help text.
        """
        for setting in SETTINGS:
            self.assertTrue(setting.help.strip(), setting.name)

    def test_noneAwayFromDefault(self) -> None:
        """
        A setting whose value may be C{None} while its default is not takes
        C{none} for it: C{--print-config} writes C{"none"} for that value.
        """
        found = []
        for setting in SETTINGS:
            if setting.default is None or isinstance(setting.convert, type):
                continue
            returned = typing.get_type_hints(setting.convert)["return"]
            if type(None) in typing.get_args(returned):
                found.append(setting.name)
                self.assertIsNone(setting.convert("none"), setting.name)
        self.assertEqual(found, ["ready_queue_limit"])

    def test_parseThreads(self) -> None:
        """
        C{MIN:MAX} and C{N} parse; anything else is a L{ValueError}.
        """
        self.assertEqual(parseThreads("4:32"), (4, 32))
        self.assertEqual(parseThreads(" 0 : 8 "), (0, 8))
        self.assertEqual(parseThreads("6"), (6, 6))
        for bad in ["", "a", "4:", ":4", "8:4", "0", "0:0", "-1:4", "1:2:3"]:
            self.assertRaises(ValueError, parseThreads, bad)


_GENERATOR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "scripts",
    "gen-config",
)


def _loadGenerator() -> ModuleType:
    """
    Load C{scripts/gen-config}, which writes C{twsgi/config/model.py}.
    """
    loader = SourceFileLoader("gen_config", _GENERATOR)
    module = ModuleType(loader.name)
    module.__file__ = _GENERATOR
    loader.exec_module(module)
    return module


class ModelTests(SynchronousTestCase):
    """
    L{ServerConfig} is generated from the settings table by
    C{scripts/gen-config}.
    """

    def setUp(self) -> None:
        self.generator = _loadGenerator()

    def test_fresh(self) -> None:
        """
        The committed C{model.py} is what the generator writes for today's
        table: run C{scripts/gen-config} after changing the table.
        """
        import twsgi.config.model

        with open(twsgi.config.model.__file__, encoding="utf-8") as f:
            committed = f.read()
        self.assertEqual(
            committed,
            self.generator.modelSource(),
            "src/twsgi/config/model.py is out of date: run scripts/gen-config",
        )

    def test_oneFieldPerSetting(self) -> None:
        """
        L{ServerConfig} has one field per setting, in the table's order, with
        the setting's default.
        """
        fields = attrs.fields(ServerConfig)
        self.assertEqual([f.name for f in fields], [s.name for s in SETTINGS])
        for field, setting in zip(fields, SETTINGS, strict=True):
            self.assertEqual(field.default, setting.default, setting.name)

    def test_types(self) -> None:
        """
        A field is typed by what its converter returns: a tuple of it for a
        repeatable setting, and C{None} too when that is the default.
        """
        settingType = self.generator.settingType
        self.assertEqual(settingType(SETTINGS_BY_NAME["threads"]), "tuple[int, int]")
        self.assertEqual(settingType(SETTINGS_BY_NAME["bind"]), "tuple[str, ...]")
        self.assertEqual(settingType(SETTINGS_BY_NAME["app"]), "str | None")
        self.assertEqual(
            settingType(SETTINGS_BY_NAME["access_log_rotate"]), "int | str | None"
        )
        self.assertEqual(
            settingType(SETTINGS_BY_NAME["static"]), "tuple[tuple[str, str], ...]"
        )
        self.assertEqual(settingType(SETTINGS_BY_NAME["no_http2"]), "bool")
        self.assertEqual(
            settingType(SETTINGS_BY_NAME["ready_queue_limit"]),
            'int | Literal["max-pending"] | None',
        )

    def test_newSetting(self) -> None:
        """
        A setting added to the table becomes a typed field with its default.
        """
        extra = Setting(
            name="frobnicate_level",
            flag="frobnicate-level",
            convert=float,
            default=("a", "b"),
            help="How much to frobnicate.",
            multiple=True,
        )
        source = self.generator.modelSource([*SETTINGS, extra])
        self.assertIn('    frobnicate_level: tuple[float, ...] = ("a", "b")\n', source)
        self.assertIn("    @ivar frobnicate_level: How much to frobnicate.\n", source)

    def test_unknownType(self) -> None:
        """
        A converter that returns a type the model cannot name without an
        import, or a default with no literal, stops the generator.
        """

        def convert(value: str) -> SynchronousTestCase:
            raise ValueError(value)

        extra = Setting(name="x", flag="x", convert=convert, default=None, help="X.")
        self.assertRaises(TypeError, self.generator.modelSource, [extra])
        extra = Setting(name="x", flag="x", convert=str, default=object(), help="X.")
        self.assertRaises(ValueError, self.generator.modelSource, [extra])


class ResolveConfigTests(SynchronousTestCase):
    """
    L{resolveConfig} takes the command line, then C{TWSGI_*}, then defaults.
    """

    def test_defaults(self) -> None:
        """
        With nothing given, every setting has its default.
        """
        config = resolveConfig({}, {})
        for setting in SETTINGS:
            self.assertEqual(getattr(config, setting.name), setting.default)
        self.assertEqual(config.endpoint, ("tcp:8000:interface=127.0.0.1",))
        self.assertEqual(config.threads, (4, 32))

    def test_environment(self) -> None:
        """
        C{TWSGI_*} variables set their settings, converted; a repeatable
        setting takes whitespace-separated values; unrelated variables are
        ignored.
        """
        config = resolveConfig(
            {},
            {
                "TWSGI_APP": "pkg.mod:app",
                "TWSGI_THREADS": "2:5",
                "TWSGI_ENDPOINT": "tcp:0  tcp6:0:interface=\\:\\:1",
                "TWSGI_EXPOSE_TRACEBACKS": "yes",
                "TWSGI_PYTHONPATH": "a b",
                "PATH": "/bin",
            },
        )
        self.assertEqual(config.app, "pkg.mod:app")
        self.assertEqual(config.threads, (2, 5))
        self.assertEqual(config.endpoint, ("tcp:0", "tcp6:0:interface=\\:\\:1"))
        self.assertIs(config.expose_tracebacks, True)
        self.assertEqual(config.pythonpath, ("a", "b"))
        self.assertEqual(config.access_log, "-")

    def test_commandLineWins(self) -> None:
        """
        A setting on the command line wins over its C{TWSGI_*} variable,
        which wins over the default.
        """
        config = resolveConfig(
            {"app": "cli:app", "endpoint": ["tcp:1"]},
            {"TWSGI_APP": "env:app", "TWSGI_ENDPOINT": "tcp:2", "TWSGI_THREADS": "3"},
        )
        self.assertEqual(
            (config.app, config.endpoint, config.threads),
            ("cli:app", ("tcp:1",), (3, 3)),
        )

    def test_emptyRepeatableVariable(self) -> None:
        """
        An empty or blank variable of a repeatable setting holds no values,
        so the default applies (an empty C{TWSGI_ENDPOINT} does not leave the
        server listening nowhere).
        """
        for text in ["", "  "]:
            config = resolveConfig(
                {}, {"TWSGI_ENDPOINT": text, "TWSGI_PYTHONPATH": text}
            )
            self.assertEqual(config.endpoint, ("tcp:8000:interface=127.0.0.1",))
            self.assertEqual(config.pythonpath, ())

    def test_switchFalseFromEnvironment(self) -> None:
        """
        A switch is off when its variable says so.
        """
        for text in ["0", "false", "No", "off", ""]:
            config = resolveConfig({}, {"TWSGI_EXPOSE_TRACEBACKS": text})
            self.assertIs(config.expose_tracebacks, False, text)

    def test_badValues(self) -> None:
        """
        A bad value is a one-line L{ConfigError} naming the flag and where
        the value came from.
        """
        table: list[tuple[dict[str, Any], dict[str, str], list[str]]] = [
            ({"threads": "8:4"}, {}, ["--threads", "the command line"]),
            ({}, {"TWSGI_THREADS": "lots"}, ["--threads", "$TWSGI_THREADS"]),
            ({}, {"TWSGI_EXPOSE_TRACEBACKS": "maybe"}, ["$TWSGI_EXPOSE_TRACEBACKS"]),
            ({}, {"TWSGI_APP": ""}, ["--app", "$TWSGI_APP", "must not be empty"]),
            ({"endpoint": [""]}, {}, ["--endpoint", "must not be empty"]),
            ({}, {"TWSGI_HTTP2_RESET_RATE": "abc"}, ["--http2-reset-rate", "a rate"]),
            ({"http2_empty_frames": "0"}, {}, ["--http2-empty-frames", "at least 1"]),
            (
                {},
                {"TWSGI_THREAD_PLACEMENT": "far"},
                ["--thread-placement", "'far' is not 'near' or 'kernel'"],
            ),
        ]
        for commandLine, environ, expected in table:
            error = self.assertRaises(ConfigError, resolveConfig, commandLine, environ)
            self.assertNotIn("\n", str(error))
            for text in expected:
                self.assertIn(text, str(error))

    def test_checkAndPrint(self) -> None:
        """
        C{--check-config} and C{--print-config} together, from any source,
        are refused in one line naming both: each ends the command, and the
        settings would be printed unchecked.
        """
        error = self.assertRaises(
            ConfigError,
            resolveConfig,
            {"print_config": True},
            {"TWSGI_CHECK_CONFIG": "1"},
        )
        self.assertEqual(
            str(error),
            "--check-config (from $TWSGI_CHECK_CONFIG) and --print-config (from "
            "the command line) cannot be combined: each ends the command "
            "(--print-config checks nothing but the values); give one of them",
        )

    def test_readyQueueLimit(self) -> None:
        """
        C{--ready-queue-limit} is C{max-pending} by default, and takes a
        whole number of at least 0, C{none} (C{None}) or C{max-pending}; any
        other value is a one-line error that lists them.
        """
        self.assertEqual(resolveConfig({}, {}).ready_queue_limit, "max-pending")
        for text, value in [
            ("0", 0),
            (" 7 ", 7),
            ("none", None),
            ("None", None),
            ("Max-Pending", "max-pending"),
        ]:
            config = resolveConfig({"ready_queue_limit": text}, {})
            self.assertEqual(config.ready_queue_limit, value, text)
        for text, why in [
            ("-1", "'-1' must be 0 or more"),
            ("lots", "'lots' is not a whole number, 'none' or 'max-pending'"),
            ("1.5", "'1.5' is not a whole number, 'none' or 'max-pending'"),
        ]:
            error = self.assertRaises(
                ConfigError, resolveConfig, {"ready_queue_limit": text}, {}
            )
            self.assertIn(why, str(error))

    def test_unknown(self) -> None:
        """
        An unknown setting name is a L{ConfigError}.
        """
        error = self.assertRaises(ConfigError, resolveConfig, {"nope": "1"}, {})
        self.assertIn("nope", str(error))

    def test_frozen(self) -> None:
        """
        A L{ServerConfig} cannot be changed, only evolved.
        """
        config = resolveConfig({}, {})
        self.assertRaises(
            attrs.exceptions.FrozenInstanceError, setattr, config, "app", "x"
        )
        self.assertEqual(attrs.evolve(config, app="x:y").app, "x:y")
        self.assertIsInstance(config, ServerConfig)


class OptionsTests(SynchronousTestCase):
    """
    The generated L{Options} parse every setting and only parse.
    """

    def test_nothingGiven(self) -> None:
        """
        Without options nothing is given, so the environment and defaults
        decide.
        """
        self.assertEqual(parse(), {})

    def test_everySetting(self) -> None:
        """
        Each setting has its flag; repeatable ones collect their values in
        order and a switch gives C{True}.
        """
        given = parse(
            "--app",
            "m:app",
            "--endpoint",
            "tcp:0",
            "--endpoint",
            "unix:/tmp/s",
            "--threads",
            "1:2",
            "--access-log",
            "none",
            "--chdir",
            "/srv",
            "--pythonpath",
            "a",
            "--pythonpath",
            "b",
            "--expose-tracebacks",
        )
        self.assertEqual(
            given,
            {
                "app": "m:app",
                "endpoint": ["tcp:0", "unix:/tmp/s"],
                "threads": "1:2",
                "access_log": "none",
                "chdir": "/srv",
                "pythonpath": ["a", "b"],
                "expose_tracebacks": True,
            },
        )

    def test_eachSettingHasAnOption(self) -> None:
        """
        Every setting of the table, also ones added later, has its option:
        a switch gives C{True}, a repeatable option a list, others the text.
        """
        for setting in SETTINGS:
            if setting.switch:
                self.assertEqual(parse("--" + setting.flag), {setting.name: True})
            elif setting.multiple:
                self.assertEqual(
                    parse("--" + setting.flag, "v1", "--" + setting.flag, "v2"),
                    {setting.name: ["v1", "v2"]},
                )
            else:
                self.assertEqual(parse("--" + setting.flag, "v1"), {setting.name: "v1"})

    def test_resolved(self) -> None:
        """
        What the options give resolves with the command line first.
        """
        config = resolveConfig(
            parse("--threads", "2:3", "--endpoint", "tcp:0"),
            {"TWSGI_THREADS": "9", "TWSGI_APP": "env:app"},
        )
        self.assertEqual(
            (config.threads, config.endpoint, config.app),
            ((2, 3), ("tcp:0",), "env:app"),
        )

    def test_optionsDoNotValidate(self) -> None:
        """
        The options only parse: a bad value is left for L{resolveConfig}.
        """
        self.assertEqual(parse("--threads", "x"), {"threads": "x"})

    def test_unknownOption(self) -> None:
        """
        An unknown option ends the process with one line (not twistd's whole
        usage text).
        """
        error = self.assertRaises(SystemExit, parse, "--no-such-option")
        self.assertEqual(
            error.code,
            "twsgi: option --no-such-option not recognized (--help lists the options)",
        )

    def test_help(self) -> None:
        """
        The help text lists every flag and its C{TWSGI_*} variable.
        """
        text = str(Options())
        for setting in SETTINGS:
            self.assertIn("--" + setting.flag, text)
            self.assertIn(setting.envvar, text)
