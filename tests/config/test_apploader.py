"""
Tests for L{twsgi.config.apploader}: C{--app} text in, a WSGI callable or a
one-line error out.
"""

from __future__ import annotations

import importlib.machinery
import os
import shutil
import sys
import tempfile
import textwrap
import zipfile

from twisted.trial.unittest import SynchronousTestCase

from twsgi.config.apploader import AppLoadError, findApp, loadApp

_APP = """
def app(environ, start_response):
    start_response("200 OK", [])
    return [b"ok"]

def create_app(name, n=0, *rest, **options):
    def made(environ, start_response):
        return [repr((name, n, rest, options)).encode()]
    made.args = (name, n, rest, options)
    return made

def exploding_factory():
    raise RuntimeError("factory went bang")

def returns_number():
    return 3


def make_app(profile="production"):
    return app

not_callable = {"a": 1}
"""


class LoadAppTests(SynchronousTestCase):
    """
    L{loadApp} loads C{module:attr} and C{module:factory(literals)}.
    """

    def setUp(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="twsgi-test-")
        self.addCleanup(shutil.rmtree, self.directory, True)
        sys.path.insert(0, self.directory)
        self.addCleanup(sys.path.remove, self.directory)
        self.modules: list[str] = []
        self.addCleanup(self._forget)
        self.module = self.makeModule(_APP)

    def _forget(self) -> None:
        for name in self.modules:
            sys.modules.pop(name, None)

    def makeModule(self, source: str) -> str:
        """
        Write a module with C{source} to the temporary directory and return
        its (unique) name.
        """
        name = f"twsgi_test_app_{id(self)}_{len(self.modules)}"
        with open(os.path.join(self.directory, name + ".py"), "w") as f:
            f.write(textwrap.dedent(source))
        self.modules.append(name)
        return name

    def assertOneLine(self, error: AppLoadError) -> str:
        """
        C{error}'s message is a single line; return it.
        """
        message = str(error)
        self.assertNotIn("\n", message)
        self.assertTrue(message)
        return message

    def test_attribute(self) -> None:
        """
        C{module:attr} gives that attribute.
        """
        app = loadApp(f"{self.module}:app")
        self.assertIs(app, sys.modules[self.module].app)

    def test_defaultAttribute(self) -> None:
        """
        A bare module name means C{module:application}.
        """
        name = self.makeModule("def application(e, s):\n    return []\n")
        self.assertIs(loadApp(name), sys.modules[name].application)

    def test_factory(self) -> None:
        """
        C{module:factory(...)} calls the factory with its literal arguments.
        """
        table = [
            ("create_app('x')", ("x", 0, (), {})),
            ("create_app('x', n=1)", ("x", 1, (), {})),
            ("create_app( 'x' , 2, None, True )", ("x", 2, (None, True), {})),
            (
                "create_app(name=[1, (2, 3)], debug={'a': -1.5}, flag=False)",
                ([1, (2, 3)], 0, (), {"debug": {"a": -1.5}, "flag": False}),
            ),
        ]
        for call, expected in table:
            app = loadApp(f"{self.module}:{call}")
            self.assertEqual(app.args, expected, call)  # type: ignore[attr-defined]

    def test_nonLiteralArgument(self) -> None:
        """
        A factory argument that is not a literal is refused before the
        module is imported.
        """
        for call in [
            "create_app(__import__('os').getcwd())",
            "create_app(x)",
            "create_app(*args)",
            "create_app('a' + 'b')",
            "create_app(name=open('f'))",
            "create_app(**{'n': 1})",
            "create_app({[]: 1})",
        ]:
            error = self.assertRaises(AppLoadError, loadApp, f"{self.module}:{call}")
            self.assertOneLine(error)
            self.assertIsNone(error.details)
        self.assertNotIn(self.module, sys.modules)

    def test_badAttributeText(self) -> None:
        """
        Text after the colon that is neither a name nor a call is an error
        that names it.
        """
        for text in ["app.sub", "1app", "app(", "obj.make()", "a b", "app\x00"]:
            error = self.assertRaises(AppLoadError, loadApp, f"{self.module}:{text}")
            self.assertIn(repr(text), self.assertOneLine(error))

    def test_badModuleName(self) -> None:
        """
        A module name that cannot be imported as written is an error.
        """
        for spec in [":app", "my-app:app", "1mod:app", "a..b:app", "pkg.mod-x:app"]:
            error = self.assertRaises(AppLoadError, loadApp, spec)
            self.assertIn("is not a module name", self.assertOneLine(error))

    def test_missingModule(self) -> None:
        """
        A missing module is one line naming it, without details.
        """
        error = self.assertRaises(AppLoadError, loadApp, "twsgi_no_such_mod:app")
        message = self.assertOneLine(error)
        self.assertIn("no module named 'twsgi_no_such_mod'", message)
        self.assertIn("--chdir", message)
        self.assertIsNone(error.details)

    def test_missingSubmodule(self) -> None:
        """
        A missing submodule of an existing package is one line naming it.
        """
        error = self.assertRaises(AppLoadError, loadApp, "twsgi.no_such_mod:app")
        self.assertIn("no module named 'twsgi.no_such_mod'", self.assertOneLine(error))
        self.assertIsNone(error.details)

    def test_missingImportInsideModule(self) -> None:
        """
        A module that exists but imports a missing one is not reported as
        missing itself, even when the missing name is a prefix of its own:
        the error names the module's failing import and has its traceback.
        """
        name = self.makeModule(
            "import twsgi_test_app_missing_dependency  # noqa\napp = 1\n"
        )
        prefix = name[: len("twsgi_test_app")]
        shadow = self.makeModule(f"import {prefix}  # noqa\napp = 1\n")
        for module, missing in [
            (name, "twsgi_test_app_missing_dependency"),
            (shadow, prefix),
        ]:
            error = self.assertRaises(AppLoadError, loadApp, f"{module}:app")
            message = self.assertOneLine(error)
            self.assertIn(f"importing {module!r} failed", message)
            self.assertIn(missing, message)
            assert error.details is not None
            self.assertIn("Traceback", error.details)

    def test_errorInsideModule(self) -> None:
        """
        An exception raised while importing the module is one line naming
        it, and the traceback is kept in C{details}.
        """
        name = self.makeModule("x = 1\nraise ValueError('bad config')\n")
        error = self.assertRaises(AppLoadError, loadApp, f"{name}:app")
        message = self.assertOneLine(error)
        self.assertIn("ValueError: bad config", message)
        assert error.details is not None
        self.assertIn("bad config", error.details)
        self.assertIn(name, error.details)

    def test_syntaxErrorInsideModule(self) -> None:
        """
        A syntax error in the module is one line, with details.
        """
        name = self.makeModule("def app(:\n")
        error = self.assertRaises(AppLoadError, loadApp, f"{name}:app")
        self.assertIn("SyntaxError", self.assertOneLine(error))
        self.assertIsNotNone(error.details)

    def test_multiLineExceptionMessage(self) -> None:
        """
        An exception whose message spans lines still gives a one-line
        error; the whole message is in the details.
        """
        name = self.makeModule("raise RuntimeError('first\\nsecond')\n")
        error = self.assertRaises(AppLoadError, loadApp, f"{name}:app")
        self.assertIn("first", self.assertOneLine(error))
        assert error.details is not None
        self.assertIn("second", error.details)

    def test_systemExitInsideModule(self) -> None:
        """
        A module that calls C{sys.exit()} on import is an error, not an exit.
        """
        name = self.makeModule("import sys\nsys.exit(3)\n")
        error = self.assertRaises(AppLoadError, loadApp, f"{name}:app")
        self.assertIn("SystemExit", self.assertOneLine(error))

    def test_missingAttribute(self) -> None:
        """
        A missing attribute is one line naming the module and the attribute.
        """
        error = self.assertRaises(AppLoadError, loadApp, f"{self.module}:nope")
        message = self.assertOneLine(error)
        self.assertIn(f"module {self.module!r} has no attribute 'nope'", message)
        self.assertIsNone(error.details)

    def test_missingFactory(self) -> None:
        """
        A missing factory is reported like a missing attribute.
        """
        error = self.assertRaises(AppLoadError, loadApp, f"{self.module}:nope()")
        self.assertIn("has no attribute 'nope'", self.assertOneLine(error))

    def test_notCallable(self) -> None:
        """
        An attribute that is not callable is one line saying so.
        """
        error = self.assertRaises(AppLoadError, loadApp, f"{self.module}:not_callable")
        self.assertIn(
            "not_callable is of type dict, not a WSGI application",
            self.assertOneLine(error),
        )
        self.assertIn("not a WSGI application", str(error))

    def test_factoryNotCalled(self) -> None:
        """
        A factory named without its call, which cannot take C{(environ,
        start_response)}, is one line at startup (not a C{TypeError} on
        the first request) saying how to call it; one that returns a
        callable that cannot take them is named with its call.
        """
        error = self.assertRaises(AppLoadError, loadApp, f"{self.module}:make_app")
        self.assertEqual(
            self.assertOneLine(error),
            f"--app '{self.module}:make_app': make_app(profile='production') "
            "cannot be called with (environ, start_response); if it is a "
            f"factory, call it: '{self.module}:make_app()'",
        )
        error = self.assertRaises(
            AppLoadError, loadApp, f"{self.module}:exploding_factory"
        )
        self.assertIn("call it: ", str(error))
        self.assertTrue(callable(loadApp(f"{self.module}:make_app()")))

    def test_calledWith(self) -> None:
        """
        A hook or an observer, called with one argument, is checked against
        that one instead.
        """
        self.assertTrue(callable(loadApp(f"{self.module}:make_app", ("service",))))
        error = self.assertRaises(
            AppLoadError, loadApp, f"{self.module}:app", ("service",)
        )
        self.assertEqual(
            self.assertOneLine(error),
            f"--app '{self.module}:app': app(environ, start_response) cannot be "
            "called with (service)",
        )

    def test_factoryNotCallable(self) -> None:
        """
        Calling something that is not callable is one line saying so.
        """
        error = self.assertRaises(
            AppLoadError, loadApp, f"{self.module}:not_callable()"
        )
        self.assertIn("'not_callable' is not callable", self.assertOneLine(error))

    def test_factoryReturnsNotCallable(self) -> None:
        """
        A factory that returns something that is not callable is one line
        saying so.
        """
        error = self.assertRaises(
            AppLoadError, loadApp, f"{self.module}:returns_number()"
        )
        self.assertIn(
            "returns_number() is of type int, not a WSGI application",
            self.assertOneLine(error),
        )

    def test_factoryRaises(self) -> None:
        """
        A factory that raises gives one line, and its traceback is in
        C{details}.
        """
        error = self.assertRaises(
            AppLoadError, loadApp, f"{self.module}:exploding_factory()"
        )
        message = self.assertOneLine(error)
        self.assertIn("the factory raised RuntimeError: factory went bang", message)
        assert error.details is not None
        self.assertIn("Traceback", error.details)
        self.assertIn("exploding_factory", error.details)

    def test_factoryWrongArguments(self) -> None:
        """
        A factory called with the wrong arguments is an error with details.
        """
        error = self.assertRaises(
            AppLoadError, loadApp, f"{self.module}:exploding_factory(1)"
        )
        self.assertIn("TypeError", self.assertOneLine(error))

    def test_fileName(self) -> None:
        """
        A file name or path given where a module was meant gives a message
        that says what to type instead.
        """
        table = [
            ("foo.py", "--app foo:app"),
            ("foo.py:application", "--app foo:application"),
            ("path/to/foo.py", "--app foo:app --chdir path/to"),
            ("path/to/foo.py:make()", "--app foo:make() --chdir path/to"),
            ("/srv/site/wsgi.py", "--app wsgi:app --chdir /srv/site"),
            ("path/to/foo:app", "--app foo:app --chdir path/to"),
        ]
        for spec, hint in table:
            error = self.assertRaises(AppLoadError, loadApp, spec)
            message = self.assertOneLine(error)
            self.assertTrue(message.endswith(hint), (spec, message))
            self.assertIn("looks like a file name", message)


class FindAppTests(SynchronousTestCase):
    """
    L{findApp} checks C{--app} for a supervisor without running the
    application's code.
    """

    def setUp(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="twsgi-test-")
        self.addCleanup(shutil.rmtree, self.directory, True)

    def test_foundNotImported(self) -> None:
        """
        A module (and a package) found on the given path passes, and is not
        imported: a module that would raise at import is not run.
        """
        name = f"twsgi_find_{id(self)}"
        os.makedirs(os.path.join(self.directory, name))
        with open(os.path.join(self.directory, name, "__init__.py"), "w") as f:
            f.write("raise RuntimeError('must not run')\n")
        findApp(f"{name}.sub:create_app()", [self.directory], self.directory)
        findApp("os.path:join", [], self.directory)
        self.assertNotIn(name, sys.modules)

    def test_missing(self) -> None:
        """
        A top-level module not on the path is one line naming it and the
        directory searched from.
        """
        error = self.assertRaises(
            AppLoadError, findApp, "twsgi_no_such_mod:app", [self.directory], "/w"
        )
        self.assertEqual(
            str(error),
            "--app 'twsgi_no_such_mod:app': no module named 'twsgi_no_such_mod' "
            "(searched from '/w'; --chdir or --pythonpath can add the right "
            "directory)",
        )

    def test_malformed(self) -> None:
        """
        A malformed C{--app} fails as L{loadApp} does.
        """
        for spec in ["1mod:app", "app.py", "mod:f(os.system)"]:
            found = self.assertRaises(AppLoadError, findApp, spec, [], "/")
            loaded = self.assertRaises(AppLoadError, loadApp, spec)
            self.assertEqual(str(found), str(loaded))

    def test_metaPathFinder(self) -> None:
        """
        A module that a finder on C{sys.meta_path} provides (as setuptools'
        editable install of a flat-layout project does, from a C{.pth}
        file) passes, though it is on no path: a worker imports it too.
        """
        name = f"twsgi_meta_{id(self)}"

        class Finder:
            def find_spec(
                self, fullname: str, path: object = None, target: object = None
            ) -> importlib.machinery.ModuleSpec | None:
                if fullname == name:
                    return importlib.machinery.ModuleSpec(name, None)
                return None

        finder = Finder()
        sys.meta_path.append(finder)
        self.addCleanup(sys.meta_path.remove, finder)
        findApp(f"{name}.wsgi:app", [self.directory], self.directory)
        self.assertRaises(
            AppLoadError, findApp, f"{name}x:app", [self.directory], self.directory
        )

    def test_zipAndNamespace(self) -> None:
        """
        A module in a zip file on the path, and a namespace package (a
        directory without C{__init__.py}), pass as they import.
        """
        name = f"twsgi_zip_{id(self)}"
        archive = os.path.join(self.directory, "apps.zip")
        with zipfile.ZipFile(archive, "w") as z:
            z.writestr(f"{name}.py", _APP)
        findApp(f"{name}:app", [archive], self.directory)
        os.makedirs(os.path.join(self.directory, f"{name}_ns", "inner"))
        findApp(f"{name}_ns.inner.wsgi:app", [self.directory], self.directory)
