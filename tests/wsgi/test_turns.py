"""
Tests for L{twsgi.wsgi.turns}.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from twsgi.wsgi.turns import TurnProducer


class Counting(TurnProducer):
    """
    Counts its steps, and stops itself after C{last} of them.
    """

    def __init__(self, clock: Clock, perTurn: int, last: int) -> None:
        TurnProducer.__init__(self, clock.callLater, perTurn)
        self.steps = 0
        self.last = last

    def step(self) -> None:
        self.steps += 1
        if self.steps == self.last:
            self.stop()


def nextTurn(clock: Clock) -> None:
    """
    Run the one turn scheduled on C{clock}, not the turns it schedules.
    """
    [call] = clock.getDelayedCalls()
    clock.calls.remove(call)
    call.func(*call.args, **call.kw)


class TurnProducerTests(SynchronousTestCase):
    """
    L{TurnProducer} takes a few steps a turn of the reactor while it is not
    paused.
    """

    def test_stepsPerTurn(self) -> None:
        """
        A turn takes C{perTurn} steps and schedules the next turn, until the
        producer stops itself; then nothing is scheduled.
        """
        clock = Clock()
        producer = Counting(clock, perTurn=3, last=7)
        producer.turn()
        self.assertEqual(producer.steps, 3)
        nextTurn(clock)
        self.assertEqual(producer.steps, 6)
        nextTurn(clock)
        self.assertEqual(producer.steps, 7)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_pauseAndResume(self) -> None:
        """
        A paused producer takes no step and has no turn scheduled; resumed,
        it goes on in the next turn.
        """
        clock = Clock()
        producer = Counting(clock, perTurn=2, last=100)
        producer.turn()
        producer.pauseProducing()
        self.assertEqual(clock.getDelayedCalls(), [])
        clock.advance(0)
        self.assertEqual(producer.steps, 2)
        producer.resumeProducing()
        self.assertEqual(producer.steps, 2)
        nextTurn(clock)
        self.assertEqual(producer.steps, 4)

    def test_stopProducing(self) -> None:
        """
        A stopped producer cancels its next turn, and resuming it does not
        start it again.
        """
        clock = Clock()
        producer = Counting(clock, perTurn=1, last=100)
        producer.turn()
        producer.stopProducing()
        self.assertEqual(clock.getDelayedCalls(), [])
        producer.resumeProducing()
        clock.advance(0)
        self.assertEqual(producer.steps, 1)

    def test_startsPaused(self) -> None:
        """
        A producer made paused (its consumer is full) takes no step until
        it is resumed.
        """
        clock = Clock()
        producer = TurnProducer(clock.callLater, 4, paused=True)
        producer.step = lambda: self.fail("stepped")  # type: ignore[method-assign]
        producer.turn()
        self.assertEqual(clock.getDelayedCalls(), [])
