# -*- test-case-name: tests.wsgi.test_turns -*-
"""
L{TurnProducer}: a push producer that works in steps from the reactor, a few
steps a turn, while its consumer does not pause it.  The bridge's file
sender (L{twsgi.wsgi.bridge}) and the adapter of pull producers
(L{twsgi.server.pulling}) are both one.  Everything here runs in the I/O
thread.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from twsgi.logs.clock import DelayedCall

CallLater = Callable[[float, Callable[[], None]], DelayedCall]
"""
The reactor's C{callLater}, as a L{TurnProducer} calls it.
"""


@implementer(IPushProducer)
class TurnProducer:
    """
    Calls L{step} up to C{perTurn} times a turn of the reactor, in turns
    scheduled with C{callLater(0, ...)}, while it is neither paused nor
    stopped: other connections get their turn in between.  A subclass says
    what a step is, and calls L{stop} once there is nothing more to do.
    """

    _call: DelayedCall | None = None
    _stopped = False

    def __init__(
        self, callLater: CallLater, perTurn: int, paused: bool = False
    ) -> None:
        """
        @param callLater: the reactor's C{callLater}.
        @param perTurn: the most steps in one turn.
        @param paused: whether the consumer is paused now.
        """
        self._callLater = callLater
        self._perTurn = perTurn
        self._paused = paused

    def step(self) -> None:
        """
        Do one step of the work.
        """
        raise NotImplementedError

    def turn(self) -> None:
        """
        Take a turn now: up to C{perTurn} steps, then schedule the next
        turn unless paused or stopped meanwhile.
        """
        self._call = None
        for _ in range(self._perTurn):
            if self._paused or self._stopped:
                return
            self.step()
        self._schedule()

    def stop(self) -> None:
        """
        Take no more steps.
        """
        self._stopped = True
        self._cancel()

    def _schedule(self) -> None:
        if self._call is None and not (self._paused or self._stopped):
            self._call = self._callLater(0, self.turn)

    def _cancel(self) -> None:
        call, self._call = self._call, None
        if call is not None and call.active():
            call.cancel()

    def pauseProducing(self) -> None:
        self._paused = True
        self._cancel()

    def resumeProducing(self) -> None:
        self._paused = False
        self._schedule()

    def stopProducing(self) -> None:
        self.stop()


__all__ = ["CallLater", "TurnProducer"]
