# -*- test-case-name: tests.http.test_h2budget -*-
"""
The bound on the request-body bytes one HTTP/2 connection holds at once
across its streams: L{BodyBudget}.

Every stream's body is received whole before the application runs (in
memory, or in a temporary file), so without a bound one connection could
hold C{SETTINGS_MAX_CONCURRENT_STREAMS} bodies of the largest size at
once, where an HTTP/1.1 connection holds one.  Once the bodies a
connection holds reach its budget, a stream that sends more is not
refused: it waits, and meanwhile gets no more receive window than it has
(the connection holds its WINDOW_UPDATE frames, see
L{twsgi.http.h2connection.H2ServerConnection.holdWindow}), until streams
end and give their bytes back.  The oldest stream still receiving its body
never waits, so the bodies before it cannot hold it back for ever: it
completes, its request is served, its stream ends, and the next one
becomes the oldest.  If the oldest stalls instead (its body times out),
the streams that wait behind it go with it (L{BodyBudget.stalled}): a
client that fills the windows of many streams and sends no more holds them
for one body timeout, not for one a stream in turn.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

_NONE: tuple[int, ...] = ()


class BodyBudget:
    """
    The request-body bytes the streams of one connection hold, against a
    budget.

    The bytes count from their arrival to the end of their stream.  While
    fewer than C{size} are held, every stream receives; at C{size} or
    more, only the oldest stream still receiving its body does, and the
    others wait until the bytes held drop below C{size} again or they
    become the oldest.  So the bytes held stay below C{size}, plus the body
    of the oldest stream, plus what the waiting streams may still send in
    the windows they were given before they waited.

    @ivar size: the bytes held beyond which streams wait.
    @ivar used: the bytes held now.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.used = 0
        self._held: dict[int, int] = {}
        # The streams whose bodies are arriving, oldest first, and those of
        # them that wait.
        self._receiving: OrderedDict[int, None] = OrderedDict()
        self._waiting: OrderedDict[int, None] = OrderedDict()

    def open(self, streamID: int) -> None:
        """
        A stream's body begins to arrive.
        """
        self._receiving[streamID] = None
        self._held[streamID] = 0

    def received(self, streamID: int, size: int) -> bool:
        """
        C{size} more bytes of a stream's body arrived, and are held.

        @return: whether the stream may receive more; if not, it waits (see
            L{waiting}) until L{ended} or L{release} names it.
        """
        held = self._held.get(streamID)
        if held is None:
            return True
        self._held[streamID] = held + size
        self.used += size
        if self.used < self.size or next(iter(self._receiving)) == streamID:
            return True
        self._waiting[streamID] = None
        return False

    def waiting(self, streamID: int) -> bool:
        """
        Whether the stream waits.
        """
        return streamID in self._waiting

    def stalled(self, streamID: int) -> Sequence[int]:
        """
        The stream's body stalled (its body timed out).  If it is the
        oldest stream still receiving, the streams that wait wait on a
        client that stalled the one stream that could go on: they no
        longer wait, and go with it.

        @return: the streams that waited behind C{streamID}, in the order
            they began to wait.
        """
        waiting = self._waiting
        if not waiting or next(iter(self._receiving)) != streamID:
            return _NONE
        behind = list(waiting)
        waiting.clear()
        return behind

    def ended(self, streamID: int) -> Sequence[int]:
        """
        The stream's body is complete: it receives no more, and holds what
        it received until L{release}.

        @return: the streams that no longer wait, in order.
        """
        if streamID not in self._receiving:
            return _NONE
        del self._receiving[streamID]
        self._waiting.pop(streamID, None)
        return self._wake()

    def release(self, streamID: int) -> Sequence[int]:
        """
        The stream ended: what it held is given back.

        @return: the streams that no longer wait, in order.
        """
        held = self._held.pop(streamID, None)
        if held is None:
            return _NONE
        self.used -= held
        self._waiting.pop(streamID, None)
        self._receiving.pop(streamID, None)
        return self._wake()

    def _wake(self) -> Sequence[int]:
        waiting = self._waiting
        if not waiting:
            return _NONE
        if self.used < self.size:
            woken = list(waiting)
            waiting.clear()
            return woken
        oldest = next(iter(self._receiving))
        if oldest not in waiting:
            return _NONE
        del waiting[oldest]
        return (oldest,)


__all__ = ["BodyBudget"]
