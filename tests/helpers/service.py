"""
Building a TwsgiService the way the command line does.
"""

from __future__ import annotations

from typing import Any

from twsgi import TwsgiService
from twsgi.cli.options import serviceFromConfig
from twsgi.config.resolve import resolveConfig
from twsgi.testing import SynchronousReactor, SynchronousThreadPool


def cliService(**given: Any) -> TwsgiService:
    """
    The service the command line builds for C{given} settings, on a memory
    reactor with a synchronous pool.
    """
    given.setdefault("app", "twsgi.example:app")
    given.setdefault("access_log", "none")
    service = serviceFromConfig(resolveConfig(given, {}), SynchronousReactor())
    service.threadpool = service.resource.threadpool = SynchronousThreadPool()
    return service
