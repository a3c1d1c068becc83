"""
Tests for L{twsgi.http.h2budget.BodyBudget}.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from twsgi.http.h2budget import BodyBudget


class BodyBudgetTests(SynchronousTestCase):
    """
    Streams reserve body bytes in the order they ask, wait while they do
    not fit, and give them back.
    """

    def test_admitWhileFits(self) -> None:
        """
        Reservations that fit together are admitted at once; the one that
        does not waits, and so do those after it, even one that would fit.
        """
        budget = BodyBudget(100)
        self.assertTrue(budget.admit(1, 60))
        self.assertTrue(budget.admit(3, 40))
        self.assertFalse(budget.admit(5, 10))
        self.assertFalse(budget.admit(7, 0))
        self.assertEqual(budget.used, 100)
        self.assertTrue(budget.waiting(5))
        self.assertFalse(budget.waiting(1))

    def test_releaseAdmitsInOrder(self) -> None:
        """
        What a stream gives back admits the streams that waited, in the
        order they asked, as far as they fit.
        """
        budget = BodyBudget(100)
        budget.admit(1, 100)
        budget.admit(3, 50)
        budget.admit(5, 60)
        budget.admit(7, 10)
        self.assertEqual(list(budget.release(1)), [3])
        self.assertEqual(list(budget.release(3)), [5, 7])
        self.assertEqual(budget.used, 70)

    def test_settle(self) -> None:
        """
        A complete body keeps only what it took: the rest admits the next
        in line.  A waiting stream whose body completed leaves the line.
        """
        budget = BodyBudget(100)
        budget.admit(1, 100)
        budget.admit(3, 80)
        budget.admit(5, 10)
        self.assertEqual(list(budget.settle(5, 7)), [])
        self.assertFalse(budget.waiting(5))
        self.assertEqual(list(budget.settle(1, 20)), [3])
        self.assertEqual(budget.used, 100)
        self.assertEqual(list(budget.settle(3, 90)), [])
        self.assertEqual(budget.used, 100)

    def test_releaseWaiting(self) -> None:
        """
        A waiting stream that ends leaves the line, which lets the next one
        in if it fits.
        """
        budget = BodyBudget(100)
        budget.admit(1, 50)
        budget.admit(3, 100)
        budget.admit(5, 50)
        self.assertEqual(list(budget.release(3)), [5])
        self.assertEqual(list(budget.release(9)), [])

    def test_largerThanBudget(self) -> None:
        """
        A reservation larger than the budget takes the whole budget, so it
        is admitted once the streams before it gave theirs back.
        """
        budget = BodyBudget(100)
        budget.admit(1, 10)
        self.assertFalse(budget.admit(3, 500))
        self.assertEqual(list(budget.release(1)), [3])
        self.assertEqual(budget.used, 100)

    @given(
        st.lists(
            st.tuples(
                st.sampled_from(["admit", "settle", "release"]), st.integers(0, 7)
            ),
            max_size=60,
        )
    )
    def test_bounded(self, operations: list[tuple[str, int]]) -> None:
        """
        Whatever the streams do, what is reserved stays within the budget,
        and once every stream released, nothing is reserved and none waits.
        """
        budget = BodyBudget(100)
        asked: set[int] = set()
        for operation, stream in operations:
            if operation == "admit" and stream not in asked:
                asked.add(stream)
                budget.admit(stream, stream * 20)
            elif operation == "settle":
                budget.settle(stream, stream * 5)
            elif operation == "release":
                budget.release(stream)
                asked.discard(stream)
            self.assertLessEqual(budget.used, 100)
        for stream in range(8):
            budget.release(stream)
        self.assertEqual(budget.used, 0)
        self.assertFalse(any(budget.waiting(stream) for stream in range(8)))
