# -*- test-case-name: tests.test_proxy -*-
"""
C{haproxy:} listeners (the PROXY protocol) that refuse every malformed
header the same way.

Twisted closes the connection on most malformed PROXY headers, but its v1
parser lets a port that is not a number (C{PROXY TCP4 a b x 80}, or a
header that runs into the request) raise L{ValueError} out of
C{dataReceived}: an unhandled error, with its traceback in the server log,
for every such connection.  L{strictProxyEndpoint} gives a C{haproxy:}
endpoint a wrapper that closes those connections quietly too.  Everything
here runs in the I/O thread.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import endpoints
from twisted.protocols.haproxy._wrapper import (
    HAProxyProtocolWrapper,
    HAProxyWrappingFactory,
)


class _StrictProxyProtocol(HAProxyProtocolWrapper):
    """
    A PROXY protocol wrapper that closes the connection on any header its
    parser cannot read.
    """

    def dataReceived(self, data: bytes) -> None:
        try:
            super().dataReceived(data)
        except ValueError:
            if self._proxyInfo is not None:
                raise
            self.loseConnection()


class _StrictProxyFactory(HAProxyWrappingFactory):
    protocol = _StrictProxyProtocol  # type: ignore[assignment]


def strictProxyEndpoint(endpoint: Any) -> Any:
    """
    Give a C{haproxy:} endpoint (as Twisted's endpoint parser builds it)
    the strict wrapper; return any other endpoint as it is.
    """
    if (
        isinstance(endpoint, endpoints._WrapperServerEndpoint)
        and endpoint._wrapperFactory is HAProxyWrappingFactory
    ):
        endpoint._wrapperFactory = _StrictProxyFactory
    return endpoint


__all__ = ["strictProxyEndpoint"]
