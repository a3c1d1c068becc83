"""
Tests for L{twsgi.server.pulling}: pull producers driven by the channel's reactor.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from twsgi.server.pulling import CHUNKS_PER_TURN, ReactorPullToPush


class PullProducer:
    """
    A pull producer that writes C{chunks} chunks to a list, then
    unregisters itself from its consumer.
    """

    stopped = False

    def __init__(self, consumer: Any, chunks: int, fail: bool = False) -> None:
        self.consumer = consumer
        self.chunks = chunks
        self.fail = fail
        self.written: list[int] = []

    def resumeProducing(self) -> None:
        if self.fail:
            raise RuntimeError("disk on fire")
        if len(self.written) == self.chunks:
            self.consumer.unregisterProducer()
            return
        self.written.append(len(self.written))

    def stopProducing(self) -> None:
        self.stopped = True


class Consumer:
    """
    What the channel does with the adapter: unregistering stops it.
    """

    adapter: Any = None
    unregistered = 0
    aborted = 0

    def unregisterProducer(self) -> None:
        self.unregistered += 1
        self.adapter.stop()

    def abortResponse(self) -> None:
        self.aborted += 1


def drive(chunks: int, paused: bool = False, fail: bool = False) -> Any:
    clock = Clock()
    consumer = Consumer()
    producer = PullProducer(consumer, chunks, fail)
    adapter = ReactorPullToPush(producer, consumer, clock.callLater, paused=paused)
    consumer.adapter = adapter
    adapter.start()
    return clock, consumer, producer, adapter


class ReactorPullToPushTests(SynchronousTestCase):
    def test_turns(self) -> None:
        """
        Each turn of the reactor asks for at most L{CHUNKS_PER_TURN} chunks,
        until the producer unregisters itself; then nothing is scheduled.
        """
        clock, consumer, producer, _ = drive(CHUNKS_PER_TURN + 3)
        self.assertEqual(producer.written, [])
        [turn] = clock.getDelayedCalls()
        clock.calls.remove(turn)
        turn.func()
        self.assertEqual(len(producer.written), CHUNKS_PER_TURN)
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        clock.advance(0)
        self.assertEqual(len(producer.written), CHUNKS_PER_TURN + 3)
        self.assertEqual(consumer.unregistered, 1)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_pauseAndResume(self) -> None:
        """
        While its consumer is paused the producer is asked for nothing; on
        resume it is asked again.
        """
        clock, _, producer, adapter = drive(3)
        adapter.pauseProducing()
        clock.advance(0)
        self.assertEqual(producer.written, [])
        self.assertEqual(clock.getDelayedCalls(), [])
        adapter.resumeProducing()
        clock.advance(0)
        self.assertEqual(producer.written, [0, 1, 2])

    def test_startsPaused(self) -> None:
        """
        An adapter made for a paused transport waits for C{resumeProducing}.
        """
        clock, _, producer, adapter = drive(1, paused=True)
        clock.advance(0)
        self.assertEqual(producer.written, [])
        adapter.resumeProducing()
        clock.advance(0)
        self.assertEqual(producer.written, [0])

    def test_stopProducing(self) -> None:
        """
        C{stopProducing} (the connection is gone) stops the producer and
        cancels the next turn.
        """
        clock, _, producer, adapter = drive(3)
        adapter.stopProducing()
        self.assertTrue(producer.stopped)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_failure(self) -> None:
        """
        A producer that raises is logged and unregistered from its consumer,
        which cuts the response off.
        """
        clock, consumer, _, _ = drive(3, fail=True)
        clock.advance(0)
        self.assertEqual((consumer.unregistered, consumer.aborted), (1, 1))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(clock.getDelayedCalls(), [])
