"""
Tests for L{twsgi.http.h2budget.BodyBudget}.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from twsgi.http.h2budget import BodyBudget


def opened(*streamIDs: int) -> BodyBudget:
    """
    A budget of 100 bytes whose streams C{streamIDs} began to receive, in
    that order.
    """
    budget = BodyBudget(100)
    for streamID in streamIDs:
        budget.open(streamID)
    return budget


class BodyBudgetTests(SynchronousTestCase):
    """
    Streams receive while the bytes held are below the budget; beyond it
    only the oldest one receiving does, the others wait until bytes are
    given back or they are the oldest.
    """

    def test_belowBudget(self) -> None:
        """
        Below the budget every stream receives; the bytes held are counted
        from their arrival to the end of their stream.
        """
        budget = opened(1, 3)
        self.assertTrue(budget.received(1, 40))
        self.assertTrue(budget.received(3, 40))
        self.assertEqual(list(budget.ended(1)), [])
        self.assertEqual(budget.used, 80)
        self.assertEqual(list(budget.release(1)), [])
        self.assertEqual(budget.used, 40)

    def test_oldestReceives(self) -> None:
        """
        At the budget, the streams that send more wait, but the oldest one
        still receiving its body, whose body may take it beyond.
        """
        budget = opened(1, 3, 5)
        self.assertTrue(budget.received(3, 60))
        self.assertFalse(budget.received(5, 50))
        self.assertTrue(budget.waiting(5))
        self.assertTrue(budget.received(1, 500))
        self.assertFalse(budget.waiting(1))
        self.assertFalse(budget.received(3, 1))
        self.assertEqual(budget.used, 611)

    def test_releaseWakes(self) -> None:
        """
        Once the bytes held drop below the budget, every waiting stream is
        woken, in order.
        """
        budget = opened(1, 3, 5)
        budget.received(1, 90)
        budget.received(5, 20)
        budget.received(3, 20)
        budget.received(1, 10)
        self.assertEqual(list(budget.release(1)), [5, 3])
        self.assertFalse(budget.waiting(3))

    def test_oldestWakes(self) -> None:
        """
        A waiting stream that becomes the oldest one receiving is woken,
        even with the budget spent.
        """
        budget = opened(1, 3, 5)
        budget.received(1, 100)
        budget.received(3, 10)
        budget.received(5, 10)
        self.assertEqual(list(budget.ended(1)), [3])
        self.assertTrue(budget.waiting(5))
        self.assertEqual(list(budget.release(3)), [5])

    def test_waitingEnds(self) -> None:
        """
        A waiting stream whose body completes (or that ends) waits no more.
        """
        budget = opened(1, 3, 5)
        budget.received(1, 100)
        budget.received(3, 10)
        budget.received(5, 10)
        self.assertEqual(list(budget.ended(3)), [])
        self.assertFalse(budget.waiting(3))
        self.assertEqual(list(budget.release(5)), [])
        self.assertFalse(budget.waiting(5))
        self.assertEqual(list(budget.release(9)), [])
        self.assertTrue(budget.received(9, 10))

    def test_stalled(self) -> None:
        """
        The oldest stream receiving stalled: the streams that wait behind it
        are named, in the order they began to wait, and wait no more, so that its release
        wakes none; another stream stalling names none.
        """
        budget = opened(1, 3, 5, 7)
        budget.received(1, 100)
        budget.received(5, 10)
        budget.received(3, 10)
        self.assertEqual(list(budget.stalled(3)), [])
        self.assertEqual(list(budget.stalled(1)), [5, 3])
        self.assertFalse(budget.waiting(3))
        self.assertEqual(list(budget.release(1)), [])
        self.assertEqual(list(budget.stalled(3)), [])

    @settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.lists(
            st.tuples(
                st.sampled_from(["open", "receive", "end", "release"]),
                st.integers(0, 5),
                st.integers(1, 40),
            ),
            max_size=80,
        )
    )
    def test_bounded(self, operations: list[tuple[str, int, int]]) -> None:
        """
        Whatever the streams do, the bytes held stay below the budget plus
        the body of the oldest stream receiving and one frame per stream;
        the oldest stream receiving never waits; once every stream ended,
        nothing is held and none waits.
        """
        budget = BodyBudget(100)
        receiving: list[int] = []
        held: dict[int, int] = {}
        frame = 40
        for operation, stream, size in operations:
            if operation == "open" and stream not in held:
                budget.open(stream)
                receiving.append(stream)
                held[stream] = 0
            elif operation == "receive" and stream in receiving:
                if budget.waiting(stream):
                    continue
                budget.received(stream, size)
                held[stream] += size
            elif operation == "end" and stream in receiving:
                budget.ended(stream)
                receiving.remove(stream)
            elif operation == "release" and stream in held:
                budget.release(stream)
                held.pop(stream)
                if stream in receiving:
                    receiving.remove(stream)
            self.assertEqual(budget.used, sum(held.values()))
            if receiving:
                oldest = receiving[0]
                self.assertFalse(budget.waiting(oldest))
                others = budget.used - held[oldest]
                self.assertLess(others, 100 + frame * len(held))
        for stream in list(held):
            budget.release(stream)
        self.assertEqual(budget.used, 0)
        self.assertFalse(any(budget.waiting(stream) for stream in range(6)))
