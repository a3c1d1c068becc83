# -*- test-case-name: tests.docs.test_names -*-
"""
The names the docs give exist: every C{--flag} is one of twsgi's settings
(or a flag of the other program the docs run it with), and every dotted
C{twsgi.} name imports.

The docs build cannot tell: C{docs/conf.py} renders references to twsgi's
Python objects as code without looking them up, and a flag written as a
literal (C{``--graceful-timeout``}) is no C{:option:} role.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers.docblocks import ROOT, pages
from tests.helpers.names import resolve
from twsgi.config.settings import SETTINGS

_FLAG = re.compile(r"(?<![\w/.-])--[a-z][a-z0-9_]*(?:-[a-z0-9_]+)*(?:-\*)?")
"""
A long option as the docs write it: C{--graceful-timeout}, or C{--tls-*} for
a family of them; not part of a word or a path.
"""

_TWSGI_FLAGS = {"--" + s.flag for s in SETTINGS} | {"--help", "--version"}

_OTHER_FLAGS = {
    "--pidfile": "twistd",
    "--logfile": "twistd",
    "--uid": "twistd",
    "--gid": "twistd",
    "--logger": "twistd",
    "--log-file": "twist",
    "--wsgi": "twistd web",
    "--fdname": "systemd-socket-activate",
    "--kill-whom": "systemctl kill",
    "--time": "docker stop",
    "--haproxy-protocol": "curl",
    "--http1": "curl (--http1.1)",
    "--mozilla_config": "sslyze",
    "--scenarios": "bench/run.py",
    "--servers": "bench/run.py",
    "--baseline": "bench/run.py",
    "--update-docs": "bench/run.py",
    "--latency": "wrk",
    "--h1": "h2load",
}
"""
The flags of other programs that the docs name, and the program.
"""

_NAME = re.compile(r"(?<![\w/.-])twsgi(?:\.[A-Za-z_]\w*)+")

_FILES = (".tac", ".toml")
"""
Names that look dotted but are files (C{twsgi.tac}).
"""


def _texts() -> Iterator[tuple[str, str]]:
    """
    What a reader reads: C{README.md}, the pages of C{docs/} written by hand,
    and the files of C{docs/examples/} and C{docs/deploy/}; as C{(path,
    text)}.
    """
    paths = [ROOT / "README.md", *pages()]
    for directory in ("examples", "deploy"):
        paths.extend(sorted((ROOT / "docs" / directory).iterdir()))
    for path in paths:
        yield str(path.relative_to(ROOT)), path.read_text()


def _found(pattern: re.Pattern[str]) -> dict[str, list[str]]:
    """
    Every match of C{pattern} in L{_texts}, with the C{path:line} of each.
    """
    found: dict[str, list[str]] = {}
    for path, text in _texts():
        for number, line in enumerate(text.splitlines(), 1):
            for match in pattern.findall(line):
                found.setdefault(match, []).append(f"{path}:{number}")
    return found


class FlagTests(SynchronousTestCase):
    """
    The flags the docs name.
    """

    def test_settings(self) -> None:
        """
        Every C{--flag} of the docs is a flag of the settings table (a
        C{--family-*} one begins at least one), or one of
        L{_OTHER_FLAGS}.
        """
        found = _found(_FLAG)
        self.assertIn("--graceful-timeout", found)
        unknown = [
            f"{where[0]}: {flag}"
            for flag, where in sorted(found.items())
            if flag not in _TWSGI_FLAGS
            and flag not in _OTHER_FLAGS
            and not (
                flag.endswith("-*")
                and any(f.startswith(flag[:-1]) for f in _TWSGI_FLAGS)
            )
        ]
        self.assertEqual(unknown, [])

    def test_otherFlagsNamed(self) -> None:
        """
        Every flag of L{_OTHER_FLAGS} is in the docs, and is none of twsgi's
        (the list has nothing left over).
        """
        found = _found(_FLAG)
        self.assertEqual(sorted(set(_OTHER_FLAGS) - set(found)), [])
        self.assertEqual(sorted(set(_OTHER_FLAGS) & _TWSGI_FLAGS), [])


class PythonNameTests(SynchronousTestCase):
    """
    The Python names the docs give.
    """

    def test_resolve(self) -> None:
        """
        Every dotted C{twsgi.} name of the docs (C{twsgi.TwsgiService},
        C{twsgi.testing.spawnServer}, C{twsgi.logs.serverlog.jsonLogObserver}
        for C{twistd --logger}) imports, but for file names.
        """
        found = _found(_NAME)
        self.assertIn("twsgi.TwsgiService", found)
        missing = [
            f"{where[0]}: {name}"
            for name, where in sorted(found.items())
            if not name.endswith(_FILES) and resolve(name) is None
        ]
        self.assertEqual(missing, [])
