"""
A real TwsgiService in the real reactor on 127.0.0.1 port 0, for tests
that talk to it over sockets.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, reactor
from twisted.web.client import Agent, readBody
from twisted.web.http_headers import Headers

from twsgi.cli.options import serviceFromConfig
from twsgi.config.resolve import resolveConfig


class RealServerMixin:
    """
    Start a service from settings on 127.0.0.1 port 0, and make requests.
    """

    @defer.inlineCallbacks
    def startServer(self, settings: dict[str, Any]) -> Any:
        config = resolveConfig(settings)
        service = serviceFromConfig(config, reactor)
        service.startService()
        self.addCleanup(service.stopService)  # type: ignore[attr-defined]
        addresses = yield service.whenListening
        self.ports = {description: address.port for description, address in addresses}
        return service

    @defer.inlineCallbacks
    def request(
        self, description: str, path: str, headers: dict[str, str] | None = None
    ) -> Any:
        agent = Agent(reactor)
        url = f"http://127.0.0.1:{self.ports[description]}{path}".encode()
        response = yield agent.request(
            b"GET",
            url,
            Headers({k: [v] for k, v in (headers or {}).items()}),
        )
        body = yield readBody(response)
        return response, body


def deferLater(seconds: float) -> Any:
    from twisted.internet.task import deferLater as later

    return later(reactor, seconds, lambda: None)
