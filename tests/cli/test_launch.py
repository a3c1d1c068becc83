"""
Tests for L{twsgi.cli.launch}: the C{twsgi} command and C{python -m twsgi}
survive a SIGHUP or SIGUSR1 while the rest of twsgi imports.
"""

from __future__ import annotations

import importlib.metadata
import signal
import subprocess
import sys
import textwrap

from twisted.trial.unittest import SynchronousTestCase

import twsgi
from tests.helpers.server import cleanEnviron
from twsgi.cli.launch import SIGNALS
from twsgi.lifecycle.signals import Mode, actions

# A finder asked first for every import: it sends this process the signal
# named by argv[1] when twsgi.cli.main is about to be imported, so the
# signal arrives while that import (Twisted and the rest) runs, as one from
# logrotate or an operator would.  Then it runs the entry point named by
# argv[2] with --version.
_SIGNALLED_START = textwrap.dedent(
    """
    import os, runpy, signal, sys

    signum = getattr(signal, sys.argv[1])

    class SignalOnImport:
        def find_spec(self, name, path=None, target=None):
            if name == "twsgi.cli.main":
                os.kill(os.getpid(), signum)
            return None

    sys.meta_path.insert(0, SignalOnImport())
    entry = sys.argv[2]
    sys.argv = ["twsgi", "--version"]
    if entry == "python -m twsgi":
        runpy.run_module("twsgi", run_name="__main__", alter_sys=True)
    else:
        module, _, name = entry.partition(":")
        getattr(__import__(module, fromlist=[name]), name)()
    """
)


class LaunchTests(SynchronousTestCase):
    """
    The signals that end or suspend a process by default are ignored while
    the entry points import the rest of twsgi, and have their default
    actions back when the command runs.
    """

    def start(self, signame: str, entry: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", _SIGNALLED_START, signame, entry],
            env=cleanEnviron(),
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )

    def test_signalDuringImport(self) -> None:
        """
        A SIGHUP or a SIGUSR1 that arrives while the C{twsgi} command or
        C{python -m twsgi} imports does not end it.
        """
        entry = importlib.metadata.entry_points(group="console_scripts")["twsgi"].value
        for signame in ("SIGHUP", "SIGUSR1"):
            for how in (entry, "python -m twsgi"):
                done = self.start(signame, how)
                self.assertEqual(
                    (done.returncode, done.stdout.split(" ")[0], done.stderr),
                    (0, "twsgi", ""),
                    (signame, how),
                )

    def test_withoutLaunch(self) -> None:
        """
        The same signal at the same moment ends the process that starts
        L{twsgi.cli.main.main} directly: the test above can fail.
        """
        done = self.start("SIGHUP", "twsgi.cli.main:main")
        self.assertEqual(done.returncode, -signal.SIGHUP)

    def test_packageImportsLittle(self) -> None:
        """
        Importing the package alone (which C{python -m twsgi} does before
        L{twsgi.cli.launch} runs) imports neither Twisted nor the rest of
        twsgi; its public names are there when asked for.
        """
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys, twsgi; "
                "print(sorted(m for m in sys.modules "
                "if m.partition('.')[0] in ('twisted', 'OpenSSL', 'h2') "
                "or m.startswith('twsgi.'))); "
                "print(twsgi.TwsgiService.__module__, twsgi.__version__)",
            ],
            env=cleanEnviron(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(
            done.stdout.splitlines(),
            ["['twsgi._version']", f"twsgi.lifecycle.service {twsgi.__version__}"],
            done.stderr,
        )

    def test_signalsOfTheTable(self) -> None:
        """
        The signals ignored are those the single process handles
        (L{twsgi.lifecycle.signals.actions}).
        """
        self.assertEqual(
            {getattr(signal, name) for name in SIGNALS},
            set(actions(Mode.SINGLE, None)),
        )

    def test_defaultsBack(self) -> None:
        """
        The signals have their default actions back when the command runs,
        as they had before.
        """
        seen = {}
        calls = []
        main = importlib.import_module("twsgi.cli.main")

        def run() -> None:
            calls.append(True)
            seen.update(
                (name, signal.getsignal(getattr(signal, name))) for name in SIGNALS
            )

        self.patch(main, "main", run)
        from twsgi.cli import launch

        launch.main()
        self.assertEqual(calls, [True])
        self.assertEqual(set(seen.values()), {signal.SIG_DFL})
