# -*- test-case-name: tests.test_layout -*-
"""
The layout of the package and of its tests: tests mirror the subpackages,
no test module imports another, and every C{test-case-name} header names a
test module that exists.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

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
