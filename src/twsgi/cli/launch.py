# -*- test-case-name: tests.cli.test_launch -*-
"""
Where the C{twsgi} command and C{python -m twsgi} start (the latter is how
the supervisor starts its workers): the signals that would end or suspend
the process by default are ignored while the rest of twsgi imports.

That import (Twisted, the TLS stack, the settings table) takes most of a
second, several on a loaded machine; a C{logrotate} C{postrotate} that
sends SIGUSR1, or a SIGHUP, would end the process then, before twsgi's
handlers are there.  This module imports nothing of twsgi's but what it
hands over to, so that the window is the interpreter's start alone.  The
default actions are back before L{twsgi.cli.main.main} runs, which then
ignores them again while the application loads
(L{twsgi.lifecycle.signals.ignoredWhileLoading}) and installs its handlers.
"""

from __future__ import annotations

import signal
import threading

# The signals of twsgi.lifecycle.signals.actions (Mode.SINGLE), which
# tests.cli.test_launch holds this to: importing that module is what takes
# the time.
SIGNALS = ("SIGHUP", "SIGUSR1", "SIGUSR2", "SIGTTIN", "SIGTTOU", "SIGWINCH")


def main() -> None:
    """
    Run the C{twsgi} command (L{twsgi.cli.main.main}), its signals ignored
    while it imports.
    """
    ignored = []
    if threading.current_thread() is threading.main_thread():
        for name in SIGNALS:
            signum = getattr(signal, name)
            if signal.getsignal(signum) == signal.SIG_DFL:
                signal.signal(signum, signal.SIG_IGN)
                ignored.append(signum)
    try:
        from twsgi.cli.main import main as run
    finally:
        for signum in ignored:
            signal.signal(signum, signal.SIG_DFL)
    run()


__all__ = ["SIGNALS", "main"]
