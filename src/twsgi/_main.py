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
    Twist.main([sys.argv[0], "twsgi", *args])


__all__ = ["main"]
