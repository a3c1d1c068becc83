"""
Tests for L{twsgi.lifecycle.build}: a L{twsgi.ServerConfig} becomes the
objects of a service.  (The service's own use of it is tested in
L{tests.lifecycle.test_service}.)
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from twsgi.config.model import ServerConfig
from twsgi.config.resolve import ConfigError, resolveConfig
from twsgi.http.limits import MIB, Limits
from twsgi.lifecycle.build import adminEndpoints, limitsFromConfig


class LimitsFromConfigTests(SynchronousTestCase):
    """
    Tests for L{limitsFromConfig}.
    """

    def test_settings(self) -> None:
        """
        The limit and timeout settings, from the command line or the
        environment, become the L{Limits} of every listener.
        """
        config = resolveConfig(
            {"max_body_size": "1M", "header_timeout": "3"},
            {
                "TWSGI_KEEPALIVE_TIMEOUT": "2",
                "TWSGI_LIMIT_REQUEST_FIELDS": "7",
                "TWSGI_HTTP2_CONTROL_FRAMES": "50",
                "TWSGI_HTTP2_RESET_RATE": "2.5",
            },
        )
        self.assertEqual(
            limitsFromConfig(config),
            Limits(
                maxBody=MIB,
                headerTimeout=3.0,
                keepAliveTimeout=2.0,
                maxHeaderCount=7,
                controlFrames=50,
                resetRate=2.5,
            ),
        )

    def test_defaults(self) -> None:
        """
        Without settings, the limits are the safe defaults of L{Limits}.
        """
        self.assertEqual(limitsFromConfig(resolveConfig({}, {})), Limits())


class AdminEndpointsTests(SynchronousTestCase):
    """
    Tests for L{adminEndpoints}: a listener given twice is refused.
    """

    def test_optionsDoNotMakeAnotherListener(self) -> None:
        """
        One endpoint given twice is refused whatever twsgi options follow
        it (C{;forwarded-allow-ips=...}): both would listen on one socket.
        """
        config = ServerConfig(
            endpoint=("tcp:8000;forwarded-allow-ips=*", "tcp:8000"),
            health_endpoint=("unix:h.sock", "unix:h.sock;forwarded-allow-ips=*"),
        )
        with self.assertRaises(ConfigError) as caught:
            adminEndpoints(config)
        self.assertIn("'tcp:8000' is given twice", str(caught.exception))

    def test_portZeroWithOptions(self) -> None:
        """
        Port 0 given twice is two listeners on two free ports, also with
        twsgi options after it.
        """
        config = ServerConfig(endpoint=("tcp:0;forwarded-allow-ips=*",) * 2)
        self.assertEqual(adminEndpoints(config), ())
