# -*- test-case-name: tests.server.test_pulling -*-
"""
Pull producers (those of C{twisted.web.static.File}) driven by the
channel's own reactor.

C{twisted.web}'s channel drives a pull producer through the global
cooperator, which runs on the global reactor whatever reactor the site was
given: under another reactor (a test's memory reactor, say) the response
never goes out.  L{ReactorPullToPush} asks the producer for a chunk at a
time through the C{callLater} the channel already uses for its timeouts.
Everything here runs in the I/O thread.
"""

from __future__ import annotations

from typing import Protocol

from twisted.logger import Logger

from twsgi.wsgi.exchange import PullProducer
from twsgi.wsgi.turns import CallLater, TurnProducer

_log = Logger(namespace="twsgi")

CHUNKS_PER_TURN = 16
"""
Chunks asked of the producer in one turn of the reactor while its consumer
does not pause it (a file sender's chunk is 64 KiB): other connections get
their turn in between.
"""


class PullConsumer(Protocol):
    """
    What a L{ReactorPullToPush} needs of the channel its producer was
    registered with.
    """

    def unregisterProducer(self) -> None: ...

    def abortResponse(self) -> None: ...


class ReactorPullToPush(TurnProducer):
    """
    A push producer that calls a pull producer's C{resumeProducing} while
    its consumer is not paused, up to L{CHUNKS_PER_TURN} times a turn of the
    reactor.

    The pull producer ends its response by unregistering itself, and so
    this adapter (see L{stop}).
    """

    def __init__(
        self,
        producer: PullProducer,
        consumer: PullConsumer,
        callLater: CallLater,
        paused: bool = False,
    ) -> None:
        """
        @param producer: the L{IPullProducer}.
        @param consumer: the channel it was registered with (an HTTP/1.1
            connection, an HTTP/2 stream), told to unregister it and to cut
            its response off (C{abortResponse}) if it fails.
        @param callLater: the channel's reactor's C{callLater}.
        @param paused: whether the consumer's transport is paused now.
        """
        TurnProducer.__init__(self, callLater, CHUNKS_PER_TURN, paused)
        self._producer = producer
        self._consumer = consumer

    def start(self) -> None:
        """
        Begin asking for chunks, in the next turn of the reactor.
        """
        self._schedule()

    def step(self) -> None:
        """
        Ask the pull producer for a chunk; if that raises, log it, unregister
        it, and cut its response off: it will never be finished, and its
        client would otherwise wait for the rest of it for ever.
        """
        try:
            self._producer.resumeProducing()
        except BaseException:
            _log.failure(
                "resumeProducing of {producer!r} raised", producer=self._producer
            )
            self.stop()
            self._consumer.unregisterProducer()
            self._consumer.abortResponse()

    def stopProducing(self) -> None:
        self.stop()
        self._producer.stopProducing()


__all__ = ["CHUNKS_PER_TURN", "PullConsumer", "ReactorPullToPush"]
