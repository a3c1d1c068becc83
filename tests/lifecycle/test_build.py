"""
Tests for L{twsgi.lifecycle.build}: a L{twsgi.ServerConfig} becomes the
objects of a service.  (The service's own use of it is tested in
L{tests.lifecycle.test_service}.)
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from twsgi.config.resolve import resolveConfig
from twsgi.http.limits import MIB, Limits
from twsgi.lifecycle.build import limitsFromConfig


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
            {"TWSGI_KEEPALIVE_TIMEOUT": "2", "TWSGI_LIMIT_REQUEST_FIELDS": "7"},
        )
        self.assertEqual(
            limitsFromConfig(config),
            Limits(
                maxBody=MIB, headerTimeout=3.0, keepAliveTimeout=2.0, maxHeaderCount=7
            ),
        )

    def test_defaults(self) -> None:
        """
        Without settings, the limits are the safe defaults of L{Limits}.
        """
        self.assertEqual(limitsFromConfig(resolveConfig({}, {})), Limits())
