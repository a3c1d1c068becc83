# -*- test-case-name: tests.test_layout -*-
"""
The layout of the package and of its tests: tests mirror the subpackages,
no test module imports another, every C{test-case-name} header names a
test module that exists, every test is one that trial runs too, and the
config becomes runtime objects in one place per layer.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import attrs
from twisted.trial.unittest import SynchronousTestCase

from twsgi.config.model import ServerConfig

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "src" / "twsgi"
TESTS = ROOT / "tests"

OTHER_TEST_PACKAGES = {"helpers", "apps", "integration", "docs", "bench"}
"""
Test directories that mirror no subpackage: shared code, fixture
applications, tests with real peers, of the documentation, of C{bench/}.
"""

_HEADER = re.compile(r"^# -\*- test-case-name: ([\w., ]+) -\*-$", re.M)


def subpackages() -> set[str]:
    """
    The names of twsgi's subpackages.
    """
    return {p.parent.name for p in SOURCE.glob("*/__init__.py")}


def importedTestModules(path: Path) -> list[str]:
    """
    The test modules (C{tests...test_*}) that the module at C{path} imports.
    """
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        else:
            continue
        found.extend(
            m
            for m in modules
            if m.startswith("tests.") and m.rsplit(".", 1)[-1].startswith("test_")
        )
    return found


def headerModules(text: str) -> list[str]:
    """
    The modules a file's C{test-case-name} header names.
    """
    return [
        name.strip()
        for match in _HEADER.finditer(text)
        for name in match.group(1).split(",")
        if name.strip()
    ]


CONFIG_READERS: dict[str, frozenset[str] | None] = {
    # The objects of a service.
    "twsgi.lifecycle.build": None,
    # The objects of a process: its service, a supervisor, a worker's link.
    "twsgi.process.build": None,
    # The command: what it answers (--check-config, --print-config), which
    # process it runs (--workers, --reload), how the runner logs.
    "twsgi.cli.options": frozenset(
        {
            "access_log",
            "app",
            "check_config",
            "log_format",
            "print_config",
            "reload",
            "workers",
        }
    ),
}
"""
The modules that read the fields of a L{ServerConfig}, one per layer, besides
the C{twsgi.config} package, which makes, checks and renders it: each with
the fields it reads, or C{None} for any.
"""

CONFIG_HOLDERS = {
    "twsgi": "exports ServerConfig",
    "twsgi.lifecycle.service": "TwsgiService(config, application, reactor)",
    "twsgi.lifecycle.embed": "serve(application, config=...)",
    "twsgi.testing": "startServer(testCase, application, config=...)",
}
"""
The modules that take a L{ServerConfig} whole and hand it on (to a builder,
or changed with C{attrs.evolve}), reading none of its fields.  No other
module names it: the objects made from it take plain typed arguments.
"""

CONFIG_FIELDS = frozenset(attrs.fields_dict(ServerConfig))

_CONFIG_NAME = re.compile(r"(?i)(config|cfg|resolved)$")


def _namesConfig(node: ast.expr) -> bool:
    """
    Whether an expression is, by its name, a config: C{config},
    C{self.config}, C{options.resolved}, C{serverConfig}...
    """
    if isinstance(node, ast.Name):
        return bool(_CONFIG_NAME.search(node.id))
    if isinstance(node, ast.Attribute):
        return bool(_CONFIG_NAME.search(node.attr))
    return False


def configReads(tree: ast.AST, allowed: frozenset[str] = frozenset()) -> list[str]:
    """
    The reads of a config's fields in a module: C{config.workers},
    C{self.config.app}, C{getattr(config, name)}, C{attrs.asdict(config)}
    and C{vars(config)}; and every use of an attribute of a parameter
    annotated as a L{ServerConfig}, whatever its name.  Reads of the
    C{allowed} fields are left out.
    """
    typed: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and node.annotation is not None:
            if "ServerConfig" in ast.unparse(node.annotation):
                typed.add(node.arg)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            base = node.value
            typedBase = isinstance(base, ast.Name) and base.id in typed
            if node.attr in allowed:
                continue
            if typedBase or (_namesConfig(base) and node.attr in CONFIG_FIELDS):
                found.append(ast.unparse(node))
        elif isinstance(node, ast.Call) and node.args:
            callee = ast.unparse(node.func)
            first = node.args[0]
            isConfig = _namesConfig(first) or (
                isinstance(first, ast.Name) and first.id in typed
            )
            if isConfig and callee in ("getattr", "vars", "attrs.asdict", "asdict"):
                found.append(ast.unparse(node))
    return found


def configMentions(tree: ast.AST) -> list[str]:
    """
    Where a module names L{ServerConfig}: imports, annotations, calls.
    """
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found.extend(
                f"from {node.module} import {alias.name}"
                for alias in node.names
                if alias.name == "ServerConfig"
            )
        elif isinstance(node, (ast.Name, ast.Attribute)):
            name = node.id if isinstance(node, ast.Name) else node.attr
            if name == "ServerConfig":
                found.append(ast.unparse(node))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if re.search(r"\bServerConfig\b", node.value) and "L{" not in node.value:
                found.append(repr(node.value))
    return found


def moduleName(path: Path, source: Path = SOURCE) -> str:
    """
    The dotted name of the module at C{path} of the package at C{source}.
    """
    parts = path.relative_to(source.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def configOffences(source: Path) -> dict[str, list[str]]:
    """
    For each module of the package at C{source} outside C{twsgi.config}: its
    reads of a config's fields (of the fields a reader does not declare),
    and, outside the readers and the holders, where it names
    L{ServerConfig}.
    """
    offences = {}
    for path in sorted(source.rglob("*.py")):
        name = moduleName(path, source)
        if name.startswith("twsgi.config"):
            continue
        allowed = CONFIG_READERS.get(name, frozenset())
        if allowed is None:
            continue
        tree = ast.parse(path.read_text())
        found = configReads(tree, allowed)
        if name not in CONFIG_HOLDERS and name not in CONFIG_READERS:
            found += configMentions(tree)
        if found:
            offences[name] = found
    return offences


def trialBlindSpots(path: Path) -> list[str]:
    """
    What in the module at C{path} pytest would run and C{twisted.trial}
    would not: a test function outside a class, a C{Test*} class with no
    base (not a L{twisted.trial.unittest.TestCase}), an import of pytest
    (its fixtures and marks mean nothing to trial), or a C{conftest.py}.
    """
    if path.name == "conftest.py":
        return ["conftest.py"]
    found = []
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if node.name.startswith("test"):
                found.append(f"function {node.name}")
        elif isinstance(node, ast.ClassDef):
            if node.name.startswith("Test") and not node.bases:
                found.append(f"class {node.name} without a TestCase base")
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            modules = [node.module or ""]
        else:
            continue
        found.extend(f"import {m}" for m in modules if m.split(".")[0] == "pytest")
    return found


class LayoutTests(SynchronousTestCase):
    """
    The tree of tests follows the tree of the package.
    """

    def test_testsMirrorSubpackages(self) -> None:
        """
        Every directory of tests is named after a subpackage of twsgi, or is
        one of the few that mirror none.
        """
        directories = {p.parent.name for p in TESTS.glob("*/__init__.py")}
        self.assertEqual(directories - subpackages() - OTHER_TEST_PACKAGES, set())
        self.assertEqual(subpackages() - directories, set())

    def test_testModulesInSubpackages(self) -> None:
        """
        Only the tests of twsgi's top-level modules sit at the top of
        C{tests/}.
        """
        top = {p.stem.removeprefix("test_") for p in TESTS.glob("test_*.py")}
        modules = {p.stem for p in SOURCE.glob("*.py")} | {
            "exports",
            "layout",
            "twistedapi",
        }
        self.assertEqual(top - modules, set())

    def test_noTestImportsATest(self) -> None:
        """
        No module under C{tests/} imports a test module: shared code lives in
        C{tests/helpers/}.
        """
        offenders = {
            str(path.relative_to(ROOT)): importedTestModules(path)
            for path in TESTS.rglob("*.py")
        }
        self.assertEqual({k: v for k, v in offenders.items() if v}, {})

    def test_trialRunsEveryTest(self) -> None:
        """
        Every test under C{tests/} is a method of a trial C{TestCase}, with
        no pytest fixture, mark or C{conftest.py}: the suite runs the same
        under trial (C{tox -e py-oldest}, C{tox -e trial}) as under pytest.
        """
        offenders = {
            str(path.relative_to(ROOT)): trialBlindSpots(path)
            for path in TESTS.rglob("*.py")
        }
        self.assertEqual({k: v for k, v in offenders.items() if v}, {})

    def test_trialBlindSpots(self) -> None:
        """
        L{trialBlindSpots} finds a module-level test function, a base-less
        C{Test*} class and an import of pytest; not a test method, a mixin
        or a helper function.
        """
        path = Path(self.mktemp())
        path.write_text(
            "import pytest\n"
            "from pytest import fixture\n"
            "from twisted.trial.unittest import TestCase\n"
            "def test_alone():\n    pass\n"
            "def helper():\n    pass\n"
            "class TestPlain:\n    def test_x(self):\n        pass\n"
            "class Mixin:\n    def test_y(self):\n        pass\n"
            "class Tests(Mixin, TestCase):\n    def test_z(self):\n        pass\n"
        )
        self.assertEqual(
            trialBlindSpots(path),
            [
                "function test_alone",
                "class TestPlain without a TestCase base",
                "import pytest",
                "import pytest",
            ],
        )
        self.assertEqual(trialBlindSpots(path.parent / "conftest.py"), ["conftest.py"])

    def test_headersNameTestModules(self) -> None:
        """
        Every C{test-case-name} header in C{src/} and C{tests/} names a test
        module that exists.
        """
        missing = {}
        for path in [*SOURCE.rglob("*.py"), *TESTS.rglob("*.py")]:
            for name in headerModules(path.read_text()):
                if not (ROOT / (name.replace(".", "/") + ".py")).exists():
                    missing[str(path.relative_to(ROOT))] = name
        self.assertEqual(missing, {})

    def test_everySourceModuleHasAHeader(self) -> None:
        """
        Every module of twsgi names its tests in a C{test-case-name} header,
        except C{_version.py}, which C{incremental} writes.
        """
        bare = [
            str(path.relative_to(ROOT))
            for path in SOURCE.rglob("*.py")
            if path.name not in ("__init__.py", "_version.py")
            and not headerModules(path.read_text())
        ]
        self.assertEqual(bare, [])

    def test_headerParsing(self) -> None:
        """
        L{headerModules} reads one or more names, and L{importedTestModules}
        finds C{from tests.x.test_y import z} and C{import tests.x.test_y}.
        """
        self.assertEqual(
            headerModules("# -*- test-case-name: tests.a.test_b, tests.test_c -*-\n"),
            ["tests.a.test_b", "tests.test_c"],
        )
        self.assertEqual(headerModules("# test-case-name: tests.x\n"), [])
        sample = TESTS / "helpers" / "__init__.py"
        self.assertEqual(importedTestModules(sample), [])
        path = Path(self.mktemp())
        path.write_text(
            "from tests.helpers import server\n"
            "from tests.wsgi.test_bridge import x\n"
            "from tests.wsgi import test_pool\n"
            "import tests.http.test_limits\n"
        )
        self.assertEqual(
            importedTestModules(path),
            [
                "tests.wsgi.test_bridge",
                "tests.wsgi.test_pool",
                "tests.http.test_limits",
            ],
        )


class ConfigPlaceTests(SynchronousTestCase):
    """
    A L{ServerConfig} becomes runtime objects in one place per layer
    (L{CONFIG_READERS}); everything else takes plain typed arguments.
    """

    def test_onePlace(self) -> None:
        """
        No module but the readers and the C{twsgi.config} package reads a
        field of a config (the command line only its own few), and no
        module but those and the holders names L{ServerConfig}.
        """
        self.assertEqual(configOffences(SOURCE), {})

    def test_readersExist(self) -> None:
        """
        Every declared reader and holder is a module of twsgi.
        """
        modules = {moduleName(path) for path in SOURCE.rglob("*.py")}
        self.assertEqual(set(CONFIG_READERS) - modules, set())
        self.assertEqual(set(CONFIG_HOLDERS) - modules, set())

    def test_reads(self) -> None:
        """
        L{configReads} finds a field read off anything named as a config, a
        dynamic read, and any attribute of a parameter annotated as a
        L{ServerConfig}; not a field name read off something else, nor an
        allowed field.
        """
        tree = ast.parse(
            "def f(config, settings: ServerConfig | None, other):\n"
            "    a = config.workers\n"
            "    b = self.config.app\n"
            "    c = options.resolved.reload\n"
            "    d = getattr(serverConfig, name)\n"
            "    e = settings.threads\n"
            "    g = attrs.asdict(cfg)\n"
            "    h = other.workers\n"
            "    i = h2.config.H2Configuration\n"
            "    j = config.check_config\n"
            "    return config\n"
        )
        self.assertEqual(
            sorted(configReads(tree, frozenset({"check_config"}))),
            sorted(
                [
                    "config.workers",
                    "self.config.app",
                    "options.resolved.reload",
                    "settings.threads",
                    "getattr(serverConfig, name)",
                    "attrs.asdict(cfg)",
                ]
            ),
        )

    def test_mentions(self) -> None:
        """
        L{configMentions} finds an import of L{ServerConfig}, an annotation
        and a call naming it.
        """
        tree = ast.parse(
            "from twsgi.config.model import ServerConfig\n"
            "def f(config: 'ServerConfig', other: model.ServerConfig) -> None:\n"
            "    ServerConfig()\n"
        )
        self.assertEqual(
            sorted(configMentions(tree)),
            sorted(
                [
                    "from twsgi.config.model import ServerConfig",
                    "'ServerConfig'",
                    "model.ServerConfig",
                    "ServerConfig",
                ]
            ),
        )
