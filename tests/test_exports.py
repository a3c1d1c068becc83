"""
The public API of the C{twsgi} package is exactly this list.
"""

import ast
import os
import re
from importlib import metadata

from twisted.trial.unittest import SynchronousTestCase

import twsgi
import twsgi.testing

API_PAGE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "api.rst"
)


class PublicAPITests(SynchronousTestCase):
    def test_all(self) -> None:
        """
        C{twsgi.__all__} names the public API and nothing else.
        """
        self.assertEqual(
            sorted(twsgi.__all__),
            [
                "AccessRecord",
                "AppLoadError",
                "ClientDisconnected",
                "ConfigError",
                "DrainResult",
                "FileWrapper",
                "ListenError",
                "OrderedMultiService",
                "ServerConfig",
                "TwsgiService",
                "WSGIResource",
                "__version__",
                "loadApp",
                "resolveConfig",
                "serve",
            ],
        )

    def test_namesExist(self) -> None:
        """
        Every name in C{twsgi.__all__} is importable from C{twsgi}.
        """
        for name in twsgi.__all__:
            self.assertTrue(hasattr(twsgi, name), name)

    def test_typeCheckersSeeNoModuleGetattr(self) -> None:
        """
        C{twsgi} imports its public names when first used, with a module
        C{__getattr__} (PEP 562) that type checkers must not see: with one,
        mypy gives any name imported from C{twsgi} (C{from twsgi import
        TwsgiServise}) the type C{object} instead of an error.  They see the
        names' own imports, under C{TYPE_CHECKING}.
        """
        with open(twsgi.__file__, encoding="utf-8") as f:
            module = ast.parse(f.read())
        seen = [node.name for node in module.body if isinstance(node, ast.FunctionDef)]
        self.assertNotIn("__getattr__", seen)
        self.assertEqual(twsgi.__getattr__("serve"), twsgi.serve)

    def test_versionIsText(self) -> None:
        """
        C{twsgi.__version__} is the distribution's PEP 440 version string.
        """
        self.assertIsInstance(twsgi.__version__, str)
        self.assertEqual(twsgi.__version__, metadata.version("twsgi"))

    def test_testingModule(self) -> None:
        """
        C{twsgi.testing.__all__} names its public helpers and nothing else.
        """
        import twsgi.testing

        self.assertEqual(
            sorted(twsgi.testing.__all__),
            [
                "MemoryResponse",
                "MemoryServer",
                "MemoryTransport",
                "ServerProcess",
                "SynchronousReactor",
                "SynchronousThreadPool",
                "parseResponse",
                "parseResponses",
                "serverURL",
                "spawnServer",
                "startServer",
            ],
        )

    def test_documented(self) -> None:
        """
        Every public name of C{twsgi} and C{twsgi.testing} is described on
        the API page of the documentation, and that page describes no other.
        """
        with open(API_PAGE, encoding="utf-8") as f:
            lines = f.read().splitlines()
        # The terms of the page's definition lists: a line followed by an
        # indented one.
        terms = [
            line
            for line, following in zip(lines, lines[1:], strict=False)
            if line.startswith("``twsgi.") and following.startswith("   ")
        ]
        documented = set(re.findall(r"``(twsgi\.(?:testing\.)?\w+)``", "".join(terms)))
        public = {f"twsgi.{name}" for name in twsgi.__all__} | {
            f"twsgi.testing.{name}" for name in twsgi.testing.__all__
        }
        self.assertEqual(sorted(documented), sorted(public))
