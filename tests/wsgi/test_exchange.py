"""
Tests for L{twsgi.wsgi.exchange}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from twsgi.wsgi.exchange import LostCallbacks


class LostCallbacksTests(SynchronousTestCase):
    """
    L{LostCallbacks}: the C{lost} and C{whenLost} of an exchange.
    """

    def test_tellLost(self) -> None:
        """
        L{LostCallbacks.tellLost} makes C{lost} true and calls each callback
        once, in the order given, however often it is told.
        """
        exchange = LostCallbacks()
        calls: list[str] = []
        exchange.whenLost(lambda: calls.append("a"))
        exchange.whenLost(lambda: calls.append("b"))
        self.assertEqual((exchange.lost, calls), (False, []))
        exchange.tellLost()
        exchange.tellLost()
        self.assertEqual((exchange.lost, calls), (True, ["a", "b"]))

    def test_whenLostAfterLoss(self) -> None:
        """
        A callback given once the exchange is lost is called at once.
        """
        exchange = LostCallbacks()
        exchange.tellLost()
        calls: list[str] = []
        exchange.whenLost(lambda: calls.append("late"))
        self.assertEqual(calls, ["late"])
