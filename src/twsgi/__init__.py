# -*- test-case-name: tests.test_exports -*-
"""
twsgi: a production WSGI server built on Twisted.

The public API is re-exported here; a test pins this list.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._version import __version__ as _incrementalVersion

if TYPE_CHECKING:
    from twsgi.config.apploader import AppLoadError, loadApp
    from twsgi.config.model import ServerConfig
    from twsgi.config.resolve import ConfigError, resolveConfig
    from twsgi.lifecycle.drain import DrainResult
    from twsgi.lifecycle.embed import OrderedMultiService, serve
    from twsgi.lifecycle.service import ListenError, TwsgiService
    from twsgi.logs.accesslog import AccessRecord
    from twsgi.wsgi.bridge import FileWrapper, WSGIResource
    from twsgi.wsgi.environ import ClientDisconnected

__version__: str = _incrementalVersion.public()
"""
twsgi's version as a PEP 440 string (C{"0.1.0.dev0"}).  C{_version.py} keeps
the L{incremental.Version} that the build reads.
"""

# Where each public name is defined.  It is imported when first used: an
# import of twsgi alone (for C{python -m twsgi}, or of one of its modules)
# does not import Twisted and the rest (see L{twsgi.cli.launch}).
_HOMES = {
    "AccessRecord": "twsgi.logs.accesslog",
    "AppLoadError": "twsgi.config.apploader",
    "ClientDisconnected": "twsgi.wsgi.environ",
    "ConfigError": "twsgi.config.resolve",
    "DrainResult": "twsgi.lifecycle.drain",
    "FileWrapper": "twsgi.wsgi.bridge",
    "ListenError": "twsgi.lifecycle.service",
    "OrderedMultiService": "twsgi.lifecycle.embed",
    "ServerConfig": "twsgi.config.model",
    "TwsgiService": "twsgi.lifecycle.service",
    "WSGIResource": "twsgi.wsgi.bridge",
    "loadApp": "twsgi.config.apploader",
    "resolveConfig": "twsgi.config.resolve",
    "serve": "twsgi.lifecycle.embed",
}


if not TYPE_CHECKING:
    # Hidden from type checkers, which would give any name imported from
    # twsgi (a misspelt one too) this function's return type: they see the
    # imports above instead.

    def __getattr__(name: str) -> object:
        home = _HOMES.get(name)
        if home is None:
            raise AttributeError(f"module 'twsgi' has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})


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
