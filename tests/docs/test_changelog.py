# -*- test-case-name: tests.docs.test_changelog -*-
"""
The changelog, built by towncrier from C{newsfragments/}, shows what users
need to read.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

_FRAGMENTS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "newsfragments",
)


class FragmentTests(SynchronousTestCase):
    """
    The news fragments are of a type that shows what they say.
    """

    def test_miscNamesNoModule(self) -> None:
        """
        A C{.misc} fragment, which towncrier lists by its name only, names no
        module of the package (C{twsgi.}): news of what users import, such as
        a module that moved, must reach the changelog.
        """
        hidden = []
        for name in sorted(os.listdir(_FRAGMENTS)):
            if name.endswith(".misc"):
                with open(os.path.join(_FRAGMENTS, name), encoding="utf-8") as f:
                    if "twsgi." in f.read():
                        hidden.append(name)
        self.assertEqual(hidden, [])
