# -*- test-case-name: tests.test_exports -*-
"""
twsgi: a production WSGI server built on Twisted.

The public API is re-exported here; a test pins this list.
"""

from twsgi.config.apploader import AppLoadError, loadApp
from twsgi.config.model import ServerConfig
from twsgi.config.resolve import ConfigError, resolveConfig
from twsgi.lifecycle.drain import DrainResult
from twsgi.lifecycle.embed import OrderedMultiService, serve
from twsgi.lifecycle.service import ListenError, TwsgiService
from twsgi.logs.accesslog import AccessRecord
from twsgi.wsgi.bridge import FileWrapper, WSGIResource
from twsgi.wsgi.environ import ClientDisconnected

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
