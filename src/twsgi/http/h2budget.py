# -*- test-case-name: tests.http.test_h2budget -*-
"""
The bound on the request-body bytes one HTTP/2 connection holds at once
across its streams: L{BodyBudget}.

Every stream's body is received whole before the application runs (in
memory, or in a temporary file), so without a bound one connection could
hold C{SETTINGS_MAX_CONCURRENT_STREAMS} bodies of the largest size at
once, where an HTTP/1.1 connection holds one.  A stream whose body would
take the connection past its budget is not refused: it waits, in the
order the streams asked, and meanwhile gets no more receive window than
its initial one (the connection holds its WINDOW_UPDATE frames, see
L{twsgi.http.h2connection.H2ServerConnection.holdWindow}).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

_NONE: tuple[int, ...] = ()


class BodyBudget:
    """
    A budget of request-body bytes, reserved by streams in the order they
    ask, and given back when they are done.

    A stream reserves what its body may take (its C{content-length}, or the
    body limit), keeps only what it took once its body is complete, and
    gives it all back when it ends.  A stream that does not fit waits
    behind the ones that asked before it, so the first in line is served as
    soon as the streams before it give back enough: no stream waits for
    ever while the ones before it end.

    @ivar size: the bytes the connection may hold.
    @ivar used: the bytes reserved now.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.used = 0
        self._reserved: dict[int, int] = {}
        self._waiting: OrderedDict[int, int] = OrderedDict()

    def admit(self, streamID: int, need: int) -> bool:
        """
        Reserve C{need} bytes (the budget at most) for a stream's body.

        @return: C{True} if they are reserved now, C{False} if the stream
            waits for them (see L{release}).
        """
        need = min(need, self.size)
        if not self._waiting and self.used + need <= self.size:
            self._reserved[streamID] = need
            self.used += need
            return True
        self._waiting[streamID] = need
        return False

    def waiting(self, streamID: int) -> bool:
        """
        Whether the stream waits for its reservation.
        """
        return streamID in self._waiting

    def settle(self, streamID: int, size: int) -> Sequence[int]:
        """
        The stream's body is complete, at C{size} bytes: it keeps no more
        than that reserved (a stream that still waited no longer does:
        its body fitted in its initial window).

        @return: the streams that the bytes given back admitted, in order.
        """
        if self._waiting.pop(streamID, None) is not None:
            return self._admitWaiting()
        reserved = self._reserved.get(streamID)
        if reserved is None or reserved <= size:
            return _NONE
        self._reserved[streamID] = size
        self.used -= reserved - size
        return self._admitWaiting()

    def release(self, streamID: int) -> Sequence[int]:
        """
        The stream ended: give back what it reserved, or its place in line.

        @return: the streams that the bytes given back admitted, in order.
        """
        if self._waiting.pop(streamID, None) is not None:
            # The next in line may fit now.
            return self._admitWaiting()
        reserved = self._reserved.pop(streamID, None)
        if reserved is None:
            return _NONE
        self.used -= reserved
        return self._admitWaiting()

    def _admitWaiting(self) -> Sequence[int]:
        waiting = self._waiting
        if not waiting:
            return _NONE
        admitted = []
        while waiting:
            streamID, need = next(iter(waiting.items()))
            if self.used + need > self.size:
                break
            del waiting[streamID]
            self._reserved[streamID] = need
            self.used += need
            admitted.append(streamID)
        return admitted


__all__ = ["BodyBudget"]
