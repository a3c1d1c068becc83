# -*- test-case-name: tests.test_twistedapi -*-
"""
twsgi uses only Twisted's public API: a static scan of C{src/twsgi}.

The scanner walks the AST of every module of a package and reports each use
of a private part of Twisted, by kind:

  - C{private-import}: an import of a Twisted module with a C{_} segment, or
    of a C{_} name from a Twisted module;
  - C{private-module-attr}: C{module._x} on an imported Twisted module (a
    private class used as a base is one);
  - C{base-private}: C{self._x} or C{super()._x} where a Twisted base class
    (or the Twisted sibling of one of our mixins) defines C{_x};
  - C{override}: a method or class attribute C{_x} that overrides a private
    one of a Twisted base class;
  - C{foreign-private}: C{obj._x} where Twisted defines C{_x} and twsgi does
    not;
  - C{ambiguous}: C{obj._x} where both Twisted and twsgi define C{_x};
  - C{string-private}: C{getattr}, C{setattr}, C{hasattr} or C{delattr} with
    such a name as a string;
  - C{internal}: public-looking but undocumented port state
    (C{numberAccepts});
  - C{monkeypatch}: C{obj.m = m} over the name of a Twisted method.

The test fails on any finding: where Twisted's public API falls short,
twsgi owns the piece.  (Issue 13 removed the 139 uses it found at first.)

The range of Twisted releases twsgi supports is checked here too: the pin
that C{tox -e py-oldest} installs is the floor C{pyproject.toml} declares.
"""

from __future__ import annotations

import ast
import inspect
import os
import re
import sys
import textwrap
from collections.abc import Iterator
from functools import cache

import attrs
from twisted.trial.unittest import SynchronousTestCase

import twisted
import twsgi
from tests.helpers.names import resolve

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Public-looking but undocumented state of tcp.Port and unix.Port.
INTERNALS = frozenset({"numberAccepts"})


@attrs.frozen
class Finding:
    """
    One use of Twisted's private API.

    @ivar module: the dotted name of the module it is in.
    @ivar path: the path of that module's file.
    @ivar line: the line it is on.
    @ivar kind: one of the kinds listed in this module's docstring.
    @ivar name: what is used, without a line number (C{"read self._file"}).
    """

    module: str
    path: str
    line: int
    kind: str
    name: str

    def __str__(self) -> str:
        return f"{os.path.relpath(self.path)}:{self.line} {self.kind} {self.name}"


def isPrivate(name: str) -> bool:
    """
    Is C{name} private: a leading underscore, but not a dunder?
    """
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def dotted(node: ast.AST) -> str | None:
    """
    C{a.b.c} for a chain of names and attributes, L{None} for anything else.
    """
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and (head := dotted(node.value)):
        return f"{head}.{node.attr}"
    return None


def assigned(statement: ast.AST) -> list[ast.expr]:
    """
    The targets that an assignment statement binds; none for other nodes.
    """
    if isinstance(statement, ast.Assign):
        return statement.targets
    if isinstance(statement, ast.AnnAssign | ast.AugAssign):
        return [statement.target]
    return []


def sourceTrees(root: str) -> Iterator[tuple[str, ast.Module]]:
    """
    Parse every Python file below C{root}, skipping C{test} packages.

    @return: pairs of a file's path and its AST, in a stable order.
    """
    for directory, subdirectories, files in os.walk(root):
        subdirectories.sort()
        if "/test/" in directory[len(root) :] + "/":
            continue
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                with open(path, "rb") as f:
                    yield path, ast.parse(f.read(), path)


@cache
def twistedNames() -> tuple[frozenset[str], frozenset[str]]:
    """
    The names Twisted's own source defines, read once per process.

    @return: the private attribute and method names (set on any object or
        defined in any class), and the public method names (which a
        monkeypatch would replace).
    """
    privates: set[str] = set()
    methods: set[str] = set()
    for _, tree in sourceTrees(os.path.dirname(twisted.__file__)):
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for statement in node.body:
                    if isinstance(statement, ast.FunctionDef):
                        (privates if isPrivate(statement.name) else methods).add(
                            statement.name
                        )
                    privates.update(
                        target.id
                        for target in assigned(statement)
                        if isinstance(target, ast.Name) and isPrivate(target.id)
                    )
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.ctx, ast.Store)
                and isPrivate(node.attr)
            ):
                privates.add(node.attr)
    return frozenset(privates), frozenset(methods)


def isTwistedClass(obj: object) -> bool:
    """
    Is C{obj} a class with a Twisted class in its MRO?
    """
    return inspect.isclass(obj) and any(
        (k.__module__ or "").startswith("twisted.") for k in inspect.getmro(obj)
    )


def basePrivates(cls: type) -> set[str]:
    """
    The private names of the Twisted classes in C{cls}'s MRO: those in their
    namespaces and the C{self._x} their methods use.
    """
    names: set[str] = set()
    for k in inspect.getmro(cls):
        if (k.__module__ or "").startswith("twisted."):
            names.update(n for n in vars(k) if isPrivate(n))
            try:
                source = ast.parse(textwrap.dedent(inspect.getsource(k)))
            except (OSError, TypeError, SyntaxError):
                continue
            names.update(
                node.attr
                for node in ast.walk(source)
                if isinstance(node, ast.Attribute)
                and isPrivate(node.attr)
                and dotted(node.value) == "self"
            )
    return names


def _importAliases(tree: ast.Module, module: str) -> dict[str, str]:
    """
    Map each name a module binds by import to the dotted name it stands for.
    """
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                head = alias.name.split(".")[0]
                aliases[alias.asname or head] = alias.name if alias.asname else head
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module.split(".")[: -node.level]
                source = ".".join(package + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{source}.{alias.name}"
    return aliases


class _ModuleScan:
    """
    The walk over one module's AST that reports its findings.

    @ivar inherited: the private names each of the package's classes gets from
        Twisted (through its bases, or as a mixin of a Twisted class).
    @ivar own: the private names the package's own classes define.
    """

    def __init__(
        self,
        module: str,
        path: str,
        tree: ast.Module,
        aliases: dict[str, str],
        inherited: dict[ast.ClassDef, set[str]],
        own: set[str],
    ) -> None:
        self.module = module
        self.path = path
        self.tree = tree
        self.aliases = aliases
        self.inherited = inherited
        self.own = own
        self.privates, self.methods = twistedNames()
        self.local = {c.name: c for c in ast.walk(tree) if isinstance(c, ast.ClassDef)}
        self.functions = {
            f.name for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
        }
        self.findings: list[Finding] = []

    def hit(self, node: ast.stmt | ast.expr, kind: str, name: str) -> None:
        self.findings.append(Finding(self.module, self.path, node.lineno, kind, name))

    def run(self) -> list[Finding]:
        for statement in self.tree.body:
            self.visit(statement, None, None)
        return self.findings

    def inheritedBy(self, cls: ast.ClassDef | None) -> set[str]:
        return self.inherited.get(cls, set()) if cls is not None else set()

    def visit(
        self,
        node: ast.AST,
        cls: ast.ClassDef | None,
        me: str | None,
        method: bool = False,
    ) -> None:
        """
        Report the findings in C{node} and below it.

        @param cls: the class whose body C{node} is in.
        @param me: the name of C{self} in the enclosing method.
        @param method: is C{node} directly in a class body?
        """
        if isinstance(node, ast.ClassDef):
            self.visitClass(node, cls, me)
            return
        if isinstance(node, ast.FunctionDef):
            if (
                cls is not None
                and method
                and isPrivate(node.name)
                and node.name in self.inheritedBy(cls)
            ):
                self.hit(node, "override", f"{cls.name}.{node.name}")
            arguments = node.args.posonlyargs + node.args.args
            static = "staticmethod" in map(dotted, node.decorator_list)
            if method and arguments and not static:
                me = arguments[0].arg
        if isinstance(node, ast.Import | ast.ImportFrom):
            self.visitImport(node)
        if isinstance(node, ast.Attribute):
            self.visitAttribute(node, cls, me)
        if isinstance(node, ast.Call):
            self.visitCall(node)
        if isinstance(node, ast.Assign):
            self.visitAssign(node, me)
        for child in ast.iter_child_nodes(node):
            self.visit(child, cls, me)

    def visitClass(
        self, node: ast.ClassDef, cls: ast.ClassDef | None, me: str | None
    ) -> None:
        for base in node.bases:
            self.visit(base, cls, me)
        inherited = self.inheritedBy(node)
        for statement in node.body:
            for target in assigned(statement):
                if isinstance(target, ast.Name) and target.id in inherited:
                    self.hit(
                        statement,
                        "override",
                        f"{node.name}.{target.id} (class attribute)",
                    )
            self.visit(statement, node, None, True)

    def visitImport(self, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("twisted.") and any(
                    map(isPrivate, alias.name.split("."))
                ):
                    self.hit(node, "private-import", alias.name)
        elif not node.level and (node.module or "").startswith("twisted"):
            module = node.module or ""
            for alias in node.names:
                if any(map(isPrivate, module.split("."))) or isPrivate(alias.name):
                    self.hit(node, "private-import", f"{module}.{alias.name}")

    def visitAttribute(
        self, node: ast.Attribute, cls: ast.ClassDef | None, me: str | None
    ) -> None:
        if not (isPrivate(node.attr) or node.attr in INTERNALS):
            return
        access = "write" if isinstance(node.ctx, ast.Store) else "read"
        receiver = dotted(node.value)
        viaSuper = (
            isinstance(node.value, ast.Call) and dotted(node.value.func) == "super"
        )
        if node.attr in INTERNALS:
            self.hit(node, "internal", f"{access} {ast.unparse(node)}")
        elif viaSuper or (receiver and receiver == me):
            if node.attr in self.inheritedBy(cls):
                self.hit(
                    node,
                    "base-private",
                    f"{access} {receiver or 'super()'}.{node.attr}",
                )
        elif receiver in self.local:
            if node.attr in self.inherited.get(self.local[receiver], set()):
                self.hit(node, "base-private", f"{access} {receiver}.{node.attr}")
        elif receiver and self.aliases.get(receiver, "").startswith("twisted"):
            self.hit(
                node, "private-module-attr", f"{self.aliases[receiver]}.{node.attr}"
            )
        elif node.attr in self.privates:
            kind = "ambiguous" if node.attr in self.own else "foreign-private"
            self.hit(node, kind, f"{access} {ast.unparse(node.value)}.{node.attr}")

    def visitCall(self, node: ast.Call) -> None:
        function = dotted(node.func)
        if function not in ("getattr", "setattr", "hasattr", "delattr"):
            return
        if len(node.args) < 2:
            return
        name = node.args[1]
        if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
            return
        if (isPrivate(name.value) and name.value in self.privates) or (
            name.value in INTERNALS
        ):
            self.hit(
                node,
                "string-private",
                f"{function}({ast.unparse(node.args[0])}, {name.value!r})",
            )

    def visitAssign(self, node: ast.Assign, me: str | None) -> None:
        if not (isinstance(node.value, ast.Name) and node.value.id in self.functions):
            return
        for target in node.targets:
            if (
                isinstance(target, ast.Attribute)
                and target.attr == node.value.id
                and target.attr in self.methods
                and dotted(target.value) != me
            ):
                self.hit(
                    node, "monkeypatch", f"{ast.unparse(target)} = {node.value.id}"
                )


def scan(root: str) -> list[Finding]:
    """
    Find the uses of Twisted's private API in the package at C{root}.

    Base classes are resolved by importing them, so the package must be
    importable under its directory's name.

    @param root: the directory of a package (C{src/twsgi}).
    @return: the findings, sorted and without duplicates.
    """
    parent = os.path.dirname(os.path.abspath(root))
    modules: list[tuple[str, str, ast.Module, dict[str, str]]] = []
    inherited: dict[ast.ClassDef, set[str]] = {}
    byName: dict[str, list[ast.ClassDef]] = {}
    for path, tree in sourceTrees(root):
        dottedPath = os.path.relpath(path, parent)[: -len(".py")]
        module = dottedPath.replace(os.sep, ".").removesuffix(".__init__")
        aliases = _importAliases(tree, module)
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            byName.setdefault(node.name, []).append(node)
            for base in filter(None, map(dotted, node.bases)):
                head = base.split(".")[0]
                k = resolve(aliases.get(head, f"{module}.{head}") + base[len(head) :])
                if isinstance(k, type) and isTwistedClass(k):
                    inherited.setdefault(node, set()).update(basePrivates(k))
        modules.append((module, path, tree, aliases))
    # Our mixins, mixed into a Twisted class, touch its privates too.
    for cls, names in list(inherited.items()):
        for base in filter(None, map(dotted, cls.bases)):
            for mixin in byName.get(base.split(".")[-1], []):
                inherited.setdefault(mixin, set()).update(names)
    own: set[str] = set()
    for classes in byName.values():
        for c in classes:
            mine = inherited.get(c, set())
            own.update(
                target.id
                for statement in c.body
                for target in assigned(statement)
                if isinstance(target, ast.Name)
                and isPrivate(target.id)
                and target.id not in mine
            )
            own.update(
                statement.name
                for statement in c.body
                if isinstance(statement, ast.FunctionDef)
                and isPrivate(statement.name)
                and statement.name not in mine
            )
            own.update(
                node.attr
                for node in ast.walk(c)
                if isinstance(node, ast.Attribute)
                and isinstance(node.ctx, ast.Store)
                and isPrivate(node.attr)
                and node.attr not in mine
            )
    findings: set[Finding] = set()
    for module, path, tree, aliases in modules:
        findings.update(_ModuleScan(module, path, tree, aliases, inherited, own).run())
    return sorted(findings, key=lambda f: (f.path, f.line, f.kind, f.name))


@cache
def scanTwsgi() -> list[Finding]:
    """
    Scan the twsgi package under test, once per process.
    """
    return scan(os.path.dirname(os.path.abspath(twsgi.__file__)))


class PublicAPITests(SynchronousTestCase):
    """
    C{src/twsgi} uses only Twisted's public API.
    """

    def test_noPrivateUse(self) -> None:
        """
        The scan of twsgi finds no use of Twisted's private API.
        """
        findings = scanTwsgi()
        if findings:
            self.fail(
                "twsgi uses Twisted's private API (use its public API, or own "
                "the piece in twsgi):\n" + "\n".join(map(str, findings))
            )


# One use of each kind, and public uses that are no finding.
FIXTURE = """\
from twisted.internet import endpoints
from twisted.python import logfile
from twisted.web import http
from twisted.web._http2 import H2Connection

WRAPPER = endpoints._WrapperServerEndpoint
PUBLIC = http.HTTPChannel


class Shared(logfile.LogFile):
    _file = None

    def _openFile(self):
        self._file = open(self.path, "ab")


class Reader:
    def start(self):
        self._reader = None
        self._ours = 0


def connectionLost(reason):
    pass


def use(request, port, server, transport):
    request._disconnected
    server._reader
    getattr(transport, "_tempDataLen")
    getattr(transport, "_ours")
    port.numberAccepts
    port.connectionLost = connectionLost
    request.uri
"""


class ScannerTests(SynchronousTestCase):
    """
    Tests for L{scan} on a small package of known uses, so that the scanner
    cannot pass by finding nothing.
    """

    def setUp(self) -> None:
        root = os.path.join(self.mktemp(), "fixturepkg")
        os.makedirs(root)
        with open(os.path.join(root, "__init__.py"), "w") as f:
            f.write("")
        with open(os.path.join(root, "uses.py"), "w") as f:
            f.write(FIXTURE)
        self.findings = scan(root)

    def test_eachKind(self) -> None:
        """
        The scanner reports one finding of each kind in the fixture, with its
        module and line, and nothing for the public and own uses.
        """
        self.assertEqual(
            [(f.module, f.line, f.kind, f.name) for f in self.findings],
            [
                (
                    "fixturepkg.uses",
                    4,
                    "private-import",
                    "twisted.web._http2.H2Connection",
                ),
                (
                    "fixturepkg.uses",
                    6,
                    "private-module-attr",
                    "twisted.internet.endpoints._WrapperServerEndpoint",
                ),
                ("fixturepkg.uses", 11, "override", "Shared._file (class attribute)"),
                ("fixturepkg.uses", 13, "override", "Shared._openFile"),
                ("fixturepkg.uses", 14, "base-private", "write self._file"),
                (
                    "fixturepkg.uses",
                    28,
                    "foreign-private",
                    "read request._disconnected",
                ),
                ("fixturepkg.uses", 29, "ambiguous", "read server._reader"),
                (
                    "fixturepkg.uses",
                    30,
                    "string-private",
                    "getattr(transport, '_tempDataLen')",
                ),
                ("fixturepkg.uses", 32, "internal", "read port.numberAccepts"),
                (
                    "fixturepkg.uses",
                    33,
                    "monkeypatch",
                    "port.connectionLost = connectionLost",
                ),
            ],
        )


_FLOOR = re.compile(r"^twisted\s*(\[[\w,\s]*\])?\s*>=\s*([\w.]+)\s*$", re.I)
_PIN = re.compile(r"^twisted\s*==\s*([\w.]+)\s*$", re.I | re.M)


def twistedFloors(pyproject: str) -> dict[str, str]:
    """
    The lowest Twisted release each requirement on Twisted in a
    C{pyproject.toml} allows.

    @return: each requirement string mapped to its C{>=} version.
    @raise ValueError: for a requirement on Twisted without a C{>=} floor.
    """
    project = tomllib.loads(pyproject)["project"]
    requirements = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        requirements.extend(extra)
    floors = {}
    for requirement in requirements:
        name = re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]
        if name.lower() != "twisted":
            continue
        match = _FLOOR.match(requirement.split(";")[0])
        if match is None:
            raise ValueError(f"{requirement!r}: a Twisted requirement is twisted>=X")
        floors[requirement] = match.group(2)
    return floors


class TwistedRangeTests(SynchronousTestCase):
    """
    C{tox -e py-oldest} tests the oldest Twisted that C{pyproject.toml}
    allows.
    """

    def test_pinIsFloor(self) -> None:
        """
        C{.ci/oldest.txt} pins Twisted to the floor of every requirement on
        Twisted in C{pyproject.toml}.
        """
        with open(os.path.join(ROOT, "pyproject.toml")) as f:
            floors = twistedFloors(f.read())
        with open(os.path.join(ROOT, ".ci", "oldest.txt")) as f:
            pins = _PIN.findall(f.read())
        self.assertEqual(len(pins), 1, pins)
        self.assertNotEqual(floors, {})
        self.assertEqual(floors, dict.fromkeys(floors, pins[0]))

    def test_floors(self) -> None:
        """
        L{twistedFloors} reads the C{>=} version of Twisted in the
        dependencies and in every extra, with or without extras of its own,
        or an environment marker, and ignores other packages.
        """
        http2 = "Twisted [http2] >= 26.4.1; python_version >= '3.10'"
        pyproject = f"""
            [project]
            dependencies = ["twisted[tls]>=26.4.0", "attrs>=23", "twisted-x>=1"]
            [project.optional-dependencies]
            http2 = ["{http2}"]
        """
        self.assertEqual(
            twistedFloors(pyproject),
            {"twisted[tls]>=26.4.0": "26.4.0", http2: "26.4.1"},
        )

    def test_noFloor(self) -> None:
        """
        A requirement on Twisted without a floor is refused: the oldest
        release it allows cannot be tested.
        """
        for requirement in ("twisted", "twisted<27", "twisted==26.4.0"):
            pyproject = f'[project]\ndependencies = ["{requirement}"]\n'
            self.assertRaises(ValueError, twistedFloors, pyproject)
