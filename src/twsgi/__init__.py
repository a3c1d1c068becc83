# -*- test-case-name: tests.test_exports -*-
"""
twsgi: a production WSGI server built on Twisted.

The public API is re-exported here; a test pins this list.
"""

from ._accesslog import AccessRecord
from ._apploader import AppLoadError, loadApp
from ._bridge import FileWrapper, WSGIResource
from ._config import ConfigError, ServerConfig, resolveConfig
from ._drain import DrainResult
from ._environ import ClientDisconnected
from ._serve import OrderedMultiService, serve
from ._service import ListenError, TwsgiService
from ._version import __version__ as _incrementalVersion

__version__: str = _incrementalVersion.public()
"""
twsgi's version as a PEP 440 string (C{"0.1.0.dev0"}).  C{_version.py} keeps
the L{incremental.Version} that the build reads.
"""

__all__ = [
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
]
