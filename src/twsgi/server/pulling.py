# -*- test-case-name: tests.server.test_pulling -*-
"""
Pull producers (C{twisted.web.static.File}, the file sender behind a large
C{wsgi.file_wrapper}) driven by the channel's own reactor.

C{twisted.web}'s channel drives a pull producer through the global
cooperator, which runs on the global reactor whatever reactor the site was
given: under another reactor (a test's memory reactor, say) the response
never goes out.  L{ReactorPullToPush} asks the producer for a chunk at a
time through the C{callLater} the channel already uses for its timeouts.
Everything here runs in the I/O thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from zope.interface import implementer

_log = Logger(namespace="twsgi")

CHUNKS_PER_TURN = 16
"""
Chunks asked of the producer in one turn of the reactor while its consumer
does not pause it (a file sender's chunk is 64 KiB): other connections get
their turn in between.
"""


@implementer(IPushProducer)
class ReactorPullToPush:
    """
    A push producer that calls a pull producer's C{resumeProducing} while
    its consumer is not paused, up to L{CHUNKS_PER_TURN} times a turn of the
    reactor.

    The pull producer ends its response by unregistering itself, and so
    this adapter (see L{stop}).
    """

    def __init__(
        self,
        producer: Any,
        consumer: Any,
        callLater: Callable[..., Any],
        paused: bool = False,
    ) -> None:
        """
        @param producer: the L{IPullProducer}.
        @param consumer: the channel it was registered with, told to
            unregister it if it fails.
        @param callLater: the channel's reactor's C{callLater}.
        @param paused: whether the consumer's transport is paused now.
        """
        self._producer = producer
        self._consumer = consumer
        self._callLater = callLater
        self._paused = paused
        self._stopped = False
        self._call: Any = None

    def start(self) -> None:
        """
        Begin asking for chunks, in the next turn of the reactor.
        """
        self._schedule()

    def stop(self) -> None:
        """
        The producer was unregistered: ask it for nothing more.
        """
        self._stopped = True
        self._cancel()

    def _schedule(self) -> None:
        if self._call is None and not self._paused and not self._stopped:
            self._call = self._callLater(0, self._pull)

    def _cancel(self) -> None:
        call, self._call = self._call, None
        if call is not None and call.active():
            call.cancel()

    def _pull(self) -> None:
        self._call = None
        for _ in range(CHUNKS_PER_TURN):
            if self._paused or self._stopped:
                return
            try:
                self._producer.resumeProducing()
            except BaseException:
                _log.failure(
                    "resumeProducing of {producer!r} raised", producer=self._producer
                )
                self.stop()
                self._consumer.unregisterProducer()
                return
        self._schedule()

    def pauseProducing(self) -> None:
        self._paused = True
        self._cancel()

    def resumeProducing(self) -> None:
        self._paused = False
        self._schedule()

    def stopProducing(self) -> None:
        self.stop()
        self._producer.stopProducing()


__all__ = ["CHUNKS_PER_TURN", "ReactorPullToPush"]
