"""
The public API of the C{twsgi} package is exactly this list.
"""

from importlib import metadata

from twisted.trial.unittest import SynchronousTestCase

import twsgi


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
