# -*- test-case-name: tests.test_tap -*-
"""
C{python -m twsgi} and the C{twsgi} script: run the plugin under Twisted's
C{twist} runner, so the options, logging and signals are exactly those of
C{twist twsgi}.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    """
    Run twsgi with C{argv} (default: C{sys.argv[1:]}).
    """
    from twisted.application.twist._twist import Twist

    args = sys.argv[1:] if argv is None else argv
    # twist logs JSON when standard output is not a terminal; an operator
    # reading a service's log expects text, as from twistd -n.
    Twist.main([sys.argv[0], "--log-format", "text", "twsgi", *args])


__all__ = ["main"]
