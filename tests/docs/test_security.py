"""
The security page lists every limit, timeout and trust setting with its
default, from the settings table itself.
"""

from __future__ import annotations

import os
import sys

from twisted.trial.unittest import SynchronousTestCase

from twsgi.config.settings import SETTINGS

DOCS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "docs"
)
sys.path.insert(0, os.path.join(DOCS, "_ext"))

import twsgi_security  # noqa: E402


class SecurityPageTests(SynchronousTestCase):
    """
    Tests for C{docs/_ext/twsgi_security.py} and C{docs/security.rst}.
    """

    def test_everyLimit(self) -> None:
        """
        Every setting of the Limits, Timeouts and Proxies sections is a row
        of the table, with its flag and environment variable.
        """
        table = twsgi_security.limitsTable()
        listed = [s for s in SETTINGS if s.section in twsgi_security.SECTIONS]
        self.assertGreaterEqual(len(listed), 11)
        for setting in listed:
            self.assertIn(f":option:`twsgi --{setting.flag}`", table)
            self.assertIn(setting.envvar, table)

    def test_defaults(self) -> None:
        """
        Defaults are shown as an operator would type them.
        """
        table = twsgi_security.limitsTable()
        self.assertIn("``1G`` (1073741824 bytes)", table)
        self.assertIn("20 s", table)
        self.assertIn("``127.0.0.1,::1``", table)

    def test_apostrophes(self) -> None:
        """
        Only quoted values in the help texts become inline literals: an
        apostrophe (C{request's}) is kept, so that no row opens an inline
        literal it never closes, and a literal C{*} is not escaped.
        """
        table = twsgi_security.limitsTable()
        self.assertIn("a request's first byte", table)
        self.assertIn("``tcp:8000;forwarded-allow-ips=10.0.0.0/8``", table)
        self.assertIn("or ``*``)", table)
        for line in table.splitlines():
            self.assertEqual(line.count("``") % 2, 0, line)

    def test_pageUsesTable(self) -> None:
        """
        The security page renders the generated table and is in the
        toctree.
        """
        with open(os.path.join(DOCS, "security.rst")) as f:
            self.assertIn(".. twsgi-limits::", f.read())
        with open(os.path.join(DOCS, "index.rst")) as f:
            self.assertIn("   security\n", f.read())
